//! libCacheSim's `oracleGeneral` format: a headerless file of 24-byte little-endian records
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | `u32` | time (the unit is the writer's choice: [`TimeUnit`]) |
//! | 4 | `u64` | object id |
//! | 12 | `u32` | object size in bytes |
//! | 16 | `i64` | next access: the 1-based number of the next request for the same object, `-1` if none |
//!
//! The next-access field is what lets a simulator run Belady's MIN in one forward pass. libCacheSim's
//! own converter numbers it the same way (the request at 0-based position `j` is number `j + 1`).

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use super::{Request, RequestsError, StreamSummary, TimeUnit};

/// Bytes per record.
pub const RECORD_SIZE: usize = 24;
/// The first four bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Records per block of the backward fix-up pass (1.5 MiB).
const FIXUP_BLOCK: usize = 65_536;

/// One record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OracleRecord {
    pub time: u32,
    pub obj_id: u64,
    pub size: u32,
    /// 1-based number of the next request for the same object; -1 when there is none.
    pub next_access: i64,
}

impl OracleRecord {
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        b[0..4].copy_from_slice(&self.time.to_le_bytes());
        b[4..12].copy_from_slice(&self.obj_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..24].copy_from_slice(&self.next_access.to_le_bytes());
        b
    }

    #[inline]
    pub fn from_bytes(b: &[u8]) -> Self {
        let le4 = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let le8 = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        OracleRecord { time: le4(0), obj_id: le8(4), size: le4(12), next_access: le8(16) as i64 }
    }

    /// The next access, `None` for "never" (-1, or `i64::MAX` as some converters write).
    #[inline]
    pub fn next(&self) -> Option<u64> {
        (self.next_access >= 0 && self.next_access != i64::MAX).then_some(self.next_access as u64)
    }
}

/// Writes an `oracleGeneral` file without holding the stream in memory: [`push`](Self::push)
/// appends each record with next access -1; [`finish`](Self::finish) then walks the file backward
/// in blocks, remembering per object the number of its latest request seen so far, and rewrites
/// each block's next-access fields in place. Memory: one block plus one map entry per distinct
/// object.
pub struct OracleWriter {
    path: PathBuf,
    out: BufWriter<File>,
    unit: TimeUnit,
    records: u64,
}

impl OracleWriter {
    /// Creates (or truncates) `path`; times are written in `unit`.
    pub fn create(path: &Path, unit: TimeUnit) -> Result<Self, RequestsError> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(RequestsError::io(path))?;
        Ok(OracleWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            unit,
            records: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one request. A time that does not fit 32 bits in the writer's unit is an error
    /// naming the record.
    #[inline]
    pub fn push(&mut self, req: Request) -> Result<(), RequestsError> {
        let Some(time) = self.unit.ticks(req.time) else {
            return Err(RequestsError::TimeOverflow {
                path: self.path.clone(),
                record: self.records,
                time: req.time,
                unit: self.unit,
            });
        };
        let rec = OracleRecord { time, obj_id: req.object, size: req.size, next_access: -1 };
        self.out.write_all(&rec.to_bytes()).map_err(RequestsError::io(&self.path))?;
        self.records += 1;
        Ok(())
    }

    /// Flushes, then fills in every record's next access (the backward pass).
    pub fn finish(self) -> Result<StreamSummary, RequestsError> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| RequestsError::Io { path: path.clone(), source: e.into_error() })?;
        let n = self.records;
        let mut summary = StreamSummary { requests: n, ..StreamSummary::default() };
        // Per object: the number (1-based) of its earliest request seen so far, walking backward,
        // and that request's size (at the end: the object's first request).
        let mut later: FxHashMap<u64, (u64, u32)> = FxHashMap::default();
        let mut buf = vec![0u8; FIXUP_BLOCK * RECORD_SIZE];
        let mut end = n;
        while end > 0 {
            let start = end.saturating_sub(FIXUP_BLOCK as u64);
            let block = &mut buf[..(end - start) as usize * RECORD_SIZE];
            let offset = start * RECORD_SIZE as u64;
            file.read_exact_at(block, offset).map_err(RequestsError::io(&path))?;
            for (i, rec) in block.chunks_exact_mut(RECORD_SIZE).enumerate().rev() {
                let number = start + i as u64 + 1;
                let r = OracleRecord::from_bytes(rec);
                summary.request_bytes += u64::from(r.size);
                let next = match later.insert(r.obj_id, (number, r.size)) {
                    Some((next, _)) => next as i64,
                    None => -1,
                };
                rec[16..24].copy_from_slice(&next.to_le_bytes());
            }
            file.write_all_at(block, offset).map_err(RequestsError::io(&path))?;
            end = start;
        }
        summary.objects = later.len() as u64;
        summary.object_bytes = later.values().map(|&(_, size)| u64::from(size)).sum();
        Ok(summary)
    }
}

