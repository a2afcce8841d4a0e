//! Crypto and store stages together: convergence, tamper detection, manifest sealing, concurrency.

use std::sync::{Arc, Barrier};

use chunkload::crypto::{
    ChunkName, CustomerKey, Error, Manifest, ManifestHeader, ManifestPublic, Salt, SealedChunk,
    encrypt_chunk, open_chunk,
};
use chunkload::store::{ChunkStore, DirStore, ManifestName, MemStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const CHUNK: usize = 512 * 1024;

/// Deterministic, non-repeating-looking bytes (no RNG needed).
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn header(chunks: u64, salt: &str) -> ManifestHeader {
    ManifestHeader {
        chunk_size: CHUNK as u32,
        image_size: chunks * CHUNK as u64 - 1000,
        salt: Salt::new(salt).unwrap(),
        source: "docker.io/library/python@sha256:0123".into(),
    }
}

#[test]
fn convergent_same_salt_same_everything_other_salt_no_dedup() {
    let plain = filler(CHUNK, 1);
    let (s1, s2) = (Salt::new("gcroot-1/az-a").unwrap(), Salt::new("gcroot-1/az-b").unwrap());
    let (mut a, mut b, mut c) = (plain.clone(), plain.clone(), plain.clone());
    let (sa, sb, sc) = (encrypt_chunk(&s1, &mut a), encrypt_chunk(&s1, &mut b), encrypt_chunk(&s2, &mut c));
    assert_eq!(sa, sb);
    assert_eq!(a, b, "same salt and plaintext give the same ciphertext");
    assert_ne!(sa.name, sc.name, "another salt gives another name");
    assert_ne!(sa.key, sc.key);
    assert_ne!(a, c);
    assert_eq!(sa.plain, sc.plain, "the plaintext digest does not depend on the salt");

    let store = MemStore::new();
    assert!(store.put_if_absent(&sa.name, &a).unwrap());
    assert!(!store.put_if_absent(&sb.name, &b).unwrap());
    assert!(store.put_if_absent(&sc.name, &c).unwrap());
    assert_eq!(store.chunk_count(), 2);
    let mut got = store.get(&sa.name).unwrap();
    open_chunk(&sa.name, &sa.key, &sa.plain, &mut got).unwrap();
    assert_eq!(got, plain);
}

#[test]
fn flipped_bit_in_stored_chunk_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap().with_sync(false);
    let mut buf = filler(CHUNK, 2);
    let s = encrypt_chunk(&Salt::new("s").unwrap(), &mut buf);
    store.put_if_absent(&s.name, &buf).unwrap();
    let path = store.chunk_path(&s.name);
    let mut on_disk = std::fs::read(&path).unwrap();
    on_disk[CHUNK / 3] ^= 0x04;
    std::fs::write(&path, &on_disk).unwrap();

    let mut got = store.get(&s.name).unwrap();
    let err = open_chunk(&s.name, &s.key, &s.plain, &mut got).unwrap_err();
    assert!(matches!(err, Error::ChunkNameMismatch { expected, .. } if expected == s.name), "{err}");
    assert!(err.to_string().contains(&s.name.to_string()));
}

