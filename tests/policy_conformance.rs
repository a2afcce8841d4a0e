//! Behaviour every eviction policy must share, checked once for each entry of `PolicyKind::ALL`.

use chunkload::cache::{BoundedCache, ChunkId, EvictionPolicy, PolicyKind};
use chunkload::units::ByteSize;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHUNK: ByteSize = ByteSize::kib(512);

/// Drives `policy` with `steps` random operations that respect the caller guarantees, checking
/// residency after every step, and returns the victims in order.
fn drive(policy: &mut dyn EvictionPolicy, seed: u64, ids: u32, cap: usize, steps: usize) -> Vec<ChunkId> {
    let name = policy.name().to_string();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut resident: Vec<ChunkId> = Vec::new();
    let mut victims = Vec::new();
    for step in 0..steps {
        match rng.random_range(0..10) {
            // Insert, evicting first when at capacity, like a cache tier would.
            0..=4 => {
                let id = ChunkId(rng.random_range(0..ids));
                if resident.contains(&id) {
                    policy.on_hit(id);
                    continue;
                }
                if resident.len() >= cap {
                    let v = policy.evict().expect("non-empty policy must evict");
                    let at = resident.iter().position(|&r| r == v);
                    assert!(at.is_some(), "{name} step {step}: evicted non-resident {v}");
                    resident.swap_remove(at.unwrap());
                    victims.push(v);
                }
                policy.on_insert(id);
                resident.push(id);
            }
            5..=7 if !resident.is_empty() => {
                policy.on_hit(resident[rng.random_range(0..resident.len())]);
            }
            8 if !resident.is_empty() => {
                let id = resident.swap_remove(rng.random_range(0..resident.len()));
                policy.remove(id);
            }
            _ => match policy.evict() {
                Some(v) => {
                    let at = resident.iter().position(|&r| r == v);
                    assert!(at.is_some(), "{name} step {step}: evicted non-resident {v}");
                    resident.swap_remove(at.unwrap());
                    victims.push(v);
                }
                None => assert!(resident.is_empty(), "{name} step {step}: None with residents"),
            },
        }
        assert_eq!(policy.len(), resident.len(), "{name} step {step}: len");
    }
    // Draining returns every resident exactly once, then None.
    let mut drained: Vec<ChunkId> = std::iter::from_fn(|| policy.evict()).collect();
    drained.sort();
    resident.sort();
    assert_eq!(drained, resident, "{name}: drain");
    assert!(policy.is_empty() && policy.evict().is_none(), "{name}: empty after drain");
    victims
}

#[test]
fn evicts_only_residents_and_each_once_and_len_is_consistent() {
    for &kind in PolicyKind::ALL {
        for (seed, ids, cap) in [(1, 20, 5), (2, 200, 30), (3, 8, 8), (4, 1000, 64), (5, 10, 1)] {
            let mut p = kind.build(cap, seed);
            drive(p.as_mut(), seed, ids, cap, 3000);
        }
    }
}

#[test]
fn evict_on_empty_returns_none() {
    for &kind in PolicyKind::ALL {
        for cap in [0, 1, 10] {
            let mut p = kind.build(cap, 7);
            assert!(p.evict().is_none(), "{kind}");
            assert_eq!(p.len(), 0, "{kind}");
        }
    }
}

#[test]
fn removed_ids_are_never_evicted() {
    for &kind in PolicyKind::ALL {
        let mut p = kind.build(10, 3);
        for i in 0..10 {
            p.on_insert(ChunkId(i));
        }
        p.on_hit(ChunkId(4));
        p.remove(ChunkId(3));
        p.remove(ChunkId(7));
        assert_eq!(p.len(), 8, "{kind}");
        let mut drained: Vec<u32> = std::iter::from_fn(|| p.evict()).map(|id| id.0).collect();
        drained.sort();
        assert_eq!(drained, vec![0, 1, 2, 4, 5, 6, 8, 9], "{kind}");
        // A removed id can come back.
        p.on_insert(ChunkId(3));
        assert_eq!(p.evict(), Some(ChunkId(3)), "{kind}");
    }
}

