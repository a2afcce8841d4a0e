//! Records what the kernel asks the mount for, as a trace (docs/trace-format.md, version 3): a
//! lookup is a `stat` of the looked-up path, an open or opendir an `open`, a read a `read` of the
//! bytes served at that offset. Reads include the page faults of mmap'd files and the kernel's
//! read-ahead: this is what a block device under the guest would see, which strace cannot.
//! Each record has two times: when the request reached the mount (`t_us`) and when it was answered
//! (`done_us`), so that a replay counts the program's own time between an answer and its next
//! request, not the recording mount's service time.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::trace::format::FileSink;
use crate::trace::{self, Access, Header, Record, TracePath, Writer};

pub struct Recorder {
    state: Mutex<State>,
}

/// A request between its arrival and its answer, in arrival order.
enum Slot {
    Waiting,
    /// Answered, nothing to record (an empty read, a path the format cannot hold, a failure).
    Dropped,
    Answered {
        pid: u32,
        path: TracePath,
        access: Access,
        t_us: u64,
        done_us: u64,
    },
}

struct State {
    writer: Option<Writer<FileSink>>,
    /// A recorder made with [`Recorder::pending`] before [`Recorder::begin`]: where the trace
    /// goes, and the records so far (written after the header once it is known).
    pending: Option<(PathBuf, Vec<Record>)>,
    /// When the first request arrived: traces start at 0, like strace imports.
    start: Option<Instant>,
    /// Requests that arrived and are not yet written, oldest first; `first` is the front's
    /// sequence number. A record is written once every request that arrived before it is
    /// answered, so the file stays in arrival (`t_us`) order.
    queue: VecDeque<Slot>,
    first: u64,
    /// Kernel thread id of the requester -> dense thread number (order of first appearance).
    threads: HashMap<u32, u32>,
    error: Option<trace::Error>,
}

/// A request the mount is serving: made when it arrives ([`Recorder::arrive`]), recorded with its
/// answer time by [`Arrival::answered`]. Dropped without an answer, it records nothing.
pub struct Arrival<'a> {
    recorder: &'a Recorder,
    seq: u64,
    t_us: u64,
    settled: bool,
}

impl Arrival<'_> {
    /// The request was answered (call after the reply went to the kernel): records it with its
    /// arrival time as `t_us` and now as `done_us`. `pid` is the requesting thread as the kernel
    /// reports it. A path the format cannot hold records nothing.
    pub fn answered(mut self, pid: u32, path: &[u8], access: Access) {
        self.settled = true;
        let slot = match TracePath::new(path) {
            Ok(path) => {
                let done_us = self.recorder.now_us();
                Slot::Answered { pid, path, access, t_us: self.t_us, done_us: done_us.max(self.t_us) }
            }
            Err(_) => Slot::Dropped,
        };
        self.recorder.settle(self.seq, slot);
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.recorder.settle(self.seq, Slot::Dropped);
        }
    }
}

impl Recorder {
    fn with(writer: Option<Writer<FileSink>>, pending: Option<(PathBuf, Vec<Record>)>) -> Self {
        Recorder {
            state: Mutex::new(State {
                writer,
                pending,
                start: None,
                queue: VecDeque::new(),
                first: 0,
                threads: HashMap::new(),
                error: None,
            }),
        }
    }

    /// Creates the trace file and writes its header (made version 3: the records say when each
    /// request was answered); the clock starts at the first request.
    pub fn create(path: &Path, header: &Header) -> trace::Result<Self> {
        let writer = Writer::create(path, &header.clone().with_answer_times())?;
        Ok(Recorder::with(Some(writer), None))
    }

    /// A recorder whose header is not known yet (`trace record` learns what runs from files in
    /// the mounted image): records are kept in memory until [`Recorder::begin`], and nothing is
    /// written at all if it is never called.
    pub fn pending(path: &Path) -> Self {
        Recorder::with(None, Some((path.to_path_buf(), Vec::new())))
    }

