//! LRU-K (O'Neil, O'Neil, Weikum 1993): the policy the paper names for the AZ cache, chosen for
//! scan resistance against cron-driven bursts of one-off functions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::list::{Links, List};
use super::{ChunkId, EvictionPolicy};

/// Stale heap keys tolerated beyond one per live key before a purge. Small, so that even tiny
/// caches in tests go through purges.
const PURGE_SLACK: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Unknown,
    /// Resident with fewer than K references: infinite backward K-distance.
    Young,
    /// Resident with K references or more.
    Old,
    /// Evicted, but its reference history is retained.
    Retained,
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
/// Cost: chunks with infinite distance sit on an LRU list (O(1)); the others in a min-heap keyed
/// by K-th most recent reference time. A hit pushes a new key and leaves the old one to be skipped
/// when popped (stale keys are purged once they outnumber live ones), so hits are O(log n) worst
/// case but usually O(1) (a recent key barely sifts), and evictions are O(log n) amortised. A
/// `BTreeSet` with remove-and-reinsert on every hit replayed about three times slower. History
/// costs `8 * K` bytes per chunk id ever seen.
pub struct LruK {
    k: usize,
    name: String,
    clock: u64,
    /// `k` slots per id: reference times, most recent first; 0 = no reference.
    hist: Vec<u64>,
    state: Vec<State>,
    /// `Young` residents, least recently accessed at the back, and `Retained` ids, most recently
    /// evicted at the front, share one arena.
    links: Links,
    young: List,
    retained: List,
    retained_cap: usize,
    /// `(K-th most recent reference time, id)` of `Old` residents, plus stale keys.
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
            hist: Vec::new(),
            state: Vec::new(),
            links: Links::default(),
            young: List::default(),
            retained: List::default(),
            retained_cap: capacity_entries,
            old: BinaryHeap::new(),
            old_len: 0,
        }
    }

    /// The K-th most recent reference time, 0 if fewer than K references.
    #[inline]
    fn kth(&self, id: ChunkId) -> u64 {
        self.hist[id.index() * self.k + self.k - 1]
    }

    fn state(&self, id: ChunkId) -> State {
        self.state.get(id.index()).copied().unwrap_or(State::Unknown)
    }

    /// Records a reference at a new clock tick.
    #[inline]
    fn reference(&mut self, id: ChunkId) {
        self.clock += 1;
        let k = self.k;
        let h = &mut self.hist[id.index() * k..][..k];
        h.copy_within(..k - 1, 1);
        h[0] = self.clock;
    }

    /// Files a just-referenced resident as `Young` (front of the LRU list) or `Old` (new heap key).
    fn file(&mut self, id: ChunkId) {
        let kth = self.kth(id);
        if kth == 0 {
            self.links.push_front(&mut self.young, id);
            self.state[id.index()] = State::Young;
        } else {
            // Counted and marked before the push: a purge inside it must see this key as live.
            self.state[id.index()] = State::Old;
            self.old_len += 1;
            self.push_old(id, kth);
        }
    }

    fn push_old(&mut self, id: ChunkId, kth: u64) {
        self.old.push(Reverse((kth, id.0)));
        if self.old.len() > 2 * self.old_len + PURGE_SLACK {
            let (state, hist, k) = (&self.state, &self.hist, self.k);
            self.old.retain(|&Reverse((t, raw))| {
                state[raw as usize] == State::Old && hist[raw as usize * k + k - 1] == t
            });
        }
    }

    fn pop_old(&mut self) -> Option<ChunkId> {
        while let Some(Reverse((t, raw))) = self.old.pop() {
            let id = ChunkId(raw);
            // Reference times are unique, so a key is live iff it is the id's current K-th time.
            if self.state[id.index()] == State::Old && self.kth(id) == t {
                self.old_len -= 1;
                return Some(id);
            }
        }
        None
    }

    fn forget(&mut self, id: ChunkId) {
        let k = self.k;
        self.hist[id.index() * k..][..k].fill(0);
        self.state[id.index()] = State::Unknown;
    }
}

impl EvictionPolicy for LruK {
    fn on_insert(&mut self, id: ChunkId) {
        if id.index() >= self.state.len() {
            self.state.resize(id.index() + 1, State::Unknown);
            self.hist.resize((id.index() + 1) * self.k, 0);
        }
        match self.state[id.index()] {
            State::Retained => self.links.unlink(&mut self.retained, id),
            State::Unknown => {}
            s => panic!("insert of resident {id} ({s:?})"),
        }
        self.reference(id);
        self.file(id);
    }

    fn on_hit(&mut self, id: ChunkId) {
        match self.state(id) {
            State::Young => {
                self.reference(id);
                if self.kth(id) == 0 {
                    self.links.move_to_front(&mut self.young, id);
                } else {
                    self.links.unlink(&mut self.young, id);
                    self.file(id);
                }
            }
            State::Old => {
                self.reference(id);
                self.push_old(id, self.kth(id));
            }
            s => panic!("hit on non-resident {id} ({s:?})"),
        }
    }

    fn evict(&mut self) -> Option<ChunkId> {
        let id = match self.links.pop_back(&mut self.young) {
            Some(id) => id,
            None => self.pop_old()?,
        };
        if self.retained_cap == 0 {
            self.forget(id);
            return Some(id);
        }
        self.state[id.index()] = State::Retained;
        self.links.push_front(&mut self.retained, id);
        if self.retained.len() > self.retained_cap {
            let oldest = self.links.pop_back(&mut self.retained).expect("retained list is non-empty");
            self.forget(oldest);
        }
        Some(id)
    }

    fn remove(&mut self, id: ChunkId) {
        match self.state(id) {
            State::Young => self.links.unlink(&mut self.young, id),
            // Its heap key goes stale once the state changes.
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
}
