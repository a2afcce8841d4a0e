//! LRU-K (O'Neil, O'Neil, Weikum 1993): the policy the paper names for the AZ cache, chosen for
//! scan resistance against cron-driven bursts of one-off functions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use super::list::{Linked, Links, List, Node};
use super::{ChunkId, EvictionPolicy};

/// Keys of ids no longer `Old` tolerated beyond one per `Old` resident before a purge. Small, so
/// that even tiny caches in tests go through purges.
const PURGE_SLACK: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum State {
    #[default]
    Unknown,
    /// Resident with fewer than K references: infinite backward K-distance.
    Young,
    /// Resident with K references or more.
    Old,
    /// Evicted, but its reference history is retained.
    Retained,
}

/// Everything LRU-K keeps about one id, in one record (32 bytes: one cache line holds two).
#[derive(Clone, Copy, Default)]
struct Entry {
    /// Most recent reference time; 0 = none.
    last: u64,
    /// K-th most recent reference time; 0 = fewer than K references. For K = 1, `last`.
    kth: u64,
    node: Node,
    state: State,
    /// It has a key in the heap of `Old` residents.
    keyed: bool,
}

impl Linked for Entry {
    #[inline]
    fn node(&self) -> &Node {
        &self.node
    }
    #[inline]
    fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }
}

/// Evicts the chunk with the largest backward K-distance: the one whose K-th most recent reference
/// is oldest. Chunks with fewer than K references have infinite distance and go first, least
/// recently accessed first. A one-time scan therefore only ever displaces other once-touched chunks.
///
/// - Time is a logical clock that advances on every reference (insert or hit), never wall time, so
///   replays are deterministic.
/// - History of evicted chunks is retained for the `capacity_entries` most recently evicted ones
///   (O'Neil's "retained information period", bounded by count), so a chunk re-read soon after its
///   eviction remembers its earlier references and is not treated as a first-timer.
/// - No correlated-reference period: every hit counts as a reference. A tier above that wants to
///   collapse bursts should do so before calling in.
/// - `remove` forgets the chunk's history too.
///
/// Cost: chunks with infinite distance sit on an LRU list (O(1)); the others in a min-heap with
/// one key each, a lower bound of its K-th most recent reference time (a resident's K-th time only
/// grows). A hit touches only the id's record (O(1)); an eviction pops the smallest key and, if
/// that key is out of date, re-keys it in place and looks again, so many hits on a chunk between
/// two evictions cost one re-key. The victim is still exactly the largest backward K-distance: the
/// top key is a lower bound of every other resident's time, so a top key that is up to date is the
/// minimum. An id's state, times and list links share one 32-byte record, so a hit on an id whose
/// record is not in the CPU's caches costs one memory access; K > 2 keeps the times between the
/// most recent and the K-th in a second array. (Pushing a key per hit and skipping stale keys when
/// popped, with per-field arrays, made the fleet's AZ cache about twice as slow; a `BTreeSet` with
/// remove-and-reinsert was slower still.)
pub struct LruK {
    k: usize,
    name: String,
    clock: u64,
    /// Per id: its [`Entry`]. `Young` residents, least recently accessed at the back, and
    /// `Retained` ids, most recently evicted at the front, are threaded through it.
    entries: Links<Entry>,
    /// For K > 2, `K - 2` slots per id: the references between `last` and `kth`, newest first.
    middle: Vec<u64>,
    young: List,
    retained: List,
    retained_cap: usize,
    /// `(time, id)`: one key per `Old` resident, at most its K-th most recent reference time; also
    /// keys of ids that left `Old` by `remove`, dropped when they surface.
    old: BinaryHeap<Reverse<(u64, u32)>>,
    old_len: usize,
}

impl LruK {
    /// # Panics
    /// If `k` is 0.
    pub fn new(k: u8, capacity_entries: usize) -> Self {
        assert!(k >= 1, "LRU-K needs K >= 1");
        let name = if k == super::PolicyKind::DEFAULT_K { "lru-k".to_string() } else { format!("lru-{k}") };
        LruK {
            k: usize::from(k),
            name,
            clock: 0,
            entries: Links::default(),
            middle: Vec::new(),
            young: List::default(),
            retained: List::default(),
            retained_cap: capacity_entries,
            old: BinaryHeap::new(),
            old_len: 0,
        }
    }

    fn state(&self, id: ChunkId) -> State {
        self.entries.get(id).map_or(State::Unknown, |e| e.state)
    }

