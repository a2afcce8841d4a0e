//! An isolated root for running an untrusted image's program on its mount, built like a container
//! runtime builds one (docs/real-mode.md, "The sandbox"):
//!
//! - on the host: a size-limited tmpfs holding the upper layer of an overlay whose lower layer is
//!   the read-only FUSE mount (so the FUSE mount, and the recorder behind it, stay outside);
//! - in a child cloned into new user, mount, PID, network (unless [`Network::Host`]), IPC and UTS
//!   namespaces: a private /proc, a minimal /dev (device nodes bind-mounted one by one), a /tmp and
//!   /dev/shm, `pivot_root` into the overlay with the host's tree detached, /proc/sys and the
//!   dangerous /proc files read-only or masked, nested user namespaces forbidden, resource limits,
//!   the image's user and groups, Docker's default capability bounding set, `no_new_privs`,
//!   descriptors other than 0-2 closed, stdin from /dev/null; then `execve`.
//!
//! The child is PID 1 of its PID namespace: when it exits the kernel kills everything it left.
//! Needs root on the host (the overlay mount and the ID maps); a kernel that refuses user
//! namespaces gets an error saying which setting to look at ([`userns_diagnosis`]).

use std::ffi::{CString, c_int, c_void};
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};

use crate::units::ByteSize;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox: cannot {op} {}: {source}", path.display())]
    Host {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("sandbox: the kernel refused new namespaces ({source}): {diagnosis}")]
    Namespaces {
        #[source]
        source: io::Error,
        diagnosis: String,
    },
    #[error("sandbox: setting up the program's namespaces failed at \"{stage}\": {source}")]
    Setup {
        stage: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Exec {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("sandbox: the program's setup process ended before reporting ({0})")]
    Lost(String),
}

/// Whether the program gets a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A network namespace of its own with only a loopback interface (up): nothing outside.
    #[default]
    None,
    /// The host's network namespace: the program can reach whatever the host can.
    Host,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            _ => Err(format!("{s:?} is not a network mode (none or host)")),
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Network::None => "none",
            Network::Host => "host",
        })
    }
}

/// Resource limits for the program and everything it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The memory limit of its cgroup (all its processes and tmpfs pages together), `RLIMIT_AS` of
    /// every process, and the size of each tmpfs (overlay upper, /tmp, /dev/shm).
    pub memory: ByteSize,
    /// `pids.max` of its cgroup, and `RLIMIT_NPROC` (which the kernel does not apply to uid 0).
    pub processes: u64,
    /// Wall time before the whole PID namespace is killed.
    pub wall_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory: ByteSize::gib(4), processes: 1024, wall_time: Duration::from_secs(600) }
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of memory (cgroup, where available; RLIMIT_AS per process; per tmpfs), {} processes/threads (pids cgroup, where available; RLIMIT_NPROC), {} s wall time",
            self.memory,
            self.processes,
            self.wall_time.as_secs_f64()
        )
    }
}

/// The process to start: exactly what runs, as the image and the command line decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries: the whole environment.
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Absolute path inside the root.
    pub working_dir: String,
}

impl Process {
    /// The value of `key` in the environment.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
    }
}

/// Capabilities a container runtime leaves a root process by default (Docker's list); every
/// other capability leaves the bounding set. A non-root user has none after `setuid`.
pub const DEFAULT_CAPABILITIES: [(u32, &str); 14] = [
    (0, "CHOWN"),
    (1, "DAC_OVERRIDE"),
    (3, "FOWNER"),
    (4, "FSETID"),
    (5, "KILL"),
    (6, "SETGID"),
    (7, "SETUID"),
    (8, "SETPCAP"),
    (10, "NET_BIND_SERVICE"),
    (13, "NET_RAW"),
    (18, "SYS_CHROOT"),
    (27, "MKNOD"),
    (29, "AUDIT_WRITE"),
    (31, "SETFCAP"),
];

/// Device nodes of the sandbox's /dev, bind-mounted one by one from the host's (a user namespace
/// may not create device nodes).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// /proc entries made read-only (bind-mounted onto themselves, remounted read-only).
const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// /proc entries hidden under /dev/null: kernel memory, keys, timers of the whole host.
const PROC_MASKED: [&str; 5] = ["kcore", "keys", "timer_list", "sched_debug", "latency_stats"];

