//! LRU-K (O'Neil, O'Neil, Weikum 1993): the policy the paper names for the AZ cache, chosen for
//! scan resistance against cron-driven bursts of one-off functions.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use radix_heap::RadixHeapMap;

use super::{ChunkId, EvictionPolicy};

/// Stale entries tolerated in a queue beyond one per live one before it is compacted, and stale
/// keys beyond one per `Old` resident before the keys are purged. Small, so that even tiny caches
/// in tests go through compactions and purges.
const SLACK: usize = 16;

/// How many queue entries ahead an eviction starts loading records.
const AHEAD: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum State {
    #[default]
    Unknown = 0,
    /// Resident with fewer than K references: infinite backward K-distance.
    Young = 1,
    /// Resident with K references or more.
    Old = 2,
    /// Evicted, but its reference history is retained.
    Retained = 3,
}

/// Everything LRU-K keeps about one id, in one 16-byte record: four share a cache line and none
/// straddles two.
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Entry {
    /// The most recent reference time (0 = none) above three bits: whether the id has a key among
    /// the `Old` keys, then its [`State`].
    last_flags: u64,
    /// K-th most recent reference time; 0 = fewer than K references. For K = 1, `last`.
    kth: u64,
}

const KEYED: u64 = 1 << 2;

impl Entry {
    #[inline]
    fn last(&self) -> u64 {
        self.last_flags >> 3
    }

    #[inline]
    fn set_last(&mut self, time: u64) {
        self.last_flags = time << 3 | (self.last_flags & 7);
    }

    #[inline]
    fn state(&self) -> State {
        match self.last_flags & 3 {
            0 => State::Unknown,
            1 => State::Young,
            2 => State::Old,
            _ => State::Retained,
        }
    }

    #[inline]
    fn set_state(&mut self, state: State) {
        self.last_flags = (self.last_flags & !3) | state as u64;
    }

    /// Whether a queue entry stamped `stamp` for ids in `state` is this id's current one.
    #[inline]
    fn is_live(&self, state: State, stamp: u64) -> bool {
        self.state() == state && self.last() == stamp
    }

    #[inline]
    fn keyed(&self) -> bool {
        self.last_flags & KEYED != 0
    }

    #[inline]
    fn set_keyed(&mut self, keyed: bool) {
        self.last_flags = if keyed { self.last_flags | KEYED } else { self.last_flags & !KEYED };
    }
}

