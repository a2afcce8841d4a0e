//! Applies one layer's entries onto the tree with OCI semantics, the way umoci unpacks: parents
//! are resolved inside the root (symlinks followed, `..` clamped at `/`, like securejoin), a later
//! entry of any type replaces an earlier one (two directories merge), `.wh.NAME` removes NAME and
//! everything under it, and `.wh..wh..opq` removes what lower layers had in that directory.

use std::collections::{BTreeMap, HashSet, VecDeque};

use super::error::EntryProblem;
use super::scan::{EntryKind, LayerEntry};
use super::tree::{ContentRef, Meta, Name, Node, NodeId, NodeKind, Tree};
use super::{LayerStats, path};

/// Linux's limit on symlinks followed while resolving one path.
const MAX_SYMLINKS: usize = 40;

/// Applies layers in order, keeping the per-layer statistics.
pub struct Applier<'a> {
    pub tree: &'a mut Tree,
    pub stats: &'a mut [LayerStats],
    /// The block image's append-only allocator: every regular-file entry of every layer gets the
    /// next free blocks in the order layers are applied, so images that share base layers place
    /// those files at identical offsets, and a file hidden later leaves a hole instead of shifting
    /// what follows.
    pub next_block: &'a mut u64,
}

/// State for applying one layer.
struct LayerCtx {
    layer: usize,
    /// Nodes this layer created or touched: an opaque whiteout in the same layer keeps them.
    upper: HashSet<NodeId>,
}

