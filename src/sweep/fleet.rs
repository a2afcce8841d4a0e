//! The fleet experiment: one whole fleet simulation (`chunkload simulate`, docs/fleet-model.md)
//! per point. The scenario is `fleet::FleetScenario`. Real images (`[[population.real]]`) are
//! loaded once from the base scenario and fixed for the sweep; the results' `inputs` hold their
//! digests (chunk list and working set), so merge refuses shards run on other images. Without
//! real images `inputs` is empty and the recorded base scenario identifies the run.
//!
//! Metrics are the report's (`FleetReport::metrics`): source shares, L2 hit rate, S3 requests,
//! latency percentiles, and the names the charts look for (`hit_ratio.l1`, `hit_ratio.l2`,
//! `belady.hit_ratio.l2` when `l2_belady` is on, `tier_chunks.{l1,l2,s3}`). Distributions: the
//! report's latency histograms (`cold_start_ms`, `agent_read_ms`, `stripe_fetch_*_ms`) read at
//! [`QUANTILE_LEVELS`].

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Experiment, Outcome, QUANTILE_LEVELS};
use crate::fleet::real::RealImage;
use crate::fleet::scenario::RealImageConfig;
use crate::fleet::{self, FleetScenario};

/// The metrics `chunkload sweep` and `merge` show in the terminal for this experiment.
pub const HEADLINE: &[&str] = &[
    "l1_share",
    "l2_share",
    "s3_share",
    "l2_hit_rate",
    "cold_start_p50_ms",
    "cold_start_p99_ms",
    "s3_requests",
];

/// Runs `fleet::run_with` at every point.
#[derive(Debug, Clone, Default)]
pub struct FleetExperiment {
    configs: Vec<RealImageConfig>,
    real: Vec<RealImage>,
    /// The chunk size the real images were checked against.
    chunk_size: u64,
}

impl FleetExperiment {
    /// `real`: the base scenario's real images as `fleet::real::load` read them.
    pub fn new(base: &FleetScenario, real: Vec<RealImage>) -> Self {
        FleetExperiment { configs: base.population.real.clone(), real, chunk_size: base.chunk_size.bytes() }
    }
}

impl Experiment for FleetExperiment {
    type Scenario = FleetScenario;

    fn kind(&self) -> &'static str {
        "fleet"
    }

    fn inputs(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for (i, img) in self.real.iter().enumerate() {
            let mut h = Sha256::new();
            for c in &img.chunks {
                h.update(c.to_string());
                h.update(b"\n");
            }
            m.insert(format!("real.{i}.image_sha256"), hex::encode(h.finalize()));
            let ws = match &img.working_set {
                Some(ws) => {
                    let text: Vec<String> = ws.iter().map(u32::to_string).collect();
                    hex::encode(Sha256::digest(text.join(",")))
                }
                None => "drawn from read_fraction".to_string(),
            };
            m.insert(format!("real.{i}.working_set_sha256"), ws);
        }
        m
    }

    /// The checks a scenario file gets (`FleetScenario::validate`), on the overridden scenario;
    /// the real images are the base's (loaded once), so a point cannot change them.
    fn validate(&self, sc: &FleetScenario) -> Result<(), String> {
        sc.validate().map_err(|e| e.to_string())?;
        if sc.population.real != self.configs {
            return Err("population.real cannot vary within a sweep (the images are loaded once)".into());
        }
        if !self.real.is_empty() && sc.chunk_size.bytes() != self.chunk_size {
            return Err(format!(
                "chunk_size {} differs from the real images' ({} bytes): with real images it cannot vary",
                sc.chunk_size, self.chunk_size
            ));
        }
        Ok(())
    }

    fn run(&self, sc: &FleetScenario, seed: u64) -> Result<Outcome, String> {
        let report = fleet::run_with(sc, seed, &self.real);
        Ok(Outcome { metrics: report.metrics(), distributions: report.distributions_ms(&QUANTILE_LEVELS) })
    }

    fn headline(&self) -> &'static [&'static str] {
        HEADLINE
    }
}
