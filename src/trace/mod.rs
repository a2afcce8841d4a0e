//! The trace stage: what files one sandbox start touches, and when.
//!
//! A trace is a time-ordered list of file accesses (open, stat, exec, read, mmap) by path inside the
//! image root, in the versioned JSON-lines format of docs/trace-format.md ([`format`]). Traces come from
//! real programs ([`strace`]: strace output of a run in a chroot of an extracted image) and are
//! summarised by [`stats`]. Mapping paths onto the block image and replaying them come later; what a
//! `mmap` record costs at replay is chosen by [`MmapRule`].

mod error;
pub mod format;
mod mmap;
pub mod stats;
pub mod strace;

pub use error::{Error, Result};
pub use format::{Access, Header, Op, Reader, Record, TracePath, Writer};
pub use mmap::{MmapRule, mmaps_to_reads};
pub use stats::TraceStats;
