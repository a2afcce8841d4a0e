//! The function-creation path end to end: convert real images into a chunk store, then read them
//! back (extract, materialize), and check dedup, determinism and tamper detection.

use std::fs;
use std::path::{Path, PathBuf};

use chunkload::crypto::ManifestPublic;

use crate::support::{chunkload, family, kitchen_sink, scratch, snapshot};

struct Store {
    dir: PathBuf,
    key: PathBuf,
}

fn new_store(root: &Path) -> Store {
    let key = root.join("key");
    chunkload().arg("keygen").arg(&key).assert().success();
    Store { dir: root.join("store"), key }
}

impl Store {
    fn convert(&self, image: &str, name: &str, extra: &[&str]) -> (PathBuf, serde_json::Value) {
        let manifest = self.dir.with_file_name(format!("{name}.manifest"));
        let out = chunkload()
            .args(["convert", "--json", image, "--name", name])
            .arg("--store")
            .arg(&self.dir)
            .arg("--key")
            .arg(&self.key)
            .arg("-o")
            .arg(&manifest)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (manifest, serde_json::from_slice(&out.stdout).unwrap())
    }

    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = chunkload();
        c.args(args).arg("--store").arg(&self.dir).arg("--key").arg(&self.key);
        c
    }
}

fn stat(v: &serde_json::Value, field: &str) -> u64 {
    v["stats"][field].as_u64().unwrap()
}

#[test]
fn extract_from_a_manifest_equals_extract_from_the_image() {
    let ks = kitchen_sink();
    let t = scratch();
    let store = new_store(t.path());
    let image = format!("{}:ks", ks.join("oci").display());
    for chunk_size in ["512KiB", "4KiB", "1MiB"] {
        let (manifest, _) = store.convert(&image, &format!("ks-{chunk_size}"), &["--chunk-size", chunk_size]);
        let from_chunks = t.path().join(format!("from-chunks-{chunk_size}"));
        store
            .cmd(&["extract", "-q", manifest.to_str().unwrap(), from_chunks.to_str().unwrap()])
            .assert()
            .success();
        let from_image = t.path().join(format!("from-image-{chunk_size}"));
        chunkload().args(["extract", "-q", &image]).arg(&from_image).assert().success();
        assert_eq!(snapshot(&from_chunks), snapshot(&from_image), "chunk size {chunk_size}");
    }
}

#[test]
fn conversion_is_deterministic_and_materialize_round_trips() {
    let ks = kitchen_sink();
    let t = scratch();
    let store = new_store(t.path());
    let image = format!("{}:ks", ks.join("oci").display());
    let (m1, first) = store.convert(&image, "one", &[]);
    let (_, second) = store.convert(&ks.join("docker.tar").display().to_string(), "two", &[]);
    // The docker archive of the same image flattens to the same block image: every chunk is present.
    assert_eq!(stat(&second, "chunks_new"), 0, "{second}");
    assert_eq!(stat(&first, "chunks_total"), stat(&second, "chunks_total"));
    let (m3, _) = store.convert(&image, "three", &[]);
    assert_eq!(fs::read(&m1).unwrap(), fs::read(&m3).unwrap(), "same image, same manifest bytes");

    let a = t.path().join("a.img");
    let b = t.path().join("b.img");
    store.cmd(&["materialize", m1.to_str().unwrap(), "-o", a.to_str().unwrap()]).assert().success();
    store.cmd(&["materialize", "three", "-o", b.to_str().unwrap()]).assert().success();
    let (a, b) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.len() as u64, stat(&first, "image_bytes"));
    assert_eq!(&a[a.len() - 4096..a.len() - 4088], b"CLBLOCK\0", "superblock in the last block");
}

