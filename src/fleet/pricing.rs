//! The measured window's latency model: every read of every cold start priced over the start's
//! read lanes, from what the caches did with it.
//!
//! The [`Engine`](super::engine::Engine) decides what each read hit (worker cache, AZ cache with
//! which stripes from memory or flash, S3 with its GET time) and hands the outcomes over here in
//! start order; nothing here changes a cache. So pricing runs as a stage of its own, on its own
//! thread in [`run`](super::run), and draws from its own stream in the same order whichever thread
//! it is on: a read's agent overhead, then its tier's latency (a worker-cache hit, a wait for a
//! fetch another start on the same worker has in flight, the stripes of an AZ-cache read, or the
//! S3 GET), then each start's init.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;

use super::histogram::LogHistogram;
use super::population::Population;
use super::scenario::FleetScenario;
use crate::sim::latency::Sampler;
use crate::sim::rng::stream;
use crate::sim::tier::{az_read_tiered, no_parity_read_tiered};
use crate::sim::time::SimDuration;
use crate::sim::{AzLookup, Redundancy, Tier, worker_hit};

/// Figure 9's no-parity comparison is drawn for one in this many AZ-cache reads that found every
/// stripe: a measurement of the other configuration, not a cost of this one, and at full size a
/// third of all latency draws if made for every read. One in eight still gives millions an hour.
pub const NO_PARITY_EVERY: u64 = 8;

/// How often (simulated ns) the fetches in flight that landed long ago are dropped: one pass over
/// the map now and then, not a probe per fetch, which was a tenth of pricing's time.
const PRUNE_EVERY_NS: u64 = 5_000_000_000;

/// A start the engine hands over to be priced; its reads follow in [`Priced::reads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricedStart {
    pub time_ns: u64,
    pub worker: u32,
    pub version: u32,
    pub function: u32,
    pub fresh: bool,
    /// Its minute of the window (`None` in a priced warm-up, which records nothing).
    pub minute: Option<u32>,
    /// Its reads (the next this many of [`Priced::reads`]).
    pub reads: u32,
}

/// Where one read was served from, as the caches decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The worker cache; `recent`: admitted so lately that its fetch may be in flight.
    Worker { tier: Tier, recent: bool },
    /// The AZ cache, with which stripes were present and which came from node memory.
    Az { present_mask: u8, memory_mask: u8, stripes_present: u8 },
    /// S3, the GET's whole time (throttling included); `copy`: a GET of a sampled run that stands
    /// for a chunk not simulated (no fetch to wait for).
    S3 { total: SimDuration, copy: bool },
}

/// One read's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOutcome {
    pub chunk: u32,
    pub served: Served,
}

impl ReadOutcome {
    pub fn az(chunk: u32, look: &AzLookup) -> Self {
        let served = Served::Az {
            present_mask: look.present_mask,
            memory_mask: look.memory_mask,
            stripes_present: look.stripes_present as u8,
        };
        ReadOutcome { chunk, served }
    }
}

/// One tick's starts and reads to price.
#[derive(Debug, Default)]
pub struct Priced {
    /// When the tick ends (fetches in flight that landed long before are forgotten).
    pub end_ns: u64,
    /// The window has started (at this time): the first such batch restarts the draws.
    pub window_start_ns: Option<u64>,
    pub starts: Vec<PricedStart>,
    pub reads: Vec<ReadOutcome>,
}

/// A version's cold starts in its first minute (new functions' and deploys' floods).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flood {
    /// Each start's duration, in start order.
    pub durations: Vec<SimDuration>,
    /// The S3 GETs they made.
    pub s3_reads: u64,
}

/// What pricing measured, per minute of the window and over it.
#[derive(Debug, Default)]
pub struct PricedMeasured {
    /// Per minute: worker-cache hits that waited for an in-flight fetch, and the sum of cold-start
    /// durations (ns).
    pub joined: Vec<u64>,
    pub cold_start_ns: Vec<u64>,
    pub agent_read: LogHistogram,
    pub cold_start: LogHistogram,
    pub cold_start_fresh: LogHistogram,
    pub cold_start_rest: LogHistogram,
    pub cold_start_fresh_large: LogHistogram,
    pub floods: BTreeMap<u32, Flood>,
    pub stripe_ec: LogHistogram,
    pub stripe_no_parity: LogHistogram,
}

