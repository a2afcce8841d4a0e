//! One sandbox start, replayed in simulated time: the trace's threads issue their accesses in
//! order, keeping the CPU gaps between them (scaled); an access first meets the guest page cache
//! (a page comes from the device once per start, with read-ahead); device reads go through the
//! agent to the worker cache (L1), the AZ cache (L2, k-of-n stripes) and S3, chunk by chunk. A read
//! blocks its thread until every chunk it needs is present; a chunk already being fetched is
//! waited for, not fetched twice. Everything here is dense chunk ids, sizes and simulated time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;

use rand_chacha::ChaCha8Rng;

use super::result::{ChunkRead, Fetch, Percentiles, ReadEvent, ReplayResult, Via};
use super::scenario::Scenario;
use super::start::CacheState;
use crate::cache::ChunkId;
use crate::sim::rng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{AzCache, ChunkTable, S3, Tier, WorkerCache, az_read, worker_hit};
use crate::trace::MappedAccess;
use crate::units::{BLOCK_SIZE, ByteSize};

/// Where the bytes come from: the lazy-loading hierarchy, or a local disk (the baselines).
pub enum Source {
    Lazy { l1: Box<WorkerCache>, l2: Box<AzCache>, s3: Box<S3> },
    LocalDisk,
}

impl Source {
    /// Lazy loading through `sc`'s caches in the states `l1` and `l2` before the start;
    /// `in_store` says which of the image's chunks the store's other images hold too (for
    /// [`CacheState::Store`]).
    pub fn before_start(
        sc: &Scenario,
        table: &ChunkTable,
        l1: CacheState,
        l2: CacheState,
        in_store: impl Fn(ChunkId) -> bool,
    ) -> Source {
        Source::lazy_prefilled(sc, table, |id| l1.holds(id, &in_store), |id| l2.holds(id, &in_store))
    }

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
            rng::seed_for(sc.seed, "worker-cache"),
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
        Source::Lazy { l1: Box::new(l1), l2: Box::new(l2), s3: Box::new(S3::unlimited(sc.latency.s3_get)) }
    }
}

