//! The cache side of the fleet: every cold start's chunk reads through its worker's cache (L1),
//! the AZ cache (L2) and S3, in start-time order; during the measured window, handed over to
//! [`pricing`](super::pricing) with what each read hit.
//!
//! Cache state and timing are kept apart, so that the warm-up can run as a cache-only pass that
//! leaves exactly the caches a fully priced warm-up would. A start's cache operations happen in
//! its read order at *cache times* that advance only by the S3 GETs it makes (one lane per
//! outstanding read; the S3 draws come from their own stream, drawn in both passes), so the AZ
//! cache's state never depends on a latency draw: an S3 miss is written into the AZ cache when its
//! GET lands, and starts that miss the same chunk meanwhile go to S3 too. In the measured window
//! each read is then priced over the start's read lanes (by [`Pricer`](super::pricing::Pricer),
//! on a thread of its own): a worker-cache hit (memory or disk), a wait for a fetch another start
//! on the same worker has in flight, an AZ-cache read (the k-th fastest of the stripes present,
//! from node memory or flash), or the S3 GET (throttled beyond `s3.max_requests_per_second`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::failure::{self, FailureRecord, TimedAction};
use super::histogram::LogHistogram;
use super::population::{NO_VERSION, Population, news};
use super::pricing::{Priced, PricedMeasured, PricedStart, ReadOutcome, Served};
use super::scenario::FleetScenario;
use super::workload::{ColdStart, L1Outcome, TickBatch};
use crate::cache::reuse::{HASH_MODULUS, ReuseConfig, ReuseSampler, sample_hash};
use crate::cache::{ChunkId, belady};
use crate::sim::rng::stream;
use crate::sim::s3::S3Get;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{AzCache, S3, Tier};
use crate::units::ByteSize;

/// How many worker-cache misses ahead a start loads the AZ nodes' records.
const AZ_PREFETCH_AHEAD: usize = 3;

/// Why an S3 read happened (the per-minute cause columns, in this order).
pub const S3_CAUSES: [&str; 9] = [
    "new function",
    "code change",
    "model change",
    "dependency change",
    "base/runtime update",
    "salt rotation",
    "never read since the simulation began",
    "evicted or lost earlier",
    "real image",
];

/// Per-minute counters of the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MinuteRow {
    pub minute: u32,
    pub cold_starts: u64,
    /// Cold starts in the first minute of their version.
    pub fresh_starts: u64,
    pub l1_memory: u64,
    pub l1_disk: u64,
    /// Worker-cache hits that waited for a fetch another start on the worker had in flight.
    pub l1_joined: u64,
    pub l2_hits: u64,
    pub s3_reads: u64,
    pub s3_bytes: u64,
    /// S3 reads by cause, in [`S3_CAUSES`] order.
    pub s3_causes: [u64; S3_CAUSES.len()],
    /// Sum of cold-start durations, ns (mean = sum / cold_starts).
    pub cold_start_ns: u64,
    pub live_sandboxes: u64,
    pub cron_runs: u64,
    pub functions_created: u64,
    pub updates: u64,
}

impl MinuteRow {
    pub fn l2_hit_rate(&self) -> Option<f64> {
        let req = self.l2_hits + self.s3_reads;
        (req > 0).then(|| self.l2_hits as f64 / req as f64)
    }
}

/// The headline shares over one interval of the warm-up (or of the window), for the drift check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Interval {
    /// Simulated seconds since the start of the run at the interval's end.
    pub end_s: f64,
    pub reads: u64,
    pub l1: u64,
    pub l2_hits: u64,
    pub s3: u64,
    /// Bytes the AZ cache holds at the end, and pieces it evicted during the interval.
    pub l2_used_bytes: u64,
    pub l2_evictions: u64,
}

impl Interval {
    pub fn l1_share(&self) -> f64 {
        crate::stats::share(self.l1, self.reads)
    }
    pub fn s3_share(&self) -> f64 {
        crate::stats::share(self.s3, self.reads)
    }
    pub fn az_hit_rate(&self) -> f64 {
        crate::stats::share(self.l2_hits, self.l2_hits + self.s3)
    }
}

/// One AZ-cache request of the sample the policy what-if replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledRead {
    /// The chunk (the policy what-if renumbers the sample's chunks densely, in place).
    pub chunk: u32,
    /// Its place in the start's reads (from 0): how many S3 GETs can be ahead of it on the
    /// start's lanes.
    pub read: u32,
    /// When the start began.
    pub start_ns: u64,
}

