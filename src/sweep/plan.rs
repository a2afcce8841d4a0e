//! `sweep --plan`: sizes a study before it runs. It lists the grid's points, estimates each
//! point's run time and memory from a short calibration run of point 0, and suggests how many
//! array tasks finish the sweep within a target wall time.
//!
//! Calibration: an experiment whose scenario has a top-level `duration` (a simulated time span,
//! as the fleet's has; with its `warmup` and `tick`) runs point 0 shortened to about 1/8 of its
//! simulated time (a warm-up, not measured), then at 1/8 and 1/4 (half a point in all), and fits `cost = fixed + per_unit * simulated time` through the
//! two runs, for the wall time and for the peak memory alike (set-up such as building the
//! population is the fixed part; events grow with simulated time). Each point is then estimated
//! at its own simulated time, so a grid over `duration` is sized point by point; a grid over
//! other knobs (cache sizes, chunk size) is estimated at point 0's cost. An experiment without a
//! `duration` (the replay: one start) runs point 0 whole, once, and every point is estimated at
//! that. Memory is the process's peak resident set during a run (Linux: `VmHWM` after resetting
//! it through `/proc/self/clear_refs`), so it is what a task running one point at a time needs
//! (a task with `c` cores runs `c` points at once); elsewhere it is not measured. Extrapolating
//! memory linearly in simulated time is an upper bound when the caches fill early.
//!
//! The suggested array size is the smallest task count whose busiest task (round robin, as
//! `--shard` deals points) stays within the target, assuming a task runs its points one after
//! another (one core per task); a task with `c` cores runs up to `c` points at once.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use toml::Value;

use super::{Experiment, Grid, Shard, SweepError};
use crate::overrides;
use crate::sim::SimDuration;
use crate::units::ByteSize;

/// The calibration runs' share of point 0's simulated time.
/// The first is run once more beforehand, unmeasured, so that neither timed run pays the
/// process's first page faults and lazy set-up.
pub const FRACTIONS: [f64; 2] = [1.0 / 8.0, 1.0 / 4.0];

/// A wall-clock time span (`--target-wall 1h`), parsed like scenario durations (`90s`, `45min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallTime(pub Duration);

impl FromStr for WallTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d: SimDuration = s.parse().map_err(|e| format!("{e}"))?;
        if d.is_zero() {
            return Err(format!("{s:?}: the target wall time must be above zero"));
        }
        Ok(WallTime(Duration::from_nanos(d.as_nanos())))
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&seconds(self.0.as_secs_f64()))
    }
}

/// Seconds in a human unit: `850ms`, `12.4s`, `3.5min`, `2.1h`.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.1}min", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// One calibration run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Share of point 0's simulated time (1 for an experiment without `duration`).
    pub fraction: f64,
    pub seconds: f64,
    /// The process's peak resident memory during the run (what a task running one point at a
    /// time needs); `None` where unmeasured.
    pub peak_bytes: Option<u64>,
}

/// A cost model `fixed + per_unit * fraction`, fraction being a point's simulated time over
/// point 0's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub fixed: f64,
    pub per_unit: f64,
}

impl Linear {
    /// Through two samples; a negative slope (noise) falls back to proportional through the
    /// larger sample, and one sample (or two at one fraction) gives a constant.
    fn fit(points: &[(f64, f64)]) -> Linear {
        match points {
            [(f1, y1), (f2, y2)] if (f2 - f1).abs() > 1e-9 => {
                let per_unit = (y2 - y1) / (f2 - f1);
                let fixed = y1 - per_unit * f1;
                if per_unit >= 0.0 && fixed >= 0.0 {
                    Linear { fixed, per_unit }
                } else if per_unit < 0.0 {
                    Linear { fixed: y1.max(*y2), per_unit: 0.0 }
                } else {
                    Linear { fixed: 0.0, per_unit: y2 / f2 }
                }
            }
            _ => Linear { fixed: points.iter().map(|p| p.1).fold(0.0, f64::max), per_unit: 0.0 },
        }
    }

    pub fn at(&self, fraction: f64) -> f64 {
        self.fixed + self.per_unit * fraction
    }
}

/// One point's estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub index: usize,
    pub label: String,
    pub seconds: f64,
    pub memory: Option<ByteSize>,
}

