//! Each worker's request stream, hash-sampled as the AZ cache's is (SHARDS, at
//! `sizing.worker_sample_rate`): what other
//! worker-cache sizes and the optimal policy would have done, from the reuse the run measured.
//!
//! It needs only which version started on which worker when, not what the caches did, so it is a
//! stage of its own: [`run`](super::run) gives it a thread, which the busier stages (the worker
//! caches' two and the engine's) leave room for.

use super::population::Population;
use super::scenario::FleetScenario;
use super::workload::ColdStart;
use crate::cache::reuse::ReuseSampler;

/// Every worker's sampled request stream, from one check interval before the shortest warm-up's
/// end (as the AZ cache's).
pub struct WorkerStreams<'a> {
    sc: &'a FleetScenario,
    pop: &'a Population,
    reuse: Vec<ReuseSampler>,
    from: u64,
}

/// The worker caches' reuse, measured: what other sizes and the optimal policy would have done.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WorkerReuse {
    /// `(capacity as a multiple of the configured one, LRU hit ratio)`, every worker's sampled
    /// stream through an LRU of that many chunks, weighted by its requests.
    pub lru_at: Vec<(f64, f64)>,
    /// Belady's MIN at the configured capacity, the same way.
    pub belady_hit_ratio: f64,
    /// Share of requests that were a worker's first reference to the chunk (no capacity helps).
    pub first_reference_share: f64,
    pub sampled_requests: u64,
}

impl<'a> WorkerStreams<'a> {
    pub fn new(sc: &'a FleetScenario, pop: &'a Population, seed: u64) -> Self {
        let reuse = (0..sc.placement.workers)
            .map(|w| {
                let name = format!("reuse.l1.{w}");
                super::engine::reuse_sampler(sc.sizing.worker_sample_rate, sc.sampling.one_in, seed, &name)
            })
            .collect();
        WorkerStreams { sc, pop, reuse, from: super::engine::reuse_from(sc).as_nanos() }
    }

    /// When sampling starts: starts before it need not be sent here.
    pub fn from_ns(&self) -> u64 {
        self.from
    }

    /// Every read of `starts` (in time order), on its worker's stream.
    pub fn record(&mut self, starts: &[ColdStart]) {
        let bytes = self.sc.chunk_size.bytes() as u32;
        for s in starts {
            let t = s.time.as_nanos();
            if t < self.from {
                continue;
            }
            let r = &mut self.reuse[s.worker as usize];
            for &c in self.pop.working_set(s.version) {
                r.record(t, c, bytes);
            }
        }
    }

    /// The worker caches' miss-ratio curves and Belady's bound, from the sampled streams. On this
    /// stage's own thread: not on rayon's pool, whose threads may be the very ones waiting for
    /// this run (the demo runs two fleets under `rayon::join`).
    pub fn reuse(&self) -> WorkerReuse {
        let l1 = &self.sc.l1;
        let capacity =
            (l1.memory_capacity.bytes() + l1.disk_capacity.bytes()) / self.sc.chunk_size.bytes().max(1);
        let factors = [0.25, 0.5, 1.0, 2.0, 4.0];
        let per: Vec<(f64, Vec<f64>, f64, f64, u64)> = self
            .reuse
            .iter()
            .map(|r| {
                let n = r.requests() as f64;
                let lru = factors.iter().map(|f| r.hit_ratio((capacity as f64 * f) as u64) * n).collect();
                let min = r.belady_hit_ratio(capacity).unwrap_or(0.0) * n;
                (n, lru, min, r.first_reference_share() * n, r.sampled_requests())
            })
            .collect();
        let total: f64 = per.iter().map(|p| p.0).sum::<f64>().max(1.0);
        WorkerReuse {
            lru_at: factors
                .iter()
                .enumerate()
                .map(|(i, &f)| (f, per.iter().map(|p| p.1[i]).sum::<f64>() / total))
                .collect(),
            belady_hit_ratio: per.iter().map(|p| p.2).sum::<f64>() / total,
            first_reference_share: per.iter().map(|p| p.3).sum::<f64>() / total,
            sampled_requests: per.iter().map(|p| p.4).sum(),
        }
    }
}