/// Reads an `oracleGeneral` file, plain or zstd-compressed (told apart by the zstd magic number),
/// in batches. Checks as it goes that the file is whole records and that every next access is
/// -1 or a request after the one that names it.
pub struct OracleReader {
    path: PathBuf,
    inner: Box<dyn Read + Send>,
    /// Records read so far.
    records: u64,
    /// Records in the file when known (uncompressed).
    total: Option<u64>,
    bytes: Vec<u8>,
}

impl OracleReader {
    pub fn open(path: &Path) -> Result<Self, RequestsError> {
        let file = File::open(path).map_err(RequestsError::io(path))?;
        let len = file.metadata().map_err(RequestsError::io(path))?.len();
        let mut magic = [0u8; 4];
        // Positioned read: the cursor stays at 0 for the reader below.
        let compressed = file.read_exact_at(&mut magic, 0).is_ok() && magic == ZSTD_MAGIC;
        let (inner, total): (Box<dyn Read + Send>, _) = if compressed {
            (Box::new(zstd::Decoder::new(file).map_err(RequestsError::io(path))?), None)
        } else {
            if len % RECORD_SIZE as u64 != 0 {
                return Err(RequestsError::Truncated {
                    path: path.to_path_buf(),
                    bytes: len,
                    records: len / RECORD_SIZE as u64,
                });
            }
            (Box::new(BufReader::with_capacity(1 << 20, file)), Some(len / RECORD_SIZE as u64))
        };
        Ok(OracleReader { path: path.to_path_buf(), inner, records: 0, total, bytes: Vec::new() })
    }