/// What `--plan` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub experiment: String,
    pub grid: String,
    /// How the calibration ran (for the reader).
    pub method: String,
    pub samples: Vec<Sample>,
    pub points: Vec<Estimate>,
    pub target: Option<WallTime>,
    /// The suggested array size and its busiest task's estimated time.
    pub suggestion: Option<(usize, f64)>,
}

/// A scenario's simulated time in nanoseconds (`warmup + duration`) when it has a `duration`.
fn simulated_ns(table: &toml::Table) -> Option<u64> {
    let get = |k: &str| match table.get(k) {
        Some(Value::Integer(n)) if *n >= 0 => Some(*n as u64),
        _ => None,
    };
    Some(get("duration")? + get("warmup").unwrap_or(0))
}

/// `sc` with `duration` and `warmup` cut to about `fraction` of themselves, in whole ticks
/// (at least one tick of duration).
fn shortened<S: serde::Serialize + serde::de::DeserializeOwned>(
    sc: &S,
    fraction: f64,
) -> Result<Option<(S, f64)>, SweepError> {
    let table = overrides::to_table(sc)?;
    let Some(full) = simulated_ns(&table) else { return Ok(None) };
    let int = |k: &str| match table.get(k) {
        Some(Value::Integer(n)) => *n as u64,
        _ => 0,
    };
    let tick = int("tick").max(1);
    let cut =
        |ns: u64, min_ticks: u64| ((ns as f64 * fraction / tick as f64).round() as u64).max(min_ticks) * tick;
    let (duration, warmup) = (cut(int("duration"), 1), cut(int("warmup"), 0));
    let mut sets = vec![("duration".to_string(), duration.to_string())];
    if table.contains_key("warmup") {
        sets.push(("warmup".to_string(), warmup.to_string()));
    }
    // The fleet's warm-up runs on until its figures stop drifting: the calibration runs hold it to
    // the shortened minimum (the estimates therefore assume the shortest warm-up).
    if table.get("steady").and_then(|v| v.get("max_warmup")).is_some() {
        sets.push(("steady.max_warmup".to_string(), warmup.to_string()));
    }
    let short = overrides::apply(sc, &sets)?;
    let got = simulated_ns(&overrides::to_table(&short)?).unwrap_or(full);
    Ok(Some((short, got as f64 / full.max(1) as f64)))
}

/// Peak resident memory since the last reset, and the current, in bytes (Linux `/proc`).
fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Runs `f` once, timing it and measuring the process's peak resident memory during it.
fn measure<T>(f: impl FnOnce() -> T) -> (T, f64, Option<u64>) {
    // "5" resets the peak resident set to the current one (Linux 4.0 and later).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let start = Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    let peak = rss().filter(|_| reset).map(|(hwm, _)| hwm);
    (out, secs, peak)
}

