//! Bad input: malformed, truncated, tampered and hostile images. Each must give a clear error
//! naming the image, layer and entry (exit code 1, never a panic), or resolve safely inside the
//! root as umoci does; never write outside DEST, never leave a DEST that looks complete.

use std::fs;
use std::path::Path;

use crate::support::{Comp, LayoutBuilder, TarBuilder, chunkload, names_in, scratch};

/// Runs `chunkload extract` and expects failure with every `needles` in stderr; DEST must not exist
/// afterwards and nothing but the image and DEST may be beside it.
fn extract_fails(image: &str, work: &Path, needles: &[&str]) -> String {
    let before = names_in(work);
    let dest = work.join("dest");
    let out = chunkload().arg("extract").arg(image).arg(&dest).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a clean failure, got {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}: {stderr}");
    }
    assert!(!dest.exists(), "DEST was left behind after a failure");
    assert_eq!(names_in(work), before, "files appeared beside DEST");
    stderr
}

/// Extracts successfully and returns the destination.
fn extract_ok(image: &str, work: &Path) -> std::path::PathBuf {
    let dest = work.join("dest");
    chunkload().arg("extract").arg("-q").arg(image).arg(&dest).assert().success();
    dest
}

fn simple_tar() -> Vec<u8> {
    TarBuilder::new().dir("etc").file("etc/hosts", b"127.0.0.1 localhost\n").finish()
}

fn layout(work: &Path, b: &LayoutBuilder) -> String {
    b.write(&work.join("img"))
}

#[test]
fn malformed_index_json() {
    let t = scratch();
    let image = layout(t.path(), &LayoutBuilder::new(vec![simple_tar()], Comp::Gzip));
    fs::write(t.path().join("img/index.json"), b"{ not json").unwrap();
    extract_fails(&image, t.path(), &["index.json is malformed"]);
}

#[test]
fn malformed_config_json() {
    let t = scratch();
    let mut b = LayoutBuilder::new(vec![simple_tar()], Comp::Gzip);
    b.config_hook = Box::new(|c| c["rootfs"] = serde_json::json!("oops"));
    let image = layout(t.path(), &b);
    extract_fails(&image, t.path(), &["config sha256:", "is malformed"]);
}

#[test]
fn missing_layer_blob() {
    let t = scratch();
    let b = LayoutBuilder::new(vec![simple_tar()], Comp::Gzip);
    let image = layout(t.path(), &b);
    let blob = crate::support::compress(&simple_tar(), Comp::Gzip);
    let name = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob));
    fs::remove_file(t.path().join("img/blobs/sha256").join(name)).unwrap();
    extract_fails(&image, t.path(), &["layer 0 blob sha256:", "is missing"]);
}

#[test]
fn layer_digest_mismatch() {
    let t = scratch();
    let good = crate::support::compress(&simple_tar(), Comp::Gzip);
    let other = crate::support::compress(&TarBuilder::new().file("evil", b"x").finish(), Comp::Gzip);
    let mut b = LayoutBuilder::new(vec![simple_tar()], Comp::Gzip);
    // Same size so the size check passes and the digest check must catch it.
    let mut swapped = other.clone();
    swapped.resize(good.len(), 0);
    b.blob_swap = Some((0, swapped));
    let image = layout(t.path(), &b);
    extract_fails(&image, t.path(), &["layer 0", "digest mismatch"]);
}

#[test]
fn layer_size_mismatch() {
    let t = scratch();
    let mut b = LayoutBuilder::new(vec![simple_tar()], Comp::Gzip);
    b.manifest_hook = Box::new(|m| m["layers"][0]["size"] = serde_json::json!(12345));
    let image = layout(t.path(), &b);
    extract_fails(&image, t.path(), &["layer 0", "size mismatch", "12345"]);
}

#[test]
fn diff_id_mismatch() {
    let t = scratch();
    let mut b = LayoutBuilder::new(vec![simple_tar()], Comp::Gzip);
    b.config_hook = Box::new(|c| {
        c["rootfs"]["diff_ids"][0] =
            serde_json::json!("sha256:0000000000000000000000000000000000000000000000000000000000000000")
    });
    let image = layout(t.path(), &b);
    extract_fails(&image, t.path(), &["layer 0", "rootfs.diff_ids"]);
}

