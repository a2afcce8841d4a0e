//! The workload: how many sandboxes each function needs, tick by tick, and which needs become cold
//! starts on which worker.
//!
//! Per tick, a function's busy sandboxes are Poisson with mean = its concurrency (Zipf by rank)
//! times the diurnal swing, plus any burst (a new function's first traffic, a scale-up), plus one
//! per scheduled (cron) run. That is the occupancy of an M/G/inf queue of invocations shorter than a
//! tick. Invocations go to the most recently used idle sandboxes (warm: they load nothing); demand
//! above the pool is a cold start each. Idle sandboxes are reclaimed after `keep_alive`; busy or
//! not, each lives an exponential `sandbox_lifetime` (environments are recycled); a new version
//! retires every sandbox of the function.

use std::collections::VecDeque;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Poisson};
use serde::Serialize;

use super::popularity::Zipf;
use super::population::{Population, UploadKind};
use super::scenario::{FleetScenario, PlacementPolicy};
use crate::sim::Tier;
use crate::sim::rng::derive;
use crate::sim::rng::stream;
use crate::sim::time::SimDuration;
use crate::sim::time::SimTime;

/// A sandbox that must load its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdStart {
    pub time: SimTime,
    pub function: u32,
    pub version: u32,
    pub worker: u32,
    /// In the first minute of its version (a new function's or a deploy's first flood).
    pub fresh: bool,
}

/// One tick's output.
#[derive(Debug, Default)]
pub struct TickBatch {
    pub tick: u64,
    /// In time order.
    pub starts: Vec<ColdStart>,
    /// Sandboxes alive at the end of the tick, busy or idle.
    pub live_sandboxes: u64,
    /// Sandboxes busy during the tick (warm and cold).
    pub busy: u64,
    /// Needs no worker had room for (the invocation is throttled; counted, not started).
    pub rejected: u64,
    pub cron_runs: u64,
    /// Workers replaced at the start of the tick (their caches start empty).
    pub replaced: Vec<u32>,
    /// The worker-cache outcome of every read of every start, in order (filled by
    /// [`WorkerCaches`](super::worker::WorkerCaches)).
    pub l1: Vec<L1Outcome>,
}

/// What a worker cache did with one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L1Outcome {
    /// Not in the worker cache: fetched (and admitted at once, so later reads wait for it).
    Miss,
    /// Served by the worker cache; `recent`: the chunk was admitted within the last
    /// [`RECENT_SECS`](super::worker::RECENT_SECS) seconds, so its fetch may still be in flight.
    Hit { tier: Tier, recent: bool },
}

/// Counters over the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkloadSummary {
    /// Sandbox-ticks busy (warm or cold): the invocation volume in sandbox units.
    pub busy_sandbox_ticks: u64,
    pub cold_starts: u64,
    /// Cold starts of functions running a real image (`[[population.real]]`).
    pub real_cold_starts: u64,
    pub rejected: u64,
    pub cron_runs: u64,
    pub peak_live_sandboxes: u64,
    pub functions_created: u64,
    pub updates: u64,
    pub functions_abandoned: u64,
    pub scale_ups: u64,
    pub workers_replaced: u64,
    /// Cold starts in the first minute of their version.
    pub fresh_starts: u64,
}

/// A function's sandboxes: workers oldest-used first, with their last-use ticks run-length
/// encoded (invocations always take the most recently used, so the order never needs more).
#[derive(Debug, Default)]
struct Pool {
    workers: VecDeque<u32>,
    /// `(count, last used tick)`, oldest first; counts sum to `workers.len()`.
    runs: VecDeque<(u32, u32)>,
}

impl Pool {
    fn len(&self) -> usize {
        self.workers.len()
    }

    fn reclaim_idle(&mut self, cutoff: u32, free: &mut impl FnMut(u32)) -> u64 {
        let mut n = 0;
        while let Some(&(count, last)) = self.runs.front() {
            if last >= cutoff {
                break;
            }
            self.runs.pop_front();
            for _ in 0..count {
                free(self.workers.pop_front().expect("runs count workers"));
            }
            n += u64::from(count);
        }
        n
    }

