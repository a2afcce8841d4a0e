//! The worker's chunk cache (L1): memory for very recent chunks, local disk for less recent ones,
//! as the paper describes it. Exclusive tiers: a chunk enters memory, is demoted to disk when
//! memory evicts it, and is promoted back to memory when read from disk.

use serde::Serialize;

use super::tier::Tier;
use crate::cache::{BoundedCache, CacheStats, ChunkId, PolicyKind};
use crate::units::ByteSize;

/// Counters of both tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    pub memory: CacheStats,
    pub disk: CacheStats,
}

impl WorkerStats {
    pub fn since(&self, earlier: &Self) -> Self {
        WorkerStats { memory: self.memory.since(&earlier.memory), disk: self.disk.since(&earlier.disk) }
    }
}

pub struct WorkerCache {
    memory: BoundedCache,
    disk: BoundedCache,
}

impl WorkerCache {
    pub fn new(
        policy: PolicyKind,
        memory: ByteSize,
        disk: ByteSize,
        typical_chunk: ByteSize,
        seed: u64,
    ) -> Self {
        WorkerCache {
            memory: BoundedCache::with_policy(policy, memory, typical_chunk, seed),
            disk: BoundedCache::with_policy(policy, disk, typical_chunk, seed.wrapping_add(1)),
        }
    }

    /// Looks a chunk up: the tier that holds it ([`Tier::WorkerMemory`] or [`Tier::WorkerDisk`]); a disk hit is promoted to memory (demoting what memory evicts).
    pub fn get(&mut self, id: ChunkId, size: ByteSize) -> Option<Tier> {
        self.get_with(id, size, |_| {})
    }

    /// [`get`](Self::get), calling `on_leave` for every chunk the promotion pushes out of the
    /// worker cache altogether (evicted from disk).
    pub fn get_with(&mut self, id: ChunkId, size: ByteSize, on_leave: impl FnMut(ChunkId)) -> Option<Tier> {
        if self.memory.get(id, size) {
            return Some(Tier::WorkerMemory);
        }
        if self.disk.get(id, size) {
            self.disk.remove(id);
            self.insert_with(id, size, on_leave);
            return Some(Tier::WorkerDisk);
        }
        None
    }

    /// Admits a chunk into memory; whatever memory evicts moves to disk.
    pub fn insert(&mut self, id: ChunkId, size: ByteSize) {
        self.insert_with(id, size, |_| {});
    }

    /// [`insert`](Self::insert), calling `on_leave` for every chunk that leaves the worker cache
    /// altogether: a caller that maps its own ids onto dense ones can then reuse them.
    pub fn insert_with(&mut self, id: ChunkId, size: ByteSize, mut on_leave: impl FnMut(ChunkId)) {
        let disk = &mut self.disk;
        let admitted = self.memory.insert_with(id, size, |victim, vsize| {
            if !disk.insert_with(victim, vsize, |gone, _| on_leave(gone)) {
                on_leave(victim);
            }
        });
        if !admitted {
            // Larger than memory: straight to disk.
            if !self.disk.insert_with(id, size, |gone, _| on_leave(gone)) {
                on_leave(id);
            }
        }
    }

    pub fn contains(&self, id: ChunkId) -> bool {
        self.memory.contains(id) || self.disk.contains(id)
    }

    pub fn stats(&self) -> WorkerStats {
        WorkerStats { memory: *self.memory.stats(), disk: *self.disk.stats() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_chunks_in_memory_older_on_disk_and_promoted_back() {
        let k = ByteSize::kib(512);
        let mut c = WorkerCache::new(PolicyKind::Lru, ByteSize::mib(1), ByteSize::mib(2), k, 1);
        for i in 0..4 {
            c.insert(ChunkId(i), k);
        }
        // Memory holds the two most recent, disk the two before.
        assert_eq!(c.get(ChunkId(3), k), Some(Tier::WorkerMemory));
        assert_eq!(c.get(ChunkId(0), k), Some(Tier::WorkerDisk));
        // Promoted: now a memory hit; its place on disk went to what memory demoted.
        assert_eq!(c.get(ChunkId(0), k), Some(Tier::WorkerMemory));
        assert!((0..4).all(|i| c.contains(ChunkId(i))), "nothing lost: 4 chunks fit in 1 + 2 MiB");
        c.insert(ChunkId(4), k);
        c.insert(ChunkId(5), k);
        assert_eq!((0..6).filter(|&i| c.contains(ChunkId(i))).count(), 6);
        c.insert(ChunkId(6), k);
        assert_eq!((0..7).filter(|&i| c.contains(ChunkId(i))).count(), 6, "1 + 2 MiB hold six chunks");
        let s = c.stats();
        assert!(s.disk.evictions >= 1 && s.memory.evictions >= 1);
    }
}
