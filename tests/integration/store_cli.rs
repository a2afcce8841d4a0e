//! `chunkload store`: roots, copy-forward, verify and gc, and crash safety of `convert` and
//! `copy-forward` (killed with SIGKILL after varying delays, and aborted at named points through the
//! test-only `CHUNKLOAD_CRASH_AT` hook).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{chunkload, scratch};

fn oci(tag: &str) -> String {
    format!("{}:{tag}", Path::new(env!("CARGO_MANIFEST_DIR")).join("images/oci").display())
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chunkload"))
}

/// A store, a key and a place for manifests.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir).unwrap();
        chunkload().arg("keygen").arg(dir.join("key")).assert().success();
        Fixture { dir: dir.to_path_buf() }
    }
    fn store(&self) -> PathBuf {
        self.dir.join("store")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("key")
    }
    fn s(&self) -> String {
        self.store().display().to_string()
    }
    /// `convert TAG` as manifest NAME (written to DIR/NAME.m), with extra args.
    fn convert_cmd(&self, tag: &str, name: &str, extra: &[&str]) -> Command {
        let mut c = bin();
        c.args(["convert", &oci(tag), "--store", &self.s(), "--name", name, "--key"])
            .arg(self.key())
            .arg("-o")
            .arg(self.dir.join(format!("{name}.m")))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }
    fn convert(&self, tag: &str, name: &str, extra: &[&str]) {
        let st = self.convert_cmd(tag, name, extra).status().unwrap();
        assert!(st.success(), "convert {tag} as {name}: {st}");
    }
    fn store_cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = chunkload();
        c.arg("store").arg(args[0]).args(["--store", &self.s()]).args(&args[1..]);
        c
    }
    /// `store verify --json` (must succeed) parsed.
    fn verify(&self) -> serde_json::Value {
        let out = self.store_cmd(&["verify", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "verify found problems: {}", v["problems"]);
        v
    }
    fn temp_files(&self) -> usize {
        fs::read_dir(self.store().join("tmp")).unwrap().count()
    }
    fn materialize(&self, manifest: &str) -> Vec<u8> {
        let out = self.dir.join(format!("{manifest}.img"));
        chunkload()
            .args(["materialize", manifest, "--store", &self.s(), "--key"])
            .arg(self.key())
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        let bytes = fs::read(&out).unwrap();
        fs::remove_file(&out).unwrap();
        bytes
    }
}

/// Runs `cmd`, checks whether it succeeded and that its output (stdout or stderr) contains `text`.
fn says(mut cmd: assert_cmd::Command, success: bool, text: &str) {
    let out = cmd.output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.success(), success, "{all}");
    assert!(all.contains(text), "wanted {text:?} in: {all}");
}

/// Runs `cmd` with the crash hook set to `point` and expects it to die by a signal.
fn crash_at(mut cmd: Command, point: &str) {
    let st = cmd.env("CHUNKLOAD_CRASH_AT", point).status().unwrap();
    assert!(!st.success() && st.code().is_none(), "{point}: expected an abort, got {st}");
}

