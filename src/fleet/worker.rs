//! One worker's chunk cache in the fleet: under LRU a [`TieredLru`], else a [`WorkerCache`] over
//! the worker's own dense ids.
//!
//! The caches index per-chunk state by id, so a thousand workers indexing the region's id space
//! would cost a thousand region-sized arrays. Each worker maps region ids to local ones instead,
//! and, for policies that keep nothing about a chunk once it is gone (LRU, FIFO, random), reuses
//! the local id of a chunk that left the cache: a worker's arrays then stay the size of its
//! capacity, whatever the run's length.

use rustc_hash::FxHashMap;

use super::failure::{self, Action, TimedAction};
use super::population::Population;
use super::scenario::FleetScenario;
use super::tiered_lru::{Lookup, Stage, TieredLru};
use super::workload::{L1Outcome, TickBatch};
use crate::cache::{ChunkId, PolicyKind};
use crate::sim::WorkerCache;
use crate::sim::rng::derive;
use crate::units::ByteSize;

/// The tag of the worker caches' seeds (`"l1"` in ASCII); worker `w`'s is this with `w << 16`.
const WORKER_CACHE_TAG: u64 = 0x6c31;

/// The tag of a generation of worker caches after the `n`-th reset: this plus `n`.
const WORKER_GENERATION_TAG: u64 = 0x6c31_0000_0000;

/// The tag of a replaced worker's new cache: this plus the replacement's count.
const WORKER_REPLACEMENT_TAG: u64 = 0x6c32_0000_0000;

/// How many reads ahead the worker caches prefetch an entry (the bucket twice as far).
const PREFETCH_AHEAD: usize = 4;

/// A hit on a chunk admitted at most this many seconds ago is flagged `recent`: its fetch may still
/// be in flight (an S3 GET's p99.9 is well under this), and the engine checks when it lands.
pub const RECENT_SECS: u64 = 10;

/// The caches of one part of the workers (those whose number is `part` modulo `parts`). Whether a
/// read hits a worker cache does not depend on the AZ cache, S3 or any other worker (a miss is
/// admitted either way), so the parts run as stages on threads of their own, one after the other
/// between the workload and the engine (see [`run`](super::run)), each filling in its workers'
/// reads.
pub struct WorkerCaches<'a> {
    sc: &'a FleetScenario,
    pop: &'a Population,
    seed: u64,
    part: u32,
    parts: u32,
    /// Worker `w`'s cache at `w / parts`.
    caches: Vec<WorkerL1>,
    /// Actions that empty the worker caches too.
    resets: Vec<TimedAction>,
    next_reset: usize,
    replacements: u64,
    /// Whether reads keep the LRU caches' memory and disk tiers: from the window on, or in a
    /// priced warm-up. A cache-only warm-up needs only hits and misses, and
    /// [`open_window`](Self::open_window) sets the tiers from each cache's order.
    tiered: bool,
}

impl<'a> WorkerCaches<'a> {
    /// The caches of workers `part`, `part + parts`, ...: part 0 is the first stage (it sizes the
    /// batch's outcomes), the others follow it.
    pub fn part(sc: &'a FleetScenario, pop: &'a Population, seed: u64, part: u32, parts: u32) -> Self {
        assert!(part < parts, "part {part} of {parts}");
        let resets = Vec::new();
        let caches = Self::fresh(sc, seed, part, parts);
        let (next_reset, replacements) = (0, 0);
        WorkerCaches { sc, pop, seed, part, parts, caches, resets, next_reset, replacements, tiered: false }
    }

    /// Keeps the tiers in the warm-up too (a priced warm-up prices them).
    pub fn tiered_warmup(mut self) -> Self {
        self.tiered = true;
        self
    }

    fn fresh(sc: &FleetScenario, seed: u64, part: u32, parts: u32) -> Vec<WorkerL1> {
        (part..sc.placement.workers as u32)
            .step_by(parts as usize)
            .map(|w| {
                let s = derive(seed, WORKER_CACHE_TAG ^ (w as u64) << 16);
                WorkerL1::new(sc.l1.policy, sc.l1.memory_capacity, sc.l1.disk_capacity, sc.chunk_size, s)
            })
            .collect()
    }

    /// The measured window starts at `at`: the caches get their tiers back (after a cache-only
    /// warm-up), and the failures that empty worker caches are scheduled from it.
    pub fn open_window(&mut self, at: crate::sim::time::SimTime) {
        if !self.tiered {
            for cache in &mut self.caches {
                if let WorkerL1::Lru(lru) = cache {
                    lru.retier();
                }
            }
            self.tiered = true;
        }
        self.resets = failure::schedule(self.sc, at)
            .into_iter()
            .filter(|a| matches!(a.action, Action::RestartAll { workers: true }))
            .collect();
    }

