//! Adaptive Replacement Cache (Megiddo & Modha, FAST 2003).

use super::list::{Links, List};
use super::{ChunkId, EvictionPolicy};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Where {
    /// Resident, seen once since it last entered the cache.
    T1 = 0,
    /// Resident, seen at least twice.
    T2 = 1,
    /// Ghost: recently evicted from T1.
    B1 = 2,
    /// Ghost: recently evicted from T2.
    B2 = 3,
    Nowhere = 4,
}

/// Balances recency (T1) against frequency (T2) with a target size `p` for T1 that ghost hits move:
/// a hit in B1 says T1 was too small, a hit in B2 says T2 was. A one-time scan only churns T1, so a
/// hot set in T2 survives it.
///
/// Ghosts are bounded as in the paper with `c = capacity_entries`: `|T1| + |B1| <= c` and
/// `|T1| + |T2| + |B1| + |B2| <= 2c` after every insert (when the caller keeps at most `c`
/// residents). O(1) per operation.
///
/// Differences from the paper, both because the caller evicts *before* inserting: `p` adapts on
/// the ghost hit in `on_insert`, after the eviction that made room rather than before; and REPLACE's
/// tie rule "`x` in B2 and `|T1| = p`" is unavailable, so T1 gives up a victim only when `|T1| > p`
/// (or T2 is empty).
pub struct Arc {
    links: Links,
    /// T1, T2, B1, B2, indexed by `Where as usize`.
    lists: [List; 4],
    place: Vec<Where>,
    /// Target size of T1, in `0..=c`.
    p: usize,
    c: usize,
}

impl Arc {
    pub fn new(capacity_entries: usize) -> Self {
        Arc {
            links: Links::default(),
            lists: [List::default(); 4],
            place: Vec::new(),
            p: 0,
            c: capacity_entries,
        }
    }

    fn place(&self, id: ChunkId) -> Where {
        self.place.get(id.index()).copied().unwrap_or(Where::Nowhere)
    }

    fn len_of(&self, w: Where) -> usize {
        self.lists[w as usize].len()
    }

    /// Moves `id` from wherever it is to the front of `to`.
    fn relink(&mut self, id: ChunkId, to: Where) {
        let from = self.place(id);
        if from != Where::Nowhere {
            self.links.unlink(&mut self.lists[from as usize], id);
        }
        if to != Where::Nowhere {
            self.links.push_front(&mut self.lists[to as usize], id);
        }
        self.place[id.index()] = to;
    }

    fn drop_oldest_ghost(&mut self, w: Where) {
        let id = self.links.pop_back(&mut self.lists[w as usize]).expect("ghost list is non-empty");
        self.place[id.index()] = Where::Nowhere;
    }
}

impl EvictionPolicy for Arc {
    fn on_insert(&mut self, id: ChunkId) {
        if id.index() >= self.place.len() {
            self.place.resize(id.index() + 1, Where::Nowhere);
        }
        let (b1, b2) = (self.len_of(Where::B1), self.len_of(Where::B2));
        match self.place[id.index()] {
            Where::Nowhere => self.relink(id, Where::T1),
            Where::B1 => {
                self.p = self.c.min(self.p + (b2 / b1).max(1));
                self.relink(id, Where::T2);
            }
            Where::B2 => {
                self.p = self.p.saturating_sub((b1 / b2).max(1));
                self.relink(id, Where::T2);
            }
            w @ (Where::T1 | Where::T2) => panic!("insert of resident {id} ({w:?})"),
        }
        while self.len_of(Where::T1) + self.len_of(Where::B1) > self.c && self.len_of(Where::B1) > 0 {
            self.drop_oldest_ghost(Where::B1);
        }
        while self.lists.iter().map(List::len).sum::<usize>() > 2 * self.c && self.len_of(Where::B2) > 0 {
            self.drop_oldest_ghost(Where::B2);
        }
    }

    fn on_hit(&mut self, id: ChunkId) {
        match self.place(id) {
            Where::T1 => self.relink(id, Where::T2),
            Where::T2 => self.links.move_to_front(&mut self.lists[Where::T2 as usize], id),
            w => panic!("hit on non-resident {id} ({w:?})"),
        }
    }

    fn evict(&mut self) -> Option<ChunkId> {
        let (t1, t2) = (self.len_of(Where::T1), self.len_of(Where::T2));
        let (from, to) =
            if t1 > 0 && (t1 > self.p || t2 == 0) { (Where::T1, Where::B1) } else { (Where::T2, Where::B2) };
        let victim = self.lists[from as usize].back()?;
        self.relink(victim, to);
        Some(victim)
    }

    fn remove(&mut self, id: ChunkId) {
        match self.place(id) {
            Where::T1 | Where::T2 => self.relink(id, Where::Nowhere),
            w => panic!("remove of non-resident {id} ({w:?})"),
        }
    }

    fn len(&self) -> usize {
        self.len_of(Where::T1) + self.len_of(Where::T2)
    }

    fn name(&self) -> &str {
        "arc"
    }
}