#[test]
fn tampered_manifest_blob() {
    let t = scratch();
    let image = layout(t.path(), &LayoutBuilder::new(vec![simple_tar()], Comp::Gzip));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(t.path().join("img/index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap()[7..].to_string();
    let path = t.path().join("img/blobs/sha256").join(digest);
    let mut bytes = fs::read(&path).unwrap();
    let i = bytes.iter().position(|&b| b == b'2').unwrap();
    bytes[i] = b'3';
    fs::write(&path, bytes).unwrap();
    extract_fails(&image, t.path(), &["manifest sha256:", "digest mismatch"]);
}

#[test]
fn truncated_gzip() {
    let t = scratch();
    let tar = TarBuilder::new().file("big", &vec![7u8; 200_000]).finish();
    let good = crate::support::compress(&tar, Comp::Gzip);
    let mut b = LayoutBuilder::new(vec![tar], Comp::Gzip);
    // The descriptor matches the truncated blob: only the stream itself is broken.
    let truncated = good[..good.len() / 2].to_vec();
    let len = truncated.len();
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&truncated)));
    b.blob_swap = Some((0, truncated));
    b.manifest_hook = Box::new(move |m| {
        m["layers"][0]["size"] = serde_json::json!(len);
        m["layers"][0]["digest"] = serde_json::json!(digest.clone());
    });
    let image = layout(t.path(), &b);
    // The blob was swapped under its original name; write it under the new digest too.
    let blobs = t.path().join("img/blobs/sha256");
    let original = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&good));
    let moved = fs::read(blobs.join(&original)).unwrap();
    let new_name = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&moved));
    fs::write(blobs.join(new_name), moved).unwrap();
    extract_fails(&image, t.path(), &["layer 0", "corrupt gzip stream"]);
}

/// Writes a layout whose single layer blob is `blob` as given, declared with `media`, with a
/// config diff_id of `diff_id_of`'s hash.
fn raw_layer_image(work: &Path, blob: &[u8], media: &str, diff_id_of: &[u8]) -> String {
    let dir = work.join("img");
    let mut b = LayoutBuilder::new(vec![diff_id_of.to_vec()], Comp::None);
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(blob)));
    let (len, media, d2) = (blob.len(), media.to_string(), digest.clone());
    b.manifest_hook = Box::new(move |m| {
        m["layers"][0] = serde_json::json!({"mediaType": media, "digest": d2, "size": len});
    });
    let image = b.write(&dir);
    fs::write(dir.join("blobs/sha256").join(&digest[7..]), blob).unwrap();
    image
}

#[test]
fn corrupt_zstd() {
    let t = scratch();
    let tar = TarBuilder::new().file("f", &vec![1u8; 100_000]).finish();
    let mut blob = crate::support::compress(&tar, Comp::Zstd);
    let mid = blob.len() / 2;
    for b in &mut blob[mid..mid + 16] {
        *b ^= 0xa5;
    }
    let image = raw_layer_image(t.path(), &blob, "application/vnd.oci.image.layer.v1.tar+zstd", &tar);
    extract_fails(&image, t.path(), &["layer 0", "corrupt zstd stream"]);
}

#[test]
fn undetectable_corruption_is_caught_by_the_diff_id() {
    // zstd without a content checksum decodes corruption into garbage: the tar reader trips on it,
    // and the diff_id check names the real cause.
    let t = scratch();
    let tar = TarBuilder::new().file("f", &vec![1u8; 100_000]).finish();
    let mut blob = zstd::encode_all(&tar[..], 1).unwrap();
    let at = blob.len() - 8;
    blob[at] ^= 0xff;
    let image = raw_layer_image(t.path(), &blob, "application/vnd.oci.image.layer.v1.tar+zstd", &tar);
    extract_fails(&image, t.path(), &["layer 0"]);
}

