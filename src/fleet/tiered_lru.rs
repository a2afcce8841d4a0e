//! A worker cache under LRU, memory and disk kept as one list.
//!
//! The worker cache is two exclusive LRU tiers: a miss goes into memory, memory's least recent
//! chunk moves to the front of disk, disk's least recent leaves, and a disk hit moves the chunk
//! back into memory. With chunks of one size that is exactly one LRU list of both capacities
//! whose first `memory` entries are in memory: a chunk that moves to the front pushes the memory
//! tier's last entry across the boundary, and nothing else changes tier. So one map, one list
//! and a boundary pointer do what two [`BoundedCache`](crate::cache::BoundedCache)s, their
//! policies and a local-id map did, at about half the memory traffic per read: the fleet makes
//! hundreds of millions of these reads, each mostly waiting on memory. The map is an
//! open-addressing table the reader can prefetch a few reads ahead (see [`TieredLru::prefetch`]).

use crate::sim::Tier;

const NIL: u32 = u32::MAX;

/// One chunk's entry: 16 bytes, aligned, so four share a cache line and none straddles two.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Slot {
    chunk: u32,
    prev: u32,
    next: u32,
    /// The second of simulated time the chunk was admitted (low 31 bits; 68 years), and whether it
    /// is in memory (the top bit).
    admitted_memory: u32,
}

const IN_MEMORY: u32 = 1 << 31;

impl Slot {
    fn new(chunk: u32, admitted: u32, in_memory: bool) -> Self {
        assert!(admitted < IN_MEMORY, "second {admitted} of simulated time is past 68 years");
        let memory = if in_memory { IN_MEMORY } else { 0 };
        Slot { chunk, prev: NIL, next: NIL, admitted_memory: admitted | memory }
    }

    #[inline]
    fn admitted(self) -> u32 {
        self.admitted_memory & !IN_MEMORY
    }

    #[inline]
    fn in_memory(self) -> bool {
        self.admitted_memory & IN_MEMORY != 0
    }

    #[inline]
    fn set_in_memory(&mut self, on: bool) {
        self.admitted_memory =
            if on { self.admitted_memory | IN_MEMORY } else { self.admitted_memory & !IN_MEMORY };
    }
}

/// How far a [`TieredLru::prefetch`] goes: the map's bucket (issue well ahead), or the list entry
/// it names (issue once the bucket has had time to arrive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Bucket,
    Entry,
}

/// What a read found: the tier and when the chunk was admitted, or nothing (it is admitted now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit { tier: Tier, admitted: u32 },
    Miss,
}

/// Chunk id to slot, open addressing with linear probing and backward-shift deletion, at most 2/3
/// full. One `u64` per bucket, `(chunk + 1) << 32 | slot`, 0 when empty: a new table is zeroed
/// memory, which the allocator hands out without touching it.
struct IdTable {
    buckets: Vec<u64>,
    mask: usize,
    len: usize,
}

impl IdTable {
    fn new(capacity: u32) -> Self {
        let n = (capacity as usize * 3 / 2 + 1).next_power_of_two().max(8);
        IdTable { buckets: vec![0; n], mask: n - 1, len: 0 }
    }

