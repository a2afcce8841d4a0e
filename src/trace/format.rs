//! The trace format, versions 1 to 3: the file accesses of one sandbox start, as JSON lines.
//!
//! docs/trace-format.md is the specification; this module is its only reader and writer. Both sides
//! apply the same `Checker`, so a file the writer produced always reads back.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};

/// The format version of a trace without a [`Run`] in its header. This build reads and writes it
/// and [`VERSION_RUN`]; any other version is refused.
pub const VERSION: u32 = 1;

/// Version 2: version 1 plus the optional header field `run` (what `trace record` started).
/// Records are the same; a header with `run` must say version 2, so version-1 readers refuse it
/// by its version instead of misreading it.
pub const VERSION_RUN: u32 = 2;

/// Version 3: records may carry `done_us`, when the request was answered (FUSE recordings); the
/// header's `run` is optional. Written by the mount's recorder, so that replay can tell the
/// program's own time between requests from the time the recording mount took to serve them.
pub const VERSION_ANSWERS: u32 = 3;

/// The newest version this build reads (it reads every version from 1 up).
pub const VERSION_LATEST: u32 = VERSION_ANSWERS;

/// The first line of a trace: what it is and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version; always [`VERSION`] when written by this build.
    pub chunkload_trace: u32,
    /// How the trace was made, e.g. `strace` (import-strace) or `synthetic`.
    pub source: String,
    /// The command whose start was traced, as the recorder describes it; may be empty.
    pub command: String,
    /// The image whose root filesystem the paths refer to, when the recorder knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// What ran, exactly (version 2 only): recorded by `trace record`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
}

/// The process `trace record` started: its argument vector, the user it ran as (numeric ids
/// inside its user namespace) and its working directory, after the image's configuration and the
/// command line were combined as a container runtime combines them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    pub argv: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub working_dir: String,
    /// Where the argument vector came from: `image` (its Entrypoint and Cmd), `command line`
    /// (Entrypoint kept, Cmd replaced), or `command line, no image config` (a manifest input).
    pub origin: String,
}

impl Header {
    pub fn new(source: impl Into<String>, command: impl Into<String>) -> Self {
        Header {
            chunkload_trace: VERSION,
            source: source.into(),
            command: command.into(),
            image: None,
            run: None,
        }
    }

    /// Adds what ran, which makes the header version 2 (or keeps it at 3).
    pub fn with_run(mut self, run: Run) -> Self {
        if self.chunkload_trace != VERSION_ANSWERS {
            self.chunkload_trace = VERSION_RUN;
        }
        self.run = Some(run);
        self
    }

    /// Makes the header version 3: its records may say when each request was answered.
    pub fn with_answer_times(mut self) -> Self {
        self.chunkload_trace = VERSION_ANSWERS;
        self
    }

    /// Whether records may carry `done_us` (version 3).
    pub fn has_answer_times(&self) -> bool {
        self.chunkload_trace == VERSION_ANSWERS
    }

    /// Whether the trace was recorded through the FUSE mount (`source: "fuse"`): its reads are
    /// what the kernel asked the mount for, the kernel's own read-ahead included, so a replay must
    /// not add guest read-ahead on top.
    pub fn recorded_through_fuse(&self) -> bool {
        self.source == "fuse"
    }

    /// The version rule: 1 without `run`, 2 with it, 3 either way (and `done_us` allowed).
    fn check_version(&self, file: &str) -> Result<()> {
        match (self.chunkload_trace, &self.run) {
            (VERSION, None) | (VERSION_RUN, Some(_)) | (VERSION_ANSWERS, _) => Ok(()),
            (VERSION, Some(_)) => {
                Err(line_err(file, 1, "header field \"run\" needs trace format version 2 or 3"))
            }
            (VERSION_RUN, None) => Err(line_err(file, 1, "a version-2 header must have a \"run\" field")),
            (found, _) => {
                Err(Error::Version { file: file.to_string(), found: found.into(), supported: VERSION_LATEST })
            }
        }
    }
}

