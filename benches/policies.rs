//! Replay throughput of every eviction policy on one seeded Zipf stream, and each policy's hit
//! ratio against Belady's MIN on that stream (printed once before the timings).
//!
//! `cargo bench --bench policies` (add `-- --quick` for a rougher, faster run, or a policy name
//! such as `-- lru-k` to time one policy). The run starts by printing the CPU's features.

use std::hint::black_box;
use std::time::Duration;

use chunkload::cache::{BoundedCache, CacheStats, ChunkId, PolicyKind, belady};
use chunkload::units::ByteSize;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
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
