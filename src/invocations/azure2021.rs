//! The Azure Functions invocation trace of 2021 (Zhang et al., "Faster and Cheaper Serverless
//! Computing on Harvested Resources", SOSP 2021): one row per invocation,
//! `app,func,end_timestamp,duration`, both in seconds from the trace's start, the file sorted by
//! `end_timestamp`.
//!
//! The trace names no owners: each app stands as its own owner ([`Names::owner`] of the app hash).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use super::{Invocation, InvocationsError, Names, column, csv_error, field, line_of, open_csv};
use crate::sim::time::{SimDuration, SimTime};

/// Invocations by start time. The file is sorted by end; an invocation that ended at `e` after
/// running `d` started at `e - d`, so rows are held back until no later row can start earlier:
/// with every duration at most `max_duration`, a row whose start is at or before the latest end
/// read minus `max_duration` is final. Memory: the invocations of one `max_duration` window. A
/// longer duration is an error naming its line (raise the bound).
pub struct Azure2021Source {
    path: PathBuf,
    rows: csv::Reader<std::fs::File>,
    cols: [usize; 4],
    width: usize,
    names: Names,
    max_duration: SimDuration,
    last_end: f64,
    /// (start, sequence number, invocation).
    held: BinaryHeap<Reverse<(SimTime, u64, InvocationKey)>>,
    seq: u64,
    done: bool,
}

/// An invocation in the heap (ordered by its fields; the start and sequence number decide first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct InvocationKey {
    owner: u32,
    app: u32,
    function: u32,
    duration: u64,
}

impl Azure2021Source {
    /// Opens `path`; `names` interns the app and function hashes (take it back with
    /// [`names`](Self::names)).
    pub fn open(path: &Path, names: Names, max_duration: SimDuration) -> Result<Self, InvocationsError> {
        let (rows, header) = open_csv(path)?;
        let cols = [
            column(path, &header, "app")?,
            column(path, &header, "func")?,
            column(path, &header, "end_timestamp")?,
            column(path, &header, "duration")?,
        ];
        Ok(Azure2021Source {
            path: path.to_path_buf(),
            rows,
            cols,
            width: header.len(),
            names,
            max_duration,
            last_end: f64::NEG_INFINITY,
            held: BinaryHeap::new(),
            seq: 0,
            done: false,
        })
    }

    /// The interned names so far.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Reads one row into the heap; `false` at the end of the file.
    fn read_row(&mut self) -> Result<bool, InvocationsError> {
        let mut r = csv::StringRecord::new();
        if !self.rows.read_record(&mut r).map_err(|e| csv_error(&self.path, e))? {
            return Ok(false);
        }
        let path = &self.path;
        if r.len() != self.width {
            return Err(InvocationsError::Columns {
                path: path.clone(),
                line: line_of(&r),
                expected: self.width,
                found: r.len(),
            });
        }
        let [app, func, end, dur] = self.cols;
        let end_s: f64 = field(path, &r, end, "end_timestamp", "a number of seconds")?;
        let dur_s: f64 = field(path, &r, dur, "duration", "a number of seconds")?;
        let bad = |f: &str, reason: String| InvocationsError::Field {
            path: path.clone(),
            line: line_of(&r),
            field: f.into(),
            reason,
        };
        if !end_s.is_finite() || end_s < 0.0 {
            return Err(bad("end_timestamp", format!("{end_s} is not a time since the trace's start")));
        }
        if !dur_s.is_finite() || dur_s < 0.0 {
            return Err(bad("duration", format!("{dur_s} is not a non-negative duration")));
        }
        if dur_s > end_s {
            return Err(bad(
                "duration",
                format!("{dur_s} s would start before the trace (end_timestamp {end_s})"),
            ));
        }
        let duration = SimDuration::from_secs_f64(dur_s);
        if duration > self.max_duration {
            return Err(bad(
                "duration",
                format!("{dur_s} s is longer than the reorder bound {}", self.max_duration),
            ));
        }
        if end_s < self.last_end {
            return Err(InvocationsError::Unsorted {
                path: path.clone(),
                line: line_of(&r),
                field: "end_timestamp",
                value: end_s,
                previous: self.last_end,
            });
        }
        self.last_end = end_s;
        let (a, f) = (r[app].trim(), r[func].trim());
        if a.is_empty() || f.is_empty() {
            return Err(bad(if a.is_empty() { "app" } else { "func" }, "empty".into()));
        }
        let key = InvocationKey {
            owner: self.names.owner(a).0,
            app: self.names.app(a, a).0,
            function: self.names.function(a, a, f).0,
            duration: duration.as_nanos(),
        };
        let start = SimTime::from_nanos(
            SimDuration::from_secs_f64(end_s).as_nanos().saturating_sub(duration.as_nanos()),
        );
        self.held.push(Reverse((start, self.seq, key)));
        self.seq += 1;
        Ok(true)
    }

    fn pop(&mut self) -> Option<Invocation> {
        let Reverse((start, _, k)) = self.held.pop()?;
        Some(Invocation {
            owner: super::OwnerId(k.owner),
            app: super::AppId(k.app),
            function: super::FunctionId(k.function),
            start,
            duration: Some(SimDuration::from_nanos(k.duration)),
        })
    }
}

impl Iterator for Azure2021Source {
    type Item = Result<Invocation, InvocationsError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(Reverse((start, _, _))) = self.held.peek() {
                let horizon = SimDuration::from_secs_f64(self.last_end.max(0.0)).as_nanos();
                if self.done || start.as_nanos() + self.max_duration.as_nanos() <= horizon {
                    return self.pop().map(Ok);
                }
            } else if self.done {
                return None;
            }
            match self.read_row() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    self.held.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}
