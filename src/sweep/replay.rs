//! The replay experiment: one start (a mapped trace on a converted image) replayed through L1,
//! L2 and S3 per point, as `chunkload replay` does. The scenario is `sim::Scenario`; the trace,
//! the image's chunk table and the caches' start states are fixed for the sweep.
//!
//! Metrics (units in the names): `start_time_ms`; the replay's counters; per tier
//! `tier_chunks.<tier>`, `tier_bytes.<tier>`, `tier_stall_ms.<tier>`; `hit_ratio.l1` (worker
//! cache hits per lookup) and `hit_ratio.l2` (AZ cache hits per lookup) when there were lookups;
//! device read latency percentiles; and, when L1 starts cold, `belady.hit_ratio.l1`: Belady's
//! MIN on the chunk stream L1 saw at L1's total capacity (a warm start's prefilled cache has no
//! such bound). One distribution: `fetch_ms`, the time from a chunk request to its data.

use std::collections::BTreeMap;

use super::{Experiment, Outcome, quantiles};
use crate::cache::{ChunkId, belady};
use crate::replay::{self, CacheState, Scenario, Source};
use crate::sim::{ChunkTable, Tier};
use crate::trace::MappedAccess;

/// The metrics `chunkload sweep` and `merge` show in the terminal for this experiment.
pub const HEADLINE: &[&str] = &[
    "start_time_ms",
    "hit_ratio.l1",
    "hit_ratio.l2",
    "tier_chunks.az-cache",
    "tier_chunks.s3",
    "bytes_fetched",
];

/// The tiers a lazy start can be served from, in hierarchy order.
const TIERS: [Tier; 5] = [Tier::Hole, Tier::WorkerMemory, Tier::WorkerDisk, Tier::AzCache, Tier::S3];

pub struct ReplayExperiment {
    accesses: Vec<MappedAccess>,
    table: ChunkTable,
    l1: CacheState,
    l2: CacheState,
    inputs: BTreeMap<String, String>,
}

impl ReplayExperiment {
    /// `inputs` identifies the trace and image (e.g. their digests) for the results files; the
    /// start states are added to it. A [`CacheState::Store`] start holds nothing here (a sweep
    /// replays one image, without the store's others).
    pub fn new(
        accesses: Vec<MappedAccess>,
        table: ChunkTable,
        l1: CacheState,
        l2: CacheState,
        mut inputs: BTreeMap<String, String>,
    ) -> Self {
        inputs.insert("l1_start".into(), l1.name().into());
        inputs.insert("l2_start".into(), l2.name().into());
        ReplayExperiment { accesses, table, l1, l2, inputs }
    }
}

impl Experiment for ReplayExperiment {
    type Scenario = Scenario;

    fn kind(&self) -> &'static str {
        "replay"
    }

    fn inputs(&self) -> BTreeMap<String, String> {
        self.inputs.clone()
    }

    /// The dump with units, as every replay report prints it.
    fn scenario_toml(&self, scenario: &Scenario) -> Result<String, String> {
        Ok(scenario.to_toml())
    }

    /// The checks a scenario file gets (`Scenario::from_toml`), on the overridden scenario.
    fn validate(&self, sc: &Scenario) -> Result<(), String> {
        Scenario::from_toml(&sc.to_toml()).map(|_| ()).map_err(|e| e.to_string())
    }

    fn run(&self, sc: &Scenario, seed: u64) -> Result<Outcome, String> {
        let mut sc = sc.clone();
        sc.seed = seed;
        let chunk = self.table.chunk_size();
        let source = Source::before_start(&sc, &self.table, self.l1, self.l2, |_| false);
        let r = replay::replay(&self.accesses, &self.table, &sc, source);

        let mut m: BTreeMap<String, f64> = BTreeMap::new();
        let mut put = |k: &str, v: f64| {
            m.insert(k.to_string(), v);
        };
        put("start_time_ms", r.start_time.as_millis_f64());
        put("operations", r.operations as f64);
        put("page_cache_hits", r.page_cache_hits as f64);
        put("device_reads", r.device_reads as f64);
        put("pages_read", r.pages_read as f64);
        put("bytes_read", r.bytes_read as f64);
        put("chunks_in_image", r.chunks_in_image as f64);
        put("chunks_touched", r.chunks_touched as f64);
        put("bytes_fetched", r.bytes_fetched as f64);
        for t in TIERS {
            let c = r.by_tier.get(&t).cloned().unwrap_or_default();
            let name = t.name();
            put(&format!("tier_chunks.{name}"), c.chunks as f64);
            put(&format!("tier_bytes.{name}"), c.bytes as f64);
            put(&format!("tier_stall_ms.{name}"), c.stall.as_millis_f64());
        }
        if let Some(p) = &r.read_latency {
            put("read_latency_us.p50", p.p50.as_micros_f64());
            put("read_latency_us.p90", p.p90.as_micros_f64());
            put("read_latency_us.p99", p.p99.as_micros_f64());
            put("read_latency_us.p999", p.p999.as_micros_f64());
            put("read_under_100us", p.under_100us);
        }
        if let Some(s) = &r.l1 {
            let lookups = s.memory.hits + s.memory.misses;
            if lookups > 0 {
                put("hit_ratio.l1", (s.memory.hits + s.disk.hits) as f64 / lookups as f64);
            }
        }
        if let Some(s) = &r.l2 {
            let lookups = s.hits + s.misses;
            if lookups > 0 {
                put("hit_ratio.l2", s.hits as f64 / lookups as f64);
            }
        }
        let stream: Vec<ChunkId> =
            r.fetches.iter().filter(|f| f.tier != Tier::Hole).map(|f| ChunkId(f.chunk)).collect();
        if self.l1 == CacheState::Cold && !stream.is_empty() {
            let capacity = (sc.l1.memory_capacity.bytes() + sc.l1.disk_capacity.bytes()) / chunk.max(1);
            put("belady.hit_ratio.l1", belady(&stream, capacity as usize).hit_ratio());
        }
        let waits: Vec<f64> = r
            .fetches
            .iter()
            .filter(|f| f.tier != Tier::Hole)
            .map(|f| f.done.saturating_duration_since(f.issued).as_millis_f64())
            .collect();
        let mut distributions = BTreeMap::new();
        if !waits.is_empty() {
            distributions.insert("fetch_ms".to_string(), quantiles(&waits));
        }
        Ok(Outcome { metrics: m, distributions })
    }

    fn headline(&self) -> &'static [&'static str] {
        HEADLINE
    }
}
