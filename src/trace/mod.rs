//! The trace stage: what files one sandbox start touches, and when.
//!
//! A trace is a time-ordered list of file accesses (open, stat, exec, read, mmap) by path inside the
//! image root, in the versioned JSON-lines format of docs/trace-format.md ([`mod@format`]). Traces come from
//! real programs ([`strace`]: strace output of a run in a chroot of an extracted image) and are
//! summarised by [`stats`]. A trace mapped onto a block image is a list of [`MappedAccess`]es (the
//! mapping itself, which reads the image's metadata, is `ingest::mapping`); what a `mmap` record
//! costs is chosen by [`MmapRule`]. The replay engines (`crate::replay`, `crate::fleet`) consume it.

mod error;
pub mod footprint;
pub mod format;
mod mapped;
mod mmap;
pub mod stats;
pub mod strace;

pub use error::{Error, Result};
pub use format::{Access, Header, Op, Reader, Record, Run, TracePath, Writer};
pub use mapped::{MappedAccess, Region, TraceMap};
pub use mmap::{MmapRule, mmaps_to_reads};
pub use stats::TraceStats;
