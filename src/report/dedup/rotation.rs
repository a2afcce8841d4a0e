//! What rotating the store's root would cost now (the paper: the salt varies with time, and
//! rotation trades dedup against blast radius): every distinct plaintext chunk of the live roots is
//! re-encrypted under the new root's salt and uploaded again, and until the old root is deleted the
//! store holds both copies.

use std::fmt;

use serde::Serialize;

use super::DedupError;
use crate::store::DirStore;
use crate::store::roots;
use crate::units::ByteSize;

/// The price of one root rotation for a store, from its manifests (keyless).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RotationCost {
    pub active_root: u32,
    /// Chunks and bytes `store copy-forward` would upload again after `store rotate`.
    pub reupload_chunks: u64,
    pub reupload_bytes: u64,
    /// Chunk bytes on disk now, and while both roots are kept (before `store delete` and `gc`).
    pub stored_bytes: u64,
    pub stored_bytes_during: u64,
}

impl RotationCost {
    pub fn measure(store: &DirStore) -> Result<Self, DedupError> {
        let r = roots::summarize(store)?;
        Ok(RotationCost {
            active_root: r.active,
            reupload_chunks: r.rotation_reupload_chunks,
            reupload_bytes: r.rotation_reupload_bytes,
            stored_bytes: r.chunk_bytes,
            stored_bytes_during: r.chunk_bytes + r.rotation_reupload_bytes,
        })
    }
}

impl fmt::Display for RotationCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "a root rotation now (root {} -> {}, then store copy-forward)",
            self.active_root,
            self.active_root + 1
        )?;
        writeln!(
            f,
            "  re-uploaded   {} chunks, {}: no chunk dedups across roots",
            self.reupload_chunks,
            ByteSize(self.reupload_bytes)
        )?;
        writeln!(
            f,
            "  stored        {} now, {} until the old root is deleted and gc'd",
            ByteSize(self.stored_bytes),
            ByteSize(self.stored_bytes_during)
        )?;
        writeln!(
            f,
            "  (the fleet simulation rotates salts on a schedule, world.salt_rotation, but has no roots)"
        )
    }
}