/// `(stamp, id)` in the order pushed: an id's entry is live while the id is still in the queue's
/// state with `last` equal to the stamp, so a later reference or a change of state leaves the
/// entry behind as stale, skipped when it reaches the front, instead of unlinking it where it is.
#[derive(Default)]
struct Queue {
    entries: VecDeque<(u64, u32)>,
    live: usize,
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
/// Cost: an id's state and times are one 16-byte record (K > 2 keeps the times between the most
/// recent and the K-th in a second array), so a hit on an id whose record is not in the CPU's
/// caches costs one memory access. Chunks with infinite distance, in recency order, and retained
/// ids, in eviction order, are queues of `(stamp, id)` rather than linked lists: a reference
/// pushes the id again and leaves its older entry stale, so nothing touches a neighbour's record,
/// and an eviction knows the next records it will read and starts loading them early. The other
/// residents have one key each, a lower bound of its K-th most recent reference time (a
/// resident's K-th time only grows); an eviction takes the smallest key and, if that key is out of
/// date, re-keys it and looks again, so many hits on a chunk between two evictions cost one
/// re-key. The victim is still exactly the largest backward K-distance: the smallest key is a
/// lower bound of every other resident's time, so a smallest key that is up to date is the
/// minimum.
///
/// The keys live in a radix heap, a monotone priority queue: taking the smallest key costs O(1)
/// amortised over sequential bucket scans instead of a binary heap's sift through scattered
/// levels. Almost every key is at least the last one taken (re-keys only grow; a chunk turns `Old`
/// after that eviction). The exception, a retained chunk re-admitted with a K-th time older than
/// the last victim's, goes to a small binary heap of such keys, drained first: its keys are all
/// below every radix key. (The AZ cache's memory tiers evict over a hundred million times an
/// hour, and each heap level, list neighbour or straddled cache line an eviction touched was a
/// wait on memory. Against linked lists through 32-byte records and one binary heap, the radix
/// heap with the next key taken out early made a default run ~5% faster and the 16-byte record
/// another few percent; the queues alone measured the same as the lists, but without links the
/// record fits in 16 bytes. Pushing a key per hit
/// and skipping stale keys when popped, with per-field arrays, was about twice as slow; a
/// `BTreeSet` with remove-and-reinsert was slower still.)
pub struct LruK {
    k: usize,
    name: String,
    clock: u64,
    entries: Vec<Entry>,
    /// For K > 2, `K - 2` slots per id: the references between `last` and `kth`, newest first.
    middle: Vec<u64>,
    /// `Young` residents, stamped with their last reference, least recently referenced first.
    young: Queue,
    /// `Retained` ids, stamped with their last reference, earliest evicted first.
    retained: Queue,
    retained_cap: usize,
    /// `(time, id)`: one key per `Old` resident, at most its K-th most recent reference time; also
    /// keys of ids that left `Old` by `remove`, dropped when they surface. Keys at or above the
    /// last key taken from `old`; `below` holds the others.
    old: RadixHeapMap<Reverse<u64>, u32>,
    below: BinaryHeap<Reverse<(u64, u32)>>,
    /// The smallest key of `old`, taken out after an eviction so that its record is loading by the
    /// next one (every `old` key is above it, every `below` key under it).
    next: Option<(u64, u32)>,
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
            entries: Vec::new(),
            middle: Vec::new(),
            young: Queue::default(),
            retained: Queue::default(),
            retained_cap: capacity_entries,
            old: RadixHeapMap::new(),
            below: BinaryHeap::new(),
            next: None,
            old_len: 0,
        }
    }

    fn state(&self, id: ChunkId) -> State {
        self.entries.get(id.index()).map_or(State::Unknown, |e| e.state())
    }

    /// `id`'s record, the table grown to hold it.
    #[inline]
    fn record(&mut self, id: ChunkId) -> &mut Entry {
        if id.index() >= self.entries.len() {
            self.grow(id);
        }
        &mut self.entries[id.index()]
    }

    #[cold]
    fn grow(&mut self, id: ChunkId) {
        self.entries.resize(id.index() + 1, Entry::default());
    }

    /// Records a reference at a new clock tick; returns the id's K-th most recent reference time.
    #[inline]
    fn reference(&mut self, id: ChunkId) -> u64 {
        self.clock += 1;
        let clock = self.clock;
        let k = self.k;
        let e = self.record(id);
        let last = e.last();
        match k {
            1 => e.kth = clock,
            2 => e.kth = last,
            _ => {
                let m = &mut self.middle[id.index() * (k - 2)..][..k - 2];
                let kth = m[k - 3];
                m.copy_within(..k - 3, 1);
                m[0] = last;
                self.entries[id.index()].kth = kth;
            }
        }
        let e = &mut self.entries[id.index()];
        e.set_last(clock);
        e.kth
    }

    /// Files a just-referenced resident as `Young` (back of the recency queue) or `Old` (a key,
    /// unless it kept one from an earlier stay: that key is at most its K-th time now, which is
    /// enough).
    fn file(&mut self, id: ChunkId, kth: u64) {
        let e = &mut self.entries[id.index()];
        if kth == 0 {
            e.set_state(State::Young);
            let last = e.last();
            self.young.live += 1;
            self.push(Which::Young, last, id);
            return;
        }
        self.old_len += 1;
        // Marked before a purge, which must see this id as live.
        e.set_state(State::Old);
        if !e.keyed() {
            e.set_keyed(true);
            self.key(kth, id.0);
            if self.keys() > 2 * self.old_len + SLACK {
                self.purge();
            }
        }
    }

    /// Appends to a queue, compacting it first if stale entries have piled up (a cache that is not
    /// evicting never pops them).
    #[inline]
    fn push(&mut self, which: Which, stamp: u64, id: ChunkId) {
        let q = self.queue(which);
        if q.entries.len() > 2 * q.live + SLACK {
            self.compact(which);
        }
        self.queue(which).entries.push_back((stamp, id.0));
    }

    fn queue(&mut self, which: Which) -> &mut Queue {
        match which {
            Which::Young => &mut self.young,
            Which::Retained => &mut self.retained,
        }
    }

    /// Drops a queue's stale entries, keeping the order of the live ones.
    #[cold]
    fn compact(&mut self, which: Which) {
        let state = which.state();
        let mut q = std::mem::take(self.queue(which));
        let entries = &self.entries;
        q.entries.retain(|&(stamp, raw)| entries[raw as usize].is_live(state, stamp));
        *self.queue(which) = q;
    }

    /// Takes the live entry at the front of a queue, loading the records a few entries behind it.
    #[inline]
    fn pop_front(&mut self, which: Which) -> Option<ChunkId> {
        let state = which.state();
        let q = match which {
            Which::Young => &mut self.young,
            Which::Retained => &mut self.retained,
        };
        if q.live == 0 {
            return None;
        }
        while let Some((stamp, raw)) = q.entries.pop_front() {
            if let Some(&(_, ahead)) = q.entries.get(AHEAD) {
                super::prefetch(&self.entries, ahead as usize);
            }
            if self.entries[raw as usize].is_live(state, stamp) {
                q.live -= 1;
                return Some(ChunkId(raw));
            }
        }
        unreachable!("a queue with live entries ran dry")
    }

    /// Files a key where it may go: the radix heap takes no key below the last one it gave out.
    #[inline]
    fn key(&mut self, time: u64, raw: u32) {
        match self.old.top() {
            Some(Reverse(floor)) if time < floor => self.below.push(Reverse((time, raw))),
            _ => self.old.push(Reverse(time), raw),
        }
    }

    fn keys(&self) -> usize {
        self.old.len() + self.below.len() + usize::from(self.next.is_some())
    }

    /// Drops the keys of ids that are no longer `Old`.
    fn purge(&mut self) {
        let floor = self.old.top();
        let old =
            std::mem::replace(&mut self.old, floor.map_or_else(RadixHeapMap::new, RadixHeapMap::new_at));
        let below = std::mem::take(&mut self.below).into_vec();
        let keys =
            old.into_iter().map(|(Reverse(t), raw)| (t, raw)).chain(below.into_iter().map(|Reverse(k)| k));
        for (t, raw) in self.next.take().into_iter().chain(keys) {
            let e = &mut self.entries[raw as usize];
            e.set_keyed(e.state() == State::Old);
            if e.keyed() {
                self.key(t, raw);
            }
        }
    }

    /// The `Old` resident with the oldest K-th reference time, out of the keys.
    fn pop_old(&mut self) -> Option<ChunkId> {
        loop {
            // Every key in `below` is smaller than `next`, which is smaller than every key in `old`.
            let (t, raw) = match self.below.pop() {
                Some(Reverse(k)) => k,
                None => match self.next.take() {
                    Some(k) => k,
                    None => self.old.pop().map(|(Reverse(t), raw)| (t, raw))?,
                },
            };
            let e = &mut self.entries[raw as usize];
            if e.state() != State::Old {
                e.set_keyed(false);
                continue;
            }
            if e.kth == t {
                // Up to date, and no other key is smaller: the victim (reference times are unique).
                e.set_keyed(false);
                self.old_len -= 1;
                if self.next.is_none() {
                    self.next = self.old.pop().map(|(Reverse(t), raw)| (t, raw));
                    if let Some((_, next)) = self.next {
                        super::prefetch(&self.entries, next as usize);
                    }
                }
                return Some(ChunkId(raw));
            }
            // Hit since it was keyed: file its key again, at its K-th time now.
            let kth = e.kth;
            self.key(kth, raw);
        }
    }

    fn forget(&mut self, id: ChunkId) {
        let e = self.record(id);
        e.set_last(0);
        e.kth = 0;
        e.set_state(State::Unknown);
        if self.k > 2 {
            self.middle[id.index() * (self.k - 2)..][..self.k - 2].fill(0);
        }
    }
}

