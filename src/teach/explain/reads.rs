//! Story 3: the start read by read: each device read followed from the file to block-image
//! bytes to chunks to the tier that served them, with the reason each cache missed.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::layout::BLOCK_SIZE;
use crate::replay::{ReadEvent, Via};
use crate::sim::SimDuration;
use crate::sim::Tier;
use crate::trace::Record;
use crate::trace::{MappedAccess, Region};

#[derive(Debug, Clone, Serialize)]
pub struct TraceStory {
    pub records: u64,
    pub operations: u64,
    pub page_cache_hits: u64,
    pub device_reads: u64,
    pub missing_paths: u64,
    pub reads: Vec<ReadStory>,
    /// The image's chunk size, to say which chunk a byte range falls in (printed, not saved: the
    /// block story has it).
    #[serde(skip)]
    pub chunk_size: u64,
}

/// One operation of the start, followed down the stack.
#[derive(Debug, Clone, Serialize)]
pub struct ReadStory {
    pub record: usize,
    pub thread: u32,
    pub op: &'static str,
    pub path: String,
    /// Byte range of the file it asked for (reads and mmaps).
    pub file_range: Option<Range<u64>>,
    /// Page-aligned ranges of the block image it needs, and whether they hold metadata or data.
    pub block_ranges: Vec<(Region, Range<u64>)>,
    pub started: SimDuration,
    /// Operations served entirely by the guest page cache since the previous narrated read.
    pub page_cache_hits_before: u64,
    pub device_pages: u64,
    pub chunks: Vec<ChunkStory>,
    pub latency: SimDuration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChunkStory {
    pub index: u32,
    pub tier: Tier,
    pub via: Via,
    pub worker_miss: Option<WorkerMiss>,
    pub az_miss: Option<AzMiss>,
    /// From the read's start until this chunk was in the agent.
    pub ready_after: SimDuration,
}

/// Why the worker cache (L1) did not have a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerMiss {
    /// This worker never fetched it.
    Cold,
    /// It held the chunk but evicted it for room.
    Evicted,
}

/// Why the AZ cache (L2) did not have a chunk, so it came from S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AzMiss {
    /// No worker has asked the AZ cache for it (it may well be in S3, uploaded by another image).
    NeverSeen,
    /// It held the chunk but evicted it.
    Evicted,
    /// The same content is cached under another salt: another key, another name, no help.
    DifferentSalt,
}

/// One device read's story. `why(chunk index)` says why each cache missed a chunk that came
/// from below the worker cache (asked only for those).
pub(super) fn read_story(
    e: &ReadEvent,
    rec: &Record,
    accesses: Option<&Vec<&MappedAccess>>,
    page_cache_hits_before: u64,
    why: impl Fn(u32) -> Option<(WorkerMiss, AzMiss)>,
) -> ReadStory {
    let block_ranges = accesses
        .map(|v| v.iter().filter(|a| a.thread == e.thread).map(|a| (a.region, a.bytes.clone())).collect())
        .unwrap_or_default();
    let chunks = e
        .chunks
        .iter()
        .map(|c| {
            let below_worker = c.via == Via::Requested && matches!(c.tier, Tier::AzCache | Tier::S3);
            let reasons = if below_worker { why(c.index) } else { None };
            ChunkStory {
                index: c.index,
                tier: c.tier,
                via: c.via,
                worker_miss: reasons.map(|r| r.0),
                az_miss: reasons.filter(|_| c.tier == Tier::S3).map(|r| r.1),
                ready_after: c.ready.max(e.start) - e.start,
            }
        })
        .collect();
    ReadStory {
        record: e.record,
        thread: e.thread,
        op: rec.access.op().as_str(),
        path: rec.path.to_string(),
        file_range: rec.access.range().map(|(o, l)| o..o.saturating_add(l)),
        block_ranges,
        started: e.start.since_start(),
        page_cache_hits_before,
        device_pages: e.device_pages,
        chunks,
        latency: e.latency(),
    }
}

fn chunk_span(bytes: &Range<u64>, chunk_size: u64) -> String {
    let (a, z) = (bytes.start / chunk_size, (bytes.end - 1) / chunk_size);
    if a == z { a.to_string() } else { format!("{a}..={z}") }
}

impl fmt::Display for TraceStory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self;
        writeln!(f, "3. The start, read by read")?;
        writeln!(
            f,
            "   The trace has {} file accesses; replayed, they are {} operations: {} served by the guest's page\n   \
         cache, {} reaching the block device. The first {} device reads:",
            t.records,
            t.operations,
            t.page_cache_hits,
            t.device_reads,
            t.reads.len()
        )?;
        for r in &t.reads {
            writeln!(f)?;
            write_read(f, r, t.chunk_size)?;
        }
        Ok(())
    }
}

