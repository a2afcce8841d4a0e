//! Where file bytes come from during extraction, and how they reach the disk.
//!
//! The flattened tree only knows a content reference per file; a [`ContentSource`] turns a batch
//! of references into bytes, reading its backing store (layer streams, or a chunked block image)
//! in whatever order is cheapest. It hands the bytes to a [`FileSink`], which owns every policy of
//! writing: files are created with `O_EXCL | O_NOFOLLOW` by a small pool of writer threads (file
//! creation, not decoding, dominates extraction of images with many small files), and metadata is
//! applied through the open descriptor, so no path is looked up twice.

use std::ffi::OsStr;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{Error, Result};
use crate::flatten::{ContentRef, Meta};

/// One file to create at `path` with the bytes `content` names and metadata `meta`.
#[derive(Debug, Clone)]
pub struct FileRequest {
    pub content: ContentRef,
    pub path: PathBuf,
    pub meta: Meta,
}

/// Produces file bytes. Implementations verify what they read and report any mismatch as an
/// error; they write through the sink they are given.
pub trait ContentSource: Sync {
    fn write_files(&self, requests: Vec<FileRequest>, sink: &FileSink) -> Result<()>;
}

/// Files up to this size are handed to the writer threads whole; larger ones are streamed by the
/// caller through [`FileSink::create`], so memory stays bounded by `QUEUE * INLINE_LIMIT`.
pub const INLINE_LIMIT: usize = 1 << 20;
const QUEUE: usize = 128;

/// A whole small file on its way to a writer thread.
type Job = (FileRequest, Vec<u8>);

/// The writing side of extraction.
pub struct FileSink {
    /// One queue per writer thread. A file goes to the writer its directory hashes to, so two
    /// writers never contend for one directory's lock (the kernel serialises creates per directory).
    tx: Mutex<Vec<SyncSender<Job>>>,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    chown: bool,
    skipped_xattrs: AtomicU64,
}

impl FileSink {
    /// Runs `body` with a sink backed by `threads` writer threads; returns once every queued file
    /// is written, with the first error from either side.
    pub fn run(chown: bool, threads: usize, body: impl FnOnce(&FileSink) -> Result<()>) -> Result<u64> {
        let threads = threads.max(1);
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| sync_channel::<Job>(QUEUE / threads)).unzip();
        let sink = FileSink {
            tx: Mutex::new(txs),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            chown,
            skipped_xattrs: AtomicU64::new(0),
        };
        let result = std::thread::scope(|s| {
            for rx in rxs {
                let sink = &sink;
                s.spawn(move || sink.writer_loop(rx));
            }
            let r = body(&sink);
            // Closing the queues lets the writers drain them and stop.
            sink.tx.lock().expect("sink lock").clear();
            r
        });
        let first = sink.error.lock().expect("sink lock").take();
        match (result, first) {
            (Err(e), _) | (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(sink.skipped_xattrs.load(Ordering::Relaxed)),
        }
    }

    fn writer_loop(&self, rx: Receiver<Job>) {
        for (req, data) in rx {
            if self.failed.load(Ordering::Relaxed) {
                continue;
            }
            let written = self.create(&req).and_then(|mut f| {
                f.write_all(&data)?;
                f.finish()
            });
            if let Err(e) = written {
                self.fail(e);
            }
        }
    }

    fn fail(&self, e: Error) {
        self.failed.store(true, Ordering::Relaxed);
        self.error.lock().expect("sink lock").get_or_insert(e);
    }

    /// Whether a writer has failed: sources stop reading early when it has.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Queues a whole small file for the writer threads.
    pub fn submit(&self, req: FileRequest, data: Vec<u8>) -> Result<()> {
        let tx = {
            let txs = self.tx.lock().expect("sink lock");
            let mut h = std::hash::DefaultHasher::new();
            req.path.parent().hash(&mut h);
            txs.get(h.finish() as usize % txs.len().max(1)).cloned()
        };
        match tx {
            Some(tx) if !self.has_failed() => {
                // A send error means the writers are gone, which only happens after a failure.
                let _ = tx.send((req, data));
                Ok(())
            }
            _ => Err(Error::Content("extraction stopped after an earlier write failed".into())),
        }
    }

    /// Creates a file for the caller to stream into (large files).
    pub fn create(&self, req: &FileRequest) -> Result<NewFile<'_>> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&req.path)
            .map_err(|source| Error::Io { path: req.path.clone(), op: "create", source })?;
        Ok(NewFile { file, req: req.clone(), sink: self })
    }
}

/// A regular file being written into the staging tree.
pub struct NewFile<'s> {
    file: fs::File,
    req: FileRequest,
    sink: &'s FileSink,
}

impl NewFile<'_> {
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.file.write_all(buf).map_err(|source| Error::Io {
            path: self.req.path.clone(),
            op: "write",
            source,
        })
    }

    /// Applies owner, xattrs, mode and times through the descriptor (owner first: chown clears
    /// setuid bits), then closes.
    pub fn finish(self) -> Result<()> {
        let (f, meta, path) = (&self.file, &self.req.meta, &self.req.path);
        let io = |op: &'static str| {
            move |e: rustix::io::Errno| Error::Io { path: path.clone(), op, source: e.into() }
        };
        if self.sink.chown {
            let uid = u32::try_from(meta.uid).ok().map(rustix::fs::Uid::from_raw);
            let gid = u32::try_from(meta.gid).ok().map(rustix::fs::Gid::from_raw);
            rustix::fs::fchown(f, uid, gid).map_err(io("fchown"))?;
        }
        for (name, value) in &meta.xattrs {
            match rustix::fs::fsetxattr(f, OsStr::from_bytes(name), value, rustix::fs::XattrFlags::empty()) {
                Ok(()) => {}
                Err(rustix::io::Errno::PERM | rustix::io::Errno::NOTSUP) => {
                    self.sink.skipped_xattrs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(io("fsetxattr")(e)),
            }
        }
        rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(meta.mode)).map_err(io("fchmod"))?;
        let t = rustix::fs::Timespec { tv_sec: meta.mtime.secs, tv_nsec: i64::from(meta.mtime.nanos) };
        rustix::fs::futimens(f, &rustix::fs::Timestamps { last_access: t, last_modification: t })
            .map_err(io("futimens"))?;
        Ok(())
    }
}