pub struct Sandbox {
    root: PathBuf,
    limits: Limits,
    /// Mounted targets, innermost last.
    mounted: Vec<PathBuf>,
    /// Directories this sandbox created (removed at drop, deepest first).
    created: Vec<PathBuf>,
}

fn host_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SandboxError {
    let path = path.to_path_buf();
    move |source| SandboxError::Host { op, path, source }
}

impl Sandbox {
    /// Builds the root in `work` (created; must not exist) over the image mounted at `lower`:
    /// a tmpfs of `limits.memory` bytes holds the overlay's upper layer. Needs root.
    pub fn prepare(lower: &Path, work: &Path, limits: Limits) -> Result<Self, SandboxError> {
        fs::create_dir(work).map_err(host_err("create", work))?;
        let mut sb = Sandbox { root: work.join("root"), limits, mounted: vec![], created: vec![] };
        sb.created.push(work.to_path_buf());
        let rw = work.join("rw");
        for d in [&rw, &sb.root] {
            fs::create_dir(d).map_err(host_err("create", d))?;
            sb.created.push(d.clone());
        }
        let data = CString::new(format!("mode=0755,size={}", limits.memory.bytes())).expect("no NUL");
        mount("tmpfs", &rw, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, data.as_c_str())
            .map_err(|e| host_err("mount tmpfs on", &rw)(e.into()))?;
        sb.mounted.push(rw.clone());
        let (upper, scratch) = (rw.join("upper"), rw.join("work"));
        for d in [&upper, &scratch] {
            fs::create_dir(d).map_err(host_err("create", d))?;
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            scratch.display()
        );
        let data = CString::new(data)
            .map_err(|_| host_err("mount overlay on", &sb.root)(io::ErrorKind::InvalidInput.into()))?;
        // nosuid, nodev: the image's set-uid bits and device nodes mean nothing, as in rootless
        // containers (no_new_privs would ignore set-uid bits anyway).
        mount("overlay", &sb.root, "overlay", MountFlags::NOSUID | MountFlags::NODEV, data.as_c_str())
            .map_err(|e| host_err("mount overlay on", &sb.root)(e.into()))?;
        sb.mounted.push(sb.root.clone());
        // Mount points the child mounts on (in its own mount namespace): made in the upper layer.
        for d in ["proc", "dev", "tmp"] {
            let p = sb.root.join(d);
            if !p.is_dir() {
                fs::create_dir_all(&p).map_err(host_err("create", &p))?;
            }
        }
        Ok(sb)
    }

    /// The sandbox's root directory (on the host).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts `process` isolated in the sandbox (module docs). Returns once the program has been
    /// executed; a failure before that (namespaces refused, a mount, the user, the working
    /// directory, the program not found) is an error naming the stage.
    pub fn spawn(&self, process: &Process, network: Network) -> Result<Running, SandboxError> {
        let plan = Plan::new(&self.root, process, network, self.limits)?;
        let cgroup = Cgroup::create(&self.limits);
        let pid = plan.start(cgroup.as_ref())?;
        Ok(Running { pid, started: Instant::now(), wall_time: self.limits.wall_time, done: None, cgroup })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for target in self.mounted.drain(..).rev() {
            let _ = unmount(&target, UnmountFlags::DETACH);
        }
        // Never a recursive removal: were an unmount to fail, it would reach into the image.
        for dir in self.created.drain(..).rev() {
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It exited or was killed by a signal on its own.
    Exited(ExitStatus),
    /// It ran past the wall-time limit and its PID namespace was killed.
    TimedOut(Duration),
    /// It was asked to stop (SIGTERM forwarded, SIGKILL after a grace period).
    Stopped(ExitStatus),
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited(s) if s.success())
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(s) => write!(f, "{s}"),
            Outcome::TimedOut(d) => {
                write!(f, "killed at the wall-time limit of {} s (--timeout)", d.as_secs_f64())
            }
            Outcome::Stopped(s) => write!(f, "stopped on request ({s})"),
        }
    }
}

/// A started program (PID 1 of its namespace). Dropping it kills the namespace and reaps it.
pub struct Running {
    pid: libc::pid_t,
    started: Instant,
    wall_time: Duration,
    done: Option<ExitStatus>,
    cgroup: Option<Cgroup>,
}

