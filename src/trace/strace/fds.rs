//! Descriptor state while importing: which open file description each descriptor number (with
//! the path `-y` showed for it) refers to, and that description's offset; and the host paths
//! descriptors carry, relative to the chroot. Threads share descriptor tables and forked children
//! share descriptions, so descriptors are keyed by number and path across processes.

use std::collections::HashMap;

use super::grammar::Fd;
use crate::trace::format::TracePath;

/// Where a read on a descriptor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadAt {
    /// At this offset (the description's position moved past the read).
    Offset(u64),
    /// The descriptor is known but its offset is not (seen only through an `lseek` failure path or
    /// a `dup` of such a descriptor).
    UnknownOffset,
    /// No open of this descriptor was seen.
    NotOpen,
}

/// The open descriptors and their descriptions' offsets.
#[derive(Debug, Default)]
pub(super) struct FdTable {
    /// (descriptor, host path) -> index into `positions`.
    fds: HashMap<(i64, Vec<u8>), usize>,
    /// One per open file description: its offset, when known.
    positions: Vec<Option<u64>>,
}

fn key(fd: &Fd) -> (i64, Vec<u8>) {
    (fd.0, fd.1.clone().unwrap_or_default())
}

impl FdTable {
    /// A successful open: a new description at offset 0.
    pub fn open(&mut self, fd: i64, host: &[u8]) {
        self.positions.push(Some(0));
        self.fds.insert((fd, host.to_vec()), self.positions.len() - 1);
    }

    /// A read of `n` bytes at the description's position, which moves past it.
    pub fn read(&mut self, fd: &Fd, n: u64) -> ReadAt {
        match self.fds.get(&key(fd)) {
            Some(&slot) => {
                let pos = self.positions[slot];
                self.positions[slot] = pos.map(|p| p + n);
                pos.map_or(ReadAt::UnknownOffset, ReadAt::Offset)
            }
            None => ReadAt::NotOpen,
        }
    }

    /// `lseek` returned `pos`: the description is there now (a descriptor never seen opened gets
    /// a description of its own from here on).
    pub fn seek(&mut self, fd: &Fd, pos: u64) {
        let slot = match self.fds.get(&key(fd)) {
            Some(&slot) => slot,
            None => {
                self.positions.push(None);
                let slot = self.positions.len() - 1;
                self.fds.insert(key(fd), slot);
                slot
            }
        };
        self.positions[slot] = Some(pos);
    }

    pub fn close(&mut self, fd: &Fd) {
        self.fds.remove(&key(fd));
    }

    /// `dup*`/`fcntl(F_DUPFD)`: `new` (with its own annotation, else `old`'s path) shares `old`'s
    /// description. Nothing happens when `old` is not open.
    pub fn dup(&mut self, old: &Fd, new: i64, annotation: Option<Vec<u8>>) {
        if let Some(&slot) = self.fds.get(&key(old)) {
            let path = annotation.or_else(|| old.1.clone()).unwrap_or_default();
            self.fds.insert((new, path), slot);
        }
    }
}

/// Lexically cleaned absolute path: no empty, `.` or `..` components (`..` at the top stays at `/`).
pub(super) fn normalize(p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in p.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `host` (clean) relative to `root` (clean, empty for `/`), as a trace path.
pub(super) fn strip_root(host: &[u8], root: &[u8]) -> Option<TracePath> {
    let rest = host.strip_prefix(root)?;
    let rest = if rest.is_empty() { b"/" } else { rest };
    if !rest.starts_with(b"/") {
        return None;
    }
    TracePath::new(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(n: i64, path: &str) -> Fd {
        (n, Some(path.as_bytes().to_vec()))
    }

    #[test]
    fn reads_advance_the_description_and_dups_share_it() {
        let mut t = FdTable::default();
        t.open(3, b"/r/a");
        assert_eq!(t.read(&fd(3, "/r/a"), 10), ReadAt::Offset(0));
        t.dup(&fd(3, "/r/a"), 4, None);
        assert_eq!(t.read(&fd(4, "/r/a"), 5), ReadAt::Offset(10));
        assert_eq!(t.read(&fd(3, "/r/a"), 1), ReadAt::Offset(15));
        t.seek(&fd(4, "/r/a"), 100);
        assert_eq!(t.read(&fd(3, "/r/a"), 1), ReadAt::Offset(100));
        t.close(&fd(3, "/r/a"));
        assert_eq!(t.read(&fd(3, "/r/a"), 1), ReadAt::NotOpen);
        assert_eq!(t.read(&fd(4, "/r/a"), 1), ReadAt::Offset(101), "the dup keeps the description");
    }

    #[test]
    fn the_same_number_on_another_path_is_another_descriptor() {
        let mut t = FdTable::default();
        t.open(3, b"/r/a");
        assert_eq!(t.read(&fd(3, "/r/b"), 1), ReadAt::NotOpen);
        t.seek(&fd(5, "/r/c"), 7);
        assert_eq!(t.read(&fd(5, "/r/c"), 1), ReadAt::Offset(7));
        t.dup(&fd(9, "/r/none"), 10, None);
        assert_eq!(t.read(&fd(10, "/r/none"), 1), ReadAt::NotOpen);
    }

    #[test]
    fn paths_are_cleaned_and_taken_relative_to_the_root() {
        assert_eq!(normalize(b"/a/./b//../c/"), b"/a/c");
        assert_eq!(normalize(b"/.."), b"/");
        assert_eq!(strip_root(b"/tmp/root/etc/x", b"/tmp/root").unwrap().to_string(), "/etc/x");
        assert_eq!(strip_root(b"/tmp/root", b"/tmp/root").unwrap().to_string(), "/");
        assert!(strip_root(b"/tmp/rootfs/x", b"/tmp/root").is_none(), "a sibling directory is outside");
    }
}
