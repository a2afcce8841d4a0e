//! Least recently used.

use super::list::{Links, List};
use super::{ChunkId, EvictionPolicy};

/// Evicts the chunk whose last access is oldest. O(1) per operation.
///
/// A dense intrusive list (see `list.rs`) rather than the `lru` crate: no hashing and no allocation
/// per request, which is what lets a replay reach tens of millions of lookups per second.
#[derive(Default)]
pub struct Lru {
    links: Links,
    order: List,
}

impl Lru {
    pub fn new() -> Self {
        Self::default()
    }
}

impl EvictionPolicy for Lru {
    #[inline]
    fn on_insert(&mut self, id: ChunkId) {
        self.links.push_front(&mut self.order, id);
    }

    #[inline]
    fn on_hit(&mut self, id: ChunkId) {
        self.links.move_to_front(&mut self.order, id);
    }

    fn evict(&mut self) -> Option<ChunkId> {
        self.links.pop_back(&mut self.order)
    }

    fn remove(&mut self, id: ChunkId) {
        self.links.unlink(&mut self.order, id);
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn name(&self) -> &str {
        "lru"
    }

    #[inline]
    fn prefetch(&self, id: ChunkId) {
        self.links.prefetch(id);
    }
}
