//! Errors of the chunk store.
//!
//! Rules: a message names the chunk, manifest or path and the operation that failed; errors are
//! returned, never logged where they are made; "not found" has its own variants so callers can
//! fall through to another tier without parsing messages.

use std::io;
use std::path::PathBuf;

use crate::crypto::ChunkName;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("chunk {0} is not in the store")]
    ChunkNotFound(ChunkName),

    #[error("manifest {0:?} is not in the store")]
    ManifestNotFound(String),

    #[error("invalid manifest name {name:?}: {reason}")]
    InvalidManifestName { name: String, reason: &'static str },

    #[error("store: cannot {op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