/// A whole image through the stages: chunks, zero elision, encryption, store, manifest, and back.
#[test]
fn image_round_trip_through_store_and_manifest() {
    let n = 6u64;
    let h = header(n, "epoch-1");
    let mut image = filler(h.image_size as usize, 3);
    image[CHUNK..2 * CHUNK].fill(0); // chunk 1 is a hole
    image[4 * CHUNK..5 * CHUNK].fill(0); // chunk 4 too
    image.copy_within(..CHUNK, 3 * CHUNK); // chunk 3 duplicates chunk 0

    let store = MemStore::new();
    let mut builder = Manifest::builder(h.clone());
    for (i, chunk) in image.chunks(CHUNK).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let mut buf = chunk.to_vec();
        let sealed = encrypt_chunk(&h.salt, &mut buf);
        store.put_if_absent(&sealed.name, &buf).unwrap();
        builder.push(i as u32, sealed);
    }
    let stats = store.stats();
    assert_eq!((stats.chunks_new, stats.chunks_present), (3, 1));
    let manifest = builder.finish().unwrap();
    let ck = CustomerKey::from_bytes([5; 32]);
    let name = ManifestName::new("python-3.12").unwrap();
    store.put_manifest(&name, &manifest.seal(&ck)).unwrap();

    let sealed = store.get_manifest(&name).unwrap();
    let public = ManifestPublic::parse(&sealed).unwrap();
    assert_eq!(public.holes().collect::<Vec<_>>(), vec![1, 4]);
    assert_eq!(public, manifest.public());
    let opened = Manifest::open(&sealed, &ck).unwrap();
    assert_eq!(opened, manifest);

    let mut rebuilt = vec![0u8; image.len()];
    for (entry, key) in opened.chunks() {
        let mut buf = store.get(&entry.name).unwrap();
        open_chunk(&entry.name, key, &entry.plain, &mut buf).unwrap();
        let at = opened.header().offset(entry.index) as usize;
        assert_eq!(buf.len() as u64, opened.header().chunk_len(entry.index));
        rebuilt[at..at + buf.len()].copy_from_slice(&buf);
    }
    assert_eq!(rebuilt, image);
}

/// A small manifest with holes, for exhaustive tampering.
fn small_manifest() -> (Manifest, CustomerKey) {
    let h = header(7, "gc-7");
    let mut b = Manifest::builder(h);
    for i in [0u32, 2, 3, 6] {
        let mut buf = filler(100, u64::from(i));
        b.push(i, encrypt_chunk(&Salt::new("gc-7").unwrap(), &mut buf));
    }
    (b.finish().unwrap(), CustomerKey::from_bytes([9; 32]))
}

#[test]
fn every_flipped_bit_in_a_sealed_manifest_is_an_error() {
    let (m, ck) = small_manifest();
    let sealed = m.seal(&ck);
    assert_eq!(Manifest::open(&sealed, &ck).unwrap(), m);
    let mut auth = 0;
    for bit in 0..sealed.len() * 8 {
        let mut bad = sealed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        match Manifest::open(&bad, &ck) {
            Ok(_) => panic!("bit {bit} flipped and the manifest still opened"),
            Err(Error::ManifestAuthentication) => auth += 1,
            Err(Error::ManifestMalformed { .. } | Error::ManifestVersion { .. }) => {}
            Err(e) => panic!("bit {bit}: unexpected error kind {e}"),
        }
        let _ = ManifestPublic::parse(&bad); // may succeed (it does not authenticate) but must not panic
    }
    // Bits in entries, nonce, key table and tag can only be caught by authentication.
    assert!(auth > sealed.len() * 4, "{auth} authentication failures of {} bits", sealed.len() * 8);
}

#[test]
fn tampered_key_table_fails_authentication() {
    let (m, ck) = small_manifest();
    let mut sealed = m.seal(&ck);
    let key_table_start = sealed.len() - 16 - 4 * 32;
    sealed[key_table_start + 40] ^= 0x80;
    let e = Manifest::open(&sealed, &ck).unwrap_err();
    assert!(matches!(e, Error::ManifestAuthentication));
    assert!(e.to_string().contains("failed authentication"));
    // The keyless view does not see the key table, so it still parses.
    assert_eq!(ManifestPublic::parse(&sealed).unwrap(), m.public());
}

#[test]
fn wrong_customer_key_fails_authentication() {
    let (m, ck) = small_manifest();
    let sealed = m.seal(&ck);
    let other = CustomerKey::from_bytes([8; 32]);
    assert!(matches!(Manifest::open(&sealed, &other), Err(Error::ManifestAuthentication)));
}

#[test]
fn every_truncation_is_an_error() {
    let (m, ck) = small_manifest();
    let sealed = m.seal(&ck);
    for len in 0..sealed.len() {
        let cut = &sealed[..len];
        assert!(Manifest::open(cut, &ck).is_err(), "open accepted {len} of {} bytes", sealed.len());
        let e = ManifestPublic::parse(cut).unwrap_err();
        assert!(matches!(e, Error::ManifestMalformed { .. }), "{len}: {e}");
    }
    let mut long = sealed.clone();
    long.push(0);
    assert!(matches!(ManifestPublic::parse(&long), Err(Error::ManifestMalformed { .. })));
}

