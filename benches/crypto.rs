//! Single-thread throughput of the crypto stage on one 512 KiB chunk.
//!
//! The bound for `convergent/encrypt_chunk` is set by its parts: it runs SHA-256 three times over
//! the chunk (key, plaintext digest, name) and AES-256-CTR once, so compare it with
//! 1 / (3 / sha256 + 1 / aes_ctr) from the first two groups (or from `openssl speed -evp`).

use std::hint::black_box;

use aes::Aes256;
use chunkload::crypto::{Salt, encrypt_chunk, open_chunk};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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
    g.finish();
}

fn convergent(c: &mut Criterion) {
    let mut g = c.benchmark_group("convergent");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    let salt = Salt::new("bench").unwrap();
    let mut buf = chunk();
    // Encrypting the previous output again costs the same as encrypting fresh plaintext.
    g.bench_function("encrypt_chunk", |b| b.iter(|| encrypt_chunk(&salt, black_box(&mut buf))));
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
criterion_main!(benches);