/// One read's story as `explain` prints it (also the timeline's detail for that read).
pub fn write_read(f: &mut dyn fmt::Write, r: &ReadStory, chunk_size: u64) -> fmt::Result {
    if r.page_cache_hits_before > 0 {
        writeln!(
            f,
            "   ({} operations before this one found all their pages in the guest page cache: no wait)",
            r.page_cache_hits_before
        )?;
    }
    write!(f, "   #{} at {} (thread {}): {} {}", r.record, r.started, r.thread, r.op, r.path)?;
    if let Some(range) = &r.file_range {
        write!(f, " bytes {}..{}", range.start, range.end)?;
    }
    writeln!(f)?;
    for (region, bytes) in &r.block_ranges {
        if *region == Region::Data {
            writeln!(
                f,
                "     the file's bytes are block-image bytes {}..{} = pages {}..{} = chunk {}",
                bytes.start,
                bytes.end,
                bytes.start / BLOCK_SIZE,
                bytes.end / BLOCK_SIZE,
                chunk_span(bytes, chunk_size)
            )?;
        }
    }
    let meta: Vec<_> = r.block_ranges.iter().filter(|(g, _)| *g == Region::Metadata).collect();
    if !meta.is_empty() {
        let pages: u64 = meta.iter().map(|(_, x)| (x.end - x.start) / BLOCK_SIZE).sum();
        let chunks: BTreeSet<u64> =
            meta.iter().flat_map(|(_, x)| x.start / chunk_size..=(x.end - 1) / chunk_size).collect();
        let chunks: Vec<String> = chunks.iter().map(u64::to_string).collect();
        writeln!(
            f,
            "     the path lookup reads directory entries and inodes: {pages} metadata pages, in chunk {}",
            chunks.join(", ")
        )?;
    }
    writeln!(f, "     the guest reads {} pages from the device (read-ahead included)", r.device_pages)?;
    for c in &r.chunks {
        write!(f, "     chunk {}: ", c.index)?;
        match c.via {
            Via::Hole => write!(f, "all zeros, nothing to fetch")?,
            Via::Resident => write!(f, "this start fetched it already: in the agent's memory")?,
            Via::InFlight => {
                write!(f, "another read is already fetching it (from {}); waits for that", c.tier.phrase())?
            }
            Via::Requested => {
                write!(f, "served by {}", c.tier.phrase())?;
                if let Some(w) = c.worker_miss {
                    write!(
                        f,
                        "; the worker cache missed ({})",
                        match w {
                            WorkerMiss::Cold => "cold: this worker never fetched it",
                            WorkerMiss::Evicted => "evicted: it held it but needed the room",
                        }
                    )?;
                }
                if let Some(a) = c.az_miss {
                    write!(
                        f,
                        "; the AZ cache missed ({})",
                        match a {
                            AzMiss::NeverSeen => "never seen: no worker asked it for this chunk yet",
                            AzMiss::Evicted => "evicted",
                            AzMiss::DifferentSalt =>
                                "different salt: it holds this content, but under another name",
                        }
                    )?;
                }
            }
        }
        writeln!(f, "; ready after {}", c.ready_after)?;
    }
    writeln!(f, "     the read waited {}", r.latency)?;
    Ok(())
}

impl ReadStory {
    /// This read's story as `explain` prints it, without the leading indent.
    pub fn text(&self, chunk_size: u64) -> String {
        let mut s = String::new();
        write_read(&mut s, self, chunk_size).expect("writing to a String");
        s.lines().map(|l| l.strip_prefix("   ").unwrap_or(l)).collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::ChunkRead;
    use crate::sim::SimTime;
    use crate::trace::{Access, TracePath};

    fn chunk(index: u32, tier: Tier, via: Via, ready_us: u64) -> ChunkRead {
        ChunkRead { index, chunk: Some(index), tier, via, ready: SimTime::from_nanos(ready_us * 1000) }
    }

    #[test]
    fn miss_reasons_are_given_for_chunks_from_below_the_worker_cache_only() {
        let e = ReadEvent {
            record: 0,
            thread: 7,
            start: SimTime::from_nanos(10_000),
            done: SimTime::from_nanos(50_000),
            page_cache_hit: false,
            device_pages: 32,
            chunks: vec![
                chunk(0, Tier::WorkerMemory, Via::Requested, 12),
                chunk(1, Tier::AzCache, Via::Requested, 20),
                chunk(2, Tier::S3, Via::Requested, 50),
                chunk(3, Tier::S3, Via::InFlight, 5),
            ],
        };
        let rec = Record {
            t_us: 1,
            done_us: None,
            thread: 7,
            path: TracePath::new(&b"/app/main.py"[..]).unwrap(),
            access: Access::Read { offset: 0, len: 100 },
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let s = read_story(&e, &rec, None, 2, |i| {
            asked.borrow_mut().push(i);
            Some((WorkerMiss::Evicted, AzMiss::DifferentSalt))
        });
        assert_eq!(*asked.borrow(), [1, 2], "only chunks requested from the AZ cache or S3");
        let reasons: Vec<_> = s.chunks.iter().map(|c| (c.worker_miss, c.az_miss)).collect();
        assert_eq!(
            reasons,
            [
                (None, None),
                (Some(WorkerMiss::Evicted), None),
                (Some(WorkerMiss::Evicted), Some(AzMiss::DifferentSalt)),
                (None, None),
            ]
        );
        // Ready times count from the read's start; a chunk ready before it waited nothing.
        assert_eq!(s.chunks[1].ready_after, SimDuration::from_micros(10));
        assert_eq!(s.chunks[3].ready_after, SimDuration::ZERO);
        assert_eq!((s.latency, s.page_cache_hits_before, s.thread), (SimDuration::from_micros(40), 2, 7));
        assert_eq!(s.file_range, Some(0..100));
    }

    #[test]
    fn chunk_spans_read_naturally() {
        assert_eq!(chunk_span(&(0..4096), 512 << 10), "0");
        assert_eq!(chunk_span(&((512 << 10) - 4096..(512 << 10) + 4096), 512 << 10), "0..=1");
    }
}
