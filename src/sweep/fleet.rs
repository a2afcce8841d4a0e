//! The fleet experiment: one whole fleet simulation (`chunkload simulate`, docs/fleet-model.md)
//! per point. The scenario is `fleet::FleetScenario`; nothing is read besides it, so the results'
//! `inputs` is empty and the recorded base scenario identifies the run.
//!
//! Metrics are the report's (`FleetReport::metrics`): source shares, L2 hit rate, S3 requests,
//! latency percentiles, and the names the charts look for (`hit_ratio.l1`, `hit_ratio.l2`,
//! `belady.hit_ratio.l2` when `l2_belady` is on, `tier_chunks.{l1,l2,s3}`). Distributions: the
//! report's latency histograms (`cold_start_ms`, `agent_read_ms`, `stripe_fetch_*_ms`) read at
//! [`QUANTILE_LEVELS`].

use std::collections::BTreeMap;

use super::{Experiment, Outcome, QUANTILE_LEVELS};
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

/// Runs `fleet::run` at every point.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetExperiment;

impl Experiment for FleetExperiment {
    type Scenario = FleetScenario;

    fn kind(&self) -> &'static str {
        "fleet"
    }

    fn inputs(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// The checks a scenario file gets (`FleetScenario::validate`), on the overridden scenario.
    fn validate(&self, sc: &FleetScenario) -> Result<(), String> {
        sc.validate().map_err(|e| e.to_string())
    }

    fn run(&self, sc: &FleetScenario, seed: u64) -> Result<Outcome, String> {
        let report = fleet::run(sc, seed);
        Ok(Outcome { metrics: report.metrics(), distributions: report.distributions_ms(&QUANTILE_LEVELS) })
    }

    fn headline(&self) -> &'static [&'static str] {
        HEADLINE
    }
}