/// The latency distributions pricing draws from, ready to draw.
#[derive(Clone, Copy)]
struct Draws {
    agent: Sampler,
    l1_memory: Sampler,
    l1_disk: Sampler,
    az_stripe: Sampler,
    az_flash: Sampler,
    init: Sampler,
    decrypt: SimDuration,
}

pub struct Pricer<'a> {
    sc: &'a FleetScenario,
    pop: &'a Population,
    seed: u64,
    rng: ChaCha8Rng,
    /// Figure 9's no-parity reads, on a stream of their own.
    no_parity_rng: ChaCha8Rng,
    /// Full AZ-cache reads priced in the window (every [`NO_PARITY_EVERY`]-th is compared).
    full_reads: u64,
    draws: Draws,
    redundancy: Redundancy,
    windowed: bool,
    /// `(worker, chunk)` -> when its latest fetch lands. A fetch that landed before any read still
    /// to come begins counts the same as none, so such entries are dropped in passes, once the
    /// simulated time passes `next_prune_ns`.
    in_flight: FxHashMap<(u32, u32), u64>,
    next_prune_ns: u64,
    /// `sampling.one_in`.
    one_in: u32,
    pub measured: PricedMeasured,
}

impl<'a> Pricer<'a> {
    pub fn new(sc: &'a FleetScenario, pop: &'a Population, seed: u64) -> Self {
        let minutes = (sc.duration.as_secs_f64() / 60.0).ceil() as usize;
        Pricer {
            sc,
            pop,
            seed,
            rng: stream(seed, "latency"),
            no_parity_rng: stream(seed, "latency.no-parity"),
            full_reads: 0,
            draws: Draws {
                agent: sc.latency.agent_overhead.sampler(),
                l1_memory: sc.latency.l1_hit.sampler(),
                l1_disk: sc.l1.disk_hit.sampler(),
                az_stripe: sc.latency.az_stripe.sampler(),
                az_flash: sc.l2.flash_read.sampler(),
                init: sc.start.init.sampler(),
                decrypt: sc.latency.decrypt_time(sc.chunk_size.bytes()),
            },
            redundancy: sc.l2.az_config(seed).redundancy,
            windowed: false,
            in_flight: FxHashMap::default(),
            next_prune_ns: 0,
            one_in: sc.sampling.one_in.max(1),
            measured: PricedMeasured {
                joined: vec![0; minutes],
                cold_start_ns: vec![0; minutes],
                ..PricedMeasured::default()
            },
        }
    }

    /// Prices one tick's starts.
    pub fn batch(&mut self, b: &Priced) {
        if b.window_start_ns.is_some() && !self.windowed {
            // The window's draws start afresh whether or not the warm-up was priced, and fetches
            // in flight at the boundary are forgotten, so both kinds of warm-up give the same window.
            self.windowed = true;
            self.rng = stream(self.seed, "latency");
            self.no_parity_rng = stream(self.seed, "latency.no-parity");
            self.full_reads = 0;
            self.in_flight.clear();
        }
        let mut at = 0;
        for s in &b.starts {
            let n = s.reads as usize;
            self.start(s, &b.reads[at..at + n]);
            at += n;
        }
        if b.end_ns >= self.next_prune_ns {
            // Reads to come start after this tick, and a hit on a chunk admitted more than
            // `RECENT_SECS` before it is not checked: a fetch that landed before then is never waited for.
            let horizon = b.end_ns.saturating_sub(super::worker::RECENT_SECS * 1_000_000_000);
            self.in_flight.retain(|_, ready| *ready > horizon);
            self.next_prune_ns = b.end_ns + PRUNE_EVERY_NS;
        }
    }

