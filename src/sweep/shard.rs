//! `--shard i/n`: one slice of a grid, so a large sweep spreads over machines through any batch
//! scheduler (a shell loop, a SLURM array, a CI matrix). `i` is 1-based (`1/3`, `2/3`, `3/3`),
//! as array task ids usually are. `--shard auto` reads `i` (and `n` where the scheduler tells it)
//! from a SLURM, Kubernetes Indexed Job or AWS Batch array task's environment ([`ShardSpec`]). Shard `i` holds the points whose index `p` has
//! `p % n == i - 1` (round robin): neighbouring points often cost alike (the last axis varies
//! fastest), so dealing them out balances the shards better than contiguous slices.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::SweepError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, SweepError> {
        let err = |reason: String| SweepError::Shard { spec: format!("{index}/{count}"), reason };
        if count == 0 {
            return Err(err("the shard count must be at least 1".into()));
        }
        if index == 0 || index > count {
            return Err(err(format!("the shard index is 1-based: 1 to {count}")));
        }
        Ok(Shard { index, count })
    }

    /// Whether point `p` (0-based grid index) belongs to this shard.
    pub fn contains(&self, p: usize) -> bool {
        p % self.count == self.index - 1
    }

    /// This shard's point indices of a `total`-point grid, ascending.
    pub fn points(&self, total: usize) -> impl Iterator<Item = usize> {
        (self.index - 1..total).step_by(self.count)
    }
}

impl FromStr for Shard {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| SweepError::Shard { spec: s.to_string(), reason: reason.to_string() };
        let (i, n) = s.split_once('/').ok_or_else(|| err("expected i/n, e.g. 2/8"))?;
        let i: usize = i.trim().parse().map_err(|_| err("the shard index is not a number"))?;
        let n: usize = n.trim().parse().map_err(|_| err("the shard count is not a number"))?;
        Shard::new(i, n).map_err(|e| match e {
            SweepError::Shard { reason, .. } => SweepError::Shard { spec: s.to_string(), reason },
            other => other,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What `--shard` was given: an explicit slice, or `auto` (read the array task's index from the
/// batch scheduler's environment, see [`ShardSpec::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    Explicit(Shard),
    Auto,
}

impl FromStr for ShardSpec {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "auto" { Ok(ShardSpec::Auto) } else { s.parse().map(ShardSpec::Explicit) }
    }
}

/// A shard and where it came from (for the task's log): `3/16 from SLURM_ARRAY_TASK_ID=3, ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub shard: Shard,
    /// The variables (and flag) the shard was read from, `NAME=value, ...`; empty when explicit.
    pub source: String,
}

/// The array-task variables `--shard auto` reads, in the order it looks for them.
pub const SLURM_TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";
pub const AWS_BATCH_INDEX: &str = "AWS_BATCH_JOB_ARRAY_INDEX";

impl ShardSpec {
    /// The shard this task runs. `count` is `--shard-count` (only with `auto`); `env` looks a
    /// variable up (`|k| std::env::var(k).ok()` in the binary; a map in tests).
    ///
    /// - SLURM: the index is `SLURM_ARRAY_TASK_ID` itself, so arrays are submitted 1-based
    ///   (`--array=1-N`). The count is `count` when given, else `SLURM_ARRAY_TASK_COUNT` (or
    ///   `MAX - MIN + 1`), and then the array must be exactly `1-N` (step 1): a resubmitted part
    ///   of an array (`--array=3`) cannot tell the whole's size, so it needs `--shard-count`.
    /// - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (0-based) + 1, count from `count`.
    /// - AWS Batch array job: `AWS_BATCH_JOB_ARRAY_INDEX` (0-based) + 1, count from `count`.
    ///
    /// Exactly one of the three must be set; none or several is an error naming them.
    pub fn resolve(
        self,
        count: Option<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolved, SweepError> {
        match self {
            ShardSpec::Explicit(shard) => {
                if count.is_some() {
                    return Err(auto_err(format!(
                        "--shard-count goes with --shard auto; --shard {shard} already names the count"
                    )));
                }
                Ok(Resolved { shard, source: String::new() })
            }
            ShardSpec::Auto => resolve_auto(count, env),
        }
    }
}

fn auto_err(reason: String) -> SweepError {
    SweepError::Shard { spec: "auto".into(), reason }
}

/// A variable as a number, or an error naming it and its value.
fn number(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>, SweepError> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| auto_err(format!("{name}={v:?} is not a non-negative whole number"))),
    }
}

