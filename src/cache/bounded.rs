//! A cache tier bounded in bytes, over any eviction policy.

use serde::Serialize;

use super::{ChunkId, EvictionPolicy, PolicyKind};
use crate::units::ByteSize;

/// Marks a non-resident id in [`Sizes::Mixed`], and a [`Sizes::Uniform`] that has seen no chunk.
const ABSENT: u32 = u32::MAX;

/// Per id: its size while resident. While every chunk admitted has had one size (all of a fleet's
/// AZ-cache pieces do), one bit per id says whether it is resident, so the residency of a node's
/// whole id space stays in the CPU's caches where a `u32` per id would cost a memory access per
/// lookup; the first chunk of another size turns it into a `u32` per id.
enum Sizes {
    Uniform { size: u32, bits: Vec<u64> },
    Mixed(Vec<u32>),
}

impl Sizes {
    #[inline]
    fn get(&self, id: ChunkId) -> Option<u32> {
        match self {
            Sizes::Uniform { size, bits } => {
                let word = bits.get(id.index() / 64)?;
                (word >> (id.index() % 64) & 1 == 1).then_some(*size)
            }
            Sizes::Mixed(v) => v.get(id.index()).copied().filter(|&s| s != ABSENT),
        }
    }

    /// Records `id`, not resident, as resident with `size` (not `ABSENT`).
    #[inline]
    fn set(&mut self, id: ChunkId, size: u32) {
        if let Sizes::Uniform { size: uniform, bits } = self {
            if *uniform == ABSENT || *uniform == size {
                *uniform = size;
                if id.index() / 64 >= bits.len() {
                    bits.resize(id.index() / 64 + 1, 0);
                }
                bits[id.index() / 64] |= 1 << (id.index() % 64);
                return;
            }
            let mut v = vec![ABSENT; bits.len() * 64];
            for (i, s) in v.iter_mut().enumerate() {
                if bits[i / 64] >> (i % 64) & 1 == 1 {
                    *s = *uniform;
                }
            }
            *self = Sizes::Mixed(v);
        }
        if let Sizes::Mixed(v) = self {
            if id.index() >= v.len() {
                v.resize(id.index() + 1, ABSENT);
            }
            v[id.index()] = size;
        }
    }

    /// Marks `id` not resident; its size if it was.
    #[inline]
    fn take(&mut self, id: ChunkId) -> Option<u32> {
        let size = self.get(id)?;
        match self {
            Sizes::Uniform { bits, .. } => bits[id.index() / 64] &= !(1 << (id.index() % 64)),
            Sizes::Mixed(v) => v[id.index()] = ABSENT,
        }
        Some(size)
    }

    #[inline]
    fn prefetch(&self, id: ChunkId) {
        match self {
            // A bit per id: the words are in the CPU's caches already.
            Sizes::Uniform { .. } => {}
            Sizes::Mixed(v) => super::prefetch(v, id.index()),
        }
    }
}

/// What a [`BoundedCache`] did. Every request is a hit or a miss; byte counts use the chunk's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub hit_bytes: ByteSize,
    pub miss_bytes: ByteSize,
    /// Chunks admitted by `insert`.
    pub insertions: u64,
    /// Chunks larger than the whole cache, turned away by `insert`.
    pub rejections: u64,
    pub evictions: u64,
    pub evicted_bytes: ByteSize,
}

impl CacheStats {
    /// What happened between `earlier` (a snapshot of the same cache) and now.
    pub fn since(&self, earlier: &Self) -> Self {
        let b = |now: ByteSize, then: ByteSize| ByteSize(now.bytes() - then.bytes());
        CacheStats {
            hits: self.hits - earlier.hits,
            misses: self.misses - earlier.misses,
            hit_bytes: b(self.hit_bytes, earlier.hit_bytes),
            miss_bytes: b(self.miss_bytes, earlier.miss_bytes),
            insertions: self.insertions - earlier.insertions,
            rejections: self.rejections - earlier.rejections,
            evictions: self.evictions - earlier.evictions,
            evicted_bytes: b(self.evicted_bytes, earlier.evicted_bytes),
        }
    }

    /// Hits over requests; 0 before any request.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 { 0.0 } else { self.hits as f64 / total as f64 }
    }
}

