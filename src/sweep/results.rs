//! The results of a sweep or of one shard: JSON (everything, the file merge reads), CSV (one
//! row per point, one column per metric) and merge. Every file carries the seed, the tool's
//! version, the experiment and its inputs, the grid and the effective base scenario.
//!
//! Byte-identical by construction: rows sorted by point index, maps ordered, floats printed
//! shortest-round-trip, nothing from the clock or the machine. A merged file is the unsharded
//! run's file, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Grid, Shard, SweepError};

/// Version of this file format; bump it when a field changes meaning.
pub const FORMAT: u32 = 1;

/// How points are seeded, recorded in every file (see `run`).
pub const SEEDING: &str = "shared: every point runs with the sweep's seed (common random numbers)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepResults {
    pub format: u32,
    pub chunkload_version: String,
    pub experiment: String,
    /// What the experiment read besides the scenario (digests, start states).
    pub inputs: BTreeMap<String, String>,
    pub seed: u64,
    pub seeding: String,
    /// The canonical grid spec.
    pub grid: String,
    /// Points in the whole grid (not only in this shard).
    pub points: usize,
    /// Which slice this file holds; absent for a whole run or a merge.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<Shard>,
    /// The effective base scenario (TOML) every point's overrides apply to.
    pub scenario: String,
    pub rows: Vec<Row>,
}

/// One point's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub index: usize,
    /// `key=value;...` in axis order (a one-point grid spec).
    pub label: String,
    pub overrides: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    /// Quantiles at `QUANTILE_LEVELS`, per distribution.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub distributions: BTreeMap<String, Vec<f64>>,
}

fn results_err(path: &Path, reason: impl Into<String>) -> SweepError {
    SweepError::Results { path: path.display().to_string(), reason: reason.into() }
}