fn resolve_auto(count: Option<usize>, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved, SweepError> {
    let set: Vec<&str> =
        [SLURM_TASK_ID, K8S_INDEX, AWS_BATCH_INDEX].into_iter().filter(|k| env(k).is_some()).collect();
    let flag = |n: usize| format!("--shard-count {n}");
    let checked = |index: usize, n: usize, source: String| {
        Shard::new(index, n).map(|shard| Resolved { shard, source: source.clone() }).map_err(|e| match e {
            SweepError::Shard { reason, .. } => auto_err(format!("{source}: {reason}")),
            other => other,
        })
    };
    match set.as_slice() {
        [] => {
            let hint = if env("SLURM_JOB_ID").is_some() {
                " (SLURM_JOB_ID is set: this SLURM job is not an array; submit it with sbatch --array=1-N)"
            } else {
                ""
            };
            Err(auto_err(format!(
                "no array task index in the environment: none of {SLURM_TASK_ID} (SLURM, with \
                 SLURM_ARRAY_TASK_COUNT or --shard-count), {K8S_INDEX} (Kubernetes Indexed Job, with \
                 --shard-count) or {AWS_BATCH_INDEX} (AWS Batch array job, with --shard-count) is set{hint}; \
                 outside a job array give --shard I/N"
            )))
        }
        [SLURM_TASK_ID] => {
            let id = number(env, SLURM_TASK_ID)?.expect("set");
            let mut source = format!("{SLURM_TASK_ID}={id}");
            if let Some(n) = count {
                source.push_str(&format!(", {}", flag(n)));
                return checked(id, n, source);
            }
            let (min, max, total) = (
                number(env, "SLURM_ARRAY_TASK_MIN")?,
                number(env, "SLURM_ARRAY_TASK_MAX")?,
                number(env, "SLURM_ARRAY_TASK_COUNT")?,
            );
            let n = match (total, min, max) {
                (Some(n), _, _) => n,
                (None, Some(lo), Some(hi)) if hi >= lo => hi - lo + 1,
                _ => {
                    return Err(auto_err(format!(
                        "{source} but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MIN/MAX is set: \
                         give the shard count with --shard-count N"
                    )));
                }
            };
            source.push_str(&format!(", SLURM_ARRAY_TASK_COUNT={n}"));
            // Without the flag the array must be the whole 1..N (else the count says nothing).
            let (lo, hi) = (min.unwrap_or(1), max.unwrap_or(n));
            if lo != 1 || hi != n {
                return Err(auto_err(format!(
                    "{source} with SLURM_ARRAY_TASK_MIN={lo}, SLURM_ARRAY_TASK_MAX={hi}: the array is not \
                     1-{n}, so its size is not the shard count (a resubmitted part of an array, a 0-based \
                     or stepped array); submit --array=1-N, or give the whole count with --shard-count N"
                )));
            }
            checked(id, n, source)
        }
        [zero_based] => {
            let i = number(env, zero_based)?.expect("set");
            let who =
                if *zero_based == K8S_INDEX { "a Kubernetes Indexed Job" } else { "an AWS Batch array job" };
            let Some(n) = count else {
                return Err(auto_err(format!(
                    "{zero_based}={i} is set ({who}) but its environment does not hold the number of \
                     tasks: give it with --shard-count N (the job's completions / array size)"
                )));
            };
            checked(i + 1, n, format!("{zero_based}={i} (0-based), {}", flag(n)))
        }
        several => Err(auto_err(format!(
            "{} are all set: more than one scheduler's array index, so which one this task is is \
             ambiguous; give --shard I/N",
            several.join(" and ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for (bad, why) in [
            ("0/3", "1-based"),
            ("4/3", "1-based"),
            ("1/0", "at least 1"),
            ("x/3", "not a number"),
            ("1/", "not a number"),
            ("3", "expected i/n"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: std::collections::BTreeMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    fn auto(count: Option<usize>, vars: &[(&str, &str)]) -> Result<Shard, String> {
        ShardSpec::Auto.resolve(count, &env_of(vars)).map(|r| r.shard).map_err(|e| e.to_string())
    }

    #[test]
    fn auto_reads_each_schedulers_array_index() {
        assert_eq!("auto".parse::<ShardSpec>().unwrap(), ShardSpec::Auto);
        assert_eq!("2/5".parse::<ShardSpec>().unwrap(), ShardSpec::Explicit(Shard { index: 2, count: 5 }));
        let slurm = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(auto(None, &slurm), Ok(Shard { index: 3, count: 4 }));
        let r = ShardSpec::Auto.resolve(None, &env_of(&slurm)).unwrap();
        assert_eq!(r.source, "SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_COUNT=4");
        let minmax =
            [("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "6")];
        assert_eq!(auto(None, &minmax), Ok(Shard { index: 2, count: 6 }));
        // A resubmitted index (`sbatch --array=3`) with the whole count from the flag.
        let retry = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
        ];
        assert_eq!(auto(Some(4), &retry), Ok(Shard { index: 3, count: 4 }));
        let e = auto(None, &retry).unwrap_err();
        assert!(e.contains("not 1-1") && e.contains("--shard-count"), "{e}");
        assert_eq!(auto(Some(8), &[("JOB_COMPLETION_INDEX", "0")]), Ok(Shard { index: 1, count: 8 }));
        assert_eq!(auto(Some(8), &[("AWS_BATCH_JOB_ARRAY_INDEX", "7")]), Ok(Shard { index: 8, count: 8 }));
        // Explicit shards pass through, and refuse a count flag they do not need.
        let explicit = ShardSpec::Explicit(Shard { index: 1, count: 2 });
        assert_eq!(explicit.resolve(None, &env_of(&slurm)).unwrap().shard, Shard { index: 1, count: 2 });
        assert!(explicit.resolve(Some(2), &env_of(&[])).unwrap_err().to_string().contains("--shard auto"));
    }

    #[test]
    fn auto_names_what_is_missing_or_wrong() {
        for (count, vars, want) in [
            (
                None,
                vec![],
                vec![
                    "SLURM_ARRAY_TASK_ID",
                    "JOB_COMPLETION_INDEX",
                    "AWS_BATCH_JOB_ARRAY_INDEX",
                    "--shard I/N",
                ],
            ),
            (None, vec![("SLURM_JOB_ID", "42")], vec!["not an array", "--array=1-N"]),
            (None, vec![("SLURM_ARRAY_TASK_ID", "1")], vec!["SLURM_ARRAY_TASK_COUNT", "--shard-count"]),
            (
                None,
                vec![("JOB_COMPLETION_INDEX", "2")],
                vec!["JOB_COMPLETION_INDEX=2", "Kubernetes", "--shard-count"],
            ),
            (None, vec![("AWS_BATCH_JOB_ARRAY_INDEX", "0")], vec!["AWS Batch", "--shard-count"]),
            (
                Some(4),
                vec![("AWS_BATCH_JOB_ARRAY_INDEX", "4")],
                vec!["AWS_BATCH_JOB_ARRAY_INDEX=4", "1 to 4"],
            ),
            (
                Some(4),
                vec![("JOB_COMPLETION_INDEX", "x")],
                vec!["JOB_COMPLETION_INDEX=\"x\"", "whole number"],
            ),
            (Some(4), vec![("SLURM_ARRAY_TASK_ID", "0")], vec!["SLURM_ARRAY_TASK_ID=0", "1-based"]),
            (
                None,
                vec![
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_MIN", "0"),
                    ("SLURM_ARRAY_TASK_MAX", "3"),
                ],
                vec!["MIN=0", "not 1-4"],
            ),
            (
                Some(2),
                vec![("SLURM_ARRAY_TASK_ID", "1"), ("JOB_COMPLETION_INDEX", "0")],
                vec!["ambiguous", "SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX"],
            ),
        ] {
            let e = auto(count, &vars).unwrap_err();
            assert!(e.starts_with("--shard auto: "), "{e}");
            for w in want {
                assert!(e.contains(w), "{vars:?}: {w:?} not in {e}");
            }
        }
    }

    proptest! {
        #[test]
        fn shards_are_disjoint_and_cover_every_point(total in 0usize..200, count in 1usize..20) {
            let mut seen = vec![0u32; total];
            for i in 1..=count {
                let s = Shard::new(i, count).unwrap();
                for p in s.points(total) {
                    prop_assert!(s.contains(p));
                    seen[p] += 1;
                }
                // `points` and `contains` agree.
                prop_assert_eq!(s.points(total).count(), (0..total).filter(|p| s.contains(*p)).count());
            }
            prop_assert!(seen.iter().all(|&n| n == 1));
        }
    }
}
