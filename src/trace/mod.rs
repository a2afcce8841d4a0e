//! The trace stage: what files one sandbox start touches, and when.
//!
//! A trace is a time-ordered list of file accesses (open, stat, exec, read, mmap) by path inside the
//! image root, in the versioned JSON-lines format of docs/trace-format.md ([`mod@format`]). Traces come from
//! real programs ([`strace`]: strace output of a run in a chroot of an extracted image) and are
//! summarised by [`stats`]. [`mapping`] maps a trace onto a block image (paths to metadata and data
//! pages to chunks); what a `mmap` record costs is chosen by [`MmapRule`]. Replay comes later.

mod error;
pub mod footprint;
pub mod format;
pub mod mapping;
mod mmap;
pub mod stats;
pub mod strace;
pub mod synth;

pub use error::{Error, Result};
pub use format::{Access, Header, Op, Reader, Record, TracePath, Writer};
pub use mmap::{MmapRule, mmaps_to_reads};
pub use stats::TraceStats;