#[test]
fn not_a_tar() {
    let t = scratch();
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let image = raw_layer_image(t.path(), &junk, "application/vnd.oci.image.layer.v1.tar", &junk);
    extract_fails(&image, t.path(), &["layer 0", "not a valid tar stream"]);
}

#[test]
fn unsupported_media_type() {
    let t = scratch();
    let tar = simple_tar();
    let image = raw_layer_image(t.path(), &tar, "application/vnd.oci.image.layer.v1.tar+bzip2", &tar);
    extract_fails(&image, t.path(), &["unsupported media type", "bzip2"]);
}

#[test]
fn decompression_bomb_is_stopped_at_the_limit() {
    let t = scratch();
    let tar = TarBuilder::new().file("zeros", &vec![0u8; 8 << 20]).finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    let dest = t.path().join("dest");
    let out =
        chunkload().args(["extract", "--max-uncompressed", "1MiB"]).arg(&image).arg(&dest).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("decompression bomb") && stderr.contains("1MiB"), "{stderr}");
    assert!(!dest.exists());
    // The same image is fine under the default (Lambda's 10 GiB).
    extract_ok(&image, t.path());
}

#[test]
fn dotdot_and_absolute_paths_stay_inside_the_root() {
    let t = scratch();
    let tar = TarBuilder::new()
        .file("../../../escape-dotdot", b"a")
        .file("/abs/escape-abs", b"b")
        .file("ok/../../still-inside", b"c")
        .finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    let dest = extract_ok(&image, t.path());
    assert_eq!(fs::read(dest.join("escape-dotdot")).unwrap(), b"a");
    assert_eq!(fs::read(dest.join("abs/escape-abs")).unwrap(), b"b");
    assert_eq!(fs::read(dest.join("still-inside")).unwrap(), b"c");
    assert_eq!(names_in(t.path()), ["dest", "img"].map(String::from).into());
}

#[test]
fn writes_through_symlinks_resolve_inside_the_root() {
    let t = scratch();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let layer0 = TarBuilder::new()
        .symlink("abs", &outside.display().to_string())
        .symlink("rel", "../../../../../../..")
        .symlink("etc", "/host-etc")
        .finish();
    // A later layer writes through the links: they must be followed as if / were DEST.
    let layer1 = TarBuilder::new()
        .file("abs/pwned", b"1")
        .file("rel/pwned-rel", b"2")
        .file("etc/passwd", b"3")
        .finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![layer0, layer1], Comp::Gzip));
    let dest = extract_ok(&image, t.path());
    assert!(names_in(&outside).is_empty(), "wrote into a directory outside DEST");
    let inside = dest.join(outside.strip_prefix("/").unwrap()).join("pwned");
    assert_eq!(fs::read(inside).unwrap(), b"1");
    assert_eq!(fs::read(dest.join("pwned-rel")).unwrap(), b"2");
    assert_eq!(fs::read(dest.join("host-etc/passwd")).unwrap(), b"3");
    // The symlinks themselves are kept as the image has them.
    assert_eq!(fs::read_link(dest.join("rel")).unwrap(), Path::new("../../../../../../.."));
}

#[test]
fn hard_links_cannot_reach_outside_the_root() {
    let t = scratch();
    // Target resolves to DEST/etc/passwd, which the image does not have: an error, not a host link.
    let tar = TarBuilder::new().hardlink("stolen", "../../../../etc/passwd").finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    extract_fails(
        &image,
        t.path(),
        &["layer 0", "entry \"stolen\"", "hard link target \"etc/passwd\" does not exist"],
    );

    // When the image has its own etc/passwd, the link names that one.
    let t = scratch();
    let tar = TarBuilder::new()
        .file("etc/passwd", b"image passwd\n")
        .hardlink("stolen", "../../../../etc/passwd")
        .finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    let dest = extract_ok(&image, t.path());
    assert_eq!(fs::read(dest.join("stolen")).unwrap(), b"image passwd\n");
}

#[test]
fn hard_link_to_a_directory_is_refused() {
    let t = scratch();
    let tar = TarBuilder::new().dir("d").hardlink("l", "d").finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    extract_fails(&image, t.path(), &["entry \"l\"", "is a directory"]);
}