    /// Records a reference at a new clock tick; returns the id's K-th most recent reference time.
    #[inline]
    fn reference(&mut self, id: ChunkId) -> u64 {
        self.clock += 1;
        let clock = self.clock;
        let k = self.k;
        let e = self.entries.record(id);
        match k {
            1 => e.kth = clock,
            2 => e.kth = e.last,
            _ => {
                let m = &mut self.middle[id.index() * (k - 2)..][..k - 2];
                e.kth = m[k - 3];
                m.copy_within(..k - 3, 1);
                m[0] = e.last;
            }
        }
        e.last = clock;
        e.kth
    }

    /// Files a just-referenced resident as `Young` (front of the LRU list) or `Old` (a heap key, unless
    /// it kept one from an earlier stay: that key is at most its K-th time now, which is enough).
    fn file(&mut self, id: ChunkId, kth: u64) {
        if kth == 0 {
            self.entries.push_front(&mut self.young, id);
            self.entries.record(id).state = State::Young;
            return;
        }
        self.old_len += 1;
        let e = self.entries.record(id);
        // Marked before a purge, which must see this id as live.
        e.state = State::Old;
        if !e.keyed {
            e.keyed = true;
            self.old.push(Reverse((kth, id.0)));
            if self.old.len() > 2 * self.old_len + PURGE_SLACK {
                self.purge();
            }
        }
    }

    /// Drops the keys of ids that are no longer `Old`.
    fn purge(&mut self) {
        let mut keys = std::mem::take(&mut self.old).into_vec();
        keys.retain(|&Reverse((_, raw))| {
            let e = self.entries.record(ChunkId(raw));
            e.keyed = e.state == State::Old;
            e.keyed
        });
        self.old = BinaryHeap::from(keys);
    }

    /// The `Old` resident with the oldest K-th reference time, out of the heap.
    fn pop_old(&mut self) -> Option<ChunkId> {
        loop {
            let mut top = self.old.peek_mut()?;
            let Reverse((t, raw)) = *top;
            let e = self.entries.record(ChunkId(raw));
            if e.state != State::Old {
                PeekMut::pop(top);
                e.keyed = false;
                continue;
            }
            if e.kth == t {
                // Up to date, and no other key is smaller: the victim (reference times are unique).
                PeekMut::pop(top);
                e.keyed = false;
                self.old_len -= 1;
                return Some(ChunkId(raw));
            }
            // Hit since it was keyed: re-key it where it stands (it sifts down when `top` drops).
            *top = Reverse((e.kth, raw));
        }
    }

    fn forget(&mut self, id: ChunkId) {
        let e = self.entries.record(id);
        e.last = 0;
        e.kth = 0;
        e.state = State::Unknown;
        if self.k > 2 {
            self.middle[id.index() * (self.k - 2)..][..self.k - 2].fill(0);
        }
    }
}

impl EvictionPolicy for LruK {
    fn on_insert(&mut self, id: ChunkId) {
        if self.k > 2 && self.middle.len() < (id.index() + 1) * (self.k - 2) {
            self.middle.resize((id.index() + 1) * (self.k - 2), 0);
        }
        match self.entries.record(id).state {
            State::Retained => self.entries.unlink(&mut self.retained, id),
            State::Unknown => {}
            s => panic!("insert of resident {id} ({s:?})"),
        }
        let kth = self.reference(id);
        self.file(id, kth);
    }

    fn on_hit(&mut self, id: ChunkId) {
        match self.state(id) {
            State::Young => {
                let kth = self.reference(id);
                if kth == 0 {
                    self.entries.move_to_front(&mut self.young, id);
                } else {
                    self.entries.unlink(&mut self.young, id);
                    self.file(id, kth);
                }
            }
            // Its key is now below its K-th time: re-keyed if it reaches the top of the heap.
            State::Old => {
                self.reference(id);
            }
            s => panic!("hit on non-resident {id} ({s:?})"),
        }
    }

    fn evict(&mut self) -> Option<ChunkId> {
        let id = match self.entries.pop_back(&mut self.young) {
            Some(id) => id,
            None => self.pop_old()?,
        };
        if self.retained_cap == 0 {
            self.forget(id);
            return Some(id);
        }
        self.entries.record(id).state = State::Retained;
        self.entries.push_front(&mut self.retained, id);
        if self.retained.len() > self.retained_cap {
            let oldest = self.entries.pop_back(&mut self.retained).expect("retained list is non-empty");
            self.forget(oldest);
        }
        Some(id)
    }

    fn remove(&mut self, id: ChunkId) {
        match self.state(id) {
            State::Young => self.entries.unlink(&mut self.young, id),
            // Its key stays in the heap until it surfaces (or the next purge).
            State::Old => self.old_len -= 1,
            s => panic!("remove of non-resident {id} ({s:?})"),
        }
        self.forget(id);
    }

    fn len(&self) -> usize {
        self.young.len() + self.old_len
    }

    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn prefetch(&self, id: ChunkId) {
        self.entries.prefetch(id);
    }
}
