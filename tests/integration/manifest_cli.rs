//! `chunkload keygen`, `manifest show` and `dedup` as a user meets them, on manifests sealed here.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chunkload::crypto::{CustomerKey, Manifest, ManifestHeader, Salt, encrypt_chunk};
use chunkload::store::{ChunkStore, DirStore, ManifestName};

use crate::support::{chunkload, scratch};

/// Small chunks keep sealing fast; the commands do not depend on 512 KiB.
const C: u64 = 4096;

fn filler(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Position `i` holds `filler(len, seeds[i])`, `None` is a hole; chunks also go into `store`.
fn sealed_image(salt: &str, image_size: u64, seeds: &[Option<u64>], store: Option<&DirStore>) -> Manifest {
    let header = ManifestHeader {
        chunk_size: C as u32,
        image_size,
        salt: Salt::new(salt).unwrap(),
        source: "test".into(),
    };
    let mut b = Manifest::builder(header.clone());
    for (i, seed) in seeds.iter().enumerate() {
        if let Some(seed) = seed {
            let mut buf = filler(header.chunk_len(i as u32), *seed);
            let sealed = encrypt_chunk(&header.salt, &mut buf);
            if let Some(store) = store {
                store.put_if_absent(&sealed.name, &buf).unwrap();
            }
            b.push(i as u32, sealed);
        }
    }
    b.finish().unwrap()
}

fn keygen(path: &Path) -> CustomerKey {
    chunkload().arg("keygen").arg(path).assert().success();
    CustomerKey::load(path).unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite() {
    let t = scratch();
    let path = t.path().join("customer.key");
    let out = chunkload().arg("keygen").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    let key_hex = text.lines().find(|l| l.len() == 64 && !l.starts_with('#')).expect("a key line");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(&*path.to_string_lossy()), "{stdout}");
    assert!(!stdout.contains(key_hex) && !String::from_utf8_lossy(&out.stderr).contains(key_hex));
    CustomerKey::load(&path).unwrap();

    let again = chunkload().arg("keygen").arg(&path).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists") && stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text, "the existing key is untouched");
}

#[test]
fn manifest_show_reads_without_a_key_and_says_it_is_not_verified() {
    let t = scratch();
    let key = keygen(&t.path().join("k"));
    let m = sealed_image("gc-1", 4 * C + 100, &[Some(1), None, Some(2), None, Some(3)], None);
    let file = t.path().join("img.manifest");
    m.seal_to_file(&key, &file).unwrap();
    let file_len = fs::metadata(&file).unwrap().len();

    let v = json(&chunkload().args(["manifest", "show", "--json"]).arg(&file).output().unwrap());
    assert_eq!(v["authenticity"], "not-verified");
    assert_eq!(v["salt"], "gc-1");
    assert_eq!(v["chunk_size"], C);
    assert_eq!(v["image_size"], 4 * C + 100);
    assert_eq!((v["positions"].as_u64(), v["stored_chunks"].as_u64()), (Some(5), Some(3)));
    assert_eq!((v["holes"].as_u64(), v["hole_bytes"].as_u64()), (Some(2), Some(2 * C)));
    assert_eq!(v["stored_bytes"], 2 * C + 100);
    assert_eq!(v["file_bytes"], file_len);
    assert!(v.get("chunks").is_none(), "the chunk list only with --chunks");

    let v = json(&chunkload().args(["manifest", "show", "--json", "--chunks"]).arg(&file).output().unwrap());
    let rows = v["chunks"].as_array().unwrap();
    let want: Vec<(u64, u64, u64, String, String)> = m
        .public()
        .chunks
        .iter()
        .map(|c| {
            let h = m.header();
            (u64::from(c.index), h.offset(c.index), h.chunk_len(c.index), c.name.to_hex(), c.plain.to_hex())
        })
        .collect();
    let got: Vec<(u64, u64, u64, String, String)> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (
                r["index"].as_u64().unwrap(),
                r["offset"].as_u64().unwrap(),
                r["len"].as_u64().unwrap(),
                s("name"),
                s("plain_sha256"),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(want[2].2, 100, "the short last chunk");

    let text = chunkload().args(["manifest", "show", "--chunks"]).arg(&file).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("NOT VERIFIED") && text.contains(&want[0].3), "{text}");

    // The same manifest by name in a store, and with the right key: authenticated.
    let store_dir = t.path().join("store");
    let store = DirStore::open(&store_dir).unwrap().with_sync(false);
    store.put_manifest(&ManifestName::new("img").unwrap(), &fs::read(&file).unwrap()).unwrap();
    let out = chunkload()
        .args(["manifest", "show", "--json", "--store"])
        .arg(&store_dir)
        .arg("img")
        .arg("--key")
        .arg(t.path().join("k"))
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["authenticity"], "authenticated");
    assert_eq!(v["stored_chunks"], 3);
    let text = chunkload()
        .args(["manifest", "show"])
        .arg(&file)
        .arg("--key")
        .arg(t.path().join("k"))
        .output()
        .unwrap();
    assert!(String::from_utf8(text.stdout).unwrap().contains("authenticated with the customer key"));
}