    fn remove_at(&mut self, index: usize, free: &mut impl FnMut(u32)) {
        let mut acc = 0usize;
        for r in 0..self.runs.len() {
            acc += self.runs[r].0 as usize;
            if index < acc {
                self.runs[r].0 -= 1;
                if self.runs[r].0 == 0 {
                    self.runs.remove(r);
                }
                break;
            }
        }
        free(self.workers.remove(index).expect("index inside the pool"));
    }

    fn push_new(&mut self, worker: u32, tick: u32) {
        self.workers.push_back(worker);
        match self.runs.back_mut() {
            Some(r) if r.1 == tick => r.0 += 1,
            _ => self.runs.push_back((1, tick)),
        }
    }

    /// The `n` most recently used sandboxes run this tick.
    fn use_top(&mut self, n: u32, tick: u32) {
        let mut need = n;
        while need > 0 {
            let back = self.runs.back_mut().expect("n <= pool size");
            if back.0 <= need {
                need -= back.0;
                self.runs.pop_back();
            } else {
                back.0 -= need;
                need = 0;
            }
        }
        self.runs.push_back((n, tick));
    }

    fn clear(&mut self, free: &mut impl FnMut(u32)) -> u64 {
        let n = self.workers.len() as u64;
        for w in self.workers.drain(..) {
            free(w);
        }
        self.runs.clear();
        n
    }
}

struct FnState {
    mean: f64,
    schedule: Option<(u32, u32)>,
    active: bool,
    version: u32,
    pool: Pool,
    burst_from: u32,
    burst_until: u32,
    burst_extra: f64,
}

/// Generates cold starts tick by tick. Deterministic for a scenario, population and seed.
pub struct Workload<'a> {
    sc: &'a FleetScenario,
    pop: &'a Population,
    rng: ChaCha8Rng,
    /// Worker replacements and scale-ups: their own stream, so they move nothing else.
    events: ChaCha8Rng,
    seed: u64,
    fns: Vec<FnState>,
    /// Live functions with a popularity (for scale-up picks), and each one's index in it.
    active: Vec<u32>,
    slot: Vec<u32>,
    slots: Vec<u32>,
    next_upload: usize,
    next_scale_up: f64,
    next_replacement: f64,
    burst_size: LogNormal<f64>,
    live: u64,
    keep_alive_ticks: u32,
    expiry_per_tick: f64,
    tick_secs: f64,
    pub summary: WorkloadSummary,
}

impl<'a> Workload<'a> {
    pub fn new(sc: &'a FleetScenario, pop: &'a Population, seed: u64) -> Self {
        let rng = stream(seed, "workload");
        let mut events = stream(seed, "workload.events");
        let c = &sc.cron;
        let scheduled = c.hourly_functions + c.daily_functions + c.weekly_functions;
        let steady = sc.population.functions - scheduled;
        // Concurrency by rank over the steady functions (a scheduled one has none).
        let zipf_total: f64 = (0..steady).map(|i| Zipf::weight(i, sc.workload.popularity_zipf)).sum();
        let fns: Vec<FnState> = pop
            .functions
            .iter()
            .map(|f| FnState {
                mean: if f.schedule.is_some() || zipf_total == 0.0 {
                    0.0
                } else {
                    sc.workload.total_concurrency * Zipf::weight(f.rank, sc.workload.popularity_zipf)
                        / zipf_total
                },
                schedule: f.schedule,
                active: f.created == SimTime::ZERO,
                version: f.first_version,
                pool: Pool::default(),
                burst_from: 0,
                burst_until: 0,
                burst_extra: 0.0,
            })
            .collect();
        let mut active = Vec::new();
        let mut slot = vec![u32::MAX; fns.len()];
        for (i, f) in fns.iter().enumerate() {
            if f.active && f.schedule.is_none() {
                slot[i] = active.len() as u32;
                active.push(i as u32);
            }
        }
        let b = &sc.bursts;
        let burst_size =
            LogNormal::new(b.new_function_sandboxes_median.max(1e-9).ln(), b.new_function_sandboxes_sigma)
                .expect("validated burst shape");
        let next_scale_up = exp_gap(b.scale_ups_per_hour / 3600.0, &mut events);
        let replacement_rate = sc.placement.workers as f64 / sc.world.worker_lifetime.as_secs_f64();
        let next_replacement = exp_gap(replacement_rate, &mut events);
        let tick_secs = sc.tick.as_secs_f64();
        Workload {
            sc,
            pop,
            rng,
            events,
            seed,
            fns,
            active,
            slot,
            slots: vec![0; sc.placement.workers],
            next_upload: 0,
            next_scale_up,
            next_replacement,
            burst_size,
            live: 0,
            keep_alive_ticks: (sc.workload.keep_alive.as_secs_f64() / tick_secs).round() as u32,
            expiry_per_tick: tick_secs / sc.workload.sandbox_lifetime.as_secs_f64(),
            tick_secs,
            summary: WorkloadSummary::default(),
        }
    }

