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