/// Everything the engine measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub minutes: Vec<MinuteRow>,
    /// Every read's and start's latency (the window's), from [`Pricer`](super::pricing::Pricer).
    pub latency: PricedMeasured,
    pub degraded_hits: u64,
    /// Degraded reads that wrote their missing stripes back (`l2_read_repair`).
    pub repairs: u64,
    /// AZ-cache stripe reads served from node memory, and all stripe reads (window).
    pub l2_memory_stripes: u64,
    pub l2_stripes: u64,
    /// Belady's hit rate on the window's AZ-cache requests (`l2_belady`).
    pub l2_belady_hit_rate: Option<f64>,
    pub failures: Vec<FailureRecord>,
    pub throttle_wait: LogHistogram,
    pub l2_stored_bytes: u64,
    pub l2_used_bytes: u64,
    pub l2_evictions: u64,
    /// The AZ cache's request stream, sampled (from one check interval before the shortest
    /// warm-up's end to the end of the window): its reuse sizes the cache.
    pub l2_reuse: Option<ReuseSampler>,
    /// AZ-cache requests and cold starts in the window (for the cost per cold start).
    pub l2_requests: u64,
    /// The AZ cache's requests from the start of the run, hash-sampled by chunk at
    /// `sizing.sample_rate`, in order (the policy what-if replays them).
    pub l2_sample: Vec<SampledRead>,
    /// The warm-up's check intervals, in order, then the window's hours.
    pub warmup_intervals: Vec<Interval>,
    /// Simulated time before the window, and whether the drift check found a steady state.
    pub warmup: SimDuration,
    pub steady: bool,
}

impl Measured {
    /// Under `sampling.one_in` = `n`: every count of simulated reads, and the bytes the AZ cache
    /// holds, times `n`, estimates for all of them (shares and rates are unchanged). Pricing's and
    /// the throttle's counts are whole already: each sampled read was priced `n` times.
    fn scale_up(&mut self, n: u32) {
        let n = u64::from(n);
        if n == 1 {
            return;
        }
        for row in &mut self.minutes {
            for c in
                [&mut row.l1_memory, &mut row.l1_disk, &mut row.l2_hits, &mut row.s3_reads, &mut row.s3_bytes]
            {
                *c *= n;
            }
            row.s3_causes.iter_mut().for_each(|c| *c *= n);
        }
        for i in &mut self.warmup_intervals {
            for c in [
                &mut i.reads,
                &mut i.l1,
                &mut i.l2_hits,
                &mut i.s3,
                &mut i.l2_used_bytes,
                &mut i.l2_evictions,
            ] {
                *c *= n;
            }
        }
        for f in &mut self.failures {
            f.l2_chunks_before *= n;
            f.l2_chunks_after *= n;
        }
        for c in [
            &mut self.degraded_hits,
            &mut self.repairs,
            &mut self.l2_memory_stripes,
            &mut self.l2_stripes,
            &mut self.l2_stored_bytes,
            &mut self.l2_used_bytes,
            &mut self.l2_evictions,
            &mut self.l2_requests,
        ] {
            *c *= n;
        }
    }

    /// Takes in what pricing measured.
    pub fn absorb(&mut self, mut p: PricedMeasured) {
        let (joined, ns) = (std::mem::take(&mut p.joined), std::mem::take(&mut p.cold_start_ns));
        for (row, (joined, ns)) in self.minutes.iter_mut().zip(joined.into_iter().zip(ns)) {
            row.l1_joined = joined;
            row.cold_start_ns = ns;
        }
        self.latency = p;
    }
}

/// What the engine tells the workload at the end of a check interval of the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    KeepWarming,
    /// The window starts now.
    Measure,
}

