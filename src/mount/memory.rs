//! The mount's memory tier: the plaintext of the most recently used chunks, verified before they
//! got here, least recently used first out, bounded in bytes. A plain LRU of real values, so it is
//! the `lru` crate's `LruCache` (issue 14 item 4) with a byte bound on top: the crate bounds
//! entries, the tier bounds bytes (the last chunk of an image is shorter than the others).

use std::sync::Arc;

use lru::LruCache;

use crate::cache::CacheStats;
use crate::units::ByteSize;

/// Plaintext chunks by content id, LRU, at most `capacity` bytes.
pub(super) struct MemoryTier {
    chunks: LruCache<u32, Arc<Vec<u8>>>,
    capacity: u64,
    used: u64,
    stats: CacheStats,
}

impl MemoryTier {
    pub(super) fn new(capacity: ByteSize) -> Self {
        MemoryTier {
            chunks: LruCache::unbounded(),
            capacity: capacity.bytes(),
            used: 0,
            stats: CacheStats::default(),
        }
    }

    /// The chunk, made most recently used; counts a hit or a miss.
    pub(super) fn get(&mut self, id: u32) -> Option<Arc<Vec<u8>>> {
        match self.chunks.get(&id) {
            Some(data) => {
                self.stats.hits += 1;
                self.stats.hit_bytes = ByteSize(self.stats.hit_bytes.bytes() + data.len() as u64);
                Some(data.clone())
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Whether the chunk is here, without touching its recency or the counters.
    pub(super) fn contains(&self, id: u32) -> bool {
        self.chunks.contains(&id)
    }

    /// Admits the chunk as most recently used, evicting from the LRU end until it fits. A chunk
    /// larger than the whole tier is turned away; one already here is only made most recent.
    pub(super) fn put(&mut self, id: u32, data: Arc<Vec<u8>>) {
        let size = data.len() as u64;
        if self.chunks.get(&id).is_some() {
            return;
        }
        if size > self.capacity {
            self.stats.rejections += 1;
            return;
        }
        while self.used + size > self.capacity {
            let Some((_, victim)) = self.chunks.pop_lru() else { break };
            self.used -= victim.len() as u64;
            self.stats.evictions += 1;
            self.stats.evicted_bytes = ByteSize(self.stats.evicted_bytes.bytes() + victim.len() as u64);
        }
        self.chunks.put(id, data);
        self.used += size;
        self.stats.insertions += 1;
    }

    pub(super) fn stats(&self) -> CacheStats {
        self.stats
    }

    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(len: usize) -> Arc<Vec<u8>> {
        Arc::new(vec![7; len])
    }

    #[test]
    fn evicts_the_least_recently_used_until_the_new_chunk_fits() {
        let mut m = MemoryTier::new(ByteSize(300));
        m.put(1, chunk(100));
        m.put(2, chunk(100));
        m.put(3, chunk(100));
        assert!(m.get(1).is_some(), "1 is now the most recent");
        m.put(4, chunk(150)); // evicts 2 and 3, the two least recent
        assert!(m.contains(1) && m.contains(4));
        assert!(!m.contains(2) && !m.contains(3));
        assert_eq!(m.used(), 250);
        let s = m.stats();
        assert_eq!((s.insertions, s.evictions, s.evicted_bytes, s.hits), (4, 2, ByteSize(200), 1));
        assert!(m.get(2).is_none());
        assert_eq!(m.stats().misses, 1);
    }

    #[test]
    fn a_chunk_larger_than_the_tier_is_refused_and_a_repeat_put_changes_nothing() {
        let mut m = MemoryTier::new(ByteSize(100));
        m.put(1, chunk(101));
        assert!(!m.contains(1));
        assert_eq!(m.stats().rejections, 1);
        m.put(2, chunk(60));
        m.put(2, chunk(60));
        assert_eq!((m.used(), m.stats().insertions), (60, 1));
        let empty = MemoryTier::new(ByteSize(0));
        assert!(!empty.contains(0));
    }
}
