//! The cache side of the fleet: every cold start's chunk reads through its worker's cache (L1),
//! the AZ cache (L2) and S3, priced by the tier latency model, in start-time order.
//!
//! A start reads its working set at chunk granularity over `read_parallelism` outstanding reads
//! (each read goes to the lane that frees first). A read is, in order: a worker-cache hit (memory
//! or disk), an AZ-cache hit (an erasure-coded read: the k-th fastest of the stripes present), or
//! an S3 GET (all priced by the kernel's one read path, `sim::tier` and `sim::S3`), after which the worker writes the chunk into the AZ cache itself: that write lands
//! when the S3 response does, so starts that miss the same chunk meanwhile (a burst to a new
//! function) go to S3 too. S3 GETs beyond `s3.max_requests_per_second` queue (throttling).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand_chacha::ChaCha8Rng;

use super::failure::{self, FailureRecord, TimedAction};
use super::histogram::LogHistogram;
use super::population::Population;
use super::scenario::FleetScenario;
use super::workload::{ColdStart, TickBatch};
use crate::cache::{ChunkId, belady};
use crate::sim::rng::stream;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{AzCache, S3, Tier, az_read, worker_hit};
use crate::units::ByteSize;

/// Per-minute counters of the measured window.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MinuteRow {
    pub minute: u32,
    pub cold_starts: u64,
    pub l1_memory: u64,
    pub l1_disk: u64,
    pub l2_hits: u64,
    pub s3_reads: u64,
    pub s3_bytes: u64,
    /// Sum of cold-start durations, ns (mean = sum / cold_starts).
    pub cold_start_ns: u64,
    pub live_sandboxes: u64,
}

impl MinuteRow {
    pub fn l2_hit_rate(&self) -> Option<f64> {
        let req = self.l2_hits + self.s3_reads;
        (req > 0).then(|| self.l2_hits as f64 / req as f64)
    }
}

/// Everything the engine measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub minutes: Vec<MinuteRow>,
    pub agent_read: LogHistogram,
    pub cold_start: LogHistogram,
    pub stripe_ec: LogHistogram,
    pub stripe_no_parity: LogHistogram,
    pub degraded_hits: u64,
    /// Degraded reads that wrote their missing stripes back (`l2_read_repair`).
    pub repairs: u64,
    /// Belady's hit rate on the window's AZ-cache requests (`l2_belady`).
    pub l2_belady_hit_rate: Option<f64>,
    pub failures: Vec<FailureRecord>,
    pub throttle_wait: LogHistogram,
    pub l2_stored_bytes: u64,
}

pub struct Engine<'a> {
    sc: &'a FleetScenario,
    pop: &'a Population,
    l2: AzCache,
    /// `(time ns, chunk)` of AZ-cache writes not landed yet.
    pending: BinaryHeap<Reverse<(u64, u32)>>,
    s3: S3,
    rng: ChaCha8Rng,
    actions: Vec<TimedAction>,
    next_action: usize,
    window_start: SimTime,
    chunk: ByteSize,
    decrypt: SimDuration,
    /// Every AZ-cache request, for Belady's bound (`l2_belady` only).
    l2_requests: Vec<ChunkId>,
    /// How many of them came before the window (the bound starts as warm as the cache).
    l2_warmup_requests: usize,
    pub measured: Measured,
}

impl<'a> Engine<'a> {
    pub fn new(sc: &'a FleetScenario, pop: &'a Population, seed: u64) -> Self {
        let chunk = sc.chunk_size;
        let mut az = sc.l2.az_config(seed);
        az.typical_chunk = chunk;
        // The node memory tier is inclusive (flash holds every piece), so it changes no hit or
        // miss, and the tier latency model prices an AZ hit the same from memory or flash (the
        // paper reports one worker-side figure). Modelling it would only cost time: it is off.
        az.memory_fraction = 0.0;
        let minutes = (sc.duration.as_secs_f64() / 60.0).ceil() as u32;
        Engine {
            sc,
            pop,
            l2: AzCache::new(az),
            pending: BinaryHeap::new(),
            s3: S3::limited(sc.latency.s3_get, sc.s3.max_requests_per_second),
            rng: stream(seed, "latency"),
            actions: failure::schedule(sc),
            next_action: 0,
            window_start: SimTime::ZERO + sc.warmup,
            chunk,
            decrypt: sc.latency.decrypt_time(chunk.bytes()),
            l2_requests: Vec::new(),
            l2_warmup_requests: 0,
            measured: Measured {
                minutes: (0..minutes).map(|m| MinuteRow { minute: m, ..MinuteRow::default() }).collect(),
                ..Measured::default()
            },
        }
    }

