//! Least frequently used, with least-recently-used among equals.

use super::list::{Links, List};
use super::{ChunkId, EvictionPolicy};

const NONE: u32 = u32::MAX;

/// All resident chunks with one access count, most recently accessed at the front.
struct Bucket {
    freq: u64,
    items: List,
    /// Neighbouring buckets in increasing `freq` order.
    prev: u32,
    next: u32,
}

/// Evicts the chunk with the fewest accesses since it was inserted; among those, the one accessed
/// longest ago. Counts are forgotten on eviction (in-cache LFU), so a chunk that was hot last week
/// cannot squat forever after coming back.
///
/// O(1) per operation (Shah, Mitra, Matani 2010): non-empty frequency buckets form a list in
/// increasing order, and a hit moves a chunk to the bucket for `freq + 1`, which is either the next
/// bucket or a new one created right after. Within a bucket the order is the order of entering it,
/// which is the order of last access, so the LRU tie-break costs nothing.
#[derive(Default)]
pub struct Lfu {
    links: Links,
    /// Per id: index into `buckets`, or `NONE` when not resident.
    bucket_of: Vec<u32>,
    buckets: Vec<Bucket>,
    /// Recycled `buckets` slots.
    free: Vec<u32>,
    /// Bucket with the lowest count.
    min: u32,
    len: usize,
}

impl Lfu {
    pub fn new() -> Self {
        Lfu { min: NONE, ..Default::default() }
    }

    /// A new empty bucket for `freq` linked between `prev` and `next`.
    fn new_bucket(&mut self, freq: u64, prev: u32, next: u32) -> u32 {
        let bucket = Bucket { freq, items: List::default(), prev, next };
        let b = match self.free.pop() {
            Some(b) => {
                self.buckets[b as usize] = bucket;
                b
            }
            None => {
                self.buckets.push(bucket);
                (self.buckets.len() - 1) as u32
            }
        };
        match prev {
            NONE => self.min = b,
            p => self.buckets[p as usize].next = b,
        }
        if next != NONE {
            self.buckets[next as usize].prev = b;
        }
        b
    }

    /// Unlinks and recycles bucket `b` if it has no items left.
    fn drop_if_empty(&mut self, b: u32) {
        let Bucket { items, prev, next, .. } = &self.buckets[b as usize];
        if !items.is_empty() {
            return;
        }
        let (prev, next) = (*prev, *next);
        match prev {
            NONE => self.min = next,
            p => self.buckets[p as usize].next = next,
        }
        if next != NONE {
            self.buckets[next as usize].prev = prev;
        }
        self.free.push(b);
    }

    #[inline]
    fn bucket_of(&self, id: ChunkId) -> u32 {
        self.bucket_of.get(id.index()).copied().unwrap_or(NONE)
    }

    /// Takes `id` out of its bucket (dropping the bucket if that empties it) and returns the bucket.
    fn take(&mut self, id: ChunkId) -> u32 {
        let b = self.bucket_of(id);
        assert_ne!(b, NONE, "{id} is not resident");
        self.links.unlink(&mut self.buckets[b as usize].items, id);
        self.bucket_of[id.index()] = NONE;
        self.drop_if_empty(b);
        b
    }
}

impl EvictionPolicy for Lfu {
    fn on_insert(&mut self, id: ChunkId) {
        if id.index() >= self.bucket_of.len() {
            self.bucket_of.resize(id.index() + 1, NONE);
        }
        debug_assert_eq!(self.bucket_of[id.index()], NONE, "insert of resident {id}");
        let b = match self.min {
            m if m != NONE && self.buckets[m as usize].freq == 1 => m,
            m => self.new_bucket(1, NONE, m),
        };
        self.links.push_front(&mut self.buckets[b as usize].items, id);
        self.bucket_of[id.index()] = b;
        self.len += 1;
    }

    fn on_hit(&mut self, id: ChunkId) {
        let b = self.bucket_of(id);
        assert_ne!(b, NONE, "hit on non-resident {id}");
        let Bucket { freq, next, .. } = self.buckets[b as usize];
        // Create the target before dropping `b`, so `b` is still there to link it after.
        let target = match next {
            n if n != NONE && self.buckets[n as usize].freq == freq + 1 => n,
            n => self.new_bucket(freq + 1, b, n),
        };
        self.links.unlink(&mut self.buckets[b as usize].items, id);
        self.drop_if_empty(b);
        self.links.push_front(&mut self.buckets[target as usize].items, id);
        self.bucket_of[id.index()] = target;
    }

    fn evict(&mut self) -> Option<ChunkId> {
        if self.min == NONE {
            return None;
        }
        let victim = self.buckets[self.min as usize].items.back()?;
        self.take(victim);
        self.len -= 1;
        Some(victim)
    }

    fn remove(&mut self, id: ChunkId) {
        self.take(id);
        self.len -= 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn name(&self) -> &str {
        "lfu"
    }
}
