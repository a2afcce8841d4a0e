//! `trace record`'s sandbox, tested as an attack: programs that try to reach the host from inside
//! (a host block device, /proc/1/root, a chroot escape, mknod, mount, a nested user namespace,
//! signalling a host process, the host's loopback network, forking and allocating without end)
//! must fail, leave the host and the store as they were, and be reported as the program's
//! failure. Plus: the image's own Entrypoint/Cmd/User/WorkingDir/Env start it. Needs root and
//! /dev/fuse, like the mount tests; busybox-static and umoci build the image.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{build_fixture, chunkload, require_tool, scratch};

fn require_root_and_fuse() {
    assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: trace record needs FUSE");
    assert!(rustix::process::geteuid().is_root(), "trace record needs root (CI runs the tests as root)");
    require_tool("fusermount3");
}

/// tests/fixtures/busybox.sh's image, built once per test run.
pub(crate) fn busybox_image() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_fixture("busybox", &["umoci", "busybox"], &[]))
}

fn image(tag: &str) -> String {
    format!("{}:{tag}", busybox_image().join("oci").display())
}

/// Runs `chunkload trace record SOURCE -o TRACE EXTRA... [-- CMD...]`; asserts that nothing it
/// mounted is left behind.
fn record(source: &str, trace: &Path, extra: &[&str], cmd: &[&str]) -> Output {
    require_root_and_fuse();
    let mut c = Command::new(env!("CARGO_BIN_EXE_chunkload"));
    c.args(["trace", "record", source, "-o"]).arg(trace).args(extra);
    if !cmd.is_empty() {
        c.arg("--").args(cmd);
    }
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let work = format!("chunkload-record-{}/", child.id());
    let out = child.wait_with_output().unwrap();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&work), "left mounted under {work}:\n{mounts}");
    out
}

/// Runs `script` with the image's busybox sh as root (the worst case: root in the image) and
/// asserts that trace record reports it as the program's failure, keeping the trace.
fn attack(script: &str, extra: &[&str]) -> (String, String) {
    let t = scratch();
    let trace = t.path().join("attack.jsonl");
    let out = record(&image("plain"), &trace, extra, &["sh", "-c", script]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!out.status.success(), "the attack succeeded:\n{stdout}\n{stderr}");
    assert!(stderr.contains("failed (exit status: "), "not reported as the program's failure:\n{stderr}");
    assert!(
        chunkload::trace::Reader::open(&trace).unwrap().count() > 0,
        "the trace of the failed run is kept"
    );
    (stdout, stderr)
}