/// The kind of access, as spelled in the `op` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A path lookup that opened the file (or directory).
    Open,
    /// A path lookup without an open: a stat, or an open that failed (the lookup still happened).
    Stat,
    /// The file was executed: the kernel maps it (and its interpreter) without the tracer seeing reads.
    Exec,
    /// Bytes read through a descriptor.
    Read,
    /// A file range mapped into memory; which pages are touched is the replay's [`super::MmapRule`].
    Mmap,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Open, Op::Stat, Op::Exec, Op::Read, Op::Mmap];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Stat => "stat",
            Op::Exec => "exec",
            Op::Read => "read",
            Op::Mmap => "mmap",
        }
    }

    /// Whether records of this op carry `offset` and `len`.
    pub fn has_range(self) -> bool {
        matches!(self, Op::Read | Op::Mmap)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What one record did to its file. Ranges are in bytes of the file, `len >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Open,
    Stat,
    Exec,
    Read { offset: u64, len: u64 },
    Mmap { offset: u64, len: u64 },
}

impl Access {
    pub fn op(self) -> Op {
        match self {
            Access::Open => Op::Open,
            Access::Stat => Op::Stat,
            Access::Exec => Op::Exec,
            Access::Read { .. } => Op::Read,
            Access::Mmap { .. } => Op::Mmap,
        }
    }

    /// `(offset, len)` for reads and mmaps.
    pub fn range(self) -> Option<(u64, u64)> {
        match self {
            Access::Read { offset, len } | Access::Mmap { offset, len } => Some((offset, len)),
            _ => None,
        }
    }
}

/// One file access.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// Microseconds since the start of the trace: when the access began (for FUSE recordings,
    /// when the request reached the mount).
    pub t_us: u64,
    /// When the request was answered, same clock (version 3 only; `None` when the recorder does
    /// not know, as for strace imports). Never before `t_us`.
    pub done_us: Option<u64>,
    /// Dense thread number: 0 for the first thread to appear in the trace, 1 for the next, ...
    pub thread: u32,
    pub path: TracePath,
    pub access: Access,
}

/// An absolute, lexically clean path inside the image root, as raw bytes (Linux paths need not be
/// UTF-8). Clean means: starts with `/`, no empty, `.` or `..` component, no trailing `/` (except the
/// root itself), no NUL. A `TracePath` that breaks these rules cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TracePath(Vec<u8>);

impl TracePath {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, &'static str> {
        let bytes = bytes.into();
        if bytes.first() != Some(&b'/') {
            return Err("path is not absolute");
        }
        if bytes.contains(&0) {
            return Err("path contains a NUL byte");
        }
        if bytes.len() > 1 {
            for comp in bytes[1..].split(|&b| b == b'/') {
                match comp {
                    b"" => return Err("path has an empty component or a trailing slash"),
                    b"." | b".." => return Err("path has a . or .. component"),
                    _ => {}
                }
            }
        }
        Ok(TracePath(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path in the format's escaped spelling: UTF-8 as is, `%` as `%25`, every byte of an
    /// invalid UTF-8 sequence as `%XX` (upper-case hex). Reversible, and plain for ordinary paths.
    pub fn escaped(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '%' {
                    out.push_str("%25");
                } else {
                    out.push(c);
                }
            }
            for b in chunk.invalid() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// Parses the escaped spelling; only the canonical form [`TracePath::escaped`] writes is accepted,
    /// so one path has exactly one spelling.
    pub fn from_escaped(s: &str) -> Result<Self, String> {
        let mut bytes = Vec::with_capacity(s.len());
        let raw = s.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'%' {
                let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                match byte {
                    Some(b) => bytes.push(b),
                    None => return Err(format!("path {s:?}: % must be followed by two hex digits")),
                }
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        let path = TracePath::new(bytes).map_err(|reason| format!("path {s:?}: {reason}"))?;
        if path.escaped() != s {
            return Err(format!(
                "path {s:?} is not in canonical escaped form (expected {:?})",
                path.escaped()
            ));
        }
        Ok(path)
    }
}

impl fmt::Display for TracePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped())
    }
}

/// A record as it is spelled on a line; turned into a [`Record`] only after the rules hold.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecord {
    t_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    done_us: Option<u64>,
    thread: u32,
    op: Op,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    len: Option<u64>,
}

impl WireRecord {
    fn from_record(r: &Record) -> Self {
        let (offset, len) = r.access.range().unzip();
        WireRecord {
            t_us: r.t_us,
            done_us: r.done_us,
            thread: r.thread,
            op: r.access.op(),
            path: r.path.escaped(),
            offset,
            len,
        }
    }

    fn into_record(self) -> Result<Record, String> {
        let path = TracePath::from_escaped(&self.path)?;
        let access = match (self.op, self.offset, self.len) {
            (Op::Open, None, None) => Access::Open,
            (Op::Stat, None, None) => Access::Stat,
            (Op::Exec, None, None) => Access::Exec,
            (Op::Read, Some(offset), Some(len)) => Access::Read { offset, len },
            (Op::Mmap, Some(offset), Some(len)) => Access::Mmap { offset, len },
            (op, ..) if op.has_range() => return Err(format!("op {op} needs both offset and len")),
            (op, ..) => return Err(format!("op {op} takes no offset or len")),
        };
        Ok(Record { t_us: self.t_us, done_us: self.done_us, thread: self.thread, path, access })
    }
}

/// The rules that span records: time never goes backwards, thread numbers are dense in order of
/// first appearance, ranges are non-empty and do not overflow.
#[derive(Debug, Default)]
struct Checker {
    last_t_us: u64,
    threads: u32,
    /// Whether records may carry `done_us` (version 3).
    answer_times: bool,
}

impl Checker {
    fn for_header(header: &Header) -> Self {
        Checker { answer_times: header.has_answer_times(), ..Checker::default() }
    }

    fn check(&mut self, r: &Record) -> Result<(), String> {
        if let Some(done) = r.done_us {
            if !self.answer_times {
                return Err("field done_us needs trace format version 3".into());
            }
            if done < r.t_us {
                return Err(format!("done_us {done} is before the record's t_us {}", r.t_us));
            }
        }
        if r.t_us < self.last_t_us {
            return Err(format!("t_us {} is before the previous record's {}", r.t_us, self.last_t_us));
        }
        if r.thread > self.threads {
            return Err(format!(
                "thread {} appears before thread {} (thread numbers are dense, in order of first appearance)",
                r.thread, self.threads
            ));
        }
        if let Some((offset, len)) = r.access.range() {
            if len == 0 {
                return Err("len must be at least 1".into());
            }
            if offset.checked_add(len).is_none() {
                return Err(format!("offset {offset} + len {len} overflows"));
            }
        }
        self.last_t_us = r.t_us;
        if r.thread == self.threads {
            self.threads += 1;
        }
        Ok(())
    }
}

/// Streams records from a trace; the header is read (and its version checked) on construction.
/// After the first error the iterator ends.
pub struct Reader<R> {
    lines: std::io::Split<R>,
    file: String,
    header: Header,
    line: u64,
    checker: Checker,
    failed: bool,
}

impl Reader<Box<dyn BufRead>> {
    /// Opens a trace file; a name ending in `.zst` is decompressed on the fly.
    pub fn open(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let f = File::open(path).map_err(|source| Error::Io { file: file.clone(), source })?;
        let input: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "zst") {
            let dec = zstd::Decoder::new(f).map_err(|source| Error::Io { file: file.clone(), source })?;
            Box::new(BufReader::new(dec))
        } else {
            Box::new(BufReader::new(f))
        };
        Reader::new(input, file)
    }
}

impl<R: BufRead> Reader<R> {
    /// `file` names the input in error messages.
    pub fn new(input: R, file: impl Into<String>) -> Result<Self> {
        let file = file.into();
        let mut lines = input.split(b'\n');
        let first = match lines.next() {
            None => return Err(line_err(&file, 1, "empty file: no trace header")),
            Some(l) => l.map_err(|source| Error::Io { file: file.clone(), source })?,
        };
        let value: serde_json::Value = serde_json::from_slice(&first)
            .map_err(|e| line_err(&file, 1, format!("header is not JSON: {e}")))?;
        let version = value.get("chunkload_trace").ok_or_else(|| {
            line_err(&file, 1, "header has no \"chunkload_trace\" field: not a chunkload trace")
        })?;
        let found = version
            .as_u64()
            .ok_or_else(|| line_err(&file, 1, "\"chunkload_trace\" must be an integer version"))?;
        if found == 0 || found > u64::from(VERSION_LATEST) {
            return Err(Error::Version { file, found, supported: VERSION_LATEST });
        }
        let header: Header =
            serde_json::from_value(value).map_err(|e| line_err(&file, 1, format!("header: {e}")))?;
        header.check_version(&file)?;
        let checker = Checker::for_header(&header);
        Ok(Reader { lines, file, header, line: 1, checker, failed: false })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn next_record(&mut self) -> Option<Result<Record>> {
        let raw = self.lines.next()?;
        self.line += 1;
        let raw = match raw {
            Ok(raw) => raw,
            Err(source) => return Some(Err(Error::Io { file: self.file.clone(), source })),
        };
        let parsed = serde_json::from_slice::<WireRecord>(&raw)
            .map_err(|e| e.to_string())
            .and_then(WireRecord::into_record)
            .and_then(|r| self.checker.check(&r).map(|()| r));
        Some(parsed.map_err(|reason| line_err(&self.file, self.line, reason)))
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.next_record();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

fn line_err(file: &str, line: u64, reason: impl Into<String>) -> Error {
    Error::Line { file: file.to_string(), line, reason: reason.into() }
}

/// Writes a trace: the header at construction, then one line per record. Refuses records that break
/// the format's rules, so what it writes always reads back. Call [`Writer::finish`] to flush.
pub struct Writer<W: Write> {
    out: W,
    file: String,
    checker: Checker,
    written: u64,
}

/// Where [`Writer::create`] writes: plain or zstd-compressed.
pub enum FileSink {
    Plain(BufWriter<File>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            FileSink::Plain(w) => w.write(buf),
            FileSink::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            FileSink::Plain(w) => w.flush(),
            FileSink::Zstd(w) => w.flush(),
        }
    }
}

/// zstd level for `.zst` traces: small files for the repository, still fast.
const ZSTD_LEVEL: i32 = 19;

impl Writer<FileSink> {
    /// Creates (or truncates) a trace file; a name ending in `.zst` is zstd-compressed.
    pub fn create(path: &Path, header: &Header) -> Result<Self> {
        let file = path.display().to_string();
        let io = |source| Error::Io { file: file.clone(), source };
        let f = BufWriter::new(File::create(path).map_err(io)?);
        let sink = if path.extension().is_some_and(|e| e == "zst") {
            FileSink::Zstd(zstd::Encoder::new(f, ZSTD_LEVEL).map_err(io)?)
        } else {
            FileSink::Plain(f)
        };
        Writer::new(sink, file.clone(), header)
    }

    /// Flushes and, for `.zst`, writes the end of the frame.
    pub fn finish(self) -> Result<u64> {
        let Writer { out, file, written, .. } = self;
        let io = |source| Error::Io { file: file.clone(), source };
        match out {
            FileSink::Plain(mut w) => w.flush().map_err(io)?,
            FileSink::Zstd(z) => z.finish().map_err(io)?.flush().map_err(io)?,
        }
        Ok(written)
    }
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, file: impl Into<String>, header: &Header) -> Result<Self> {
        let file = file.into();
        header.check_version(&file)?;
        let mut line = serde_json::to_vec(header).expect("header serializes");
        line.push(b'\n');
        out.write_all(&line).map_err(|source| Error::Io { file: file.clone(), source })?;
        Ok(Writer { out, file, checker: Checker::for_header(header), written: 0 })
    }

    pub fn write(&mut self, record: &Record) -> Result<()> {
        self.checker.check(record).map_err(|reason| Error::InvalidRecord {
            file: self.file.clone(),
            index: self.written,
            reason,
        })?;
        let mut line = serde_json::to_vec(&WireRecord::from_record(record)).expect("record serializes");
        line.push(b'\n');
        self.out.write_all(&line).map_err(|source| Error::Io { file: self.file.clone(), source })?;
        self.written += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TracePath {
        TracePath::new(s.as_bytes()).unwrap()
    }

    fn sample() -> Vec<Record> {
        vec![
            Record { t_us: 0, done_us: None, thread: 0, path: p("/usr/bin/python3"), access: Access::Exec },
            Record { t_us: 5, done_us: None, thread: 0, path: p("/etc/ld.so.cache"), access: Access::Open },
            Record { t_us: 5, done_us: None, thread: 1, path: p("/etc/missing"), access: Access::Stat },
            Record {
                t_us: 9,
                done_us: None,
                thread: 0,
                path: TracePath::new(b"/tmp/caf\xe9 100%".to_vec()).unwrap(),
                access: Access::Read { offset: 10, len: 832 },
            },
            Record {
                t_us: 12,
                done_us: None,
                thread: 1,
                path: p("/lib/libc.so.6"),
                access: Access::Mmap { offset: 0, len: 4096 },
            },
        ]
    }

    fn write(records: &[Record]) -> Vec<u8> {
        let mut header = Header::new("test", "python3 -c 'import os'");
        header.image = Some("realistic:latest".into());
        let mut w = Writer::new(Vec::new(), "mem", &header).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.into_inner()
    }

    fn read_err(text: &str) -> String {
        let reader = Reader::new(text.as_bytes(), "t.jsonl");
        match reader {
            Err(e) => e.to_string(),
            Ok(r) => r.collect::<Result<Vec<_>>>().unwrap_err().to_string(),
        }
    }

    const H: &str = r#"{"chunkload_trace":1,"source":"test","command":""}"#;

    #[test]
    fn round_trip_keeps_every_record_and_the_header() {
        let bytes = write(&sample());
        let reader = Reader::new(&bytes[..], "mem").unwrap();
        assert_eq!(reader.header().image.as_deref(), Some("realistic:latest"));
        assert_eq!(reader.header().command, "python3 -c 'import os'");
        let back: Vec<Record> = reader.collect::<Result<_>>().unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn lines_are_spelled_as_documented() {
        let text = String::from_utf8(write(&sample())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"chunkload_trace":1,"source":"test","command":"python3 -c 'import os'","image":"realistic:latest"}"#
        );
        assert_eq!(lines[1], r#"{"t_us":0,"thread":0,"op":"exec","path":"/usr/bin/python3"}"#);
        assert_eq!(
            lines[4],
            r#"{"t_us":9,"thread":0,"op":"read","path":"/tmp/caf%E9 100%25","offset":10,"len":832}"#
        );
    }

    #[test]
    fn escaping_is_reversible_and_canonical() {
        let raw = b"/a/\xff\xfe/\xc3\xa9t\xc3\xa9/%41".to_vec();
        let path = TracePath::new(raw.clone()).unwrap();
        assert_eq!(path.escaped(), "/a/%FF%FE/été/%2541");
        assert_eq!(TracePath::from_escaped(&path.escaped()).unwrap().as_bytes(), &raw[..]);
        assert!(TracePath::from_escaped("/a/%41").unwrap_err().contains("canonical"));
        assert!(TracePath::from_escaped("/a/%e9").unwrap_err().contains("canonical"));
        assert!(TracePath::from_escaped("/a/%G0").unwrap_err().contains("two hex digits"));
        assert!(TracePath::from_escaped("/a/%").unwrap_err().contains("two hex digits"));
    }

    #[test]
    fn unclean_paths_are_refused() {
        for bad in ["", "rel/x", "/a//b", "/a/./b", "/a/../b", "/a/"] {
            assert!(TracePath::new(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(TracePath::new(b"/".to_vec()).is_ok());
    }

    #[test]
    fn version_2_carries_what_ran_and_version_1_still_reads() {
        let run = Run {
            argv: vec!["python3".into(), "-c".into(), "pass".into()],
            uid: 1000,
            gid: 100,
            working_dir: "/app".into(),
            origin: "image".into(),
        };
        let header = Header::new("fuse", "python3 -c pass").with_run(run.clone());
        let mut out = Vec::new();
        Writer::new(&mut out, "t.jsonl", &header).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(r#"{"chunkload_trace":2,"#), "{text}");
        let back = Reader::new(text.as_bytes(), "t.jsonl").unwrap();
        assert_eq!(back.header().run.as_ref(), Some(&run));
        let v1 =
            Reader::new(&br#"{"chunkload_trace":1,"source":"fuse","command":"x"}"#[..], "t.jsonl").unwrap();
        assert!(v1.header().run.is_none());
        let e = read_err(
            r#"{"chunkload_trace":1,"source":"x","command":"","run":{"argv":[],"uid":0,"gid":0,"working_dir":"/","origin":"image"}}"#,
        );
        assert!(e.contains("needs trace format version 2 or 3"), "{e}");
        assert!(read_err(r#"{"chunkload_trace":2,"source":"x","command":""}"#).contains("must have"));
    }

    #[test]
    fn version_3_records_say_when_each_request_was_answered() {
        let header = Header::new("fuse", "x").with_answer_times();
        let mut w = Writer::new(Vec::new(), "t.jsonl", &header).unwrap();
        let mut rec = sample()[1].clone();
        rec.done_us = Some(8);
        w.write(&rec).unwrap();
        let mut open = rec.clone();
        open.t_us = 7;
        open.done_us = None; // a record may leave it out
        w.write(&open).unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert!(text.starts_with(r#"{"chunkload_trace":3,"source":"fuse""#), "{text}");
        assert!(text.contains(r#"{"t_us":5,"done_us":8,"thread":0,"op":"open""#), "{text}");
        let back = Reader::new(text.as_bytes(), "t.jsonl").unwrap();
        assert!(back.header().has_answer_times() && back.header().recorded_through_fuse());
        let recs: Vec<Record> = back.collect::<Result<_>>().unwrap();
        assert_eq!(recs, [rec.clone(), open]);
        // With `run` it stays version 3.
        let run = Run { argv: vec![], uid: 0, gid: 0, working_dir: "/".into(), origin: "image".into() };
        assert_eq!(Header::new("fuse", "").with_answer_times().with_run(run).chunkload_trace, 3);
        // Older versions refuse the field; an answer before its request is refused.
        let done = r#"{"t_us":5,"done_us":8,"thread":0,"op":"open","path":"/a"}"#;
        assert!(
            read_err(&format!("{H}\n{done}"))
                .contains("t.jsonl:2: field done_us needs trace format version 3")
        );
        let h3 = r#"{"chunkload_trace":3,"source":"fuse","command":""}"#;
        let early = r#"{"t_us":5,"done_us":4,"thread":0,"op":"open","path":"/a"}"#;
        assert!(read_err(&format!("{h3}\n{early}")).contains("done_us 4 is before the record's t_us 5"));
        let mut w = Writer::new(Vec::new(), "out", &Header::new("strace", "")).unwrap();
        assert!(w.write(&rec).unwrap_err().to_string().contains("needs trace format version 3"));
    }

    #[test]
    fn other_versions_are_refused() {
        let e = read_err(r#"{"chunkload_trace":4,"source":"x","command":"","future_field":1}"#);
        assert_eq!(
            e,
            "t.jsonl:1: trace format version 4 is not supported (this build reads versions 1 to 3)"
        );
        assert!(read_err(r#"{"chunkload_trace":0,"source":"x","command":""}"#).contains("version 0"));
        assert!(read_err(r#"{"source":"x"}"#).contains("not a chunkload trace"));
        assert!(read_err("").contains("empty file"));
    }

    #[test]
    fn unknown_fields_are_refused_with_the_line_number() {
        let e = read_err(&format!("{H}\n{}", r#"{"chunkload_trace":1,"source":"x","command":"","extra":0}"#));
        assert!(e.starts_with("t.jsonl:2: unknown field `chunkload_trace`"), "{e}");
        let e = read_err(r#"{"chunkload_trace":1,"source":"x","command":"","host":"a"}"#);
        assert!(e.starts_with("t.jsonl:1: header: unknown field `host`"), "{e}");
        let rec = r#"{"t_us":0,"thread":0,"op":"open","path":"/a","flags":1}"#;
        let e = read_err(&format!("{H}\n{rec}"));
        assert!(e.starts_with("t.jsonl:2: unknown field `flags`"), "{e}");
        let rec = r#"{"t_us":0,"thread":0,"op":"chmod","path":"/a"}"#;
        assert!(read_err(&format!("{H}\n{rec}")).starts_with("t.jsonl:2: unknown variant `chmod`"));
    }

    #[test]
    fn record_rules_are_enforced_with_line_numbers() {
        let ok = r#"{"t_us":10,"thread":0,"op":"open","path":"/a"}"#;
        let cases = [
            (r#"{"t_us":9,"thread":0,"op":"open","path":"/a"}"#, "before the previous record"),
            (r#"{"t_us":10,"thread":2,"op":"open","path":"/a"}"#, "appears before thread 1"),
            (r#"{"t_us":10,"thread":0,"op":"read","path":"/a","offset":0,"len":0}"#, "at least 1"),
            (r#"{"t_us":10,"thread":0,"op":"read","path":"/a","len":4}"#, "needs both offset and len"),
            (r#"{"t_us":10,"thread":0,"op":"stat","path":"/a","offset":0}"#, "takes no offset or len"),
            (r#"{"t_us":10,"thread":0,"op":"open","path":"a"}"#, "not absolute"),
            (
                r#"{"t_us":10,"thread":0,"op":"mmap","path":"/a","offset":18446744073709551615,"len":2}"#,
                "overflows",
            ),
        ];
        for (bad, why) in cases {
            let e = read_err(&format!("{H}\n{ok}\n{bad}\n{ok}"));
            assert!(e.starts_with("t.jsonl:3: ") && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn reader_stops_after_the_first_error() {
        let text = format!("{H}\nnot json\n{}", r#"{"t_us":0,"thread":0,"op":"open","path":"/a"}"#);
        let items: Vec<_> = Reader::new(text.as_bytes(), "t").unwrap().collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
    }

    #[test]
    fn writer_refuses_what_the_reader_would_refuse() {
        let mut w = Writer::new(Vec::new(), "out.jsonl", &Header::new("t", "")).unwrap();
        let r = Record {
            t_us: 0,
            done_us: None,
            thread: 1,
            path: TracePath::new(b"/a".to_vec()).unwrap(),
            access: Access::Open,
        };
        let e = w.write(&r).unwrap_err().to_string();
        assert_eq!(
            e,
            "out.jsonl: record 0: thread 1 appears before thread 0 (thread numbers are dense, in order of first appearance)"
        );
    }
}
