//! The layout stage: lays a flattened image out as a block-device image, deterministically, the way
//! the paper's serial ext4 writer does (same layers, same bytes, on any machine, any run).
//!
//! Shape (4 KiB blocks; docs/block-format.md has the byte-level format):
//!
//! ```text
//! [ data region: every regular-file entry of every layer, in layer then tar order, each on its own
//!   block-aligned extent; files hidden by later layers are zero-filled holes ]
//! [ metadata: inode table | directory entries | blobs (symlink targets, xattrs) ]
//! [ superblock: the last block ]
//! ```
//!
//! The data region is built by an append-only allocator while layers are applied
//! (`ContentRef::block`), so two images that share base layers put the shared files at identical
//! offsets with identical bytes, and their chunks deduplicate. Metadata goes after the data so
//! that it never shifts file data.

pub mod meta;
mod reader;
mod stream;

use serde::Serialize;

pub use meta::{BlockMeta, Inode, Superblock};
pub use reader::BlockReader;
pub use stream::{Segment, segments, stream_image, stream_segment};

use crate::flatten::{Flattened, NodeKind};

/// The block size of the image (defined in `units`, below every stage that counts blocks).
pub use crate::units::BLOCK_SIZE;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    #[error("block image: {0}")]
    Format(String),
    #[error(transparent)]
    Sink(Box<dyn std::error::Error + Send + Sync>),
}

/// The layout of one image: where everything goes, computed without touching file bytes.
#[derive(Debug)]
pub struct BlockLayout {
    pub superblock: Superblock,
    /// The encoded metadata region (bounded by the number of entries, not the image size).
    pub meta: Vec<u8>,
}

/// One file's place in the block image: the extent map entry trace mapping uses.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Extent {
    /// Absolute path inside the image (bytes: names need not be UTF-8; JSON shows them lossily).
    #[serde(serialize_with = "lossy")]
    pub path: Vec<u8>,
    /// Byte offset in the block image (block aligned).
    pub offset: u64,
    /// File length in bytes (the extent is rounded up to whole blocks).
    pub len: u64,
}

impl BlockLayout {
    pub fn new(flat: &Flattened) -> Self {
        let (superblock, meta) = meta::encode(&flat.tree, flat.data_blocks);
        BlockLayout { superblock, meta }
    }

    /// Total bytes of the block image.
    pub fn image_size(&self) -> u64 {
        self.superblock.image_size()
    }

    /// Path -> byte range of every live regular file, in path order.
    pub fn extents(flat: &Flattened) -> Vec<Extent> {
        flat.tree
            .walk()
            .into_iter()
            .filter_map(|(path, id)| match flat.tree.node(id).kind {
                NodeKind::File(c) => Some(Extent {
                    path: [b"/".as_slice(), &path].concat(),
                    offset: c.block * BLOCK_SIZE,
                    len: c.size,
                }),
                _ => None,
            })
            .collect()
    }
}

fn lossy<S: serde::Serializer>(path: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(path))
}
