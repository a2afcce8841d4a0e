//! Uniformly random eviction.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ChunkId, EvictionPolicy};

const ABSENT: u32 = u32::MAX;

/// Evicts a uniformly random resident chunk: the no-information baseline. O(1): residents live in a
/// `Vec`, the victim is `swap_remove`d at `rng.random_range(0..len)` and the moved chunk's position
/// is updated. Seeded ChaCha8, so the victim sequence is a function of the seed and the operations.
pub struct Random {
    rng: ChaCha8Rng,
    resident: Vec<ChunkId>,
    /// Per id: index into `resident`, or `ABSENT`.
    pos: Vec<u32>,
}

impl Random {
    pub fn new(seed: u64) -> Self {
        Random { rng: ChaCha8Rng::seed_from_u64(seed), resident: Vec::new(), pos: Vec::new() }
    }

    fn take(&mut self, at: usize) -> ChunkId {
        let id = self.resident.swap_remove(at);
        if let Some(&moved) = self.resident.get(at) {
            self.pos[moved.index()] = at as u32;
        }
        self.pos[id.index()] = ABSENT;
        id
    }
}

impl EvictionPolicy for Random {
    fn on_insert(&mut self, id: ChunkId) {
        if id.index() >= self.pos.len() {
            self.pos.resize(id.index() + 1, ABSENT);
        }
        debug_assert_eq!(self.pos[id.index()], ABSENT, "insert of resident {id}");
        self.pos[id.index()] = self.resident.len() as u32;
        self.resident.push(id);
    }

    #[inline]
    fn on_hit(&mut self, id: ChunkId) {
        debug_assert_ne!(self.pos[id.index()], ABSENT, "hit on non-resident {id}");
    }

    fn evict(&mut self) -> Option<ChunkId> {
        if self.resident.is_empty() {
            return None;
        }
        let at = self.rng.random_range(0..self.resident.len());
        Some(self.take(at))
    }

    fn remove(&mut self, id: ChunkId) {
        let at = self.pos.get(id.index()).copied().unwrap_or(ABSENT);
        assert_ne!(at, ABSENT, "remove of non-resident {id}");
        self.take(at as usize);
    }

    fn len(&self) -> usize {
        self.resident.len()
    }

    fn name(&self) -> &str {
        "random"
    }
}
