//! Cost per request of `cache::ReuseSampler::record`, the measurement the fleet feeds every L2
//! request to (tens of millions per simulated hour): exact (R = 1), sampled at R = 1/16, and
//! fixed-size (at most 8,192 chunks tracked). Also prints each sampler's estimate of the LRU hit
//! ratio at 10% of the distinct chunks, its tracked chunks and memory, once before the timings.
//!
//! `cargo bench --bench reuse` (add `-- --quick` for a rougher, faster run).

use std::hint::black_box;
use std::time::Duration;

use chunkload::cache::{ReuseConfig, ReuseSampler};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Zipf;

const REQUESTS: usize = 4_000_000;
const DISTINCT: u32 = 400_000;
const ALPHA: f64 = 0.9;
const SEED: u64 = 0x00C0_FFEE;
/// One request every 100 us: 4 M requests span 400 s.
const STEP_NS: u64 = 100_000;
const CHUNK_BYTES: u32 = 512 * 1024;

/// Zipf-distributed requests; ranks are scattered over the ids (a multiplicative permutation),
/// so popularity is not ordered by id as it is not in the fleet's interned ids.
fn zipf_stream() -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let zipf = Zipf::new(f64::from(DISTINCT), ALPHA).expect("valid Zipf parameters");
    (0..REQUESTS)
        .map(|_| {
            let rank = rng.sample(zipf) as u64 - 1;
            (rank * 7_919 % u64::from(DISTINCT)) as u32
        })
        .collect()
}

fn configs() -> [(&'static str, ReuseConfig); 3] {
    let base = ReuseConfig { seed: SEED, keep_min_stream: false, ..ReuseConfig::with_rate(1.0) };
    [
        ("exact", base),
        ("rate-1/16", ReuseConfig { rate: 1.0 / 16.0, ..base }),
        ("fixed-8192", ReuseConfig { max_tracked: Some(8_192), ..base }),
    ]
}

fn run(cfg: ReuseConfig, stream: &[u32]) -> ReuseSampler {
    let mut s = ReuseSampler::new(cfg).expect("valid config");
    for (i, &c) in stream.iter().enumerate() {
        s.record(i as u64 * STEP_NS, c, CHUNK_BYTES);
    }
    s
}

fn reuse(c: &mut Criterion) {
    let stream = zipf_stream();
    println!("{REQUESTS} requests, {DISTINCT} distinct chunks, Zipf alpha {ALPHA}, seed {SEED:#x}");
    println!("{:>11}  rate      tracked  memory    LRU hit @10%  working set 60 s", "sampler");
    for (name, cfg) in configs() {
        let s = run(cfg, &stream);
        println!(
            "{name:>11}  {:<8.5}  {:>7}  {:>6} KiB  {:.4}        {:.0}",
            s.rate(),
            s.tracked(),
            s.memory_bytes() / 1024,
            s.hit_ratio(u64::from(DISTINCT / 10)),
            s.working_set(60_000_000_000),
        );
    }

    let mut group = c.benchmark_group("reuse_record");
    group
        .throughput(Throughput::Elements(REQUESTS as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for (name, cfg) in configs() {
        group.bench_function(name, |b| b.iter(|| black_box(run(cfg, black_box(&stream)).tracked())));
    }
    group.finish();
}

criterion_group!(benches, reuse);
criterion_main!(benches);
