//! The bad-input battery (docs/input-checks.md): every command against the everyday mistakes
//! (the wrong kind of file, an output that is an input, an existing output, inputs that do not
//! belong together, knobs out of bounds, empty files, directories for files, names with spaces
//! and non-UTF-8 bytes, a full disk, Ctrl-C midway). Each case asserts the exit code, a message
//! naming the thing and the reason, no panic and no backtrace, that nothing it should not touch
//! changed (bytes and mode) and nothing appeared beside it, and that it ran within a memory limit.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::scratch;

/// Address space each case may use: far above what a refusal needs, far below a runaway.
const MEMORY_LIMIT: u64 = 4 << 30;

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images")
}

fn image(tag: &str) -> String {
    format!("{}/oci:{tag}", images().display())
}

fn trace(tag: &str) -> PathBuf {
    images().join("traces").join(format!("{tag}.trace"))
}

/// Inputs shared by every case: two stores with one manifest each, two keys, and files of the
/// wrong kinds. Built once; cases must leave them as they were (checked).
struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl World {
    fn p(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = scratch();
        let root = dir.path().to_path_buf();
        let run = |args: &[&OsStr]| {
            let out = Command::new(env!("CARGO_BIN_EXE_chunkload")).args(args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let p = |n: &str| root.join(n);
        run(&["keygen".as_ref(), p("key").as_os_str()]);
        run(&["keygen".as_ref(), p("other.key").as_os_str()]);
        for (tag, store, out) in [("hello-py-v2", "store", "m.manifest"), ("shell-tool", "store2", "shell.manifest")] {
            run(&[
                "convert".as_ref(),
                "-q".as_ref(),
                image(tag).as_ref(),
                "--store".as_ref(),
                p(store).as_os_str(),
                "--key".as_ref(),
                p("key").as_os_str(),
                "-o".as_ref(),
                p(out).as_os_str(),
            ]);
        }
        fs::write(p("README.md"), "# chunkload\n\nModel how AWS Lambda loads container images.\n").unwrap();
        fs::set_permissions(p("README.md"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(p("empty"), "").unwrap();
        fs::create_dir(p("a dir")).unwrap();
        fs::write(p("run.strace"), "6661  01:16:34.487157 openat(AT_FDCWD</tmp>, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>\n").unwrap();
        fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/demo-region.toml"), p("fleet.toml")).unwrap();
        fs::write(p("bad-replay.toml"), "[fetch]\nnic_bandwidth = 0\n").unwrap();
        fs::write(p("replay.toml"), "seed = 7\ncpu_scale = 0.5\n[fetch]\nconcurrency = 8\n").unwrap();
        World { _dir: dir, root }
    })
}

/// Every file under `dir` with its bytes and mode: what a case must not change.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p.clone());
                out.insert(p, (Vec::new(), m.permissions().mode()));
            } else if m.is_file() {
                out.insert(p.clone(), (fs::read(&p).unwrap(), m.permissions().mode()));
            }
        }
    }
    out
}

/// One mistake: the arguments, the exit code and what the message must say.
struct Case {
    name: &'static str,
    args: Vec<OsString>,
    code: i32,
    says: Vec<&'static str>,
    /// Must not appear in the message.
    not_says: Vec<&'static str>,
}

fn case(name: &'static str, args: &[&dyn AsRef<OsStr>], code: i32, says: &[&'static str]) -> Case {
    Case {
        name,
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        code,
        says: says.to_vec(),
        not_says: Vec::new(),
    }
}

/// Runs the binary with a memory limit; returns (exit code, stderr, seconds).
fn run_limited(args: &[OsString], cwd: &Path) -> (Option<i32>, String, f64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chunkload"));
    cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.env_remove("RUST_BACKTRACE").env("RUST_LIB_BACKTRACE", "0");
    // SAFETY: setrlimit is async-signal-safe; the child has not started yet.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: MEMORY_LIMIT, rlim_max: MEMORY_LIMIT };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), start.elapsed().as_secs_f64())
}

fn check(w: &World, c: &Case) {
    let before = snapshot(&w.root);
    let (code, stderr, secs) = run_limited(&c.args, &w.root);
    let label = format!("{}: chunkload {:?}", c.name, c.args);
    assert_eq!(code, Some(c.code), "{label}: exit {code:?}, stderr:\n{stderr}");
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{label}: {bad}:\n{stderr}");
    }
    for want in &c.says {
        assert!(stderr.contains(want), "{label}: message lacks {want:?}:\n{stderr}");
    }
    for unwanted in &c.not_says {
        assert!(!stderr.contains(unwanted), "{label}: message says {unwanted:?}:\n{stderr}");
    }
    // A refusal is quick: nothing heavy ran before the check.
    assert!(secs < 60.0, "{label}: took {secs:.1}s");
    let after = snapshot(&w.root);
    for (p, was) in &before {
        assert!(after.get(p) == Some(was), "{label}: {} changed or vanished", p.display());
    }
    let new: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    // A store may gain its lock file or scratch directory on open; nothing else may appear.
    let unexpected: Vec<_> = new
        .iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "tmp" || c.as_os_str() == "lock"))
        .collect();
    assert!(unexpected.is_empty(), "{label}: files appeared: {unexpected:?}");
}

