//! A trace's summary: how long, how many threads, what was touched and how much of it. These are the
//! numbers to hold against the paper's "6.4% of the image read at start" before any replay.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use super::error::Result;
use super::format::{Access, Header, Op, Record, TracePath};
use crate::report::Table;
use crate::units::ByteSize;

/// How many files the summary lists by bytes read.
pub const TOP_FILES: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceStats {
    pub source: String,
    pub command: String,
    pub records: u64,
    /// Time of the last record, in microseconds since the start of the trace.
    pub duration_us: u64,
    pub threads: u32,
    /// Records per op; every op is present, zero or not.
    pub by_op: BTreeMap<Op, u64>,
    /// Distinct paths over all records.
    pub files: u64,
    /// Distinct paths with at least one read.
    pub files_read: u64,
    /// Sum of read lengths (bytes read twice count twice).
    pub bytes_read: u64,
    /// Bytes covered by the union of read ranges, per file.
    pub distinct_bytes_read: u64,
    /// Sum of mmap lengths.
    pub bytes_mapped: u64,
    /// Bytes covered by the union of read and mmap ranges, per file (mmaps counted whole).
    pub distinct_bytes_touched: u64,
    /// The files with the most bytes read, most first (ties by path).
    pub top_files: Vec<FileStats>,
    /// Reads by size: each bucket holds lengths in (max_len/2, max_len]; from the smallest non-empty
    /// bucket to the largest, empty ones in between included.
    pub read_sizes: Vec<SizeBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStats {
    /// The path in the trace format's escaped spelling.
    pub path: String,
    pub reads: u64,
    pub bytes_read: u64,
    pub distinct_bytes_read: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizeBucket {
    pub max_len: u64,
    pub reads: u64,
}

#[derive(Default)]
struct PerFile {
    reads: u64,
    bytes_read: u64,
    read_ranges: Vec<(u64, u64)>,
    mmap_ranges: Vec<(u64, u64)>,
}

/// Bytes covered by a set of `(offset, len)` ranges.
fn union_len(ranges: &mut [(u64, u64)]) -> u64 {
    ranges.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(u64, u64)> = None; // [start, end)
    for &(off, len) in ranges.iter() {
        let end = off + len;
        cur = match cur {
            Some((s, e)) if off <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((off, end))
            }
            None => Some((off, end)),
        };
    }
    total + cur.map_or(0, |(s, e)| e - s)
}

impl TraceStats {
    /// Summarises a stream of records (as [`super::Reader`] yields them); stops at the first error.
    pub fn from_records<I: IntoIterator<Item = Result<Record>>>(header: &Header, records: I) -> Result<Self> {
        let mut by_op: BTreeMap<Op, u64> = Op::ALL.iter().map(|&op| (op, 0)).collect();
        let mut files: HashMap<TracePath, PerFile> = HashMap::new();
        let mut hist: BTreeMap<u32, u64> = BTreeMap::new();
        let (mut records_n, mut duration_us, mut threads) = (0u64, 0u64, 0u32);
        let (mut bytes_read, mut bytes_mapped) = (0u64, 0u64);
        for r in records {
            let r = r?;
            records_n += 1;
            duration_us = duration_us.max(r.t_us);
            threads = threads.max(r.thread + 1);
            *by_op.entry(r.access.op()).or_default() += 1;
            let f = files.entry(r.path).or_default();
            match r.access {
                Access::Read { offset, len } => {
                    f.reads += 1;
                    f.bytes_read += len;
                    f.read_ranges.push((offset, len));
                    bytes_read += len;
                    *hist.entry(len.next_power_of_two().trailing_zeros()).or_default() += 1;
                }
                Access::Mmap { offset, len } => {
                    f.mmap_ranges.push((offset, len));
                    bytes_mapped += len;
                }
                Access::Open | Access::Stat | Access::Exec => {}
            }
        }
        let (mut distinct_bytes_read, mut distinct_bytes_touched, mut files_read) = (0, 0, 0);
        let mut top: Vec<FileStats> = Vec::new();
        for (path, mut f) in files.iter_mut().map(|(p, f)| (p, std::mem::take(f))) {
            let distinct = union_len(&mut f.read_ranges);
            distinct_bytes_read += distinct;
            let mut all = f.read_ranges;
            all.extend(f.mmap_ranges);
            distinct_bytes_touched += union_len(&mut all);
            if f.reads > 0 {
                files_read += 1;
                top.push(FileStats {
                    path: path.escaped(),
                    reads: f.reads,
                    bytes_read: f.bytes_read,
                    distinct_bytes_read: distinct,
                });
            }
        }
        top.sort_by(|a, b| b.bytes_read.cmp(&a.bytes_read).then_with(|| a.path.cmp(&b.path)));
        top.truncate(TOP_FILES);
        let read_sizes = match (hist.keys().next(), hist.keys().next_back()) {
            (Some(&lo), Some(&hi)) => (lo..=hi)
                .map(|k| SizeBucket { max_len: 1 << k, reads: hist.get(&k).copied().unwrap_or(0) })
                .collect(),
            _ => Vec::new(),
        };
        Ok(TraceStats {
            source: header.source.clone(),
            command: header.command.clone(),
            records: records_n,
            duration_us,
            threads,
            by_op,
            files: files.len() as u64,
            files_read,
            bytes_read,
            distinct_bytes_read,
            bytes_mapped,
            distinct_bytes_touched,
            top_files: top,
            read_sizes,
        })
    }
}

fn size(b: u64) -> String {
    ByteSize(b).to_string()
}

impl fmt::Display for TraceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source    {}", self.source)?;
        writeln!(f, "command   {}", self.command)?;
        writeln!(f, "records   {}", self.records)?;
        writeln!(f, "duration  {:.3} ms", self.duration_us as f64 / 1000.0)?;
        writeln!(f, "threads   {}", self.threads)?;
        writeln!(f, "files     {} ({} read)", self.files, self.files_read)?;
        writeln!(
            f,
            "read      {} ({}), {} distinct",
            self.bytes_read,
            size(self.bytes_read),
            size(self.distinct_bytes_read)
        )?;
        writeln!(f, "mapped    {} ({})", self.bytes_mapped, size(self.bytes_mapped))?;
        writeln!(
            f,
            "touched   {} ({}) distinct, reads and whole mappings",
            self.distinct_bytes_touched,
            size(self.distinct_bytes_touched)
        )?;
        writeln!(f)?;
        let mut t = Table::new(["op", "records"]);
        for (op, n) in &self.by_op {
            t.row([op.to_string(), n.to_string()]);
        }
        write!(f, "{t}")?;
        if !self.top_files.is_empty() {
            writeln!(f)?;
            let mut t = Table::new(["file", "reads", "bytes read", "distinct"]);
            for file in &self.top_files {
                t.row([
                    file.path.clone(),
                    file.reads.to_string(),
                    size(file.bytes_read),
                    size(file.distinct_bytes_read),
                ]);
            }
            write!(f, "{t}")?;
        }
        if !self.read_sizes.is_empty() {
            writeln!(f)?;
            let mut t = Table::new(["read size <=", "reads"]);
            for b in &self.read_sizes {
                t.row([size(b.max_len), b.reads.to_string()]);
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t_us: u64, thread: u32, path: &str, access: Access) -> Result<Record> {
        Ok(Record { t_us, done_us: None, thread, path: TracePath::new(path.as_bytes()).unwrap(), access })
    }

    #[test]
    fn small_trace_gives_exact_numbers() {
        use Access::*;
        let records = vec![
            rec(0, 0, "/a", Open),
            rec(10, 0, "/a", Read { offset: 0, len: 100 }),
            rec(20, 1, "/a", Read { offset: 50, len: 100 }), // overlaps: 150 distinct
            rec(30, 0, "/a", Read { offset: 1000, len: 1 }),
            rec(40, 1, "/b", Read { offset: 0, len: 4096 }),
            rec(50, 1, "/b", Mmap { offset: 0, len: 8192 }), // touched: 8192 for /b
            rec(60, 0, "/c", Stat),
            rec(70, 2, "/d", Mmap { offset: 4096, len: 4096 }),
            rec(75, 2, "/d", Read { offset: 100, len: 3 }),
        ];
        let s = TraceStats::from_records(&Header::new("test", "cmd"), records).unwrap();
        assert_eq!(s.records, 9);
        assert_eq!(s.duration_us, 75);
        assert_eq!(s.threads, 3);
        assert_eq!(s.by_op[&Op::Open], 1);
        assert_eq!(s.by_op[&Op::Read], 5);
        assert_eq!(s.by_op[&Op::Mmap], 2);
        assert_eq!(s.by_op[&Op::Stat], 1);
        assert_eq!(s.by_op[&Op::Exec], 0);
        assert_eq!(s.files, 4);
        assert_eq!(s.files_read, 3);
        assert_eq!(s.bytes_read, 100 + 100 + 1 + 4096 + 3);
        assert_eq!(s.distinct_bytes_read, 150 + 1 + 4096 + 3);
        assert_eq!(s.bytes_mapped, 8192 + 4096);
        // /a 151, /b 8192, /d [100,103) + [4096,8192) = 3 + 4096.
        assert_eq!(s.distinct_bytes_touched, 151 + 8192 + 4099);
        let top: Vec<(&str, u64, u64)> =
            s.top_files.iter().map(|f| (f.path.as_str(), f.bytes_read, f.distinct_bytes_read)).collect();
        assert_eq!(top, [("/b", 4096, 4096), ("/a", 201, 151), ("/d", 3, 3)]);
        // Lengths 1, 3, 100, 100, 4096 -> buckets 1, 4, 128, 128, 4096; 2 and 8..64, 256..2048 empty.
        let hist: Vec<(u64, u64)> = s.read_sizes.iter().map(|b| (b.max_len, b.reads)).collect();
        assert_eq!(
            hist,
            [
                (1, 1),
                (2, 0),
                (4, 1),
                (8, 0),
                (16, 0),
                (32, 0),
                (64, 0),
                (128, 2),
                (256, 0),
                (512, 0),
                (1024, 0),
                (2048, 0),
                (4096, 1)
            ]
        );
        let text = s.to_string();
        assert!(text.contains("threads   3"), "{text}");
        assert!(text.contains("/b"), "{text}");
    }

    #[test]
    fn empty_trace_is_all_zero() {
        let s = TraceStats::from_records(&Header::new("t", ""), Vec::new()).unwrap();
        assert_eq!((s.records, s.threads, s.files, s.bytes_read), (0, 0, 0, 0));
        assert!(s.read_sizes.is_empty() && s.top_files.is_empty());
    }

    #[test]
    fn union_merges_touching_and_nested_ranges() {
        assert_eq!(union_len(&mut [(0, 10), (10, 5), (2, 3), (20, 1)]), 16);
        assert_eq!(union_len(&mut []), 0);
    }
}