pub struct Engine<'a> {
    sc: &'a FleetScenario,
    pop: &'a Population,
    l2: AzCache,
    /// `(time ns, chunk)` of AZ-cache writes not landed yet.
    pending: BinaryHeap<Reverse<(u64, u32)>>,
    s3: S3,
    /// S3 draws (both passes: they set when a miss is written into the AZ cache).
    s3_rng: ChaCha8Rng,
    actions: Vec<TimedAction>,
    next_action: usize,
    window_start: Option<SimTime>,
    chunk: ByteSize,
    /// What this batch's priced starts read, for [`Pricer`](super::pricing::Pricer).
    priced: Priced,
    /// Per chunk id: ever written into the AZ cache (a later miss is a capacity miss).
    ever_l2: Vec<bool>,
    /// Every AZ-cache request, for Belady's bound (`l2_belady` only), and how many came before
    /// the window.
    l2_requests: Vec<ChunkId>,
    l2_warmup_requests: usize,
    /// The interval being counted and the one before it.
    current: Interval,
    previous: Option<Interval>,
    evictions_before: u64,
    /// Price the warm-up's reads too (only to test that the cache-only warm-up leaves the same
    /// caches); its draws never reach the window's, which starts its latency stream afresh.
    price_warmup: bool,
    /// From this time on, AZ-cache requests go to `l2_reuse`.
    reuse_from: u64,
    l2_reuse: ReuseSampler,
    /// `l2_sample`'s hash seed and threshold (of [`sample_hash`]).
    sample_seed: u64,
    sample_below: u32,
    /// `sampling.one_in`: the reads each simulated read stands for.
    one_in: u32,
    pub measured: Measured,
}

/// The sampler of one request stream, as the scenario's `sizing` says, of a simulated stream that
/// is itself one chunk id in `one_in` (`sampling.one_in`): its estimates are of the whole stream.
pub fn reuse_sampler(rate: f64, one_in: u32, seed: u64, stream_name: &str) -> ReuseSampler {
    let config = ReuseConfig {
        rate,
        seed: crate::sim::rng::seed_for(seed, stream_name),
        max_tracked: None,
        keep_min_stream: true,
    };
    ReuseSampler::new(config).expect("sizing's sample rates validated in (0, 1]").of_sampled_stream(one_in)
}

/// The share of the simulated AZ-cache requests the policy what-if's sample holds: `one_in` times
/// `sizing.sample_rate` (at most all of them), so that it holds that rate's share of all chunks.
pub fn l2_sample_share(sc: &FleetScenario) -> f64 {
    (sc.sizing.sample_rate * f64::from(sc.sampling.one_in.max(1))).min(1.0)
}

/// When reuse sampling starts: one check interval before the shortest warm-up ends.
pub fn reuse_from(sc: &FleetScenario) -> SimTime {
    SimTime::ZERO + sc.warmup.saturating_sub(sc.steady.check)
}

impl<'a> Engine<'a> {
    pub fn new(sc: &'a FleetScenario, pop: &'a Population, seed: u64) -> Self {
        let chunk = sc.chunk_size;
        let one_in = sc.sampling.one_in.max(1);
        let mut az = sc.l2.az_config(seed);
        az.typical_chunk = chunk;
        Engine {
            sc,
            pop,
            l2: AzCache::new(az),
            pending: BinaryHeap::new(),
            s3: S3::limited(sc.latency.s3_get, sc.s3.max_requests_per_second),
            s3_rng: stream(seed, "s3"),
            actions: Vec::new(),
            next_action: 0,
            window_start: None,
            chunk,
            priced: Priced::default(),
            ever_l2: Vec::new(),
            l2_requests: Vec::new(),
            l2_warmup_requests: 0,
            current: Interval::default(),
            previous: None,
            evictions_before: 0,
            price_warmup: false,
            reuse_from: reuse_from(sc).as_nanos(),
            l2_reuse: reuse_sampler(sc.sizing.sample_rate, one_in, seed, "reuse.l2"),
            sample_seed: crate::sim::rng::seed_for(seed, "sample.l2"),
            sample_below: (l2_sample_share(sc) * HASH_MODULUS as f64).round() as u32,
            one_in,
            measured: Measured::default(),
        }
    }

    /// Prices the warm-up's reads as well (slower; the caches and the window are the same).
    pub fn price_warmup(mut self) -> Self {
        self.price_warmup = true;
        self
    }

    /// The window starts at `at`: failures are scheduled from it, and minutes count from it.
    fn open_window(&mut self, at: SimTime) {
        self.window_start = Some(at);
        self.actions = failure::schedule(self.sc, at);
        let minutes = (self.sc.duration.as_secs_f64() / 60.0).ceil() as u32;
        self.measured.minutes =
            (0..minutes).map(|m| MinuteRow { minute: m, ..MinuteRow::default() }).collect();
        self.measured.warmup = at.saturating_duration_since(SimTime::ZERO);
        self.l2_warmup_requests = self.l2_requests.len();
    }

