//! One sandbox start, replayed in simulated time: the trace's threads issue their accesses in
//! order, keeping the CPU gaps between them (scaled); an access first meets the guest page cache
//! (a page comes from the device once per start, with read-ahead); device reads go through the
//! agent to the worker cache (L1), the AZ cache (L2, k-of-n stripes) and S3, chunk by chunk. A read
//! blocks its thread until every chunk it needs is present; a chunk already being fetched is
//! waited for, not fetched twice. Everything here is dense chunk ids, sizes and simulated time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::latency::stripe_read;
use super::scenario::Scenario;
use super::time::{SimDuration, SimTime};
use crate::cache::{AzCache, AzStats, ChunkId, WorkerCache, WorkerStats, WorkerTier};
use crate::crypto::{ChunkName, ManifestPublic};
use crate::layout::BLOCK_SIZE;
use crate::trace::mapping::MappedAccess;
use crate::units::ByteSize;

/// The image's chunks as the simulation sees them: chunk index -> dense id (None for a hole)
/// and size. Ids are interned once, by chunk name, so two positions holding the same content are
/// one cached object, as in the real store.
#[derive(Debug, Clone)]
pub struct ChunkTable {
    ids: Vec<Option<ChunkId>>,
    sizes: Vec<u32>,
    distinct: usize,
    chunk_size: u64,
    pages: u64,
}

impl ChunkTable {
    pub fn from_manifest(m: &ManifestPublic) -> Self {
        let total = m.header.total_chunks() as usize;
        let mut ids = vec![None; total];
        let mut sizes = vec![0u32; total];
        let mut names: BTreeMap<ChunkName, ChunkId> = BTreeMap::new();
        for c in &m.chunks {
            let next = ChunkId(names.len() as u32);
            let id = *names.entry(c.name).or_insert(next);
            ids[c.index as usize] = Some(id);
        }
        for (i, s) in sizes.iter_mut().enumerate() {
            *s = m.header.chunk_len(i as u32) as u32;
        }
        let pages = m.header.image_size / BLOCK_SIZE;
        ChunkTable { ids, sizes, distinct: names.len(), chunk_size: u64::from(m.header.chunk_size), pages }
    }

    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// 4 KiB pages in the block image.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Every stored chunk once, with its size: to warm a cache with the whole image.
    pub fn stored(&self) -> impl Iterator<Item = (ChunkId, ByteSize)> + '_ {
        let mut seen = vec![false; self.distinct];
        self.ids.iter().zip(&self.sizes).filter_map(move |(id, &size)| {
            let id = (*id)?;
            (!std::mem::replace(&mut seen[id.index()], true)).then_some((id, ByteSize(u64::from(size))))
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The dense id of chunk `index` (None for a hole or an index past the end).
    pub fn id(&self, index: u32) -> Option<ChunkId> {
        self.ids.get(index as usize).copied().flatten()
    }

    /// Distinct stored chunks (holes excluded, duplicates once).
    pub fn distinct(&self) -> usize {
        self.distinct
    }
}

/// Where a chunk read was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// An all-zero chunk: not stored, nothing to fetch.
    Hole,
    /// The worker cache's memory tier (or a chunk this start already fetched).
    WorkerMemory,
    /// The worker cache's local-disk tier.
    WorkerDisk,
    AzCache,
    S3,
    /// Baselines: a local disk holding the unpacked image.
    LocalDisk,
}

/// Where the bytes come from: the lazy-loading hierarchy, or a local disk (the baselines).
pub enum Source {
    Lazy { l1: Box<WorkerCache>, l2: Box<AzCache> },
    LocalDisk,
}

impl Source {
    /// Lazy loading through `sc`'s worker cache and AZ cache, holding before the start the stored
    /// chunks `in_l1` and `in_l2` pick (nothing: a cold start; everything: a warm one).
    pub fn lazy_prefilled(
        sc: &Scenario,
        table: &ChunkTable,
        in_l1: impl Fn(ChunkId) -> bool,
        in_l2: impl Fn(ChunkId) -> bool,
    ) -> Source {
        let mut l1 = WorkerCache::new(
            sc.l1.policy,
            sc.l1.memory_capacity,
            sc.l1.disk_capacity,
            ByteSize(table.chunk_size()),
            sc.seed,
        );
        let mut l2 = AzCache::new(sc.l2.az_config(sc.seed));
        for (id, size) in table.stored() {
            if in_l1(id) {
                l1.insert(id, size);
            }
            if in_l2(id) {
                l2.put(id, size);
            }
        }
        Source::Lazy { l1: Box::new(l1), l2: Box::new(l2) }
    }
}

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

/// One trace record's accesses, ready to replay.
struct Op {
    record: usize,
    thread: u32,
    t_us: u64,
    pages: Vec<Range<u64>>,
}

struct Engine<'a> {
    sc: &'a Scenario,
    table: &'a ChunkTable,
    source: Source,
    rng_agent: ChaCha8Rng,
    rng_l1: ChaCha8Rng,
    rng_l2: ChaCha8Rng,
    rng_s3: ChaCha8Rng,
    rng_local: ChaCha8Rng,
    page_cache: std::collections::HashSet<u64>,
    /// Per chunk id: when it is (or will be) resident in the agent, and who served it.
    resident: Vec<Option<(SimTime, Tier)>>,
    in_flight: BinaryHeap<Reverse<SimTime>>,
    nic_free: SimTime,
    out: ReplayResult,
}

