//! Request streams out and in: what a cache tier saw, one request per line or record, in the
//! formats the cache-simulation ecosystem reads.
//!
//! - [`oracle`]: libCacheSim's `oracleGeneral` binary format (24-byte little-endian records:
//!   `u32` time, `u64` object id, `u32` size, `i64` next access). [`OracleWriter`] writes records
//!   as they come and fills in every record's next access in one backward pass over the file it
//!   wrote, so a stream larger than memory can be written (memory grows with the distinct objects,
//!   not the requests). [`OracleReader`] reads it back, zstd-compressed or not.
//! - [`csv`]: the same stream as CSV with a header (`time_ns,obj_id,obj_size`), and a reader of any
//!   CSV with named columns (chunkload's own chunk streams included).
//! - [`RequestWriter`] writes one stream in both formats at once: the one call a simulation
//!   makes per request.
//!
//! docs/request-streams.md describes the formats and which stream each command writes.

pub mod csv;
pub mod oracle;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::sim::time::SimTime;

pub use self::csv::{CsvColumns, CsvReader, CsvRecord, CsvWriter};
pub use oracle::{OracleReader, OracleRecord, OracleWriter, RECORD_SIZE};

/// One request a cache saw: when, which object, how many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub time: SimTime,
    pub object: u64,
    pub size: u32,
}

/// The unit of an `oracleGeneral` record's 32-bit time field. The format does not say; libCacheSim
/// reads it as seconds (its `--warmup-sec` and report intervals count in it). A start lasts
/// seconds, so a replay's stream needs a finer unit; a fleet's day fits in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Whole seconds: 136 years fit in `u32`.
    S,
    /// Milliseconds: 49.7 days.
    Ms,
    /// Microseconds: 71.6 minutes.
    Us,
}

impl TimeUnit {
    pub const fn nanos(self) -> u64 {
        match self {
            TimeUnit::S => 1_000_000_000,
            TimeUnit::Ms => 1_000_000,
            TimeUnit::Us => 1_000,
        }
    }

    /// `time` in this unit (rounded down), or `None` when it does not fit the 32-bit field.
    pub fn ticks(self, time: SimTime) -> Option<u32> {
        u32::try_from(time.as_nanos() / self.nanos()).ok()
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            TimeUnit::S => "s",
            TimeUnit::Ms => "ms",
            TimeUnit::Us => "us",
        })
    }
}

impl FromStr for TimeUnit {
    type Err = RequestsError;
    fn from_str(s: &str) -> Result<Self, RequestsError> {
        match s {
            "s" => Ok(TimeUnit::S),
            "ms" => Ok(TimeUnit::Ms),
            "us" => Ok(TimeUnit::Us),
            _ => Err(RequestsError::TimeUnit { given: s.to_string() }),
        }
    }
}

/// Errors reading or writing a request stream; each names the file and, for a bad record, where.
#[derive(Debug, thiserror::Error)]
pub enum RequestsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: {bytes} bytes is not a whole number of 24-byte oracleGeneral records ({} trailing bytes after record {records})",
        path.display(), bytes % 24
    )]
    Truncated { path: PathBuf, bytes: u64, records: u64 },
    #[error("{}: record {record}: time {time} does not fit the 32-bit time field in {unit}", path.display())]
    TimeOverflow { path: PathBuf, record: u64, time: SimTime, unit: TimeUnit },
    #[error("{}: record {record}: next access {next} is not after the record itself (expected -1 or a 1-based request number above {record})", path.display())]
    BadNextAccess { path: PathBuf, record: u64, next: i64 },
    #[error("{}: line {line}, field {field:?}: {reason}", path.display())]
    Field { path: PathBuf, line: u64, field: String, reason: String },
    #[error("{}: no column named {wanted} in the header ({header}); name it with {flag}", path.display())]
    MissingColumn { path: PathBuf, wanted: String, header: String, flag: &'static str },
    #[error("{}: {reason}", path.display())]
    Csv { path: PathBuf, reason: String },
    #[error("unknown time unit {given:?} (valid: s, ms, us)")]
    TimeUnit { given: String },
}

impl RequestsError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> RequestsError + '_ {
        move |source| RequestsError::Io { path: path.to_path_buf(), source }
    }
}

/// What a finished stream holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    pub requests: u64,
    /// Distinct object ids.
    pub objects: u64,
    /// Sum of every request's size.
    pub request_bytes: u64,
    /// Sum of each distinct object's size at its first request.
    pub object_bytes: u64,
}

/// One request stream written as `STEM.oracleGeneral.bin` and `STEM.csv` in a directory: the one
/// call a simulation makes per request is [`push`](Self::push), and [`finish`](Self::finish)
/// completes both files (the binary one's next-access fields are filled in then).
pub struct RequestWriter {
    oracle: OracleWriter,
    csv: CsvWriter,
}

impl RequestWriter {
    /// Creates (or truncates) `DIR/STEM.oracleGeneral.bin` and `DIR/STEM.csv`; the binary file's
    /// time field counts in `unit`.
    pub fn create(dir: &Path, stem: &str, unit: TimeUnit) -> Result<Self, RequestsError> {
        Ok(RequestWriter {
            oracle: OracleWriter::create(&dir.join(format!("{stem}.oracleGeneral.bin")), unit)?,
            csv: CsvWriter::create(&dir.join(format!("{stem}.csv")))?,
        })
    }

    #[inline]
    pub fn push(&mut self, req: Request) -> Result<(), RequestsError> {
        self.oracle.push(req)?;
        self.csv.push(req)
    }

    /// Completes both files; returns what the stream held.
    pub fn finish(self) -> Result<StreamSummary, RequestsError> {
        self.csv.finish()?;
        self.oracle.finish()
    }

    /// The two files' paths: binary, CSV.
    pub fn paths(&self) -> (&Path, &Path) {
        (self.oracle.path(), self.csv.path())
    }
}
