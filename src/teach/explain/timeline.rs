//! One explained start as data for a page's timeline (`report::html::timeline`), and the page
//! `explain --html` writes: the four stories as the terminal prints them, the timeline beside
//! the read-by-read story, and the effective scenario folded away.

use std::collections::BTreeSet;

use super::Explanation;
use crate::replay::Via;
use crate::report::html::{
    Block, Folded, Page, Section, TierKey, Timeline, TimelineChunk, TimelineRead, TimelineState,
    readable_toml,
};
use crate::report::plot;
use crate::sim::Tier;

/// The tiers a start's chunks come from, in the order the charts stack and colour them (series
/// `i` of a chart has `plot::color_css(i)`), so the timeline's colours match the charts'.
pub const CHART_TIERS: [Tier; 4] = [Tier::WorkerMemory, Tier::WorkerDisk, Tier::AzCache, Tier::S3];

/// Colour and label of every tier a timeline bar can have.
pub fn tier_keys() -> Vec<TierKey> {
    let mut keys: Vec<TierKey> = CHART_TIERS
        .iter()
        .enumerate()
        .map(|(i, t)| TierKey { name: t.name().into(), label: t.label().into(), color: plot::color_css(i) })
        .collect();
    keys.push(TierKey {
        name: Tier::Hole.name().into(),
        label: "all-zero chunk".into(),
        color: plot::color_css(7),
    });
    keys
}

fn via_name(v: Via) -> &'static str {
    match v {
        Via::Hole => "hole",
        Via::Requested => "requested",
        Via::InFlight => "in-flight",
        Via::Resident => "resident",
    }
}

/// The start `story` tells, every narrated read a bar (narrate them all: `ExplainOptions::reads`
/// at `usize::MAX`), under a name and a label for the state selector.
pub fn timeline_state(
    name: impl Into<String>,
    label: impl Into<String>,
    story: &Explanation,
) -> TimelineState {
    let chunk_size = story.trace.chunk_size;
    let reads: Vec<TimelineRead> = story
        .trace
        .reads
        .iter()
        .map(|r| {
            let start = r.started.as_micros_f64();
            let last = r.chunks.iter().max_by_key(|c| (c.ready_after, c.tier));
            TimelineRead {
                thread: r.thread,
                start_us: start,
                end_us: start + r.latency.as_micros_f64(),
                tier: last.map_or("none", |c| c.tier.name()).to_string(),
                op: r.op.to_string(),
                path: r.path.clone(),
                chunks: r
                    .chunks
                    .iter()
                    .map(|c| TimelineChunk {
                        index: c.index,
                        tier: c.tier.name().to_string(),
                        via: via_name(c.via).to_string(),
                        ready_us: start + c.ready_after.as_micros_f64(),
                    })
                    .collect(),
                story: r.text(chunk_size),
            }
        })
        .collect();
    let threads: BTreeSet<u32> = reads.iter().map(|r| r.thread).collect();
    TimelineState {
        name: name.into(),
        label: label.into(),
        start_ms: story.total.lazy.start_time.as_millis_f64(),
        threads: threads.into_iter().collect(),
        reads,
    }
}

/// The timeline of one start under several cache states (the first shown first).
pub fn timeline(image: &str, states: Vec<TimelineState>) -> Timeline {
    Timeline {
        title: format!("Watch one {image} start"),
        reading: "Time runs left to right, one lane per thread of the trace. Each bar is one read that reached \
                  the block device, from when it asked until it had its pages, coloured by the tier that served \
                  its last chunk; the thin lines under a bar are the chunk fetches it waited on. Switch the \
                  caches' state before the start, and hover over (or tap) a read to see what explain says \
                  about it."
            .into(),
        tiers: tier_keys(),
        states,
    }
}

/// The page `explain --html` writes: the stories as printed, with the timeline of `states`
/// (the start as asked first) beside the read-by-read story.
pub fn page(story: &Explanation, states: Vec<TimelineState>) -> Page {
    let mut sections = Vec::new();
    if let Some(l) = &story.layers {
        sections.push(section(&l.to_string()));
    }
    sections.push(section(&story.block.to_string()));
    let mut reads = section(&story.trace.to_string());
    let at = reads.blocks.len().min(1);
    reads.blocks.insert(at, Block::Timeline(timeline(&story.image, states)));
    sections.push(reads);
    sections.push(section(&format!("{}{}", story.total, story.note())));
    Page {
        title: format!("How one cold start of {} works", story.image),
        lead: vec![format!(
            "Seed {}. Before the start the worker cache is {} and the AZ cache is {} (cold: empty; warm: holds \
             this image; store: holds what the other images in the store brought). The same story as \
             chunkload explain prints, with the start drawn as a timeline you can explore.",
            story.seed,
            story.l1.name(),
            story.l2.name()
        )],
        sections,
        files: Vec::new(),
        folded: vec![Folded {
            title: format!("Seed {} and the effective scenario (pass it back with --scenario)", story.seed),
            text: readable_toml(&story.scenario.to_toml()),
        }],
    }
}

/// A story's printed text as a section: its first line the title, its first paragraph a
/// paragraph, the rest (tables, reads) as printed.
pub fn section(text: &str) -> Section {
    let (title, body) = text.split_once('\n').unwrap_or((text, ""));
    let lines: Vec<&str> = body.lines().map(|l| l.strip_prefix("   ").unwrap_or(l)).collect();
    // The opening prose: up to the first line that ends a sentence, unless a table starts first.
    let table = lines.iter().position(|l| l.trim().is_empty() || l.starts_with(' ') || l.contains("  "));
    let sentence = lines.iter().position(|l| l.ends_with('.') || l.ends_with(':')).map(|i| i + 1);
    let cut = match (table, sentence) {
        (Some(t), Some(s)) => t.min(s),
        (t, s) => t.or(s).unwrap_or(lines.len()),
    };
    let (para, rest) = lines.split_at(cut);
    let mut s = Section::new(title.trim());
    if !para.is_empty() {
        s = s.text(para.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "));
    }
    let rest = rest.join("\n");
    if !rest.trim().is_empty() {
        s = s.pre(rest.trim_matches('\n'));
    }
    s
}