impl Running {
    /// Which limits the program ran into (read from its cgroup, if it had one): call after
    /// [`Running::wait`].
    pub fn limits_hit(&self) -> LimitsHit {
        self.cgroup.as_ref().map(Cgroup::hits).unwrap_or_default()
    }

    /// The cgroup controllers that enforced limits (empty: rlimits only).
    pub fn cgroup_controllers(&self) -> Vec<&'static str> {
        self.cgroup.as_ref().map(|c| c.controllers.clone()).unwrap_or_default()
    }

    /// Waits for the program, polling `stop` every 10 ms: when it turns true, SIGTERM goes to
    /// the program and SIGKILL to its namespace 5 s later. At the wall-time limit it is killed.
    pub fn wait(&mut self, stop: &dyn Fn() -> bool) -> io::Result<Outcome> {
        let mut term_sent: Option<Instant> = None;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(match term_sent {
                    Some(_) => Outcome::Stopped(status),
                    None => Outcome::Exited(status),
                });
            }
            if self.started.elapsed() >= self.wall_time {
                self.kill_and_reap()?;
                return Ok(Outcome::TimedOut(self.wall_time));
            }
            match term_sent {
                None if stop() => {
                    // SAFETY: plain syscall on our own child.
                    unsafe { libc::kill(self.pid, libc::SIGTERM) };
                    term_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(5) => {
                    let status = self.kill_and_reap()?;
                    return Ok(Outcome::Stopped(status));
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.done {
            return Ok(Some(s));
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        match r {
            0 => Ok(None),
            r if r == self.pid => {
                let s = ExitStatus::from_raw(status);
                self.done = Some(s);
                Ok(Some(s))
            }
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// SIGKILL to PID 1 of the namespace (the kernel then kills every process in it) and reap.
    fn kill_and_reap(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.done {
            return Ok(s);
        }
        let mut status = 0;
        // SAFETY: plain syscalls on our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            if libc::waitpid(self.pid, &mut status, 0) != self.pid {
                return Err(io::Error::last_os_error());
            }
        }
        let s = ExitStatus::from_raw(status);
        self.done = Some(s);
        Ok(s)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.kill_and_reap();
        if let Some(cg) = self.cgroup.take() {
            cg.remove();
        }
    }
}

/// Limits the program ran into, as its cgroup counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsHit {
    /// Forks the pids controller refused.
    pub forks_refused: u64,
    /// Times the memory controller hit its limit (v1 `failcnt`, v2 `max` events).
    pub memory_hits: u64,
    /// Processes the OOM killer killed (`oom_kill` of v2 `memory.events`, v1 `memory.oom_control`).
    pub oom_kills: u64,
}

impl std::fmt::Display for LimitsHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = vec![];
        if self.forks_refused > 0 {
            parts.push(format!("the process limit (--pids) refused {} forks", self.forks_refused));
        }
        if self.memory_hits > 0 {
            parts.push(format!("the memory limit (--memory) was reached {} times", self.memory_hits));
        }
        if self.oom_kills > 0 {
            parts.push(format!("{} processes were killed at the memory limit (--memory)", self.oom_kills));
        }
        f.write_str(&parts.join("; "))
    }
}

/// The program's cgroup, one directory per controller (cgroup v1) or one (v2), made under the
/// recorder's own cgroup: `pids.max` = `--pids` (a fork bomb stops there, whatever its uid; the
/// kernel exempts uid 0 from `RLIMIT_NPROC`) and the memory limit = `--memory` for the whole
/// namespace, tmpfs pages included. Best effort: where no controller is available (no cgroupfs,
/// not writable), the rlimits alone apply and the report says so.
struct Cgroup {
    dirs: Vec<PathBuf>,
    controllers: Vec<&'static str>,
    v2: bool,
}