/// A cache of chunk ids holding at most `capacity` bytes. It owns residency and byte accounting;
/// the policy only orders residents and names victims. No chunk bytes are stored: the model below
/// the chunking stage deals in ids and sizes only.
///
/// Per-id state is indexed by [`ChunkId`] (grown on demand), like the policies': a bit per id while
/// every chunk has had the same size, else sizes as `u32` (chunks are 512 KiB; halving that array
/// was worth a good part of replay speed once a million chunk ids no longer fit in cache). A chunk
/// of 4 GiB or more is not admitted.
pub struct BoundedCache {
    policy: Box<dyn EvictionPolicy + Send>,
    capacity: u64,
    used: u64,
    sizes: Sizes,
    resident: usize,
    stats: CacheStats,
}

impl BoundedCache {
    /// An empty cache over `policy`, which must be empty too.
    pub fn new(policy: Box<dyn EvictionPolicy + Send>, capacity: ByteSize) -> Self {
        assert!(policy.is_empty(), "BoundedCache needs a fresh policy");
        BoundedCache {
            policy,
            capacity: capacity.bytes(),
            used: 0,
            sizes: Sizes::Uniform { size: ABSENT, bits: Vec::new() },
            resident: 0,
            stats: CacheStats::default(),
        }
    }

    /// An empty cache running `kind`, sized for chunks of about `typical_chunk` bytes (which sets
    /// the policy's `capacity_entries`).
    pub fn with_policy(kind: PolicyKind, capacity: ByteSize, typical_chunk: ByteSize, seed: u64) -> Self {
        let entries = capacity.bytes() / typical_chunk.bytes().max(1);
        Self::new(kind.build(usize::try_from(entries).unwrap_or(usize::MAX), seed), capacity)
    }

    /// Looks `id` up, counting a hit or a miss. `size` is the chunk's size as the caller knows it
    /// (from the manifest); it is what a miss costs, since a miss has no stored size to use.
    #[inline]
    pub fn get(&mut self, id: ChunkId, size: ByteSize) -> bool {
        match self.sizes.get(id) {
            Some(stored) => {
                self.policy.on_hit(id);
                self.stats.hits += 1;
                self.stats.hit_bytes.0 += u64::from(stored);
                true
            }
            _ => {
                self.stats.misses += 1;
                self.stats.miss_bytes.0 += size.bytes();
                false
            }
        }
    }

    /// Starts loading what a lookup of `id` reads (see [`EvictionPolicy::prefetch`]).
    #[inline]
    pub fn prefetch(&self, id: ChunkId) {
        self.sizes.prefetch(id);
        self.policy.prefetch(id);
    }

    /// Whether `id` is resident, without counting a request or touching the eviction order.
    pub fn contains(&self, id: ChunkId) -> bool {
        self.sizes.get(id).is_some()
    }

    /// Makes `id` resident, evicting until it fits. Returns whether it is resident afterwards: a
    /// chunk larger than the whole cache (or of 4 GiB or more) is not admitted and evicts nothing;
    /// an already resident chunk stays as it is.
    pub fn insert(&mut self, id: ChunkId, size: ByteSize) -> bool {
        self.insert_with(id, size, |_, _| {})
    }

    /// [`insert`](Self::insert), calling `on_evict(victim, its size)` for every chunk evicted to
    /// make room: for a tier that must follow this one's victims (an inclusive tier in front of it
    /// drops its copy too).
    pub fn insert_with(
        &mut self,
        id: ChunkId,
        size: ByteSize,
        mut on_evict: impl FnMut(ChunkId, ByteSize),
    ) -> bool {
        if self.contains(id) {
            return true;
        }
        let size = size.bytes();
        let stored = match u32::try_from(size) {
            Ok(s) if s != ABSENT && size <= self.capacity => s,
            _ => {
                self.stats.rejections += 1;
                return false;
            }
        };
        while self.used + size > self.capacity {
            let victim = self.policy.evict().expect("policy tracks every resident chunk");
            let freed = self.forget(victim).expect("policy evicted a chunk that was not resident");
            self.stats.evictions += 1;
            self.stats.evicted_bytes.0 += freed;
            on_evict(victim, ByteSize(freed));
        }
        self.sizes.set(id, stored);
        self.used += size;
        self.resident += 1;
        self.policy.on_insert(id);
        self.stats.insertions += 1;
        true
    }

    /// Invalidates `id` if resident (not an eviction: the policy forgets it). Returns whether it was.
    pub fn remove(&mut self, id: ChunkId) -> bool {
        if !self.contains(id) {
            return false;
        }
        self.policy.remove(id);
        self.forget(id);
        true
    }