#[test]
fn every_command_refuses_everyday_mistakes_cleanly() {
    let w = world();
    let p = |n: &str| w.p(n);
    let (key, other_key, store, store2) = (p("key"), p("other.key"), p("store"), p("store2"));
    let (m, shell) = (p("m.manifest"), p("shell.manifest"));
    let (readme, empty, dir, strace, fleet, replay_sc) =
        (p("README.md"), p("empty"), p("a dir"), p("run.strace"), p("fleet.toml"), p("replay.toml"));
    let hello = image("hello-py-v2");
    let t = trace("hello-py-v2");
    let new_out = p("new.manifest");
    let cases = vec![
        // 1. Nothing overwritten by surprise.
        case(
            "convert -o the key, even with --force",
            &[&"convert", &hello, &"--store", &store, &"--key", &key, &"-o", &key, &"--force"],
            1,
            &["-o", "is the --key file", "even with --force"],
        ),
        case(
            "convert -o an existing manifest",
            &[&"convert", &hello, &"--store", &store, &"--key", &key, &"-o", &m],
            1,
            &["already exists", "--force"],
        ),
        case(
            "convert -o inside the store",
            &[&"convert", &hello, &"--store", &store, &"--key", &key, &"-o", &store.join("x")],
            1,
            &["inside the chunk store"],
        ),
        case(
            "convert -o a directory",
            &[&"convert", &hello, &"--store", &store, &"--key", &key, &"-o", &dir],
            1,
            &["is a directory"],
        ),
        case(
            "convert -o under a file",
            &[&"convert", &hello, &"--store", &store, &"--key", &key, &"-o", &readme.join("m")],
            1,
            &["README.md is a file, not a directory"],
        ),
        case(
            "keygen over an existing key",
            &[&"keygen", &key],
            1,
            &["already exists", "refusing to overwrite"],
        ),
        case("keygen over a README", &[&"keygen", &readme], 1, &["already exists"]),
        case(
            "trace synth -o an existing file",
            &[&"trace", &"synth", &"--image", &hello, &"-o", &readme],
            1,
            &["already exists"],
        ),
        case(
            "trace import-strace -o its input",
            &[&"trace", &"import-strace", &strace, &"--root", &"/", &"-o", &strace, &"--force"],
            1,
            &["is the strace output"],
        ),
        case(
            "replay --timeline over the trace",
            &[
                &"replay",
                &m,
                &"--store",
                &store,
                &"--key",
                &key,
                &"--trace",
                &t,
                &"--timeline",
                &t,
                &"--force",
            ],
            1,
            &["--timeline", "is the trace"],
        ),
        case(
            "materialize -o the manifest",
            &[&"materialize", &m, &"--store", &store, &"--key", &key, &"-o", &m, &"--force"],
            1,
            &["is the manifest"],
        ),
        case(
            "extract into the store",
            &[&"extract", &hello, &store.join("x")],
            1,
            &["inside the chunk store"],
        ),
        case("extract into a file", &[&"extract", &hello, &readme], 1, &["not a directory"]),
        // 2. Knobs validated where they are parsed.
        case(
            "convert --chunk-size 1",
            &[&"convert", &hello, &"--store", &store, &"--key", &key, &"-o", &new_out, &"--chunk-size", &"1"],
            2,
            &["invalid chunk size 1B", "4KiB to 16MiB"],
        ),
        case(
            "convert --chunk-size 300KiB",
            &[
                &"convert",
                &hello,
                &"--store",
                &store,
                &"--key",
                &key,
                &"-o",
                &new_out,
                &"--chunk-size",
                &"300KiB",
            ],
            2,
            &["power of two"],
        ),
        case(
            "explain --chunk-size 512 (a forgotten unit)",
            &[&"explain", &hello, &"--trace", &t, &"--chunk-size", &"512"],
            2,
            &["invalid chunk size 512B"],
        ),
        case(
            "replay --cpu-scale -1",
            &[&"replay", &m, &"--store", &store, &"--key", &key, &"--trace", &t, &"--cpu-scale=-1"],
            2,
            &["scale -1 is outside 0 ..= 1000"],
        ),
        case(
            "replay --seed coffee",
            &[&"replay", &m, &"--store", &store, &"--key", &key, &"--trace", &t, &"--seed", &"coffee"],
            2,
            &["seed \"coffee\" is not a decimal or 0x-hex"],
        ),
        case(
            "trace synth --read-share 2",
            &[&"trace", &"synth", &"--image", &hello, &"-o", &new_out, &"--read-share", &"2"],
            2,
            &["fraction 2 is outside 0 ..= 1"],
        ),
        case(
            "simulate --set l2.nodes=0",
            &[&"simulate", &"--set", &"l2.nodes=0", &"--print-scenario"],
            1,
            &["l2.nodes=0", "below the minimum 1"],
        ),
        case(
            "simulate --set l1.memory_capacity=2048TiB",
            &[&"simulate", &"--set", &"l1.memory_capacity=2048TiB", &"--print-scenario"],
            1,
            &["l1.memory_capacity=2048TiB", "above the maximum 1024TiB"],
        ),
        case(
            "sweep --grid fetch.concurrency=0",
            &[
                &"sweep",
                &"--manifest",
                &m,
                &"--store",
                &store,
                &"--key",
                &key,
                &"--trace",
                &t,
                &"--grid",
                &"fetch.concurrency=0,16",
                &"--out",
                &p("sweep-out"),
            ],
            1,
            &["fetch.concurrency=0", "below the minimum 1"],
        ),
        case(
            "a README as the replay scenario",
            &[&"replay", &m, &"--store", &store, &"--key", &key, &"--trace", &t, &"--scenario", &readme],
            1,
            &["README.md", "TOML"],
        ),
        case(
            "a replay scenario with nic_bandwidth = 0",
            &[
                &"replay",
                &m,
                &"--store",
                &store,
                &"--key",
                &key,
                &"--trace",
                &t,
                &"--scenario",
                &p("bad-replay.toml"),
            ],
            1,
            &["bad-replay.toml", "bandwidth 0B/s is below the minimum 1KB/s"],
        ),
        // 3. Files recognised before they are parsed.
        case(
            "explain MANIFEST without --key",
            &[&"explain", &m, &"--trace", &t],
            1,
            &["sealed chunkload manifest", "--key KEYFILE", "--store DIR"],
        ),
        case(
            "convert a manifest as the image",
            &[&"convert", &m, &"--store", &store, &"--key", &key, &"-o", &new_out],
            1,
            &["is not an image", "sealed chunkload manifest"],
        ),
        case("inspect a text file", &[&"inspect", &readme], 1, &["is not an image", "a text file"]),
        case("inspect an empty file", &[&"inspect", &empty], 1, &["is not an image", "an empty file"]),
        case(
            "a README as the key",
            &[&"replay", &m, &"--store", &store, &"--key", &readme, &"--trace", &t],
            1,
            &["is not a customer key", "a text file"],
        ),
        case(
            "a manifest as the trace",
            &[&"replay", &m, &"--store", &store, &"--key", &key, &"--trace", &m],
            1,
            &["is not a chunkload trace", "sealed chunkload manifest"],
        ),
        case(
            "strace output as the trace",
            &[&"trace", &"stats", &strace],
            1,
            &["strace output", "import-strace"],
        ),
        case(
            "a trace as strace output",
            &[&"trace", &"import-strace", &t, &"--root", &"/", &"-o", &new_out],
            1,
            &["is not strace output", "a chunkload trace"],
        ),
        case("a directory as the trace", &[&"trace", &"stats", &dir], 1, &["a dir", "a directory"]),
        case("an empty trace", &[&"trace", &"stats", &empty], 1, &["an empty file"]),
        case(
            "a key as the store",
            &[&"replay", &m, &"--store", &key, &"--key", &key, &"--trace", &t],
            1,
            &["is not a chunk store", "customer key"],
        ),
        case(
            "a text file as the manifest",
            &[&"manifest", &"show", &readme],
            1,
            &["is not a sealed manifest"],
        ),
        // 4. Inputs that do not belong together.
        case(
            "a trace of another image",
            &[&"replay", &shell, &"--store", &store2, &"--key", &key, &"--trace", &t],
            1,
            &["does not belong to", "of the", "files it reads", "are missing from the image"],
        ),
        case(
            "a manifest from another store",
            &[&"replay", &m, &"--store", &store2, &"--key", &key, &"--trace", &t],
            1,
            &["does not belong to the chunk store", "looked up are not there"],
        ),
        case(
            "a key that did not seal the manifest",
            &[&"replay", &m, &"--store", &store, &"--key", &other_key, &"--trace", &t],
            1,
            &["failed authentication under the key in", "another customer key"],
        ),
        case(
            "a fleet scenario for replay",
            &[&"replay", &m, &"--store", &store, &"--key", &key, &"--trace", &t, &"--scenario", &fleet],
            1,
            &["is not a replay scenario", "a fleet scenario", "simulate --scenario"],
        ),
        case(
            "a replay scenario for simulate",
            &[&"simulate", &"--scenario", &replay_sc, &"--print-scenario"],
            1,
            &["is not a fleet scenario", "a replay scenario"],
        ),
        case(
            "a replay scenario for the fleet sweep",
            &[
                &"sweep",
                &"--experiment",
                &"fleet",
                &"--scenario",
                &replay_sc,
                &"--grid",
                &"l2.nodes=2,4",
                &"--out",
                &p("sweep-out"),
            ],
            1,
            &["is not a fleet scenario"],
        ),
    ];
    let mut cases = cases;
    // A README given as a key is told it is not a key, not to chmod it.
    cases.iter_mut().find(|c| c.name == "a README as the key").unwrap().not_says = vec!["chmod"];
    for c in &cases {
        check(w, c);
    }
}

