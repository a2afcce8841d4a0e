//! Request streams as CSV: a writer with a fixed header, and a reader of any CSV whose columns are
//! found by name (so chunkload's chunk streams, `time_ns,chunk_id,chunk_index,size,tier,done_ns`,
//! and a converted libCacheSim trace read alike).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Request, RequestsError};

/// The header [`CsvWriter`] writes.
pub const HEADER: &str = "time_ns,obj_id,obj_size";

/// Writes `time_ns,obj_id,obj_size` lines under that header.
pub struct CsvWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl CsvWriter {
    pub fn create(path: &Path) -> Result<Self, RequestsError> {
        let file = File::create(path).map_err(RequestsError::io(path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        writeln!(out, "{HEADER}").map_err(RequestsError::io(path))?;
        Ok(CsvWriter { path: path.to_path_buf(), out })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    #[inline]
    pub fn push(&mut self, req: Request) -> Result<(), RequestsError> {
        writeln!(self.out, "{},{},{}", req.time.as_nanos(), req.object, req.size)
            .map_err(RequestsError::io(&self.path))
    }

    pub fn finish(mut self) -> Result<(), RequestsError> {
        self.out.flush().map_err(RequestsError::io(&self.path))
    }
}

/// Which columns hold the object id, its size and the time; `None` finds them by their usual names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvColumns {
    pub id: Option<String>,
    pub size: Option<String>,
    pub time: Option<String>,
}

/// Names tried, in order, when a column is not named.
const ID_NAMES: &[&str] = &["obj_id", "object_id", "chunk_id", "id", "key"];
const SIZE_NAMES: &[&str] = &["obj_size", "object_size", "size", "bytes"];
const TIME_NAMES: &[&str] = &["time_ns", "time", "timestamp", "clock_time"];

/// One CSV row: the time as written (an unsigned integer, unit unknown), the object id, its size
/// (1 when the file has no size column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvRecord {
    pub time: u64,
    pub obj_id: u64,
    pub size: u32,
}

/// Reads request rows from a CSV with a header, plain or zstd-compressed. Every field read must be
/// an unsigned integer; a bad one is an error naming the file, line and column.
pub struct CsvReader {
    path: PathBuf,
    rows: csv::Reader<Box<dyn Read + Send>>,
    id: usize,
    size: Option<usize>,
    time: Option<usize>,
    record: csv::ByteRecord,
}

impl CsvReader {
    pub fn open(path: &Path, columns: &CsvColumns) -> Result<Self, RequestsError> {
        let file = File::open(path).map_err(RequestsError::io(path))?;
        let mut magic = [0u8; 4];
        let compressed = file.read_exact_at(&mut magic, 0).is_ok() && magic == [0x28, 0xB5, 0x2F, 0xFD];
        let inner: Box<dyn Read + Send> = if compressed {
            Box::new(zstd::Decoder::new(file).map_err(RequestsError::io(path))?)
        } else {
            Box::new(BufReader::with_capacity(1 << 20, file))
        };
        let mut rows = csv::ReaderBuilder::new().has_headers(true).from_reader(inner);
        let header = rows
            .headers()
            .map_err(|e| RequestsError::Csv { path: path.to_path_buf(), reason: e.to_string() })?
            .clone();
        let names: Vec<&str> = header.iter().map(str::trim).collect();
        let find = |given: &Option<String>, usual: &[&str], what: &str, flag: &'static str| {
            let wanted: Vec<&str> = match given {
                Some(name) => vec![name.as_str()],
                None => usual.to_vec(),
            };
            wanted.iter().find_map(|w| names.iter().position(|n| n == w)).ok_or_else(|| {
                RequestsError::MissingColumn {
                    path: path.to_path_buf(),
                    wanted: match given {
                        Some(name) => format!("{name:?}"),
                        None => format!("{what} ({})", usual.join(", ")),
                    },
                    header: names.join(","),
                    flag,
                }
            })
        };
        let id = find(&columns.id, ID_NAMES, "an object id", "--id-column")?;
        let size = match find(&columns.size, SIZE_NAMES, "a size", "--size-column") {
            Ok(i) => Some(i),
            Err(e) if columns.size.is_some() => return Err(e),
            Err(_) => None,
        };
        let time = match find(&columns.time, TIME_NAMES, "a time", "--time-column") {
            Ok(i) => Some(i),
            Err(e) if columns.time.is_some() => return Err(e),
            Err(_) => None,
        };
        Ok(CsvReader { path: path.to_path_buf(), rows, id, size, time, record: csv::ByteRecord::new() })
    }

    /// Whether the file has a size column (else every size reads as 1).
    pub fn has_sizes(&self) -> bool {
        self.size.is_some()
    }