    fn ticks(&self, d: crate::sim::time::SimDuration) -> u32 {
        (d.as_secs_f64() / self.tick_secs).round() as u32
    }

    fn deactivate(&mut self, f: u32) {
        let i = self.slot[f as usize];
        if i == u32::MAX {
            return;
        }
        self.slot[f as usize] = u32::MAX;
        self.active.swap_remove(i as usize);
        if let Some(&moved) = self.active.get(i as usize) {
            self.slot[moved as usize] = i;
        }
    }

    /// Uploads, abandonments, scale-ups and worker replacements due by the end of tick `t`.
    fn world_events(&mut self, t: u64, measured: bool, batch: &mut TickBatch) {
        let end_s = (t + 1) as f64 * self.tick_secs;
        let end_ns = (end_s * 1e9) as u64;
        while let Some(u) = self.pop.uploads.get(self.next_upload) {
            if u.at.as_nanos() >= end_ns {
                break;
            }
            self.next_upload += 1;
            let slots = &mut self.slots;
            let f = &mut self.fns[u.function as usize];
            self.live -= f.pool.clear(&mut |w| slots[w as usize] -= 1);
            match u.kind {
                UploadKind::NewFunction => {
                    f.active = true;
                    f.version = u.version;
                    let created = (u.at.as_nanos() as f64 / 1e9 / self.tick_secs) as u32;
                    let b = &self.sc.bursts;
                    f.burst_from =
                        created + (b.new_function_delay.as_secs_f64() / self.tick_secs).round() as u32;
                    f.burst_until = f.burst_from
                        + ((b.new_function_duration.as_secs_f64() / self.tick_secs).round() as u32).max(1);
                    f.burst_extra = if b.new_function_sandboxes_median > 0.0 {
                        self.burst_size.sample(&mut self.rng)
                    } else {
                        0.0
                    };
                    if f.schedule.is_none() {
                        self.slot[u.function as usize] = self.active.len() as u32;
                        self.active.push(u.function);
                    }
                    if measured {
                        self.summary.functions_created += 1;
                    }
                }
                UploadKind::Update => {
                    f.version = u.version;
                    if measured {
                        self.summary.updates += 1;
                    }
                }
                UploadKind::Abandon => {
                    f.active = false;
                    self.deactivate(u.function);
                    if measured {
                        self.summary.functions_abandoned += 1;
                    }
                }
            }
        }
        // Scale-ups of live functions, picked by popularity (rejection on the Zipf weight).
        let b = &self.sc.bursts;
        while self.next_scale_up < end_s {
            let at = self.next_scale_up;
            self.next_scale_up += exp_gap(b.scale_ups_per_hour / 3600.0, &mut self.events);
            if self.active.is_empty() {
                continue;
            }
            let f = loop {
                let f = self.active[self.events.random_range(0..self.active.len())];
                let rank = self.pop.functions[f as usize].rank;
                if self.events.random::<f64>() < Zipf::weight(rank, self.sc.workload.popularity_zipf) {
                    break f;
                }
            };
            let from = (at / self.tick_secs) as u32;
            let until = from + self.ticks(b.scale_up_duration).max(1);
            let s = &mut self.fns[f as usize];
            s.burst_from = from;
            s.burst_until = until;
            s.burst_extra = s.mean * (b.scale_up_factor - 1.0).max(0.0);
            if measured {
                self.summary.scale_ups += 1;
            }
        }
        // Workers replaced: their sandboxes end, their caches start empty.
        let rate = self.sc.placement.workers as f64 / self.sc.world.worker_lifetime.as_secs_f64();
        while self.next_replacement < end_s {
            self.next_replacement += exp_gap(rate, &mut self.events);
            let w = self.events.random_range(0..self.slots.len()) as u32;
            for f in &mut self.fns {
                while let Some(i) = f.pool.workers.iter().position(|&x| x == w) {
                    f.pool.remove_at(i, &mut |_| {});
                    self.live -= 1;
                }
            }
            self.slots[w as usize] = 0;
            batch.replaced.push(w);
            if measured {
                self.summary.workers_replaced += 1;
            }
        }
    }

