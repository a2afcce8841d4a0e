//! A real one-node SLURM cluster (Debian's slurm-wlm and munge, installed by
//! scripts/install-tools.sh): the test writes a minimal slurm.conf into a temporary directory,
//! starts munged, slurmctld and slurmd on it, and runs docs/sweeps.md's recipe,
//! scripts/slurm-sweep.sh: a fleet sweep as `sbatch --array` with `--shard auto`, then the
//! dependent merge job. The merged files must be those of one unsharded run, byte for byte; a
//! task killed midway and resubmitted must give the same bytes too. The daemons (and anything the
//! jobs left running) are killed when the cluster is dropped, on success or on a failed assert.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::{dir_files, require_tool};

/// The fleet sweep both tests run: 4 points of tests/fixtures/tiny-region.toml in 3 shards
/// (shard 1 holds points 0 and 3, shard 2 point 1, shard 3 point 2).
const GRID: &str = "l2.node_capacity=100MiB,300MiB;chunk_size=256KiB,1MiB";
const SHARDS: usize = 3;

/// One cluster at a time: two would halve each other's two cores and share a hostname.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A daemon in its own process group, killed (the whole group) when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on a process group this test created; no memory is involved.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A running one-node cluster. Dropping it kills the daemons, then every process that carries
/// this cluster's tag in its environment (job scripts, `chunkload` tasks, slurmstepd).
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    tag: String,
    daemons: Vec<Daemon>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Controller last: slurmd first so that it stops launching steps.
        while let Some(d) = self.daemons.pop() {
            drop(d);
        }
        for _ in 0..3 {
            if kill_tagged(&self.tag) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The variable every process of a test cluster carries (daemons get it at spawn, jobs through
/// sbatch's default `--export=ALL`).
const TAG_VAR: &str = "CHUNKLOAD_TEST_SLURM";

/// SIGKILLs the processes whose environment holds `TAG_VAR=tag`; returns how many it found.
fn kill_tagged(tag: &str) -> usize {
    let want = format!("{TAG_VAR}={tag}");
    tagged(&want)
        .into_iter()
        .map(|pid| {
            // SAFETY: kill(2) on a process found by its environment; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
        .count()
}

/// Processes whose environment holds the entry `want` (`NAME=value`).
fn tagged(want: &str) -> Vec<libc::pid_t> {
    tagged_all(&[want])
}

/// Processes whose environment holds every entry of `want`.
fn tagged_all(want: &[&str]) -> Vec<libc::pid_t> {
    let me = std::process::id() as libc::pid_t;
    let Ok(procs) = fs::read_dir("/proc") else { return Vec::new() };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let mut env = Vec::new();
            fs::File::open(format!("/proc/{pid}/environ"))
                .and_then(|mut f| f.read_to_end(&mut env))
                .is_ok_and(|_| want.iter().all(|w| env.split(|&b| b == 0).any(|entry| entry == w.as_bytes())))
        })
        .collect()
}

/// A daemon's path: /usr/sbin's when it is there (a non-login PATH may lack /usr/sbin).
fn sbin(daemon: &str) -> String {
    let p = format!("/usr/sbin/{daemon}");
    if Path::new(&p).exists() { p } else { daemon.to_string() }
}

fn which(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn short_hostname() -> String {
    let o = Command::new("hostname").arg("-s").output().expect("hostname -s");
    assert!(o.status.success(), "hostname -s failed");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A file's last lines, for failure messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    format!("--- {} ---\n{}", path.display(), all[all.len().saturating_sub(lines)..].join("\n"))
}

impl Cluster {
    fn start() -> Cluster {
        for tool in ["sbatch", "sinfo", "squeue", "scancel", "scontrol"] {
            require_tool(tool);
        }
        for daemon in ["munged", "slurmctld", "slurmd"] {
            assert!(
                Path::new(&sbin(daemon)).exists() || which(daemon),
                "{daemon} is required for this test (apt-get install -y slurm-wlm munge); .ci/run installs it"
            );
        }
        // Under /tmp rather than target/: a unix socket's path must stay short.
        let dir = tempfile::Builder::new().prefix("chunkload-slurm-").tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let tag = root.display().to_string();
        for sub in ["munge", "state", "spool", "log", "jobs"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        // munge: its own key, socket, pid and seed files (no /etc/munge, no /run/munge).
        let munge = root.join("munge");
        fs::set_permissions(&munge, fs::Permissions::from_mode(0o755)).unwrap();
        let key = munge.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
        fs::write(&key, &bytes).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).unwrap();
        let socket = munge.join("munge.socket");
        let mut cluster = Cluster { conf: root.join("slurm.conf"), dir, tag, daemons: Vec::new() };
        let m = |name: &str| format!("--{name}={}", munge.join(name.replace("-file", "")).display());
        cluster.spawn(
            "munged",
            Command::new(sbin("munged")).args([
                "--foreground".to_string(),
                "--force".to_string(),
                format!("--key-file={}", key.display()),
                format!("--socket={}", socket.display()),
                m("pid-file"),
                m("log-file"),
                m("seed-file"),
            ]),
        );
        cluster.wait_for("munged's socket", Duration::from_secs(20), || socket.exists());

        let host = short_hostname();
        let (ctld_port, d_port) = (free_port(), free_port());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let p = |rel: &str| root.join(rel).display().to_string();
        let conf = format!(
            "# Written by tests/integration/slurm.rs: one node, this host (by its loopback address, so
# that no name needs resolving), everything in {root}.
ClusterName=chunkloadtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={ctld_pid}
SlurmdPidFile={d_pid}
SlurmctldLogFile={ctld_log}
SlurmdLogFile={d_log}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
",
            root = root.display(),
            socket = socket.display(),
            state = p("state"),
            spool = p("spool"),
            ctld_pid = p("slurmctld.pid"),
            d_pid = p("slurmd.pid"),
            ctld_log = p("log/slurmctld.log"),
            d_log = p("log/slurmd.log"),
        );
        fs::write(&cluster.conf, conf).unwrap();
        // No cgroup plugin is used (proctrack/linuxproc, task/none); slurmd still reads this file.
        fs::write(root.join("cgroup.conf"), "CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n").unwrap();
        let c = cluster.conf.clone();
        cluster.spawn("slurmctld", Command::new(sbin("slurmctld")).arg("-D").arg("-f").arg(&c));
        cluster.spawn("slurmd", Command::new(sbin("slurmd")).arg("-D").arg("-f").arg(&c));
        let tag = cluster.tag.clone();
        cluster.wait_for("the node to be idle in sinfo", Duration::from_secs(90), || {
            let o = Command::new("sinfo")
                .env("SLURM_CONF", &c)
                .env(TAG_VAR, &tag)
                .args(["-h", "-N", "-o", "%T"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).trim() == "idle"
        });
        cluster
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let log = fs::File::create(self.root().join(format!("log/{name}.out"))).unwrap();
        let child = cmd
            .env(TAG_VAR, &self.tag)
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push(Daemon { name, child });
    }

    /// Polls `ready` until it holds; past `limit`, fails with the daemons' logs.
    fn wait_for(&mut self, what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            let exited = self
                .daemons
                .iter_mut()
                .find_map(|d| d.child.try_wait().ok().flatten().map(|status| (d.name, status)));
            if let Some((name, status)) = exited {
                panic!("{name} exited ({status}) while waiting for {what}\n{}", self.logs());
            }
            assert!(start.elapsed() < limit, "no {what} after {limit:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        let mut out = Vec::new();
        for name in ["munged.out", "slurmctld.out", "slurmd.out", "slurmctld.log", "slurmd.log"] {
            out.push(tail(&self.root().join("log").join(name), 15));
        }
        if let Ok(jobs) = fs::read_dir(self.root().join("jobs")) {
            for e in jobs.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".out")) {
                out.push(tail(&e.path(), 10));
            }
        }
        out.join("\n")
    }

    /// A SLURM client command aimed at this cluster, run from its jobs directory with the
    /// recipe's settings in its environment (sbatch exports them to the jobs).
    fn client(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.env("SLURM_CONF", &self.conf)
            .env(TAG_VAR, &self.tag)
            .env("OUT", self.out())
            .env("GRID", GRID)
            .env("SCENARIO", repo("tests/fixtures/slurm-region.toml"))
            .env("CHUNKLOAD", env!("CARGO_BIN_EXE_chunkload"))
            .env_remove("SHARDS")
            .current_dir(self.root().join("jobs"));
        c
    }

    fn out(&self) -> PathBuf {
        self.root().join("out")
    }

    /// Runs a client command; fails with the cluster's logs unless it succeeds.
    fn ok(&self, cmd: &mut Command) -> String {
        let o: Output = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{cmd:?}: {}\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `sbatch` of the recipe script with `args`; `--parsable` prints the job id.
    fn sbatch(&self, args: &[&str]) -> String {
        // A time limit, so that a stuck job fails the test instead of hanging it.
        let out = self.ok(self
            .client("sbatch")
            .args(["--parsable", "--time=10"])
            .args(args)
            .arg(repo("scripts/slurm-sweep.sh")));
        out.trim().split(';').next().unwrap().to_string()
    }

    /// Fails, with the logs, unless every task of job `id` completed (exit 0). `sbatch --wait`
    /// alone is not enough: it returns 0 for a job cancelled before it ran, and it may return
    /// while the job is still COMPLETING, so this first waits for a final state.
    fn assert_completed(&mut self, id: &str) {
        const FINAL: &[&str] = &[
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
            "BOOT_FAIL",
            "DEADLINE",
            "PREEMPTED",
        ];
        let mut cmd = self.client("scontrol");
        cmd.args(["-o", "show", "job", id]);
        let mut out = String::new();
        let states = |out: &str| -> Vec<String> {
            out.split_whitespace().filter_map(|w| w.strip_prefix("JobState=")).map(String::from).collect()
        };
        self.wait_for(&format!("job {id} to reach a final state"), Duration::from_secs(120), || {
            out = cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
            let s = states(&out);
            !s.is_empty() && s.iter().all(|s| FINAL.contains(&s.as_str()))
        });
        let s = states(&out);
        assert!(s.iter().all(|s| s == "COMPLETED"), "job {id}: {s:?}\n{out}\n{}", self.logs());
    }

    /// Waits until no task of job `id` is pending or running.
    fn wait_done(&mut self, id: &str) {
        let limit = Duration::from_secs(300);
        let (conf, tag) = (self.conf.clone(), self.tag.clone());
        self.wait_for(&format!("job {id} to end"), limit, || {
            let o = Command::new("squeue")
                .env("SLURM_CONF", &conf)
                .env(TAG_VAR, &tag)
                .args(["-h", "-j", id, "-o", "%i %T"])
                .output()
                .unwrap();
            o.status.success() && String::from_utf8_lossy(&o.stdout).trim().is_empty()
        });
    }
}

/// What one unsharded run writes (outside SLURM), the reference every merge must equal.
fn unsharded(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let whole = root.join("whole");
    let o = Command::new(env!("CARGO_BIN_EXE_chunkload"))
        .args(["sweep", "--experiment", "fleet", "--scenario"])
        .arg(repo("tests/fixtures/slurm-region.toml"))
        .args(["--grid", GRID, "--quiet", "--out"])
        .arg(&whole)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir_files(&whole)
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn slurm_array_with_shard_auto_and_a_dependent_merge_equals_one_run() {
    let _one = lock();
    let started = Instant::now();
    let mut cluster = Cluster::start();
    let whole = unsharded(cluster.root());

    // The recipe, as docs/sweeps.md gives it: the array, then the merge after it succeeded.
    let array = cluster.sbatch(&[&format!("--array=1-{SHARDS}")]);
    let merge_job = cluster.sbatch(&[
        "--wait",
        &format!("--dependency=afterok:{array}"),
        "--kill-on-invalid-dep=yes",
        &format!("--export=ALL,SHARDS={SHARDS}"),
        "--output=merge-%j.out",
    ]);
    cluster.wait_done(&array);
    cluster.assert_completed(&array);
    cluster.assert_completed(&merge_job);
    let merged = dir_files(&cluster.out().join("merged"));
    assert_eq!(merged, whole, "merged SLURM shards = one unsharded run, byte for byte\n{}", cluster.logs());
    let shards: Vec<String> = dir_files(&cluster.out().join("shards")).into_keys().collect();
    assert_eq!(
        shards,
        ["results-shard-1-of-3.json", "results-shard-2-of-3.json", "results-shard-3-of-3.json"]
    );
    // Each task found its shard in SLURM's environment.
    let log = fs::read_to_string(cluster.root().join(format!("jobs/chunkload-sweep-{array}_2.out"))).unwrap();
    assert!(log.contains("shard 2/3 from SLURM_ARRAY_TASK_ID=2, SLURM_ARRAY_TASK_COUNT=3"), "{log}");
    let merge_log = fs::read_to_string(cluster.root().join(format!("jobs/merge-{merge_job}.out"))).unwrap();
    assert!(merge_log.contains("4 of 4 points"), "{merge_log}");
    drop(cluster);
    eprintln!("slurm array + merge: {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn slurm_task_killed_midway_and_resubmitted_gives_the_same_bytes() {
    let _one = lock();
    let started = Instant::now();
    let mut cluster = Cluster::start();
    let whole = unsharded(cluster.root());
    let shards_dir = cluster.out().join("shards");

    let array = cluster.sbatch(&[&format!("--array=1-{SHARDS}")]);
    // Catch task 2's chunkload while it computes (it writes only when done) and stop it there,
    // so the cancel below lands midway whatever the machine's speed.
    let (job_var, task_var) = (format!("SLURM_ARRAY_JOB_ID={array}"), "SLURM_ARRAY_TASK_ID=2".to_string());
    let exe = fs::canonicalize(env!("CARGO_BIN_EXE_chunkload")).unwrap();
    let mut task = None;
    cluster.wait_for("array task 2's chunkload to start", Duration::from_secs(120), || {
        task = tagged_all(&[&job_var, &task_var])
            .into_iter()
            .find(|pid| fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe));
        if let Some(pid) = task {
            // SAFETY: kill(2) on the chunkload process of this test's job; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            // SIGSTOP lands asynchronously: wait until the process is stopped, so it cannot write
            // its shard after the check below.
            let stat = format!("/proc/{pid}/stat");
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until
                && fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") T ") && !s.contains(") t "))
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        task.is_some()
    });
    assert!(
        !shards_dir.join("results-shard-2-of-3.json").exists(),
        "task 2 finished before the test could stop it"
    );
    cluster.ok(cluster.client("scancel").arg(format!("{array}_2")));
    cluster.wait_done(&array);
    let pid = task.unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            // A zombie not yet reaped is gone too.
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        },
        "the cancelled task's chunkload still runs"
    );
    let state = cluster.ok(cluster.client("scontrol").args(["show", "job", &format!("{array}_2")]));
    assert!(state.contains("JobState=CANCELLED"), "{state}");

    // Nothing that looks finished: shards 1 and 3 only; merge names what is missing.
    let names: Vec<String> = dir_files(&shards_dir).into_keys().filter(|n| !n.starts_with('.')).collect();
    assert_eq!(names, ["results-shard-1-of-3.json", "results-shard-3-of-3.json"]);
    let o = Command::new(env!("CARGO_BIN_EXE_chunkload"))
        .arg("merge")
        .arg(shards_dir.join("results-shard-1-of-3.json"))
        .arg(shards_dir.join("results-shard-3-of-3.json"))
        .arg("--out")
        .arg(cluster.root().join("early"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("missing shard 2 of 3"), "{e}");

    // Resubmit index 2 alone: its environment says MIN=MAX=2, COUNT=1, so the recipe passes the
    // whole count (SHARDS -> --shard-count). Then the merge job.
    let again = cluster.sbatch(&["--wait", "--array=2", &format!("--export=ALL,SHARDS={SHARDS}")]);
    cluster.assert_completed(&again);
    let merge_job =
        cluster.sbatch(&["--wait", &format!("--export=ALL,SHARDS={SHARDS}"), "--output=merge-%j.out"]);
    cluster.assert_completed(&merge_job);
    assert_eq!(
        dir_files(&cluster.out().join("merged")),
        whole,
        "a killed and resubmitted task merges to one unsharded run, byte for byte\n{}",
        cluster.logs()
    );
    drop(cluster);
    eprintln!("slurm kill + resubmit: {:.1} s", started.elapsed().as_secs_f64());
}
