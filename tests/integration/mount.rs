//! Real mode: converted images mounted with FUSE (`chunkload mount`) and traced through it
//! (`chunkload trace record`). Needs root and /dev/fuse (CI has both; .ci/run installs fuse3):
//! without them these tests fail, they never skip.

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chunkload::crypto::ManifestPublic;
use sha2::{Digest, Sha256};

use crate::support::{build_fixture, chunkload, family, kitchen_sink, require_tool, scratch, snapshot};

fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: the mount tests need FUSE (modprobe fuse; in a container, --device /dev/fuse)"
    );
    assert!(rustix::process::geteuid().is_root(), "the mount tests need root (CI runs them as root)");
    require_tool("fusermount3");
}

/// A converted image: store, key and manifest.
struct Converted {
    store: PathBuf,
    key: PathBuf,
    manifest: PathBuf,
}

fn convert(root: &Path, image: &str) -> Converted {
    let key = root.join("key");
    chunkload().arg("keygen").arg(&key).assert().success();
    let c = Converted { store: root.join("store"), key, manifest: root.join("image.manifest") };
    chunkload()
        .args(["convert", image, "--store"])
        .arg(&c.store)
        .arg("--key")
        .arg(&c.key)
        .arg("-o")
        .arg(&c.manifest)
        .assert()
        .success();
    c
}

