//! Sweeps: one experiment run over a grid of scenario overrides, in parallel, optionally one
//! shard of the grid at a time, with results that merge byte-identically (docs/sweeps.md).
//!
//! `grid` parses `key=v1,v2;...` into indexed points, `crate::overrides` applies a point to any
//! serde scenario, `shard` slices a grid, `run` runs points on every core, `results` is the file
//! format (JSON, CSV, merge), `charts` draws results. Two experiments: `replay` (one start
//! replayed per point) and `fleet` (one fleet simulation per point). An experiment is anything that turns a
//! scenario and a seed into named numbers ([`Experiment`]).

pub mod charts;
pub mod fleet;
pub mod grid;
pub mod page;
pub mod plan;
pub mod replay;
pub mod results;
pub mod run;
pub mod shard;

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use grid::{Grid, Point};
pub use results::{Row, SweepResults};
pub use run::run;
pub use shard::{Shard, ShardSpec};

/// What a sweep runs at each point. `run` must be a pure function of its arguments (same
/// scenario and seed, same numbers): that is what makes shards merge into the bytes of one run.
pub trait Experiment: Sync {
    /// The scenario the grid's keys address (a TOML-shaped serde struct).
    type Scenario: Serialize + DeserializeOwned + Clone + Send + Sync;

    /// Recorded in results (`replay`, `fleet`); merge refuses to mix kinds.
    fn kind(&self) -> &'static str;

    /// What the experiment reads besides the scenario (e.g. digests of the trace and manifest),
    /// recorded in results so that merge refuses shards of different inputs.
    fn inputs(&self) -> BTreeMap<String, String>;

    /// The scenario as the results record and print it (TOML); an experiment whose scenario has
    /// a dump with units (`replay::Scenario::to_toml`) returns that.
    fn scenario_toml(&self, scenario: &Self::Scenario) -> Result<String, String> {
        crate::overrides::to_table(scenario)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::to_string(&t).map_err(|e| e.to_string()))
    }

    /// Checks a point's scenario beyond what deserialising it checks (ranges, consistency).
    fn validate(&self, _scenario: &Self::Scenario) -> Result<(), String> {
        Ok(())
    }

    /// Runs one point. Metric names with these prefixes are charted (see `charts`):
    /// `hit_ratio.<tier>` against a `<tier>.*capacity*` grid key (`belady.hit_ratio.<tier>` as its
    /// bound), `tier_chunks.<tier>` as the tier mix; every entry of `Outcome::distributions` as a CDF.
    fn run(&self, scenario: &Self::Scenario, seed: u64) -> Result<Outcome, String>;

    /// Metrics the terminal table shows (all of them go to CSV and JSON).
    fn headline(&self) -> &'static [&'static str] {
        &[]
    }
}

/// One point's numbers: named metrics (units in the name: `start_time_ms`) and distributions
/// summarised as quantiles at [`QUANTILE_LEVELS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub metrics: BTreeMap<String, f64>,
    pub distributions: BTreeMap<String, Vec<f64>>,
}

/// The levels distributions are reported at: 0 (min), 1%..99%, 99.9%, 100% (max).
pub const QUANTILE_LEVELS: [f64; 102] = {
    let mut l = [0.0; 102];
    let mut i = 1;
    while i < 100 {
        l[i] = i as f64 / 100.0;
        i += 1;
    }
    l[100] = 0.999;
    l[101] = 1.0;
    l
};

/// Quantiles of `samples` at [`QUANTILE_LEVELS`] (nearest rank, `crate::stats`); empty in,
/// empty out.
pub fn quantiles(samples: &[f64]) -> Vec<f64> {
    crate::stats::quantiles(samples, &QUANTILE_LEVELS)
}

/// Why a sweep, a merge or a results file failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("base scenario: {0}")]
    Scenario(String),
    #[error("grid part {part:?}: {reason}")]
    Grid { part: String, reason: String },
    #[error("--shard {spec}: {reason}")]
    Shard { spec: String, reason: String },
    #[error(transparent)]
    Override(#[from] crate::overrides::OverrideError),
    #[error("point {index} ({label}): {reason}")]
    Point { index: usize, label: String, reason: String },
    #[error("merge: {0}")]
    Merge(String),
    #[error("results {path}: {reason}")]
    Results { path: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error(transparent)]
    Plot(#[from] crate::report::plot::PlotError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        assert!(quantiles(&[]).is_empty());
        let q = quantiles(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(q.len(), QUANTILE_LEVELS.len());
        assert_eq!((q[0], q[25], q[50], q[51], q[101]), (1.0, 1.0, 2.0, 3.0, 4.0));
        let many: Vec<f64> = (1..=1000).map(f64::from).collect();
        let q = quantiles(&many);
        assert_eq!((q[50], q[99], q[100]), (500.0, 990.0, 999.0));
    }
}