fn stream(seed: u64, id: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(id);
    r
}

/// Replays `accesses` (a mapped trace) against `source`.
pub fn replay(accesses: &[MappedAccess], table: &ChunkTable, sc: &Scenario, source: Source) -> ReplayResult {
    let seed = sc.seed;
    let mut e = Engine {
        sc,
        table,
        source,
        rng_agent: stream(seed, 1),
        rng_l1: stream(seed, 2),
        rng_l2: stream(seed, 3),
        rng_s3: stream(seed, 4),
        rng_local: stream(seed, 5),
        page_cache: Default::default(),
        resident: vec![None; table.distinct],
        in_flight: BinaryHeap::new(),
        nic_free: SimTime::ZERO,
        out: ReplayResult {
            start_time: SimDuration::ZERO,
            operations: 0,
            page_cache_hits: 0,
            device_reads: 0,
            pages_read: 0,
            bytes_read: 0,
            chunks_in_image: table.len() as u64,
            chunks_touched: 0,
            bytes_fetched: 0,
            by_tier: BTreeMap::new(),
            read_latency: None,
            l1: None,
            l2: None,
            fetches: Vec::new(),
            reads: Vec::new(),
        },
    };
    // Count only what this start does: warming the caches is not part of it.
    let (l1_before, l2_before) = match &e.source {
        Source::Lazy { l1, l2 } => (Some(l1.stats()), Some(*l2.stats())),
        Source::LocalDisk => (None, None),
    };
    // Group accesses into operations per thread, in trace order.
    let mut threads: BTreeMap<u32, Vec<Op>> = BTreeMap::new();
    let mut last_record = usize::MAX;
    for a in accesses {
        let ops = threads.entry(a.thread).or_default();
        if a.record != last_record || ops.is_empty() {
            ops.push(Op { record: a.record, thread: a.thread, t_us: a.t_us, pages: Vec::new() });
            last_record = a.record;
        }
        ops.last_mut().expect("pushed").pages.push(a.bytes.start / BLOCK_SIZE..a.bytes.end / BLOCK_SIZE);
    }
    if sc.fetch.prefetch_working_set && matches!(e.source, Source::Lazy { .. }) {
        let mut seen = vec![false; table.len()];
        for ops in threads.values() {
            for op in ops {
                for r in &op.pages {
                    for idx in chunk_span(r, table.chunk_size) {
                        if !std::mem::replace(&mut seen[idx as usize], true) {
                            e.ensure(idx, SimTime::ZERO, false);
                        }
                    }
                }
            }
        }
    }
    let mut touched = vec![false; table.len()];
    let mut latencies = Vec::new();
    let mut queue: BinaryHeap<Reverse<(SimTime, u32, usize)>> =
        threads.keys().map(|&t| Reverse((SimTime::ZERO, t, 0))).collect();
    let mut prev_t_us: BTreeMap<u32, u64> = threads.keys().map(|&t| (t, 0)).collect();
    let mut end = SimTime::ZERO;
    while let Some(Reverse((ready, thread, i))) = queue.pop() {
        let op = &threads[&thread][i];
        let gap_us = op.t_us.saturating_sub(prev_t_us[&thread]) as f64 * sc.cpu_scale;
        prev_t_us.insert(thread, op.t_us);
        let start = ready + SimDuration::from_nanos_f64(gap_us * 1000.0);
        let done = e.operation(op, start, &mut touched, &mut latencies);
        end = end.max(done);
        if i + 1 < threads[&thread].len() {
            queue.push(Reverse((done, thread, i + 1)));
        }
    }
    e.out.start_time = end.since_start();
    if let (Source::Lazy { l1, l2 }, Some(b1), Some(b2)) = (&e.source, l1_before, l2_before) {
        e.out.l1 = Some(l1.stats().since(&b1));
        e.out.l2 = Some(l2.stats().since(&b2));
    }
    e.out.chunks_touched = touched.iter().filter(|t| **t).count() as u64;
    latencies.sort();
    if !latencies.is_empty() {
        let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        let fast = latencies.iter().filter(|l| l.as_micros_f64() < 100.0).count();
        e.out.read_latency = Some(Percentiles {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            under_100us: fast as f64 / latencies.len() as f64,
        });
    }
    e.out
}