#[test]
fn shared_base_layers_give_shared_chunks_and_salts_separate_them() {
    let fam = family();
    let t = scratch();
    let store = new_store(t.path());
    let img = |tag: &str| format!("{}:{tag}", fam.join("oci").display());
    let (base_m, base) = store.convert(&img("base"), "base", &[]);
    let (dep_a_m, dep_a) = store.convert(&img("dep-a"), "dep-a", &[]);
    let (_, dep_b) = store.convert(&img("dep-b"), "dep-b", &[]);
    let (_, app) = store.convert(&img("app-a1"), "app-a1", &[]);
    let (_, again) = store.convert(&img("app-a1"), "again", &[]);
    let (_, salted) = store.convert(&img("app-a1"), "salted", &["--salt", "epoch-2"]);

    // The base's data chunks reappear at the same indices in a variant; only the chunk holding
    // the base's metadata and superblock (its last) differs.
    let public = |p: &Path| ManifestPublic::parse(&fs::read(p).unwrap()).unwrap();
    let (pb, pa) = (public(&base_m), public(&dep_a_m));
    let base_chunks = pb.chunks.len();
    for (x, y) in pb.chunks.iter().zip(&pa.chunks).take(base_chunks - 1) {
        assert_eq!((x.index, x.name), (y.index, y.name));
    }
    assert!(stat(&dep_a, "chunks_present") >= base_chunks as u64 - 1, "{dep_a}");
    assert!(stat(&dep_b, "chunks_present") >= base_chunks as u64 - 1, "{dep_b}");
    // An app-only change uploads only the chunks its small layer and new metadata touch.
    assert!(stat(&app, "chunks_new") <= 2, "{app}");
    assert_eq!(stat(&again, "chunks_new"), 0, "an identical re-upload adds nothing");
    let salted_data = stat(&salted, "chunks_total") - stat(&salted, "chunks_zero");
    assert_eq!(stat(&salted, "chunks_new"), salted_data, "a new salt shares nothing");
    let _ = base;

    let out = chunkload().args(["dedup", "--json", "--store"]).arg(&store.dir).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["totals"]["savings_factor"].as_f64().unwrap() > 1.5, "{}", report["totals"]);
}

fn first_chunk_file(store: &Path) -> PathBuf {
    let mut stack = vec![store.join("chunks")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                return p;
            }
        }
    }
    panic!("no chunk in store");
}