impl SweepResults {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("results always serialise");
        s.push('\n');
        s
    }

    /// Reads a results file, checking it is one this version understands and is consistent.
    pub fn read(path: &Path) -> Result<SweepResults, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|e| results_err(path, e.to_string()))?;
        let r: SweepResults = serde_json::from_str(&text)
            .map_err(|e| results_err(path, format!("not a sweep results file: {e}")))?;
        if r.format != FORMAT {
            return Err(results_err(
                path,
                format!("format {} (this chunkload reads format {FORMAT})", r.format),
            ));
        }
        let grid = Grid::parse(&r.grid).map_err(|e| results_err(path, e.to_string()))?;
        if grid.len() != r.points || grid.to_string() != r.grid {
            return Err(results_err(path, "the grid does not match its point count"));
        }
        for row in &r.rows {
            if row.index >= r.points || grid.point(row.index).label() != row.label {
                return Err(results_err(
                    path,
                    format!("row {} ({}) is not a point of the grid", row.index, row.label),
                ));
            }
        }
        Ok(r)
    }

    /// Metric names over all rows, sorted.
    pub fn metric_names(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.rows.iter().flat_map(|r| r.metrics.keys()).collect();
        set.into_iter().cloned().collect()
    }

    /// The grid's keys in axis order.
    pub fn keys(&self) -> Vec<String> {
        Grid::parse(&self.grid).map(|g| g.axes().iter().map(|a| a.key.clone()).collect()).unwrap_or_default()
    }

    /// A one-line provenance note: version, experiment, seed, grid (and shard).
    pub fn provenance(&self) -> String {
        let shard = self.shard.map(|s| format!(", shard {s}")).unwrap_or_default();
        format!(
            "chunkload {} sweep, experiment {}, seed {}, grid {}{shard}",
            self.chunkload_version, self.experiment, self.seed, self.grid
        )
    }

    /// CSV: `#` comment lines with the provenance, inputs and effective scenario (pandas:
    /// `comment='#'`), then `index,label,<grid keys>,<metrics>`; a metric a point lacks is empty.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {}", self.provenance());
        let _ = writeln!(out, "# seeding: {}", self.seeding);
        for (k, v) in &self.inputs {
            let _ = writeln!(out, "# input {k} = {v}");
        }
        let _ = writeln!(out, "# effective base scenario:");
        for line in self.scenario.lines() {
            let _ = writeln!(out, "#   {line}");
        }
        let keys = self.keys();
        let metrics = self.metric_names();
        let header: Vec<String> = ["index", "label"]
            .iter()
            .map(|s| s.to_string())
            .chain(keys.iter().cloned())
            .chain(metrics.iter().cloned())
            .collect();
        let _ = writeln!(out, "{}", header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
        for row in &self.rows {
            let mut cells = vec![row.index.to_string(), csv_field(&row.label)];
            cells.extend(
                keys.iter().map(|k| csv_field(row.overrides.get(k).map(String::as_str).unwrap_or(""))),
            );
            cells.extend(
                metrics.iter().map(|m| row.metrics.get(m).map(|v| v.to_string()).unwrap_or_default()),
            );
            let _ = writeln!(out, "{}", cells.join(","));
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Joins shard files into the file one unsharded run writes. The shards must come from the same
/// experiment, inputs, version, seed, grid and scenario, with one shard count, and together hold
/// every shard exactly once; each shard must hold exactly its points. Argument order is free.
/// When shards are missing or given twice, the error lists every such index (and the files of
/// each duplicate), so the tasks to rerun can be read off it.
pub fn merge(files: &[(String, SweepResults)]) -> Result<SweepResults, SweepError> {
    let merr = |s: String| SweepError::Merge(s);
    let Some((first_name, first)) = files.first() else {
        return Err(merr("no shard files given".into()));
    };
    let mut by_index: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    let mut count = None;
    for (name, r) in files {
        let Some(shard) = r.shard else {
            return Err(merr(format!("{name} is a whole run, not a shard (it has no shard field)")));
        };
        let same = |what: &str, a: &str, b: &str| {
            if a == b {
                Ok(())
            } else {
                Err(merr(format!("{name} is from a different {what} than {first_name}: {b:?} vs {a:?}")))
            }
        };
        same("experiment", &first.experiment, &r.experiment)?;
        same("chunkload version", &first.chunkload_version, &r.chunkload_version)?;
        same("seed", &first.seed.to_string(), &r.seed.to_string())?;
        same("grid", &first.grid, &r.grid)?;
        if first.scenario != r.scenario {
            // Whole scenarios are long: name the first line that differs and both digests.
            let (a, b) = first
                .scenario
                .lines()
                .map(Some)
                .chain(std::iter::repeat(None))
                .zip(r.scenario.lines().map(Some).chain(std::iter::repeat(None)))
                .find(|(a, b)| a != b)
                .unwrap_or((None, None));
            return Err(merr(format!(
                "{name} is from a different base scenario than {first_name} (sha256 {} vs {}): {:?} vs {:?}",
                digest(&r.scenario),
                digest(&first.scenario),
                b.unwrap_or("(end)"),
                a.unwrap_or("(end)"),
            )));
        }
        same("input set", &format!("{:?}", first.inputs), &format!("{:?}", r.inputs))?;
        same("seeding", &first.seeding, &r.seeding)?;
        match count {
            None => count = Some(shard.count),
            Some(n) if n != shard.count => {
                return Err(merr(format!(
                    "{name} is shard {shard} but {first_name} is one of {n} shards: all shards must split the grid the same way"
                )));
            }
            Some(_) => {}
        }
        let want: Vec<usize> = shard.points(r.points).collect();
        let have: Vec<usize> = r.rows.iter().map(|row| row.index).collect();
        if want != have {
            return Err(merr(format!(
                "{name} does not hold exactly the points of shard {shard} (incomplete or edited)"
            )));
        }
        by_index.entry(shard.index).or_default().push(name);
    }
    let n = count.expect("at least one file");
    let missing: Vec<String> = (1..=n).filter(|i| !by_index.contains_key(i)).map(|i| i.to_string()).collect();
    let twice: Vec<String> = by_index
        .iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(i, names)| format!("{i} ({})", names.join(", ")))
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing shard{} {} of {n}", plural(missing.len()), missing.join(", ")));
    }
    if !twice.is_empty() {
        problems.push(format!("shard{} given more than once: {}", plural(twice.len()), twice.join("; ")));
    }
    if !problems.is_empty() {
        return Err(merr(problems.join("; ")));
    }
    let mut rows: Vec<Row> = files.iter().flat_map(|(_, r)| r.rows.iter().cloned()).collect();
    rows.sort_by_key(|r| r.index);
    Ok(SweepResults { shard: None, rows, ..first.clone() })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Hex SHA-256 of a text (the first 16 digits: enough to tell two scenarios apart in a message).
fn digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// Writes `bytes` to `path` through a temporary file in the same directory, flushed to disk, and
/// a rename, so a reader never sees a half-written file under the final name: a task killed
/// before the rename leaves only `.<name>.<random>.partial`, which nothing reads. Each writer has
/// its own temporary name, so two attempts of one task (a retry racing a straggler) cannot
/// interleave their bytes; they write the same bytes, and the last rename wins.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    use std::io::Write as _;
    let werr = |source| SweepError::Write { path: path.display().to_string(), source };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(werr)?;
    tmp.write_all(bytes).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    tmp.persist(path).map_err(|e| werr(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::run::tests::{ToyExperiment, toy};
    use crate::sweep::{Grid, run};
    use proptest::prelude::*;

    const GRID: &str = "cache.capacity=1GiB,4GiB,16GiB;cache.policy=lru,s3-fifo,lfu";

    fn sweep(shard: Option<Shard>) -> SweepResults {
        run(&ToyExperiment, &toy(), &Grid::parse(GRID).unwrap(), 3, shard, &|| {}).unwrap()
    }

    fn shards(n: usize) -> Vec<(String, SweepResults)> {
        (1..=n).map(|i| (format!("s{i}"), sweep(Some(Shard::new(i, n).unwrap())))).collect()
    }

    #[test]
    fn json_round_trips_and_csv_has_a_column_per_metric() {
        let whole = sweep(None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.json");
        write_atomic(&p, whole.to_json().as_bytes()).unwrap();
        assert_eq!(SweepResults::read(&p).unwrap(), whole);
        // A rewrite (a retried task) replaces the file and leaves no temporary behind.
        write_atomic(&p, whole.to_json().as_bytes()).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["results.json"]);
        assert!(write_atomic(&dir.path().join("no/such/dir.json"), b"x").is_err());
        let csv = whole.to_csv();
        assert!(csv.starts_with("# chunkload "), "{csv}");
        assert!(csv.contains("seed 3") && csv.contains("#   scale = 1.0"), "{csv}");
        let header = csv.lines().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(
            header,
            "index,label,cache.capacity,cache.policy,belady.hit_ratio.cache,hit_ratio.cache,seed,tier_chunks.hit,tier_chunks.miss"
        );
        assert_eq!(csv.lines().filter(|l| !l.starts_with('#')).count(), 10);
    }

    #[test]
    fn merged_shards_equal_the_whole_run_byte_for_byte() {
        let whole = sweep(None).to_json();
        for n in [1, 2, 3, 4, 9, 12] {
            assert_eq!(merge(&shards(n)).unwrap().to_json(), whole, "{n} shards");
        }
    }

    proptest! {
        #[test]
        fn merge_does_not_depend_on_the_order_of_its_files(n in 1usize..7, seed in any::<u64>()) {
            let mut files = shards(n);
            let want = merge(&files).unwrap().to_json();
            // A seeded shuffle (Fisher-Yates driven by a simple LCG).
            let mut s = seed;
            for i in (1..files.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                files.swap(i, (s >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(merge(&files).unwrap().to_json(), want);
        }
    }

    #[test]
    fn merge_refuses_missing_duplicate_foreign_and_edited_shards() {
        let e = |files: &[(String, SweepResults)]| merge(files).unwrap_err().to_string();
        let mut s = shards(3);
        let third = s.remove(2);
        assert!(e(&s).ends_with("merge: missing shard 3 of 3"), "{}", e(&s));
        let mut dup = s.clone();
        dup.push(("again".into(), s[0].1.clone()));
        assert!(
            e(&dup).ends_with("missing shard 3 of 3; shard given more than once: 1 (s1, again)"),
            "{}",
            e(&dup)
        );
        // Every missing and doubled index is listed, whatever the order of the files.
        let mut six = shards(6);
        six.retain(|(n, _)| n != "s2" && n != "s5");
        six.push(("s4b".into(), six[2].1.clone()));
        six.push(("s1b".into(), six[0].1.clone()));
        six.reverse();
        assert!(
            e(&six)
                .ends_with("missing shards 2, 5 of 6; shards given more than once: 1 (s1b, s1); 4 (s4b, s4)"),
            "{}",
            e(&six)
        );
        let mut foreign = s.clone();
        let mut other = third.1.clone();
        other.grid = "cache.capacity=1GiB".into();
        foreign.push(("other".into(), other));
        assert!(e(&foreign).contains("other is from a different grid"), "{}", e(&foreign));
        let mut seeded = s.clone();
        let mut other = third.1.clone();
        other.seed = 4;
        seeded.push(("other".into(), other));
        assert!(e(&seeded).contains("different seed"));
        let mut rescened = s.clone();
        let mut other = third.1.clone();
        other.scenario = other.scenario.replace("scale = 1.0", "scale = 0.5");
        rescened.push(("other".into(), other));
        let msg = e(&rescened);
        assert!(msg.contains("other is from a different base scenario than s1 (sha256 "), "{msg}");
        assert!(msg.contains("\"scale = 0.5\" vs \"scale = 1.0\""), "{msg}");
        let mut versioned = s.clone();
        let mut other = third.1.clone();
        other.chunkload_version = "0.0.1".into();
        versioned.push(("other".into(), other));
        assert!(e(&versioned).contains("different chunkload version"), "{}", e(&versioned));
        let mut mixed = s.clone();
        mixed.push(("four".into(), shards(4).remove(2).1));
        assert!(e(&mixed).contains("split the grid the same way"), "{}", e(&mixed));
        let mut edited = s.clone();
        let mut cut = third.1.clone();
        cut.rows.pop();
        edited.push(("cut".into(), cut));
        assert!(e(&edited).contains("does not hold exactly"), "{}", e(&edited));
        assert!(e(&[("whole".into(), sweep(None))]).contains("whole run"));
        assert!(e(&[]).contains("no shard files"));
    }

    #[test]
    fn reading_rejects_what_is_not_a_results_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, "{\"format\": 1}").unwrap();
        assert!(SweepResults::read(&p).unwrap_err().to_string().contains("not a sweep results file"));
        let mut r = sweep(None);
        r.format = 99;
        std::fs::write(&p, r.to_json()).unwrap();
        assert!(SweepResults::read(&p).unwrap_err().to_string().contains("format 99"));
        let mut r = sweep(None);
        r.rows[0].label = "cache.capacity=2GiB".into();
        std::fs::write(&p, r.to_json()).unwrap();
        assert!(SweepResults::read(&p).unwrap_err().to_string().contains("not a point of the grid"));
        assert!(SweepResults::read(&dir.path().join("none.json")).is_err());
    }
}