    #[inline]
    fn home(&self, chunk: u32) -> usize {
        (u64::from(chunk).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    #[inline]
    fn get(&self, chunk: u32) -> Option<u32> {
        let tag = u64::from(chunk) + 1;
        let mut i = self.home(chunk);
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return None;
            }
            if b >> 32 == tag {
                return Some(b as u32);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds `chunk`, which is not in the table.
    #[inline]
    fn insert(&mut self, chunk: u32, slot: u32) {
        let mut i = self.home(chunk);
        while self.buckets[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = (u64::from(chunk) + 1) << 32 | u64::from(slot);
        self.len += 1;
    }

    /// Drops `chunk`, which is in the table, shifting back the entries probed past it.
    #[inline]
    fn remove(&mut self, chunk: u32) {
        let tag = u64::from(chunk) + 1;
        let mut i = self.home(chunk);
        while self.buckets[i] >> 32 != tag {
            i = (i + 1) & self.mask;
        }
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets[j];
            if b == 0 {
                break;
            }
            let home = self.home(((b >> 32) - 1) as u32);
            // `b` may fill the hole at `i` unless its home lies cyclically in (i, j].
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(i) & self.mask) {
                self.buckets[i] = b;
                i = j;
            }
        }
        self.buckets[i] = 0;
        self.len -= 1;
    }

    #[inline]
    fn prefetch(&self, chunk: u32) {
        crate::cache::prefetch(&self.buckets, self.home(chunk));
    }
}

/// An LRU of `memory + disk` chunks whose `memory` most recent are in memory.
pub struct TieredLru {
    map: IdTable,
    slots: Vec<Slot>,
    head: u32,
    tail: u32,
    /// The most recent chunk on disk (the entry at position `memory`), `NIL` while none is.
    disk_head: u32,
    memory: u32,
    capacity: u32,
}

impl TieredLru {
    /// A cache of `memory` chunks in memory and `disk` on disk.
    pub fn new(memory: u32, disk: u32) -> Self {
        TieredLru {
            map: IdTable::new(memory.saturating_add(disk)),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            disk_head: NIL,
            memory,
            capacity: memory.saturating_add(disk),
        }
    }

    /// Reads `chunk` at second `now`: a hit moves it to the front (into memory), a miss admits it
    /// there (evicting the least recent chunk when full).
    #[inline]
    pub fn read(&mut self, chunk: u32, now: u32) -> Lookup {
        if let Some(s) = self.map.get(chunk) {
            let slot = self.slots[s as usize];
            let tier = if slot.in_memory() { Tier::WorkerMemory } else { Tier::WorkerDisk };
            if s != self.head {
                if !slot.in_memory() && self.memory > 0 {
                    // The memory tier's last entry crosses to disk; `s` crosses to memory.
                    let crossing = self.slots[self.disk_head as usize].prev;
                    self.slots[crossing as usize].set_in_memory(false);
                    self.disk_head = crossing;
                    self.slots[s as usize].set_in_memory(true);
                    self.prefetch_next_crossing();
                }
                self.unlink(s);
                self.push_front(s);
                if self.memory == 0 {
                    self.disk_head = s;
                }
            }
            return Lookup::Hit { tier, admitted: slot.admitted() };
        }
        if self.capacity == 0 {
            return Lookup::Miss;
        }
        let s = self.free_slot();
        // The entry at position `memory - 1`, which the new front pushes onto disk.
        let crossing = if self.memory == 0 {
            NIL
        } else if self.disk_head != NIL {
            self.slots[self.disk_head as usize].prev
        } else if self.map.len as u32 == self.memory {
            self.tail
        } else {
            NIL
        };
        self.slots[s as usize] = Slot::new(chunk, now, self.memory > 0);
        self.push_front(s);
        self.map.insert(chunk, s);
        if self.memory == 0 {
            self.disk_head = s;
        } else if crossing != NIL {
            self.slots[crossing as usize].set_in_memory(false);
            self.disk_head = crossing;
            self.prefetch_next_crossing();
        }
        Lookup::Miss
    }

    /// [`read`](Self::read) without the tiers: the same hits, misses and order, but no entry
    /// crosses between memory and disk, so a read touches one entry fewer. For a cache-only
    /// warm-up, which needs only whether a read hit; [`retier`](Self::retier) then sets the tiers
    /// from the order. Only on a cache every read of which has been untiered (a new one). The
    /// tier a hit reports is meaningless.
    #[inline]
    pub fn read_untiered(&mut self, chunk: u32, now: u32) -> Lookup {
        if let Some(s) = self.map.get(chunk) {
            let slot = self.slots[s as usize];
            if s != self.head {
                self.unlink(s);
                self.push_front(s);
            }
            return Lookup::Hit { tier: Tier::WorkerMemory, admitted: slot.admitted() };
        }
        if self.capacity == 0 {
            return Lookup::Miss;
        }
        let s = self.free_slot();
        self.slots[s as usize] = Slot::new(chunk, now, false);
        self.push_front(s);
        self.map.insert(chunk, s);
        Lookup::Miss
    }

    /// After [`read_untiered`](Self::read_untiered)s, whose entries are all marked on disk: marks
    /// the `memory` most recent in memory and puts the boundary after them, the state the tiered
    /// reads would have left (the tiers are positions in the one list).
    pub fn retier(&mut self) {
        let mut s = self.head;
        let mut i = 0;
        while s != NIL && i < self.memory {
            self.slots[s as usize].set_in_memory(true);
            s = self.slots[s as usize].next;
            i += 1;
        }
        self.disk_head = if self.memory == 0 { self.head } else { s };
    }

    /// Chunks held.
    pub fn len(&self) -> usize {
        self.map.len
    }

    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }

    /// A hint that `chunk` will be read soon: starts loading its bucket, and if the bucket is in
    /// the CPU's caches already (an earlier hint), its list entry. Changes nothing.
    #[inline]
    pub fn prefetch(&self, chunk: u32, stage: Stage) {
        match stage {
            Stage::Bucket => self.map.prefetch(chunk),
            Stage::Entry => {
                if let Some(s) = self.map.get(chunk) {
                    crate::cache::prefetch(&self.slots, s as usize);
                }
            }
        }
    }

    /// A slot for a chunk about to be admitted: the least recent entry's, unlinked and out of the
    /// map, when the cache is full, else a new one (its contents to be written by the caller).
    #[inline]
    fn free_slot(&mut self) -> u32 {
        if (self.map.len as u32) < self.capacity {
            self.slots.push(Slot::new(0, 0, false));
            return self.slots.len() as u32 - 1;
        }
        let victim = self.tail;
        if victim == self.disk_head {
            self.disk_head = NIL;
        }
        self.unlink(victim);
        self.map.remove(self.slots[victim as usize].chunk);
        // The next victim's entry is in the CPU's caches now (unlinking wrote it): start loading
        // its bucket, which the next miss removes, a few reads from now.
        if self.tail != NIL {
            self.map.prefetch(self.slots[self.tail as usize].chunk);
        }
        victim
    }

    /// Starts loading the entry that crosses to disk next (the one before the disk's head): every
    /// miss and every disk hit moves one entry across.
    #[inline]
    fn prefetch_next_crossing(&self) {
        let next = self.slots[self.disk_head as usize].prev;
        if next != NIL {
            crate::cache::prefetch(&self.slots, next as usize);
        }
    }

    #[inline]
    fn unlink(&mut self, s: u32) {
        let Slot { prev, next, .. } = self.slots[s as usize];
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    #[inline]
    fn push_front(&mut self, s: u32) {
        let old = self.head;
        let slot = &mut self.slots[s as usize];
        slot.prev = NIL;
        slot.next = old;
        match old {
            NIL => self.tail = s,
            o => self.slots[o as usize].prev = s,
        }
        self.head = s;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cache::{ChunkId, PolicyKind};
    use crate::sim::WorkerCache;
    use crate::units::ByteSize;

    proptest! {
        /// Read for read, the same tier (or miss) as two exclusive LRU tiers of the same sizes.
        #[test]
        fn same_as_two_exclusive_lru_tiers(
            memory in 0u32..5,
            disk in 0u32..6,
            reads in proptest::collection::vec(0u32..12, 0..300),
        ) {
            let k = ByteSize::kib(512);
            let mut two = WorkerCache::new(
                PolicyKind::Lru,
                ByteSize(k.bytes() * u64::from(memory)),
                ByteSize(k.bytes() * u64::from(disk)),
                k,
                1,
            );
            let mut one = TieredLru::new(memory, disk);
            for (i, &c) in reads.iter().enumerate() {
                let expected = two.get(ChunkId(c), k);
                if expected.is_none() {
                    two.insert(ChunkId(c), k);
                }
                let got = match one.read(c, i as u32) {
                    Lookup::Hit { tier, .. } => Some(tier),
                    Lookup::Miss => None,
                };
                prop_assert_eq!(got, expected, "read {} of chunk {}", i, c);
            }
            prop_assert!(one.len() as u32 <= memory + disk);
        }
    }

    proptest! {
        /// Untiered reads, then `retier`, leave the cache tiered reads would have: every later
        /// read finds the same tier.
        #[test]
        fn retiering_restores_the_tiers(
            memory in 0u32..5,
            disk in 0u32..6,
            before in proptest::collection::vec(0u32..12, 0..200),
            after in proptest::collection::vec(0u32..12, 0..200),
        ) {
            let mut tiered = TieredLru::new(memory, disk);
            let mut lazy = TieredLru::new(memory, disk);
            for (i, &c) in before.iter().enumerate() {
                let a = tiered.read(c, i as u32);
                let b = lazy.read_untiered(c, i as u32);
                prop_assert_eq!(matches!(a, Lookup::Miss), matches!(b, Lookup::Miss), "read {}", i);
            }
            lazy.retier();
            for (i, &c) in after.iter().enumerate() {
                let now = (before.len() + i) as u32;
                prop_assert_eq!(lazy.read(c, now), tiered.read(c, now), "read {} after", i);
            }
        }
    }

    proptest! {
        /// The table agrees with a `HashMap` through inserts and removals that wrap around.
        #[test]
        fn the_id_table_is_a_map(ops in proptest::collection::vec((0u32..40, any::<bool>()), 0..400)) {
            let mut t = IdTable::new(20);
            let mut m = std::collections::HashMap::new();
            for (i, &(k, add)) in ops.iter().enumerate() {
                // Keys spread over the whole u32 range, so homes collide and probes wrap.
                let key = k.wrapping_mul(0x8000_0001) ^ (k << 7);
                if add && !m.contains_key(&key) && m.len() < 20 {
                    t.insert(key, i as u32);
                    m.insert(key, i as u32);
                } else if !add && m.remove(&key).is_some() {
                    t.remove(key);
                }
                prop_assert_eq!(t.len, m.len());
                for k2 in 0u32..40 {
                    let key2 = k2.wrapping_mul(0x8000_0001) ^ (k2 << 7);
                    prop_assert_eq!(t.get(key2), m.get(&key2).copied());
                }
            }
        }
    }

    #[test]
    fn a_hit_reports_when_the_chunk_was_admitted() {
        let mut c = TieredLru::new(1, 1);
        assert_eq!(c.read(7, 3), Lookup::Miss);
        assert_eq!(c.read(7, 9), Lookup::Hit { tier: Tier::WorkerMemory, admitted: 3 });
        assert_eq!(c.read(8, 10), Lookup::Miss);
        assert_eq!(c.read(7, 11), Lookup::Hit { tier: Tier::WorkerDisk, admitted: 3 });
        assert_eq!(c.read(9, 12), Lookup::Miss);
        assert_eq!(c.read(8, 13), Lookup::Miss, "8 was least recent: evicted");
        assert_eq!(c.len(), 2);
    }
}