    /// Starts the window at time zero (no warm-up at all).
    pub fn start_window_now(&mut self) {
        self.open_window(SimTime::ZERO);
        self.measured.steady = false;
    }

    /// One tick's starts, with the worker-cache outcome of every read (see [`WorkerCaches`](super::worker::WorkerCaches)).
    /// In the window (or a priced warm-up), what the starts read, for pricing.
    pub fn batch(&mut self, batch: &TickBatch) -> Option<Priced> {
        let memory = self.window_start.is_some() || self.memory_due(batch.tick);
        self.l2.track_memory(memory);
        let mut at = 0;
        for s in &batch.starts {
            let n = self.pop.working_set(s.version).len();
            self.start(s, &batch.l1[at..at + n]);
            at += n;
        }
        let end = SimTime::from_nanos((batch.tick + 1) * self.sc.tick.as_nanos());
        if let Some(m) = self.minute(end.as_nanos() - 1) {
            let row = &mut self.measured.minutes[m];
            row.live_sandboxes = batch.live_sandboxes;
            row.cron_runs += batch.cron_runs;
        }
        if self.window_start.is_none() && !self.price_warmup {
            return None;
        }
        let mut priced = std::mem::take(&mut self.priced);
        priced.end_ns = end.as_nanos();
        priced.window_start_ns = self.window_start.map(SimTime::as_nanos);
        self.priced.starts = Vec::with_capacity(priced.starts.len());
        self.priced.reads = Vec::with_capacity(priced.reads.len());
        Some(priced)
    }

    /// The end of a check interval of the warm-up, at `end`: whether the figures have stopped
    /// drifting (or the warm-up is as long as it may be).
    pub fn check(&mut self, end: SimTime) -> Verdict {
        let evictions = self.l2_evictions();
        let mut interval = self.current;
        interval.end_s = end.as_nanos() as f64 / 1e9;
        interval.l2_used_bytes = self.l2.all_node_stats().iter().map(|n| n.used.bytes()).sum();
        interval.l2_evictions = evictions - self.evictions_before;
        self.evictions_before = evictions;
        self.measured.warmup_intervals.push(interval);
        self.current = Interval::default();
        let st = &self.sc.steady;
        let elapsed = end.saturating_duration_since(SimTime::ZERO);
        let steady = elapsed >= self.sc.warmup
            && self.previous.is_some_and(|p| {
                (interval.l1_share() - p.l1_share()).abs() <= st.l1_share_drift
                    && (interval.az_hit_rate() - p.az_hit_rate()).abs() <= st.az_hit_rate_drift
                    && (interval.s3_share() - p.s3_share()).abs() <= st.s3_share_drift
            });
        self.previous = Some(interval);
        if steady || elapsed >= st.max_warmup {
            self.measured.steady = steady;
            self.open_window(end);
            Verdict::Measure
        } else {
            Verdict::KeepWarming
        }
    }

    /// Whether tick `tick` of the warm-up is within `steady.az_memory_lead` of the next check point
    /// (where the window may start), so the AZ nodes' memory tiers are simulated.
    fn memory_due(&self, tick: u64) -> bool {
        let sc = self.sc;
        let (min, check, max) =
            (sc.ticks_in(sc.warmup), sc.ticks_in(sc.steady.check), sc.ticks_in(sc.steady.max_warmup));
        let end = tick + 1;
        let next = if end <= min { min } else { min + (end - min).div_ceil(check.max(1)) * check };
        let lead = next.min(max).saturating_sub(tick).saturating_mul(sc.tick.as_nanos());
        lead <= sc.steady.az_memory_lead.as_nanos()
    }

    fn l2_evictions(&self) -> u64 {
        self.l2.all_node_stats().iter().map(|n| n.evictions).sum()
    }

    pub fn finish(mut self) -> Measured {
        let stats = self.l2.stats();
        self.measured.l2_stored_bytes = stats.stored_bytes.bytes();
        self.measured.l2_used_bytes = self.l2.all_node_stats().iter().map(|n| n.used.bytes()).sum();
        self.measured.l2_evictions = self.l2_evictions();
        self.measured.l2_reuse = Some(self.l2_reuse);
        self.measured.scale_up(self.one_in);
        if self.sc.l2_belady {
            // One cache of the cluster's whole capacity, in chunks (parity overhead excluded).
            let c = self.l2.config();
            let piece = c.redundancy.stripe_size(self.chunk).bytes() * c.redundancy.stripes() as u64;
            let entries = (c.node_capacity.bytes() * c.nodes as u64 / piece.max(1)) as usize;
            // MIN over warm-up and window, counted over the window only, as the cache is.
            let b = belady(&self.l2_requests, entries);
            let window = &b.hit[self.l2_warmup_requests.min(b.hit.len())..];
            let hits = window.iter().filter(|&&h| h).count();
            self.measured.l2_belady_hit_rate =
                Some(if window.is_empty() { 0.0 } else { hits as f64 / window.len() as f64 });
        }
        self.measured
    }