/// One of the two queues.
#[derive(Clone, Copy)]
enum Which {
    Young,
    Retained,
}

impl Which {
    /// The state an id is in while its queue entry is live.
    fn state(self) -> State {
        match self {
            Which::Young => State::Young,
            Which::Retained => State::Retained,
        }
    }
}

impl EvictionPolicy for LruK {
    fn on_insert(&mut self, id: ChunkId) {
        if self.k > 2 && self.middle.len() < (id.index() + 1) * (self.k - 2) {
            self.middle.resize((id.index() + 1) * (self.k - 2), 0);
        }
        match self.record(id).state() {
            // Its queue entry goes stale with the reference below.
            State::Retained => self.retained.live -= 1,
            State::Unknown => {}
            s => panic!("insert of resident {id} ({s:?})"),
        }
        let kth = self.reference(id);
        self.file(id, kth);
    }

    fn on_hit(&mut self, id: ChunkId) {
        match self.state(id) {
            State::Young => {
                // Its queue entry goes stale; `file` queues it again or keys it.
                self.young.live -= 1;
                let kth = self.reference(id);
                self.file(id, kth);
            }
            // Its key is now below its K-th time: re-keyed if it reaches the top of the heap.
            State::Old => {
                self.reference(id);
            }
            s => panic!("hit on non-resident {id} ({s:?})"),
        }
    }

