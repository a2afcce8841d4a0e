//! The flatten stage: applies an image's layers in order onto one tree, the way the paper's
//! flattener applies tar layers onto a fresh filesystem. The result records where each file's
//! bytes live instead of copying them; later stages stream those bytes back layer by layer.

mod apply;
mod error;
pub mod path;
pub mod scan;
mod tree;

use rayon::prelude::*;
use serde::Serialize;

pub use error::{EntryProblem, Error, Result};
pub use tree::{ContentRef, Meta, Mtime, Name, Node, NodeId, NodeKind, Tree};

use std::path::Path;

use crate::image::{Image, SpooledLayer};

/// What one layer did to the filesystem.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerStats {
    pub index: usize,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    /// Tar entries, whiteouts included.
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Character and block devices and fifos.
    pub devices: u64,
    pub whiteouts: u64,
    pub opaque_whiteouts: u64,
    /// Parent directories the layer needed but did not list.
    pub implicit_dirs: u64,
    /// Regular-file bytes this layer carries.
    pub bytes_added: u64,
    /// Entries from lower layers that this layer removed or replaced.
    pub hid_entries: u64,
    /// Bytes of lower layers' files that this layer removed or replaced.
    pub hid_bytes: u64,
    /// Bytes this layer carries that no longer appear in the flattened result.
    pub dead_bytes: u64,
    /// The layer's region of the block image's data region: its files' extents, live or dead.
    pub first_block: u64,
    pub blocks: u64,
}

/// Counts over the flattened result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Regular files (inodes; hard links counted once).
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Extra names of regular files beyond their first.
    pub hardlinks: u64,
    pub devices: u64,
    /// Bytes of live regular files, each inode once.
    pub total_bytes: u64,
    /// Bytes carried by layers but hidden by later ones.
    pub hidden_bytes: u64,
}

/// An image's layers applied in order.
#[derive(Debug)]
pub struct Flattened {
    pub tree: Tree,
    pub layers: Vec<LayerStats>,
    pub summary: Summary,
    /// Blocks the append-only allocator handed out: the size of the block image's data region.
    pub data_blocks: u64,
    /// The layers' decoded streams, one per layer, when [`flatten_spooled`] kept them: a second
    /// pass then reads these instead of decoding the blobs again.
    pub spooled: Option<Vec<SpooledLayer>>,
}

/// Reads every layer once (in parallel: decoding is the cost) and applies them in order.
pub fn flatten(image: &Image) -> Result<Flattened> {
    flatten_with(image, None)
}

/// [`flatten`], also keeping each layer's decoded stream in an anonymous file in `dir` (see
/// [`SpooledLayer`]) for a second pass: `dir` needs room for the image's uncompressed size.
pub fn flatten_spooled(image: &Image, dir: &Path) -> Result<Flattened> {
    flatten_with(image, Some(dir))
}

fn flatten_with(image: &Image, spool: Option<&Path>) -> Result<Flattened> {
    let budget = image.size_budget();
    let scans: Vec<_> =
        (0..image.layers.len()).into_par_iter().map(|i| scan::scan_layer(image, i, &budget, spool)).collect();
    let mut entries = Vec::with_capacity(scans.len());
    let mut sizes = Vec::with_capacity(scans.len());
    let mut spooled = Vec::with_capacity(scans.len());
    for (layer, scan) in scans.into_iter().enumerate() {
        let scan = scan.map_err(|f| match f {
            scan::ScanFailure::Image(e) => Error::Image(e),
            scan::ScanFailure::Entry { entry, problem } => {
                Error::Entry { image: image.reference.clone(), layer, entry, reason: problem }
            }
        })?;
        sizes.push(scan.sizes);
        entries.push(scan.entries);
        spooled.extend(scan.spooled);
    }
    let mut flat = apply_layers(&entries).map_err(|(layer, entry, reason)| Error::Entry {
        image: image.reference.clone(),
        layer,
        entry: path::display(&entries[layer][entry].raw_path),
        reason,
    })?;
    for (st, size) in flat.layers.iter_mut().zip(sizes) {
        st.compressed_bytes = size.compressed;
        st.uncompressed_bytes = size.uncompressed;
    }
    flat.spooled = spool.map(|_| spooled);
    Ok(flat)
}

/// Applies scanned layers in order onto an empty tree. On failure returns the layer index, the
/// entry index within it and the problem.
pub fn apply_layers(layers: &[Vec<scan::LayerEntry>]) -> Result<Flattened, (usize, usize, EntryProblem)> {
    let mut tree = Tree::new();
    let mut stats: Vec<LayerStats> =
        (0..layers.len()).map(|index| LayerStats { index, ..LayerStats::default() }).collect();
    let mut data_blocks = 0;
    for (index, entries) in layers.iter().enumerate() {
        apply::Applier { tree: &mut tree, stats: &mut stats, next_block: &mut data_blocks }
            .apply_layer(index, entries)
            .map_err(|(entry, problem)| (index, entry, problem))?;
    }
    let summary = summarize(&tree, &mut stats);
    Ok(Flattened { tree, layers: stats, summary, data_blocks, spooled: None })
}

/// Counts the live tree and works out, per layer, how many of its bytes ended up dead.
fn summarize(tree: &Tree, layers: &mut [LayerStats]) -> Summary {
    let mut s = Summary::default();
    let mut live_by_layer = vec![0u64; layers.len()];
    for (_, id) in tree.inodes() {
        let node = tree.node(id);
        match &node.kind {
            NodeKind::Dir(_) => s.dirs += 1,
            NodeKind::File(c) => {
                s.files += 1;
                s.total_bytes += c.size;
                s.hardlinks += u64::from(node.links.saturating_sub(1));
                live_by_layer[c.layer] += c.size;
            }
            NodeKind::Symlink(_) => s.symlinks += 1,
            NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. } | NodeKind::Fifo => s.devices += 1,
        }
    }
    for (st, live) in layers.iter_mut().zip(live_by_layer) {
        st.dead_bytes = st.bytes_added - live;
        s.hidden_bytes += st.dead_bytes;
    }
    s
}
