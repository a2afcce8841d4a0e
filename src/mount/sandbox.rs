//! A root for running a program on a mounted image: the read-only mount under a writable overlay
//! (tmpfs upper, as Lambda's guest writes go to a local overlay and every cache tier stays
//! immutable), with /proc, the host's /dev and a fresh /tmp. Needs root. Everything mounted here
//! is unmounted (lazily, in reverse order) when the sandbox is dropped, also after an error.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use rustix::mount::{MountFlags, UnmountFlags, mount, mount_bind_recursive, unmount};

#[derive(Debug, thiserror::Error)]
#[error("sandbox: cannot {op} {}: {source}", path.display())]
pub struct SandboxError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

pub struct Sandbox {
    root: PathBuf,
    /// Mounted targets, innermost last.
    mounted: Vec<PathBuf>,
    /// Directories this sandbox created (removed at drop, deepest first).
    created: Vec<PathBuf>,
}

impl Sandbox {
    /// Builds the root in `work` (created; must not exist) over the image mounted at `lower`.
    pub fn prepare(lower: &Path, work: &Path) -> Result<Self, SandboxError> {
        let err = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source: io::Error| SandboxError { op, path, source }
        };
        fs::create_dir(work).map_err(err("create", work))?;
        let mut sb = Sandbox { root: work.join("root"), mounted: vec![], created: vec![] };
        sb.created.push(work.to_path_buf());
        let rw = work.join("rw");
        for d in [&rw, &sb.root] {
            fs::create_dir(d).map_err(err("create", d))?;
            sb.created.push(d.clone());
        }
        mount("tmpfs", &rw, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, c"mode=0755")
            .map_err(|e| err("mount tmpfs on", &rw)(e.into()))?;
        sb.mounted.push(rw.clone());
        let (upper, scratch) = (rw.join("upper"), rw.join("work"));
        for d in [&upper, &scratch] {
            fs::create_dir(d).map_err(err("create", d))?;
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            scratch.display()
        );
        let data = CString::new(data)
            .map_err(|_| err("mount overlay on", &sb.root)(io::ErrorKind::InvalidInput.into()))?;
        mount("overlay", &sb.root, "overlay", MountFlags::empty(), data.as_c_str())
            .map_err(|e| err("mount overlay on", &sb.root)(e.into()))?;
        sb.mounted.push(sb.root.clone());
        let (proc_, dev, tmp) = (sb.root.join("proc"), sb.root.join("dev"), sb.root.join("tmp"));
        for d in [&proc_, &dev, &tmp] {
            fs::create_dir_all(d).map_err(err("create", d))?;
        }
        mount("proc", &proc_, "proc", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None)
            .map_err(|e| err("mount proc on", &proc_)(e.into()))?;
        sb.mounted.push(proc_);
        mount_bind_recursive("/dev", &dev).map_err(|e| err("bind /dev on", &dev)(e.into()))?;
        sb.mounted.push(dev);
        mount("tmpfs", &tmp, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, c"mode=1777")
            .map_err(|e| err("mount tmpfs on", &tmp)(e.into()))?;
        sb.mounted.push(tmp);
        Ok(sb)
    }

    /// The sandbox's root directory (on the host).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts `program args...` chrooted into the sandbox, working directory `/`, with exactly
    /// the environment `env` (the host's would leak host paths into the trace as lookups). A
    /// program name without a `/` is searched in `env`'s `PATH`, as `execvp` does.
    pub fn spawn(
        &self,
        program: &str,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<Child, SandboxError> {
        let root = CString::new(self.root.as_os_str().as_bytes()).expect("paths have no NUL");
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir("/").env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        // SAFETY: between fork and exec the closure only makes two system calls on data
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::chroot(root.as_c_str())?;
                rustix::process::chdir(c"/")?;
                Ok(())
            });
        }
        cmd.spawn().map_err(|source| SandboxError { op: "run", path: PathBuf::from(program), source })
    }
}

/// The environment a command gets unless told otherwise: a container runtime's default `PATH`
/// and root's `HOME`, nothing from the host.
pub fn default_env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOME".into(), "/root".into()),
    ]
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for target in self.mounted.drain(..).rev() {
            let _ = unmount(&target, UnmountFlags::DETACH);
        }
        // Never a recursive removal: were an unmount to fail, it would reach into the host's /dev.
        for dir in self.created.drain(..).rev() {
            let _ = fs::remove_dir(&dir);
        }
    }
}
