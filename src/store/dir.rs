//! A content-addressed directory, laid out so that many processes can write it at once:
//!
//! ```text
//! ROOT/chunks/ab/cd/abcd…(64 hex)   one file per chunk, fanned out by the first two bytes
//! ROOT/manifests/NAME               sealed manifests
//! ROOT/tmp/                          files being written; never read
//! ROOT/roots/N                      one small file per generational root (see `roots.rs`)
//! ROOT/lock                         flock: writers hold it shared, `gc` exclusive
//! ```
//!
//! The full layout, the root states and what each command guarantees after a crash are in
//! `docs/store-format.md`.
//!
//! A chunk is written to a unique file in `tmp/`, synced, and then published with `link(2)`, which
//! fails if the final name exists: a final name only ever holds a complete chunk (even after a
//! crash), an existing chunk is never overwritten, and of two processes racing on one chunk exactly
//! one reports it as new. The directories that gained names are synced together by `flush`, which
//! a writer calls before it publishes a manifest that refers to the chunks.

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::crash::crash_point;
use super::stats::Counters;
use super::{ChunkStore, Error, ManifestName, Result, StoreStats};
use crate::crypto::ChunkName;

#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    sync: bool,
    counters: Counters,
    /// Directories given new entries (chunk names, new fan-out directories) since the last
    /// `flush`: synced together there rather than one by one on every put.
    unsynced_dirs: Mutex<BTreeSet<PathBuf>>,
}

/// Threads that sync directories at `flush`: each sync mostly waits for the disk.
const FLUSH_THREADS: usize = 16;

/// Makes temp names unique within this process; the pid makes them unique across processes.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.to_path_buf(), source }
}

impl DirStore {
    /// Opens (creating if needed) a store at `root`. Writes are fsynced before they are published.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["chunks", "manifests", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
        }
        Ok(DirStore { root, sync: true, counters: Counters::default(), unsynced_dirs: Mutex::default() })
    }

    /// Whether to fsync each file before publishing it. Turning it off is for tests and scratch
    /// stores: after a crash a published chunk could then be empty or partial on disk.
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's `tmp/`: on the store's filesystem, for scratch files of a writer (never read as
    /// chunks or manifests).
    pub fn scratch_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Takes the store's lock shared, waiting while a `gc` holds it: every writer (convert,
    /// copy-forward) holds it from before it looks for a chunk until its manifest is published,
    /// so a `gc` never sees a chunk that a manifest being written will need but does not name yet.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.lock(false)
    }

    /// Takes the store's lock exclusively, waiting for every writer to finish: no writer runs while
    /// it is held, so every file in `tmp/` was left by a writer that crashed.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock(true)
    }

    fn lock(&self, exclusive: bool) -> Result<StoreLock> {
        let path = self.root.join("lock");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        let locked = if exclusive { file.lock() } else { file.lock_shared() };
        locked.map_err(io_err("lock", &path))?;
        Ok(StoreLock { _file: file })
    }

    /// Every file under `chunks/`, with the chunk name its path spells (`None` for a file whose
    /// name is not 64 hex digits or that sits in the wrong fan-out directory), sorted by path.
    pub fn chunk_files(&self) -> Result<Vec<ChunkFile>> {
        let mut out = Vec::new();
        let top = self.root.join("chunks");
        for a in read_dir_sorted(&top)? {
            if !a.is_dir() {
                out.push(ChunkFile { name: None, len: file_len(&a)?, path: a });
                continue;
            }
            for b in read_dir_sorted(&a)? {
                if !b.is_dir() {
                    out.push(ChunkFile { name: None, len: file_len(&b)?, path: b });
                    continue;
                }
                for path in read_dir_sorted(&b)? {
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.parse::<ChunkName>().ok())
                        .filter(|n| self.chunk_path(n) == path);
                    out.push(ChunkFile { name, len: file_len(&path)?, path });
                }
            }
        }
        Ok(out)
    }

    /// Files in `tmp/` with their lengths, sorted by name.
    pub fn temp_files(&self) -> Result<Vec<(PathBuf, u64)>> {
        read_dir_sorted(&self.scratch_dir())?
            .into_iter()
            .map(|p| {
                let len = file_len(&p)?;
                Ok((p, len))
            })
            .collect()
    }

    /// Where chunk `name` lives (whether or not it exists).
    pub fn chunk_path(&self, name: &ChunkName) -> PathBuf {
        let hex = name.to_hex();
        self.root.join("chunks").join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    fn manifest_path(&self, name: &ManifestName) -> PathBuf {
        self.root.join("manifests").join(name.as_str())
    }

    /// Writes `bytes` to a new unique file under `tmp/` and returns its path.
    fn write_temp(&self, stem: &str, bytes: &[u8]) -> Result<PathBuf> {
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self.root.join("tmp").join(format!("{stem}.{}.{seq}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            if self.sync {
                f.sync_data()?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write temporary file", &tmp)(e));
        }
        Ok(tmp)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        if self.sync {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))?;
        }
        Ok(())
    }
}

