//! The FUSE filesystem: the image's flattened root, read-only, straight from the block image's
//! metadata ([`BlockMeta`]) with file bytes from the [`Loader`]. FUSE inode `n + 1` is block-image
//! inode `n` (FUSE's root is 1), so hard links share an inode and report their link count.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
    Request,
};

use crate::layout::meta::{KIND_BLOCK, KIND_CHAR, KIND_DIR, KIND_FILE, KIND_SYMLINK};
use crate::layout::{BLOCK_SIZE, BlockMeta};
use crate::trace::Access;

use super::loader::Loader;
use super::record::{Arrival, Recorder};

/// How long the kernel may cache attributes and entries. The image never changes under a mount,
/// so this only bounds how often a repeated lookup reaches the agent (and the trace): like a guest
/// kernel's dentry cache, a second lookup of a name within the TTL is not seen.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

pub struct ImageFs {
    meta: BlockMeta,
    /// Per block-image inode: its parent directory (the root is its own parent).
    parents: Vec<u32>,
    /// Per block-image inode: the first path that names it, in walk order.
    paths: Vec<Vec<u8>>,
    loader: Arc<Loader>,
    recorder: Option<Arc<Recorder>>,
}

fn log(msg: std::fmt::Arguments) {
    eprintln!("chunkload mount: {msg}");
}

impl ImageFs {
    pub fn new(
        meta: BlockMeta,
        loader: Arc<Loader>,
        recorder: Option<Arc<Recorder>>,
    ) -> Result<Self, crate::layout::Error> {
        let n = meta.inode_count() as usize;
        let mut parents = vec![0u32; n];
        let mut paths: Vec<Vec<u8>> = vec![Vec::new(); n];
        paths[0] = b"/".to_vec();
        // Inodes are numbered in walk order: a directory comes before its children.
        for ino in 0..n as u32 {
            if !meta.inode(ino).is_dir() {
                continue;
            }
            for (name, child) in meta.entries(ino)? {
                if paths[child as usize].is_empty() {
                    paths[child as usize] = join(&paths[ino as usize], name);
                    parents[child as usize] = ino;
                }
            }
        }
        Ok(ImageFs { meta, parents, paths, loader, recorder })
    }

