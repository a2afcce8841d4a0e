//! Records what the kernel asks the mount for, as a trace (docs/trace-format.md, version 1): a
//! lookup is a `stat` of the looked-up path, an open or opendir an `open`, a read a `read` of the
//! bytes served at that offset. Reads include the page faults of mmap'd files and the kernel's
//! read-ahead: this is what a block device under the guest would see, which strace cannot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::trace::format::FileSink;
use crate::trace::{self, Access, Header, Record, TracePath, Writer};

pub struct Recorder {
    state: Mutex<State>,
}

struct State {
    writer: Option<Writer<FileSink>>,
    /// A recorder made with [`Recorder::pending`] before [`Recorder::begin`]: where the trace
    /// goes, and the records so far (written after the header once it is known).
    pending: Option<(PathBuf, Vec<Record>)>,
    /// When the first record was made: traces start at 0, like strace imports.
    start: Option<Instant>,
    /// Kernel thread id of the requester -> dense thread number (order of first appearance).
    threads: HashMap<u32, u32>,
    error: Option<trace::Error>,
}

impl Recorder {
    /// Creates the trace file and writes its header; the clock starts at the first record.
    pub fn create(path: &Path, header: &Header) -> trace::Result<Self> {
        let writer = Writer::create(path, header)?;
        Ok(Recorder {
            state: Mutex::new(State {
                writer: Some(writer),
                pending: None,
                start: None,
                threads: HashMap::new(),
                error: None,
            }),
        })
    }

    /// A recorder whose header is not known yet (`trace record` learns what runs from files in
    /// the mounted image): records are kept in memory until [`Recorder::begin`], and nothing is
    /// written at all if it is never called.
    pub fn pending(path: &Path) -> Self {
        Recorder {
            state: Mutex::new(State {
                writer: None,
                pending: Some((path.to_path_buf(), Vec::new())),
                start: None,
                threads: HashMap::new(),
                error: None,
            }),
        }
    }

    /// Creates the trace file of a [`Recorder::pending`] recorder with `header`, then the
    /// records made so far.
    pub fn begin(&self, header: &Header) -> trace::Result<()> {
        let mut s = self.state.lock().expect("recorder lock");
        let Some((path, records)) = s.pending.take() else { return Ok(()) };
        let mut w = Writer::create(&path, header)?;
        for r in &records {
            w.write(r)?;
        }
        s.writer = Some(w);
        Ok(())
    }

    /// Appends one record; `pid` is the requesting thread as the kernel reports it. Times are
    /// taken under the lock, so records are in order even when many threads serve requests.
    pub fn record(&self, pid: u32, path: &[u8], access: Access) {
        let Ok(path) = TracePath::new(path) else { return };
        let mut s = self.state.lock().expect("recorder lock");
        let State { writer, pending, start, threads, error } = &mut *s;
        if error.is_some() || (writer.is_none() && pending.is_none()) {
            return;
        }
        let next = threads.len() as u32;
        let thread = *threads.entry(pid).or_insert(next);
        let t_us = start.get_or_insert_with(Instant::now).elapsed().as_micros() as u64;
        let record = Record { t_us, thread, path, access };
        match (writer.as_mut(), pending.as_mut()) {
            (Some(w), _) => {
                if let Err(e) = w.write(&record) {
                    *error = Some(e);
                }
            }
            (None, Some((_, records))) => records.push(record),
            (None, None) => {}
        }
    }

    /// Flushes the trace; the first write error, if any, is returned here. Later records are
    /// dropped. Returns the number of records written.
    pub fn finish(&self) -> trace::Result<u64> {
        let mut s = self.state.lock().expect("recorder lock");
        s.pending = None;
        if let Some(e) = s.error.take() {
            s.writer = None;
            return Err(e);
        }
        match s.writer.take() {
            Some(w) => w.finish(),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Reader;

    #[test]
    fn records_are_ordered_and_threads_numbered_by_first_appearance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let r = Recorder::create(&path, &Header::new("fuse", "cmd")).unwrap();
        r.record(4242, b"/usr/bin/python3", Access::Open);
        r.record(17, b"/usr/bin/python3", Access::Read { offset: 0, len: 4096 });
        r.record(4242, b"relative", Access::Stat); // not a clean absolute path: dropped
        r.record(4242, b"/etc", Access::Stat);
        assert_eq!(r.finish().unwrap(), 3);
        let reader = Reader::open(&path).unwrap();
        assert_eq!(reader.header().source, "fuse");
        let recs: Vec<Record> = reader.collect::<trace::Result<_>>().unwrap();
        assert_eq!(recs.iter().map(|r| r.thread).collect::<Vec<_>>(), [0, 1, 0]);
        assert_eq!(recs[0].t_us, 0, "time starts at the first request");
        assert!(recs.windows(2).all(|w| w[0].t_us <= w[1].t_us));
    }

    #[test]
    fn a_pending_recorder_writes_its_early_records_after_the_header_it_learns_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let r = Recorder::pending(&path);
        r.record(7, b"/etc/passwd", Access::Open);
        assert!(!path.exists(), "nothing is written before the header is known");
        r.begin(&Header::new("fuse", "later")).unwrap();
        r.record(7, b"/bin/sh", Access::Open);
        assert_eq!(r.finish().unwrap(), 2);
        let reader = Reader::open(&path).unwrap();
        assert_eq!(reader.header().command, "later");
        let never = Recorder::pending(&dir.path().join("never.jsonl"));
        never.record(1, b"/x", Access::Stat);
        assert_eq!(never.finish().unwrap(), 0);
        assert!(!dir.path().join("never.jsonl").exists());
    }
}