    /// Figure 9's comparison for every [`NO_PARITY_EVERY`]-th window read that found every stripe.
    fn compare_without_parity(&mut self, look: &AzLookup) {
        if look.stripes_present < self.redundancy.stripes() {
            return;
        }
        let nth = self.full_reads;
        self.full_reads += 1;
        if !nth.is_multiple_of(NO_PARITY_EVERY) {
            return;
        }
        let (dr, rng) = (self.draws, &mut self.no_parity_rng);
        if let Some(t) = no_parity_read_tiered(dr.az_stripe, dr.az_flash, self.redundancy, look, rng) {
            self.measured.stripe_no_parity.record(t);
        }
    }

    fn start(&mut self, s: &PricedStart, reads: &[ReadOutcome]) {
        let record = s.minute.is_some();
        let lanes_n = self.sc.start.read_parallelism;
        let redundancy = self.redundancy;
        let t0 = s.time_ns;
        let mut lanes = [t0; 64];
        let (mut joined, mut s3r) = (0u64, 0u64);
        let dr = self.draws;
        // A sampled run: a worker- or AZ-cache read stands for `one_in` reads, each drawn on its
        // own (the S3 GETs it stands for come from the engine, drawn there).
        let one_in = self.one_in;
        let reads = reads.iter().flat_map(|r| {
            let times = if matches!(r.served, Served::S3 { .. }) { 1 } else { one_in };
            (0..times).map(move |k| (r, k > 0))
        });
        for (r, repeat) in reads {
            let li = (0..lanes_n).min_by_key(|&k| lanes[k]).expect("at least one lane");
            let now = lanes[li];
            let mut d = dr.agent.sample(&mut self.rng);
            match r.served {
                Served::Worker { tier, recent } => {
                    let ready = if recent { self.in_flight.get(&(s.worker, r.chunk)).copied() } else { None };
                    match ready {
                        Some(ready) if ready > now => {
                            d += SimDuration::from_nanos(ready - now);
                            joined += 1;
                        }
                        _ => d += worker_hit(tier, dr.l1_memory, dr.l1_disk, &mut self.rng),
                    }
                }
                Served::Az { present_mask, memory_mask, stripes_present } => {
                    let look = AzLookup {
                        hit: true,
                        stripes_present: stripes_present.into(),
                        present_mask,
                        memory_mask,
                        ..AzLookup::default()
                    };
                    let read = az_read_tiered(dr.az_stripe, dr.az_flash, redundancy, &look, &mut self.rng);
                    if record {
                        self.measured.stripe_ec.record(read);
                        self.compare_without_parity(&look);
                    }
                    d += read + dr.decrypt;
                }
                Served::S3 { total, .. } => {
                    d += total + dr.decrypt;
                    s3r += 1;
                }
            }
            let done = now + d.as_nanos();
            // A fetch later reads of the chunk on this worker may wait for (repeats and copies
            // stand for chunks not simulated; a repeat of a worker-cache hit waits as its read does).
            let fetch = match r.served {
                Served::Worker { .. } => false,
                Served::Az { .. } => !repeat,
                Served::S3 { copy, .. } => !copy,
            };
            if fetch {
                self.in_flight.insert((s.worker, r.chunk), done);
            }
            lanes[li] = done;
            if record {
                self.measured.agent_read.record(d);
            }
        }
        let loaded = lanes[..lanes_n].iter().copied().max().unwrap_or(t0) - t0;
        let total = SimDuration::from_nanos(loaded) + dr.init.sample(&mut self.rng);
        let Some(minute) = s.minute else { return };
        let m = &mut self.measured;
        m.cold_start.record(total);
        if s.fresh {
            m.cold_start_fresh.record(total);
            if self.pop.functions[s.function as usize].large {
                m.cold_start_fresh_large.record(total);
            }
            let flood = m.floods.entry(s.version).or_default();
            flood.durations.push(total);
            flood.s3_reads += s3r;
        } else {
            m.cold_start_rest.record(total);
        }
        m.joined[minute as usize] += joined;
        m.cold_start_ns[minute as usize] += total.as_nanos();
    }
}
