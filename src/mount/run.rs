//! `trace record` as a library call: mount an image with a recorder, start its program the way
//! the image's configuration says (or with the command line's command, as `docker run IMAGE CMD`),
//! isolated in a [`Sandbox`], wait for it, unmount, and keep the trace (docs/real-mode.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::crypto::Manifest;
use crate::flatten;
use crate::image::spec::ProcessConfig;
use crate::layout::BlockMeta;
use crate::store::ChunkStore;
use crate::trace::{self, Header, Run};

use super::sandbox::{Limits, LimitsHit, Network, Outcome, Process, Sandbox, SandboxError};
use super::{InjectedLatency, MountError, MountOptions, MountReport, Recorder};

/// A converted image ready to mount: its block metadata, manifest, the store holding its chunks,
/// and a label for the mount and the trace header. `ingest::Mountable::into_mountable` makes one from
/// an image converted in memory or a sealed manifest.
pub struct Mountable {
    pub meta: BlockMeta,
    pub manifest: Manifest,
    pub store: Arc<dyn ChunkStore>,
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Flatten(#[from] flatten::Error),
    /// `chunk::convert`'s error (its type is private to that module).
    #[error(transparent)]
    Convert(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::Error),
    #[error(transparent)]
    Layout(#[from] crate::layout::Error),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("recording: {0}")]
    Trace(#[from] trace::Error),
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The image's configuration and the command line do not say what to run, or say it wrongly.
    #[error("{0}")]
    Process(String),
    #[error("waiting for the program: {0}")]
    Wait(#[source] std::io::Error),
}

/// A trace header for a recording of `command` on the image `label`.
pub fn trace_header(command: &str, label: &str) -> Header {
    let mut h = Header::new("fuse", command);
    if !label.is_empty() {
        h.image = Some(label.to_string());
    }
    h
}

/// SIGINT, SIGTERM and SIGHUP, caught so that they end a mount or a recording cleanly instead of
/// the process.
pub struct Signals(Arc<AtomicBool>);

impl Signals {
    pub fn new() -> std::io::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register(sig, flag.clone())?;
        }
        Ok(Signals(flag))
    }

    /// Whether one of the signals has arrived.
    pub fn received(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Removes a trace being written when dropped before [`OutputGuard::keep`]: a mount or setup
/// that fails leaves no file that looks like a complete trace.
pub struct OutputGuard(pub Option<PathBuf>);

impl OutputGuard {
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for OutputGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What to record and how to run it.
#[derive(Debug, Clone)]
pub struct RecordSpec {
    pub output: PathBuf,
    /// The command as the header's `command` names it (default: the argument vector).
    pub label: Option<String>,
    /// Replaces the image's Cmd (its Entrypoint is kept); empty: run the image's own.
    pub cmd: Vec<String>,
    /// Set after the image's environment.
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    pub network: Network,
}

/// A finished recording.
#[derive(Debug)]
pub struct Recording {
    pub report: MountReport,
    pub outcome: Outcome,
    /// The header's `command`.
    pub command: String,
    pub run: Run,
    /// The limits the program ran into, as its cgroup counted them.
    pub limits_hit: LimitsHit,
    /// The cgroup controllers that enforced `--pids` / `--memory` (empty: rlimits only).
    pub cgroup: Vec<&'static str>,
}

impl Recording {
    /// Why the program failed, for the user: its outcome, the limits it hit, what it ran under.
    pub fn failure(&self, limits: &Limits) -> String {
        let hit = self.limits_hit.to_string();
        let enforced = if self.cgroup.is_empty() {
            "rlimits only: no cgroup controller was available".to_string()
        } else {
            format!("cgroup {} and rlimits", self.cgroup.join(", "))
        };
        format!(
            "`{}` failed ({}){}; it ran under limits of {limits} ({enforced})",
            self.command,
            self.outcome,
            if hit.is_empty() { String::new() } else { format!("; {hit}") }
        )
    }
}

/// Mounts `opened` with a recorder, runs the program in a sandbox over it, unmounts and keeps the
/// trace (also when the program failed: the trace of a failing start is still a true trace).
/// `config` is the image's (None for a manifest, which does not carry it: then `spec.cmd` must
/// name the command). `stop` is polled while the program runs (signals).
pub fn record(
    opened: Mountable,
    config: Option<&ProcessConfig>,
    options: &MountOptions,
    latency: Option<InjectedLatency>,
    spec: &RecordSpec,
    stop: &dyn Fn() -> bool,
) -> Result<Recording, RunError> {
    if config.is_none() && spec.cmd.is_empty() {
        return Err(RunError::Process(
            "a manifest does not carry the image's configuration (Entrypoint, Cmd, Env, User, WorkingDir): \
             give the command after `--`, or record from the image itself"
                .into(),
        ));
    }
    let work = std::env::temp_dir().join(format!("chunkload-record-{}", std::process::id()));
    let mountpoint = work.join("image");
    std::fs::create_dir_all(&mountpoint).map_err(|source| RunError::Io {
        op: "create",
        path: mountpoint.clone(),
        source,
    })?;
    let _cleanup = RemoveDir(work.clone());
    let label = opened.label.clone();
    let recorder = Arc::new(Recorder::pending(&spec.output));
    let output = OutputGuard(Some(spec.output.clone()));
    let mounted = super::mount(
        opened.meta,
        opened.manifest,
        opened.store,
        &mountpoint,
        options,
        latency,
        Some(recorder.clone()),
    )?;
    let (outcome, command, run, limits_hit, cgroup) = {
        let sandbox = Sandbox::prepare(mounted.mountpoint(), &work.join("sandbox"), spec.limits)?;
        let (process, origin) = resolve(config, &spec.cmd, &spec.env, sandbox.root())?;
        let command = spec.label.clone().unwrap_or_else(|| shell_words(&process.argv));
        let run = Run {
            argv: process.argv.clone(),
            uid: process.uid,
            gid: process.gid,
            working_dir: process.working_dir.clone(),
            origin: origin.to_string(),
        };
        recorder.begin(&trace_header(&command, &label).with_run(run.clone()))?;
        let mut running = sandbox.spawn(&process, spec.network)?;
        let outcome = running.wait(stop).map_err(RunError::Wait)?;
        (outcome, command, run, running.limits_hit(), running.cgroup_controllers())
    };
    let report = mounted.unmount()?;
    output.keep();
    Ok(Recording { report, outcome, command, run, limits_hit, cgroup })
}

/// Removes the scratch directory (empty by then: every mount under it is gone) when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("image"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The default `PATH` of a container runtime, for images that set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Combines the image's configuration with the command line as `docker run` does: the argument
/// vector is Entrypoint + (`cmd` if given, else Cmd); the environment is the image's Env (with a
/// default `PATH` and `HOME` when it sets none) and then `env`; the user is the config's User,
/// names looked up in `root`'s /etc/passwd and /etc/group (those reads go through the mount, as a
/// runtime's do); the working directory is WorkingDir or `/`.
pub fn resolve(
    config: Option<&ProcessConfig>,
    cmd: &[String],
    env: &[(String, String)],
    root: &Path,
) -> Result<(Process, &'static str), RunError> {
    let empty = ProcessConfig::default();
    let c = config.unwrap_or(&empty);
    let mut argv = c.entrypoint.clone();
    argv.extend(if cmd.is_empty() { c.cmd.iter() } else { cmd.iter() }.cloned());
    if argv.is_empty() {
        return Err(RunError::Process(
            "the image configures no Entrypoint or Cmd: give the command after `--`".into(),
        ));
    }
    let origin = match (config, cmd.is_empty()) {
        (None, _) => "command line, no image config",
        (Some(_), true) => "image",
        (Some(_), false) => "command line",
    };
    let user = resolve_user(&c.user, root)?;
    let mut vars: Vec<String> = c.env.clone();
    let has =
        |vars: &[String], k: &str| vars.iter().any(|e| e.split_once('=').is_some_and(|(key, _)| key == k));
    if !has(&vars, "PATH") {
        vars.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&vars, "HOME") {
        vars.push(format!("HOME={}", user.home));
    }
    for (k, v) in env {
        vars.retain(|e| e.split_once('=').is_none_or(|(key, _)| key != k));
        vars.push(format!("{k}={v}"));
    }
    let working_dir = match c.working_dir.as_str() {
        "" => "/".to_string(),
        w if w.starts_with('/') => w.to_string(),
        w => format!("/{w}"),
    };
    let process = Process { argv, env: vars, uid: user.uid, gid: user.gid, groups: user.groups, working_dir };
    Ok((process, origin))
}

struct User {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: String,
}

/// `user[:group]`, each a name or a number, as runc resolves it: a numeric user missing from
/// /etc/passwd is that uid with gid 0 and home `/`; a name must exist.
fn resolve_user(spec: &str, root: &Path) -> Result<User, RunError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap_or_default();
    let passwd = read("etc/passwd");
    // name:x:uid:gid:gecos:home:shell
    let entries: Vec<Vec<&str>> =
        passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 7).collect();
    let entry = entries.iter().find(|f| f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u));
    let bad = |what: String| RunError::Process(format!("the image's User {spec:?}: {what}"));
    let (uid, mut gid, name, home) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => {
            let uid = f[2].parse().map_err(|_| bad(format!("/etc/passwd gives uid {:?}", f[2])))?;
            let gid = f[3].parse().map_err(|_| bad(format!("/etc/passwd gives gid {:?}", f[3])))?;
            (uid, gid, Some(f[0].to_string()), f[5].to_string())
        }
        (None, Ok(uid)) => (uid, 0, None, if uid == 0 { "/root".into() } else { "/".into() }),
        (None, Err(_)) => return Err(bad(format!("no user {u:?} in the image's /etc/passwd"))),
    };
    let group = read("etc/group");
    // name:x:gid:member,member
    let groups_file: Vec<Vec<&str>> =
        group.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 4).collect();
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups_file
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| bad(format!("no group {g:?} in the image's /etc/group")))?,
        };
    }
    let mut groups = vec![gid];
    if let Some(name) = &name {
        for f in &groups_file {
            if f[3].split(',').any(|m| m == name)
                && let Ok(n) = f[2].parse::<u32>()
                && !groups.contains(&n)
            {
                groups.push(n);
            }
        }
    }
    Ok(User { uid, gid, groups, home: if home.is_empty() { "/".into() } else { home } })
}