    /// Runs tick `t` (ticks count from the start of the warm-up). `measured` adds it to the summary.
    pub fn tick(&mut self, t: u64, measured: bool) -> TickBatch {
        let tick = t as u32;
        let t0 = t as f64 * self.tick_secs;
        let mut batch = TickBatch { tick: t, ..TickBatch::default() };
        self.world_events(t, measured, &mut batch);
        // Cron: the minute of the week, if a new one starts within this tick.
        let tick_ns = self.sc.tick.as_nanos();
        let start_ns = (self.sc.start_hour_of_week * 3600e9).round() as u64;
        let minute_at = |ns: u64| ns / 60_000_000_000;
        let now_ns = start_ns + t * tick_ns;
        let new_minute = (t == 0 || minute_at(now_ns) != minute_at(now_ns - tick_ns))
            .then_some((minute_at(now_ns) % (7 * 24 * 60)) as u32);
        let hour_of_day = (now_ns as f64 / 3600e9) % 24.0;
        let w = &self.sc.workload;
        let diurnal = 1.0
            + w.diurnal_amplitude * (2.0 * std::f64::consts::PI * (hour_of_day - w.peak_hour) / 24.0).cos();
        let cutoff = tick.saturating_sub(self.keep_alive_ticks);
        let workers = self.slots.len();
        let slot_cap = self.sc.placement.sandbox_slots;
        let sticky =
            (self.sc.placement.policy == PlacementPolicy::Sticky).then_some(self.sc.placement.sticky_workers);
        for (fi, f) in self.fns.iter_mut().enumerate() {
            if !f.active {
                continue;
            }
            let slots = &mut self.slots;
            let mut free = |w: u32| slots[w as usize] -= 1;
            let mut lam = f.mean * diurnal;
            if (f.burst_from..f.burst_until).contains(&tick) {
                lam += f.burst_extra;
            }
            let mut demand = poisson(lam, &mut self.rng);
            if let (Some(minute), Some((period, offset))) = (new_minute, f.schedule)
                && minute % period == offset
            {
                demand += 1;
                batch.cron_runs += 1;
            }
            if f.pool.len() > 0 {
                self.live -= f.pool.reclaim_idle(cutoff, &mut free);
                let expire = poisson(f.pool.len() as f64 * self.expiry_per_tick, &mut self.rng)
                    .min(f.pool.len() as u32);
                for _ in 0..expire {
                    let i = self.rng.random_range(0..f.pool.len());
                    f.pool.remove_at(i, &mut free);
                }
                self.live -= u64::from(expire);
            }
            if demand == 0 {
                continue;
            }
            let have = f.pool.len() as u32;
            let mut placed = 0;
            for _ in have..demand {
                let Some(worker) =
                    place(&mut self.rng, slots, slot_cap, workers, sticky, self.seed, fi as u32)
                else {
                    batch.rejected += u64::from(demand - have - placed);
                    break;
                };
                slots[worker as usize] += 1;
                f.pool.push_new(worker, tick);
                let at = t0 + self.rng.random::<f64>() * self.tick_secs;
                let time = SimTime::from_nanos((at * 1e9) as u64);
                let created = self.pop.versions[f.version as usize].created;
                batch.starts.push(ColdStart {
                    time,
                    function: fi as u32,
                    version: f.version,
                    worker,
                    fresh: time.saturating_duration_since(created) < SimDuration::from_secs(60),
                });
                placed += 1;
            }
            self.live += u64::from(placed);
            let busy = demand.min(have + placed);
            f.pool.use_top(busy, tick);
            batch.busy += u64::from(busy);
        }
        batch.starts.sort_by_key(|s| (s.time, s.function, s.worker));
        batch.live_sandboxes = self.live;
        if measured {
            let s = &mut self.summary;
            s.busy_sandbox_ticks += batch.busy;
            s.cold_starts += batch.starts.len() as u64;
            s.real_cold_starts += batch
                .starts
                .iter()
                .filter(|c| self.pop.functions[c.function as usize].real.is_some())
                .count() as u64;
            s.rejected += batch.rejected;
            s.cron_runs += batch.cron_runs;
            s.fresh_starts += batch.starts.iter().filter(|c| c.fresh).count() as u64;
            s.peak_live_sandboxes = s.peak_live_sandboxes.max(self.live);
        }
        batch
    }
}

