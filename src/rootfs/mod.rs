//! Writes a flattened tree out as a root filesystem directory, as `umoci unpack` does: every
//! path, type, mode, owner (when root), xattr, mtime and hard-link group.
//!
//! Nothing half-written can look complete: the tree is built in a hidden staging directory next to
//! DEST and renamed into place only when every byte and every attribute has been written. No write
//! can escape DEST: every path is a tree path whose parents are directories this code created, and
//! files are created with `O_EXCL | O_NOFOLLOW`.

mod content;
mod layers;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use content::{ContentSource, FileRequest, FileSink, INLINE_LIMIT, NewFile};
pub use layers::LayerContent;
use serde::Serialize;

use crate::flatten::{Meta, NodeKind, Tree};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("destination {path}: {reason}")]
    Dest { path: PathBuf, reason: String },
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Content(Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What extraction did, and what it could not do without privileges.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExtractReport {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub bytes: u64,
    /// Device nodes skipped because we are not root (umoci's rootless mode does the same).
    pub skipped_devices: u64,
    /// Extended attributes the filesystem or our privileges refused.
    pub skipped_xattrs: u64,
    /// Whether ownership was applied (only as root).
    pub ownership: bool,
}

/// Extracts `tree` into `dest` (absent or an empty directory), reading file bytes from `source`.
pub fn extract(tree: &Tree, source: &dyn ContentSource, dest: &Path) -> Result<ExtractReport> {
    let replace_empty_dir = check_dest(dest)?;
    let staging = staging_path(dest)?;
    fs::DirBuilder::new().mode(0o700).create(&staging).map_err(|source| Error::Io {
        path: staging.clone(),
        op: "create staging directory",
        source,
    })?;
    match write_tree(tree, source, &staging) {
        Ok(report) => {
            if replace_empty_dir {
                fs::remove_dir(dest).map_err(|source| Error::Io {
                    path: dest.to_path_buf(),
                    op: "replace empty destination",
                    source,
                })?;
            }
            fs::rename(&staging, dest).map_err(|source| {
                let _ = fs::remove_dir_all(&staging);
                Error::Io { path: dest.to_path_buf(), op: "move into place", source }
            })?;
            Ok(report)
        }
        Err(e) => {
            let _ = make_removable(&staging);
            let _ = fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Returns whether DEST exists (as an empty directory that will be replaced).
fn check_dest(dest: &Path) -> Result<bool> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Io { path: dest.to_path_buf(), op: "stat", source }),
        Ok(m) if !m.is_dir() => {
            Err(Error::Dest { path: dest.to_path_buf(), reason: "exists and is not a directory".into() })
        }
        Ok(_) => {
            let mut entries = fs::read_dir(dest).map_err(|source| Error::Io {
                path: dest.to_path_buf(),
                op: "read",
                source,
            })?;
            if entries.next().is_some() {
                Err(Error::Dest { path: dest.to_path_buf(), reason: "exists and is not empty".into() })
            } else {
                Ok(true)
            }
        }
    }
}

fn staging_path(dest: &Path) -> Result<PathBuf> {
    let name = dest.file_name().ok_or_else(|| Error::Dest {
        path: dest.to_path_buf(),
        reason: "has no final path component".into(),
    })?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::Dest {
            path: dest.to_path_buf(),
            reason: "parent directory does not exist".into(),
        });
    }
    let mut staged = OsStr::new(".").to_os_string();
    staged.push(name);
    staged.push(format!(".chunkload-partial-{}", std::process::id()));
    Ok(parent.join(staged))
}

fn full_path(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() { root.to_path_buf() } else { root.join(OsStr::from_bytes(rel)) }
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io { path: path.to_path_buf(), op, source }
}

