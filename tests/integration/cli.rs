//! The command line as a user meets it: inspect output, selection of images, library-level
//! guarantees that need a whole image (no half-written destination).

use std::fs;

use chunkload::flatten;
use chunkload::image::{Image, OpenOptions, spec::Platform};
use chunkload::rootfs::{self, ContentSource, FileRequest, FileSink};

use crate::support::{Comp, LayoutBuilder, TarBuilder, chunkload, kitchen_sink, names_in, scratch};

#[test]
fn inspect_reports_layers_and_flattening() {
    let ks = kitchen_sink();
    let image = format!("{}:ks", ks.join("oci").display());
    let out = chunkload().args(["inspect", "--json", &image]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    assert_eq!(v["kind"], "oci-layout");
    assert_eq!(v["platform"], "linux/amd64");
    // Layer 1 deleted data/olddir, etc/passwd, data/hl1 and replaced srv: whiteouts.
    assert!(layers[1]["whiteouts"].as_u64().unwrap() >= 3, "{}", layers[1]);
    // Layer 3 is the hand-made one: one opaque whiteout and one plain whiteout.
    assert_eq!(layers[3]["opaque_whiteouts"], 1);
    assert_eq!(layers[3]["whiteouts"], 1);
    // Layer 2 rewrote opt/big.bin, hiding layer 0's copy (2.1 MB).
    assert!(layers[2]["hid_bytes"].as_u64().unwrap() >= 2_100_000);
    let flat = &v["flattened"];
    assert_eq!(flat["devices"], 2, "{flat}");
    assert_eq!(flat["symlinks"], 3, "{flat}");
    let hidden: u64 = layers.iter().map(|l| l["dead_bytes"].as_u64().unwrap()).sum();
    assert_eq!(flat["hidden_bytes"].as_u64().unwrap(), hidden);
    let added: u64 = layers.iter().map(|l| l["bytes_added"].as_u64().unwrap()).sum();
    assert_eq!(flat["total_bytes"].as_u64().unwrap() + hidden, added);

    let text = chunkload().args(["inspect", &image]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("flattened")
            && text.contains("whiteouts")
            && text.contains(v["digest"].as_str().unwrap())
    );
}

#[test]
fn inspect_is_deterministic() {
    let ks = kitchen_sink();
    let image = format!("{}:ks", ks.join("oci").display());
    let a = chunkload().args(["inspect", "--json", &image]).output().unwrap().stdout;
    let b = chunkload().args(["inspect", "--json", &image]).output().unwrap().stdout;
    assert_eq!(a, b);
}

#[test]
fn multi_platform_index_picks_the_platform() {
    let t = scratch();
    let dir = t.path().join("img");
    let read_index = || -> serde_json::Value {
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
    };
    LayoutBuilder::new(vec![TarBuilder::new().file("arch", b"amd64").finish()], Comp::Gzip).write(&dir);
    let amd = read_index()["manifests"][0].clone();
    let mut arm = LayoutBuilder::new(vec![TarBuilder::new().file("arch", b"arm64").finish()], Comp::Gzip);
    arm.config_hook = Box::new(|c| c["architecture"] = serde_json::json!("arm64"));
    arm.write(&dir);
    let arm = read_index()["manifests"][0].clone();
    let entry = |d: &serde_json::Value, arch: &str| {
        serde_json::json!({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
            "platform": {"os": "linux", "architecture": arch}})
    };
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&arm, "arm64"), entry(&amd, "amd64")],
    }))
    .unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&nested));
    fs::write(dir.join("blobs/sha256").join(&digest), &nested).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{digest}"),
        "size": nested.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();

    let image = format!("{}:multi", dir.display());
    let pick = |platform: &str, dest: &str| {
        let dest = t.path().join(dest);
        chunkload().args(["extract", "-q", "--platform", platform, &image]).arg(&dest).assert().success();
        fs::read_to_string(dest.join("arch")).unwrap()
    };
    assert_eq!(pick("linux/amd64", "a"), "amd64");
    assert_eq!(pick("linux/arm64", "b"), "arm64");
    let out = chunkload().args(["inspect", "--platform", "linux/s390x", &image]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("platform linux/s390x") && stderr.contains("linux/arm64, linux/amd64"),
        "{stderr}"
    );
}

/// A content source that fails after writing some files, as a corrupt layer found late would.
struct FailHalfway;

impl ContentSource for FailHalfway {
    fn write_files(&self, requests: Vec<FileRequest>, sink: &FileSink) -> rootfs::Result<()> {
        for r in requests.iter().take(requests.len() / 2) {
            sink.submit(r.clone(), b"partial".to_vec())?;
        }
        Err(rootfs::Error::Content("layer 2 went bad".into()))
    }
}

#[test]
fn failed_extraction_leaves_nothing_that_looks_complete() {
    let ks = kitchen_sink();
    let image = Image::open(&format!("{}:ks", ks.join("oci").display()), &OpenOptions::default()).unwrap();
    let flat = flatten::flatten(&image).unwrap();
    let t = scratch();
    let dest = t.path().join("rootfs");
    let err = rootfs::extract(&flat.tree, &FailHalfway, &dest).unwrap_err();
    assert!(err.to_string().contains("layer 2 went bad"));
    assert!(!dest.exists());
    assert!(names_in(t.path()).is_empty(), "staging directory left behind: {:?}", names_in(t.path()));
}

#[test]
fn docker_archive_needs_a_selector_only_when_ambiguous() {
    let ks = kitchen_sink();
    let archive = ks.join("docker.tar");
    let image = Image::open(&archive.display().to_string(), &OpenOptions::default()).unwrap();
    assert_eq!(image.layers.len(), 4);
    assert!(image.manifest_digest.is_none());
    let wrong = format!("{}:chunkload/ks:other", archive.display());
    let err = Image::open(&wrong, &OpenOptions::default()).unwrap_err().to_string();
    assert!(err.contains("repo tag \"chunkload/ks:other\"") && err.contains("chunkload/ks:latest"), "{err}");
    assert_eq!(Platform::parse("linux/amd64"), Some(Platform::default_target()));
}

#[test]
fn a_layer_that_changes_between_passes_is_an_error() {
    // Flatten reads each layer once; extraction reads the live ones again. A blob swapped in
    // between (same size, other bytes) must be caught by the second read, not written out.
    let t = scratch();
    let tar = TarBuilder::new().file("a", &vec![1u8; 50_000]).file("b", b"bee").finish();
    let image_ref = LayoutBuilder::new(vec![tar.clone()], Comp::None).write(&t.path().join("img"));
    let image = Image::open(&image_ref, &OpenOptions::default()).unwrap();
    let flat = flatten::flatten(&image).unwrap();
    let blob_name = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&tar));
    let mut changed = tar.clone();
    let at = changed.len() / 3;
    changed[at] ^= 0xff;
    fs::write(t.path().join("img/blobs/sha256").join(blob_name), changed).unwrap();
    let dest = t.path().join("rootfs");
    let err = rootfs::extract(&flat.tree, &rootfs::LayerContent { image: &image }, &dest).unwrap_err();
    assert!(err.to_string().contains("layer changed between reads"), "{err}");
    assert!(!dest.exists());
}