impl Cgroup {
    fn create(limits: &Limits) -> Option<Cgroup> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!("chunkload-record-{}", std::process::id());
        let mut cg = Cgroup { dirs: vec![], controllers: vec![], v2: false };
        let memory = limits.memory.bytes().to_string();
        let pids = limits.processes.to_string();
        let v1 = |controller: &str| {
            own.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, list, path) = (f.next()?, f.next()?, f.next()?);
                list.split(',').any(|c| c == controller).then(|| path.to_string())
            })
        };
        for (controller, file, value) in
            [("pids", "pids.max", &pids), ("memory", "memory.limit_in_bytes", &memory)]
        {
            let Some(path) = v1(controller) else { continue };
            let base = Path::new("/sys/fs/cgroup").join(controller).join(path.trim_start_matches('/'));
            let dir = base.join(&name);
            if fs::create_dir(&dir).is_err() {
                continue;
            }
            if fs::write(dir.join(file), value).is_err() {
                let _ = fs::remove_dir(&dir);
                continue;
            }
            if controller == "memory" {
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), value);
            }
            cg.dirs.push(dir);
            cg.controllers.push(controller);
        }
        if cg.dirs.is_empty()
            && let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::"))
        {
            let base = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
            let available = fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
            let dir = base.join(&name);
            if (available.contains("pids") || available.contains("memory")) && fs::create_dir(&dir).is_ok() {
                cg.v2 = true;
                if fs::write(dir.join("pids.max"), &pids).is_ok() {
                    cg.controllers.push("pids");
                }
                if fs::write(dir.join("memory.max"), &memory).is_ok() {
                    cg.controllers.push("memory");
                }
                if cg.controllers.is_empty() {
                    let _ = fs::remove_dir(&dir);
                } else {
                    cg.dirs.push(dir);
                }
            }
        }
        (!cg.dirs.is_empty()).then_some(cg)
    }

    fn add(&self, pid: libc::pid_t) -> io::Result<()> {
        for dir in &self.dirs {
            fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    fn hits(&self) -> LimitsHit {
        let read = |file: &str| self.dirs.iter().find_map(|d| fs::read_to_string(d.join(file)).ok());
        let field = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut hit = LimitsHit::default();
        if let Some(e) = read("pids.events") {
            hit.forks_refused = field(&e, "max");
        }
        if self.v2 {
            if let Some(e) = read("memory.events") {
                hit.memory_hits = field(&e, "max");
                hit.oom_kills = field(&e, "oom_kill");
            }
        } else {
            if let Some(n) = read("memory.failcnt") {
                hit.memory_hits = n.trim().parse().unwrap_or(0);
            }
            if let Some(e) = read("memory.oom_control") {
                hit.oom_kills = field(&e, "oom_kill");
            }
        }
        hit
    }

    /// Removes the directories; the processes are gone by then (PID 1 reaped), though the
    /// kernel may take a moment to let go of them.
    fn remove(self) {
        for dir in &self.dirs {
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Why the kernel may refuse a user namespace, from the settings that decide it.
pub fn userns_diagnosis() -> String {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let mut notes = vec![];
    match read("/proc/sys/user/max_user_namespaces") {
        Some(v) if v == "0" => {
            notes.push("user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)".to_string())
        }
        Some(v) => notes.push(format!("user.max_user_namespaces is {v}")),
        None => notes
            .push("/proc/sys/user/max_user_namespaces is missing: a kernel without CONFIG_USER_NS?".into()),
    }
    if let Some(v) = read("/proc/sys/kernel/unprivileged_userns_clone") {
        notes.push(format!("kernel.unprivileged_userns_clone is {v}"));
    }
    if let Some(v) = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        && v != "0"
    {
        notes.push(format!("kernel.apparmor_restrict_unprivileged_userns is {v} (AppArmor may deny it)"));
    }
    if !rustix::process::geteuid().is_root() {
        notes.push("not running as root: `trace record` needs root for the overlay and the ID maps".into());
    }
    format!(
        "the program would run in new user, mount, PID, network, IPC and UTS namespaces and cannot run without them; {}",
        notes.join("; ")
    )
}

/// Stages of the child's setup, named in errors (index = code sent over the error pipe).
const STAGES: [&str; 24] = [
    "wait for the ID maps",
    "make mounts private",
    "mount /proc",
    "mount /dev",
    "create a /dev node",
    "bind a /dev node",
    "link in /dev",
    "mount /dev/shm",
    "mount /tmp",
    "bring up loopback",
    "set the hostname",
    "enter the new root",
    "pivot_root",
    "detach the host's tree",
    "forbid nested user namespaces",
    "make /proc entries read-only",
    "mask /proc entries",
    "set resource limits",
    "drop capabilities",
    "set groups",
    "set the user",
    "set no_new_privs",
    "redirect stdin",
    "enter the working directory",
];
const STAGE_EXEC: u32 = STAGES.len() as u32;

/// Everything the child needs, allocated before the clone: between clone and exec the child of a
/// multi-threaded process may only make system calls (no allocation, no locks).
struct Plan {
    root: CString,
    proc_: CString,
    dev: CString,
    dev_nodes: Vec<(CString, CString)>,
    dev_links: Vec<(CString, CString)>,
    dev_shm: CString,
    tmp: CString,
    dev_data: CString,
    tmp_data: CString,
    new_net: bool,
    hostname: CString,
    userns_max: CString,
    proc_ro: Vec<CString>,
    proc_masked: Vec<CString>,
    dev_null: CString,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
    drop_caps: Vec<libc::c_ulong>,
    groups: Vec<libc::gid_t>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    working_dir: CString,
    candidates: Vec<CString>,
    program: String,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    sync_fd: c_int,
    err_fd: c_int,
    null_fd: c_int,
}

fn cstr(s: impl AsRef<[u8]>, what: &str) -> Result<CString, SandboxError> {
    CString::new(s.as_ref()).map_err(|_| SandboxError::Exec {
        program: what.to_string(),
        source: io::Error::new(io::ErrorKind::InvalidInput, format!("{what} contains a NUL byte")),
    })
}

impl Plan {
    fn new(root: &Path, p: &Process, network: Network, limits: Limits) -> Result<Plan, SandboxError> {
        let program = p.argv.first().cloned().ok_or_else(|| SandboxError::Exec {
            program: String::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "nothing to run: empty command"),
        })?;
        let under = |rel: &str| cstr(root.join(rel).as_os_str().as_bytes(), "sandbox path");
        let mut dev_nodes = vec![];
        for d in DEVICES {
            dev_nodes.push((cstr(format!("/dev/{d}"), "device")?, under(&format!("dev/{d}"))?));
        }
        let mut dev_links = vec![];
        for (target, link) in [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ] {
            dev_links.push((cstr(target, "link")?, under(&format!("dev/{link}"))?));
        }
        let candidates = if program.contains('/') {
            vec![cstr(&program, "program")?]
        } else {
            let path =
                p.env_var("PATH").unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| cstr(format!("{}/{program}", d.trim_end_matches('/')), "program"))
                .collect::<Result<_, _>>()?
        };
        let argv: Vec<CString> = p.argv.iter().map(|a| cstr(a, "argument")).collect::<Result<_, _>>()?;
        let env: Vec<CString> =
            p.env.iter().map(|e| cstr(e, "environment entry")).collect::<Result<_, _>>()?;
        let ptrs = |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain([std::ptr::null()]).collect::<Vec<_>>();
        let last_cap: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40);
        let keep: Vec<u32> = DEFAULT_CAPABILITIES.iter().map(|c| c.0).collect();
        let drop_caps = (0..=last_cap).filter(|c| !keep.contains(c)).map(libc::c_ulong::from).collect();
        let size = limits.memory.bytes();
        Ok(Plan {
            root: under("")?,
            proc_: under("proc")?,
            dev: under("dev")?,
            dev_nodes,
            dev_links,
            dev_shm: under("dev/shm")?,
            tmp: under("tmp")?,
            dev_data: cstr("mode=0755,size=65536,nr_inodes=64", "mount data")?,
            tmp_data: cstr(format!("mode=1777,size={size}"), "mount data")?,
            new_net: network == Network::None,
            hostname: cstr("chunkload", "hostname")?,
            userns_max: cstr("/proc/sys/user/max_user_namespaces", "path")?,
            proc_ro: PROC_READ_ONLY
                .iter()
                .map(|e| cstr(format!("/proc/{e}"), "path"))
                .collect::<Result<_, _>>()?,
            proc_masked: PROC_MASKED
                .iter()
                .map(|e| cstr(format!("/proc/{e}"), "path"))
                .collect::<Result<_, _>>()?,
            dev_null: cstr("/dev/null", "path")?,
            rlimits: vec![
                (libc::RLIMIT_AS, size as libc::rlim_t),
                (libc::RLIMIT_NPROC, limits.processes as libc::rlim_t),
                (libc::RLIMIT_CORE, 0),
            ],
            drop_caps,
            groups: p.groups.clone(),
            uid: p.uid,
            gid: p.gid,
            working_dir: cstr(&p.working_dir, "working directory")?,
            candidates,
            program,
            argv_ptrs: ptrs(&argv),
            _argv: argv,
            env_ptrs: ptrs(&env),
            _env: env,
            sync_fd: -1,
            err_fd: -1,
            null_fd: -1,
        })
    }

    /// Clones the child into its namespaces, maps its IDs, lets it run and waits for its exec.
    fn start(mut self, cgroup: Option<&Cgroup>) -> Result<libc::pid_t, SandboxError> {
        let host = |op: &'static str| {
            let source = io::Error::last_os_error();
            SandboxError::Host { op, path: PathBuf::from("(sandbox setup)"), source }
        };
        let pipe = || -> Result<(OwnedFd, OwnedFd), SandboxError> {
            let mut fds = [0 as c_int; 2];
            // SAFETY: pipe2 fills a valid array with two fresh descriptors we then own.
            unsafe {
                if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                    return Err(host("create a pipe for"));
                }
                Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
            }
        };
        let (sync_read, sync_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        let null = fs::File::open("/dev/null").map_err(host_err("open", Path::new("/dev/null")))?;
        self.sync_fd = sync_read.as_raw_fd();
        self.err_fd = err_write.as_raw_fd();
        self.null_fd = null.as_raw_fd();
        let mut flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS;
        if self.new_net {
            flags |= libc::CLONE_NEWNET;
        }
        let mut stack = vec![0u8; 256 * 1024];
        // SAFETY: the stack is ours and outlives the call (the child gets a copy of the address
        // space: no CLONE_VM); the child runs `child_main` on `self`, which it only reads.
        let pid = unsafe {
            let top = (stack.as_mut_ptr().add(stack.len()) as usize & !15) as *mut c_void;
            libc::clone(child_main, top, flags | libc::SIGCHLD, (&raw mut self).cast())
        };
        drop(stack);
        // The child's ends are its own now.
        drop((sync_read, err_write, null));
        if pid < 0 {
            let source = io::Error::last_os_error();
            return Err(SandboxError::Namespaces { source, diagnosis: userns_diagnosis() });
        }
        let reap = || {
            let mut st = 0;
            // SAFETY: our child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut st, 0);
            }
        };
        // IDs inside = IDs outside, as a container runtime without user-namespace remapping runs
        // them; the namespace scopes the capabilities, pivot_root and /proc's masks the rest.
        let map = |file: &str| fs::write(format!("/proc/{pid}/{file}"), "0 0 4294967295\n");
        if let Err(source) = map("uid_map").and_then(|()| map("gid_map")) {
            reap();
            let diagnosis = format!("writing /proc/{pid}/uid_map and gid_map; {}", userns_diagnosis());
            return Err(SandboxError::Namespaces { source, diagnosis });
        }
        // Into the cgroup before it runs anything: all it forks is counted from the start.
        if let Some(cg) = cgroup
            && let Err(source) = cg.add(pid)
        {
            reap();
            return Err(SandboxError::Host {
                op: "add the program to the cgroup",
                path: cg.dirs[0].clone(),
                source,
            });
        }
        let mut sync = fs::File::from(sync_write);
        let _ = sync.write_all(b"1");
        drop(sync);
        let mut report = Vec::with_capacity(8);
        let mut err = fs::File::from(err_read);
        let n = err.read_to_end(&mut report);
        match (n, report.len()) {
            (Ok(_), 0) => Ok(pid),
            (Ok(_), 8) => {
                reap();
                let stage = u32::from_le_bytes(report[..4].try_into().expect("4 bytes"));
                let errno = i32::from_le_bytes(report[4..].try_into().expect("4 bytes"));
                let source = io::Error::from_raw_os_error(errno);
                if stage == STAGE_EXEC {
                    Err(SandboxError::Exec { program: self.program.clone(), source })
                } else {
                    Err(SandboxError::Setup {
                        stage: STAGES.get(stage as usize).copied().unwrap_or("?"),
                        source,
                    })
                }
            }
            (n, len) => {
                reap();
                Err(SandboxError::Lost(format!("{len} of 8 bytes of its report, {n:?}")))
            }
        }
    }
}