/// After a crash: verify finds nothing wrong (temporary files aside), gc removes those, verify
/// then lists none.
fn verify_gc_verify(f: &Fixture, what: &str) -> usize {
    let left = f.verify()["temp_files"].as_array().unwrap().len();
    assert_eq!(left, f.temp_files(), "{what}: verify lists every temporary file");
    let v: serde_json::Value =
        serde_json::from_slice(&f.store_cmd(&["gc", "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(v["temp_files"].as_array().unwrap().len(), left, "{what}");
    assert_eq!(f.temp_files(), 0, "{what}: gc removed them");
    assert!(f.verify()["temp_files"].as_array().unwrap().is_empty());
    left
}

#[test]
fn convert_killed_anywhere_leaves_a_store_that_verifies_and_converts_again_to_the_same_image() {
    let dir = scratch();
    let reference = Fixture::new(&dir.path().join("ref"));
    reference.convert("shell-tool", "img", &[]);
    let want_manifest = fs::read(reference.dir.join("img.m")).unwrap();
    let want_image = reference.materialize("img");

    // The same key for every run, so the re-converted manifest must be byte-identical.
    let points =
        ["chunk-temp:1", "chunk-temp:12", "chunk-linked:1", "chunk-linked:20", "flush", "manifest-temp"];
    let mut leftovers = Vec::new();
    for (i, point) in points.iter().enumerate() {
        let f = Fixture { dir: dir.path().join(format!("crash{i}")) };
        fs::create_dir_all(&f.dir).unwrap();
        fs::copy(reference.key(), f.key()).unwrap();
        crash_at(f.convert_cmd("shell-tool", "img", &[]), point);
        leftovers.push(verify_gc_verify(&f, point));
        f.convert("shell-tool", "img", &[]);
        assert_eq!(fs::read(f.dir.join("img.m")).unwrap(), want_manifest, "{point}");
        if i % 3 == 0 {
            assert!(f.materialize("img") == want_image, "{point}: same block image");
        }
        f.store_cmd(&["verify", "--deep", "--key"]).arg(f.key()).assert().success();
    }
    // Crashes with a chunk half-published leave its temporary file; the manifest point leaves one too.
    assert!(leftovers[0] >= 1 && leftovers[2] >= 1 && leftovers[5] >= 1, "{leftovers:?}");

    // And killed from outside at whatever point the delay hits.
    for (i, ms) in [30u64, 150, 400, 900, 1600].into_iter().enumerate() {
        let f = Fixture { dir: dir.path().join(format!("kill{i}")) };
        fs::create_dir_all(&f.dir).unwrap();
        fs::copy(reference.key(), f.key()).unwrap();
        let mut child = f.convert_cmd("shell-tool", "img", &[]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
        if f.store().join("manifests").is_dir() {
            verify_gc_verify(&f, &format!("kill after {ms} ms"));
        }
        // The kill may come after the convert finished and wrote -o: re-running then needs --force.
        f.convert("shell-tool", "img", &["--force"]);
        assert_eq!(fs::read(f.dir.join("img.m")).unwrap(), want_manifest, "kill after {ms} ms");
    }
}

#[test]
fn roots_rotate_copy_forward_expire_delete_and_gc() {
    let dir = scratch();
    let f = Fixture::new(dir.path());
    f.convert("shell-tool", "a", &[]);
    f.convert("shell-tool", "b", &["--placement", "az1"]);
    let (img_a, img_b) = (f.materialize("a"), f.materialize("b"));
    let roots = |f: &Fixture| -> serde_json::Value {
        serde_json::from_slice(&f.store_cmd(&["roots", "--json"]).output().unwrap().stdout).unwrap()
    };
    let r = roots(&f);
    assert_eq!((r["active"].as_u64(), r["roots"][0]["manifests"].as_u64()), (Some(0), Some(2)));
    let root0_bytes = r["roots"][0]["bytes"].as_u64().unwrap();
    assert_eq!(r["rotation_reupload_bytes"].as_u64().unwrap(), root0_bytes);
    assert_eq!(r["roots"][0]["chunks"], 58, "two placements: the same image twice, nothing shared");

    says(f.store_cmd(&["rotate"]), true, "root 1 is active");
    // The old root takes no new manifests; the active one does.
    let st = f.convert_cmd("shell-tool", "c", &["--salt", "default"]).status().unwrap();
    assert!(!st.success(), "a retired root's salt is refused");
    says(f.store_cmd(&["delete", "0"]), false, "root 0 is retired: cannot delete it");
    f.store_cmd(&["expire", "0"]).assert().success();
    says(f.store_cmd(&["delete", "0"]), false, "still referenced by 2 manifest(s)");
    let v: serde_json::Value =
        serde_json::from_slice(&f.store_cmd(&["verify", "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(v["problems"][0]["kind"], "manifest-on-dead-root", "expired roots raise an alarm: {v}");
    // A manifest of the expired root still reads, with a warning, and the read stops its deletion.
    let alarm = f.store().join("roots/0.alarm");
    assert!(!alarm.exists());
    let out = chunkload()
        .args(["materialize", "a", "--store", &f.s(), "--key"])
        .arg(f.key())
        .arg("-o")
        .arg(dir.path().join("expired.img"))
        .output()
        .unwrap();
    assert!(out.status.success(), "an expired root still reads");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to root 0, which has expired") && err.contains("0.alarm"), "{err}");
    assert!(fs::read(dir.path().join("expired.img")).unwrap() == img_a);
    assert!(alarm.exists(), "the read is recorded");

    // Copy-forward, interrupted after the first manifest and inside the second's chunk uploads.
    let other = dir.path().join("other-key");
    chunkload().arg("keygen").arg(&other).assert().success();
    let cf = |extra: &[&str]| {
        let mut c = bin();
        c.args(["store", "copy-forward", "--store", &f.s(), "--key"])
            .arg(f.key())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    crash_at(cf(&[]), "copy-forward-manifest");
    assert_eq!(roots(&f)["roots"][0]["manifests"], 1, "one manifest moved before the crash");
    verify_gc_verify_ignoring_alarm(&f);
    crash_at(cf(&[]), "chunk-temp:7");
    verify_gc_verify_ignoring_alarm(&f);
    // With only another customer's key, nothing moves and the run says so.
    let mut c = chunkload();
    c.args(["store", "copy-forward", "--store", &f.s(), "--key"]).arg(&other);
    says(c, false, "skipped b: none of the given keys opens it");
    assert!(cf(&[]).status().unwrap().success());
    let r = roots(&f);
    assert_eq!(r["roots"][0]["manifests"], 0);
    assert_eq!(r["roots"][1]["manifests"], 2);
    assert_eq!(r["roots"][1]["bytes"].as_u64().unwrap(), root0_bytes, "rotation re-uploads every byte");
    assert!(f.materialize("a") == img_a && f.materialize("b") == img_b, "same images under root 1");
    assert!(cf(&[]).status().unwrap().success(), "running it again is a no-op");

    says(f.store_cmd(&["delete", "0"]), false, "root 0 was read after it expired");
    fs::remove_file(&alarm).unwrap(); // the operator's word that nothing needs root 0 any more
    f.store_cmd(&["delete", "0"]).assert().success();
    f.store_cmd(&["gc", "--unreferenced", "--dry-run"]).assert().success();
    assert_eq!(roots(&f)["chunk_files"], 116, "dry run removes nothing");
    let v: serde_json::Value =
        serde_json::from_slice(&f.store_cmd(&["gc", "--unreferenced", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(v["chunks"].as_array().unwrap().len(), 58, "root 0's chunks reclaimed");
    assert_eq!(roots(&f)["chunk_files"], 58);
    f.store_cmd(&["verify", "--deep", "--key"]).arg(f.key()).assert().success();
    assert!(f.materialize("a") == img_a);
}

/// `verify_gc_verify` for a store whose expired root 0 still holds manifests (reported, expected).
fn verify_gc_verify_ignoring_alarm(f: &Fixture) {
    let out = f.store_cmd(&["verify", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in v["problems"].as_array().unwrap() {
        assert_eq!(p["kind"], "manifest-on-dead-root", "{p}");
    }
    f.store_cmd(&["gc"]).assert().success();
    assert_eq!(f.temp_files(), 0);
}

#[test]
fn verify_names_what_is_wrong_and_fails() {
    let dir = scratch();
    let f = Fixture::new(dir.path());
    f.convert("shell-tool", "a", &[]);
    let clean = f.verify();
    assert_eq!(clean["chunks_checked"], 29);
    let mut files: Vec<PathBuf> = walk(&f.store().join("chunks"));
    files.sort();
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = fs::read(&files[0]).unwrap();
    bytes[100] ^= 1;
    fs::write(&files[0], &bytes).unwrap();
    fs::remove_file(&files[1]).unwrap();
    fs::write(f.store().join("manifests/junk"), b"not a manifest").unwrap();
    let out = f.store_cmd(&["verify"]).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("chunk {}: ciphertext hashes to", name(&files[0]))), "{text}");
    assert!(text.contains(&format!("({}) is missing", name(&files[1]))), "{text}");
    assert!(text.contains("manifest junk: "), "{text}");
    // gc --unreferenced refuses while a manifest cannot be read: it could reference anything.
    says(f.store_cmd(&["gc", "--unreferenced"]), false, "manifest junk: ");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// Two writers and `gc --unreferenced` at once: the chunks an aborted run left (unreferenced, and
/// exactly the ones the writers are about to find present) are never collected under a writer.
#[test]
fn two_writers_and_gc_at_once_never_lose_a_chunk() {
    let dir = scratch();
    let f = Fixture::new(dir.path());
    // Leave 25 of shell-tool's 29 chunks published and unreferenced.
    crash_at(f.convert_cmd("shell-tool", "x", &[]), "chunk-linked:25");
    let mut writers: Vec<_> = [("shell-tool", "a"), ("sqlite-report", "b")]
        .into_iter()
        .map(|(tag, name)| f.convert_cmd(tag, name, &[]).spawn().unwrap())
        .collect();
    let mut gcs = 0;
    loop {
        let done = writers.iter_mut().all(|w| w.try_wait().unwrap().is_some());
        f.store_cmd(&["gc", "--unreferenced"]).assert().success();
        gcs += 1;
        if done {
            break;
        }
    }
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    assert!(gcs >= 2);
    let v = f.verify();
    assert!(v["problems"].as_array().unwrap().is_empty());
    f.store_cmd(&["verify", "--deep", "--key"]).arg(f.key()).assert().success();
}

/// A full filesystem: the lifecycle commands fail with an error naming the file, leave the store
/// consistent, and succeed once there is room.
#[test]
fn full_disk_is_refused_cleanly_by_the_lifecycle_commands() {
    let dir = scratch();
    let mnt = dir.path().join("small");
    fs::create_dir_all(&mnt).unwrap();
    let st =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"]).arg(&mnt).status().unwrap();
    assert!(st.success(), "mounting a tmpfs needs root");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let f = Fixture::new(&mnt);
    f.convert("shell-tool", "a", &[]);
    let filler = mnt.join("filler");
    let fill = || {
        // Writes until the filesystem is full (the error is the point).
        let mut file = fs::File::create(&filler).unwrap();
        let block = vec![1u8; 1 << 16];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
    };
    fill();
    says(f.store_cmd(&["rotate"]), false, "No space left");
    fs::remove_file(&filler).unwrap();
    f.store_cmd(&["rotate"]).assert().success();
    fill();
    let cf = || {
        let mut c = chunkload();
        c.args(["store", "copy-forward", "--store", &f.s(), "--key"]).arg(f.key());
        c
    };
    says(cf(), false, "No space left");
    f.verify();
    f.store_cmd(&["gc", "--unreferenced"]).assert().success();
    f.store_cmd(&["verify"]).assert().success();
    fs::remove_file(&filler).unwrap();
    cf().assert().success();
    f.store_cmd(&["verify", "--deep", "--key"]).arg(f.key()).assert().success();
}