fn write_tree(tree: &Tree, source: &dyn ContentSource, root: &Path) -> Result<ExtractReport> {
    let is_root = rustix::process::geteuid().is_root();
    let mut report = ExtractReport { ownership: is_root, ..ExtractReport::default() };
    let walk = tree.walk();
    let mut first_name: Vec<Option<usize>> = vec![None; tree.len()];
    let mut requests = Vec::new();
    let mut links = Vec::new();
    // Pass 1: directories, symlinks, special files; regular files are queued for the content pass.
    for (i, (rel, id)) in walk.iter().enumerate() {
        let path = full_path(root, rel);
        let node = tree.node(*id);
        if let Some(first) = first_name[id.0 as usize] {
            links.push((first, i));
            continue;
        }
        first_name[id.0 as usize] = Some(i);
        match &node.kind {
            NodeKind::Dir(_) => {
                if !rel.is_empty() {
                    fs::DirBuilder::new().mode(0o700).create(&path).map_err(io_err(&path, "mkdir"))?;
                }
                report.dirs += 1;
            }
            NodeKind::File(content) => {
                report.files += 1;
                report.bytes += content.size;
                requests.push(FileRequest { content: *content, path, meta: node.meta.clone() });
            }
            NodeKind::Symlink(target) => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
                    .map_err(io_err(&path, "symlink"))?;
                report.symlinks += 1;
            }
            NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
                use rustix::fs::{FileType, Mode, makedev, mknodat};
                let ft = if matches!(node.kind, NodeKind::CharDevice { .. }) {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                match mknodat(rustix::fs::CWD, &path, ft, Mode::from_raw_mode(0o600), makedev(*major, *minor))
                {
                    Ok(()) => report.devices += 1,
                    Err(rustix::io::Errno::PERM) if !is_root => report.skipped_devices += 1,
                    Err(e) => return Err(io_err(&path, "mknod")(e.into())),
                }
            }
            NodeKind::Fifo => {
                use rustix::fs::{FileType, Mode, mknodat};
                mknodat(rustix::fs::CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(|e| io_err(&path, "mkfifo")(e.into()))?;
                report.devices += 1;
            }
        }
    }
    // Pass 2: file bytes (and their metadata), streamed from the source in its own order.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    report.skipped_xattrs += FileSink::run(is_root, threads, |sink| source.write_files(requests, sink))?;
    // Pass 3: hard links, then metadata; directories last and deepest first, since creating
    // entries inside a directory changes its mtime.
    for (first, other) in links {
        let (a, b) = (full_path(root, &walk[first].0), full_path(root, &walk[other].0));
        fs::hard_link(&a, &b).map_err(io_err(&b, "link"))?;
        report.hardlinks += 1;
    }
    let mut dirs = Vec::new();
    for (i, (rel, id)) in walk.iter().enumerate() {
        if first_name[id.0 as usize] != Some(i) {
            continue;
        }
        let node = tree.node(*id);
        let path = full_path(root, rel);
        match node.kind {
            NodeKind::Dir(_) => dirs.push((path, *id)),
            // Written with their metadata by the file sink.
            NodeKind::File(_) => {}
            NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. } if !path.exists() => {}
            _ => apply_meta(&path, &node.meta, &node.kind, is_root, &mut report)?,
        }
    }
    for (path, id) in dirs.iter().rev() {
        let node = tree.node(*id);
        apply_meta(path, &node.meta, &node.kind, is_root, &mut report)?;
    }
    Ok(report)
}

fn apply_meta(
    path: &Path,
    meta: &Meta,
    kind: &NodeKind,
    is_root: bool,
    report: &mut ExtractReport,
) -> Result<()> {
    let symlink = matches!(kind, NodeKind::Symlink(_));
    if is_root {
        let uid = u32::try_from(meta.uid).ok();
        let gid = u32::try_from(meta.gid).ok();
        std::os::unix::fs::lchown(path, uid, gid).map_err(io_err(path, "lchown"))?;
    }
    for (name, value) in &meta.xattrs {
        if let Err(e) = xattr::set(path, OsStr::from_bytes(name), value) {
            match e.raw_os_error() {
                Some(libc_eperm) if libc_eperm == rustix::io::Errno::PERM.raw_os_error() => {
                    report.skipped_xattrs += 1
                }
                Some(code) if code == rustix::io::Errno::NOTSUP.raw_os_error() => report.skipped_xattrs += 1,
                _ => return Err(io_err(path, "setxattr")(e)),
            }
        }
    }
    if !symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode)).map_err(io_err(path, "chmod"))?;
    }
    let t = filetime::FileTime::from_unix_time(meta.mtime.secs, meta.mtime.nanos);
    filetime::set_symlink_file_times(path, t, t).map_err(io_err(path, "utimes"))?;
    Ok(())
}

/// After a failure, directories may already carry read-only modes; restore owner write so the
/// staging tree can be removed.
fn make_removable(root: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(root)?;
    if meta.is_dir() {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(root)? {
            make_removable(&entry?.path())?;
        }
    }
    Ok(())
}
