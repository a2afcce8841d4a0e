//! Per-stage throughput of the function-creation pipeline on a synthetic three-layer image (a
//! "base", a "deps" layer with many small files and some large ones, an "app" layer that deletes
//! and overwrites), made once per run with the tar crate: reading + flattening and extraction
//! (throughput in uncompressed layer bytes), block-image layout and conversion into chunks
//! (throughput in block-image bytes).
//!
//! `flatten/unpack` is the whole unpack of an image pulled in full or of a zip package: decode
//! every layer and write the flattened tree to disk (open + flatten + extract), in uncompressed
//! layer bytes per second. The replay's `baseline.unpack_speed` default cites it. The run starts by
//! printing the CPU's features and the crypto kernels chosen (to stderr), as the crypto bench does.

use std::fs;
use std::io::Write;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use chunkload::chunk::{self, ConvertOptions};
use chunkload::crypto::Salt;
use chunkload::flatten;
use chunkload::image::{Image, OpenOptions};
use chunkload::layout::{self, BlockLayout};
use chunkload::rootfs;
use chunkload::rootfs::LayerContent;
use chunkload::store::MemStore;

/// Half-random, half-repetitive content: compresses roughly like real binaries and text do.
fn content(rng: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    rng.fill_bytes(&mut v[..size / 2]);
    for (i, b) in v[size / 2..].iter_mut().enumerate() {
        *b = b"import numpy as np\n"[i % 19];
    }
    v
}

fn layer(
    rng: &mut ChaCha8Rng,
    prefix: &str,
    files: usize,
    small: usize,
    large: &[usize],
    deletes: &[&str],
) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..files {
        let size = if i < large.len() { large[i] } else { rng.random_range(small / 4..small * 2) };
        let mut h = tar::Header::new_gnu();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("{prefix}/d{}/f{i}.py", i % 64), &content(rng, size)[..]).unwrap();
    }
    for d in deletes {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, d, &[][..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn write_layout(dir: &Path) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let layers = [
        layer(&mut rng, "usr/lib", 3000, 8 << 10, &[4 << 20, 2 << 20], &[]),
        layer(&mut rng, "usr/local/lib/python3.11", 6000, 12 << 10, &[24 << 20, 16 << 20, 8 << 20], &[]),
        layer(&mut rng, "var/task", 200, 4 << 10, &[], &["usr/lib/d1/.wh.f1.py", "usr/lib/d2/.wh..wh..opq"]),
    ];
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = hex::encode(Sha256::digest(bytes));
        fs::write(blobs.join(&d), bytes).unwrap();
        (format!("sha256:{d}"), bytes.len())
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut total = 0;
    for tar in &layers {
        total += tar.len() as u64;
        diff_ids.push(format!("sha256:{}", hex::encode(Sha256::digest(tar))));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(tar).unwrap();
        let (digest, size) = put(&gz.finish().unwrap());
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}));
    }
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
    .unwrap();
    let (cd, cs) = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs}))
    .unwrap();
    let (md, ms) = put(&manifest);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    total
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("oci");
    let bytes = write_layout(&layout);
    let reference = format!("{}:bench", layout.display());
    let mut g = c.benchmark_group("flatten");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("open+flatten (decode, verify, scan, apply)", |b| {
        b.iter(|| {
            let image = Image::open(&reference, &OpenOptions::default()).unwrap();
            flatten::flatten(&image).unwrap()
        })
    });
    let image = Image::open(&reference, &OpenOptions::default()).unwrap();
    let flat = flatten::flatten(&image).unwrap();
    g.bench_function("apply (scanned entries onto a tree)", |b| {
        let entries: Vec<_> = (0..image.layers.len())
            .map(|i| flatten::scan::scan_entries(image.open_layer(i, &image.size_budget()).unwrap()).unwrap())
            .collect();
        b.iter(|| flatten::apply_layers(&entries).unwrap())
    });
    let mut n = 0;
    g.bench_function("unpack (open, flatten, extract: a full pull's or a zip's unpack)", |b| {
        b.iter(|| {
            n += 1;
            let dest = tmp.path().join(format!("unpack{n}"));
            let image = Image::open(&reference, &OpenOptions::default()).unwrap();
            let flat = flatten::flatten(&image).unwrap();
            rootfs::extract(&flat.tree, &LayerContent { image: &image }, &dest).unwrap();
            fs::remove_dir_all(&dest).unwrap();
        })
    });
    g.bench_function("extract (flattened tree to disk)", |b| {
        b.iter(|| {
            n += 1;
            let dest = tmp.path().join(format!("out{n}"));
            rootfs::extract(&flat.tree, &LayerContent { image: &image }, &dest).unwrap();
            fs::remove_dir_all(&dest).unwrap();
        })
    });
    g.finish();

    let block = BlockLayout::new(&flat);
    let mut g = c.benchmark_group("chunk");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(block.image_size()));
    g.bench_function("layout stream (block image bytes, one thread)", |b| {
        b.iter(|| {
            let mut n = 0u64;
            layout::stream_image(&image, &flat, &block, &mut |bytes: &[u8]| {
                n += bytes.len() as u64;
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
            n
        })
    });
    let options = ConvertOptions { chunk_size: chunk::ChunkSize::DEFAULT, salt: Salt::new("bench").unwrap() };
    g.bench_function("convert to MemStore (decode again, cut, encrypt, store; all cores)", |b| {
        b.iter(|| chunk::convert(&image, &flat, &options, &MemStore::new()).unwrap().stats.chunks_new)
    });
    // What `chunkload convert` does: the second pass reads the layers flattening spooled.
    let spool = tempfile::tempdir().unwrap();
    let spooled = flatten::flatten_spooled(&image, spool.path()).unwrap();
    g.bench_function(
        "convert to MemStore (spooled layers read by the workers, encrypt, store; all cores)",
        |b| b.iter(|| chunk::convert(&image, &spooled, &options, &MemStore::new()).unwrap().stats.chunks_new),
    );
    g.finish();
}

criterion_group!(benches, bench);
// criterion_main!, with the machine's CPU features and crypto kernels named first.
fn main() {
    eprintln!("chunkload pipeline bench: {}", chunkload::crypto::describe_kernels());
    benches();
    Criterion::default().configure_from_args().final_summary();
}
