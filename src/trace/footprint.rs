//! What a trace touches of one block image, in totals: pages, chunks, metadata and data page
//! reads, and what could not be mapped (`chunkload trace map`). The mapping itself is
//! `ingest::map_trace`; this sums it up against the whole image.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::MmapRule;
use super::mapped::{Region, TraceMap};
use crate::stats::percent_f64 as pct;
use crate::units::BLOCK_SIZE;
use crate::units::ByteSize;

/// Which trace, on which image, read how.
#[derive(Debug, Clone)]
pub struct MapSubject {
    pub trace: String,
    pub image: String,
    pub records: usize,
    pub mmap_rule: MmapRule,
}

/// The sizes of the image the trace was mapped onto.
#[derive(Debug, Clone, Copy)]
pub struct ImageSizes {
    pub chunk_size: u64,
    pub image_bytes: u64,
    /// Bytes of live file data (the flattened tree's regular files).
    pub live_file_bytes: u64,
}

/// A trace's footprint on a block image. Fields are in name order: the JSON keys come out sorted,
/// as `trace map --json` has always printed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceFootprint {
    /// `pages_touched` pages of 4 KiB.
    pub bytes_touched: u64,
    pub chunk_size: u64,
    pub chunks_in_image: u64,
    /// Distinct chunks any mapped access falls in.
    pub chunks_touched: u64,
    /// Bytes asked for past the end of files (dropped).
    pub clipped_bytes: u64,
    /// Data page reads, before overlapping reads are merged.
    pub data_page_reads_bytes: u64,
    pub image: String,
    pub image_bytes: u64,
    pub live_file_bytes: u64,
    /// Metadata page reads (path lookups), before overlapping reads are merged.
    pub metadata_page_reads_bytes: u64,
    pub missing_paths: u64,
    pub mmap_rule: String,
    pub not_files: u64,
    /// Distinct pages of the block image the trace reads.
    pub pages_touched: u64,
    pub records: usize,
    pub trace: String,
}

impl TraceFootprint {
    /// Sums up `map` (the trace of `subject` mapped onto an image of `sizes`).
    pub fn measure(subject: MapSubject, map: &TraceMap, sizes: ImageSizes) -> Self {
        let cs = sizes.chunk_size;
        let mut chunks = BTreeSet::new();
        let (mut meta_bytes, mut data_bytes) = (0u64, 0u64);
        for a in &map.accesses {
            chunks.extend(a.chunks(cs));
            match a.region {
                Region::Metadata => meta_bytes += a.bytes.end - a.bytes.start,
                Region::Data => data_bytes += a.bytes.end - a.bytes.start,
            }
        }
        let pages = map.pages();
        TraceFootprint {
            bytes_touched: pages * BLOCK_SIZE,
            chunk_size: cs,
            chunks_in_image: sizes.image_bytes.div_ceil(cs),
            chunks_touched: chunks.len() as u64,
            clipped_bytes: map.clipped_bytes,
            data_page_reads_bytes: data_bytes,
            image: subject.image,
            image_bytes: sizes.image_bytes,
            live_file_bytes: sizes.live_file_bytes,
            metadata_page_reads_bytes: meta_bytes,
            missing_paths: map.missing,
            mmap_rule: subject.mmap_rule.to_string(),
            not_files: map.not_files,
            pages_touched: pages,
            records: subject.records,
            trace: subject.trace,
        }
    }
}

impl fmt::Display for TraceFootprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cs = ByteSize(self.chunk_size);
        writeln!(
            f,
            "trace {} on {} ({} records, mmap rule {})",
            self.trace, self.image, self.records, self.mmap_rule
        )?;
        writeln!(
            f,
            "  block image      {} in {} chunks of {cs}",
            ByteSize(self.image_bytes),
            self.chunks_in_image
        )?;
        writeln!(
            f,
            "  pages touched    {} ({}, {:.1}% of the live file bytes)",
            self.pages_touched,
            ByteSize(self.bytes_touched),
            pct(self.bytes_touched as f64, self.live_file_bytes as f64)
        )?;
        writeln!(
            f,
            "  chunks touched   {} ({:.1}% of the image's chunks; {} fetched at {cs})",
            self.chunks_touched,
            pct(self.chunks_touched as f64, self.chunks_in_image as f64),
            ByteSize(self.chunks_touched * self.chunk_size),
        )?;
        writeln!(
            f,
            "  page reads       {} metadata, {} data (before de-duplication)",
            ByteSize(self.metadata_page_reads_bytes),
            ByteSize(self.data_page_reads_bytes)
        )?;
        writeln!(
            f,
            "  not mapped       {} missing paths, {} non-file reads, {} past end of file",
            self.missing_paths,
            self.not_files,
            ByteSize(self.clipped_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::MappedAccess;

    fn access(region: Region, bytes: std::ops::Range<u64>) -> MappedAccess {
        MappedAccess { t_us: 0, done_us: None, thread: 0, region, bytes, record: 0 }
    }

    #[test]
    fn totals_count_distinct_pages_and_chunks_and_split_metadata_from_data() {
        let map = TraceMap {
            accesses: vec![
                access(Region::Metadata, 0..4096),
                access(Region::Data, 8192..16384),
                // Overlaps the previous read: pages and chunks count once, page reads twice.
                access(Region::Data, 12288..20480),
                access(Region::Data, 40960..45056),
            ],
            missing: 2,
            not_files: 1,
            clipped_bytes: 10,
        };
        let subject =
            MapSubject { trace: "t".into(), image: "i".into(), records: 9, mmap_rule: MmapRule::Whole };
        let sizes = ImageSizes { chunk_size: 16384, image_bytes: 65536 + 1, live_file_bytes: 40960 };
        let t = TraceFootprint::measure(subject, &map, sizes);
        assert_eq!((t.pages_touched, t.bytes_touched), (5, 5 * 4096));
        assert_eq!((t.chunks_touched, t.chunks_in_image), (3, 5));
        assert_eq!((t.metadata_page_reads_bytes, t.data_page_reads_bytes), (4096, 20480));
        assert_eq!((t.missing_paths, t.not_files, t.clipped_bytes), (2, 1, 10));
        assert_eq!(t.mmap_rule, "whole");
        // The JSON is what a sorted-key map of the same values prints (json! did so before).
        let sorted = serde_json::to_value(&t).unwrap();
        assert_eq!(serde_json::to_string_pretty(&t).unwrap(), serde_json::to_string_pretty(&sorted).unwrap());
    }
}