/// A hold on the store's lock file (`ROOT/lock`); released when dropped (or when the process dies,
/// so a crashed writer never blocks a later `gc`).
#[derive(Debug)]
pub struct StoreLock {
    _file: fs::File,
}

/// A file under `chunks/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkFile {
    pub path: PathBuf,
    /// The chunk name its path spells, if it is a well-placed chunk file.
    pub name: Option<ChunkName>,
    pub len: u64,
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        out.push(entry.map_err(io_err("list", dir))?.path());
    }
    out.sort();
    Ok(out)
}

fn file_len(path: &Path) -> Result<u64> {
    Ok(fs::symlink_metadata(path).map_err(io_err("stat", path))?.len())
}

impl ChunkStore for DirStore {
    fn contains(&self, name: &ChunkName) -> Result<bool> {
        let path = self.chunk_path(name);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("check chunk", &path)(e)),
        }
    }

    fn put_if_absent(&self, name: &ChunkName, ciphertext: &[u8]) -> Result<bool> {
        if self.contains(name)? {
            self.counters.record_put(false, ciphertext.len());
            return Ok(false);
        }
        let path = self.chunk_path(name);
        let parent = path.parent().expect("chunk paths have a parent");
        if !parent.is_dir() {
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            // New fan-out directories are entries of their parents, which must survive a crash too.
            if self.sync {
                self.unsynced_dirs
                    .lock()
                    .expect("lock")
                    .extend(parent.ancestors().skip(1).take(2).map(Path::to_path_buf));
            }
        }
        let tmp = self.write_temp(&name.to_hex(), ciphertext)?;
        crash_point("chunk-temp");
        let linked = fs::hard_link(&tmp, &path);
        crash_point("chunk-linked");
        let _ = fs::remove_file(&tmp);
        let new = match linked {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
            Err(e) => return Err(io_err("publish chunk", &path)(e)),
        };
        if new && self.sync {
            self.unsynced_dirs.lock().expect("lock").insert(parent.to_path_buf());
        }
        self.counters.record_put(new, ciphertext.len());
        Ok(new)
    }

    fn flush(&self) -> Result<()> {
        let dirs: Vec<PathBuf> =
            std::mem::take(&mut *self.unsynced_dirs.lock().expect("lock")).into_iter().collect();
        crash_point("flush");
        // The first sync commits the journal for all; the rest mostly wait on it, so run them at once.
        let per_thread = dirs.len().div_ceil(FLUSH_THREADS).max(1);
        std::thread::scope(|s| {
            let syncs: Vec<_> = dirs
                .chunks(per_thread)
                .map(|part| s.spawn(move || part.iter().try_for_each(|d| self.sync_dir(d))))
                .collect();
            syncs.into_iter().try_for_each(|t| t.join().expect("sync thread does not panic"))
        })
    }

    fn get(&self, name: &ChunkName) -> Result<Vec<u8>> {
        let path = self.chunk_path(name);
        fs::read(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::ChunkNotFound(*name),
            _ => io_err("read chunk", &path)(e),
        })
    }

    fn put_manifest(&self, name: &ManifestName, sealed: &[u8]) -> Result<()> {
        let path = self.manifest_path(name);
        let tmp = self.write_temp(&format!("manifest-{name}"), sealed)?;
        crash_point("manifest-temp");
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("publish manifest", &path)(e));
        }
        self.sync_dir(path.parent().expect("manifest paths have a parent"))
    }

    fn get_manifest(&self, name: &ManifestName) -> Result<Vec<u8>> {
        let path = self.manifest_path(name);
        fs::read(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::ManifestNotFound(name.to_string()),
            _ => io_err("read manifest", &path)(e),
        })
    }

    fn list_manifests(&self) -> Result<Vec<ManifestName>> {
        let dir = self.root.join("manifests");
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            // Names that are not valid manifest names were not written by this store: skip them.
            if let Some(name) = entry.file_name().to_str().and_then(|n| ManifestName::new(n).ok()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_missing_chunk_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap().with_sync(false);
        let name = ChunkName::of_ciphertext(b"c");
        let hex = name.to_hex();
        let e = store.get(&name).unwrap_err();
        assert!(matches!(e, Error::ChunkNotFound(n) if n == name));
        assert!(e.to_string().contains(&hex), "{e}");
        assert!(store.put_if_absent(&name, b"c").unwrap());
        assert!(!store.put_if_absent(&name, b"c").unwrap());
        let want = dir.path().join("chunks").join(&hex[..2]).join(&hex[2..4]).join(&hex);
        assert_eq!(store.chunk_path(&name), want);
        assert_eq!(fs::read(want).unwrap(), b"c");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "temp files are removed");
        assert_eq!(store.stats(), StoreStats { chunks_new: 1, chunks_present: 1, bytes_written: 1 });
    }

    #[test]
    fn flush_syncs_every_directory_that_gained_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap();
        let name = ChunkName::of_ciphertext(b"c");
        assert!(store.put_if_absent(&name, b"c").unwrap());
        let path = store.chunk_path(&name);
        let want: BTreeSet<PathBuf> = path.ancestors().skip(1).take(3).map(Path::to_path_buf).collect();
        assert_eq!(
            *store.unsynced_dirs.lock().unwrap(),
            want,
            "the chunk's directory and the new fan-out ones"
        );
        store.flush().unwrap();
        assert!(store.unsynced_dirs.lock().unwrap().is_empty());
        // A second chunk in an existing fan-out directory adds only that directory.
        assert!(!store.put_if_absent(&name, b"c").unwrap());
        assert!(store.unsynced_dirs.lock().unwrap().is_empty(), "nothing new, nothing to sync");
    }

    #[test]
    fn the_exclusive_lock_waits_for_every_shared_holder() {
        use std::sync::mpsc;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap().with_sync(false);
        let (one, two) = (store.lock_shared().unwrap(), store.lock_shared().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _gc = store.lock_exclusive().unwrap();
                tx.send(()).unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "two writers hold it");
            drop(one);
            assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "one writer holds it");
            drop(two);
            rx.recv_timeout(Duration::from_secs(10)).expect("gc gets the lock once writers are done");
        });
    }

    #[test]
    fn manifests_replace_and_list_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap().with_sync(false);
        let (a, b) = (ManifestName::new("b-img").unwrap(), ManifestName::new("a-img").unwrap());
        store.put_manifest(&a, b"one").unwrap();
        store.put_manifest(&a, b"two").unwrap();
        store.put_manifest(&b, b"x").unwrap();
        fs::write(dir.path().join("manifests").join(".stray"), b"").unwrap();
        assert_eq!(store.get_manifest(&a).unwrap(), b"two");
        assert_eq!(store.list_manifests().unwrap(), vec![b.clone(), a]);
        let missing = ManifestName::new("nope").unwrap();
        assert!(matches!(store.get_manifest(&missing), Err(Error::ManifestNotFound(n)) if n == "nope"));
    }
}
