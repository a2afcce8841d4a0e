//! The block image's metadata: an inode table, directory entries and a blob area, plus the
//! superblock in the image's last block that says where they are. Written after the data region
//! so it never shifts file data; read back to resolve paths to block ranges and to rebuild the
//! tree from a block image alone. Format: docs/block-format.md.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use super::{BLOCK_SIZE, Error};
use crate::flatten::{ContentRef, Meta, Mtime, Name, Node, NodeId, NodeKind, Tree};

pub const MAGIC: &[u8; 8] = b"CLBLOCK\0";
pub const VERSION: u32 = 1;
pub const INODE_SIZE: usize = 64;
const SUPER_USED: usize = 96;

pub const KIND_DIR: u8 = 1;
pub const KIND_FILE: u8 = 2;
pub const KIND_SYMLINK: u8 = 3;
pub const KIND_CHAR: u8 = 4;
pub const KIND_BLOCK: u8 = 5;
pub const KIND_FIFO: u8 = 6;

/// Where the metadata sits, as the superblock records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub data_blocks: u64,
    /// Byte offset of the metadata region (right after the data region).
    pub meta_offset: u64,
    pub meta_len: u64,
    pub inode_count: u32,
    /// Offsets of the directory-entry and blob areas, relative to `meta_offset`.
    pub dirents_offset: u64,
    pub blobs_offset: u64,
    pub meta_sha256: [u8; 32],
}

