//! LRU-K (O'Neil, O'Neil, Weikum 1993): the policy the paper names for the AZ cache, chosen for
//! scan resistance against cron-driven bursts of one-off functions.

use std::collections::BTreeSet;

use super::list::{Links, List};
use super::{ChunkId, EvictionPolicy};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unknown,
    Resident,
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
/// O(log n) per operation: residents are ordered in a `BTreeSet` keyed by (K-th reference time,
/// last reference time). History costs `8 * K` bytes per chunk id ever seen.
pub struct LruK {
    k: usize,
    name: String,
    clock: u64,
    /// `k` slots per id: reference times, most recent first; 0 = no reference.
    hist: Vec<u64>,
    state: Vec<State>,
    /// Residents by eviction priority; the first element is the victim.
    order: BTreeSet<(u64, u64, u32)>,
    /// Evicted ids with retained history, most recently evicted at the front.
    links: Links,
    retained: List,
    retained_cap: usize,
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
            order: BTreeSet::new(),
            links: Links::default(),
            retained: List::default(),
            retained_cap: capacity_entries,
        }
    }

    fn hist(&self, id: ChunkId) -> &[u64] {
        &self.hist[id.index() * self.k..][..self.k]
    }

    fn key(&self, id: ChunkId) -> (u64, u64, u32) {
        let h = self.hist(id);
        (h[self.k - 1], h[0], id.0)
    }

    fn state(&self, id: ChunkId) -> State {
        self.state.get(id.index()).copied().unwrap_or(State::Unknown)
    }

    /// Records a reference at a new clock tick.
    fn reference(&mut self, id: ChunkId) {
        self.clock += 1;
        let k = self.k;
        let h = &mut self.hist[id.index() * k..][..k];
        h.copy_within(..k - 1, 1);
        h[0] = self.clock;
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
            State::Resident => panic!("insert of resident {id}"),
        }
        self.reference(id);
        self.order.insert(self.key(id));
        self.state[id.index()] = State::Resident;
    }

    fn on_hit(&mut self, id: ChunkId) {
        assert!(self.state(id) == State::Resident, "hit on non-resident {id}");
        self.order.remove(&self.key(id));
        self.reference(id);
        self.order.insert(self.key(id));
    }

    fn evict(&mut self) -> Option<ChunkId> {
        let (_, _, raw) = self.order.pop_first()?;
        let id = ChunkId(raw);
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
        assert!(self.state(id) == State::Resident, "remove of non-resident {id}");
        self.order.remove(&self.key(id));
        self.forget(id);
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn name(&self) -> &str {
        &self.name
    }
}
