//! The worker cache's local-disk tier, for real: chunk ciphertexts in files named after the chunk
//! (so a cache directory can outlive a mount and serve the next one), bounded in bytes by a
//! [`BoundedCache`] running one of the cache model's eviction policies. Ciphertext, not plaintext,
//! goes to disk: every disk hit is checked against the manifest again, so a damaged cache file is
//! a miss, never wrong bytes.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cache::{BoundedCache, CacheStats, ChunkId, PolicyKind};
use crate::crypto::ChunkName;
use crate::units::ByteSize;

use super::MountError;

pub struct DiskCache {
    dir: PathBuf,
    /// An exclusive lock on `dir/.lock`, held while mounted: one mount per cache directory, since
    /// each one owns the byte bound and removes files it does not know.
    _lock: fs::File,
    /// Per content id (dense over the image's distinct chunk names): the chunk's name.
    names: Vec<ChunkName>,
    state: Mutex<BoundedCache>,
}

impl DiskCache {
    /// Opens (creating if needed) `dir` as the disk tier for chunks `names` (indexed by content
    /// id, with their ciphertext sizes). Chunk files already there that belong to this image are
    /// admitted (a warm cache from an earlier mount); other chunk files are removed so the byte
    /// bound holds. Files whose names are not chunk names are left alone.
    pub fn open(
        dir: &Path,
        names: Vec<ChunkName>,
        sizes: &[u64],
        capacity: ByteSize,
        policy: PolicyKind,
        typical_chunk: ByteSize,
        seed: u64,
    ) -> Result<Self, MountError> {
        let io_err = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| MountError::CacheIo { op, path, source }
        };
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let lock_path = dir.join(".lock");
        let lock = fs::File::create(&lock_path).map_err(io_err("create", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(MountError::CacheBusy { path: dir.to_path_buf() });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        let mut cache = BoundedCache::with_policy(policy, capacity, typical_chunk, seed);
        let by_hex: HashMap<String, u32> =
            names.iter().enumerate().map(|(i, n)| (n.to_hex(), i as u32)).collect();
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let entry = entry.map_err(io_err("list", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let chunk_like = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            let temp = name.starts_with(".tmp-");
            if chunk_like || temp {
                found.push((name, entry.path()));
            }
        }
        found.sort(); // deterministic admission order
        for (name, path) in found {
            let keep = by_hex.get(&name).is_some_and(|&id| {
                let on_disk = fs::metadata(&path).map(|m| m.len()).ok();
                on_disk == Some(sizes[id as usize]) && cache.insert(ChunkId(id), ByteSize(sizes[id as usize]))
            });
            if !keep {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
        Ok(DiskCache { dir: dir.to_path_buf(), _lock: lock, names, state: Mutex::new(cache) })
    }

    fn path(&self, id: u32) -> PathBuf {
        self.dir.join(self.names[id as usize].to_hex())
    }

    /// The stored ciphertext of content `id`, counting a hit or a miss. A file that vanished or
    /// cannot be read is a miss (and leaves the cache).
    pub fn get(&self, id: u32, size: u64) -> Option<Vec<u8>> {
        if !self.state.lock().expect("disk cache lock").get(ChunkId(id), ByteSize(size)) {
            return None;
        }
        match fs::read(self.path(id)) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                self.remove(id);
                None
            }
        }
    }

    /// Stores content `id` (written beside, renamed into place), evicting (deleting) what the
    /// policy names until it fits.
    pub fn put(&self, id: u32, ciphertext: &[u8]) -> io::Result<()> {
        let path = self.path(id);
        let tmp = self.dir.join(format!(".tmp-{}-{id}", std::process::id()));
        fs::write(&tmp, ciphertext)?;
        fs::rename(&tmp, &path)?;
        let mut state = self.state.lock().expect("disk cache lock");
        let mut victims = Vec::new();
        let admitted =
            state.insert_with(ChunkId(id), ByteSize(ciphertext.len() as u64), |v, _| victims.push(v));
        for v in victims {
            let _ = fs::remove_file(self.path(v.0));
        }
        if !admitted {
            let _ = fs::remove_file(&path);
        }
        Ok(())
    }

    /// Drops content `id` (its file failed verification or vanished).
    pub fn remove(&self, id: u32) {
        let mut state = self.state.lock().expect("disk cache lock");
        if state.remove(ChunkId(id)) {
            let _ = fs::remove_file(self.path(id));
        }
    }

    pub fn stats(&self) -> CacheStats {
        *self.state.lock().expect("disk cache lock").stats()
    }

    pub fn used(&self) -> ByteSize {
        self.state.lock().expect("disk cache lock").used()
    }

    pub fn policy_name(&self) -> String {
        self.state.lock().expect("disk cache lock").policy_name().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: u8) -> ChunkName {
        ChunkName::of_ciphertext(&[i])
    }

    fn open(dir: &Path, capacity: u64) -> Result<DiskCache, MountError> {
        let names = (0..4).map(name).collect();
        DiskCache::open(dir, names, &[100; 4], ByteSize(capacity), PolicyKind::Fifo, ByteSize(100), 0)
    }

    #[test]
    fn bounded_evictions_delete_files_and_a_reopen_admits_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 200).unwrap();
        for id in 0..3 {
            cache.put(id, &[id as u8; 100]).unwrap();
        }
        assert!(!dir.path().join(name(0).to_hex()).exists(), "FIFO evicted the first chunk's file");
        assert_eq!(cache.get(2, 100), Some(vec![2; 100]));
        assert_eq!(cache.get(0, 100), None);
        drop(cache);
        // A stranger's chunk file and a file of the wrong size go; other files stay.
        fs::write(dir.path().join(ChunkName::of_ciphertext(b"other").to_hex()), b"x").unwrap();
        fs::write(dir.path().join(name(3).to_hex()), [0u8; 99]).unwrap();
        fs::write(dir.path().join("notes.txt"), b"keep").unwrap();
        let cache = open(dir.path(), 200).unwrap();
        assert_eq!(cache.get(1, 100), Some(vec![1; 100]), "warm from the earlier mount");
        assert_eq!(cache.used(), ByteSize(200));
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![name(1).to_hex(), name(2).to_hex(), ".lock".into(), "notes.txt".into()];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn one_mount_per_cache_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path(), 200).unwrap();
        let err = open(dir.path(), 200).err().expect("second open refused");
        assert!(err.to_string().contains("in use by another mount"), "{err}");
    }
}