/// `cmd` as one line a shell would read back: words with anything unusual single-quoted.
pub fn shell_words(cmd: &[String]) -> String {
    let plain =
        |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    cmd.iter()
        .map(|w| if plain(w) { w.clone() } else { format!("'{}'", w.replace('\'', "'\\''")) })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(passwd: &str, group: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(d.path().join("etc/group"), group).unwrap();
        d
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_is_kept_and_cmd_replaced_as_docker_run_does() {
        let root = root_with("root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n");
        let c = ProcessConfig {
            entrypoint: s(&["/entry", "-v"]),
            cmd: s(&["serve"]),
            env: s(&["A=1", "PATH=/opt/bin"]),
            working_dir: "/app".into(),
            ..Default::default()
        };
        let (p, origin) = resolve(Some(&c), &[], &[], root.path()).unwrap();
        assert_eq!((p.argv.clone(), origin), (s(&["/entry", "-v", "serve"]), "image"));
        assert_eq!(p.env, s(&["A=1", "PATH=/opt/bin", "HOME=/root"]));
        assert_eq!((p.uid, p.gid, p.working_dir.as_str()), (0, 0, "/app"));
        let env = [("A".to_string(), "2".to_string())];
        let (p, origin) = resolve(Some(&c), &s(&["check"]), &env, root.path()).unwrap();
        assert_eq!((p.argv, origin), (s(&["/entry", "-v", "check"]), "command line"));
        assert_eq!(p.env, s(&["PATH=/opt/bin", "HOME=/root", "A=2"]));
    }

    #[test]
    fn users_resolve_by_name_and_number_with_their_groups() {
        let root = root_with(
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n",
        );
        let user = |u: &str| {
            let c = ProcessConfig { user: u.into(), cmd: s(&["x"]), ..Default::default() };
            resolve(Some(&c), &[], &[], root.path())
                .map(|(p, _)| (p.uid, p.gid, p.groups.clone(), p.env_var("HOME").map(String::from)))
        };
        assert_eq!(user("app").unwrap(), (1000, 1000, vec![1000, 50], Some("/home/app".into())));
        assert_eq!(user("app:staff").unwrap(), (1000, 50, vec![50], Some("/home/app".into())));
        assert_eq!(user("4242").unwrap(), (4242, 0, vec![0], Some("/".into())));
        assert_eq!(user("1000:7").unwrap().1, 7);
        assert_eq!(user("").unwrap(), (0, 0, vec![0], Some("/root".into())));
        let e = user("ghost").unwrap_err().to_string();
        assert!(e.contains("no user \"ghost\""), "{e}");
        assert!(user("app:nogroup").unwrap_err().to_string().contains("no group"));
    }

    #[test]
    fn nothing_to_run_is_an_error_that_says_what_to_do() {
        let root = tempfile::tempdir().unwrap();
        let e = resolve(Some(&ProcessConfig::default()), &[], &[], root.path()).unwrap_err();
        assert!(e.to_string().contains("give the command after `--`"), "{e}");
        let (p, origin) = resolve(None, &s(&["sh"]), &[], root.path()).unwrap();
        assert_eq!((p.argv, origin), (s(&["sh"]), "command line, no image config"));
        assert_eq!(p.env, s(&[&format!("PATH={DEFAULT_PATH}"), "HOME=/root"]));
    }
}
