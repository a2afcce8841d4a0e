//! Intrusive doubly linked lists over dense chunk ids, shared by the list-based policies.
//!
//! One [`Links`] arena holds a `prev`/`next` pair per chunk id (a `Vec` indexed by id, grown on
//! demand), and any number of [`List`] heads thread through it. An id may be on at most one list of
//! an arena at a time; the owning policy records which. Compared with `HashMap` + boxed nodes (or the
//! `lru` crate) this needs no hashing and no allocation per operation, and two `u32`s per id keep the
//! arena small enough to stay mostly in cache.

use super::ChunkId;

/// Marks "no neighbour"; this is why `ChunkId(u32::MAX)` cannot be used.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
}

const UNLINKED: Node = Node { prev: NIL, next: NIL };

/// `prev`/`next` links for every id seen so far.
#[derive(Default)]
pub(crate) struct Links {
    nodes: Vec<Node>,
}

/// One list threaded through a [`Links`] arena. Front = most recently pushed, back = oldest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for List {
    fn default() -> Self {
        List { head: NIL, tail: NIL, len: 0 }
    }
}

impl List {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The oldest id, if any.
    #[inline]
    pub(crate) fn back(&self) -> Option<ChunkId> {
        (self.tail != NIL).then_some(ChunkId(self.tail))
    }
}

impl Links {
    /// Starts loading `id`'s links (see [`EvictionPolicy::prefetch`](super::EvictionPolicy::prefetch)).
    #[inline]
    pub(crate) fn prefetch(&self, id: ChunkId) {
        super::prefetch(&self.nodes, id.index());
    }

    #[inline]
    fn grow_for(&mut self, id: ChunkId) {
        if id.index() >= self.nodes.len() {
            self.grow(id);
        }
    }

    #[cold]
    fn grow(&mut self, id: ChunkId) {
        assert_ne!(id.0, NIL, "ChunkId(u32::MAX) is reserved");
        self.nodes.resize(id.index() + 1, UNLINKED);
    }

    /// Puts `id` at the front of `list`. `id` must not be on any list of this arena.
    #[inline]
    pub(crate) fn push_front(&mut self, list: &mut List, id: ChunkId) {
        self.grow_for(id);
        debug_assert!(!self.is_linked(list, id), "{id} is already linked");
        self.nodes[id.index()] = Node { prev: NIL, next: list.head };
        if list.head == NIL {
            list.tail = id.0;
        } else {
            self.nodes[list.head as usize].prev = id.0;
        }
        list.head = id.0;
        list.len += 1;
    }

    /// Takes `id` off `list`. `id` must be on `list`.
    #[inline]
    pub(crate) fn unlink(&mut self, list: &mut List, id: ChunkId) {
        debug_assert!(self.is_linked(list, id), "{id} is not on this list");
        let Node { prev, next } = self.nodes[id.index()];
        if prev == NIL {
            list.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.nodes[id.index()] = UNLINKED;
        list.len -= 1;
    }

    /// Moves `id`, which must be on `list`, to its front.
    #[inline]
    pub(crate) fn move_to_front(&mut self, list: &mut List, id: ChunkId) {
        if list.head != id.0 {
            self.unlink(list, id);
            self.push_front(list, id);
        }
    }

    /// Takes the oldest id off `list`.
    #[inline]
    pub(crate) fn pop_back(&mut self, list: &mut List) -> Option<ChunkId> {
        let id = list.back()?;
        self.unlink(list, id);
        Some(id)
    }

    /// Whether `id` is on `list`, assuming it is on no other list of this arena. O(1): a linked node
    /// has a neighbour or is the list's only element.
    pub(crate) fn is_linked(&self, list: &List, id: ChunkId) -> bool {
        match self.nodes.get(id.index()) {
            Some(n) => n.prev != NIL || n.next != NIL || list.head == id.0,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(links: &mut Links, list: &mut List) -> Vec<u32> {
        std::iter::from_fn(|| links.pop_back(list)).map(|id| id.0).collect()
    }

    #[test]
    fn push_unlink_move_pop_keep_order() {
        let mut links = Links::default();
        let mut list = List::default();
        for i in [5, 1, 9, 3] {
            links.push_front(&mut list, ChunkId(i));
        }
        links.move_to_front(&mut list, ChunkId(1));
        links.unlink(&mut list, ChunkId(9));
        links.move_to_front(&mut list, ChunkId(1)); // already at front: no-op
        assert_eq!(list.len(), 3);
        assert!(!links.is_linked(&list, ChunkId(9)));
        assert_eq!(drain(&mut links, &mut list), vec![5, 3, 1]);
        assert!(list.is_empty() && list.back().is_none());
    }

    #[test]
    fn lists_share_an_arena() {
        let mut links = Links::default();
        let (mut a, mut b) = (List::default(), List::default());
        links.push_front(&mut a, ChunkId(0));
        links.push_front(&mut b, ChunkId(1));
        links.push_front(&mut a, ChunkId(2));
        links.unlink(&mut a, ChunkId(0));
        links.push_front(&mut b, ChunkId(0));
        assert_eq!(drain(&mut links, &mut a), vec![2]);
        assert_eq!(drain(&mut links, &mut b), vec![1, 0]);
    }
}