    /// Records in the file, when known without reading it (not for a compressed file).
    pub fn len_hint(&self) -> Option<u64> {
        self.total
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends up to `max` records to `out` (cleared first); returns how many (0 at the end).
    pub fn read_batch(&mut self, out: &mut Vec<OracleRecord>, max: usize) -> Result<usize, RequestsError> {
        out.clear();
        self.bytes.resize(max * RECORD_SIZE, 0);
        let mut filled = 0;
        while filled < self.bytes.len() {
            match self.inner.read(&mut self.bytes[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(RequestsError::Io { path: self.path.clone(), source: e }),
            }
        }
        if filled % RECORD_SIZE != 0 {
            let records = self.records + (filled / RECORD_SIZE) as u64;
            return Err(RequestsError::Truncated {
                path: self.path.clone(),
                bytes: records * RECORD_SIZE as u64 + (filled % RECORD_SIZE) as u64,
                records,
            });
        }
        for rec in self.bytes[..filled].chunks_exact(RECORD_SIZE) {
            let r = OracleRecord::from_bytes(rec);
            self.records += 1;
            if let Some(next) = r.next()
                && next <= self.records
            {
                return Err(RequestsError::BadNextAccess {
                    path: self.path.clone(),
                    record: self.records,
                    next: r.next_access,
                });
            }
            out.push(r);
        }
        Ok(out.len())
    }

    /// Every remaining record (for small files and tests).
    pub fn read_all(mut self) -> Result<Vec<OracleRecord>, RequestsError> {
        let mut all = Vec::new();
        let mut batch = Vec::new();
        while self.read_batch(&mut batch, 65_536)? > 0 {
            all.extend_from_slice(&batch);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::time::SimTime;

    fn req(t: u64, object: u64, size: u32) -> Request {
        Request { time: SimTime::from_nanos(t), object, size }
    }

    #[test]
    fn next_access_is_the_one_based_number_of_the_next_request_for_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        let mut w = OracleWriter::create(&path, TimeUnit::Us).unwrap();
        // a b a c b a
        for (i, obj) in [10, 20, 10, 30, 20, 10].into_iter().enumerate() {
            w.push(req(i as u64 * 1_500, obj, 100 + obj as u32)).unwrap();
        }
        let s = w.finish().unwrap();
        assert_eq!((s.requests, s.objects, s.object_bytes), (6, 3, 110 + 120 + 130));
        assert_eq!(s.request_bytes, 110 * 3 + 120 * 2 + 130);
        let recs = OracleReader::open(&path).unwrap().read_all().unwrap();
        let next: Vec<i64> = recs.iter().map(|r| r.next_access).collect();
        assert_eq!(next, vec![3, 5, 6, -1, -1, -1]);
        let times: Vec<u32> = recs.iter().map(|r| r.time).collect();
        assert_eq!(times, vec![0, 1, 3, 4, 6, 7], "microseconds, rounded down");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 6 * 24);
        // Byte layout of the first record, little-endian.
        let raw = std::fs::read(&path).unwrap();
        assert_eq!(&raw[4..12], &10u64.to_le_bytes());
        assert_eq!(&raw[12..16], &110u32.to_le_bytes());
        assert_eq!(&raw[16..24], &3i64.to_le_bytes());
    }

    #[test]
    fn backward_pass_crosses_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        let mut w = OracleWriter::create(&path, TimeUnit::S).unwrap();
        let n = FIXUP_BLOCK as u64 * 2 + 17;
        for i in 0..n {
            w.push(req(0, i % 1000, 1)).unwrap();
        }
        w.finish().unwrap();
        let recs = OracleReader::open(&path).unwrap().read_all().unwrap();
        for (i, r) in recs.iter().enumerate() {
            let expect = if i as u64 + 1000 < n { i as i64 + 1000 + 1 } else { -1 };
            assert_eq!(r.next_access, expect, "record {i}");
        }
    }

    #[test]
    fn reads_zstd_compressed_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("s.bin");
        let mut w = OracleWriter::create(&plain, TimeUnit::S).unwrap();
        for i in 0..100 {
            w.push(req(i * 1_000_000_000, i % 7, 4096)).unwrap();
        }
        w.finish().unwrap();
        let bytes = std::fs::read(&plain).unwrap();
        let zst = dir.path().join("s.bin.zst");
        std::fs::write(&zst, zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();
        let a = OracleReader::open(&plain).unwrap().read_all().unwrap();
        let b = OracleReader::open(&zst).unwrap();
        assert_eq!(b.len_hint(), None);
        assert_eq!(a, b.read_all().unwrap());
    }

    #[test]
    fn hostile_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.bin");
        std::fs::write(&path, [0u8; 50]).unwrap();
        let msg = OracleReader::open(&path).err().unwrap().to_string();
        assert!(msg.contains("bad.bin") && msg.contains("2 trailing bytes"), "{msg}");

        let rec = OracleRecord { time: 0, obj_id: 1, size: 1, next_access: 1 };
        std::fs::write(&path, rec.to_bytes()).unwrap();
        let msg = OracleReader::open(&path).unwrap().read_all().unwrap_err().to_string();
        assert!(msg.contains("record 1") && msg.contains("next access 1"), "{msg}");

        let zst = dir.path().join("cut.zst");
        let whole = zstd::encode_all(&[0u8; 30][..], 3).unwrap();
        std::fs::write(&zst, whole).unwrap();
        let msg = OracleReader::open(&zst).unwrap().read_all().unwrap_err().to_string();
        assert!(msg.contains("cut.zst") && msg.contains("6 trailing bytes"), "{msg}");

        let mut w = OracleWriter::create(&path, TimeUnit::Us).unwrap();
        let msg = w.push(req(5_000_000_000_000, 1, 1)).unwrap_err().to_string();
        assert!(msg.contains("record 0") && msg.contains("32-bit") && msg.contains("us"), "{msg}");

        let missing = dir.path().join("nope.bin");
        let msg = OracleReader::open(&missing).err().unwrap().to_string();
        assert!(msg.contains("nope.bin"), "{msg}");
    }
}
