//! Belady's MIN: the offline optimum every policy is measured against.

use std::collections::BinaryHeap;

use serde::Serialize;

use super::ChunkId;

/// Hits and misses of the optimal policy on one request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Belady {
    pub hits: u64,
    pub misses: u64,
    /// Per request, whether it hit.
    #[serde(skip)]
    pub hit: Vec<bool>,
}

impl Belady {
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 { 0.0 } else { self.hits as f64 / total as f64 }
    }
}

const NEVER: usize = usize::MAX;

/// Replays `requests` through a cache of `capacity_entries` entries that, on a miss with the cache
/// full, evicts the resident chunk whose next request is furthest in the future (MIN).
///
/// Demand paging: a missed chunk is always admitted, as [`BoundedCache`](super::BoundedCache) does
/// (only another resident can be the victim). So the result bounds every admit-on-miss policy with
/// the same capacity; a policy that may bypass the cache could do better.
///
/// O(n log n): next-use positions come from one backward pass; residents sit in a max-heap keyed
/// by next use. A hit pushes a fresh key and leaves the old one behind; an old key is a position
/// already passed, so it sinks below every live key and is skipped on pop. Stale keys are purged
/// whenever the heap outgrows the cache, keeping memory at O(capacity) rather than O(n).
pub fn belady(requests: &[ChunkId], capacity_entries: usize) -> Belady {
    let ids = requests.iter().map(|id| id.index() + 1).max().unwrap_or(0);
    let mut next_use = vec![NEVER; requests.len()];
    let mut seen = vec![NEVER; ids];
    for (i, id) in requests.iter().enumerate().rev() {
        next_use[i] = seen[id.index()];
        seen[id.index()] = i;
    }
    drop(seen);

    // Per id: its next use while resident, `None` when not resident.
    let mut due: Vec<Option<usize>> = vec![None; ids];
    let mut heap: BinaryHeap<(usize, u32)> = BinaryHeap::new();
    let mut resident = 0usize;
    let mut out = Belady { hits: 0, misses: 0, hit: Vec::with_capacity(requests.len()) };
    for (i, &id) in requests.iter().enumerate() {
        let hit = due[id.index()].is_some();
        out.hit.push(hit);
        if hit {
            out.hits += 1;
        } else {
            out.misses += 1;
            if capacity_entries == 0 {
                continue;
            }
            if resident == capacity_entries {
                loop {
                    let (when, v) = heap.pop().expect("a full cache has a live heap entry");
                    if due[v as usize] == Some(when) {
                        due[v as usize] = None;
                        break;
                    }
                }
            } else {
                resident += 1;
            }
        }
        due[id.index()] = Some(next_use[i]);
        heap.push((next_use[i], id.0));
        if heap.len() > 4 * capacity_entries + 64 {
            heap.retain(|&(when, v)| due[v as usize] == Some(when));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u32]) -> Vec<ChunkId> {
        v.iter().copied().map(ChunkId).collect()
    }

    #[test]
    fn textbook_example() {
        // Worked by hand: misses on 7 0 1 2, then 3 (evicts 7 or 1, never used again), 4 (evicts 0,
        // next used furthest away), 0 (evicts 4).
        let r = belady(&ids(&[7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2]), 3);
        assert_eq!(r.misses, 7);
        assert_eq!(r.hits, 6);
    }

    #[test]
    fn zero_capacity_and_empty_stream() {
        let r = belady(&ids(&[1, 1, 1]), 0);
        assert_eq!((r.hits, r.misses), (0, 3));
        let r = belady(&[], 4);
        assert_eq!((r.hits, r.misses), (0, 0));
        assert_eq!(r.hit_ratio(), 0.0);
    }

    #[test]
    fn missed_chunk_is_always_admitted() {
        // Capacity 1: "a b a" would hit on the second `a` only if `b` could bypass the cache.
        let r = belady(&ids(&[0, 1, 0]), 1);
        assert_eq!(r.hit, vec![false, false, false]);
    }
}
