//! Chunks as the simulation sees them: dense ids interned from whatever names the content
//! ([`Interner`]), and an image's chunk table (chunk index -> id and size, [`ChunkTable`]). Nothing
//! here knows what a chunk name is: the ingest step (`crate::ingest`) interns manifests' names.

use std::collections::BTreeMap;

use crate::cache::ChunkId;
use crate::units::{BLOCK_SIZE, ByteSize};

/// A chunk's content identity as the kernel sees it: 32 opaque bytes (a chunk name's, set by the
/// ingest step). Equal keys, same content, one cached object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentKey(pub [u8; 32]);

impl std::fmt::Display for ContentKey {
    /// Lower-case hex, as a chunk name prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Dense chunk ids by content: the first key seen gets id 0, the next new one id 1, and so on, so
/// two positions (or two images) holding the same content are one cached object, as in the real
/// store. Deterministic: ids follow the order keys are first seen.
#[derive(Debug, Clone)]
pub struct Interner<K: Ord> {
    ids: BTreeMap<K, ChunkId>,
}

impl<K: Ord> Default for Interner<K> {
    fn default() -> Self {
        Interner { ids: BTreeMap::new() }
    }
}

impl<K: Ord> Interner<K> {
    /// The id of `key`, new if it was never seen.
    pub fn intern(&mut self, key: K) -> ChunkId {
        let next = ChunkId(self.ids.len() as u32);
        *self.ids.entry(key).or_insert(next)
    }

    /// The id of `key` if it was seen.
    pub fn get(&self, key: &K) -> Option<ChunkId> {
        self.ids.get(key).copied()
    }

    /// Distinct keys seen.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The image's chunks as the simulation sees them: chunk index -> dense id (None for a hole)
/// and size.
#[derive(Debug, Clone)]
pub struct ChunkTable {
    ids: Vec<Option<ChunkId>>,
    sizes: Vec<u32>,
    distinct: usize,
    chunk_size: u64,
    pages: u64,
}

impl ChunkTable {
    /// An image of `image_size` bytes cut into `sizes.len()` chunks of `chunk_size` (the last may
    /// be shorter: `sizes` holds each one's length), whose stored chunks are `stored` (index,
    /// content key); the others are holes. Keys are interned in the order given.
    pub fn new<K: Ord>(
        chunk_size: u64,
        image_size: u64,
        sizes: Vec<u32>,
        stored: impl IntoIterator<Item = (u32, K)>,
    ) -> Self {
        let mut ids = vec![None; sizes.len()];
        let mut names = Interner::default();
        for (index, key) in stored {
            ids[index as usize] = Some(names.intern(key));
        }
        ChunkTable { ids, sizes, distinct: names.len(), chunk_size, pages: image_size / BLOCK_SIZE }
    }

    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// 4 KiB pages in the block image.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Every stored chunk once, with its size: to warm a cache with the whole image.
    pub fn stored(&self) -> impl Iterator<Item = (ChunkId, ByteSize)> + '_ {
        let mut seen = vec![false; self.distinct];
        self.ids.iter().zip(&self.sizes).filter_map(move |(id, &size)| {
            let id = (*id)?;
            (!std::mem::replace(&mut seen[id.index()], true)).then_some((id, ByteSize(u64::from(size))))
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The dense id of chunk `index` (None for a hole or an index past the end).
    pub fn id(&self, index: u32) -> Option<ChunkId> {
        self.ids.get(index as usize).copied().flatten()
    }

    /// The length of chunk `index` in bytes (0 past the end).
    pub fn size(&self, index: u32) -> u32 {
        self.sizes.get(index as usize).copied().unwrap_or(0)
    }

    /// Distinct stored chunks (holes excluded, duplicates once).
    pub fn distinct(&self) -> usize {
        self.distinct
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_one_id_in_first_seen_order() {
        let t = ChunkTable::new(8192, 4 * 8192, vec![8192; 4], [(0, "b"), (2, "a"), (3, "b")]);
        assert_eq!(
            (t.id(0), t.id(1), t.id(2), t.id(3)),
            (Some(ChunkId(0)), None, Some(ChunkId(1)), Some(ChunkId(0)))
        );
        assert_eq!(t.distinct(), 2);
        assert_eq!(t.stored().count(), 2);
        assert_eq!(t.pages(), 8);
        let mut i = Interner::default();
        assert_eq!((i.intern(7), i.intern(3), i.intern(7)), (ChunkId(0), ChunkId(1), ChunkId(0)));
        assert_eq!(i.get(&3), Some(ChunkId(1)));
    }
}