    fn minute(&self, ns: u64) -> Option<usize> {
        let since = ns.checked_sub(self.window_start?.as_nanos())?;
        let m = (since / 60_000_000_000) as usize;
        (m < self.measured.minutes.len()).then_some(m)
    }

    fn catch_up(&mut self, now: SimTime) {
        while let Some(a) = self.actions.get(self.next_action).copied() {
            if a.at > now {
                break;
            }
            self.next_action += 1;
            let start = self.window_start.unwrap_or(SimTime::ZERO);
            let at_s = a.at.saturating_duration_since(start).as_secs_f64();
            let rec = failure::apply(&mut self.l2, a.action, self.pop.readable_chunks(), at_s);
            // Worker caches are the workload stage's: it empties them at the same time.
            self.measured.failures.push(rec);
        }
        while let Some(&Reverse((t, c))) = self.pending.peek() {
            if t > now.as_nanos() {
                break;
            }
            self.pending.pop();
            self.l2.put(ChunkId(c), self.chunk);
            if self.ever_l2.len() <= c as usize {
                self.ever_l2.resize(c as usize + 1, false);
            }
            self.ever_l2[c as usize] = true;
        }
    }

    /// Why an S3 read of `chunk` happened.
    fn s3_cause(&self, chunk: u32) -> usize {
        if self.ever_l2.get(chunk as usize).copied().unwrap_or(false) {
            return 7;
        }
        let v = self.pop.origin(chunk);
        if v == NO_VERSION {
            return 8;
        }
        let v = &self.pop.versions[v as usize];
        if v.created == SimTime::ZERO {
            return 6;
        }
        let n = v.news;
        if n & news::NEW_FUNCTION != 0 {
            0
        } else if n & news::SALT != 0 {
            5
        } else if n & news::LAYER_UPDATE != 0 {
            4
        } else if n & news::MODEL != 0 {
            2
        } else if n & news::DEPS != 0 && n & news::CODE == 0 {
            3
        } else {
            1
        }
    }

