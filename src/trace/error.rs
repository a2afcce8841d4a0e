//! Errors of the trace stage.
//!
//! A message names the file (as the caller labelled it), the 1-based line number when there is one,
//! and the reason, so it can be printed as is. Errors are returned, never logged.

use std::io;

/// Everything that can go wrong reading, writing or importing a trace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the file failed.
    #[error("{file}: {source}")]
    Io { file: String, source: io::Error },

    /// A line does not follow the format (trace format or strace output).
    #[error("{file}:{line}: {reason}")]
    Line { file: String, line: u64, reason: String },

    /// The header names a format version this build does not read.
    #[error(
        "{file}:1: trace format version {found} is not supported (this build reads versions 1 to {supported})"
    )]
    Version { file: String, found: u64, supported: u32 },

    /// A record handed to the writer breaks a format rule (order, path form, empty range).
    #[error("{file}: record {index}: {reason}")]
    InvalidRecord { file: String, index: u64, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