    /// One tick's starts, with the worker-cache outcome of every read (see [`WorkerCaches`](super::worker::WorkerCaches)).
    pub fn batch(&mut self, batch: &TickBatch) {
        let mut at = 0;
        for s in &batch.starts {
            let n = self.pop.working_set(s.version).len();
            self.start(s, &batch.l1[at..at + n]);
            at += n;
        }
        let end = SimTime::from_nanos((batch.tick + 1) * self.sc.tick.as_nanos());
        if let Some(m) = self.minute(end.saturating_duration_since(SimTime::from_nanos(1)).as_nanos()) {
            self.measured.minutes[m].live_sandboxes = batch.live_sandboxes;
        }
    }

    pub fn finish(mut self) -> Measured {
        self.measured.l2_stored_bytes = self.l2.stats().stored_bytes.bytes();
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
        let since = ns.checked_sub(self.window_start.as_nanos())?;
        let m = (since / 60_000_000_000) as usize;
        (m < self.measured.minutes.len()).then_some(m)
    }

    fn catch_up(&mut self, now: SimTime) {
        while let Some(a) = self.actions.get(self.next_action).copied() {
            if a.at > now {
                break;
            }
            self.next_action += 1;
            let at_s = a.at.saturating_duration_since(self.window_start).as_secs_f64();
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
        }
    }

    fn start(&mut self, s: &ColdStart, l1: &[Option<Tier>]) {
        self.catch_up(s.time);
        let minute = self.minute(s.time.as_nanos());
        let lat = &self.sc.latency;
        let lanes_n = self.sc.start.read_parallelism;
        let t0 = s.time.as_nanos();
        let mut lanes = [t0; 64];
        let lanes = &mut lanes[..lanes_n];
        let (mut l1m, mut l1d, mut l2h, mut s3r) = (0u64, 0u64, 0u64, 0u64);
        let redundancy = self.l2.config().redundancy;
        for (&c, &tier) in self.pop.working_set(s.version).iter().zip(l1) {
            let (li, &now) = lanes.iter().enumerate().min_by_key(|&(_, t)| *t).expect("at least one lane");
            let mut d = lat.agent_overhead.sample(&mut self.rng);
            if let Some(tier) = tier {
                d += worker_hit(tier, &lat.l1_hit, &self.sc.l1.disk_hit, &mut self.rng);
                match tier {
                    Tier::WorkerDisk => l1d += 1,
                    _ => l1m += 1,
                }
            } else {
                if self.sc.l2_belady {
                    if minute.is_none() {
                        self.l2_warmup_requests += 1;
                    }
                    self.l2_requests.push(ChunkId(c));
                }
                let look = self.l2.get(ChunkId(c), self.chunk);
                if look.hit {
                    let read = az_read(&lat.az_stripe, redundancy, look.stripes_present, &mut self.rng);
                    if minute.is_some() {
                        if let Some(no_parity) = read.no_parity {
                            // Figure 9: the same draws read without parity (all k data stripes).
                            self.measured.stripe_no_parity.record(no_parity);
                        }
                        self.measured.stripe_ec.record(read.latency);
                    }
                    if look.stripes_present < redundancy.stripes() {
                        if minute.is_some() {
                            self.measured.degraded_hits += 1;
                        }
                        if self.sc.l2_read_repair {
                            // The reader decoded the chunk: it writes the missing stripes back.
                            self.l2.put(ChunkId(c), self.chunk);
                            self.measured.repairs += 1;
                        }
                    }
                    d += read.latency + self.decrypt;
                    l2h += 1;
                } else {
                    // The warm-up fills empty caches (an empty-cache restart by construction):
                    // it is not throttled, or it would start the run in overload.
                    let get = self.s3.get(SimTime::from_nanos(now), minute.is_some(), &mut self.rng);
                    if minute.is_some() {
                        self.measured.throttle_wait.record(get.throttled);
                    }
                    let landed = now + get.total().as_nanos();
                    self.pending.push(Reverse((landed, c)));
                    d += get.total() + self.decrypt;
                    s3r += 1;
                }
            }
            lanes[li] = now + d.as_nanos();
            if minute.is_some() {
                self.measured.agent_read.record(d);
            }
        }
        let Some(m) = minute else { return };
        let loaded = lanes.iter().copied().max().unwrap_or(t0) - t0;
        let total = SimDuration::from_nanos(loaded) + self.sc.start.init.sample(&mut self.rng);
        self.measured.cold_start.record(total);
        let row = &mut self.measured.minutes[m];
        row.cold_starts += 1;
        row.l1_memory += l1m;
        row.l1_disk += l1d;
        row.l2_hits += l2h;
        row.s3_reads += s3r;
        row.s3_bytes += s3r * self.chunk.bytes();
        row.cold_start_ns += total.as_nanos();
    }
}
