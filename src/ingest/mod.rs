//! The ingest step, above the line: everything that reads manifests, keys, stores, images and
//! traces to give the simulation what it runs on (chunk tables, mapped traces, the fleet's real
//! images). Below this module only ids, sizes and simulated time remain (ARCHITECTURE.md).
//!
//! [`chunk_table`] interns a keyless manifest's chunk names; [`mapping`] maps a trace's records
//! onto a block image; [`Opened`] is an image or a sealed manifest, opened and ready to replay;
//! [`real`] loads the fleet scenario's real images.

pub mod mapping;
mod opened;
pub mod real;
pub mod synth;

pub use mapping::map_trace;
pub use opened::{
    IngestError, Opened, PER_CHUNK_OVERHEAD, StoreImage, in_memory_estimate, open_store, read_sealed,
};

use crate::crypto::ManifestPublic;
use crate::sim::ChunkTable;
use crate::sim::chunks::ContentKey;

/// The image's chunks as the simulation sees them: ids interned by chunk name (two positions
/// holding the same content are one cached object, as in the real store), sizes from the header.
pub fn chunk_table(m: &ManifestPublic) -> ChunkTable {
    let total = m.header.total_chunks();
    let sizes = (0..total as u32).map(|i| m.header.chunk_len(i) as u32).collect();
    let stored = m.chunks.iter().map(|c| (c.index, content_key(&c.name)));
    ChunkTable::new(u64::from(m.header.chunk_size), m.header.image_size, sizes, stored)
}

/// A chunk name as the kernel's content key.
pub fn content_key(name: &crate::crypto::ChunkName) -> ContentKey {
    ContentKey(*name.as_bytes())
}

impl crate::replay::LayerSize for crate::flatten::LayerStats {
    fn compressed_bytes(&self) -> u64 {
        self.compressed_bytes
    }
    fn uncompressed_bytes(&self) -> u64 {
        self.uncompressed_bytes
    }
}
