//! `chunkload trace import-strace` and `trace stats` on the committed strace fixture and real trace.

use std::path::{Path, PathBuf};

use chunkload::trace::{Access, Reader, Record};

use crate::support::{chunkload, require_tool, scratch, umoci_unpack};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces").join(name)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn import_fixture(dir: &Path) -> (serde_json::Value, PathBuf) {
    let trace = dir.join("fixture.jsonl");
    let out = chunkload()
        .args(["trace", "import-strace"])
        .arg(data("fixture-threads.strace"))
        .args(["--root", "/tmp/rootfs-realistic", "--command", "python3 fixture-threads.py", "--json", "-o"])
        .arg(&trace)
        .output()
        .unwrap();
    (json(&out), trace)
}

#[test]
fn fixture_import_keeps_and_drops_what_it_says() {
    let dir = scratch();
    let (summary, _) = import_fixture(dir.path());
    assert_eq!(summary["lines"], 760);
    assert_eq!(summary["records"], 237);
    assert_eq!(summary["threads"], 4);
    let d = &summary["dropped"];
    // The host `chroot` binary's own loading, before chroot().
    assert_eq!(d["outside_root"], 52);
    // Anonymous mmaps and the pipe.
    assert_eq!(d["not_a_file"], 25);
    assert_eq!(d["empty_reads"], 72);
    assert_eq!(d["unknown_offset"], 0);
    assert_eq!(d["other_lines"], 4);
}

#[test]
fn fixture_stats_have_the_expected_numbers() {
    let dir = scratch();
    let (_, trace) = import_fixture(dir.path());
    let s = json(&chunkload().args(["trace", "stats", "--json"]).arg(&trace).output().unwrap());
    assert_eq!(s["command"], "python3 fixture-threads.py");
    assert_eq!(s["records"], 237);
    assert_eq!(s["threads"], 4);
    assert_eq!(s["by_op"], serde_json::json!({"open": 101, "stat": 10, "exec": 0, "read": 90, "mmap": 36}));
    assert_eq!(s["files"], 107);
    assert_eq!(s["files_read"], 80);
    assert_eq!(s["bytes_read"], 1_698_124);
    assert_eq!(s["distinct_bytes_read"], 1_695_128);
    assert_eq!(s["bytes_mapped"], 10_119_074);
    assert_eq!(s["top_files"][0]["path"], "/usr/lib/python3.11/__pycache__/argparse.cpython-311.pyc");

    // The hand-made part of the fixture: a Latin-1 file name, lseek END/SET/CUR, a dup'ed
    // descriptor sharing the offset, pread64, a failed open.
    let records: Vec<Record> = Reader::open(&trace).unwrap().collect::<Result<_, _>>().unwrap();
    let caf: Vec<Access> =
        records.iter().filter(|r| r.path.as_bytes() == b"/tmp/caf\xe9").map(|r| r.access).collect();
    assert_eq!(
        caf,
        [
            Access::Open,
            Access::Read { offset: 0, len: 100 },
            Access::Read { offset: 9990, len: 10 },
            Access::Read { offset: 50, len: 7 },
            Access::Read { offset: 60, len: 1 },
            Access::Read { offset: 9000, len: 5 },
        ]
    );
    assert!(records.iter().any(|r| r.path.as_bytes() == b"/nonexistent/x.py" && r.access == Access::Stat));

    let text = chunkload().args(["trace", "stats"]).arg(&trace).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("threads   4"), "{text}");
    assert!(text.contains("/usr/lib/python3.11/__pycache__/argparse.cpython-311.pyc"), "{text}");
}

#[test]
fn committed_python_import_trace_is_plausible() {
    let path = data("python-import.jsonl");
    let s = json(&chunkload().args(["trace", "stats", "--json"]).arg(&path).output().unwrap());
    let n = |k: &str| s[k].as_u64().unwrap();
    let op = |k: &str| s["by_op"][k].as_u64().unwrap();
    assert!(op("read") > 500 && op("read") + op("mmap") > 1000, "{s}");
    assert!(n("files") > 500, "{s}");
    // pandas + pyarrow + numpy: tens of MiB of .pyc reads and hundreds of MiB of mapped .so files.
    assert!(n("bytes_read") > 10 << 20, "{s}");
    assert!(n("bytes_mapped") > 100 << 20, "{s}");
    let records: Vec<Record> = Reader::open(&path).unwrap().collect::<Result<_, _>>().unwrap();
    let mut files: Vec<&[u8]> = records.iter().map(|r| r.path.as_bytes()).collect();
    files.sort();
    files.dedup();
    let ends = |suffix: &[u8]| files.iter().filter(|f| f.ends_with(suffix)).count();
    let so = files.iter().filter(|f| f.ends_with(b".so") || f.windows(4).any(|w| w == b".so.")).count();
    assert!(ends(b".pyc") > 300, "{} .pyc files", ends(b".pyc"));
    assert!(so > 50, "{so} shared objects");
    assert!(files.iter().any(|f| f.starts_with(b"/usr/local/lib/python3.11/dist-packages/pandas/")));
    assert!(files.iter().all(|f| !f.starts_with(b"/tmp/rootfs")), "host prefix left in a path");
}

