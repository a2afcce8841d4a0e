//! Belady's MIN for a byte-bounded cache, in one forward pass: each request carries the number of
//! the next request for the same object (as `oracleGeneral` records do), so no look-ahead is needed
//! and memory grows with the cache, not the trace.

use std::collections::BinaryHeap;

/// Marks a non-resident id.
const ABSENT: u32 = u32::MAX;
/// Stale heap keys tolerated beyond the live ones before a purge.
const PURGE_SLACK: usize = 1024;

/// On a miss, evicts the resident objects whose next request is furthest away until the missed
/// one fits, then admits it (demand paging, as [`crate::cache::belady()`] and libCacheSim's
/// `Belady` do: an object is admitted even when it is never requested again). Objects larger
/// than the cache are not admitted and evict nothing. Among objects never requested again the
/// one with the larger dense id goes first (any choice gives the same hits with equal sizes).
pub struct StreamingBelady {
    capacity: u64,
    used: u64,
    /// Per dense id: size while resident, else `ABSENT`.
    size: Vec<u32>,
    /// Per dense id: the key it was last pushed with (its next request), while resident.
    key: Vec<u64>,
    /// (next request, id), furthest first; stale entries (key no longer current) are skipped.
    heap: BinaryHeap<(u64, u32)>,
    resident: usize,
}

impl StreamingBelady {
    pub fn new(capacity: u64) -> Self {
        StreamingBelady {
            capacity,
            used: 0,
            size: Vec::new(),
            key: Vec::new(),
            heap: BinaryHeap::new(),
            resident: 0,
        }
    }

    /// One request for dense id `id` of `size` bytes whose next request is `next` (`u64::MAX`:
    /// never). Returns whether it hit.
    #[inline]
    pub fn access(&mut self, id: u32, size: u32, next: u64) -> bool {
        let i = id as usize;
        if i >= self.size.len() {
            self.size.resize(i + 1, ABSENT);
            self.key.resize(i + 1, 0);
        }
        if self.size[i] != ABSENT {
            self.key[i] = next;
            self.push(next, id);
            return true;
        }
        let bytes = u64::from(size);
        if size == ABSENT || bytes > self.capacity {
            return false;
        }
        while self.used + bytes > self.capacity {
            let (when, victim) = self.heap.pop().expect("a full cache has a live heap entry");
            let v = victim as usize;
            if self.size[v] != ABSENT && self.key[v] == when {
                self.used -= u64::from(self.size[v]);
                self.size[v] = ABSENT;
                self.resident -= 1;
            }
        }
        self.size[i] = size;
        self.key[i] = next;
        self.used += bytes;
        self.resident += 1;
        self.push(next, id);
        false
    }

    fn push(&mut self, next: u64, id: u32) {
        self.heap.push((next, id));
        if self.heap.len() > 2 * self.resident + PURGE_SLACK {
            let (size, key) = (&self.size, &self.key);
            self.heap.retain(|&(when, v)| size[v as usize] != ABSENT && key[v as usize] == when);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{ChunkId, belady};

    /// Next-request numbers (1-based, `u64::MAX` for none) of a stream of ids.
    fn nexts(ids: &[u32]) -> Vec<u64> {
        let mut next = vec![u64::MAX; ids.len()];
        let mut seen = std::collections::HashMap::new();
        for (i, id) in ids.iter().enumerate().rev() {
            if let Some(&j) = seen.get(id) {
                next[i] = j;
            }
            seen.insert(*id, i as u64 + 1);
        }
        next
    }

    #[test]
    fn equals_the_offline_min_with_unit_sizes() {
        // The textbook stream (cache::belady's test: 7 misses with 3 slots), and a longer one.
        let mut streams = vec![vec![7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2]];
        let mut x = 1u32;
        streams.push(
            (0..5_000)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) % 97
                })
                .collect(),
        );
        for ids in streams {
            let next = nexts(&ids);
            for cap in [1, 3, 10, 50] {
                let mut b = StreamingBelady::new(cap);
                let hits = ids.iter().zip(&next).filter(|(id, n)| b.access(**id, 1, **n)).count() as u64;
                let chunks: Vec<ChunkId> = ids.iter().copied().map(ChunkId).collect();
                assert_eq!(hits, belady(&chunks, cap as usize).hits, "capacity {cap}");
            }
        }
    }

    #[test]
    fn evicts_until_the_object_fits_and_rejects_oversized_ones() {
        // Capacity 10: a(4) b(4) resident; c(6) must evict both? No: evicting the furthest (b,
        // never again) frees 4, 4+6 = 10 fits.
        let mut b = StreamingBelady::new(10);
        assert!(!b.access(0, 4, 4)); // a, next at request 4
        assert!(!b.access(1, 4, u64::MAX)); // b, never again
        assert!(!b.access(2, 6, u64::MAX)); // c: evicts b only
        assert!(b.access(0, 4, u64::MAX)); // a still there
        assert!(!b.access(3, 11, u64::MAX)); // larger than the cache: not admitted
        assert!(b.access(0, 4, u64::MAX) && b.used == 10);
    }
}
