//! Public serverless invocation traces as demand: readers of the Azure Functions traces that
//! stream them into plain typed records, with owner, app and function ids interned to dense ids.
//!
//! - [`azure2019`]: the 2019 release, per function and day: invocation counts per minute
//!   (`HashOwner,HashApp,HashFunction,Trigger,1..1440`), execution-time percentiles per function
//!   and allocated-memory percentiles per app. [`azure2019::Azure2019Source`] turns a day into
//!   invocations in time order, spreading each minute's count by the documented, seeded rule
//!   [`azure2019::spread_minute`].
//! - [`azure2021`]: the 2021 release, one row per invocation (`app,func,end_timestamp,duration`,
//!   seconds); [`azure2021::Azure2021Source`] yields them by start time.
//!
//! Both sources are iterators of [`Invocation`] (`Result`s: a malformed row is an error naming the
//! file, line and field). Where the full traces are: docs/invocation-traces.md.

pub mod azure2019;
pub mod azure2021;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sim::time::{SimDuration, SimTime};

/// A trace owner (a customer), interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct OwnerId(pub u32);
/// An application (the unit that owns functions), interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AppId(pub u32);
/// A function, interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FunctionId(pub u32);

/// One invocation: who, when it arrived (simulated time from the trace's start) and how long it
/// ran (`None` when the trace gives no duration for the function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Invocation {
    pub owner: OwnerId,
    pub app: AppId,
    pub function: FunctionId,
    pub start: SimTime,
    pub duration: Option<SimDuration>,
}

/// Anything that yields invocations in order of `start` (ties in a stable, seeded order).
pub trait InvocationSource: Iterator<Item = Result<Invocation, InvocationsError>> {}
impl<T: Iterator<Item = Result<Invocation, InvocationsError>>> InvocationSource for T {}

/// Dense ids for the traces' hashed names, 0, 1, 2, ... in order of first sight, per kind. The 2019
/// files name a function by owner, app and function hash together, so the function's key is all
/// three (two apps may hold functions with equal hashes).
#[derive(Debug, Default, Clone)]
pub struct Names {
    owners: HashMap<String, u32>,
    apps: HashMap<(String, String), u32>,
    functions: HashMap<(String, String, String), u32>,
}

impl Names {
    pub fn owner(&mut self, owner: &str) -> OwnerId {
        let n = self.owners.len() as u32;
        OwnerId(*self.owners.entry(owner.to_string()).or_insert(n))
    }

    pub fn app(&mut self, owner: &str, app: &str) -> AppId {
        let n = self.apps.len() as u32;
        AppId(*self.apps.entry((owner.to_string(), app.to_string())).or_insert(n))
    }

    pub fn function(&mut self, owner: &str, app: &str, function: &str) -> FunctionId {
        let n = self.functions.len() as u32;
        FunctionId(
            *self.functions.entry((owner.to_string(), app.to_string(), function.to_string())).or_insert(n),
        )
    }

    /// Distinct owners, apps and functions seen.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.owners.len(), self.apps.len(), self.functions.len())
    }
}

/// Errors reading an invocation trace; each names the file and, for a bad row, the line and field.
#[derive(Debug, thiserror::Error)]
pub enum InvocationsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: header: {reason}", path.display())]
    Header { path: PathBuf, reason: String },
    #[error("{}: line {line}: expected {expected} fields, found {found}", path.display())]
    Columns { path: PathBuf, line: u64, expected: usize, found: usize },
    #[error("{}: line {line}, field {field:?}: {reason}", path.display())]
    Field { path: PathBuf, line: u64, field: String, reason: String },
    #[error("{}: line {line}: {field} {value} is before the previous row's {previous}: the file must be sorted by it", path.display())]
    Unsorted { path: PathBuf, line: u64, field: &'static str, value: f64, previous: f64 },
    #[error("{}: {reason}", path.display())]
    Csv { path: PathBuf, reason: String },
}

/// Opens a CSV with a header; fields are counted per row by the caller (`flexible`), so a wrong
/// count is reported as [`InvocationsError::Columns`] with its line.
fn open_csv(path: &Path) -> Result<(csv::Reader<std::fs::File>, csv::StringRecord), InvocationsError> {
    let file = std::fs::File::open(path)
        .map_err(|source| InvocationsError::Io { path: path.to_path_buf(), source })?;
    let mut r = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
    let header = r.headers().map_err(|e| csv_error(path, e))?.clone();
    Ok((r, header))
}

fn csv_error(path: &Path, e: csv::Error) -> InvocationsError {
    InvocationsError::Csv { path: path.to_path_buf(), reason: e.to_string() }
}

fn line_of(r: &csv::StringRecord) -> u64 {
    r.position().map_or(0, |p| p.line())
}

