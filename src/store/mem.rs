//! An in-memory store for tests and for runs that keep nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::stats::Counters;
use super::{ChunkStore, Error, ManifestName, Result, StoreStats};
use crate::crypto::ChunkName;

#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Inner {
    chunks: BTreeMap<ChunkName, Arc<[u8]>>,
    manifests: BTreeMap<ManifestName, Arc<[u8]>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of chunks held.
    pub fn chunk_count(&self) -> usize {
        self.lock().chunks.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a map half-updated (each update is one
        // insert), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ChunkStore for MemStore {
    fn contains(&self, name: &ChunkName) -> Result<bool> {
        Ok(self.lock().chunks.contains_key(name))
    }

    fn put_if_absent(&self, name: &ChunkName, ciphertext: &[u8]) -> Result<bool> {
        let new = {
            let mut inner = self.lock();
            if inner.chunks.contains_key(name) {
                false
            } else {
                inner.chunks.insert(*name, ciphertext.into());
                true
            }
        };
        self.counters.record_put(new, ciphertext.len());
        Ok(new)
    }

    fn get(&self, name: &ChunkName) -> Result<Vec<u8>> {
        self.lock().chunks.get(name).map(|c| c.to_vec()).ok_or(Error::ChunkNotFound(*name))
    }

    fn put_manifest(&self, name: &ManifestName, sealed: &[u8]) -> Result<()> {
        self.lock().manifests.insert(name.clone(), sealed.into());
        Ok(())
    }

    fn get_manifest(&self, name: &ManifestName) -> Result<Vec<u8>> {
        self.lock()
            .manifests
            .get(name)
            .map(|m| m.to_vec())
            .ok_or_else(|| Error::ManifestNotFound(name.to_string()))
    }

    fn list_manifests(&self) -> Result<Vec<ManifestName>> {
        Ok(self.lock().manifests.keys().cloned().collect())
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}