    /// Drops `id` from residency; its size, or `None` if it was not resident.
    fn forget(&mut self, id: ChunkId) -> Option<u64> {
        let size = u64::from(self.sizes.take(id)?);
        self.used -= size;
        self.resident -= 1;
        Some(size)
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    pub fn capacity(&self) -> ByteSize {
        ByteSize(self.capacity)
    }

    /// Bytes held by resident chunks; never more than `capacity()`.
    pub fn used(&self) -> ByteSize {
        ByteSize(self.used)
    }

    /// Number of resident chunks.
    pub fn len(&self) -> usize {
        self.resident
    }

    pub fn is_empty(&self) -> bool {
        self.resident == 0
    }

    pub fn policy_name(&self) -> &str {
        self.policy.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: ByteSize = ByteSize::kib(512);

    #[test]
    fn evicts_until_the_new_chunk_fits() {
        let mut c = BoundedCache::with_policy(PolicyKind::Lru, ByteSize::kib(1024), CHUNK, 0);
        for i in 0..2 {
            assert!(!c.get(ChunkId(i), CHUNK));
            assert!(c.insert(ChunkId(i), CHUNK));
        }
        assert!(c.get(ChunkId(0), CHUNK));
        // A full-size chunk needs both slots.
        assert!(c.insert(ChunkId(2), ByteSize::kib(1024)));
        assert_eq!((c.len(), c.used()), (1, ByteSize::kib(1024)));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.insertions, s.evictions), (1, 2, 3, 2));
        assert_eq!(
            (s.hit_bytes, s.miss_bytes, s.evicted_bytes),
            (CHUNK, ByteSize::kib(1024), ByteSize::kib(1024))
        );
    }

    #[test]
    fn a_second_chunk_size_keeps_every_residents_size() {
        let mut c = BoundedCache::with_policy(PolicyKind::Lru, ByteSize::mib(4), CHUNK, 0);
        for i in [3, 70, 200] {
            assert!(c.insert(ChunkId(i), CHUNK));
        }
        assert!(c.remove(ChunkId(70)));
        // Residency was a bit per id; a smaller chunk turns it into a size per id.
        assert!(c.insert(ChunkId(5), ByteSize::kib(100)));
        assert_eq!(c.used(), ByteSize(2 * CHUNK.bytes() + ByteSize::kib(100).bytes()));
        assert!(c.contains(ChunkId(3)) && c.contains(ChunkId(200)) && c.contains(ChunkId(5)));
        assert!(!c.contains(ChunkId(70)) && !c.contains(ChunkId(4)) && !c.contains(ChunkId(9999)));
        assert!(c.get(ChunkId(200), CHUNK));
        assert_eq!(c.stats().hit_bytes, CHUNK);
        assert!(c.remove(ChunkId(3)));
        assert_eq!(c.used(), ByteSize(CHUNK.bytes() + ByteSize::kib(100).bytes()));
        // Evictions free each victim's own size.
        for i in 300..310 {
            assert!(c.insert(ChunkId(i), CHUNK));
        }
        assert!(c.used() <= c.capacity());
        assert_eq!(c.len(), 8);
    }

    #[test]
    fn oversized_chunk_is_not_admitted_and_evicts_nothing() {
        let mut c = BoundedCache::with_policy(PolicyKind::Fifo, ByteSize::kib(512), CHUNK, 0);
        assert!(c.insert(ChunkId(0), CHUNK));
        assert!(!c.insert(ChunkId(1), ByteSize::kib(513)));
        assert!(c.contains(ChunkId(0)) && !c.contains(ChunkId(1)));
        assert_eq!((c.stats().rejections, c.stats().evictions), (1, 0));
    }

    #[test]
    fn remove_frees_bytes_without_counting_an_eviction() {
        let mut c = BoundedCache::with_policy(PolicyKind::Arc, ByteSize::kib(1024), CHUNK, 0);
        c.insert(ChunkId(7), CHUNK);
        assert!(c.remove(ChunkId(7)));
        assert!(!c.remove(ChunkId(7)));
        assert_eq!((c.used(), c.len(), c.stats().evictions), (ByteSize(0), 0, 0));
    }

    #[test]
    fn stats_serialise_byte_counts_as_numbers() {
        let mut c = BoundedCache::with_policy(PolicyKind::Lru, CHUNK, CHUNK, 0);
        c.get(ChunkId(0), CHUNK);
        let json = serde_json::to_value(c.stats()).unwrap();
        assert_eq!(json["miss_bytes"], 524288);
        assert_eq!(json["misses"], 1);
    }
}