#[test]
fn without_a_command_the_image_config_starts_the_program_as_its_user_and_the_header_says_so() {
    let t = scratch();
    let trace = t.path().join("bb.jsonl");
    let out = record(&image("bb"), &trace, &[], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("hi hello from 1000:1000 groups 1000 50 in /home/app home /home/app"),
        "{stdout}"
    );
    let header = chunkload::trace::Reader::open(&trace).unwrap().header().clone();
    assert_eq!(header.chunkload_trace, 3);
    let run = header.run.unwrap();
    assert_eq!(run.argv, ["/bin/sh", "/start.sh", "hello"]);
    assert_eq!(
        (run.uid, run.gid, run.working_dir.as_str(), run.origin.as_str()),
        (1000, 1000, "/home/app", "image")
    );
    assert_eq!(header.command, "/bin/sh /start.sh hello");

    // `-- CMD` replaces Cmd and keeps the Entrypoint, as `docker run IMAGE CMD` does.
    let out = record(&image("bb"), &trace, &["--env", "GREETING=hey", "--force"], &["world"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hey world from 1000:1000"));
    let run = chunkload::trace::Reader::open(&trace).unwrap().header().run.clone().unwrap();
    assert_eq!(run.argv, ["/bin/sh", "/start.sh", "world"]);
    assert_eq!(run.origin, "command line");
}

#[test]
fn an_image_without_a_command_and_none_given_is_refused_clearly() {
    let t = scratch();
    let out = record(&image("plain"), &t.path().join("x.jsonl"), &[], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configures no Entrypoint or Cmd"), "{stderr}");
    assert!(!t.path().join("x.jsonl").exists());
}

#[test]
fn the_program_sees_only_a_minimal_dev_its_own_pids_and_no_capability_to_administer() {
    let t = scratch();
    let script = "ls /dev | tr '\\n' ' '; echo; ls /proc | grep -c '^[0-9]'; grep CapBnd /proc/self/status; \
                  hostname; cat /proc/sys/user/max_user_namespaces";
    let out = record(&image("plain"), &t.path().join("d.jsonl"), &[], &["sh", "-c", script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0].trim(), "fd full null random shm stderr stdin stdout tty urandom zero", "{stdout}");
    assert!(lines[1].parse::<u32>().unwrap() <= 4, "processes of the host are visible:\n{stdout}");
    // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(lines[2], "CapBnd:\t00000000a80425fb", "{stdout}");
    assert_eq!((lines[3], lines[4]), ("chunkload", "0"), "{stdout}");
}

#[test]
fn attack_open_a_host_block_device() {
    let host_dev = fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
        .find(|d| Path::new(d).exists())
        .expect("the host has a block device");
    let script = format!("dd if={host_dev} of=/dev/null bs=512 count=1 && exit 0; exit 1");
    let (_, stderr) = attack(&script, &[]);
    assert!(stderr.contains("No such file"), "{stderr}");
}

#[test]
fn attack_write_outside_the_root_through_proc_1_root_and_the_store_is_untouched() {
    let t = scratch();
    // A manifest and store on the host: their paths, written through /proc/1/root, must not be.
    let key = t.path().join("key");
    chunkload().arg("keygen").arg(&key).assert().success();
    let (store, manifest) = (t.path().join("store"), t.path().join("bb.manifest"));
    chunkload()
        .args(["convert", &image("plain"), "--store"])
        .arg(&store)
        .arg("--key")
        .arg(&key)
        .arg("-o")
        .arg(&manifest)
        .assert()
        .success();
    let snapshot = |dir: &Path| {
        let mut v: Vec<(PathBuf, Vec<u8>)> =
            walk(dir).into_iter().map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
        v.sort();
        v
    };
    let before = snapshot(&store);
    let marker = t.path().join("escaped");
    let script = format!(
        "echo x > /proc/1/root{m} || echo x > /proc/self/root{m}; \
         for f in $(find /proc/1/root{s} 2>/dev/null); do echo x > $f; done; \
         mkdir -p /proc/1/root{s} && echo x > /proc/1/root{s}/chunks && test -e {m}",
        m = marker.display(),
        s = store.display()
    );
    let trace = t.path().join("t.jsonl");
    let out = record(
        manifest.to_str().unwrap(),
        &trace,
        &["--store", store.to_str().unwrap(), "--key", key.to_str().unwrap()],
        &["sh", "-c", &script],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed (exit status: 1)"));
    assert!(!marker.exists(), "a file appeared on the host");
    assert_eq!(snapshot(&store), before, "the store changed");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn attack_leave_a_chroot_of_its_own_through_dot_dot() {
    // The classic escape, in the CPython image: keep a descriptor of /, chroot into a
    // subdirectory, fchdir back out, walk up with `..` and chroot to where that ends. Outside a
    // chroot that reaches the real root; after pivot_root there is nothing above the image.
    let t = scratch();
    let marker = t.path().join("chroot-escaped");
    let script = format!(
        "import os\n\
         os.makedirs('/tmp/j', exist_ok=True)\n\
         fd = os.open('/', os.O_RDONLY)\n\
         os.chroot('/tmp/j')\n\
         os.fchdir(fd)\n\
         for _ in range(64): os.chdir('..')\n\
         os.chroot('.')\n\
         print(sorted(os.listdir('/')))\n\
         open({m:?}, 'w').write('out')\n",
        m = marker.display().to_string()
    );
    let image = format!("{}:py", crate::mount::python_image().join("oci").display());
    let out = record(&image, &t.path().join("c.jsonl"), &[], &["python3", "-c", &script]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    // It got as far as the image's own root, which has no host paths.
    assert!(stdout.contains("'usr'") && !stdout.contains("'work'"), "{stdout}\n{stderr}");
    assert!(stderr.contains("FileNotFoundError") && stderr.contains("failed (exit status: 1)"), "{stderr}");
    assert!(!marker.exists(), "a file appeared on the host");
}

#[test]
fn attack_mknod_a_device() {
    let (_, stderr) =
        attack("mknod /tmp/disk b 254 0 && exit 0; mknod /tmp/mem c 1 1 && exit 0; exit 1", &[]);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}

#[test]
fn attack_mount_something_directly_or_in_a_nested_user_namespace() {
    let (_, stderr) = attack(
        "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && exit 0; mount -t proc proc /tmp/m && exit 0; \
         unshare -U -r -m sh -c 'mount -t tmpfs none /tmp/m' && exit 0; exit 1",
        &[],
    );
    assert!(stderr.contains("unshare"), "{stderr}");
}

#[test]
fn attack_write_the_hosts_sysrq_trigger() {
    attack("echo h > /proc/sysrq-trigger && exit 0; exit 1", &[]);
}

#[test]
fn attack_signal_a_host_process() {
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = sleeper.id();
    let (_, stderr) = attack(&format!("kill -9 {pid} && exit 0; kill -9 -1; exit 1"), &[]);
    assert!(stderr.contains("No such process"), "{stderr}");
    assert!(sleeper.try_wait().unwrap().is_none(), "the host's sleep was killed");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn attack_connect_to_a_host_listener_on_loopback_and_network_host_does_reach_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let script = format!("echo hi | nc -w 2 127.0.0.1 {port} && exit 0; exit 1");
    let (_, stderr) = attack(&script, &[]);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(listener.accept().is_err(), "a connection reached the host");
    // The flag that opens it: the same program reaches the listener (accepted and closed here,
    // so that nc sees the end of the connection).
    listener.set_nonblocking(false).unwrap();
    let accepter = std::thread::spawn(move || listener.accept().map(|(stream, _)| drop(stream)));
    let t = scratch();
    let out =
        record(&image("plain"), &t.path().join("n.jsonl"), &["--network", "host"], &["sh", "-c", &script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(accepter.join().unwrap().is_ok(), "--network host did not reach the listener");
}

#[test]
fn attack_fork_without_end_stops_at_the_process_limit_and_leaves_nothing_running() {
    let started = Instant::now();
    // Root in the image: the kernel exempts uid 0 from RLIMIT_NPROC, so the pids cgroup is what
    // stops this (busybox sh gives up at the first refused fork).
    let (_, stderr) =
        attack("i=0; while [ $i -lt 100 ]; do sleep 100 & i=$((i+1)); done; exit 1", &["--pids", "40"]);
    assert!(stderr.contains("can't fork"), "{stderr}");
    assert!(stderr.contains("the process limit (--pids) refused"), "{stderr}");
    // PID 1 exiting kills its namespace: no `sleep 100` is left holding the run.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn attack_allocate_without_end_stops_at_the_memory_limit() {
    let (_, stderr) =
        attack("dd if=/dev/zero of=/dev/null bs=200M count=1 && exit 0; exit 1", &["--memory", "64MiB"]);
    assert!(stderr.contains("memory") || stderr.contains("alloc"), "{stderr}");
}

#[test]
fn attack_fill_memory_across_tmpfs_and_processes_is_stopped_by_the_cgroup() {
    // Each piece is under the per-process and per-tmpfs bounds; together they pass --memory.
    let (_, stderr) = attack(
        "dd if=/dev/zero of=/dev/shm/a bs=1M count=40 && dd if=/dev/zero of=/tmp/b bs=1M count=40 && exit 0; exit 1",
        &["--memory", "64MiB"],
    );
    assert!(
        stderr.contains("the memory limit (--memory) was reached")
            || stderr.contains("killed at the memory limit"),
        "{stderr}"
    );
    assert!(stderr.contains("cgroup pids, memory"), "{stderr}");
}

#[test]
fn a_program_past_its_wall_time_is_killed_with_a_clear_message() {
    let t = scratch();
    let started = Instant::now();
    let out = record(&image("plain"), &t.path().join("s.jsonl"), &["--timeout", "2"], &["sleep", "100"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("killed at the wall-time limit of 2 s (--timeout)"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
}