/// The column named `name` in `header`.
fn column(path: &Path, header: &csv::StringRecord, name: &str) -> Result<usize, InvocationsError> {
    header.iter().position(|h| h.trim() == name).ok_or_else(|| InvocationsError::Header {
        path: path.to_path_buf(),
        reason: format!("no column {name:?} (found {})", header.iter().collect::<Vec<_>>().join(",")),
    })
}

fn field<T: std::str::FromStr>(
    path: &Path,
    r: &csv::StringRecord,
    at: usize,
    name: &str,
    what: &str,
) -> Result<T, InvocationsError> {
    let raw = r.get(at).unwrap_or("").trim();
    raw.parse::<T>().map_err(|_| InvocationsError::Field {
        path: path.to_path_buf(),
        line: line_of(r),
        field: name.to_string(),
        reason: format!("{raw:?} is not {what}"),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::azure2019::{self, Azure2019Source, CountsReader};
    use super::azure2021::Azure2021Source;
    use super::*;

    fn sample(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/azure2019").join(name)
    }

    #[test]
    fn reads_the_committed_2019_sample() {
        let mut names = Names::default();
        let mut r = CountsReader::open(&sample("invocations.csv")).unwrap();
        assert_eq!(r.first_minute(), 480);
        let mut rows = Vec::new();
        while let Some(row) = r.next_row(&mut names).unwrap() {
            rows.push(row);
        }
        assert_eq!(rows.len(), 12);
        assert!(rows.iter().all(|r| r.counts.len() == 480));
        let total: u64 = rows.iter().flat_map(|r| &r.counts).map(|&c| u64::from(c)).sum();
        assert_eq!(total, 1605, "sum of every count in the file (awk over columns 5..)");
        assert_eq!(rows[0].trigger, "timer");
        assert_eq!(names.counts().2, 12);

        let durations = azure2019::read_durations(&sample("durations.csv"), &mut names).unwrap();
        assert_eq!(durations.len(), 12, "the same 12 functions");
        assert_eq!(names.counts().2, 12, "the durations name no new function");
        let memory = azure2019::read_memory(&sample("memory.csv"), &mut names).unwrap();
        assert!(!memory.is_empty());

        let mut names = Names::default();
        let source =
            Azure2019Source::open(&sample("invocations.csv"), Some(&sample("durations.csv")), &mut names, 7)
                .unwrap();
        let all: Vec<Invocation> = source.map(Result::unwrap).collect();
        assert_eq!(all.len(), 1605);
        assert!(all.windows(2).all(|w| w[0].start <= w[1].start), "time order");
        // Minute 480 starts at 479 minutes.
        assert!(all[0].start >= SimTime::from_nanos(479 * 60 * 1_000_000_000));
        assert!(all.last().unwrap().start < SimTime::from_nanos(959 * 60 * 1_000_000_000));
        assert!(all.iter().all(|i| i.duration.is_some()));
        // Seeded: the same seed gives the same invocations, another seed other instants.
        let again: Vec<Invocation> = Azure2019Source::open(
            &sample("invocations.csv"),
            Some(&sample("durations.csv")),
            &mut Names::default(),
            7,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
        assert_eq!(all, again);
        let other: Vec<Invocation> =
            Azure2019Source::open(&sample("invocations.csv"), None, &mut Names::default(), 8)
                .unwrap()
                .map(Result::unwrap)
                .collect();
        assert_eq!(other.len(), 1605);
        assert_ne!(
            other.iter().map(|i| i.start).collect::<Vec<_>>(),
            all.iter().map(|i| i.start).collect::<Vec<_>>()
        );
    }

    #[test]
    fn spreading_stays_in_the_minute_and_is_sorted() {
        let mut rng = crate::sim::rng::stream(1, "t");
        let start = SimTime::from_nanos(120_000_000_000);
        let at = azure2019::spread_minute(start, 1000, &mut rng);
        assert_eq!(at.len(), 1000);
        assert!(at.windows(2).all(|w| w[0] <= w[1]));
        assert!(at[0] >= start && at[999] < SimTime::from_nanos(180_000_000_000));
        // Uniform: about half in each half-minute.
        let first_half = at.iter().filter(|t| t.as_nanos() < 150_000_000_000).count();
        assert!((400..600).contains(&first_half), "{first_half}");
    }

    #[test]
    fn duration_percentiles_interpolate() {
        let p = azure2019::DurationPercentiles {
            average_ms: 0.0,
            count: 1,
            minimum_ms: 0.0,
            maximum_ms: 0.0,
            percentiles: [
                (0.0, 0.0),
                (0.01, 10.0),
                (0.25, 10.0),
                (0.5, 20.0),
                (0.75, 30.0),
                (0.99, 100.0),
                (1.0, 200.0),
            ],
        };
        assert_eq!(p.at(0.375), SimDuration::from_millis(15));
        assert_eq!(p.at(0.995), SimDuration::from_millis(150));
        assert_eq!(p.at(0.0), SimDuration::ZERO);
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn counts_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "d01.csv", text);
        let mut names = Names::default();
        match CountsReader::open(&p) {
            Err(e) => e.to_string(),
            Ok(mut r) => loop {
                match r.next_row(&mut names) {
                    Err(e) => break e.to_string(),
                    Ok(None) => panic!("no error for {text:?}"),
                    Ok(Some(_)) => {}
                }
            },
        }
    }

    #[test]
    fn hostile_2019_files_name_file_line_and_field() {
        let h = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n";
        let msg = counts_error(&format!("{h}o,a,f,http,1,2,3\no,a,g,http,1,-2,3\n"));
        assert!(
            msg.contains("d01.csv")
                && msg.contains("line 3")
                && msg.contains("\"2\"")
                && msg.contains("negative"),
            "{msg}"
        );
        let msg = counts_error(&format!("{h}o,a,f,http,1,2\n"));
        assert!(msg.contains("line 2") && msg.contains("expected 7 fields, found 6"), "{msg}");
        let msg = counts_error(&format!("{h}o,a,f,http,1,x,3\n"));
        assert!(msg.contains("field \"2\"") && msg.contains("not an integer"), "{msg}");
        let msg = counts_error(&format!("{h},a,f,http,1,2,3\n"));
        assert!(msg.contains("HashOwner") && msg.contains("empty"), "{msg}");
        let msg = counts_error("HashOwner,HashApp,HashFunction,Trigger,1,3\n");
        assert!(msg.contains("header") && msg.contains("\"3\" where 2"), "{msg}");
        let msg = counts_error("HashOwner,HashApp,Trigger,1\n");
        assert!(msg.contains("expected \"HashFunction\""), "{msg}");
        let msg = counts_error("HashOwner,HashApp,HashFunction,Trigger,1440,1441\n");
        assert!(msg.contains("1441"), "{msg}");

        let dir = tempfile::tempdir().unwrap();
        let d = write(
            dir.path(),
            "dur.csv",
            "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,\
             percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\n\
             o,a,f,10,5,1,20,1,2,5,10,8,19,20\n",
        );
        let msg = azure2019::read_durations(&d, &mut Names::default()).unwrap_err().to_string();
        assert!(
            msg.contains("dur.csv") && msg.contains("line 2") && msg.contains("percentile_Average_75"),
            "{msg}"
        );
    }

    fn read_2021(text: &str, max: SimDuration) -> Result<Vec<Invocation>, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "trace2021.csv", text);
        Azure2021Source::open(&p, Names::default(), max)
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_2021_rows_by_start_time() {
        // Sorted by end; starts are end - duration: 9.0, 1.5, 4.0.
        let text = "app,func,end_timestamp,duration\nA,f,10.0,1.0\nB,g,11.5,10.0\nA,f,12.0,8.0\n";
        let inv = read_2021(text, SimDuration::from_secs(60)).unwrap();
        let starts: Vec<u64> = inv.iter().map(|i| i.start.as_nanos()).collect();
        assert_eq!(starts, vec![1_500_000_000, 4_000_000_000, 9_000_000_000]);
        assert_eq!(inv[0].duration, Some(SimDuration::from_secs(10)));
        assert_eq!((inv[1].function, inv[2].function), (FunctionId(0), FunctionId(0)));
        assert_eq!(inv[0].app, AppId(1));
    }

    #[test]
    fn hostile_2021_files_name_file_line_and_field() {
        let h = "app,func,end_timestamp,duration\n";
        let e = read_2021(&format!("{h}A,f,10,1\nA,f,9,1\n"), SimDuration::from_secs(60)).unwrap_err();
        assert!(e.contains("trace2021.csv") && e.contains("line 3") && e.contains("sorted"), "{e}");
        let e = read_2021(&format!("{h}A,f,10,-1\n"), SimDuration::from_secs(60)).unwrap_err();
        assert!(e.contains("line 2") && e.contains("\"duration\""), "{e}");
        let e = read_2021(&format!("{h}A,f,10\n"), SimDuration::from_secs(60)).unwrap_err();
        assert!(e.contains("expected 4 fields, found 3"), "{e}");
        let e = read_2021(&format!("{h}A,f,ten,1\n"), SimDuration::from_secs(60)).unwrap_err();
        assert!(e.contains("\"end_timestamp\"") && e.contains("not a number"), "{e}");
        let e = read_2021(&format!("{h}A,f,100,90\n"), SimDuration::from_secs(60)).unwrap_err();
        assert!(e.contains("reorder bound"), "{e}");
        let e = read_2021("app,function,end_timestamp,duration\n", SimDuration::from_secs(60)).unwrap_err();
        assert!(e.contains("no column \"func\""), "{e}");
    }
}