#[test]
fn huge_counts_in_a_short_manifest_do_not_allocate() {
    let (m, ck) = small_manifest();
    let mut sealed = m.seal(&ck);
    sealed[24..28].copy_from_slice(&u32::MAX.to_le_bytes()); // chunk_count
    sealed[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // image_size
    let e = ManifestPublic::parse(&sealed).unwrap_err().to_string();
    assert!(e.contains("image_size") && e.contains("offset 16"), "{e}");
}

#[test]
fn sealing_is_deterministic_and_under_100_bytes_per_chunk() {
    let n = 32_768u32; // a 16 GiB image of 512 KiB chunks
    let h = ManifestHeader {
        chunk_size: CHUNK as u32,
        image_size: u64::from(n) * CHUNK as u64,
        salt: Salt::new("gcroot-42/2025-w03/use1-az2").unwrap(),
        source: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:".to_string() + &"ab".repeat(32),
    };
    let mut b = Manifest::builder(h);
    for i in (0..n).rev() {
        if i % 97 == 5 {
            continue; // a few holes, pushed out of order like parallel workers would
        }
        let d = ChunkName::of_ciphertext(&i.to_le_bytes());
        let sealed = SealedChunk {
            name: d,
            key: chunkload::crypto::ChunkKey::from_bytes(*d.as_bytes()),
            plain: chunkload::crypto::PlainDigest::from_bytes([i as u8; 32]),
        };
        b.push(i, sealed);
    }
    let m = b.finish().unwrap();
    let ck = CustomerKey::from_bytes([1; 32]);
    let sealed = m.seal(&ck);
    assert_eq!(sealed, m.seal(&ck), "same manifest, same key: same bytes");
    let per_chunk = sealed.len() as f64 / f64::from(n);
    assert!(per_chunk <= 100.0, "{per_chunk:.2} bytes per chunk ({} bytes)", sealed.len());
    assert!(sealed.len() < 3 << 20);
    assert_eq!(Manifest::open(&sealed, &ck).unwrap(), m);
}

#[test]
fn builder_rejects_duplicates_and_out_of_range() {
    let mut buf = vec![1u8; 10];
    let s = encrypt_chunk(&Salt::new("x").unwrap(), &mut buf);
    let mut b = Manifest::builder(header(2, "x"));
    b.push(1, s.clone()).push(1, s.clone());
    assert!(b.finish().unwrap_err().to_string().contains("index 1 pushed twice"));
    let mut b = Manifest::builder(header(2, "x"));
    b.push(2, s);
    assert!(b.finish().unwrap_err().to_string().contains("past the end"));
}

#[test]
fn dir_store_same_chunks_from_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::open(dir.path()).unwrap().with_sync(false));
    let salt = Salt::new("race").unwrap();
    let chunks: Arc<Vec<(ChunkName, Vec<u8>)>> = Arc::new(
        (0..64)
            .map(|i| {
                let mut buf = filler(4096 + i, i as u64);
                (encrypt_chunk(&salt, &mut buf).name, buf)
            })
            .collect(),
    );
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let (store, chunks, barrier) = (store.clone(), chunks.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // The threads walk the list in opposite directions so they meet in the middle.
                let order: Vec<usize> =
                    if t == 0 { (0..chunks.len()).collect() } else { (0..chunks.len()).rev().collect() };
                let mut new = vec![false; chunks.len()];
                for i in order {
                    new[i] = store.put_if_absent(&chunks[i].0, &chunks[i].1).unwrap();
                }
                new
            })
        })
        .collect();
    let results: Vec<Vec<bool>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, (name, bytes)) in chunks.iter().enumerate() {
        assert!(results[0][i] ^ results[1][i], "chunk {i}: exactly one writer reports it new");
        assert_eq!(&store.get(name).unwrap(), bytes);
    }
    let s = store.stats();
    assert_eq!((s.chunks_new, s.chunks_present), (64, 64));
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