#[test]
fn symlink_loops_are_an_error() {
    let t = scratch();
    let tar = TarBuilder::new().symlink("a", "b").symlink("b", "a").file("a/x", b"x").finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    extract_fails(&image, t.path(), &["entry \"a/x\"", "too many levels of symbolic links"]);
}

#[test]
fn file_in_place_of_a_parent_is_an_error() {
    let t = scratch();
    let tar = TarBuilder::new().file("f", b"x").file("f/child", b"y").finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    extract_fails(&image, t.path(), &["entry \"f/child\"", "parent \"f\" is not a directory"]);
}

#[test]
fn duplicate_entries_last_one_wins() {
    let t = scratch();
    let tar = TarBuilder::new()
        .file("dup", b"first")
        .file("dup", b"second")
        .symlink("s", "a")
        .file("s", b"file")
        .finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    let dest = extract_ok(&image, t.path());
    assert_eq!(fs::read(dest.join("dup")).unwrap(), b"second");
    assert!(fs::symlink_metadata(dest.join("s")).unwrap().is_file());
}

#[test]
fn very_deep_paths_are_refused_clearly() {
    let t = scratch();
    let deep = "d/".repeat(2100) + "leaf";
    let tar = TarBuilder::new().file(&deep, b"x").finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    extract_fails(&image, t.path(), &["layer 0", "path is longer than 4096 bytes"]);
}

#[test]
fn deep_but_legal_paths_work() {
    let t = scratch();
    let deep = "abcdefg/".repeat(200) + "leaf";
    let tar = TarBuilder::new().file(&deep, b"deep").finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    let dest = extract_ok(&image, t.path());
    assert_eq!(fs::read(dest.join(&deep)).unwrap(), b"deep");
}

#[test]
fn bad_whiteout_names_are_refused() {
    let t = scratch();
    let tar = TarBuilder::new().file("d/.wh...", b"").finish();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    extract_fails(&image, t.path(), &["invalid whiteout name"]);
}

#[test]
fn not_an_image() {
    let t = scratch();
    fs::create_dir(t.path().join("empty")).unwrap();
    extract_fails(
        &t.path().join("empty").display().to_string(),
        t.path(),
        &["not an image", "no index.json"],
    );
    fs::write(t.path().join("junk.tar"), vec![0x42u8; 3000]).unwrap();
    extract_fails(&t.path().join("junk.tar").display().to_string(), t.path(), &["not an image"]);
    extract_fails(&t.path().join("nope").display().to_string(), t.path(), &["nope", "cannot read"]);
}

#[test]
fn unknown_tag_lists_what_is_there() {
    let t = scratch();
    let image = layout(t.path(), &LayoutBuilder::new(vec![simple_tar()], Comp::Gzip));
    let wrong = image.replace(":t", ":nope");
    extract_fails(&wrong, t.path(), &["no image matches tag \"nope\"", "available: t"]);
}

#[test]
fn destination_must_be_empty() {
    let t = scratch();
    let image = layout(t.path(), &LayoutBuilder::new(vec![simple_tar()], Comp::Gzip));
    let dest = t.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("precious"), b"keep me").unwrap();
    let out = chunkload().arg("extract").arg(&image).arg(&dest).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and is not empty"));
    assert_eq!(names_in(&dest), ["precious".to_string()].into());
    // An existing empty directory is fine.
    fs::remove_file(dest.join("precious")).unwrap();
    chunkload().arg("extract").arg("-q").arg(&image).arg(&dest).assert().success();
    assert!(dest.join("etc/hosts").is_file());
}

#[test]
fn empty_numeric_header_fields_read_as_zero() {
    // Some writers leave uid, gid and mtime empty; Go's archive/tar (umoci, containerd) reads 0.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o640);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let t = scratch();
    let image = layout(t.path(), &LayoutBuilder::new(vec![tar], Comp::Gzip));
    let dest = extract_ok(&image, t.path());
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dest.join("f")).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mtime(), meta.mode() & 0o7777), (0, 0, 0, 0o640));
}
