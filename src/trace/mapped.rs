//! A trace mapped onto a block image: each access as the page-aligned byte range it reads. What
//! the replay engines consume; `ingest::mapping` produces it from a trace and the image's metadata.

use std::ops::{Range, RangeInclusive};

use serde::Serialize;

/// What part of the block image an access reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Metadata,
    Data,
}

/// One page-aligned byte range of the block image that one trace record reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappedAccess {
    pub t_us: u64,
    pub thread: u32,
    pub region: Region,
    /// Page-aligned byte range in the block image.
    pub bytes: Range<u64>,
    /// Index of the record (in the trace) this access comes from.
    pub record: usize,
}

impl MappedAccess {
    /// The chunks this access needs, for a given chunk size.
    pub fn chunks(&self, chunk_size: u64) -> RangeInclusive<u32> {
        (self.bytes.start / chunk_size) as u32..=((self.bytes.end - 1) / chunk_size) as u32
    }
}
