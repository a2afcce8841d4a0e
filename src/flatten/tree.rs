//! The flattened filesystem tree. It holds metadata and, for each regular file, a reference to
//! where its bytes live (layer and offset in that layer's uncompressed tar stream), never the bytes,
//! so memory grows with the number of entries, not with the size of the image.

use std::collections::BTreeMap;

/// Index of an inode in the tree's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl NodeId {
    pub const ROOT: NodeId = NodeId(0);
}

/// A file or directory name (bytes: tar names need not be UTF-8).
pub type Name = Box<[u8]>;

/// Where a regular file's bytes are: `size` bytes at `offset` of layer `layer`'s tar stream, and
/// where the block image puts them: at block `block` of its data region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRef {
    pub layer: usize,
    pub offset: u64,
    pub size: u64,
    pub block: u64,
}

/// Modification time as a tar header (or PAX record) gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mtime {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Mtime,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Name, Box<[u8]>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir(BTreeMap<Name, NodeId>),
    File(ContentRef),
    Symlink(Box<[u8]>),
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Fifo,
}

impl NodeKind {
    pub fn label(&self) -> &'static str {
        match self {
            NodeKind::Dir(_) => "directory",
            NodeKind::File(_) => "regular file",
            NodeKind::Symlink(_) => "symlink",
            NodeKind::CharDevice { .. } => "character device",
            NodeKind::BlockDevice { .. } => "block device",
            NodeKind::Fifo => "fifo",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub meta: Meta,
    pub kind: NodeKind,
    /// Number of directory entries naming this node (hard links). Zero means it is dead.
    pub links: u32,
    /// The layer that created this node.
    pub layer: usize,
}

/// An arena of inodes; directories map names to inodes, so hard links are two names, one node.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// A tree holding only the root directory (mode 0755, root-owned, as umoci creates it).
    pub fn new() -> Self {
        let root = Node {
            meta: Meta { mode: 0o755, ..Meta::default() },
            kind: NodeKind::Dir(BTreeMap::new()),
            links: 1,
            layer: 0,
        };
        Tree { nodes: vec![root] }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.0 as usize]
    }

    pub fn add(&mut self, node: Node) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).expect("more than 4 billion inodes"));
        self.nodes.push(node);
        id
    }

    pub fn children(&self, dir: NodeId) -> Option<&BTreeMap<Name, NodeId>> {
        match &self.node(dir).kind {
            NodeKind::Dir(c) => Some(c),
            _ => None,
        }
    }

    pub fn lookup(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        self.children(dir)?.get(name).copied()
    }

    /// Every live path in depth-first, name-sorted order (parents before children), starting with
    /// the root (empty path). Deterministic: this order drives extraction and layout.
    pub fn walk(&self) -> Vec<(Vec<u8>, NodeId)> {
        let mut out = Vec::new();
        let mut stack = vec![(Vec::new(), NodeId::ROOT)];
        while let Some((path, id)) = stack.pop() {
            if let NodeKind::Dir(children) = &self.node(id).kind {
                for (name, child) in children.iter().rev() {
                    let mut p = path.clone();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(name);
                    stack.push((p, *child));
                }
            }
            out.push((path, id));
        }
        out
    }

    /// All live nodes, each once (hard links are not repeated), with their first path in walk order.
    pub fn inodes(&self) -> Vec<(Vec<u8>, NodeId)> {
        let mut seen = vec![false; self.nodes.len()];
        self.walk().into_iter().filter(|(_, id)| !std::mem::replace(&mut seen[id.0 as usize], true)).collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Iterates over all nodes ever created, live or dead.
    pub fn all_nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i as u32), n))
    }
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}