fn arb_manifest() -> impl Strategy<Value = (Manifest, [u8; 32])> {
    (
        1u64..40,
        proptest::collection::btree_set(0u32..40, 0..40),
        "[a-z0-9/-]{1,20}",
        "[ -~]{0,40}",
        any::<[u8; 32]>(),
        any::<u64>(),
    )
        .prop_map(|(total, indices, salt, source, ck, seed)| {
            let h = ManifestHeader {
                chunk_size: 4096,
                image_size: total * 4096 - seed % 4096,
                salt: Salt::new(salt).unwrap(),
                source,
            };
            let mut b = Manifest::builder(h.clone());
            for i in indices.into_iter().filter(|&i| u64::from(i) < total) {
                let mut buf = filler(64, seed ^ u64::from(i));
                b.push(i, encrypt_chunk(&h.salt, &mut buf));
            }
            (b.finish().unwrap(), ck)
        })
}

proptest! {
    #![proptest_config(Config { cases: 64, rng_seed: RngSeed::Fixed(0x5eed_c0de), failure_persistence: None, ..Config::default() })]

    #[test]
    fn manifest_seal_open_round_trip((m, ck) in arb_manifest()) {
        let ck = CustomerKey::from_bytes(ck);
        let sealed = m.seal(&ck);
        prop_assert_eq!(Manifest::open(&sealed, &ck).unwrap(), m.clone());
        prop_assert_eq!(ManifestPublic::parse(&sealed).unwrap(), m.public());
        let holes = m.public().holes().count() as u64;
        prop_assert_eq!(holes + m.len() as u64, m.header().total_chunks());
    }
}

/// Every AES-256-CTR kernel this CPU runs, forced on a whole process (`CHUNKLOAD_CRYPTO_PATH`),
/// converts an image into the same chunks, and an image converted on one kernel extracts on the
/// portable one; a kernel that does not exist is refused before any work, naming itself.
#[test]
fn every_crypto_kernel_converts_to_the_same_chunks_and_reads_what_the_others_wrote() {
    use std::path::Path;
    use std::process::Command;

    use chunkload::crypto::CryptoPath;

    let bin = env!("CARGO_BIN_EXE_chunkload");
    let image = format!("{}/images/oci:shell-tool", env!("CARGO_MANIFEST_DIR"));
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("key");
    assert!(Command::new(bin).arg("keygen").arg(&key).status().unwrap().success());
    let run = |path: &str, args: &[&Path]| {
        let out = Command::new(bin).env("CHUNKLOAD_CRYPTO_PATH", path).args(args).output().unwrap();
        assert!(out.status.success(), "{path}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let mut stores = Vec::new();
    for p in CryptoPath::supported_paths() {
        let dir = t.path().join(p.name());
        let (store, manifest, root) = (dir.join("store"), dir.join("m"), dir.join("root"));
        let convert = [
            Path::new("convert"),
            Path::new(&image),
            Path::new("--store"),
            &store,
            Path::new("--key"),
            &key,
            Path::new("-o"),
            &manifest,
        ];
        run(p.name(), &convert);
        let extract = [
            Path::new("extract"),
            Path::new("-q"),
            &manifest,
            Path::new("--store"),
            &store,
            Path::new("--key"),
            &key,
            &root,
        ];
        run("portable", &extract);
        assert!(root.join("bin").exists(), "{p}: nothing extracted");
        let mut names: Vec<_> = walk(&store);
        names.sort();
        stores.push((p, names));
    }
    for (p, names) in &stores[1..] {
        assert!(!names.is_empty() && *names == stores[0].1, "{p} stored other chunks than {}", stores[0].0);
    }
    let out = Command::new(bin)
        .env("CHUNKLOAD_CRYPTO_PATH", "avx1024")
        .arg("inspect")
        .arg(&image)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CHUNKLOAD_CRYPTO_PATH=avx1024: unknown kernel"), "{err}");

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out
    }
}
