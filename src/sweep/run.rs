//! Running a grid (or one shard of it) on every core.
//!
//! Seeding: every point runs with the sweep's seed, the same one. Points of a what-if sweep
//! should see the same workload and the same random draws (common random numbers), so that a
//! difference between two points comes from the knob that differs and not from noise. To
//! replicate a sweep over seeds, run it once per `--seed`.
//!
//! All points' scenarios are built and validated before the first one runs: a bad value fails
//! the sweep at once, not after an hour. Results are collected in point order whatever order
//! the threads finish in.

use rayon::prelude::*;

use super::results::{FORMAT, Row, SweepResults};
use super::{Experiment, Grid, Shard, SweepError};
use crate::overrides;

/// Runs `grid`'s points (those of `shard`, or all) over `base`. `on_done` is called once per
/// finished point, from any thread (a progress bar's `inc`).
pub fn run<E: Experiment>(
    exp: &E,
    base: &E::Scenario,
    grid: &Grid,
    seed: u64,
    shard: Option<Shard>,
    on_done: &(dyn Fn() + Sync),
) -> Result<SweepResults, SweepError> {
    exp.validate(base).map_err(|reason| SweepError::Point {
        index: 0,
        label: "base scenario".into(),
        reason,
    })?;
    let scenario = exp.scenario_toml(base).map_err(|e| SweepError::Results {
        path: "scenario".into(),
        reason: format!("cannot print the scenario as TOML: {e}"),
    })?;
    // Every point of the grid is checked, not only this shard's: a bad value fails every shard
    // at once rather than one shard among many after the others ran.
    let mut planned = Vec::new();
    for point in grid.points() {
        let sc = overrides::apply(base, &point.overrides)?;
        exp.validate(&sc).map_err(|reason| SweepError::Point {
            index: point.index,
            label: point.label(),
            reason,
        })?;
        if shard.is_none_or(|s| s.contains(point.index)) {
            planned.push((point, sc));
        }
    }
    let rows: Vec<Result<Row, SweepError>> = planned
        .into_par_iter()
        .map(|(point, sc)| {
            let label = point.label();
            let out = exp.run(&sc, seed).map_err(|reason| SweepError::Point {
                index: point.index,
                label: label.clone(),
                reason,
            });
            on_done();
            let out = out?;
            if let Some((name, v)) = out.metrics.iter().find(|(_, v)| !v.is_finite()) {
                return Err(SweepError::Point {
                    index: point.index,
                    label,
                    reason: format!("metric {name} is {v}: the experiment must report finite numbers"),
                });
            }
            Ok(Row {
                index: point.index,
                label,
                overrides: point.overrides.into_iter().collect(),
                metrics: out.metrics,
                distributions: out.distributions,
            })
        })
        .collect();
    let rows = rows.into_iter().collect::<Result<Vec<Row>, SweepError>>()?;
    Ok(SweepResults {
        format: FORMAT,
        chunkload_version: env!("CARGO_PKG_VERSION").to_string(),
        experiment: exp.kind().to_string(),
        inputs: exp.inputs(),
        seed,
        seeding: super::results::SEEDING.to_string(),
        grid: grid.to_string(),
        points: grid.len(),
        shard,
        scenario,
        rows,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::sweep::Outcome;
    use crate::units::ByteSize;

    /// A toy experiment: a number that depends on every knob and the seed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Toy {
        pub cache: ToyCache,
        pub scale: f64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ToyCache {
        pub capacity: ByteSize,
        pub policy: String,
    }

    pub struct ToyExperiment;

    impl Experiment for ToyExperiment {
        type Scenario = Toy;
        fn kind(&self) -> &'static str {
            "toy"
        }
        fn inputs(&self) -> BTreeMap<String, String> {
            BTreeMap::from([("input".to_string(), "none".to_string())])
        }
        fn validate(&self, s: &Toy) -> Result<(), String> {
            if s.scale < 0.0 { Err("scale must be >= 0".into()) } else { Ok(()) }
        }
        fn run(&self, s: &Toy, seed: u64) -> Result<Outcome, String> {
            if s.cache.policy == "boom" {
                return Err("the toy refuses boom".into());
            }
            let gib = s.cache.capacity.bytes() as f64 / (1u64 << 30) as f64;
            let bonus = if s.cache.policy == "lru" { 0.0 } else { 0.05 };
            let hit = (gib / (gib + 4.0) + bonus).min(1.0) * s.scale.min(1.0);
            let mut metrics = BTreeMap::new();
            metrics.insert("hit_ratio.cache".into(), hit);
            metrics.insert("belady.hit_ratio.cache".into(), (hit + 0.1).min(1.0));
            metrics.insert("seed".into(), seed as f64);
            metrics.insert("tier_chunks.hit".into(), 100.0 * hit);
            metrics.insert("tier_chunks.miss".into(), 100.0 * (1.0 - hit));
            let samples: Vec<f64> = (1..=50).map(|i| i as f64 * (1.0 - hit)).collect();
            Ok(Outcome {
                metrics,
                distributions: BTreeMap::from([("wait_ms".into(), crate::sweep::quantiles(&samples))]),
            })
        }
    }

    pub fn toy() -> Toy {
        Toy { cache: ToyCache { capacity: ByteSize::gib(1), policy: "lru".into() }, scale: 1.0 }
    }

    #[test]
    fn runs_every_point_in_order_with_the_shared_seed() {
        let grid = Grid::parse("cache.capacity=1GiB,4GiB,16GiB;cache.policy=lru,s3-fifo").unwrap();
        let done = AtomicUsize::new(0);
        let r = run(&ToyExperiment, &toy(), &grid, 7, None, &|| {
            done.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(done.load(Ordering::Relaxed), 6);
        assert_eq!(r.rows.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        assert!(r.rows.iter().all(|r| r.metrics["seed"] == 7.0));
        assert_eq!(r.rows[3].overrides["cache.capacity"], "4GiB");
        assert!(r.rows[4].metrics["hit_ratio.cache"] > r.rows[0].metrics["hit_ratio.cache"]);
        assert!(r.scenario.contains("capacity = 1073741824"), "{}", r.scenario);
        let s = run(&ToyExperiment, &toy(), &grid, 7, Some(Shard::new(2, 4).unwrap()), &|| {}).unwrap();
        assert_eq!(s.rows.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 5]);
        assert_eq!(s.rows[0], r.rows[1], "a shard's row is the whole run's row");
    }

    #[test]
    fn bad_points_fail_before_anything_runs() {
        let done = AtomicUsize::new(0);
        let count = || {
            done.fetch_add(1, Ordering::Relaxed);
        };
        let grid = Grid::parse("scale=1,-1").unwrap();
        let e = run(&ToyExperiment, &toy(), &grid, 1, None, &count).unwrap_err().to_string();
        assert!(e.contains("point 1 (scale=-1)") && e.contains(">= 0"), "{e}");
        let grid = Grid::parse("cache.size=1").unwrap();
        assert!(
            run(&ToyExperiment, &toy(), &grid, 1, None, &count)
                .unwrap_err()
                .to_string()
                .contains("unknown key")
        );
        // A bad point outside the shard still fails the shard.
        let grid = Grid::parse("scale=1,2,-1").unwrap();
        let e = run(&ToyExperiment, &toy(), &grid, 1, Some(Shard::new(1, 3).unwrap()), &count).unwrap_err();
        assert!(e.to_string().contains("point 2 (scale=-1)"), "{e}");
        assert_eq!(done.load(Ordering::Relaxed), 0);
        let grid = Grid::parse("cache.policy=lru,boom").unwrap();
        let e = run(&ToyExperiment, &toy(), &grid, 1, None, &count).unwrap_err().to_string();
        assert!(e.contains("point 1 (cache.policy=boom): the toy refuses boom"), "{e}");
    }
}