/// One trace record's accesses, ready to replay.
struct Op {
    record: usize,
    thread: u32,
    t_us: u64,
    /// When the recording answered it, if the trace says; else the next gap counts from `t_us`.
    done_us: Option<u64>,
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

/// Replays `accesses` (a mapped trace) against `source`.
pub fn replay(accesses: &[MappedAccess], table: &ChunkTable, sc: &Scenario, source: Source) -> ReplayResult {
    let seed = sc.seed;
    let mut e = Engine {
        sc,
        table,
        source,
        rng_agent: rng::stream(seed, "replay.agent"),
        rng_l1: rng::stream(seed, "replay.worker-cache"),
        rng_l2: rng::stream(seed, "replay.az-cache"),
        rng_s3: rng::stream(seed, "replay.s3"),
        rng_local: rng::stream(seed, "replay.local-disk"),
        page_cache: Default::default(),
        resident: vec![None; table.distinct()],
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
        Source::Lazy { l1, l2, .. } => (Some(l1.stats()), Some(*l2.stats())),
        Source::LocalDisk => (None, None),
    };
    // Group accesses into operations per thread, in trace order.
    let mut threads: BTreeMap<u32, Vec<Op>> = BTreeMap::new();
    let mut last_record = usize::MAX;
    for a in accesses {
        let ops = threads.entry(a.thread).or_default();
        if a.record != last_record || ops.is_empty() {
            ops.push(Op {
                record: a.record,
                thread: a.thread,
                t_us: a.t_us,
                done_us: a.done_us,
                pages: Vec::new(),
            });
            last_record = a.record;
        }
        ops.last_mut().expect("pushed").pages.push(a.bytes.start / BLOCK_SIZE..a.bytes.end / BLOCK_SIZE);
    }
    if sc.fetch.prefetch_working_set && matches!(e.source, Source::Lazy { .. }) {
        let mut seen = vec![false; table.len()];
        for ops in threads.values() {
            for op in ops {
                for r in &op.pages {
                    for idx in chunk_span(r, table.chunk_size()) {
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
    // A thread's CPU (think) time before an operation: the gap since its previous operation ended
    // in the recording. A trace with answer times (FUSE, version 3) says when that was; without
    // them the previous request's start stands in, so the recording's service time counts too.
    let mut prev_end_us: BTreeMap<u32, u64> = threads.keys().map(|&t| (t, 0)).collect();
    let mut end = SimTime::ZERO;
    while let Some(Reverse((ready, thread, i))) = queue.pop() {
        let op = &threads[&thread][i];
        let gap_us = op.t_us.saturating_sub(prev_end_us[&thread]) as f64 * sc.cpu_scale;
        prev_end_us.insert(thread, op.done_us.unwrap_or(op.t_us).max(op.t_us));
        let start = ready + SimDuration::from_nanos_f64(gap_us * 1000.0);
        let done = e.operation(op, start, &mut touched, &mut latencies);
        end = end.max(done);
        if i + 1 < threads[&thread].len() {
            queue.push(Reverse((done, thread, i + 1)));
        }
    }
    e.out.start_time = end.since_start();
    if let (Source::Lazy { l1, l2, .. }, Some(b1), Some(b2)) = (&e.source, l1_before, l2_before) {
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
            device.iter().map(|p| (p * BLOCK_SIZE / self.table.chunk_size()) as u32).collect();
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
                let chunk = self.table.id(idx).map(|id| id.0);
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
        let Some(id) = self.table.id(idx) else { return (now, Tier::Hole, Via::Hole) };
        let size = self.table.size(idx);
        if let Some((at, tier)) = self.resident[id.index()] {
            if at > now {
                return (at, tier, Via::InFlight);
            }
            let hit =
                if reading { self.sc.latency.l1_hit.sample(&mut self.rng_l1) } else { SimDuration::ZERO };
            return (now + hit, Tier::WorkerMemory, Via::Resident);
        }
        let Source::Lazy { l1, l2, s3 } = &mut self.source else {
            return (now, Tier::LocalDisk, Via::Requested);
        };
        let bytes = ByteSize(u64::from(size));
        if let Some(tier) = l1.get(id, bytes) {
            let hit = worker_hit(tier, &self.sc.latency.l1_hit, &self.sc.l1.disk_hit, &mut self.rng_l1);
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
            // A degraded read (a stripe evicted or on a lost node) waits for the k-th fastest of
            // the stripes present, as in the fleet.
            let read =
                az_read(&self.sc.latency.az_stripe, redundancy, lookup.stripes_present, &mut self.rng_l2);
            (read.latency, Tier::AzCache)
        } else {
            // The worker fetches from S3 and itself fills the AZ cache (off the read's path).
            l2.put(id, bytes);
            (s3.get(now, false, &mut self.rng_s3).latency, Tier::S3)
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
    use crate::sim::{AzConfig, LatencyDist};
    use crate::trace::Region;

    const CS: u64 = 512 << 10;

    /// An image of `n` chunks; chunk `hole` is all zeros; chunks 4 and 5 hold the same content.
    fn table(n: u32, hole: u32) -> ChunkTable {
        let stored = (0..n).filter(|&i| i != hole).map(|i| (i, if i == 5 { 4 } else { i }));
        ChunkTable::new(CS, u64::from(n) * CS, vec![CS as u32; n as usize], stored)
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
        MappedAccess { t_us, done_us: None, thread, region: Region::Data, bytes, record }
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
        Source::Lazy { l1: Box::new(l1), l2: Box::new(l2), s3: Box::new(S3::unlimited(sc.latency.s3_get)) }
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
    fn answer_times_leave_the_recording_mounts_service_time_out_of_the_gaps() {
        let t = table(8, 7);
        let sc = scenario();
        // Recorded: a read arrives at 0 and is answered at 900 us (the recording mount fetched
        // it); the program thinks 100 us and asks again at 1000 us.
        let mut trace = [read(0, 0, 0, 0..4096), read(1_000, 0, 1, CS..CS + 4096)];
        let warm = |trace: &[MappedAccess]| replay(trace, &t, &sc, lazy(&t, &sc, true, true)).start_time;
        // Without answer times the whole 1000 us counts as think time: 10 + 1000 + 10.
        assert!(close(warm(&trace), SimDuration::from_micros(1_020)), "{}", warm(&trace));
        // With them only the 100 us after the answer does: 10 + 100 + 10.
        trace[0].done_us = Some(900);
        trace[1].done_us = Some(1_200);
        assert!(close(warm(&trace), SimDuration::from_micros(120)), "{}", warm(&trace));
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