impl Converted {
    fn with_flags<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.arg(&self.manifest).arg("--store").arg(&self.store).arg("--key").arg(&self.key)
    }

    fn extract(&self, dest: &Path) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_chunkload"));
        c.args(["extract", "-q"]);
        let out = self.with_flags(&mut c).arg(dest).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn is_mounted(path: &Path) -> bool {
    let want = path.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A running `chunkload mount`. Dropping it (also when a test fails) ends it with SIGTERM and, if
/// it hangs, kills it and detaches the mount, so a failing test never leaves a mount behind.
struct Mount {
    child: Option<Child>,
    point: PathBuf,
}

impl Mount {
    fn start(image: &Converted, point: &Path, extra: &[&str]) -> Mount {
        require_fuse();
        fs::create_dir_all(point).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_chunkload"));
        c.arg("mount");
        image.with_flags(&mut c).arg(point).args(["--json"]).args(extra);
        let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut m = Mount { child: Some(child), point: point.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(point) {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                let (_, err) = m.output();
                panic!("chunkload mount exited early ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "the mount did not appear within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn output(&mut self) -> (String, String) {
        let child = self.child.as_mut().unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (out, err)
    }

    /// SIGTERM, then the unmount report (JSON) and the log (stderr). Asserts a clean exit.
    fn stop(mut self) -> (serde_json::Value, String) {
        let pid = rustix::process::Pid::from_child(self.child.as_ref().unwrap());
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let (out, err) = self.output();
        let status = self.child.as_mut().unwrap().wait().unwrap();
        self.child = None;
        assert!(status.success(), "mount exited with {status}: {err}");
        assert!(!is_mounted(&self.point), "still mounted after SIGTERM");
        (serde_json::from_str(&out).unwrap_or_else(|e| panic!("report {out:?}: {e}")), err)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(&self.point) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.point).status();
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
    }
}

#[test]
fn a_mount_serves_every_file_and_its_metadata_like_extract() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:ks", kitchen_sink().join("oci").display()));
    let extracted = t.path().join("extracted");
    image.extract(&extracted);
    let mount = Mount::start(&image, &t.path().join("mnt"), &[]);
    let (from_mount, from_extract) = (snapshot(&mount.point), snapshot(&extracted));
    assert_eq!(from_mount.entries.len(), from_extract.entries.len());
    for (path, want) in &from_extract.entries {
        let got = from_mount.entries.get(path).unwrap_or_else(|| panic!("{path:?} missing in the mount"));
        assert_eq!(got, want, "{}", String::from_utf8_lossy(path));
    }
    assert_eq!(from_mount.link_groups, from_extract.link_groups, "hard links share an inode");
    // Writes are refused: the mount is read-only.
    assert!(fs::write(mount.point.join("etc/passwd"), b"x").is_err());
    let (report, _) = mount.stop();
    assert_eq!(report["loader"]["failures"], 0, "{report}");
    assert!(report["loader"]["store_fetches"].as_u64().unwrap() > 0, "{report}");
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every regular file under `root` (relative path -> bytes hash).
fn file_hashes(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push((
                    e.path().strip_prefix(root).unwrap().to_path_buf(),
                    sha(&fs::read(e.path()).unwrap()),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn many_threads_reading_at_once_get_the_right_bytes_and_each_chunk_is_fetched_once() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:app-a2", family().join("oci").display()));
    let extracted = t.path().join("extracted");
    image.extract(&extracted);
    let want = file_hashes(&extracted);
    let chunks = ManifestPublic::parse(&fs::read(&image.manifest).unwrap()).unwrap().chunks.len() as u64;
    let mount = Mount::start(&image, &t.path().join("mnt"), &["--threads", "4"]);
    std::thread::scope(|s| {
        for worker in 0..16usize {
            let (point, want) = (&mount.point, &want);
            s.spawn(move || {
                // Each thread walks the files from a different start, reading in odd-sized pieces at
                // offsets that straddle chunk boundaries.
                for k in 0..want.len() {
                    let (rel, hash) = &want[(k + worker) % want.len()];
                    let f = fs::File::open(point.join(rel)).unwrap();
                    let len = f.metadata().unwrap().len();
                    let mut bytes = vec![0u8; len as usize];
                    let piece = 4096 * (worker as u64 + 1) + 123;
                    let mut at = 0;
                    while at < len {
                        let n =
                            f.read_at(&mut bytes[at as usize..(at + piece).min(len) as usize], at).unwrap();
                        assert!(n > 0, "short read of {} at {at}", rel.display());
                        at += n as u64;
                    }
                    assert_eq!(&sha(&bytes), hash, "{} read by thread {worker}", rel.display());
                }
            });
        }
    });
    let (report, _) = mount.stop();
    let l = &report["loader"];
    // The memory tier holds the whole image, so a chunk that is fetched twice was loaded twice
    // concurrently: single flight must prevent that.
    assert!(l["store_fetches"].as_u64().unwrap() <= chunks, "{report}");
    assert_eq!(l["failures"], 0, "{report}");
}

/// Flips one byte of the stored ciphertext of chunk `index`.
fn corrupt_chunk(image: &Converted, index: u32) {
    let public = ManifestPublic::parse(&fs::read(&image.manifest).unwrap()).unwrap();
    let hex = public.find(index).expect("chunk is stored").name.to_hex();
    let path = image.store.join("chunks").join(&hex[0..2]).join(&hex[2..4]).join(&hex);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0x55;
    fs::write(&path, bytes).unwrap();
}

#[test]
fn a_corrupt_chunk_fails_its_reads_with_eio_and_the_mount_survives() {
    let t = scratch();
    // usr/lib/libbase.so (3 MB) follows etc/os-release (one block) at the start of the data
    // region: chunk 2 (1 to 1.5 MiB of the image) holds nothing else.
    let image = convert(t.path(), &format!("{}:base", family().join("oci").display()));
    corrupt_chunk(&image, 2);
    let mount = Mount::start(&image, &t.path().join("mnt"), &[]);
    let lib = mount.point.join("usr/lib/libbase.so");
    for _ in 0..2 {
        // Twice: a failed load is not cached; the second read fails the same way.
        let err = fs::read(&lib).expect_err("a corrupt chunk must not be served");
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    // Bytes past the corrupt chunk, other files and metadata still read.
    let f = fs::File::open(&lib).unwrap();
    let mut tail = [0u8; 4096];
    f.read_exact_at(&mut tail, 4 * 512 * 1024).unwrap();
    assert_eq!(fs::read_to_string(mount.point.join("etc/os-release")).unwrap(), "base\n");
    assert!(fs::read_dir(mount.point.join("usr/lib")).unwrap().count() > 40);
    // `f` is still open: stopping a busy mount detaches it instead of failing.
    let (report, log) = mount.stop();
    assert!(log.contains("is busy"), "{log}");
    drop(f);
    assert!(report["loader"]["failures"].as_u64().unwrap() >= 2, "{report}");
    assert!(
        log.contains("read of /usr/lib/libbase.so") && log.contains("chunk 2"),
        "log says what failed: {log}"
    );
}

#[test]
fn a_missing_chunk_is_an_io_error_too() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:base", family().join("oci").display()));
    let public = ManifestPublic::parse(&fs::read(&image.manifest).unwrap()).unwrap();
    let hex = public.find(1).unwrap().name.to_hex();
    fs::remove_file(image.store.join("chunks").join(&hex[0..2]).join(&hex[2..4]).join(&hex)).unwrap();
    let mount = Mount::start(&image, &t.path().join("mnt"), &[]);
    let err = fs::read(mount.point.join("usr/lib/libbase.so")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    let (_, log) = mount.stop();
    assert!(log.contains("not in the store"), "{log}");
}

#[test]
fn a_warm_disk_cache_serves_a_second_mount_without_the_store() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:dep-a", family().join("oci").display()));
    let cache = t.path().join("cache");
    let args = ["--cache-dir", cache.to_str().unwrap(), "--cache-size", "64MiB"];
    let first = Mount::start(&image, &t.path().join("mnt"), &args);
    let want = file_hashes(&first.point);
    let (cold, _) = first.stop();
    let second = Mount::start(&image, &t.path().join("mnt"), &args);
    assert_eq!(file_hashes(&second.point), want);
    let (warm, _) = second.stop();
    assert!(cold["loader"]["store_fetches"].as_u64().unwrap() > 0, "{cold}");
    assert_eq!(warm["loader"]["store_fetches"], 0, "{warm}");
    assert_eq!(warm["loader"]["disk_hits"], cold["loader"]["store_fetches"], "{warm}");
}

#[test]
fn a_disk_cache_smaller_than_the_image_evicts_and_still_serves_the_right_bytes() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:app-a1", family().join("oci").display()));
    let extracted = t.path().join("extracted");
    image.extract(&extracted);
    let cache = t.path().join("cache");
    let args = [
        "--cache-dir",
        cache.to_str().unwrap(),
        "--cache-size",
        "1MiB",
        "--memory-size",
        "512KiB",
        "--policy",
        "s3-fifo",
    ];
    let mount = Mount::start(&image, &t.path().join("mnt"), &args);
    assert_eq!(file_hashes(&mount.point), file_hashes(&extracted));
    let on_disk: u64 = fs::read_dir(&cache).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(on_disk <= 1024 * 1024, "the disk cache holds {on_disk} bytes, over its 1 MiB bound");
    let (report, _) = mount.stop();
    assert!(report["loader"]["disk"]["evictions"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["disk_policy"], "s3-fifo");
}

#[test]
fn mount_refuses_a_missing_mountpoint_and_a_bad_key_clearly() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:base", family().join("oci").display()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_chunkload"));
    c.arg("mount");
    let out = image.with_flags(&mut c).arg(t.path().join("nowhere")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an existing directory"));
    let other = t.path().join("other-key");
    chunkload().arg("keygen").arg(&other).assert().success();
    fs::create_dir(t.path().join("mnt")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chunkload"))
        .arg("mount")
        .arg(&image.manifest)
        .arg("--store")
        .arg(&image.store)
        .arg("--key")
        .arg(&other)
        .arg(t.path().join("mnt"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("manifest"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&t.path().join("mnt")));
}

/// A small image with a real CPython 3.11 from Debian's packages, built once per test run by
/// tests/fixtures/python.sh (the .debs are cached in the target dir across runs).
pub(crate) fn python_image() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let debs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debs");
        build_fixture("python", &["umoci", "dpkg-deb"], &[("DEB_CACHE", &debs)])
    })
}

/// Runs `chunkload trace record IMAGE -o TRACE -- CMD...`; asserts that everything it mounted
/// is gone afterwards.
fn record(image: &str, trace: &Path, extra: &[&str], cmd: &[&str]) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_chunkload"))
        .args(["trace", "record", image, "-o"])
        .arg(trace)
        .args(extra)
        .arg("--")
        .args(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let work = format!("chunkload-record-{}/", child.id());
    let out = child.wait_with_output().unwrap();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&work), "left mounted under {work}:\n{mounts}");
    out
}

#[test]
fn trace_record_captures_a_real_python_start_and_the_trace_replays() {
    require_fuse();
    let t = scratch();
    let image = format!("{}:py", python_image().join("oci").display());
    let trace = t.path().join("py.jsonl");
    let out = record(
        &image,
        &trace,
        &[],
        &["python3", "-c", "import json, sqlite3; print(json.dumps(sqlite3.sqlite_version))"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("recorded"), "{stderr}");
    let records: Vec<chunkload::trace::Record> =
        chunkload::trace::Reader::open(&trace).unwrap().collect::<Result<_, _>>().unwrap();
    let header = chunkload::trace::Reader::open(&trace).unwrap().header().clone();
    assert_eq!(header.source, "fuse");
    assert_eq!(header.chunkload_trace, 3, "FUSE recordings say when each request was answered");
    assert!(header.command.starts_with("python3 -c 'import json, sqlite3;"), "{}", header.command);
    assert!(records.iter().all(|r| r.done_us.is_some_and(|d| d >= r.t_us)));
    let served: u64 = records.iter().map(|r| r.done_us.unwrap() - r.t_us).sum();
    assert!(served > 0, "a cold mount spends time serving requests");
    let read = |p: &str| {
        records.iter().any(|r| {
            r.path.as_bytes() == p.as_bytes() && matches!(r.access, chunkload::trace::Access::Read { .. })
        })
    };
    // The interpreter and the shared libraries the kernel maps: strace sees no reads of these.
    for p in [
        "/usr/bin/python3.11",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/python3.11/lib-dynload/_sqlite3.cpython-311-x86_64-linux-gnu.so",
        "/usr/lib/python3.11/json/__init__.py",
    ] {
        assert!(read(p), "no read of {p} in the trace");
    }
    assert!(records.iter().any(|r| r.path.as_bytes() == b"/usr/lib/python3.11/json"), "lookups are recorded");

    // The recorded trace replays on the same image converted into a store.
    let image = convert(t.path(), &image);
    let mut c = Command::new(env!("CARGO_BIN_EXE_chunkload"));
    c.arg("replay");
    let out = image
        .with_flags(&mut c)
        .arg("--trace")
        .arg(&trace)
        .args(["--json", "--l1", "cold"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("recorded through the FUSE mount"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["scenario"]["guest"]["read_ahead_pages"], 0, "no guest read-ahead on the kernel's");
    // The default L2 is warm: every chunk the start needs comes from the AZ cache.
    let fetched = report["lazy"]["by_tier"]["az-cache"]["chunks"].as_u64();
    assert!(fetched.is_some_and(|n| n >= 10), "{}", report["lazy"]);
}

#[test]
fn trace_record_reports_a_failing_command_and_still_cleans_up() {
    require_fuse();
    let t = scratch();
    let image = format!("{}:py", python_image().join("oci").display());
    let trace = t.path().join("fail.jsonl");
    let out = record(&image, &trace, &[], &["python3", "-c", "import no_such_module"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed") && stderr.contains("exit status: 1"), "{stderr}");
    assert!(
        chunkload::trace::Reader::open(&trace).unwrap().count() > 0,
        "the trace of the failed run is kept"
    );
}

#[test]
fn injected_latency_makes_a_store_fetch_wait_like_s3() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:base", family().join("oci").display()));
    let scenario = t.path().join("slow.toml");
    let mut sc = chunkload::replay::Scenario { seed: 7, ..Default::default() };
    sc.latency.s3_get = chunkload::sim::LatencyDist::Fixed(chunkload::sim::SimDuration::from_millis(400));
    fs::write(&scenario, sc.to_toml()).unwrap();
    let args = ["--inject-latency", "s3", "--scenario", scenario.to_str().unwrap()];
    let mount = Mount::start(&image, &t.path().join("mnt"), &args);
    let lib = fs::File::open(mount.point.join("usr/lib/libbase.so")).unwrap();
    let mut page = [0u8; 4096];
    let started = Instant::now();
    lib.read_exact_at(&mut page, 2 * 512 * 1024).unwrap(); // one chunk nobody has read yet
    let first = started.elapsed();
    let started = Instant::now();
    lib.read_exact_at(&mut page, 2 * 512 * 1024 + 8192).unwrap(); // same chunk: memory tier
    let again = started.elapsed();
    drop(lib);
    let (report, _) = mount.stop();
    assert!(first >= Duration::from_millis(400), "a store fetch took {first:?}, under the injected 400 ms");
    assert!(again < Duration::from_millis(400), "a memory hit waited {again:?}");
    assert_eq!(report["injected_latency"], "s3");
    assert_eq!(report["seed"], 7);
}

#[test]
fn trace_record_gives_the_command_a_clean_environment_and_a_writable_tmp() {
    require_fuse();
    let t = scratch();
    let image = format!("{}:py", python_image().join("oci").display());
    let trace = t.path().join("env.jsonl");
    let script = "import os; assert sorted(os.environ) == ['FOO', 'HOME', 'LC_CTYPE', 'PATH'] or \
                  sorted(os.environ) == ['FOO', 'HOME', 'PATH'], sorted(os.environ); \
                  assert os.environ['FOO'] == 'bar=baz'; open('/tmp/x', 'w').write('ok'); \
                  assert open('/proc/self/cmdline').read().startswith('python3')";
    let out = record(&image, &trace, &["--env", "FOO=bar=baz"], &["python3", "-c", script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<chunkload::trace::Record> =
        chunkload::trace::Reader::open(&trace).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(
        !records.iter().any(|r| r.path.as_bytes().starts_with(b"/root/.")),
        "host PATH entries leaked into the trace"
    );
}

#[test]
fn trace_record_of_a_missing_program_fails_clearly_and_leaves_no_trace() {
    require_fuse();
    let t = scratch();
    let image = format!("{}:py", python_image().join("oci").display());
    let trace = t.path().join("none.jsonl");
    let out = record(&image, &trace, &[], &["no-such-program"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-program") && stderr.contains("No such file"), "{stderr}");
    assert!(!trace.exists(), "a run that never started leaves no trace file");
}

/// The mount options of the mount at `path`, from /proc/self/mountinfo.
fn mount_options(path: &Path) -> Vec<String> {
    let want = path.to_string_lossy().into_owned();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info.lines().find(|l| l.split(' ').nth(4) == Some(want.as_str())).expect("mounted");
    line.split(' ').nth(5).unwrap().split(',').map(String::from).collect()
}

#[test]
fn a_mount_is_nosuid_and_nodev_unless_asked_for_suid_and_dev() {
    let t = scratch();
    let image = convert(t.path(), &format!("{}:base", family().join("oci").display()));
    let point = t.path().join("mnt");
    let mount = Mount::start(&image, &point, &[]);
    let opts = mount_options(&point);
    assert!(opts.contains(&"nosuid".into()) && opts.contains(&"nodev".into()), "{opts:?}");
    mount.stop();
    let mount = Mount::start(&image, &point, &["--suid", "--dev"]);
    let opts = mount_options(&point);
    assert!(!opts.contains(&"nosuid".into()) && !opts.contains(&"nodev".into()), "{opts:?}");
    mount.stop();
}

/// The largest regular file under `root`, and its size.
fn largest_file(root: &Path) -> (PathBuf, u64) {
    let mut best = (PathBuf::new(), 0);
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                dirs.push(e.path());
            } else if m.is_file() && m.len() > best.1 {
                best = (e.path().strip_prefix(root).unwrap().to_path_buf(), m.len());
            }
        }
    }
    best
}

#[test]
fn a_sequential_cold_read_loads_ahead_on_the_workers_and_random_reads_do_not() {
    let t = scratch();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/oci");
    let image = convert(t.path(), &format!("{}:hello-py", images.display()));
    let extracted = t.path().join("extracted");
    image.extract(&extracted);
    let (rel, len) = largest_file(&extracted);
    assert!(len > 4 * 512 * 1024, "{} is too small to span several chunks", rel.display());
    let want = fs::read(extracted.join(&rel)).unwrap();
    // Sequential, in the kernel's pieces: the default window loads ahead on the workers.
    let mount = Mount::start(&image, &t.path().join("mnt"), &["--prefetch-workers", "2"]);
    let got = fs::read(mount.point.join(&rel)).unwrap();
    assert!(got == want, "{} read through the mount differs", rel.display());
    let (report, _) = mount.stop();
    let l = &report["loader"];
    assert!(l["read_ahead"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        (report["read_ahead_chunks"].as_u64(), report["prefetch_workers"].as_u64()),
        (Some(8), Some(2))
    );
    assert_eq!(l["failures"], 0, "{report}");
    // Reads that jump about (every third chunk, backwards) never trigger it.
    let mount = Mount::start(&image, &t.path().join("mnt"), &[]);
    let f = fs::File::open(mount.point.join(&rel)).unwrap();
    let chunk = 512 * 1024;
    let mut at = (len - 1) / chunk * chunk;
    loop {
        let mut buf = vec![0u8; 4096.min((len - at) as usize)];
        f.read_exact_at(&mut buf, at).unwrap();
        assert!(buf == want[at as usize..at as usize + buf.len()], "at {at}");
        if at < 3 * chunk {
            break;
        }
        at -= 3 * chunk;
    }
    drop(f);
    let (report, _) = mount.stop();
    assert_eq!(report["loader"]["read_ahead"], 0, "{report}");
    // And `--read-ahead-chunks 0` turns it off.
    let mount = Mount::start(&image, &t.path().join("mnt"), &["--read-ahead-chunks", "0"]);
    assert!(fs::read(mount.point.join(&rel)).unwrap() == want);
    let (report, _) = mount.stop();
    assert_eq!(
        (report["loader"]["read_ahead"].as_u64(), report["read_ahead_chunks"].as_u64()),
        (Some(0), Some(0))
    );
}
