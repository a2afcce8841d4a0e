//! The data behind a page's interactive cold-start timeline: one replayed start per cache state,
//! each device read a bar on its thread's lane from when it asked to when it had its pages,
//! coloured by the tier that served its last chunk, with the chunk fetches it waited on, and what
//! `explain` says about it (shown when the reader hovers or taps the bar). The page's script
//! (assets/timeline.js) draws it; this module only holds the data, serialized into the page.

use serde::Serialize;

/// What the detail pane says before any read is chosen.
pub const HINT: &str = "Hover over a read (or tap it) to see what explain says about it.";

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub title: String,
    /// The sentence that reads the timeline.
    pub reading: String,
    /// Colour and label of every tier a bar can have, in the charts' order.
    pub tiers: Vec<TierKey>,
    /// The cache states to switch between; the first is shown first.
    pub states: Vec<TimelineState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierKey {
    /// The tier's data name (`s3`, `worker-memory`), as `TimelineRead::tier` names it.
    pub name: String,
    pub label: String,
    /// A CSS colour.
    pub color: String,
}

/// One replayed start.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineState {
    pub name: String,
    pub label: String,
    /// The start's time, first access to last.
    pub start_ms: f64,
    /// The trace's threads, one lane each, in order.
    pub threads: Vec<u32>,
    /// Device reads only (page-cache hits wait for nothing).
    pub reads: Vec<TimelineRead>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineRead {
    pub thread: u32,
    /// From the start's first access.
    pub start_us: f64,
    pub end_us: f64,
    /// Data name of the tier that served the read's last chunk (`none`: no chunk to fetch).
    pub tier: String,
    pub op: String,
    pub path: String,
    pub chunks: Vec<TimelineChunk>,
    /// What `explain` says about this read, as it prints it.
    pub story: String,
}

/// One chunk a read needed.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineChunk {
    pub index: u32,
    pub tier: String,
    /// `requested`, `in-flight`, `resident` or `hole`.
    pub via: String,
    /// When it was ready, from the start's first access.
    pub ready_us: f64,
}
