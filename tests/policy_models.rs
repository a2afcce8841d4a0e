//! Each policy against a deliberately naive model of the same rules (Vecs and linear scans), under
//! random operation sequences: both must pick the same victims in the same order. Belady's MIN
//! against a brute-force MIN, and as an upper bound on every policy's hits.

use std::collections::BTreeMap;

use chunkload::cache::{BoundedCache, ChunkId, EvictionPolicy, PolicyKind, belady};
use chunkload::units::ByteSize;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The reference side of a comparison: the same four operations, written the obvious way.
trait Model {
    fn insert(&mut self, id: ChunkId);
    fn hit(&mut self, id: ChunkId);
    fn evict(&mut self) -> Option<ChunkId>;
    fn remove(&mut self, id: ChunkId);
    fn len(&self) -> usize;
}

fn take(v: &mut Vec<ChunkId>, id: ChunkId) -> bool {
    match v.iter().position(|&x| x == id) {
        Some(at) => {
            v.remove(at);
            true
        }
        None => false,
    }
}

/// Index 0 is least recently used.
#[derive(Default)]
struct RefLru(Vec<ChunkId>);
impl Model for RefLru {
    fn insert(&mut self, id: ChunkId) {
        self.0.push(id);
    }
    fn hit(&mut self, id: ChunkId) {
        take(&mut self.0, id);
        self.0.push(id);
    }
    fn evict(&mut self) -> Option<ChunkId> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
    fn remove(&mut self, id: ChunkId) {
        take(&mut self.0, id);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Index 0 is the oldest insertion.
#[derive(Default)]
struct RefFifo(Vec<ChunkId>);
impl Model for RefFifo {
    fn insert(&mut self, id: ChunkId) {
        self.0.push(id);
    }
    fn hit(&mut self, _: ChunkId) {}
    fn evict(&mut self) -> Option<ChunkId> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
    fn remove(&mut self, id: ChunkId) {
        take(&mut self.0, id);
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// (id, accesses, time of last access); victim = fewest accesses, then oldest last access.
#[derive(Default)]
struct RefLfu {
    clock: u64,
    entries: Vec<(ChunkId, u64, u64)>,
}
impl Model for RefLfu {
    fn insert(&mut self, id: ChunkId) {
        self.clock += 1;
        self.entries.push((id, 1, self.clock));
    }
    fn hit(&mut self, id: ChunkId) {
        self.clock += 1;
        let e = self.entries.iter_mut().find(|e| e.0 == id).unwrap();
        e.1 += 1;
        e.2 = self.clock;
    }
    fn evict(&mut self) -> Option<ChunkId> {
        let at = (0..self.entries.len()).min_by_key(|&i| (self.entries[i].1, self.entries[i].2))?;
        Some(self.entries.remove(at).0)
    }
    fn remove(&mut self, id: ChunkId) {
        self.entries.retain(|e| e.0 != id);
    }
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// O'Neil's LRU-K as stated: victim = oldest K-th most recent reference, fewer than K references
/// counting as oldest of all, ties by oldest last reference; history of the `cap` most recently
/// evicted ids kept.
struct RefLruK {
    k: usize,
    cap: usize,
    clock: u64,
    /// Reference times, most recent first, at most `k`.
    hist: BTreeMap<ChunkId, Vec<u64>>,
    resident: Vec<ChunkId>,
    /// Evicted ids with history, oldest eviction first.
    retained: Vec<ChunkId>,
}
impl RefLruK {
    fn new(k: usize, cap: usize) -> Self {
        RefLruK { k, cap, clock: 0, hist: BTreeMap::new(), resident: Vec::new(), retained: Vec::new() }
    }
    fn reference(&mut self, id: ChunkId) {
        self.clock += 1;
        let h = self.hist.entry(id).or_default();
        h.insert(0, self.clock);
        h.truncate(self.k);
    }
}
impl Model for RefLruK {
    fn insert(&mut self, id: ChunkId) {
        if !take(&mut self.retained, id) {
            self.hist.remove(&id);
        }
        self.reference(id);
        self.resident.push(id);
    }
    fn hit(&mut self, id: ChunkId) {
        self.reference(id);
    }
    fn evict(&mut self) -> Option<ChunkId> {
        let key = |id: &ChunkId| {
            let h = &self.hist[id];
            (h.get(self.k - 1).copied().unwrap_or(0), h[0])
        };
        let victim = *self.resident.iter().min_by_key(|id| key(id))?;
        take(&mut self.resident, victim);
        self.retained.push(victim);
        if self.retained.len() > self.cap {
            let gone = self.retained.remove(0);
            self.hist.remove(&gone);
        }
        Some(victim)
    }
    fn remove(&mut self, id: ChunkId) {
        take(&mut self.resident, id);
        self.hist.remove(&id);
    }
    fn len(&self) -> usize {
        self.resident.len()
    }
}

/// ARC with the same decoupled-eviction reading as the real one. Index 0 of each list is its LRU
/// end.
struct RefArc {
    c: usize,
    p: usize,
    t1: Vec<ChunkId>,
    t2: Vec<ChunkId>,
    b1: Vec<ChunkId>,
    b2: Vec<ChunkId>,
}
impl RefArc {
    fn new(c: usize) -> Self {
        RefArc { c, p: 0, t1: vec![], t2: vec![], b1: vec![], b2: vec![] }
    }
}
impl Model for RefArc {
    fn insert(&mut self, id: ChunkId) {
        if self.b1.contains(&id) {
            self.p = self.c.min(self.p + (self.b2.len() / self.b1.len()).max(1));
            take(&mut self.b1, id);
            self.t2.push(id);
        } else if self.b2.contains(&id) {
            self.p = self.p.saturating_sub((self.b1.len() / self.b2.len()).max(1));
            take(&mut self.b2, id);
            self.t2.push(id);
        } else {
            self.t1.push(id);
        }
        while self.t1.len() + self.b1.len() > self.c && !self.b1.is_empty() {
            self.b1.remove(0);
        }
        while self.t1.len() + self.t2.len() + self.b1.len() + self.b2.len() > 2 * self.c
            && !self.b2.is_empty()
        {
            self.b2.remove(0);
        }
    }
    fn hit(&mut self, id: ChunkId) {
        if !take(&mut self.t1, id) {
            take(&mut self.t2, id);
        }
        self.t2.push(id);
    }
    fn evict(&mut self) -> Option<ChunkId> {
        if !self.t1.is_empty() && (self.t1.len() > self.p || self.t2.is_empty()) {
            let v = self.t1.remove(0);
            self.b1.push(v);
            Some(v)
        } else if !self.t2.is_empty() {
            let v = self.t2.remove(0);
            self.b2.push(v);
            Some(v)
        } else {
            None
        }
    }
    fn remove(&mut self, id: ChunkId) {
        if !take(&mut self.t1, id) {
            take(&mut self.t2, id);
        }
    }
    fn len(&self) -> usize {
        self.t1.len() + self.t2.len()
    }
}

/// S3-FIFO as documented on the real one. Index 0 of each queue is its tail (oldest).
struct RefS3Fifo {
    small_target: usize,
    ghost_cap: usize,
    small: Vec<ChunkId>,
    main: Vec<ChunkId>,
    ghost: Vec<ChunkId>,
    freq: BTreeMap<ChunkId, u8>,
}
impl RefS3Fifo {
    fn new(cap: usize) -> Self {
        let small_target = (cap / 10).max(1);
        RefS3Fifo {
            small_target,
            ghost_cap: cap.saturating_sub(small_target),
            small: vec![],
            main: vec![],
            ghost: vec![],
            freq: BTreeMap::new(),
        }
    }
}
impl Model for RefS3Fifo {
    fn insert(&mut self, id: ChunkId) {
        if take(&mut self.ghost, id) {
            self.main.push(id);
        } else {
            self.small.push(id);
        }
        self.freq.insert(id, 0);
    }
    fn hit(&mut self, id: ChunkId) {
        let f = self.freq.get_mut(&id).unwrap();
        *f = (*f + 1).min(3);
    }
    fn evict(&mut self) -> Option<ChunkId> {
        if !self.small.is_empty() && (self.small.len() >= self.small_target || self.main.is_empty()) {
            while !self.small.is_empty() {
                let t = self.small.remove(0);
                if self.freq[&t] > 0 {
                    self.freq.insert(t, 0);
                    self.main.push(t);
                } else {
                    self.freq.remove(&t);
                    self.ghost.push(t);
                    if self.ghost.len() > self.ghost_cap {
                        self.ghost.remove(0);
                    }
                    return Some(t);
                }
            }
        }
        while !self.main.is_empty() {
            let t = self.main.remove(0);
            let f = self.freq[&t];
            if f == 0 {
                self.freq.remove(&t);
                return Some(t);
            }
            self.freq.insert(t, f - 1);
            self.main.push(t);
        }
        None
    }
    fn remove(&mut self, id: ChunkId) {
        if !take(&mut self.small, id) {
            take(&mut self.main, id);
        }
        self.freq.remove(&id);
    }
    fn len(&self) -> usize {
        self.small.len() + self.main.len()
    }
}

/// Residents in a Vec; victim index drawn from the same ChaCha8 stream with the same call.
struct RefRandom {
    rng: ChaCha8Rng,
    resident: Vec<ChunkId>,
}
impl Model for RefRandom {
    fn insert(&mut self, id: ChunkId) {
        self.resident.push(id);
    }
    fn hit(&mut self, _: ChunkId) {}
    fn evict(&mut self) -> Option<ChunkId> {
        if self.resident.is_empty() {
            return None;
        }
        let at = self.rng.random_range(0..self.resident.len());
        Some(self.resident.swap_remove(at))
    }
    fn remove(&mut self, id: ChunkId) {
        let at = self.resident.iter().position(|&x| x == id).unwrap();
        self.resident.swap_remove(at);
    }
    fn len(&self) -> usize {
        self.resident.len()
    }
}

fn model_for(kind: PolicyKind, cap: usize, seed: u64) -> Box<dyn Model> {
    match kind {
        PolicyKind::Lru => Box::new(RefLru::default()),
        PolicyKind::Fifo => Box::new(RefFifo::default()),
        PolicyKind::Lfu => Box::new(RefLfu::default()),
        PolicyKind::LruK { k } => Box::new(RefLruK::new(usize::from(k), cap)),
        PolicyKind::Arc => Box::new(RefArc::new(cap)),
        PolicyKind::S3Fifo => Box::new(RefS3Fifo::new(cap)),
        PolicyKind::Random => {
            Box::new(RefRandom { rng: ChaCha8Rng::seed_from_u64(seed), resident: Vec::new() })
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Insert id `n % POOL`, first evicting if `cap` residents are there (as a cache tier does).
    /// Turns into a hit when that id is resident.
    Insert(u8),
    /// Hit the `n % len`-th resident.
    Hit(u8),
    /// Remove the `n % len`-th resident.
    Remove(u8),
    Evict,
}

const POOL: u8 = 24;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => any::<u8>().prop_map(Op::Insert),
        4 => any::<u8>().prop_map(Op::Hit),
        1 => any::<u8>().prop_map(Op::Remove),
        1 => Just(Op::Evict),
    ]
}

/// Runs `ops` on the policy and on its model; returns an error naming the first divergence.
fn compare(kind: PolicyKind, cap: usize, seed: u64, ops: &[Op]) -> Result<(), String> {
    let mut real = kind.build(cap, seed);
    let mut model = model_for(kind, cap, seed);
    let mut resident: Vec<ChunkId> = Vec::new();
    let evict = |real: &mut Box<dyn EvictionPolicy + Send>,
                 model: &mut Box<dyn Model>,
                 resident: &mut Vec<ChunkId>,
                 step: usize| {
        let (r, m) = (real.evict(), model.evict());
        if r != m {
            return Err(format!("{kind} cap {cap} step {step}: evicted {r:?}, model {m:?}"));
        }
        if let Some(v) = r {
            take(resident, v);
        }
        Ok(())
    };
    for (step, &op) in ops.iter().enumerate() {
        let nth = |n: u8, resident: &[ChunkId]| resident[usize::from(n) % resident.len()];
        match op {
            Op::Insert(n) => {
                let id = ChunkId(u32::from(n % POOL));
                if resident.contains(&id) {
                    real.on_hit(id);
                    model.hit(id);
                } else {
                    if cap > 0 && resident.len() >= cap {
                        evict(&mut real, &mut model, &mut resident, step)?;
                    }
                    real.on_insert(id);
                    model.insert(id);
                    resident.push(id);
                }
            }
            Op::Hit(n) if !resident.is_empty() => {
                let id = nth(n, &resident);
                real.on_hit(id);
                model.hit(id);
            }
            Op::Remove(n) if !resident.is_empty() => {
                let id = nth(n, &resident);
                take(&mut resident, id);
                real.remove(id);
                model.remove(id);
            }
            Op::Hit(_) | Op::Remove(_) => {}
            Op::Evict => evict(&mut real, &mut model, &mut resident, step)?,
        }
        if (real.len(), model.len()) != (resident.len(), resident.len()) {
            return Err(format!(
                "{kind} cap {cap} step {step}: len {} model {} driver {}",
                real.len(),
                model.len(),
                resident.len()
            ));
        }
    }
    // Drain both: the remaining order must agree too.
    while !resident.is_empty() {
        evict(&mut real, &mut model, &mut resident, ops.len())?;
    }
    Ok(())
}

fn check(kind: PolicyKind, cap: usize, seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    compare(kind, cap, seed, ops).map_err(TestCaseError::fail)
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lru_matches_model(cap in 0usize..10, ops in ops()) {
        check(PolicyKind::Lru, cap, 0, &ops)?;
    }

    #[test]
    fn fifo_matches_model(cap in 0usize..10, ops in ops()) {
        check(PolicyKind::Fifo, cap, 0, &ops)?;
    }

    #[test]
    fn lfu_matches_model(cap in 0usize..10, ops in ops()) {
        check(PolicyKind::Lfu, cap, 0, &ops)?;
    }

    #[test]
    fn lru_k_matches_model(k in 1u8..=4, cap in 0usize..10, ops in ops()) {
        check(PolicyKind::LruK { k }, cap, 0, &ops)?;
    }

    #[test]
    fn arc_matches_model(cap in 0usize..10, ops in ops()) {
        check(PolicyKind::Arc, cap, 0, &ops)?;
    }

    #[test]
    fn s3_fifo_matches_model(cap in 0usize..30, ops in ops()) {
        check(PolicyKind::S3Fifo, cap, 0, &ops)?;
    }

    #[test]
    fn random_matches_model(seed in any::<u64>(), cap in 0usize..10, ops in ops()) {
        check(PolicyKind::Random, cap, seed, &ops)?;
    }
}

/// Regression (found by `lru_k_matches_model`): a chunk promoted to the K-distance heap by a hit
/// that also triggered a purge of stale heap keys was purged as stale, so it was never evicted.
#[test]
fn regression_lru_k_promotion_during_heap_purge() {
    let mut p = PolicyKind::LruK { k: 2 }.build(8, 0);
    p.on_insert(ChunkId(0));
    // 18 hits: the first makes chunk 0 "old", each one leaves a stale heap key behind.
    for _ in 0..18 {
        p.on_hit(ChunkId(0));
    }
    p.on_insert(ChunkId(1));
    p.on_hit(ChunkId(1)); // promoted; its push is the one that overflows the heap's slack
    for _ in 0..3 {
        p.on_hit(ChunkId(0)); // and purges now run with both live
    }
    assert_eq!(p.len(), 2);
    // Chunk 1's second-to-last reference is older than chunk 0's.
    assert_eq!(p.evict(), Some(ChunkId(1)));
    assert_eq!(p.evict(), Some(ChunkId(0)));
    assert_eq!(p.evict(), None);
}

/// MIN by definition: on a miss with the cache full, scan ahead for every resident's next use.
fn brute_force_min(requests: &[ChunkId], cap: usize) -> Vec<bool> {
    let mut resident: Vec<ChunkId> = Vec::new();
    let mut hits = Vec::new();
    for (i, &id) in requests.iter().enumerate() {
        let hit = resident.contains(&id);
        hits.push(hit);
        if hit || cap == 0 {
            continue;
        }
        if resident.len() == cap {
            let next = |r: ChunkId| requests[i + 1..].iter().position(|&x| x == r).unwrap_or(usize::MAX);
            let at = (0..resident.len()).max_by_key(|&j| next(resident[j])).unwrap();
            resident.remove(at);
        }
        resident.push(id);
    }
    hits
}

/// Small streams skewed towards low ids, so that there is something to hit.
fn stream(max_len: usize) -> impl Strategy<Value = Vec<ChunkId>> {
    prop::collection::vec((0u32..40, 0u32..40), 0..max_len)
        .prop_map(|v| v.into_iter().map(|(a, b)| ChunkId(a.min(b))).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn belady_matches_brute_force(cap in 0usize..12, requests in stream(200)) {
        let fast = belady(&requests, cap);
        prop_assert_eq!(&fast.hit, &brute_force_min(&requests, cap));
        prop_assert_eq!(fast.hits, fast.hit.iter().filter(|&&h| h).count() as u64);
        prop_assert_eq!(fast.hits + fast.misses, requests.len() as u64);
    }

    #[test]
    fn belady_bounds_every_policy(cap in 1usize..12, seed in any::<u64>(), requests in stream(400)) {
        let chunk = ByteSize::kib(512);
        let best = belady(&requests, cap).hits;
        for &kind in PolicyKind::ALL {
            let mut c = BoundedCache::with_policy(kind, ByteSize(chunk.bytes() * cap as u64), chunk, seed);
            for &id in &requests {
                if !c.get(id, chunk) {
                    c.insert(id, chunk);
                }
            }
            prop_assert!(c.stats().hits <= best, "{} hit {} > MIN {}", kind, c.stats().hits, best);
        }
    }
}
