//! Replay throughput of every eviction policy on one seeded Zipf stream, and each policy's hit
//! ratio against Belady's MIN on that stream (printed once before the timings). One more row,
//! `lru-crate`, runs the same stream through the `lru` crate's `LruCache` (a hash map of real keys
//! and values), beside chunkload's own LRU over dense ids: the same hits, at what cost.
//!
//! `cargo bench --bench policies` (add `-- --quick` for a rougher, faster run, or a policy name
//! such as `-- lru-k` to time one policy). The run starts by printing the CPU's features.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use chunkload::cache::{BoundedCache, CacheStats, ChunkId, PolicyKind, belady};
use chunkload::units::ByteSize;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use lru::LruCache;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Zipf;

const REQUESTS: usize = 10_000_000;
const DISTINCT: u32 = 1_000_000;
const ALPHA: f64 = 0.9;
/// 10% of the distinct chunks.
const CAPACITY_ENTRIES: u64 = 100_000;
const CHUNK: ByteSize = ByteSize::kib(512);
const SEED: u64 = 0x00C0_FFEE;

/// Zipf-distributed requests over `DISTINCT` chunks, interned in order of first sight as the
/// simulator interns real chunk digests. (That gives popular chunks small ids, which is kinder to
/// the caches than a random id assignment would be; it is what replays see.)
fn zipf_stream() -> Vec<ChunkId> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let zipf = Zipf::new(f64::from(DISTINCT), ALPHA).expect("valid Zipf parameters");
    let mut interned = vec![u32::MAX; DISTINCT as usize];
    let mut next = 0;
    (0..REQUESTS)
        .map(|_| {
            let rank = rng.sample(zipf) as usize - 1;
            if interned[rank] == u32::MAX {
                interned[rank] = next;
                next += 1;
            }
            ChunkId(interned[rank])
        })
        .collect()
}

fn replay(kind: PolicyKind, stream: &[ChunkId]) -> CacheStats {
    let mut cache = BoundedCache::with_policy(kind, ByteSize(CHUNK.bytes() * CAPACITY_ENTRIES), CHUNK, SEED);
    for &id in stream {
        if !cache.get(id, CHUNK) {
            cache.insert(id, CHUNK);
        }
    }
    *cache.stats()
}

/// The same stream through the `lru` crate, holding `CAPACITY_ENTRIES` chunks (all chunks are the
/// same size, so that is the byte-bounded cache's capacity too). Returns the hits.
fn replay_lru_crate(stream: &[ChunkId]) -> u64 {
    let capacity = NonZeroUsize::new(CAPACITY_ENTRIES as usize).expect("non-zero capacity");
    let mut cache: LruCache<u32, ()> = LruCache::new(capacity);
    let mut hits = 0;
    for id in stream {
        if cache.get(&id.0).is_some() {
            hits += 1;
        } else {
            cache.put(id.0, ());
        }
    }
    hits
}

fn policies(c: &mut Criterion) {
    let stream = zipf_stream();
    let min = belady(&stream, CAPACITY_ENTRIES as usize);
    println!(
        "{REQUESTS} requests, {DISTINCT} distinct chunks, Zipf alpha {ALPHA}, capacity {CAPACITY_ENTRIES} \
         entries, seed {SEED:#x}"
    );
    println!("{:>8}  hit ratio  of MIN", "policy");
    println!("{:>8}  {:.4}", "MIN", min.hit_ratio());
    for &kind in PolicyKind::ALL {
        let ratio = replay(kind, &stream).hit_ratio();
        println!("{kind:>8}  {ratio:.4}     {:.1}%", 100.0 * ratio / min.hit_ratio());
    }

    let ours = replay(PolicyKind::Lru, &stream);
    let theirs = replay_lru_crate(&stream);
    assert_eq!(theirs, ours.hits, "the lru crate and chunkload's LRU must agree hit for hit");
    println!(
        "{:>8}  {:.4}     (the lru crate: same hits as lru)",
        "lru-crate",
        theirs as f64 / REQUESTS as f64
    );

    let mut group = c.benchmark_group("replay_zipf");
    group
        .throughput(Throughput::Elements(REQUESTS as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for &kind in PolicyKind::ALL {
        group.bench_function(kind.to_string(), |b| b.iter(|| black_box(replay(kind, black_box(&stream)))));
    }
    group.bench_function("lru-crate", |b| b.iter(|| black_box(replay_lru_crate(black_box(&stream)))));
    group.finish();
}

criterion_group!(benches, policies);
// criterion_main!, with the machine's CPU features named first (no kernel here depends on them,
// but a figure is only comparable with one from a like machine).
fn main() {
    eprintln!("chunkload policies bench: cpu features: {}", chunkload::crypto::cpu_features());
    benches();
    Criterion::default().configure_from_args().final_summary();
}