/// An exponential gap at `rate` per second (infinite at rate 0).
fn exp_gap(rate: f64, rng: &mut ChaCha8Rng) -> f64 {
    if rate <= 0.0 {
        return f64::INFINITY;
    }
    Exp::new(rate).expect("a positive rate").sample(rng)
}

/// A worker with room for function `f`'s new sandbox, or `None` if every worker is full.
fn place(
    rng: &mut ChaCha8Rng,
    slots: &[u32],
    cap: u32,
    workers: usize,
    sticky: Option<usize>,
    seed: u64,
    f: u32,
) -> Option<u32> {
    if let Some(m) = sticky {
        // The function's preferred workers, tried from a random one of them.
        let first = rng.random_range(0..m);
        for j in 0..m {
            let k = (first + j) % m;
            let w = (derive(seed, (u64::from(f) << 16) ^ k as u64) % workers as u64) as u32;
            if slots[w as usize] < cap {
                return Some(w);
            }
        }
    }
    for _ in 0..16 {
        let w = rng.random_range(0..workers) as u32;
        if slots[w as usize] < cap {
            return Some(w);
        }
    }
    let start = rng.random_range(0..workers);
    (0..workers).map(|i| ((start + i) % workers) as u32).find(|&w| slots[w as usize] < cap)
}

