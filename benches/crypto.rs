//! Single-thread throughput of the crypto stage on one 512 KiB chunk.
//!
//! `primitive/aes256_ctr` is the `ctr` crate, `primitive/keystream` chunkload's own AES-256-CTR
//! (crypto/keystream.rs) on the kernel the chunk functions use, and `primitive/keystream-<path>`
//! each kernel this CPU can run, forced. The run starts by printing the CPU's features and the
//! kernels chosen (to stderr), so a figure can be compared with one from another machine;
//! `CHUNKLOAD_CRYPTO_PATH=avx2-vaes` (or `aesni`, `portable`) runs the chunk benches on another.
//! The crypto stage runs SHA-256 three times over each chunk (key, plaintext digest, name) and
//! AES-256-CTR once. `convergent/encrypt_chunk` does one chunk alone; `convergent/sealer` is what
//! a convert worker runs: a stream of chunks, each one's plaintext hashed together with the
//! previous one's ciphertext. Compare with the bound from `openssl speed -evp sha256` and
//! `-evp aes-256-ctr` (docs/performance.md).

use std::hint::black_box;

use aes::Aes256;
use chunkload::crypto::{
    ChunkKey, CryptoPath, Keystream, Salt, Sealer, describe_kernels, encrypt_chunk, open_chunk,
};
use criterion::{Criterion, Throughput, criterion_group};
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};

const CHUNK: usize = 512 * 1024;

fn chunk() -> Vec<u8> {
    (0..CHUNK).map(|i| (i as u8).wrapping_mul(167) ^ (i >> 9) as u8).collect()
}

fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("primitive");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    let mut buf = chunk();
    g.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(&buf))));
    g.bench_function("aes256_ctr", |b| {
        b.iter(|| {
            let mut c = Ctr128BE::<Aes256>::new(&[7; 32].into(), &[0; 16].into());
            c.apply_keystream(black_box(&mut buf));
        })
    });
    // The same cipher through chunkload's own keystream (fused VAES path where the CPU has it).
    let key = ChunkKey::from_bytes([7; 32]);
    g.bench_function("keystream", |b| b.iter(|| Keystream::new(&key, &[0; 16]).apply(black_box(&mut buf))));
    for path in CryptoPath::supported_paths() {
        g.bench_function(format!("keystream-{path}"), |b| {
            b.iter(|| Keystream::with_path(&key, &[0; 16], path).unwrap().apply(black_box(&mut buf)))
        });
    }
    g.finish();
}

fn convergent(c: &mut Criterion) {
    let mut g = c.benchmark_group("convergent");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    let salt = Salt::new("bench").unwrap();
    let mut buf = chunk();
    // Encrypting the previous output again costs the same as encrypting fresh plaintext.
    g.bench_function("encrypt_chunk", |b| b.iter(|| encrypt_chunk(&salt, black_box(&mut buf))));
    // Per iteration, one chunk through a sealer that is never drained: the steady state of a
    // worker, which holds one chunk back.
    let mut sealer = Sealer::new(salt.clone());
    let mut spare = Some(chunk());
    let mut index = 0u32;
    g.bench_function("sealer", |b| {
        b.iter(|| {
            index = index.wrapping_add(1);
            let buf = spare.take().unwrap_or_else(chunk);
            if let Some(done) = sealer.push(index, black_box(buf)) {
                spare = Some(done.ciphertext);
            }
        })
    });
    let plain = chunk();
    let mut sealed_buf = plain.clone();
    let sealed = encrypt_chunk(&salt, &mut sealed_buf);
    let mut work = sealed_buf.clone();
    g.bench_function("open_chunk", |b| {
        b.iter(|| {
            work.copy_from_slice(&sealed_buf);
            open_chunk(&sealed.name, &sealed.key, &sealed.plain, black_box(&mut work)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, primitives, convergent);
// criterion_main!, with the machine's crypto kernels named first.
fn main() {
    eprintln!("chunkload crypto bench: {}", describe_kernels());
    eprintln!(
        "kernels this CPU runs: {}",
        CryptoPath::supported_paths().iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    );
    benches();
    Criterion::default().configure_from_args().final_summary();
}
