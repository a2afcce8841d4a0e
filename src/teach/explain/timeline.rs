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

/// Whether a printed line belongs to a table or a listing (aligned columns, indented, a read's
/// `#N` or `(N operations ...)` line) rather than to prose.
fn is_listing(line: &str) -> bool {
    line.starts_with([' ', '#', '(']) || line.trim_end().contains("  ")
}

/// A story's printed text as a section: its first line the title; then runs of prose lines as
/// paragraphs and everything else (tables, listings, the reads) as printed. A prose run must end
/// a sentence (`.`, `:` or `)`), else it is part of a listing (`layer 0: 5.88MiB ..., 462 files`).
pub fn section(text: &str) -> Section {
    let (title, body) = text.split_once('\n').unwrap_or((text, ""));
    let lines: Vec<&str> = body.lines().map(|l| l.strip_prefix("   ").unwrap_or(l)).collect();
    // Runs of (prose?, lines); a blank line ends a prose run and stays inside a listing.
    let mut runs: Vec<(bool, Vec<&str>)> = Vec::new();
    for line in lines {
        let prose = !line.trim().is_empty() && !is_listing(line);
        match runs.last_mut() {
            Some((p, run)) if line.trim().is_empty() => {
                if !*p {
                    run.push(line);
                } else {
                    runs.push((false, vec![line]));
                }
            }
            Some((p, run)) if *p == prose => run.push(line),
            _ => runs.push((prose, vec![line])),
        }
    }
    // A prose run's tail after its last sentence end belongs to the listing after it.
    let runs: Vec<(bool, Vec<&str>)> = runs
        .into_iter()
        .flat_map(|(prose, run)| {
            let end = run.iter().rposition(|l| l.trim_end().ends_with(['.', ':', ')'])).map_or(0, |i| i + 1);
            if !prose || end == run.len() {
                return vec![(prose, run)];
            }
            let (head, tail) = run.split_at(end);
            [(true, head.to_vec()), (false, tail.to_vec())].into_iter().filter(|r| !r.1.is_empty()).collect()
        })
        .collect();
    let mut s = Section::new(title.trim());
    let mut listing: Vec<&str> = Vec::new();
    for (prose, run) in runs {
        if prose {
            let text = listing.join("\n");
            if !text.trim().is_empty() {
                s = s.pre(text.trim_matches('\n'));
            }
            listing.clear();
            s = s.text(run.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "));
        } else {
            listing.extend(run);
        }
    }
    let text = listing.join("\n");
    if !text.trim().is_empty() {
        s = s.pre(text.trim_matches('\n'));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::Block;

    fn kinds(s: &Section) -> Vec<String> {
        s.blocks
            .iter()
            .map(|b| match b {
                Block::Text(t) => format!("text:{t}"),
                Block::Pre(t) => format!("pre:{t}"),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn prose_becomes_paragraphs_and_tables_stay_as_printed() {
        let text = "1. The layers\n   A container image is a stack,\n   one per step.\n   \
                    layer 0: 5.88MiB compressed, 462 files\n     made by: dpkg\n   \
                    Flattening applies the layers.\n   name   size\n   a      1\n";
        let s = section(text);
        assert_eq!(s.title, "1. The layers");
        assert_eq!(
            kinds(&s),
            [
                "text:A container image is a stack, one per step.",
                "pre:layer 0: 5.88MiB compressed, 462 files\n  made by: dpkg",
                "text:Flattening applies the layers.",
                "pre:name   size\na      1",
            ]
        );
        // A read's story stays one listing, blank lines and all.
        let reads = "3. Reads\n   The first 2 reads:\n\n   #0 at 1ms: stat /x\n     waited 1ms\n\n   #1 at 2ms: read /y\n";
        assert_eq!(
            kinds(&section(reads)),
            ["text:The first 2 reads:", "pre:#0 at 1ms: stat /x\n  waited 1ms\n\n#1 at 2ms: read /y"]
        );
    }

    #[test]
    fn timeline_colours_are_the_charts_colours() {
        let keys = tier_keys();
        assert_eq!(keys[0].name, "worker-memory");
        assert_eq!(keys[0].color, plot::color_css(0));
        assert_eq!(keys[3].name, "s3");
        assert_eq!(keys[3].color, plot::color_css(3));
        assert_eq!(keys.last().unwrap().name, "hole");
    }
}
