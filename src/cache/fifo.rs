//! First in, first out.

use super::list::{Links, List};
use super::{ChunkId, EvictionPolicy};

/// Evicts the chunk inserted longest ago; hits change nothing. O(1) per operation. The baseline that
/// S3-FIFO builds on, and the cheapest policy a shared cache can run lock-free.
#[derive(Default)]
pub struct Fifo {
    links: Links,
    order: List,
}

impl Fifo {
    pub fn new() -> Self {
        Self::default()
    }
}

impl EvictionPolicy for Fifo {
    #[inline]
    fn on_insert(&mut self, id: ChunkId) {
        self.links.push_front(&mut self.order, id);
    }

    #[inline]
    fn on_hit(&mut self, id: ChunkId) {
        debug_assert!(self.links.is_linked(&self.order, id), "hit on non-resident {id}");
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
        "fifo"
    }
}