/// A Poisson draw: inversion for small means (the common case: most functions are idle most
/// ticks), rand_distr's sampler above.
fn poisson(lam: f64, rng: &mut ChaCha8Rng) -> u32 {
    if lam <= 0.0 {
        return 0;
    }
    if lam < 30.0 {
        let u: f64 = rng.random();
        let mut p = (-lam).exp();
        let mut cdf = p;
        let mut k = 0u32;
        while u > cdf && k < 200 {
            k += 1;
            p *= lam / f64::from(k);
            cdf += p;
        }
        return k;
    }
    Poisson::new(lam).expect("a positive finite mean").sample(rng) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::scenario::FleetScenario;
    use rand::SeedableRng;

    #[test]
    fn poisson_mean_and_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for lam in [0.01, 0.7, 4.0, 25.0, 300.0] {
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| f64::from(poisson(lam, &mut rng))).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((mean - lam).abs() < 0.02 * lam + 0.003, "lam {lam}: mean {mean}");
            assert!((var - lam).abs() < 0.05 * lam + 0.005, "lam {lam}: var {var}");
        }
    }

    fn small(extra: &[&str]) -> FleetScenario {
        let mut o: Vec<String> = [
            "population.functions=600",
            "cron.hourly_functions=100",
            "cron.daily_functions=20",
            "cron.weekly_functions=10",
            "placement.workers=40",
            "workload.total_concurrency=300.0",
            "warmup=\"0s\"",
            "steady.max_warmup=\"0s\"",
            "duration=\"10min\"",
            "uploads.new_functions_per_hour=0",
            "uploads.updates_per_hour=0",
            "bursts.scale_ups_per_hour=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        o.extend(extra.iter().map(|s| s.to_string()));
        FleetScenario::load(None, &o).unwrap()
    }

    #[test]
    fn busy_sandboxes_follow_the_configured_concurrency_and_zipf() {
        let sc = small(&["workload.diurnal_amplitude=0.0", "workload.popularity_zipf=1.0"]);
        let pop = Population::generate(&sc, 1, &[], crate::sim::time::SimDuration::from_secs(7200));
        let mut w = Workload::new(&sc, &pop, 1);
        let mut per_fn = vec![0u64; pop.functions.len()];
        let ticks = 600;
        let mut busy = 0;
        for t in 0..ticks {
            let b = w.tick(t, true);
            busy += b.busy;
            for s in &b.starts {
                per_fn[s.function as usize] += 1;
            }
        }
        let mean_busy = busy as f64 / ticks as f64;
        // 300 steady + about 1 cron run a tick on average at most.
        assert!((mean_busy - 300.0).abs() < 15.0, "{mean_busy}");
        // Cold starts: lifetime churn, so the most popular function starts far more often.
        assert!(per_fn[0] > 10 * per_fn[50].max(1), "{} vs {}", per_fn[0], per_fn[50]);
    }

    #[test]
    fn cron_fires_on_the_hour_and_keep_alive_avoids_cold_starts() {
        // 23:59:00 Sunday: the hour, the day and the week turn one minute in.
        let sc = small(&["start_hour_of_week=167.98333333333333", "workload.total_concurrency=0.0"]);
        let pop = Population::generate(&sc, 2, &[], crate::sim::time::SimDuration::from_secs(7200));
        let mut w = Workload::new(&sc, &pop, 2);
        let mut runs = vec![0u64; 180];
        let mut cold = vec![0u64; 180];
        for t in 0..180 {
            let b = w.tick(t, true);
            runs[t as usize] = b.cron_runs;
            cold[t as usize] = b.starts.len() as u64;
        }
        // Midnight is at tick 60: most scheduled functions fire then (70% on the hour).
        assert!(runs[60] > 80, "{}", runs[60]);
        assert_eq!(cold[60], runs[60], "every scheduled run is a cold start");
        let elsewhere: u64 = runs.iter().enumerate().filter(|&(i, _)| i != 60).map(|(_, r)| r).sum();
        assert!(elsewhere < runs[60] / 3, "{elsewhere}");
    }

    #[test]
    fn warm_sandboxes_are_reused_within_keep_alive() {
        // A long lifetime: the pool, once grown, serves the steady demand without cold starts.
        let sc = small(&[
            "workload.sandbox_lifetime=\"100h\"",
            "workload.diurnal_amplitude=0.0",
            "cron.hourly_functions=0",
            "cron.daily_functions=0",
            "cron.weekly_functions=0",
        ]);
        let pop = Population::generate(&sc, 3, &[], crate::sim::time::SimDuration::from_secs(7200));
        let mut w = Workload::new(&sc, &pop, 3);
        let first: u64 = (0..60).map(|t| w.tick(t, false).starts.len() as u64).sum();
        let later: u64 = (60..600).map(|t| w.tick(t, false).starts.len() as u64).sum();
        assert!(first > 250, "{first}");
        assert!(later < first, "{later} vs {first}");
    }
}