impl Superblock {
    pub fn encode(&self) -> [u8; BLOCK_SIZE as usize] {
        let mut b = [0u8; BLOCK_SIZE as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.data_blocks.to_le_bytes());
        b[24..32].copy_from_slice(&self.meta_offset.to_le_bytes());
        b[32..40].copy_from_slice(&self.meta_len.to_le_bytes());
        b[40..44].copy_from_slice(&self.inode_count.to_le_bytes());
        b[48..56].copy_from_slice(&self.dirents_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.blobs_offset.to_le_bytes());
        b[64..96].copy_from_slice(&self.meta_sha256);
        debug_assert_eq!(SUPER_USED, 96);
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Format(format!("superblock: {reason}"));
        if b.len() != BLOCK_SIZE as usize {
            return Err(bad("not one block long"));
        }
        if &b[0..8] != MAGIC {
            return Err(bad("bad magic (not a chunkload block image)"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        if u32_at(8) != VERSION {
            return Err(bad(&format!("unsupported version {}", u32_at(8))));
        }
        if u64::from(u32_at(12)) != BLOCK_SIZE {
            return Err(bad(&format!("block size {} (expected {BLOCK_SIZE})", u32_at(12))));
        }
        let sb = Superblock {
            data_blocks: u64_at(16),
            meta_offset: u64_at(24),
            meta_len: u64_at(32),
            inode_count: u32_at(40),
            dirents_offset: u64_at(48),
            blobs_offset: u64_at(56),
            meta_sha256: b[64..96].try_into().expect("32 bytes"),
        };
        if sb.data_blocks.checked_mul(BLOCK_SIZE) != Some(sb.meta_offset)
            || sb.dirents_offset > sb.meta_len
            || sb.blobs_offset > sb.meta_len
            || sb.dirents_offset < u64::from(sb.inode_count) * INODE_SIZE as u64
            || sb.blobs_offset < sb.dirents_offset
            || sb.inode_count == 0
        {
            return Err(bad("inconsistent offsets"));
        }
        Ok(sb)
    }

    /// Total size of the block image this superblock ends.
    pub fn image_size(&self) -> u64 {
        self.meta_offset + self.meta_len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE + BLOCK_SIZE
    }
}

/// Serialises the tree's metadata. Inodes are numbered in walk order (root = 0), so the same tree
/// always gives the same bytes.
pub fn encode(tree: &Tree, data_blocks: u64) -> (Superblock, Vec<u8>) {
    let inodes = tree.inodes();
    let number: BTreeMap<NodeId, u32> =
        inodes.iter().enumerate().map(|(i, (_, id))| (*id, i as u32)).collect();
    let mut table = Vec::with_capacity(inodes.len() * INODE_SIZE);
    let mut dirents = Vec::new();
    let mut blobs = Vec::new();
    for (_, id) in &inodes {
        let node = tree.node(*id);
        let (kind, size, data) = match &node.kind {
            NodeKind::Dir(children) => {
                let start = dirents.len() as u64;
                for (name, child) in children {
                    dirents.extend_from_slice(&number[child].to_le_bytes());
                    dirents.extend_from_slice(&(name.len() as u16).to_le_bytes());
                    dirents.extend_from_slice(name);
                }
                (KIND_DIR, dirents.len() as u64 - start, start)
            }
            NodeKind::File(c) => (KIND_FILE, c.size, c.block),
            NodeKind::Symlink(target) => {
                let start = blobs.len() as u64;
                blobs.extend_from_slice(target);
                (KIND_SYMLINK, target.len() as u64, start)
            }
            NodeKind::CharDevice { major, minor } => {
                (KIND_CHAR, 0, (u64::from(*major) << 32) | u64::from(*minor))
            }
            NodeKind::BlockDevice { major, minor } => {
                (KIND_BLOCK, 0, (u64::from(*major) << 32) | u64::from(*minor))
            }
            NodeKind::Fifo => (KIND_FIFO, 0, 0),
        };
        let xattr_start = blobs.len() as u64;
        for (name, value) in &node.meta.xattrs {
            blobs.extend_from_slice(&(name.len() as u16).to_le_bytes());
            blobs.extend_from_slice(name);
            blobs.extend_from_slice(&(value.len() as u32).to_le_bytes());
            blobs.extend_from_slice(value);
        }
        let xattr_len = blobs.len() as u64 - xattr_start;
        let mut rec = [0u8; INODE_SIZE];
        rec[0] = kind;
        rec[4..8].copy_from_slice(&node.meta.mode.to_le_bytes());
        rec[8..12].copy_from_slice(&(node.meta.uid as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(node.meta.gid as u32).to_le_bytes());
        rec[16..24].copy_from_slice(&node.meta.mtime.secs.to_le_bytes());
        rec[24..28].copy_from_slice(&node.meta.mtime.nanos.to_le_bytes());
        rec[28..32].copy_from_slice(&node.links.to_le_bytes());
        rec[32..40].copy_from_slice(&size.to_le_bytes());
        rec[40..48].copy_from_slice(&data.to_le_bytes());
        rec[48..56].copy_from_slice(&xattr_start.to_le_bytes());
        rec[56..60].copy_from_slice(&(xattr_len as u32).to_le_bytes());
        table.extend_from_slice(&rec);
    }
    let dirents_offset = table.len() as u64;
    let blobs_offset = dirents_offset + dirents.len() as u64;
    let mut meta = table;
    meta.extend_from_slice(&dirents);
    meta.extend_from_slice(&blobs);
    let sb = Superblock {
        data_blocks,
        meta_offset: data_blocks * BLOCK_SIZE,
        meta_len: meta.len() as u64,
        inode_count: inodes.len() as u32,
        dirents_offset,
        blobs_offset,
        meta_sha256: Sha256::digest(&meta).into(),
    };
    (sb, meta)
}

/// Extended attributes as (name, value) pairs.
pub type Xattrs = Vec<(Name, Box<[u8]>)>;

/// Metadata read back from a block image.
#[derive(Debug)]
pub struct BlockMeta {
    pub superblock: Superblock,
    meta: Vec<u8>,
}

/// One inode as stored.
#[derive(Debug, Clone, Copy)]
pub struct Inode {
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Mtime,
    pub nlink: u32,
    pub size: u64,
    pub data: u64,
    xattr_offset: u64,
    xattr_len: u32,
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        self.kind == KIND_DIR
    }

    pub fn is_file(&self) -> bool {
        self.kind == KIND_FILE
    }

    /// For a regular file: the byte range it occupies in the block image.
    pub fn byte_range(&self) -> Option<std::ops::Range<u64>> {
        self.is_file().then(|| self.data * BLOCK_SIZE..self.data * BLOCK_SIZE + self.size)
    }
}

impl BlockMeta {
    /// Checks the metadata against the superblock's hash and bounds before anything reads it.
    pub fn new(superblock: Superblock, meta: Vec<u8>) -> Result<Self, Error> {
        if meta.len() as u64 != superblock.meta_len {
            return Err(Error::Format("metadata length does not match the superblock".into()));
        }
        let actual: [u8; 32] = Sha256::digest(&meta).into();
        if actual != superblock.meta_sha256 {
            return Err(Error::Format("metadata does not match the superblock's sha256".into()));
        }
        let m = BlockMeta { superblock, meta };
        for i in 0..m.superblock.inode_count {
            m.check_inode(i)?;
        }
        Ok(m)
    }

    pub fn inode_count(&self) -> u32 {
        self.superblock.inode_count
    }

    /// Byte range of inode `ino`'s record, relative to the metadata region.
    pub fn inode_range(ino: u32) -> std::ops::Range<u64> {
        let start = u64::from(ino) * INODE_SIZE as u64;
        start..start + INODE_SIZE as u64
    }

    pub fn inode(&self, ino: u32) -> Inode {
        let r = Self::inode_range(ino);
        let b = &self.meta[r.start as usize..r.end as usize];
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
        Inode {
            kind: b[0],
            mode: u32_at(4),
            uid: u32_at(8),
            gid: u32_at(12),
            mtime: Mtime { secs: u64_at(16) as i64, nanos: u32_at(24) },
            nlink: u32_at(28),
            size: u64_at(32),
            data: u64_at(40),
            xattr_offset: u64_at(48),
            xattr_len: u32_at(56),
        }
    }

    fn check_inode(&self, ino: u32) -> Result<(), Error> {
        let i = self.inode(ino);
        let bad = |reason: &str| Error::Format(format!("inode {ino}: {reason}"));
        let sb = &self.superblock;
        let blobs_len = sb.meta_len - sb.blobs_offset;
        if i.xattr_offset.saturating_add(u64::from(i.xattr_len)) > blobs_len {
            return Err(bad("xattrs out of bounds"));
        }
        match i.kind {
            KIND_DIR => {
                if i.data.saturating_add(i.size) > sb.blobs_offset - sb.dirents_offset {
                    return Err(bad("directory entries out of bounds"));
                }
                for (_, child) in self.entries(ino)? {
                    if child >= sb.inode_count || child == 0 {
                        return Err(bad("directory entry names a bad inode"));
                    }
                }
            }
            KIND_FILE => {
                if i.data.saturating_add(i.size.div_ceil(BLOCK_SIZE)) > sb.data_blocks {
                    return Err(bad("file extent outside the data region"));
                }
            }
            KIND_SYMLINK => {
                if i.data.saturating_add(i.size) > blobs_len {
                    return Err(bad("symlink target out of bounds"));
                }
            }
            KIND_CHAR | KIND_BLOCK | KIND_FIFO => {}
            k => return Err(bad(&format!("unknown kind {k}"))),
        }
        if ino == 0 && i.kind != KIND_DIR {
            return Err(bad("root is not a directory"));
        }
        Ok(())
    }

    /// Byte range of a directory's entries, relative to the metadata region.
    pub fn entries_range(&self, ino: u32) -> std::ops::Range<u64> {
        let i = self.inode(ino);
        let start = self.superblock.dirents_offset + i.data;
        start..start + i.size
    }

    /// A directory's entries in name order.
    pub fn entries(&self, ino: u32) -> Result<Vec<(&[u8], u32)>, Error> {
        let r = self.entries_range(ino);
        let mut b = &self.meta[r.start as usize..r.end as usize];
        let mut out = Vec::new();
        while !b.is_empty() {
            if b.len() < 6 {
                return Err(Error::Format(format!("inode {ino}: truncated directory entry")));
            }
            let child = u32::from_le_bytes(b[0..4].try_into().expect("4"));
            let len = usize::from(u16::from_le_bytes(b[4..6].try_into().expect("2")));
            if b.len() < 6 + len || len == 0 {
                return Err(Error::Format(format!("inode {ino}: bad directory entry name")));
            }
            out.push((&b[6..6 + len], child));
            b = &b[6 + len..];
        }
        Ok(out)
    }

    fn blob(&self, offset: u64, len: u64) -> &[u8] {
        let start = (self.superblock.blobs_offset + offset) as usize;
        &self.meta[start..start + len as usize]
    }

    /// Resolves a path without following symlinks (like `lstat`): the inode and the metadata
    /// byte ranges read on the way. See [`BlockMeta::resolve`].
    pub fn lookup(&self, path: &[u8]) -> Option<(u32, Vec<std::ops::Range<u64>>)> {
        match self.resolve(path, false) {
            (Some(ino), touched) => Some((ino, touched)),
            (None, _) => None,
        }
    }

    /// Resolves an absolute path the way a filesystem lookup does, following symlinks (relative
    /// ones from their directory, absolute ones from the root, `..` clamped at the root; at most
    /// 40), including a symlink in the last component when `follow_last` is set. Returns the
    /// inode if the path exists, and in any case the metadata byte ranges read on the way (each
    /// directory's inode and entries, each symlink's inode and target), so that a failed lookup
    /// still costs what it read.
    pub fn resolve(&self, path: &[u8], follow_last: bool) -> (Option<u32>, Vec<std::ops::Range<u64>>) {
        let mut touched = vec![Self::inode_range(0)];
        let mut stack = vec![0u32];
        let mut todo: std::collections::VecDeque<Vec<u8>> =
            path.split(|&b| b == b'/').filter(|p| !p.is_empty()).map(<[u8]>::to_vec).collect();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            let dir = *stack.last().expect("root stays");
            match part.as_slice() {
                b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            if !self.inode(dir).is_dir() {
                return (None, touched);
            }
            let Ok(entries) = self.entries(dir) else { return (None, touched) };
            let found = entries.binary_search_by(|(name, _)| (*name).cmp(part.as_slice()));
            touched.extend(self.lookup_reads(dir, &entries, found.unwrap_or_else(|i| i)));
            let Ok(idx) = found else {
                return (None, touched);
            };
            let ino = entries[idx].1;
            touched.push(Self::inode_range(ino));
            let node = self.inode(ino);
            if node.kind == KIND_SYMLINK && (follow_last || !todo.is_empty()) {
                links += 1;
                if links > 40 {
                    return (None, touched);
                }
                let start = self.superblock.blobs_offset + node.data;
                touched.push(start..start + node.size);
                let target = self.blob(node.data, node.size).to_vec();
                if target.starts_with(b"/") {
                    stack.truncate(1);
                }
                for p in target.split(|&b| b == b'/').filter(|p| !p.is_empty()).rev() {
                    todo.push_front(p.to_vec());
                }
                continue;
            }
            stack.push(ino);
        }
        (Some(*stack.last().expect("root stays")), touched)
    }

    /// What looking one name up in a directory reads, modelled on ext4's hashed directories: the
    /// directory's first block (the index root) and the block holding the entry (or where it
    /// would be), not the whole directory.
    fn lookup_reads(&self, dir: u32, entries: &[(&[u8], u32)], idx: usize) -> Vec<std::ops::Range<u64>> {
        let area = self.entries_range(dir);
        if area.is_empty() {
            return Vec::new();
        }
        let at: u64 = entries[..idx.min(entries.len())].iter().map(|(n, _)| 6 + n.len() as u64).sum();
        let first = area.start..(area.start + 1).min(area.end);
        let pos = (area.start + at).min(area.end - 1);
        vec![first, pos..pos + 1]
    }

    /// Rebuilds the flattened tree from the metadata alone (what a worker has: no layers).
    /// File contents point at the block image: `ContentRef::block` is authoritative.
    pub fn to_tree(&self) -> Result<Tree, Error> {
        let mut tree = Tree::new();
        let n = self.superblock.inode_count as usize;
        let mut ids: Vec<Option<NodeId>> = vec![None; n];
        ids[0] = Some(NodeId::ROOT);
        tree.node_mut(NodeId::ROOT).meta = self.meta_of(0)?;
        // Inodes are numbered in walk order, so a parent always precedes its children.
        for ino in 0..n as u32 {
            if !self.inode(ino).is_dir() {
                continue;
            }
            let parent =
                ids[ino as usize].ok_or_else(|| Error::Format(format!("inode {ino} is unreachable")))?;
            for (name, child) in self.entries(ino)? {
                let id = match ids[child as usize] {
                    // A second name for a directory would make the tree a graph (walks would loop).
                    Some(_) if self.inode(child).is_dir() => {
                        return Err(Error::Format(format!("directory inode {child} has more than one name")));
                    }
                    Some(id) => id,
                    None => {
                        let id = tree.add(self.node_of(child)?);
                        ids[child as usize] = Some(id);
                        id
                    }
                };
                if let NodeKind::Dir(children) = &mut tree.node_mut(parent).kind {
                    let name: Name = name.into();
                    children.insert(name, id);
                }
            }
        }
        Ok(tree)
    }

    /// Inode `ino`'s extended attributes (name, value), in stored order.
    pub fn xattrs(&self, ino: u32) -> Result<Xattrs, Error> {
        Ok(self.meta_of(ino)?.xattrs)
    }

    /// A symbolic link's target (empty for anything else).
    pub fn symlink_target(&self, ino: u32) -> &[u8] {
        let i = self.inode(ino);
        if i.kind == KIND_SYMLINK { self.blob(i.data, i.size) } else { &[] }
    }

    fn meta_of(&self, ino: u32) -> Result<Meta, Error> {
        let i = self.inode(ino);
        let mut xattrs = Vec::new();
        let mut b = self.blob(i.xattr_offset, u64::from(i.xattr_len));
        while !b.is_empty() {
            let bad = || Error::Format(format!("inode {ino}: malformed xattrs"));
            let nlen = usize::from(u16::from_le_bytes(b.get(0..2).ok_or_else(bad)?.try_into().expect("2")));
            let name = b.get(2..2 + nlen).ok_or_else(bad)?;
            let vlen_at = 2 + nlen;
            let vlen = u32::from_le_bytes(b.get(vlen_at..vlen_at + 4).ok_or_else(bad)?.try_into().expect("4"))
                as usize;
            let value = b.get(vlen_at + 4..vlen_at + 4 + vlen).ok_or_else(bad)?;
            xattrs.push((name.into(), value.into()));
            b = &b[vlen_at + 4 + vlen..];
        }
        Ok(Meta { mode: i.mode, uid: u64::from(i.uid), gid: u64::from(i.gid), mtime: i.mtime, xattrs })
    }

    fn node_of(&self, ino: u32) -> Result<Node, Error> {
        let i = self.inode(ino);
        let kind = match i.kind {
            KIND_DIR => NodeKind::Dir(BTreeMap::new()),
            KIND_FILE => NodeKind::File(ContentRef {
                layer: 0,
                offset: i.data * BLOCK_SIZE,
                size: i.size,
                block: i.data,
            }),
            KIND_SYMLINK => NodeKind::Symlink(self.blob(i.data, i.size).into()),
            KIND_CHAR => NodeKind::CharDevice { major: (i.data >> 32) as u32, minor: i.data as u32 },
            KIND_BLOCK => NodeKind::BlockDevice { major: (i.data >> 32) as u32, minor: i.data as u32 },
            _ => NodeKind::Fifo,
        };
        Ok(Node { meta: self.meta_of(ino)?, kind, links: i.nlink, layer: 0 })
    }
}