    fn start(&mut self, s: &ColdStart, l1: &[L1Outcome]) {
        self.catch_up(s.time);
        let minute = self.minute(s.time.as_nanos());
        let record = minute.is_some();
        let priced = record || self.price_warmup;
        let lanes_n = self.sc.start.read_parallelism;
        let t0 = s.time.as_nanos();
        // Cache time per lane: advances by S3 GETs only.
        let mut cache_lanes = [t0; 64];
        let (mut l1m, mut l1d, mut l2h, mut s3r) = (0u64, 0u64, 0u64, 0u64);
        let mut causes = [0u64; S3_CAUSES.len()];
        let redundancy = self.l2.config().redundancy;
        let throttled = self.window_start.is_some();
        let ws = self.pop.working_set(s.version);
        let reads_before = self.priced.reads.len();
        if priced {
            self.priced.starts.push(PricedStart {
                time_ns: t0,
                worker: s.worker,
                version: s.version,
                function: s.function,
                fresh: s.fresh,
                minute: minute.map(|m| m as u32),
                reads: 0,
            });
        }
        // The AZ cache's state for the start's worker-cache misses is mostly not in the CPU's
        // caches: load every miss's placement row now, and each miss's node records a few misses
        // ahead, so the loads overlap instead of queueing behind each lookup.
        let mut misses = [0u32; 256];
        let mut n_misses = 0;
        for (&c, &outcome) in ws.iter().zip(l1) {
            if outcome == L1Outcome::Miss && n_misses < misses.len() {
                self.l2.prefetch_placement(ChunkId(c));
                misses[n_misses] = c;
                n_misses += 1;
            }
        }
        for &c in &misses[..n_misses.min(AZ_PREFETCH_AHEAD)] {
            self.l2.prefetch(ChunkId(c));
        }
        let mut next_miss = AZ_PREFETCH_AHEAD;
        for (i, (&c, &outcome)) in ws.iter().zip(l1).enumerate() {
            let ci = (0..lanes_n).min_by_key(|&k| cache_lanes[k]).expect("at least one lane");
            match outcome {
                L1Outcome::Hit { tier, recent } => {
                    if tier == Tier::WorkerDisk {
                        l1d += 1;
                    } else {
                        l1m += 1;
                    }
                    if priced {
                        self.priced
                            .reads
                            .push(ReadOutcome { chunk: c, served: Served::Worker { tier, recent } });
                    }
                }
                L1Outcome::Miss => {
                    if next_miss < n_misses {
                        self.l2.prefetch(ChunkId(misses[next_miss]));
                        next_miss += 1;
                    }
                    if t0 >= self.reuse_from {
                        self.l2_reuse.record(t0, c, self.chunk.bytes() as u32);
                    }
                    if sample_hash(c, self.sample_seed) < self.sample_below {
                        // Its place among all the start's reads, sampled or not.
                        let read = i as u32 * self.one_in;
                        self.measured.l2_sample.push(SampledRead { chunk: c, read, start_ns: t0 });
                    }
                    if record {
                        self.measured.l2_requests += 1;
                    }
                    if self.sc.l2_belady {
                        self.l2_requests.push(ChunkId(c));
                    }
                    let look = self.l2.get(ChunkId(c), self.chunk);
                    if look.hit {
                        if look.stripes_present < redundancy.stripes() && self.sc.l2_read_repair {
                            // The reader decoded the chunk: it writes the missing stripes back.
                            self.l2.put(ChunkId(c), self.chunk);
                            self.measured.repairs += 1;
                        }
                        if record {
                            self.measured.l2_memory_stripes += look.memory_hits as u64;
                            self.measured.l2_stripes += look.stripes_present as u64;
                            if look.stripes_present < redundancy.stripes() {
                                self.measured.degraded_hits += 1;
                            }
                        }
                        if priced {
                            self.priced.reads.push(ReadOutcome::az(c, &look));
                        }
                        l2h += 1;
                    } else {
                        // The warm-up is not throttled: filling empty caches is an empty-cache
                        // restart by construction, and throttled it would start the run in overload.
                        let issued = SimTime::from_nanos(cache_lanes[ci]);
                        let get: S3Get = self.s3.get(issued, throttled, &mut self.s3_rng);
                        let landed = cache_lanes[ci] + get.total().as_nanos();
                        cache_lanes[ci] = landed;
                        self.pending.push(Reverse((landed, c)));
                        causes[self.s3_cause(c)] += 1;
                        if record {
                            self.measured.throttle_wait.record(get.throttled);
                        }
                        if priced {
                            let served = Served::S3 { total: get.total(), copy: false };
                            self.priced.reads.push(ReadOutcome { chunk: c, served });
                        }
                        s3r += 1;
                        // A sampled run: the chunks this one stands for miss too, each a GET of
                        // its own on the start's lanes and in S3's request rate.
                        for _ in 1..self.one_in {
                            let cj = (0..lanes_n).min_by_key(|&k| cache_lanes[k]).expect("at least one lane");
                            let get = self.s3.get(
                                SimTime::from_nanos(cache_lanes[cj]),
                                throttled,
                                &mut self.s3_rng,
                            );
                            cache_lanes[cj] += get.total().as_nanos();
                            if record {
                                self.measured.throttle_wait.record(get.throttled);
                            }
                            if priced {
                                let served = Served::S3 { total: get.total(), copy: true };
                                self.priced.reads.push(ReadOutcome { chunk: c, served });
                            }
                        }
                    }
                }
            }
        }
        if priced {
            let n = (self.priced.reads.len() - reads_before) as u32;
            self.priced.starts.last_mut().expect("pushed above").reads = n;
        }
        let cur = &mut self.current;
        cur.reads += l1m + l1d + l2h + s3r;
        cur.l1 += l1m + l1d;
        cur.l2_hits += l2h;
        cur.s3 += s3r;
        let Some(m) = minute else { return };
        let row = &mut self.measured.minutes[m];
        row.cold_starts += 1;
        row.fresh_starts += u64::from(s.fresh);
        row.l1_memory += l1m;
        row.l1_disk += l1d;
        row.l2_hits += l2h;
        row.s3_reads += s3r;
        row.s3_bytes += s3r * self.chunk.bytes();
        for (a, b) in row.s3_causes.iter_mut().zip(causes) {
            *a += b;
        }
    }
}