    /// Whether the file has a time column (else every time reads as 0).
    pub fn has_times(&self) -> bool {
        self.time.is_some()
    }

    fn field(&self, at: usize, what: &str) -> Result<u64, RequestsError> {
        let line = self.record.position().map_or(0, |p| p.line());
        let bad = |reason: String| RequestsError::Field {
            path: self.path.clone(),
            line,
            field: what.to_string(),
            reason,
        };
        let raw = self
            .record
            .get(at)
            .ok_or_else(|| bad(format!("missing: the row has {} fields", self.record.len())))?;
        let text = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8".into()))?.trim();
        text.parse::<u64>().map_err(|_| bad(format!("{text:?} is not an unsigned integer")))
    }

    /// Appends up to `max` rows to `out` (cleared first); returns how many (0 at the end).
    pub fn read_batch(&mut self, out: &mut Vec<CsvRecord>, max: usize) -> Result<usize, RequestsError> {
        out.clear();
        while out.len() < max {
            let more = self
                .rows
                .read_byte_record(&mut self.record)
                .map_err(|e| RequestsError::Csv { path: self.path.clone(), reason: e.to_string() })?;
            if !more {
                break;
            }
            let obj_id = self.field(self.id, "id")?;
            let size = match self.size {
                Some(at) => {
                    let s = self.field(at, "size")?;
                    u32::try_from(s).map_err(|_| RequestsError::Field {
                        path: self.path.clone(),
                        line: self.record.position().map_or(0, |p| p.line()),
                        field: "size".into(),
                        reason: format!("{s} does not fit 32 bits"),
                    })?
                }
                None => 1,
            };
            let time = match self.time {
                Some(at) => self.field(at, "time")?,
                None => 0,
            };
            out.push(CsvRecord { time, obj_id, size });
        }
        Ok(out.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::time::SimTime;

    #[test]
    fn writes_and_reads_back_by_column_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        let mut w = CsvWriter::create(&path).unwrap();
        w.push(Request { time: SimTime::from_nanos(5), object: 9, size: 512 }).unwrap();
        w.push(Request { time: SimTime::from_nanos(7), object: 3, size: 1 }).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "time_ns,obj_id,obj_size\n5,9,512\n7,3,1\n");
        let mut r = CsvReader::open(&path, &CsvColumns::default()).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.read_batch(&mut out, 10).unwrap(), 2);
        assert_eq!(out[0], CsvRecord { time: 5, obj_id: 9, size: 512 });
    }

    #[test]
    fn reads_chunk_streams_and_named_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.csv");
        std::fs::write(&path, "time_ns,chunk_id,chunk_index,size,tier,done_ns\n10,4,0,524288,s3,20\n")
            .unwrap();
        let mut r = CsvReader::open(&path, &CsvColumns::default()).unwrap();
        let mut out = Vec::new();
        r.read_batch(&mut out, 10).unwrap();
        assert_eq!(out, vec![CsvRecord { time: 10, obj_id: 4, size: 524288 }]);

        let cols = CsvColumns { id: Some("chunk_index".into()), size: None, time: Some("done_ns".into()) };
        let mut r = CsvReader::open(&path, &cols).unwrap();
        r.read_batch(&mut out, 10).unwrap();
        assert_eq!(out, vec![CsvRecord { time: 20, obj_id: 0, size: 524288 }]);
    }

    #[test]
    fn bad_rows_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "obj_id,obj_size\n1,10\n2,-4\n").unwrap();
        let mut r = CsvReader::open(&path, &CsvColumns::default()).unwrap();
        assert!(!r.has_times());
        let msg = r.read_batch(&mut Vec::new(), 10).unwrap_err().to_string();
        assert!(msg.contains("bad.csv") && msg.contains("line 3") && msg.contains("\"size\""), "{msg}");

        std::fs::write(&path, "obj_id,obj_size\n1,10\n2\n").unwrap();
        let mut r = CsvReader::open(&path, &CsvColumns::default()).unwrap();
        let msg = r.read_batch(&mut Vec::new(), 10).unwrap_err().to_string();
        assert!(msg.contains("bad.csv") && msg.contains("fields"), "{msg}");

        std::fs::write(&path, "key2,obj_size\n1,10\n").unwrap();
        let msg = CsvReader::open(&path, &CsvColumns::default()).err().unwrap().to_string();
        assert!(msg.contains("no column named an object id") && msg.contains("--id-column"), "{msg}");
        let cols = CsvColumns { time: Some("when".into()), ..CsvColumns::default() };
        std::fs::write(&path, "obj_id\n1\n").unwrap();
        let msg = CsvReader::open(&path, &cols).err().unwrap().to_string();
        assert!(msg.contains("\"when\""), "{msg}");
    }
}