#[test]
fn manifest_show_with_the_wrong_key_fails() {
    let t = scratch();
    let right = keygen(&t.path().join("right"));
    keygen(&t.path().join("wrong"));
    let file = t.path().join("m");
    sealed_image("s", 2 * C, &[Some(1), Some(2)], None).seal_to_file(&right, &file).unwrap();
    let out = chunkload()
        .args(["manifest", "show"])
        .arg(&file)
        .arg("--key")
        .arg(t.path().join("wrong"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing is shown from a manifest that failed to open");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed authentication")
            && stderr.contains("different customer key")
            && stderr.contains("wrong"),
        "{stderr}"
    );
}

#[test]
fn manifest_show_with_key_rejects_a_flipped_bit_that_keyless_reading_cannot_see() {
    let t = scratch();
    let key = keygen(&t.path().join("k"));
    let m = sealed_image("s", 3 * C, &[Some(1), Some(2), Some(3)], None);
    let mut sealed = m.seal(&key);
    let name = m.public().chunks[1].name;
    let at = sealed.windows(32).position(|w| w == name.as_bytes()).expect("name in clear text");
    sealed[at + 5] ^= 0x20;
    let file = t.path().join("m");
    fs::write(&file, &sealed).unwrap();

    let out = chunkload()
        .args(["manifest", "show"])
        .arg(&file)
        .arg("--key")
        .arg(t.path().join("k"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed authentication") && stderr.contains("modified or corrupted"), "{stderr}");

    let v = json(&chunkload().args(["manifest", "show", "--json", "--chunks"]).arg(&file).output().unwrap());
    assert_eq!(v["authenticity"], "not-verified");
    let shown = v["chunks"][1]["name"].as_str().unwrap();
    assert_ne!(shown, name.to_hex(), "without the key the altered name is shown as is");
}

#[test]
fn dedup_over_a_store_reports_exact_numbers_and_csv() {
    let t = scratch();
    let dir = t.path().join("store");
    let store = DirStore::open(&dir).unwrap().with_sync(false);
    let key = keygen(&t.path().join("k"));
    let (b0, b1, x, y) = (Some(1), Some(2), Some(3), Some(4));
    let images = [
        ("base", sealed_image("s1", 2 * C, &[b0, b1], Some(&store))),
        ("app", sealed_image("s1", 4 * C, &[b0, b1, None, x], Some(&store))),
        ("app-again", sealed_image("s1", 4 * C, &[b0, b1, None, x], Some(&store))),
        ("other", sealed_image("s1", 3 * C, &[b0, b1, y], Some(&store))),
        ("elsewhere", sealed_image("s2", 2 * C, &[b0, b1], Some(&store))),
    ];
    for (name, m) in &images {
        store.put_manifest(&ManifestName::new(*name).unwrap(), &m.seal(&key)).unwrap();
    }
    let csv = t.path().join("csv");
    let out = chunkload()
        .args(["dedup", "--json", "--store"])
        .arg(&dir)
        .arg("--csv-dir")
        .arg(&csv)
        .output()
        .unwrap();
    let v = json(&out);
    let totals = &v["totals"];
    assert_eq!(totals["images"], 5);
    assert_eq!(totals["salts"], 2);
    assert_eq!(totals["logical_chunks"], 2 + 3 + 3 + 3 + 2);
    assert_eq!(totals["logical_bytes"], 13 * C);
    assert_eq!(totals["distinct_chunks"], 4 + 2, "b0 b1 x y under s1, b0 b1 under s2");
    // A rotation moves every live manifest to root 1's salt: both free salts are root 0's, so the
    // new root holds each plaintext once (b0 b1 x y), beside the 6 chunks stored now.
    let r = &v["rotation"];
    assert_eq!((r["active_root"].as_u64(), r["reupload_chunks"].as_u64()), (Some(0), Some(4)), "{r}");
    assert_eq!(r["reupload_bytes"].as_u64(), Some(4 * C));
    assert_eq!(r["stored_bytes"].as_u64(), Some(6 * C));
    assert_eq!(r["stored_bytes_during"].as_u64(), Some(10 * C));
    assert_eq!(totals["physical_bytes"], 6 * C);
    assert!((totals["savings_factor"].as_f64().unwrap() - 13.0 / 6.0).abs() < 1e-12);
    let by_name = |n: &str| v["images"].as_array().unwrap().iter().find(|i| i["name"] == n).unwrap().clone();
    // By name: app, app-again, base, elsewhere, other.
    let names: Vec<&str> =
        v["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "app-again", "base", "elsewhere", "other"]);
    assert_eq!(by_name("app")["unique_chunks"], 0, "x is also in app-again");
    assert_eq!(by_name("other")["unique_chunks"], 1);
    assert_eq!(by_name("elsewhere")["unique_chunks"], 2);
    assert_eq!(by_name("elsewhere")["pct_unique"], 100.0);
    assert_eq!(v["unique"]["zero_share"], 0.6);
    // No --manifest: upload order is by name, so "app" uploads b0 b1 x first.
    assert_eq!(v["upload"]["order"][0]["new_chunks"], 3);
    assert_eq!(v["upload"]["order"][1]["identical_to"], "app");
    assert_eq!(v["upload"]["identical_reuploads"], 1);

    let images_csv = fs::read_to_string(csv.join("dedup-images.csv")).unwrap();
    assert_eq!(images_csv.lines().count(), 6);
    assert!(
        images_csv
            .lines()
            .nth(4)
            .unwrap()
            .starts_with("elsewhere,test,s2,4096,8192,2,8192,2,2,8192,0,0,100.000000,")
    );
    let ecdf = fs::read_to_string(csv.join("dedup-ecdf.csv")).unwrap();
    assert!(
        ecdf.starts_with("view,pct,fraction_at_or_below\nunique,0.000000,0.600000\nunique,33.333333,0.800000\nunique,100.000000,1.000000\n"),
        "{ecdf}"
    );

    // Named manifests set the upload order; the text report names both views.
    let out = chunkload()
        .args(["dedup", "--store"])
        .arg(&dir)
        .args(["--manifest", "other", "--manifest", "base"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("dedup over 2 images") && text.contains("new = in no EARLIER image"), "{text}");
    let v = json(
        &chunkload()
            .args(["dedup", "--json", "--store"])
            .arg(&dir)
            .args(["--manifest", "other", "--manifest", "base"])
            .output()
            .unwrap(),
    );
    assert_eq!(v["upload"]["order"][0]["name"], "other");
    assert_eq!(v["upload"]["order"][1]["new_chunks"], 0);
    assert_eq!(v["images"][0]["name"], "base");
    assert_eq!(v["images"][0]["unique_chunks"], 0);

    let missing = t.path().join("nope");
    let out = chunkload().args(["dedup", "--store"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a chunk store"));
    assert!(!missing.exists(), "a read command must not create a store");
}