#[test]
fn same_seed_same_victims() {
    for &kind in PolicyKind::ALL {
        let run = |seed| drive(kind.build(16, seed).as_mut(), 99, 100, 16, 2000);
        assert_eq!(run(5), run(5), "{kind}");
    }
    // Only Random depends on the seed, and it must actually use it.
    let run = |seed| drive(PolicyKind::Random.build(16, seed).as_mut(), 99, 100, 16, 2000);
    assert_ne!(run(5), run(6));
}

#[test]
fn capacity_one_holds_the_latest_chunk() {
    for &kind in PolicyKind::ALL {
        let mut c = BoundedCache::with_policy(kind, CHUNK, CHUNK, 1);
        for round in 0..3 {
            for id in [0, 1, 2, 1] {
                let id = ChunkId(id);
                if !c.get(id, CHUNK) {
                    assert!(c.insert(id, CHUNK), "{kind}");
                }
                assert!(c.contains(id) && c.len() == 1, "{kind} round {round}");
            }
        }
        // Every request but none misses: nothing is ever requested twice in a row.
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evictions), (0, 12, 11), "{kind}");
    }
}

#[test]
fn lru_1_is_lru() {
    let lru = drive(PolicyKind::Lru.build(12, 0).as_mut(), 11, 60, 12, 3000);
    let lru_1 = drive(PolicyKind::LruK { k: 1 }.build(12, 0).as_mut(), 11, 60, 12, 3000);
    assert_eq!(lru, lru_1);
}

/// Hits on a hot set after a one-time scan ten times the cache size passes through.
fn hot_hits_after_scan(kind: PolicyKind) -> u64 {
    const CAP: u32 = 100;
    const HOT: u32 = 50;
    let mut c = BoundedCache::with_policy(kind, ByteSize(CHUNK.bytes() * u64::from(CAP)), CHUNK, 0);
    let request = |c: &mut BoundedCache, id| {
        if !c.get(ChunkId(id), CHUNK) {
            c.insert(ChunkId(id), CHUNK);
        }
    };
    for _ in 0..4 {
        for id in 0..HOT {
            request(&mut c, id);
        }
    }
    for id in 1000..1000 + 10 * CAP {
        request(&mut c, id);
    }
    let before = c.stats().hits;
    for id in 0..HOT {
        request(&mut c, id);
    }
    c.stats().hits - before
}

#[test]
fn scan_resistant_policies_keep_the_hot_set_through_a_scan() {
    let lru = hot_hits_after_scan(PolicyKind::Lru);
    assert_eq!(lru, 0, "the scan should flush LRU completely");
    for kind in [PolicyKind::LruK { k: 2 }, PolicyKind::LruK { k: 3 }, PolicyKind::Arc, PolicyKind::S3Fifo] {
        let hits = hot_hits_after_scan(kind);
        assert!(hits >= 45, "{kind} kept only {hits} of 50 hot chunks through the scan");
    }
}

#[test]
fn bounded_cache_never_exceeds_capacity() {
    for &kind in PolicyKind::ALL {
        let cap = ByteSize::mib(4);
        let mut c = BoundedCache::with_policy(kind, cap, CHUNK, 42);
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        // Sizes vary per chunk but are fixed for a given id, as chunk sizes are.
        let sizes: Vec<ByteSize> =
            (0..300).map(|_| ByteSize(rng.random_range(1..=700 * ByteSize::KIB))).collect();
        let mut resident_bytes = vec![0u64; sizes.len()];
        let mut removed = 0;
        for step in 0..5000 {
            let id = rng.random_range(0..sizes.len());
            let (cid, size) = (ChunkId(id as u32), sizes[id]);
            if rng.random_range(0..20) == 0 {
                removed += u64::from(c.remove(cid));
            } else if !c.get(cid, size) {
                c.insert(cid, size);
            }
            for (i, b) in resident_bytes.iter_mut().enumerate() {
                *b = if c.contains(ChunkId(i as u32)) { sizes[i].bytes() } else { 0 };
            }
            let sum: u64 = resident_bytes.iter().sum();
            assert!(c.used() <= cap, "{kind} step {step}: {} > {cap}", c.used());
            assert_eq!(c.used().bytes(), sum, "{kind} step {step}: used bytes");
        }
        let s = c.stats();
        assert_eq!(s.rejections, 0, "{kind}: nothing was oversized");
        assert_eq!(s.insertions - s.evictions - removed, c.len() as u64, "{kind}: resident count");
        assert!(s.hits > 0 && s.evictions > 0, "{kind}: the stream should exercise both");
    }
}