    /// Notes a request's arrival, when recording; [`Arrival::answered`] records it after the reply.
    fn arrive(&self) -> Option<Arrival<'_>> {
        self.recorder.as_deref().map(Recorder::arrive)
    }

    /// The block-image inode of FUSE inode `ino`, if it exists.
    fn inode_of(&self, ino: INodeNo) -> Option<u32> {
        let n = ino.0.checked_sub(1)?;
        (n < u64::from(self.meta.inode_count())).then_some(n as u32)
    }

    fn attr(&self, ino: u32) -> FileAttr {
        let i = self.meta.inode(ino);
        let kind = match i.kind {
            KIND_DIR => FileType::Directory,
            KIND_FILE => FileType::RegularFile,
            KIND_SYMLINK => FileType::Symlink,
            KIND_CHAR => FileType::CharDevice,
            KIND_BLOCK => FileType::BlockDevice,
            _ => FileType::NamedPipe,
        };
        let size = match i.kind {
            KIND_FILE | KIND_SYMLINK => i.size,
            KIND_DIR => BLOCK_SIZE,
            _ => 0,
        };
        let rdev = match i.kind {
            KIND_CHAR | KIND_BLOCK => libc::makedev((i.data >> 32) as u32, i.data as u32) as u32,
            _ => 0,
        };
        let mtime = if i.mtime.secs >= 0 {
            UNIX_EPOCH + Duration::new(i.mtime.secs as u64, i.mtime.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(i.mtime.secs.unsigned_abs())
                + Duration::from_nanos(u64::from(i.mtime.nanos))
        };
        FileAttr {
            ino: INodeNo(u64::from(ino) + 1),
            size,
            blocks: size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind,
            perm: (i.mode & 0o7777) as u16,
            nlink: i.nlink.max(1),
            uid: i.uid,
            gid: i.gid,
            rdev,
            blksize: BLOCK_SIZE as u32,
            flags: 0,
        }
    }

    /// Serves `size` bytes at `offset` of file inode `ino` from the loader.
    fn read_file(&self, ino: u32, offset: u64, size: u32) -> Result<Vec<u8>, super::loader::LoadError> {
        let i = self.meta.inode(ino);
        let range = i.byte_range().expect("a regular file");
        let end = offset.saturating_add(u64::from(size)).min(i.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let cs = self.loader.chunk_size();
        let (from, to) = (range.start + offset, range.start + end);
        let mut out = Vec::with_capacity((to - from) as usize);
        // Read-ahead stays within this file.
        let last = (range.end.max(range.start + 1) - 1) / cs;
        let last = u32::try_from(last).unwrap_or(u32::MAX);
        let mut pos = from;
        while pos < to {
            let index = (pos / cs) as u32;
            let chunk = self.loader.chunk_within(index, last)?;
            let within = (pos - u64::from(index) * cs) as usize;
            let take = ((to - pos) as usize).min(cs as usize - within);
            out.extend_from_slice(&chunk[within..within + take]);
            pos += take as u64;
        }
        Ok(out)
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir == b"/" { [b"/", name].concat() } else { [dir, b"/", name].concat() }
}

impl Filesystem for ImageFs {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let arrival = self.arrive();
        let Some(dir) = self.inode_of(parent) else { return reply.error(Errno::ENOENT) };
        if !self.meta.inode(dir).is_dir() {
            return reply.error(Errno::ENOTDIR);
        }
        let name = name.as_bytes();
        let mut looked_up = None;
        let found = match name {
            b"." => Some(dir),
            b".." => Some(self.parents[dir as usize]),
            _ => {
                looked_up = Some(join(&self.paths[dir as usize], name));
                match self.meta.entries(dir) {
                    Ok(entries) => {
                        entries.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| entries[i].1)
                    }
                    Err(e) => {
                        log(format_args!(
                            "directory {}: {e}",
                            String::from_utf8_lossy(&self.paths[dir as usize])
                        ));
                        return reply.error(Errno::EIO);
                    }
                }
            }
        };
        match found {
            Some(ino) => reply.entry(&TTL, &self.attr(ino), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
        if let (Some(a), Some(path)) = (arrival, looked_up) {
            a.answered(req.pid(), &path, Access::Stat);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inode_of(ino) {
            Some(n) => reply.attr(&TTL, &self.attr(n)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.inode_of(ino) {
            Some(n) if self.meta.inode(n).kind == KIND_SYMLINK => reply.data(self.meta.symlink_target(n)),
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let arrival = self.arrive();
        let Some(n) = self.inode_of(ino) else { return reply.error(Errno::ENOENT) };
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        // Keep the page cache across opens: the image is immutable, and a guest's page cache
        // over a block device keeps pages too, so a page reaches the agent (and the trace) once.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
        if let Some(a) = arrival {
            a.answered(req.pid(), &self.paths[n as usize], Access::Open);
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let arrival = self.arrive();
        let Some(n) = self.inode_of(ino) else { return reply.error(Errno::ENOENT) };
        if !self.meta.inode(n).is_file() {
            return reply.error(Errno::EISDIR);
        }
        let path = &self.paths[n as usize];
        match self.read_file(n, offset, size) {
            Ok(data) => {
                reply.data(&data);
                if let (Some(a), false) = (arrival, data.is_empty()) {
                    a.answered(req.pid(), path, Access::Read { offset, len: data.len() as u64 });
                }
            }
            Err(e) => {
                log(format_args!(
                    "read of {} at offset {offset} ({size} bytes) failed: {e}",
                    String::from_utf8_lossy(path)
                ));
                reply.error(Errno::EIO);
            }
        }
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let arrival = self.arrive();
        let Some(n) = self.inode_of(ino) else { return reply.error(Errno::ENOENT) };
        if !self.meta.inode(n).is_dir() {
            return reply.error(Errno::ENOTDIR);
        }
        // The format has no readdir op: listing a directory is recorded as opening it.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR);
        if let Some(a) = arrival {
            a.answered(req.pid(), &self.paths[n as usize], Access::Open);
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(n) = self.inode_of(ino) else { return reply.error(Errno::ENOENT) };
        let entries = match self.meta.entries(n) {
            Ok(e) => e,
            Err(e) => {
                log(format_args!("directory {}: {e}", String::from_utf8_lossy(&self.paths[n as usize])));
                return reply.error(Errno::EIO);
            }
        };
        let dots = [(b".".as_slice(), n), (b"..".as_slice(), self.parents[n as usize])];
        for (i, (name, child)) in dots.into_iter().chain(entries).enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(u64::from(child) + 1),
                i as u64 + 1,
                self.attr(child).kind,
                OsStr::from_bytes(name),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let blocks = self.meta.superblock.image_size() / BLOCK_SIZE;
        let files = u64::from(self.meta.inode_count());
        reply.statfs(blocks, 0, 0, files, 0, BLOCK_SIZE as u32, 255, BLOCK_SIZE as u32);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(n) = self.inode_of(ino) else { return reply.error(Errno::ENOENT) };
        let Ok(xattrs) = self.meta.xattrs(n) else { return reply.error(Errno::EIO) };
        match xattrs.into_iter().find(|(k, _)| &**k == name.as_bytes()) {
            None => reply.error(Errno::NO_XATTR),
            Some((_, v)) => xattr_reply(reply, &v, size),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some(n) = self.inode_of(ino) else { return reply.error(Errno::ENOENT) };
        let Ok(xattrs) = self.meta.xattrs(n) else { return reply.error(Errno::EIO) };
        let mut list = Vec::new();
        for (k, _) in xattrs {
            list.extend_from_slice(&k);
            list.push(0);
        }
        xattr_reply(reply, &list, size);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // Permission checks are the kernel's (default_permissions); this only says the inode exists.
        match self.inode_of(ino) {
            Some(_) => reply.ok(),
            None => reply.error(Errno::ENOENT),
        }
    }
}

/// The xattr protocol: size 0 asks for the length, a too-small buffer is ERANGE.
fn xattr_reply(reply: ReplyXattr, value: &[u8], size: u32) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() <= size as usize {
        reply.data(value);
    } else {
        reply.error(Errno::ERANGE);
    }
}