    fn evict(&mut self) -> Option<ChunkId> {
        let id = match self.pop_front(Which::Young) {
            Some(id) => id,
            None => self.pop_old()?,
        };
        if self.retained_cap == 0 {
            self.forget(id);
            return Some(id);
        }
        let e = &mut self.entries[id.index()];
        e.set_state(State::Retained);
        let last = e.last();
        self.retained.live += 1;
        self.push(Which::Retained, last, id);
        if self.retained.live > self.retained_cap {
            let oldest = self.pop_front(Which::Retained).expect("retained ids are queued");
            self.forget(oldest);
        }
        Some(id)
    }

    fn remove(&mut self, id: ChunkId) {
        match self.state(id) {
            // Its queue entry goes stale with `forget`.
            State::Young => self.young.live -= 1,
            // Its key stays until it surfaces (or the next purge).
            State::Old => self.old_len -= 1,
            s => panic!("remove of non-resident {id} ({s:?})"),
        }
        self.forget(id);
    }

    fn len(&self) -> usize {
        self.young.live + self.old_len
    }

    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn prefetch(&self, id: ChunkId) {
        super::prefetch(&self.entries, id.index());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A retained chunk re-admitted with a K-th time older than the last victim's goes to the
    /// small heap, and is still the next victim; keys above it keep their order.
    #[test]
    fn a_readmitted_chunk_older_than_the_last_victim_goes_first() {
        let (a, b, c) = (ChunkId(0), ChunkId(1), ChunkId(2));
        let mut p = LruK::new(2, 2);
        p.on_insert(a); // t1
        p.on_hit(a); // t2: Old, K-th time 1
        p.on_insert(b); // t3
        p.on_hit(b); // t4: Old, K-th time 3
        assert_eq!(p.evict(), Some(a), "no young residents: the oldest K-th time");
        p.on_insert(c); // t5
        p.on_hit(c); // t6: Old, K-th time 5
        assert_eq!(p.evict(), Some(b), "K-th time 3 before 5");
        p.on_insert(a); // t7: its history kept, K-th time 2, below the last victim's 3
        assert_eq!(p.below.len(), 1);
        assert_eq!(p.evict(), Some(a));
        p.on_insert(b); // t8: K-th time 4
        assert_eq!(p.evict(), Some(b), "K-th time 4 before 5");
        assert_eq!(p.evict(), Some(c));
        assert_eq!((p.evict(), p.len()), (None, 0));
    }

    /// Hits on young chunks leave stale queue entries behind; the queue is compacted rather than
    /// left to grow, and recency order survives it.
    #[test]
    fn stale_queue_entries_are_compacted_away() {
        let mut p = LruK::new(3, 8);
        for id in 0..4 {
            p.on_insert(ChunkId(id));
        }
        for _ in 0..100 {
            for id in [2, 0, 1] {
                p.on_hit(ChunkId(id));
            }
            // K = 3: two hits would make them Old; forget and re-admit to keep them young.
            for id in [2, 0, 1] {
                p.remove(ChunkId(id));
                p.on_insert(ChunkId(id));
            }
        }
        assert!(p.young.entries.len() <= 2 * p.young.live + SLACK + 1, "{} entries", p.young.entries.len());
        let order: Vec<_> = std::iter::from_fn(|| p.evict()).map(|c| c.0).collect();
        assert_eq!(order, vec![3, 2, 0, 1]);
    }
}