/// The child: from clone to exec, system calls only. On failure it sends (stage, errno) over the
/// error pipe and exits 127; on success the exec closes the pipe (close-on-exec).
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `Plan`, copied into this address space by clone.
    let p = unsafe { &*(arg as *const Plan) };
    // SAFETY: system calls on data allocated before the clone.
    unsafe {
        match child_setup(p) {
            Ok(never) => match never {},
            Err((stage, errno)) => {
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&stage.to_le_bytes());
                msg[4..].copy_from_slice(&errno.to_le_bytes());
                libc::write(p.err_fd, msg.as_ptr().cast(), 8);
                libc::_exit(127)
            }
        }
    }
}

enum Never {}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// # Safety
/// Only in the cloned child.
unsafe fn child_setup(p: &Plan) -> Result<Never, (u32, i32)> {
    use libc::*;
    let ok = |stage: u32, r: c_int| if r < 0 { Err((stage, errno())) } else { Ok(()) };
    let null = std::ptr::null::<c_char>();
    unsafe {
        // 0: wait until the parent has written the ID maps (EOF: it gave up).
        let mut b = 0u8;
        if read(p.sync_fd, (&raw mut b).cast(), 1) != 1 {
            return Err((0, errno()));
        }
        ok(1, mount(null, c"/".as_ptr(), null, MS_REC | MS_PRIVATE, std::ptr::null()))?;
        // The root as copied into this mount namespace is locked (pivot_root refuses it): a bind
        // of it onto itself is a mount of our own.
        ok(1, mount(p.root.as_ptr(), p.root.as_ptr(), null, MS_BIND | MS_REC, std::ptr::null()))?;
        ok(
            2,
            mount(
                c"proc".as_ptr(),
                p.proc_.as_ptr(),
                c"proc".as_ptr(),
                MS_NOSUID | MS_NODEV | MS_NOEXEC,
                std::ptr::null(),
            ),
        )?;
        ok(
            3,
            mount(
                c"tmpfs".as_ptr(),
                p.dev.as_ptr(),
                c"tmpfs".as_ptr(),
                MS_NOSUID | MS_NOEXEC,
                p.dev_data.as_ptr().cast(),
            ),
        )?;
        for (host, target) in &p.dev_nodes {
            let fd = open(target.as_ptr(), O_CREAT | O_WRONLY | O_CLOEXEC, 0o666);
            ok(4, fd)?;
            close(fd);
            ok(5, mount(host.as_ptr(), target.as_ptr(), null, MS_BIND, std::ptr::null()))?;
        }
        for (target, link) in &p.dev_links {
            ok(6, symlink(target.as_ptr(), link.as_ptr()))?;
        }
        ok(7, mkdir(p.dev_shm.as_ptr(), 0o1777))?;
        ok(
            7,
            mount(
                c"shm".as_ptr(),
                p.dev_shm.as_ptr(),
                c"tmpfs".as_ptr(),
                MS_NOSUID | MS_NODEV | MS_NOEXEC,
                p.tmp_data.as_ptr().cast(),
            ),
        )?;
        ok(
            8,
            mount(
                c"tmpfs".as_ptr(),
                p.tmp.as_ptr(),
                c"tmpfs".as_ptr(),
                MS_NOSUID | MS_NODEV,
                p.tmp_data.as_ptr().cast(),
            ),
        )?;
        if p.new_net {
            let s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            ok(9, s)?;
            let mut req: ifreq = std::mem::zeroed();
            for (i, c) in b"lo".iter().enumerate() {
                req.ifr_name[i] = *c as c_char;
            }
            ok(9, ioctl(s, SIOCGIFFLAGS, &mut req))?;
            req.ifr_ifru.ifru_flags |= (IFF_UP | IFF_RUNNING) as c_short;
            ok(9, ioctl(s, SIOCSIFFLAGS, &mut req))?;
            close(s);
        }
        ok(10, sethostname(p.hostname.as_ptr(), p.hostname.as_bytes().len()))?;
        ok(11, chdir(p.root.as_ptr()))?;
        ok(12, syscall(SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as c_int)?;
        ok(13, umount2(c".".as_ptr(), MNT_DETACH))?;
        ok(13, chdir(c"/".as_ptr()))?;
        // The limit is per user namespace and hierarchical; without CAP_SYS_RESOURCE (dropped
        // below) the program cannot raise it, so it cannot make a namespace where it has
        // capabilities again (and mount, unshare...).
        let fd = open(p.userns_max.as_ptr(), O_WRONLY | O_CLOEXEC);
        ok(14, fd)?;
        ok(14, write(fd, b"0\n".as_ptr().cast(), 2) as c_int)?;
        close(fd);
        for path in &p.proc_ro {
            if mount(path.as_ptr(), path.as_ptr(), null, MS_BIND | MS_REC, std::ptr::null()) < 0 {
                if errno() == ENOENT {
                    continue;
                }
                return Err((15, errno()));
            }
            let flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
            ok(15, mount(null, path.as_ptr(), null, flags, std::ptr::null()))?;
        }
        for path in &p.proc_masked {
            if mount(p.dev_null.as_ptr(), path.as_ptr(), null, MS_BIND, std::ptr::null()) < 0
                && errno() != ENOENT
            {
                return Err((16, errno()));
            }
        }
        for &(resource, value) in &p.rlimits {
            let lim = rlimit { rlim_cur: value, rlim_max: value };
            ok(17, setrlimit(resource, &lim))?;
        }
        for &cap in &p.drop_caps {
            if prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno() != EINVAL {
                return Err((18, errno()));
            }
        }
        ok(18, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL as c_ulong, 0, 0, 0))?;
        // Raw system calls, not glibc's wrappers: those broadcast the change to every thread the
        // parent had (its setxid protocol) and wait on a futex for threads that do not exist in
        // this child, which hung `trace record` now and then.
        ok(19, syscall(SYS_setgroups, p.groups.len(), p.groups.as_ptr()) as c_int)?;
        ok(19, syscall(SYS_setresgid, p.gid, p.gid, p.gid) as c_int)?;
        ok(20, syscall(SYS_setresuid, p.uid, p.uid, p.uid) as c_int)?;
        ok(21, prctl(PR_SET_NO_NEW_PRIVS, 1 as c_ulong, 0, 0, 0))?;
        ok(22, dup2(p.null_fd, 0))?;
        // Nothing of ours leaks in: not the FUSE device, not the store's files.
        syscall(SYS_close_range, 3 as c_uint, c_uint::MAX, CLOSE_RANGE_CLOEXEC);
        ok(23, chdir(p.working_dir.as_ptr()))?;
        let mut last = ENOENT;
        for path in &p.candidates {
            execve(path.as_ptr(), p.argv_ptrs.as_ptr(), p.env_ptrs.as_ptr());
            let e = errno();
            // As execvp: keep searching past a missing or unusable entry, report EACCES if seen.
            match e {
                ENOENT | ENOTDIR => {}
                EACCES => last = EACCES,
                _ => return Err((STAGE_EXEC, e)),
            }
        }
        Err((STAGE_EXEC, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capability_list_is_dockers_and_names_are_unique() {
        let mut names: Vec<&str> = DEFAULT_CAPABILITIES.iter().map(|c| c.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DEFAULT_CAPABILITIES.len());
        // CAP_SYS_ADMIN (21), CAP_SYS_PTRACE (19), CAP_SYS_MODULE (16), CAP_SYS_RESOURCE (24),
        // CAP_NET_ADMIN (12) never stay.
        for bad in [12, 16, 19, 21, 24] {
            assert!(!DEFAULT_CAPABILITIES.iter().any(|c| c.0 == bad), "{bad}");
        }
    }

    #[test]
    fn the_namespace_diagnosis_names_the_settings() {
        let d = userns_diagnosis();
        assert!(d.contains("max_user_namespaces"), "{d}");
        assert!(d.contains("cannot run without them"), "{d}");
    }

    #[test]
    fn env_lookup_splits_at_the_first_equals() {
        let p = Process {
            argv: vec!["x".into()],
            env: vec!["PATHX=1".into(), "PATH=/a:/b=c".into()],
            uid: 0,
            gid: 0,
            groups: vec![],
            working_dir: "/".into(),
        };
        assert_eq!(p.env_var("PATH"), Some("/a:/b=c"));
        assert_eq!(p.env_var("HOME"), None);
    }
}