#[test]
fn a_bad_trace_is_reported_with_file_and_line() {
    let dir = scratch();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"chunkload_trace\":1,\"source\":\"x\",\"command\":\"\"}\n{\"t_us\":0,\"thread\":0,\"op\":\"read\",\"path\":\"/a\"}\n",
    )
    .unwrap();
    let out = chunkload().args(["trace", "stats"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.jsonl:2: op read needs both offset and len"), "{err}");
}

/// Imports a real strace of a program chrooted into the busybox fixture's root; returns the
/// records and the summary.
fn strace_chrooted(root: &Path, dir: &Path, name: &str, argv: &[&str]) -> (Vec<Record>, serde_json::Value) {
    let out_file = dir.join(format!("{name}.strace"));
    let status = std::process::Command::new("strace")
        .args(["-f", "-tt", "-y", "-e", "trace=openat,open,read,pread64,mmap,lseek,close,chroot", "-o"])
        .arg(&out_file)
        .args(argv)
        .current_dir(dir) // outside the root
        .output()
        .unwrap();
    assert!(status.status.success(), "{name}: {}", String::from_utf8_lossy(&status.stderr));
    let trace = dir.join(format!("{name}.jsonl"));
    let summary = json(
        &chunkload()
            .args(["trace", "import-strace", "--json", "--root"])
            .arg(root)
            .arg("-o")
            .arg(&trace)
            .arg(&out_file)
            .output()
            .unwrap(),
    );
    let records = Reader::open(&trace).unwrap().collect::<chunkload::trace::Result<Vec<_>>>().unwrap();
    (records, summary)
}

#[test]
fn a_real_strace_of_a_chrooted_busybox_reads_both_views_of_its_paths() {
    for tool in ["strace", "chroot", "python3", "umoci"] {
        require_tool(tool);
    }
    let dir = scratch();
    let image = format!("{}:plain", crate::sandbox::busybox_image().join("oci").display());
    let root = umoci_unpack(&image, &dir.path().join("bundle"));
    let root_s = root.to_str().unwrap();
    let has = |records: &[Record], path: &str, op: &str| {
        records.iter().any(|r| r.path.as_bytes() == path.as_bytes() && r.access.op().as_str() == op)
    };
    // Every opened or read path is the image's: none keeps the host prefix, none is a host file.
    let all_in_image = |records: &[Record]| {
        for r in records {
            let p = r.path.escaped();
            assert!(!p.starts_with(root_s), "host prefix kept: {p}");
            if matches!(r.access, Access::Open | Access::Read { .. }) {
                assert!(root.join(&p[1..]).exists(), "{p} is not in the image");
            }
        }
    };

    // (busybox's `cat` copies with sendfile, which strace shows as no read: `head` reads.)
    // `chroot ROOT CMD` (coreutils): the host binary loads its libraries before chroot(), then
    // chdir("/"). Descriptors show host paths (ROOT/etc/passwd), the paths asked for the
    // chroot's (/etc/passwd, /nonexistent).
    let script =
        "head -n 1 /etc/passwd > /tmp/out; ls /home > /tmp/out; cat /nonexistent 2> /tmp/err; exit 0";
    let (records, summary) =
        strace_chrooted(root.as_path(), dir.path(), "chroot", &["chroot", root_s, "/bin/sh", "-c", script]);
    assert!(has(&records, "/etc/passwd", "open") && has(&records, "/etc/passwd", "read"), "{records:?}");
    assert!(has(&records, "/home", "open"));
    assert!(has(&records, "/nonexistent", "stat"), "a failed lookup, in the chroot's view");
    assert!(summary["dropped"]["outside_root"].as_u64().unwrap() > 0, "the host chroot binary's loading");
    all_in_image(&records);

    // A chroot() without chdir("/"), as Python's os.chroot does: the working directory stays on
    // the host, so only the traced chroot() says that "/no/such" is the chroot's.
    let py = "import os, sys; os.chroot(sys.argv[1]); os.execv('/bin/sh', ['/bin/sh', '-c', 'head -n 1 /etc/group; cat /no/such; exit 0'])";
    let (records, _) =
        strace_chrooted(root.as_path(), dir.path(), "os-chroot", &["python3", "-c", py, root_s]);
    assert!(has(&records, "/etc/group", "read"), "{records:?}");
    assert!(has(&records, "/no/such", "stat"), "{records:?}");
    assert!(
        !records.iter().any(|r| r.path.escaped().contains("python3")),
        "the host python's files: {records:?}"
    );
    all_in_image(&records);
}