    /// Creates the trace file of a [`Recorder::pending`] recorder with `header` (made version 3),
    /// then the records made so far.
    pub fn begin(&self, header: &Header) -> trace::Result<()> {
        let mut s = self.state.lock().expect("recorder lock");
        let Some((path, records)) = s.pending.take() else { return Ok(()) };
        let mut w = Writer::create(&path, &header.clone().with_answer_times())?;
        for r in &records {
            w.write(r)?;
        }
        s.writer = Some(w);
        Ok(())
    }

    fn now_us(&self) -> u64 {
        let mut s = self.state.lock().expect("recorder lock");
        s.start.get_or_insert_with(Instant::now).elapsed().as_micros() as u64
    }

    /// A request has arrived: its time is taken now, before the mount serves it.
    pub fn arrive(&self) -> Arrival<'_> {
        let mut s = self.state.lock().expect("recorder lock");
        let t_us = s.start.get_or_insert_with(Instant::now).elapsed().as_micros() as u64;
        let seq = s.first + s.queue.len() as u64;
        s.queue.push_back(Slot::Waiting);
        Arrival { recorder: self, seq, t_us, settled: false }
    }

    /// A request served at once (arrival and answer at the same instant).
    pub fn record(&self, pid: u32, path: &[u8], access: Access) {
        self.arrive().answered(pid, path, access);
    }

    /// Files the answer of request `seq`, then writes every answered request at the front.
    fn settle(&self, seq: u64, slot: Slot) {
        let mut s = self.state.lock().expect("recorder lock");
        let at = (seq - s.first) as usize;
        s.queue[at] = slot;
        while matches!(s.queue.front(), Some(Slot::Answered { .. } | Slot::Dropped)) {
            let front = s.queue.pop_front().expect("front");
            s.first += 1;
            if let Slot::Answered { pid, path, access, t_us, done_us } = front {
                s.write(pid, path, access, t_us, done_us);
            }
        }
    }

    /// Flushes the trace; the first write error, if any, is returned here. Later records are
    /// dropped, and so are requests still unanswered. Returns the number of records written.
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

impl State {
    fn write(&mut self, pid: u32, path: TracePath, access: Access, t_us: u64, done_us: u64) {
        let State { writer, pending, threads, error, .. } = self;
        if error.is_some() || (writer.is_none() && pending.is_none()) {
            return;
        }
        let next = threads.len() as u32;
        let thread = *threads.entry(pid).or_insert(next);
        let record = Record { t_us, done_us: Some(done_us), thread, path, access };
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
    fn records_carry_arrival_and_answer_times_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let r = Recorder::create(&path, &Header::new("fuse", "cmd")).unwrap();
        let slow = r.arrive(); // a read that takes a while
        std::thread::sleep(std::time::Duration::from_millis(3));
        let quick = r.arrive(); // a lookup served meanwhile by another request thread
        let ignored = r.arrive(); // a request that records nothing (e.g. a failed read)
        quick.answered(2, b"/etc/hosts", Access::Stat);
        drop(ignored);
        std::thread::sleep(std::time::Duration::from_millis(3));
        slow.answered(1, b"/lib/libc.so.6", Access::Read { offset: 0, len: 4096 });
        assert_eq!(r.finish().unwrap(), 2);
        let reader = Reader::open(&path).unwrap();
        assert_eq!(reader.header().chunkload_trace, 3, "the recorder writes answer times");
        let recs: Vec<Record> = reader.collect::<trace::Result<_>>().unwrap();
        assert_eq!(recs[0].path.as_bytes(), b"/lib/libc.so.6", "written in arrival order");
        assert_eq!((recs[0].thread, recs[1].thread), (0, 1));
        let (read, stat) = (&recs[0], &recs[1]);
        assert!(read.t_us <= stat.t_us);
        assert!(stat.done_us.unwrap() < read.done_us.unwrap(), "{recs:?}");
        assert!(read.done_us.unwrap() - read.t_us >= 6000, "the read's service time: {recs:?}");
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