fn chunk_span(pages: &Range<u64>, chunk_size: u64) -> std::ops::RangeInclusive<u32> {
    let first = pages.start * BLOCK_SIZE / chunk_size;
    let last = (pages.end * BLOCK_SIZE - 1) / chunk_size;
    first as u32..=last as u32
}

impl Engine<'_> {
    /// One operation: page cache, then the device for the pages it misses. Returns when it ends.
    fn operation(
        &mut self,
        op: &Op,
        start: SimTime,
        touched: &mut [bool],
        lat: &mut Vec<SimDuration>,
    ) -> SimTime {
        self.out.operations += 1;
        let ra = self.sc.guest.read_ahead_pages;
        let mut device: Vec<u64> = Vec::new();
        let mut event = ReadEvent {
            record: op.record,
            thread: op.thread,
            start,
            done: start,
            page_cache_hit: false,
            device_pages: 0,
            chunks: Vec::new(),
        };
        for r in &op.pages {
            for p in r.clone() {
                if self.page_cache.contains(&p) {
                    continue;
                }
                // A miss reads the page and, as the guest kernel's read-ahead does, the next ones.
                for q in p..=(p + ra).min(self.table.pages() - 1) {
                    if self.page_cache.insert(q) {
                        device.push(q);
                    }
                }
            }
        }
        if device.is_empty() {
            self.out.page_cache_hits += 1;
            event.page_cache_hit = true;
            self.out.reads.push(event);
            return start;
        }
        event.device_pages = device.len() as u64;
        self.out.device_reads += 1;
        self.out.pages_read += device.len() as u64;
        self.out.bytes_read += device.len() as u64 * BLOCK_SIZE;
        let mut chunks: Vec<u32> =
            device.iter().map(|p| (p * BLOCK_SIZE / self.table.chunk_size) as u32).collect();
        chunks.sort_unstable();
        chunks.dedup();
        let mut done = start;
        let mut slowest = Tier::Hole;
        if let Source::LocalDisk = self.source {
            done = start + self.sc.baseline.local_read.sample(&mut self.rng_local);
            slowest = Tier::LocalDisk;
        } else {
            for idx in chunks {
                touched[idx as usize] = true;
                let (ready, tier, via) = self.ensure(idx, start, true);
                let chunk = self.table.ids[idx as usize].map(|id| id.0);
                event.chunks.push(ChunkRead { index: idx, chunk, tier, via, ready });
                if ready > done || (ready == done && tier > slowest) {
                    done = ready;
                    slowest = tier;
                }
            }
            done += self.sc.latency.agent_overhead.sample(&mut self.rng_agent);
        }
        let waited = done - start;
        self.out.by_tier.entry(slowest).or_default().stall += waited;
        lat.push(waited);
        event.done = done;
        self.out.reads.push(event);
        done
    }

    /// When chunk `idx` is available to a read issued at `now`; fetches it if needed.
    fn ensure(&mut self, idx: u32, now: SimTime, reading: bool) -> (SimTime, Tier, Via) {
        let Some(id) = self.table.ids[idx as usize] else { return (now, Tier::Hole, Via::Hole) };
        let size = self.table.sizes[idx as usize];
        if let Some((at, tier)) = self.resident[id.index()] {
            if at > now {
                return (at, tier, Via::InFlight);
            }
            let hit =
                if reading { self.sc.latency.l1_hit.sample(&mut self.rng_l1) } else { SimDuration::ZERO };
            return (now + hit, Tier::WorkerMemory, Via::Resident);
        }
        let Source::Lazy { l1, l2 } = &mut self.source else { return (now, Tier::LocalDisk, Via::Requested) };
        let bytes = ByteSize(u64::from(size));
        if let Some(found) = l1.get(id, bytes) {
            let (tier, dist) = match found {
                WorkerTier::Memory => (Tier::WorkerMemory, &self.sc.latency.l1_hit),
                WorkerTier::Disk => (Tier::WorkerDisk, &self.sc.l1.disk_hit),
            };
            let hit = dist.sample(&mut self.rng_l1);
            self.resident[id.index()] = Some((now + hit, tier));
            let c = self.out.by_tier.entry(tier).or_default();
            c.chunks += 1;
            c.bytes += bytes.bytes();
            self.out.fetches.push(Fetch {
                issued: now,
                done: now + hit,
                chunk_index: idx,
                chunk: id.0,
                size,
                tier,
            });
            return (now + hit, tier, Via::Requested);
        }
        let mut issued = now;
        if self.in_flight.len() >= self.sc.fetch.concurrency
            && let Some(Reverse(free)) = self.in_flight.pop()
        {
            issued = issued.max(free);
        }
        let lookup = l2.get(id, bytes);
        let redundancy = l2.config().redundancy;
        let (latency, tier) = if lookup.hit {
            let d = stripe_read(
                &self.sc.latency.az_stripe,
                redundancy.stripes(),
                redundancy.needed(),
                &mut self.rng_l2,
            );
            (d, Tier::AzCache)
        } else {
            // The worker fetches from S3 and itself fills the AZ cache (off the read's path).
            l2.put(id, bytes);
            (self.sc.latency.s3_get.sample(&mut self.rng_s3), Tier::S3)
        };
        l1.insert(id, bytes);
        let transfer =
            SimDuration::from_secs_f64(bytes.bytes() as f64 / self.sc.fetch.nic_bandwidth.bytes() as f64);
        let arrived = (issued + latency).max(self.nic_free) + transfer;
        self.nic_free = arrived;
        let done = arrived + self.sc.latency.decrypt_time(bytes.bytes());
        self.in_flight.push(Reverse(done));
        self.resident[id.index()] = Some((done, tier));
        self.out.bytes_fetched += bytes.bytes();
        let c = self.out.by_tier.entry(tier).or_default();
        c.chunks += 1;
        c.bytes += bytes.bytes();
        self.out.fetches.push(Fetch { issued, done, chunk_index: idx, chunk: id.0, size, tier });
        // What-if: read-ahead of the next chunks after a miss.
        if reading {
            for next in idx + 1..=idx.saturating_add(self.sc.fetch.read_ahead_chunks) {
                if (next as usize) < self.table.len() {
                    self.ensure(next, now, false);
                }
            }
        }
        (done, tier, Via::Requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::AzConfig;
    use crate::crypto::{ChunkEntry, ManifestHeader, PlainDigest, Salt};
    use crate::sim::LatencyDist;
    use crate::trace::mapping::Region;

    const CS: u64 = 512 << 10;

    /// An image of `n` chunks; chunk `hole` is all zeros; chunks 4 and 5 hold the same content.
    fn table(n: u32, hole: u32) -> ChunkTable {
        let header = ManifestHeader {
            chunk_size: CS as u32,
            image_size: u64::from(n) * CS,
            salt: Salt::new("t").unwrap(),
            source: String::new(),
        };
        let chunks = (0..n)
            .filter(|&i| i != hole)
            .map(|i| {
                let content = if i == 5 { 4 } else { i } as u8;
                ChunkEntry {
                    index: i,
                    name: ChunkName::from_bytes([content; 32]),
                    plain: PlainDigest::from_bytes([content; 32]),
                }
            })
            .collect();
        ChunkTable::from_manifest(&ManifestPublic { header, chunks })
    }

    fn fixed(us: u64) -> LatencyDist {
        LatencyDist::Fixed(SimDuration::from_micros(us))
    }

    /// Round numbers: L1 10 us, AZ stripe 500 us, S3 36 ms, no agent cost, free decryption,
    /// no guest read-ahead, an effectively infinite NIC.
    fn scenario() -> Scenario {
        let mut sc = Scenario::default();
        sc.latency.l1_hit = fixed(10);
        sc.l1.disk_hit = fixed(50);
        sc.latency.az_stripe = fixed(500);
        sc.latency.s3_get = fixed(36_000);
        sc.latency.agent_overhead = fixed(0);
        sc.latency.decrypt_bytes_per_sec = u64::MAX;
        sc.guest.read_ahead_pages = 0;
        sc.fetch.nic_bandwidth = ByteSize(u64::MAX / 4);
        sc
    }

    /// Equal to within a microsecond (transfer and decryption round to a few ns).
    fn close(a: SimDuration, b: SimDuration) -> bool {
        a.as_nanos().abs_diff(b.as_nanos()) < 1_000
    }

    fn read(t_us: u64, thread: u32, record: usize, bytes: Range<u64>) -> MappedAccess {
        MappedAccess { t_us, thread, region: Region::Data, bytes, record }
    }

    fn lazy(t: &ChunkTable, sc: &Scenario, l1_warm: bool, l2_warm: bool) -> Source {
        let mut l1 =
            WorkerCache::new(sc.l1.policy, sc.l1.memory_capacity, sc.l1.disk_capacity, ByteSize(CS), sc.seed);
        let mut l2 = AzCache::new(AzConfig::new(ByteSize::gib(1), sc.seed));
        for (id, size) in t.stored() {
            if l1_warm {
                l1.insert(id, size);
            }
            if l2_warm {
                l2.put(id, size);
            }
        }
        Source::Lazy { l1: Box::new(l1), l2: Box::new(l2) }
    }

    #[test]
    fn cold_warm_and_page_cache() {
        let t = table(8, 7);
        let sc = scenario();
        let trace = [read(0, 0, 0, 0..4096), read(0, 0, 1, 0..4096), read(0, 0, 2, CS..CS + 4096)];
        let s3 = replay(&trace, &t, &sc, lazy(&t, &sc, false, false));
        let az = replay(&trace, &t, &sc, lazy(&t, &sc, false, true));
        let l1 = replay(&trace, &t, &sc, lazy(&t, &sc, true, true));
        assert!(close(s3.start_time, SimDuration::from_micros(72_000)), "{}", s3.start_time);
        assert!(close(az.start_time, SimDuration::from_micros(1_000)), "{}", az.start_time);
        assert!(close(l1.start_time, SimDuration::from_micros(20)), "{}", l1.start_time);
        // The second read of the same page never reaches the device.
        assert_eq!(s3.page_cache_hits, 1);
        assert_eq!(s3.device_reads, 2);
        assert_eq!(s3.by_tier[&Tier::S3].chunks, 2);
    }

    #[test]
    fn older_chunks_come_from_the_worker_disk() {
        let t = table(8, 7);
        let mut sc = scenario();
        sc.l1.memory_capacity = ByteSize(CS);
        // Warmed in index order: memory keeps the last chunk, disk the rest.
        let r = replay(&[read(0, 0, 0, 0..4096)], &t, &sc, lazy(&t, &sc, true, false));
        assert_eq!(r.by_tier[&Tier::WorkerDisk].chunks, 1);
        assert!(close(r.start_time, SimDuration::from_micros(50)), "{}", r.start_time);
        // The chunk stream carries worker-cache hits too: it is the stream L1 saw.
        assert_eq!(r.fetches.len(), 1);
        assert_eq!(r.fetches[0].tier, Tier::WorkerDisk);
        let r = replay(&[read(0, 0, 0, 6 * CS..6 * CS + 4096)], &t, &sc, lazy(&t, &sc, true, false));
        assert_eq!(r.by_tier[&Tier::WorkerMemory].chunks, 1);
        assert!(close(r.start_time, SimDuration::from_micros(10)), "{}", r.start_time);
    }

    #[test]
    fn a_chunk_in_flight_is_waited_for_not_fetched_twice() {
        let t = table(8, 7);
        let sc = scenario();
        // Two threads read different pages of chunk 3 at once; chunks 4 and 5 share content.
        let trace = [
            read(0, 0, 0, 3 * CS..3 * CS + 4096),
            read(0, 1, 1, 3 * CS + 8192..3 * CS + 12288),
            read(10, 0, 2, 4 * CS..4 * CS + 4096),
            read(10, 1, 3, 5 * CS..5 * CS + 4096),
        ];
        let r = replay(&trace, &t, &sc, lazy(&t, &sc, false, false));
        assert_eq!(r.fetches.len(), 2, "chunk 3 once, and chunks 4/5 (same content) once: {:?}", r.fetches);
        // The per-read events say who fetched and who waited.
        let via: Vec<_> = r.reads.iter().map(|e| (e.record, e.thread, e.chunks[0].via)).collect();
        assert_eq!(
            via,
            [(0, 0, Via::Requested), (1, 1, Via::InFlight), (2, 0, Via::Requested), (3, 1, Via::InFlight)]
        );
        assert_eq!(r.reads[1].chunks[0].tier, Tier::S3);
        assert_eq!(r.reads[3].chunks[0].chunk, r.reads[2].chunks[0].chunk, "same content, same id");
        assert!(close(r.reads[0].latency(), SimDuration::from_micros(36_000)));
        assert!(close(r.start_time, SimDuration::from_micros(72_010)), "{}", r.start_time);
    }

    #[test]
    fn holes_cost_nothing_and_concurrency_limits_prefetch() {
        let t = table(8, 7);
        let mut sc = scenario();
        let hole = [read(0, 0, 0, 7 * CS..7 * CS + 4096)];
        let r = replay(&hole, &t, &sc, lazy(&t, &sc, false, false));
        assert!(r.fetches.is_empty());
        assert_eq!(r.start_time, SimDuration::ZERO);

        sc.fetch.prefetch_working_set = true;
        sc.fetch.concurrency = 1;
        let trace: Vec<_> = (0..4).map(|i| read(0, 0, i as usize, i * CS..i * CS + 4096)).collect();
        let r = replay(&trace, &t, &sc, lazy(&t, &sc, false, false));
        assert_eq!(r.fetches.len(), 4);
        for w in r.fetches.windows(2) {
            assert!(w[1].issued >= w[0].done, "one fetch at a time: {:?}", r.fetches);
        }
        assert!(close(r.start_time, SimDuration::from_micros(4 * 36_000)), "{}", r.start_time);
    }

    #[test]
    fn cpu_gaps_scale_and_runs_are_deterministic() {
        let t = table(8, 7);
        let mut sc = Scenario { seed: 7, ..Scenario::default() };
        let trace = [
            read(0, 0, 0, 0..4096),
            read(1_000_000, 0, 1, 2 * CS..2 * CS + 8192),
            read(1_000_500, 1, 2, CS..CS + 4096),
        ];
        let a = replay(&trace, &t, &sc, lazy(&t, &sc, false, true));
        let b = replay(&trace, &t, &sc, lazy(&t, &sc, false, true));
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        assert!(a.start_time > SimDuration::from_secs(1), "keeps the trace's 1 s of CPU time");
        sc.cpu_scale = 0.0;
        let c = replay(&trace, &t, &sc, lazy(&t, &sc, false, true));
        assert!(c.start_time < SimDuration::from_millis(50), "{}", c.start_time);
        sc.seed = 8;
        let d = replay(&trace, &t, &sc, lazy(&t, &sc, false, true));
        assert_ne!(
            serde_json::to_string(&c).unwrap(),
            serde_json::to_string(&d).unwrap(),
            "another seed, other draws"
        );
    }
}