#[test]
fn a_flipped_bit_in_a_chunk_or_the_manifest_is_named() {
    let ks = kitchen_sink();
    let t = scratch();
    let store = new_store(t.path());
    let (manifest, _) = store.convert(&format!("{}:ks", ks.join("oci").display()), "ks", &[]);
    let victim = first_chunk_file(&store.dir);
    let mut bytes = fs::read(&victim).unwrap();
    bytes[1000] ^= 0x04;
    fs::write(&victim, bytes).unwrap();
    let out_img = t.path().join("x.img");
    let out = store
        .cmd(&["materialize", manifest.to_str().unwrap(), "-o", out_img.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let hex = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(stderr.contains("chunk ") && stderr.contains(&hex[..12]), "{stderr}");
    assert!(!out_img.exists(), "a failed materialize left an image behind");
    let dest = t.path().join("rootfs");
    let out = store.cmd(&["extract", manifest.to_str().unwrap(), dest.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dest.exists());

    // A chunk missing from the store is named too.
    fs::remove_file(&victim).unwrap();
    let out = store
        .cmd(&["materialize", manifest.to_str().unwrap(), "-o", out_img.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains(&hex[..12]) && stderr.contains("not"), "{stderr}");

    let mut m = fs::read(&manifest).unwrap();
    let mid = m.len() / 2;
    m[mid] ^= 0x01;
    fs::write(&manifest, m).unwrap();
    let out = store
        .cmd(&["materialize", manifest.to_str().unwrap(), "-o", out_img.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("authentication"), "{stderr}");
}

#[test]
fn block_metadata_reads_back_and_resolves_paths() {
    use chunkload::flatten::{self, NodeKind};
    use chunkload::image::{Image, OpenOptions};
    use chunkload::layout::{BlockLayout, BlockMeta, Superblock};

    let ks = kitchen_sink();
    let image = Image::open(&format!("{}:ks", ks.join("oci").display()), &OpenOptions::default()).unwrap();
    let flat = flatten::flatten(&image).unwrap();
    let layout = BlockLayout::new(&flat);
    let sb = Superblock::decode(&layout.superblock.encode()).unwrap();
    assert_eq!(sb, layout.superblock);
    let meta = BlockMeta::new(sb, layout.meta.clone()).unwrap();

    // Every extent of the extent map is what a path lookup finds.
    let extents = BlockLayout::extents(&flat);
    assert!(extents.len() >= 10);
    for e in &extents {
        let shown = String::from_utf8_lossy(&e.path).into_owned();
        let (ino, touched) = meta.lookup(&e.path).unwrap_or_else(|| panic!("{shown} not found"));
        let range = meta.inode(ino).byte_range().unwrap();
        assert_eq!((range.start, range.end - range.start), (e.offset, e.len), "{shown}");
        assert!(e.offset % 4096 == 0);
        // A lookup of /a/b/c reads the root inode, then per component the directory's index
        // block, the block holding the entry, and the next inode.
        let depth = e.path.split(|&b| b == b'/').filter(|p| !p.is_empty()).count();
        assert_eq!(touched.len(), 1 + 3 * depth, "{shown}");
    }
    assert!(meta.lookup(b"/no/such/file").is_none());

    // The tree rebuilt from metadata alone has the same paths and kinds.
    let rebuilt = meta.to_tree().unwrap();
    let shape = |t: &chunkload::flatten::Tree| -> Vec<(Vec<u8>, &'static str)> {
        t.walk().into_iter().map(|(p, id)| (p, t.node(id).kind.label())).collect()
    };
    assert_eq!(shape(&rebuilt), shape(&flat.tree));
    let files = |t: &chunkload::flatten::Tree| -> Vec<(u64, u64)> {
        t.walk()
            .into_iter()
            .filter_map(|(_, id)| match t.node(id).kind {
                NodeKind::File(c) => Some((c.block, c.size)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(files(&rebuilt), files(&flat.tree));

    // A directory given a second name (a crafted image, re-hashed) is refused, not looped over.
    let (usr, _) = meta.lookup(b"/usr").unwrap();
    let root_entries = meta.entries_range(0);
    let mut crafted = layout.meta.clone();
    let first = root_entries.start as usize;
    crafted[first..first + 4].copy_from_slice(&usr.to_le_bytes());
    let mut sb2 = layout.superblock;
    sb2.meta_sha256 = <sha2::Sha256 as sha2::Digest>::digest(&crafted).into();
    let err = BlockMeta::new(sb2, crafted).and_then(|m| m.to_tree()).unwrap_err();
    assert!(err.to_string().contains("more than one name"), "{err}");

    // Any change to the metadata is caught by the superblock's hash before it is parsed.
    let mut bad = layout.meta.clone();
    bad[10] ^= 1;
    assert!(BlockMeta::new(sb, bad).unwrap_err().to_string().contains("sha256"));
    let mut sb_bytes = layout.superblock.encode();
    sb_bytes[0] = b'X';
    assert!(Superblock::decode(&sb_bytes).unwrap_err().to_string().contains("magic"));
}

#[test]
fn the_spooled_second_pass_streams_the_same_block_image_and_leaves_nothing() {
    use chunkload::flatten;
    use chunkload::image::{Image, OpenOptions};
    use chunkload::layout::{BlockLayout, stream_image};

    let ks = kitchen_sink();
    let image = Image::open(&format!("{}:ks", ks.join("oci").display()), &OpenOptions::default()).unwrap();
    let t = scratch();
    let image_bytes = |flat: &flatten::Flattened| {
        let mut out = Vec::new();
        stream_image(&image, flat, &BlockLayout::new(flat), &mut |b: &[u8]| {
            out.extend_from_slice(b);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
        out
    };
    let decoded = flatten::flatten(&image).unwrap();
    let spooled = flatten::flatten_spooled(&image, t.path()).unwrap();
    let copies = spooled.spooled.as_ref().expect("a spooled flatten keeps its layers");
    assert_eq!(copies.len(), image.layers.len());
    for (copy, layer) in copies.iter().zip(&spooled.layers) {
        assert_eq!(copy.len(), layer.uncompressed_bytes, "layer {}", layer.index);
    }
    assert!(image_bytes(&decoded) == image_bytes(&spooled), "same block image either way");
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "spool files have no names");

    let missing = t.path().join("no-such-dir");
    let e = flatten::flatten_spooled(&image, &missing).unwrap_err().to_string();
    assert!(e.contains("temporary file") && e.contains("layer"), "{e}");
}