/// Plans `grid` over `base`: every point is built and validated as a run would (a bad value fails
/// here too), point 0 is calibrated, every point estimated, and an array size suggested for
/// `target`.
pub fn plan<E: Experiment>(
    exp: &E,
    base: &E::Scenario,
    grid: &Grid,
    seed: u64,
    target: Option<WallTime>,
) -> Result<Plan, SweepError> {
    let point_err =
        |index: usize, label: String| move |reason: String| SweepError::Point { index, label, reason };
    exp.validate(base).map_err(point_err(0, "base scenario".into()))?;
    let mut scenarios = Vec::with_capacity(grid.len());
    for p in grid.points() {
        let sc = overrides::apply(base, &p.overrides)?;
        exp.validate(&sc).map_err(point_err(p.index, p.label()))?;
        scenarios.push(sc);
    }
    let first = &scenarios[0];
    let label0 = grid.point(0).label();
    let run = |sc: &E::Scenario| exp.run(sc, seed).map_err(point_err(0, label0.clone()));
    let mut samples = Vec::new();
    let method;
    let full_ns = simulated_ns(&overrides::to_table(first)?);
    if let Some(full_ns) = full_ns {
        let (warm, _) = shortened(first, FRACTIONS[0])?.expect("the scenario has a duration");
        exp.validate(&warm).map_err(point_err(0, format!("{label0}, shortened")))?;
        run(&warm)?;
        for f in FRACTIONS {
            let (short, fraction) = shortened(first, f)?.expect("the scenario has a duration");
            exp.validate(&short).map_err(point_err(0, format!("{label0}, shortened to {f}")))?;
            let (out, secs, peak) = measure(|| run(&short));
            out?;
            samples.push(Sample { fraction, seconds: secs, peak_bytes: peak });
        }
        method = format!(
            "point 0 run at {} of its {} simulated time; cost fitted as fixed + per simulated time",
            samples.iter().map(|s| format!("{:.3}", s.fraction)).collect::<Vec<_>>().join(" and "),
            SimDuration::from_nanos_f64(full_ns as f64),
        );
    } else {
        let (out, secs, peak) = measure(|| run(first));
        out?;
        samples.push(Sample { fraction: 1.0, seconds: secs, peak_bytes: peak });
        method = "point 0 run once, whole (the experiment has no simulated duration to shorten); \
                  every point estimated at its cost"
            .to_string();
    }
    let time = Linear::fit(&samples.iter().map(|s| (s.fraction, s.seconds)).collect::<Vec<_>>());
    let memory = samples
        .iter()
        .map(|s| s.peak_bytes.map(|b| (s.fraction, b as f64)))
        .collect::<Option<Vec<_>>>()
        .map(|m| Linear::fit(&m));
    let mut points = Vec::with_capacity(grid.len());
    for (p, sc) in grid.points().zip(&scenarios) {
        let fraction = match (full_ns, simulated_ns(&overrides::to_table(sc)?)) {
            (Some(full), Some(mine)) => mine as f64 / full.max(1) as f64,
            _ => 1.0,
        };
        points.push(Estimate {
            index: p.index,
            label: p.label(),
            seconds: time.at(fraction),
            memory: memory.map(|m| ByteSize(m.at(fraction).round() as u64)),
        });
    }
    let suggestion = target.map(|t| suggest(&points, t.0.as_secs_f64()));
    Ok(Plan {
        experiment: exp.kind().to_string(),
        grid: grid.to_string(),
        method,
        samples,
        points,
        target,
        suggestion,
    })
}

