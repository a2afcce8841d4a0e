//! Maps a trace onto a block image: each access goes path -> inode -> extent in the block image
//! -> 4 KiB pages -> chunk indices. Path lookups (open, stat, exec) cost the metadata they would
//! read (directory entries, inodes, symlink targets); reads and mmaps cost the pages of the file
//! they touch, clipped to the file's size. Below this point only offsets, sizes and times remain.

use std::ops::Range;

use crate::layout::{BLOCK_SIZE, BlockMeta};
use crate::trace::{Access, MappedAccess, MmapRule, Record, Region, TraceMap};

fn page_aligned(r: Range<u64>) -> Range<u64> {
    r.start / BLOCK_SIZE * BLOCK_SIZE..r.end.div_ceil(BLOCK_SIZE) * BLOCK_SIZE
}

/// Maps every record; `rule` says what an mmap reads.
pub fn map_trace<I: IntoIterator<Item = Record>>(meta: &BlockMeta, records: I, rule: MmapRule) -> TraceMap {
    let mut out = TraceMap::default();
    let meta_base = meta.superblock.meta_offset;
    for (i, rec) in records.into_iter().enumerate() {
        let at = |region, bytes: Range<u64>| MappedAccess {
            t_us: rec.t_us,
            done_us: rec.done_us,
            thread: rec.thread,
            region,
            bytes: page_aligned(bytes),
            record: i,
        };
        let range = match rec.access {
            Access::Open | Access::Stat | Access::Exec => {
                let (found, touched) = meta.resolve(rec.path.as_bytes(), true);
                if found.is_none() {
                    out.missing += 1;
                }
                let mut merged: Vec<Range<u64>> = touched
                    .into_iter()
                    .filter(|r| r.end > r.start)
                    .map(|r| page_aligned(meta_base + r.start..meta_base + r.end))
                    .collect();
                merged.sort_by_key(|r| r.start);
                merged.dedup();
                out.accesses.extend(merged.into_iter().map(|r| at(Region::Metadata, r)));
                continue;
            }
            Access::Read { offset, len } => Some((offset, len)),
            Access::Mmap { offset, len } => rule.read_for(offset, len),
        };
        let Some((offset, len)) = range else { continue };
        let (found, _) = meta.resolve(rec.path.as_bytes(), true);
        let Some(ino) = found else {
            out.missing += 1;
            continue;
        };
        let Some(extent) = meta.inode(ino).byte_range() else {
            out.not_files += 1;
            continue;
        };
        let size = extent.end - extent.start;
        let end = offset.saturating_add(len).min(size);
        let served = end.saturating_sub(offset);
        out.clipped_bytes += len - served;
        if served == 0 {
            continue;
        }
        out.accesses.push(at(Region::Data, extent.start + offset..extent.start + end));
    }
    out
}

/// How well a trace fits an image: of the distinct files the trace reads or maps, how many the
/// image has. A trace recorded in this image reads only files that exist (its failed lookups are
/// stats and opens, not reads); one recorded in another image reads files this one lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PathFit {
    /// Distinct paths the trace reads or maps.
    pub read_paths: usize,
    /// Of those, the ones missing from the image.
    pub missing_read_paths: usize,
}

impl PathFit {
    /// Above this share of missing read paths, the trace is refused as another image's.
    pub const REFUSE_ABOVE: f64 = 0.5;
    /// Above this share, a warning.
    pub const WARN_ABOVE: f64 = 0.05;

    /// Measures `records` against the image `meta` describes.
    pub fn measure(meta: &BlockMeta, records: &[Record]) -> PathFit {
        let mut paths: Vec<&[u8]> = records
            .iter()
            .filter(|r| matches!(r.access, Access::Read { .. } | Access::Mmap { .. }))
            .map(|r| r.path.as_bytes())
            .collect();
        paths.sort_unstable();
        paths.dedup();
        let missing = paths.iter().filter(|p| meta.resolve(p, true).0.is_none()).count();
        PathFit { read_paths: paths.len(), missing_read_paths: missing }
    }

    /// The share of read paths missing (0 for a trace that reads nothing).
    pub fn missing_share(&self) -> f64 {
        if self.read_paths == 0 { 0.0 } else { self.missing_read_paths as f64 / self.read_paths as f64 }
    }

    /// The numbers, for a message: `192 of the 207 files it reads (92.8%)`.
    pub fn describe(&self) -> String {
        format!(
            "{} of the {} {} it reads ({:.1}%)",
            self.missing_read_paths,
            self.read_paths,
            if self.read_paths == 1 { "file" } else { "files" },
            100.0 * self.missing_share()
        )
    }
}
