//! A trace mapped onto a block image: each access as the page-aligned byte range it reads. What
//! the replay engines consume; `ingest::mapping` produces it from a trace and the image's metadata.

use std::ops::{Range, RangeInclusive};

use serde::Serialize;

use crate::units::BLOCK_SIZE;

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
    /// When the record's request was answered, if the trace says (version 3, FUSE recordings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_us: Option<u64>,
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

/// A trace mapped onto one block image.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TraceMap {
    pub accesses: Vec<MappedAccess>,
    /// Records whose path does not exist in the image (their lookups still cost metadata).
    pub missing: u64,
    /// Reads and mmaps of something that is not a regular file.
    pub not_files: u64,
    /// Bytes the trace asked for past the end of files (dropped).
    pub clipped_bytes: u64,
}

impl TraceMap {
    /// Distinct 4 KiB pages of the block image the trace touches.
    pub fn pages(&self) -> u64 {
        let mut ranges: Vec<Range<u64>> = self.accesses.iter().map(|a| a.bytes.clone()).collect();
        ranges.sort_by_key(|r| r.start);
        let mut total = 0;
        let mut end = 0;
        for r in ranges {
            let start = r.start.max(end);
            if r.end > start {
                total += r.end - start;
            }
            end = end.max(r.end);
        }
        total / BLOCK_SIZE
    }
}