    /// Reads the working set of every start on this part's workers through its worker's cache,
    /// filling in its reads' outcomes in `batch.l1` (one per read of every start, in order).
    pub fn fill(&mut self, batch: &mut TickBatch) {
        let mut out = std::mem::take(&mut batch.l1);
        if self.part == 0 {
            let reads = batch.starts.iter().map(|s| self.pop.working_set(s.version).len()).sum();
            out.clear();
            out.resize(reads, L1Outcome::Miss);
        }
        for &w in &batch.replaced {
            // Every part counts every replacement: the n-th draws from its own seed.
            self.replacements += 1;
            if w % self.parts != self.part {
                continue;
            }
            let s = derive(self.seed, WORKER_REPLACEMENT_TAG + self.replacements);
            let l1 = &self.sc.l1;
            self.caches[(w / self.parts) as usize] =
                WorkerL1::new(l1.policy, l1.memory_capacity, l1.disk_capacity, self.sc.chunk_size, s);
        }

        let mut at_read = 0;
        for s in &batch.starts {
            while let Some(r) = self.resets.get(self.next_reset) {
                if r.at > s.time {
                    break;
                }
                self.next_reset += 1;
                // The n-th generation of worker caches draws from its own seed.
                let seed = derive(self.seed, WORKER_GENERATION_TAG + self.next_reset as u64);
                self.caches = Self::fresh(self.sc, seed, self.part, self.parts);
            }
            let ws = self.pop.working_set(s.version);
            let reads = &mut out[at_read..at_read + ws.len()];
            at_read += ws.len();
            if s.worker % self.parts != self.part {
                continue;
            }
            let cache = &mut self.caches[(s.worker / self.parts) as usize];
            let at = (s.time.as_nanos() / 1_000_000_000) as u32;
            if let WorkerL1::Lru(lru) = cache {
                // The reads wait on memory: load each read's bucket, then its entry, ahead of it.
                for (i, &c) in ws.iter().enumerate() {
                    if let Some(&next) = ws.get(i + 2 * PREFETCH_AHEAD) {
                        lru.prefetch(next, Stage::Bucket);
                    }
                    if let Some(&next) = ws.get(i + PREFETCH_AHEAD) {
                        lru.prefetch(next, Stage::Entry);
                    }
                    let lookup = if self.tiered { lru.read(c, at) } else { lru.read_untiered(c, at) };
                    reads[i] = outcome(lookup, at);
                }
            } else {
                for (r, &c) in reads.iter_mut().zip(ws) {
                    *r = cache.read(c, self.sc.chunk_size, at);
                }
            }
        }
        batch.l1 = out;
    }
}

/// One worker's cache. Under LRU (the default) a [`TieredLru`]; under any other policy a
/// [`WorkerCache`] over local ids.
pub enum WorkerL1 {
    Lru(TieredLru),
    General(Box<GeneralL1>),
}

/// A [`WorkerCache`] over the worker's own dense ids.
pub struct GeneralL1 {
    local: FxHashMap<u32, u32>,
    /// Region id of each local id (`u32::MAX` when free).
    global: Vec<u32>,
    /// Second (of simulated time) each local id was last admitted.
    admitted: Vec<u32>,
    free: Vec<u32>,
    recycle: bool,
    cache: WorkerCache,
}

impl WorkerL1 {
    pub fn new(policy: PolicyKind, memory: ByteSize, disk: ByteSize, chunk: ByteSize, seed: u64) -> Self {
        if policy == PolicyKind::Lru {
            let entries = |b: ByteSize| u32::try_from(b.bytes() / chunk.bytes().max(1)).unwrap_or(u32::MAX);
            return WorkerL1::Lru(TieredLru::new(entries(memory), entries(disk)));
        }
        Self::general(policy, memory, disk, chunk, seed)
    }

    /// The general form, whatever the policy (the LRU form's reference in tests).
    pub fn general(policy: PolicyKind, memory: ByteSize, disk: ByteSize, chunk: ByteSize, seed: u64) -> Self {
        WorkerL1::General(Box::new(GeneralL1 {
            local: FxHashMap::default(),
            global: Vec::new(),
            admitted: Vec::new(),
            free: Vec::new(),
            recycle: matches!(policy, PolicyKind::Lru | PolicyKind::Fifo | PolicyKind::Random),
            cache: WorkerCache::new(policy, memory, disk, chunk, seed),
        }))
    }