#[test]
fn names_with_spaces_and_non_utf8_bytes_work_and_are_shown() {
    let dir = scratch();
    let key = dir.path().join("my key");
    let odd = dir.path().join(OsStr::from_bytes(b"out-\xff.manifest"));
    let store = dir.path().join("a store");
    let run = |args: &[&OsStr]| Command::new(env!("CARGO_BIN_EXE_chunkload")).args(args).output().unwrap();
    let out = run(&["keygen".as_ref(), key.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[
        "convert".as_ref(),
        "-q".as_ref(),
        image("shell-tool").as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
        "-o".as_ref(),
        odd.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(odd.is_file());
    assert_eq!(fs::metadata(&odd).unwrap().permissions().mode() & 0o777, 0o644);
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // Again: refused, and the name is shown (lossily) in the message.
    let out = run(&[
        "convert".as_ref(),
        image("shell-tool").as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
        "-o".as_ref(),
        odd.as_os_str(),
    ]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("out-\u{fffd}.manifest") && e.contains("already exists"), "{e}");
}

/// Mounts a tmpfs of `size` at `dir`; the guard unmounts it.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(st.success(), "mounting a tmpfs needs root (the test suite runs as root): {st}");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_leaves_nothing_half_written() {
    let dir = scratch();
    let full = dir.path().join("full");
    let _fs = Tmpfs::mount(&full, "64k");
    // Fill it to the last byte.
    let filler = full.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let block = vec![7u8; 4096];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    let before = snapshot(&full);
    let w = world();
    let cases = [
        case("keygen on a full disk", &[&"keygen", &full.join("k")], 1, &["No space left on device"]),
        case(
            "trace synth on a full disk",
            &[&"trace", &"synth", &"--image", &image("shell-tool"), &"-o", &full.join("t.trace")],
            1,
            &["t.trace", "No space left on device"],
        ),
    ];
    for c in &cases {
        let (code, stderr, _) = run_limited(&c.args, dir.path());
        assert_eq!(code, Some(1), "{}: {stderr}", c.name);
        assert!(!stderr.contains("panicked"), "{}: {stderr}", c.name);
        for want in &c.says {
            assert!(stderr.contains(want), "{}: lacks {want:?}: {stderr}", c.name);
        }
        assert_eq!(snapshot(&full), before, "{}: something was left on the full disk", c.name);
    }
    // A manifest whose -o is on the full disk: the store keeps the chunks; -o is not half there.
    let store = dir.path().join("store");
    let args: Vec<OsString> = [
        OsString::from("convert"),
        image("shell-tool").into(),
        "--store".into(),
        store.clone().into(),
        "--key".into(),
        w.p("key").into(),
        "-o".into(),
        full.join("m").into(),
    ]
    .into();
    let (code, stderr, _) = run_limited(&args, dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device") && stderr.contains("m"), "{stderr}");
    assert_eq!(snapshot(&full), before);
}

#[test]
fn ctrl_c_midway_leaves_no_output_and_a_store_that_verifies() {
    let dir = scratch();
    let w = world();
    let store = dir.path().join("store");
    let out = dir.path().join("m.manifest");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chunkload"))
        .args(["convert", &image("json-api")])
        .arg("--store")
        .arg(&store)
        .arg("--key")
        .arg(w.p("key"))
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the store exists (work has started), then interrupt.
    let t0 = Instant::now();
    while !store.join("chunks").exists() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: signalling a child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    if status.success() {
        // The run was faster than the signal: then the output is complete.
        assert!(out.is_file());
    } else {
        assert!(!out.exists(), "an interrupted convert left -o behind");
    }
    let beside: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(beside.is_empty(), "staging files left: {beside:?}");
    let v = Command::new(env!("CARGO_BIN_EXE_chunkload"))
        .args(["store", "verify", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(v.status.success(), "the interrupted store verifies: {}", String::from_utf8_lossy(&v.stdout));
}
