//! What one replayed start did: per-tier counts, read latencies, the chunk stream the worker cache
//! saw ([`Fetch`]) and every operation as it was replayed ([`ReadEvent`], [`ChunkRead`], [`Via`]).
//! `Display` on [`ReplayResult`] is the text report; [`write_chunk_stream`] the chunk-stream CSV;
//! [`write_request_streams`] the request stream each cache tier saw, in libCacheSim's format.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use crate::report::Table;
use crate::requests::{Request, RequestWriter, RequestsError, StreamSummary, TimeUnit};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{AzStats, Tier, WorkerStats};
use crate::units::ByteSize;

/// One chunk request to the worker cache (L1) and where it was served: the stream the worker
/// cache saw (hits included), for the timeline and for running other cache simulators on it.
#[derive(Debug, Clone, Serialize)]
pub struct Fetch {
    pub issued: SimTime,
    pub done: SimTime,
    pub chunk_index: u32,
    pub chunk: u32,
    pub size: u32,
    pub tier: Tier,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TierCount {
    pub chunks: u64,
    pub bytes: u64,
    /// Time reads spent waiting on chunks this tier served last.
    pub stall: SimDuration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: SimDuration,
    pub p90: SimDuration,
    pub p99: SimDuration,
    pub p999: SimDuration,
    /// Share of device reads finishing under 100 us (figure 11's worker-cache mode).
    pub under_100us: f64,
}

/// How a read obtained one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// An all-zero chunk: nothing stored, nothing fetched.
    Hole,
    /// This read asked the worker cache for it, which served it or fetched it (`tier`).
    Requested,
    /// Another read of this start was already fetching it: this one waited for that fetch.
    InFlight,
    /// This start had already fetched it: the agent holds it in memory.
    Resident,
}

/// One chunk one read needed, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkRead {
    pub index: u32,
    /// Dense id of its content (equal ids: same chunk name); `None` for a hole.
    pub chunk: Option<u32>,
    pub tier: Tier,
    pub via: Via,
    /// When the chunk was available to the read.
    pub ready: SimTime,
}

/// One operation of the trace (one record on one thread) as the start replayed it: the pages it
/// needed from the device, the chunks behind them, and how long its thread waited.
#[derive(Debug, Clone, Serialize)]
pub struct ReadEvent {
    /// Index of the trace record.
    pub record: usize,
    pub thread: u32,
    pub start: SimTime,
    pub done: SimTime,
    /// Every page it needed was in the guest page cache: the device was not asked.
    pub page_cache_hit: bool,
    /// Pages read from the device (read-ahead included).
    pub device_pages: u64,
    pub chunks: Vec<ChunkRead>,
}

impl ReadEvent {
    pub fn latency(&self) -> SimDuration {
        self.done - self.start
    }
}

/// What one replayed start did.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayResult {
    /// From the first access to the last one finishing.
    pub start_time: SimDuration,
    pub operations: u64,
    pub page_cache_hits: u64,
    pub device_reads: u64,
    pub pages_read: u64,
    pub bytes_read: u64,
    pub chunks_in_image: u64,
    pub chunks_touched: u64,
    pub bytes_fetched: u64,
    pub by_tier: BTreeMap<Tier, TierCount>,
    pub read_latency: Option<Percentiles>,
    /// The worker cache's own counters per tier (hits, misses, bytes, evictions), warm-up excluded.
    pub l1: Option<WorkerStats>,
    /// The AZ cache's own counters, warm-up excluded.
    pub l2: Option<AzStats>,
    #[serde(skip)]
    pub fetches: Vec<Fetch>,
    /// Every operation in the order it was issued (for narration and per-read latency plots).
    #[serde(skip)]
    pub reads: Vec<ReadEvent>,
}

impl fmt::Display for ReplayResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "start took {}", self.start_time)?;
        writeln!(
            f,
            "  operations {} ({} page-cache hits, {} device reads of {} pages, {})",
            self.operations,
            self.page_cache_hits,
            self.device_reads,
            self.pages_read,
            ByteSize(self.bytes_read)
        )?;
        writeln!(
            f,
            "  chunks     {} touched of {} in the image; {} fetched",
            self.chunks_touched,
            self.chunks_in_image,
            ByteSize(self.bytes_fetched)
        )?;
        let mut t = Table::new(["served by", "chunks", "bytes", "stall"]);
        for (tier, c) in &self.by_tier {
            t.row([
                tier.to_string(),
                c.chunks.to_string(),
                ByteSize(c.bytes).to_string(),
                c.stall.to_string(),
            ]);
        }
        for line in t.to_string().lines() {
            writeln!(f, "  {line}")?;
        }
        if let Some(p) = &self.read_latency {
            writeln!(
                f,
                "  device read latency p50 {} p90 {} p99 {} p99.9 {}; {:.1}% under 100us",
                p.p50,
                p.p90,
                p.p99,
                p.p999,
                100.0 * p.under_100us
            )?;
        }
        Ok(())
    }
}

/// Writes the chunk stream (every request the agent made of the worker cache, hits included) as
/// CSV: `time_ns,chunk_id,chunk_index,size,tier,done_ns`.
pub fn write_chunk_stream(fetches: &[Fetch], mut w: impl Write) -> io::Result<()> {
    writeln!(w, "time_ns,chunk_id,chunk_index,size,tier,done_ns")?;
    for f in fetches {
        writeln!(
            w,
            "{},{},{},{},{},{}",
            f.issued.since_start().as_nanos(),
            f.chunk,
            f.chunk_index,
            f.size,
            f.tier,
            f.done.since_start().as_nanos()
        )?;
    }
    w.flush()
}

/// What [`write_request_streams`] wrote.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RequestStreams {
    pub worker_cache: StreamSummary,
    pub az_cache: StreamSummary,
}

/// Writes the request stream each cache tier saw during the start into `dir` (which must exist),
/// each as `STEM.oracleGeneral.bin` (times in `unit`) and `STEM.csv` (times in ns):
/// `worker-cache`, every chunk request to the worker cache, hits included (the object id is the
/// chunk's dense id, the size its stored size); `az-cache`, the requests that missed the worker
/// cache and went on to the AZ cache (served there, or by S3 on an AZ-cache miss). Requests are in
/// the order the caches saw them, timed when issued.
pub fn write_request_streams(
    fetches: &[Fetch],
    dir: &Path,
    unit: TimeUnit,
) -> Result<RequestStreams, RequestsError> {
    let mut worker = RequestWriter::create(dir, "worker-cache", unit)?;
    let mut az = RequestWriter::create(dir, "az-cache", unit)?;
    for f in fetches {
        let req = Request { time: f.issued, object: u64::from(f.chunk), size: f.size };
        worker.push(req)?;
        if f.tier.is_remote() {
            az.push(req)?;
        }
    }
    Ok(RequestStreams { worker_cache: worker.finish()?, az_cache: az.finish()? })
}