/// The smallest task count whose busiest task (round robin) is within `target` seconds, and that
/// task's time; when no count is (a point alone is longer), one task per point.
fn suggest(points: &[Estimate], target: f64) -> (usize, f64) {
    let n = points.len();
    let busiest = |tasks: usize| {
        (1..=tasks)
            .map(|i| Shard { index: i, count: tasks }.points(n).map(|p| points[p].seconds).sum::<f64>())
            .fold(0.0, f64::max)
    };
    let total: f64 = points.iter().map(|p| p.seconds).sum();
    let lower = ((total / target).ceil() as usize).clamp(1, n.max(1));
    (lower..=n).map(|t| (t, busiest(t))).find(|&(_, b)| b <= target).unwrap_or((n, busiest(n)))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan: {} sweep, {} points, grid {}", self.experiment, self.points.len(), self.grid)?;
        writeln!(f, "calibration: {}", self.method)?;
        for s in &self.samples {
            let mem = s.peak_bytes.map(|b| ByteSize(b).to_string()).unwrap_or_else(|| "unmeasured".into());
            writeln!(f, "  at {:.3}: {}, peak memory {mem}", s.fraction, seconds(s.seconds))?;
        }
        let mut t = crate::report::Table::new(["#", "point", "est. time", "est. memory"].map(String::from));
        for p in &self.points {
            let mem = p.memory.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
            t.row([p.index.to_string(), p.label.clone(), seconds(p.seconds), mem]);
        }
        write!(f, "{t}")?;
        let total: f64 = self.points.iter().map(|p| p.seconds).sum();
        writeln!(f, "whole grid: {} of one core", seconds(total))?;
        match (self.target, self.suggestion) {
            (Some(target), Some((tasks, busiest))) => {
                let within = if busiest <= target.0.as_secs_f64() {
                    "within"
                } else {
                    "over (a point alone is longer than)"
                };
                writeln!(
                    f,
                    "target wall {target}: {tasks} array task{} (--array=1-{tasks}, --shard auto), busiest ~{} at one core per task, {within} the target",
                    if tasks == 1 { "" } else { "s" },
                    seconds(busiest)
                )
            }
            _ => writeln!(f, "give --target-wall (e.g. 1h) for a suggested array size"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::run::tests::{ToyExperiment, toy};

    fn est(seconds: &[f64]) -> Vec<Estimate> {
        seconds
            .iter()
            .enumerate()
            .map(|(index, &s)| Estimate { index, label: String::new(), seconds: s, memory: None })
            .collect()
    }

    #[test]
    fn suggestion_is_the_fewest_tasks_within_the_target() {
        assert_eq!(suggest(&est(&[10.0; 8]), 80.0), (1, 80.0));
        assert_eq!(suggest(&est(&[10.0; 8]), 25.0), (4, 20.0));
        assert_eq!(suggest(&est(&[10.0; 8]), 30.0), (3, 30.0));
        // A point longer than the target: one task per point.
        assert_eq!(suggest(&est(&[10.0, 50.0]), 20.0), (2, 50.0));
        // Round robin decides: [30, 1, 30, 1] in 2 tasks puts both 30s together.
        assert_eq!(suggest(&est(&[30.0, 1.0, 30.0, 1.0]), 35.0).0, 3);
    }

    #[test]
    fn linear_fit_and_its_fallbacks() {
        let l = Linear::fit(&[(0.1, 2.0), (0.2, 3.0)]);
        assert!((l.fixed - 1.0).abs() < 1e-9 && (l.at(1.0) - 11.0).abs() < 1e-9, "{l:?}");
        // Noise gave a falling cost: no slope.
        assert_eq!(Linear::fit(&[(0.1, 3.0), (0.2, 2.0)]), Linear { fixed: 3.0, per_unit: 0.0 });
        // A negative intercept: proportional through the larger sample.
        assert_eq!(Linear::fit(&[(0.1, 1.0), (0.2, 4.0)]), Linear { fixed: 0.0, per_unit: 20.0 });
        assert_eq!(Linear::fit(&[(1.0, 5.0)]), Linear { fixed: 5.0, per_unit: 0.0 });
    }

    #[test]
    fn wall_times_parse_like_scenario_durations() {
        assert_eq!("1h".parse::<WallTime>(), Ok(WallTime(Duration::from_secs(3600))));
        assert_eq!("90s".parse::<WallTime>().unwrap().to_string(), "1.5min");
        assert_eq!("45s".parse::<WallTime>().unwrap().to_string(), "45.0s");
        assert!("0s".parse::<WallTime>().unwrap_err().contains("above zero"));
        assert!("1".parse::<WallTime>().is_err());
    }

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Timed {
        duration: u64,
        warmup: u64,
        tick: u64,
    }

    #[test]
    fn a_duration_is_shortened_in_whole_ticks() {
        let sc = Timed { duration: 120, warmup: 60, tick: 10 };
        let (short, f) = shortened(&sc, 1.0 / 8.0).unwrap().unwrap();
        assert_eq!(short, Timed { duration: 20, warmup: 10, tick: 10 });
        assert!((f - 30.0 / 180.0).abs() < 1e-12);
        // Never below one tick of duration.
        let (short, _) = shortened(&sc, 0.001).unwrap().unwrap();
        assert_eq!((short.duration, short.warmup), (10, 0));
        assert!(shortened(&toy(), 0.5).unwrap().is_none());
    }

    #[test]
    fn a_scenario_without_duration_is_run_once_whole() {
        let grid = Grid::parse("cache.capacity=1GiB,4GiB,16GiB").unwrap();
        let p = plan(&ToyExperiment, &toy(), &grid, 1, Some("1h".parse().unwrap())).unwrap();
        assert_eq!(p.samples.len(), 1);
        assert_eq!(p.samples[0].fraction, 1.0);
        assert_eq!(p.points.len(), 3);
        assert!(p.points.iter().all(|e| e.seconds == p.points[0].seconds));
        assert_eq!(p.suggestion.unwrap().0, 1);
        let text = p.to_string();
        assert!(text.contains("3 points") && text.contains("cache.capacity=16GiB"), "{text}");
        assert!(text.contains("--array=1-1"), "{text}");
        // Bad points fail the plan as they would the run.
        let bad = Grid::parse("scale=1,-1").unwrap();
        assert!(plan(&ToyExperiment, &toy(), &bad, 1, None).unwrap_err().to_string().contains("point 1"));
    }
}