impl Applier<'_> {
    pub fn apply_layer(&mut self, layer: usize, entries: &[LayerEntry]) -> Result<(), (usize, EntryProblem)> {
        let mut ctx = LayerCtx { layer, upper: HashSet::new() };
        self.stats[layer].first_block = *self.next_block;
        for (i, entry) in entries.iter().enumerate() {
            self.apply_entry(&mut ctx, entry).map_err(|p| (i, p))?;
        }
        self.stats[layer].blocks = *self.next_block - self.stats[layer].first_block;
        Ok(())
    }

    fn apply_entry(&mut self, ctx: &mut LayerCtx, e: &LayerEntry) -> Result<(), EntryProblem> {
        let st = &mut self.stats[ctx.layer];
        st.entries += 1;
        match &e.kind {
            EntryKind::Whiteout(name) => {
                st.whiteouts += 1;
                if let Some(dir) = self.resolve_dir(ctx, &e.parts, false)?
                    && let Some(victim) = self.tree.lookup(dir, name)
                {
                    self.unlink(ctx, dir, name, victim);
                }
                Ok(())
            }
            EntryKind::Opaque => {
                st.opaque_whiteouts += 1;
                if let Some(dir) = self.resolve_dir(ctx, &e.parts, false)?
                    && matches!(self.tree.node(dir).kind, NodeKind::Dir(_))
                {
                    self.make_opaque(ctx, dir);
                }
                Ok(())
            }
            _ => self.add_entry(ctx, e),
        }
    }

    fn add_entry(&mut self, ctx: &mut LayerCtx, e: &LayerEntry) -> Result<(), EntryProblem> {
        let Some((name, parent_parts)) = e.parts.split_last() else {
            // The root itself: only a directory may stand there; it updates the root's metadata.
            return match e.kind {
                EntryKind::Dir => {
                    self.tree.node_mut(NodeId::ROOT).meta = e.meta.clone();
                    self.stats[ctx.layer].dirs += 1;
                    Ok(())
                }
                _ => Err(EntryProblem::RootNotDir { kind: kind_label(&e.kind) }),
            };
        };
        let parent = self.resolve_dir(ctx, parent_parts, true)?.expect("created");
        let existing = self.tree.lookup(parent, name);
        let st = &mut self.stats[ctx.layer];
        let new_kind = match &e.kind {
            EntryKind::Dir => {
                st.dirs += 1;
                if let Some(id) = existing
                    && matches!(self.tree.node(id).kind, NodeKind::Dir(_))
                {
                    // Directory over directory: merge, taking the new metadata.
                    self.tree.node_mut(id).meta = e.meta.clone();
                    ctx.upper.insert(id);
                    return Ok(());
                }
                NodeKind::Dir(BTreeMap::new())
            }
            EntryKind::File { offset, size } => {
                st.files += 1;
                st.bytes_added += size;
                let block = *self.next_block;
                *self.next_block += size.div_ceil(crate::units::BLOCK_SIZE);
                NodeKind::File(ContentRef { layer: ctx.layer, offset: *offset, size: *size, block })
            }
            EntryKind::Symlink(target) => {
                st.symlinks += 1;
                NodeKind::Symlink(target.clone())
            }
            EntryKind::CharDevice { major, minor } => {
                st.devices += 1;
                NodeKind::CharDevice { major: *major, minor: *minor }
            }
            EntryKind::BlockDevice { major, minor } => {
                st.devices += 1;
                NodeKind::BlockDevice { major: *major, minor: *minor }
            }
            EntryKind::Fifo => {
                st.devices += 1;
                NodeKind::Fifo
            }
            EntryKind::HardLink(target) => {
                st.hardlinks += 1;
                let target_id = self.resolve_link_target(ctx, target)?;
                if existing == Some(target_id) {
                    return Ok(());
                }
                if let Some(old) = existing {
                    self.unlink(ctx, parent, name, old);
                }
                self.tree.node_mut(target_id).links += 1;
                self.insert_child(parent, name, target_id);
                ctx.upper.insert(target_id);
                return Ok(());
            }
            EntryKind::Whiteout(_) | EntryKind::Opaque => unreachable!("handled by apply_entry"),
        };
        if let Some(old) = existing {
            self.unlink(ctx, parent, name, old);
        }
        let id = self.tree.add(Node { meta: e.meta.clone(), kind: new_kind, links: 1, layer: ctx.layer });
        self.insert_child(parent, name, id);
        ctx.upper.insert(id);
        Ok(())
    }

    fn insert_child(&mut self, parent: NodeId, name: &[u8], child: NodeId) {
        match &mut self.tree.node_mut(parent).kind {
            NodeKind::Dir(children) => {
                children.insert(name.into(), child);
            }
            _ => unreachable!("parent resolved to a directory"),
        }
    }

    /// Resolves a directory inside the root, following symlinks (clamped to the root) and, when
    /// `create` is set, creating missing directories as umoci's MkdirAll does. Returns `None` when
    /// not creating and the path does not exist or is not a directory.
    fn resolve_dir(
        &mut self,
        ctx: &mut LayerCtx,
        parts: &[Name],
        create: bool,
    ) -> Result<Option<NodeId>, EntryProblem> {
        let mut stack = vec![NodeId::ROOT];
        let mut todo: VecDeque<Name> = parts.iter().cloned().collect();
        let mut followed = 0usize;
        while let Some(part) = todo.pop_front() {
            let cur = *stack.last().expect("root stays");
            match &*part {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let child = match self.tree.lookup(cur, &part) {
                Some(c) => c,
                None if create => {
                    let meta = Meta { mode: 0o755, ..Meta::default() };
                    let id = self.tree.add(Node {
                        meta,
                        kind: NodeKind::Dir(BTreeMap::new()),
                        links: 1,
                        layer: ctx.layer,
                    });
                    self.insert_child(cur, &part, id);
                    ctx.upper.insert(id);
                    self.stats[ctx.layer].implicit_dirs += 1;
                    id
                }
                None => return Ok(None),
            };
            match &self.tree.node(child).kind {
                NodeKind::Dir(_) => stack.push(child),
                NodeKind::Symlink(target) => {
                    followed += 1;
                    if followed > MAX_SYMLINKS {
                        return Err(EntryProblem::SymlinkLoop);
                    }
                    if target.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    for p in target.split(|&b| b == b'/').rev() {
                        todo.push_front(p.into());
                    }
                }
                _ if create => {
                    let mut walked: Vec<Name> = Vec::new();
                    for id in &stack[1..] {
                        walked.push(self.name_of(*id));
                    }
                    walked.push(part);
                    return Err(EntryProblem::ParentNotDir { parent: path::display(&path::join(&walked)) });
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(*stack.last().expect("root stays")))
    }

    /// A hard link names an existing non-directory; its parent is resolved inside the root, its
    /// last component is not followed (link(2) semantics).
    fn resolve_link_target(&mut self, ctx: &mut LayerCtx, target: &[Name]) -> Result<NodeId, EntryProblem> {
        let missing = || EntryProblem::LinkTargetMissing { target: path::display(&path::join(target)) };
        let (name, parent_parts) = target.split_last().ok_or_else(missing)?;
        let parent = self.resolve_dir(ctx, parent_parts, false)?.ok_or_else(missing)?;
        let id = self.tree.lookup(parent, name).ok_or_else(missing)?;
        if matches!(self.tree.node(id).kind, NodeKind::Dir(_)) {
            return Err(EntryProblem::LinkTargetIsDir { target: path::display(&path::join(target)) });
        }
        Ok(id)
    }

    /// Slow path for messages only: finds a directory's name by searching its parent chain.
    fn name_of(&self, id: NodeId) -> Name {
        for (_, node) in self.tree.all_nodes() {
            if let NodeKind::Dir(children) = &node.kind
                && let Some((name, _)) = children.iter().find(|(_, c)| **c == id)
            {
                return name.clone();
            }
        }
        (*b"?").into()
    }

    /// Removes `name` from `dir`; when that was the node's last name, the node and (for a
    /// directory) everything under it dies, and its bytes count as hidden by this layer.
    fn unlink(&mut self, ctx: &mut LayerCtx, dir: NodeId, name: &[u8], victim: NodeId) {
        if let NodeKind::Dir(children) = &mut self.tree.node_mut(dir).kind {
            children.remove(name);
        }
        self.release(ctx, victim);
    }

    fn release(&mut self, ctx: &mut LayerCtx, id: NodeId) {
        let node = self.tree.node_mut(id);
        node.links = node.links.saturating_sub(1);
        if node.links > 0 {
            return;
        }
        let from_lower = node.layer < ctx.layer;
        let children = match &mut node.kind {
            NodeKind::Dir(children) => std::mem::take(children),
            _ => BTreeMap::new(),
        };
        let st = &mut self.stats[ctx.layer];
        if from_lower {
            st.hid_entries += 1;
        }
        if let NodeKind::File(content) = self.tree.node(id).kind
            && content.layer < ctx.layer
        {
            st.hid_bytes += content.size;
        }
        for (_, child) in children {
            self.release(ctx, child);
        }
    }

    /// Opaque whiteout: drops everything under `dir` that this layer did not itself put there.
    fn make_opaque(&mut self, ctx: &mut LayerCtx, dir: NodeId) {
        let children: Vec<(Name, NodeId)> = match &self.tree.node(dir).kind {
            NodeKind::Dir(c) => c.iter().map(|(n, id)| (n.clone(), *id)).collect(),
            _ => return,
        };
        for (name, child) in children {
            if ctx.upper.contains(&child) {
                if matches!(self.tree.node(child).kind, NodeKind::Dir(_)) {
                    self.make_opaque(ctx, child);
                }
            } else {
                self.unlink(ctx, dir, &name, child);
            }
        }
    }
}

fn kind_label(k: &EntryKind) -> &'static str {
    match k {
        EntryKind::Dir => "directory",
        EntryKind::File { .. } => "regular file",
        EntryKind::Symlink(_) => "symlink",
        EntryKind::HardLink(_) => "hard link",
        EntryKind::CharDevice { .. } => "character device",
        EntryKind::BlockDevice { .. } => "block device",
        EntryKind::Fifo => "fifo",
        EntryKind::Whiteout(_) => "whiteout",
        EntryKind::Opaque => "opaque whiteout",
    }
}