    /// Looks `chunk` up at second `now` of simulated time; on a miss, admits it (the fetch that
    /// follows fills the worker cache, and a read meanwhile waits for it: flagged `recent`).
    #[inline]
    pub fn read(&mut self, chunk: u32, size: ByteSize, now: u32) -> L1Outcome {
        match self {
            WorkerL1::Lru(c) => outcome(c.read(chunk, now), now),
            WorkerL1::General(g) => g.read(chunk, size, now, |a| recent(now, a)),
        }
    }

    /// Chunk ids this worker keeps state for (the size of its arrays).
    pub fn ids(&self) -> usize {
        match self {
            WorkerL1::Lru(c) => c.len(),
            WorkerL1::General(g) => g.global.len(),
        }
    }
}

/// What an LRU worker cache's lookup at second `now` tells the engine.
#[inline]
fn outcome(lookup: Lookup, now: u32) -> L1Outcome {
    match lookup {
        Lookup::Hit { tier, admitted } => L1Outcome::Hit { tier, recent: recent(now, admitted) },
        Lookup::Miss => L1Outcome::Miss,
    }
}

/// A hit on a chunk admitted at second `admitted`, at second `now`, may find its fetch in flight.
fn recent(now: u32, admitted: u32) -> bool {
    u64::from(now.saturating_sub(admitted)) <= RECENT_SECS
}

impl GeneralL1 {
    fn read(&mut self, chunk: u32, size: ByteSize, now: u32, recent: impl Fn(u32) -> bool) -> L1Outcome {
        let id = match self.local.get(&chunk) {
            Some(&l) => l,
            None => {
                let l = match self.free.pop() {
                    Some(l) => {
                        self.global[l as usize] = chunk;
                        l
                    }
                    None => {
                        self.global.push(chunk);
                        self.admitted.push(0);
                        self.global.len() as u32 - 1
                    }
                };
                self.local.insert(chunk, l);
                l
            }
        };
        let Self { local, global, free, recycle, cache, admitted } = self;
        let mut leave = |gone: ChunkId| {
            if *recycle {
                let g = std::mem::replace(&mut global[gone.index()], u32::MAX);
                local.remove(&g);
                free.push(gone.0);
            }
        };
        if let Some(tier) = cache.get_with(ChunkId(id), size, &mut leave) {
            return L1Outcome::Hit { tier, recent: recent(admitted[id as usize]) };
        }
        cache.insert_with(ChunkId(id), size, &mut leave);
        admitted[id as usize] = now;
        L1Outcome::Miss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Tier;

    #[test]
    fn hits_misses_and_bounded_ids_under_lru() {
        let k = ByteSize::kib(512);
        let mut w = WorkerL1::general(PolicyKind::Lru, ByteSize::mib(1), ByteSize::mib(2), k, 1);
        let hit = |tier, recent| L1Outcome::Hit { tier, recent };
        assert_eq!(w.read(100, k, 0), L1Outcome::Miss);
        assert_eq!(
            w.read(100, k, 1),
            hit(Tier::WorkerMemory, true),
            "admitted a second ago: maybe in flight"
        );
        for c in 0..1000 {
            w.read(1000 + c, k, 50);
        }
        assert!(w.ids() <= 8, "ids are reused: {}", w.ids());
        assert_eq!(w.read(100, k, 60), L1Outcome::Miss, "evicted long ago");
        assert_eq!(w.read(1999, k, 100), hit(Tier::WorkerMemory, false));
        assert_eq!(w.read(1996, k, 100), hit(Tier::WorkerDisk, false));
    }

    #[test]
    fn the_lru_form_reads_as_the_general_one() {
        let k = ByteSize::kib(512);
        let (m, d) = (ByteSize::mib(8), ByteSize::mib(24));
        let mut fast = WorkerL1::new(PolicyKind::Lru, m, d, k, 1);
        let mut general = WorkerL1::general(PolicyKind::Lru, m, d, k, 1);
        assert!(matches!(fast, WorkerL1::Lru(_)));
        let mut x = 12345u64;
        for i in 0..20_000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Skewed: low ids far more often, so every tier sees hits.
            let c = ((x >> 33) % 97) as u32 * ((x >> 20) % 3 + 1) as u32;
            assert_eq!(fast.read(c, k, i / 50), general.read(c, k, i / 50), "read {i}");
        }
    }

    #[test]
    fn history_policies_keep_their_ids() {
        let k = ByteSize::kib(512);
        let mut w = WorkerL1::new(PolicyKind::LruK { k: 2 }, ByteSize::mib(1), ByteSize::mib(2), k, 1);
        for c in 0..50 {
            w.read(c, k, 0);
        }
        assert_eq!(w.ids(), 50);
    }
}
