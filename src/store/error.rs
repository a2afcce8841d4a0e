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

    #[error("root {root} is {state}: cannot {op} it ({hint})")]
    RootState { root: u32, state: &'static str, op: &'static str, hint: &'static str },

    #[error("root {0} does not exist in this store (see `chunkload store roots`)")]
    UnknownRoot(u32),

    #[error(
        "root {root} is still referenced by {count} manifest(s), e.g. {example}: copy them forward first"
    )]
    RootInUse { root: u32, count: usize, example: String },

    #[error(
        "root {root} was read after it expired ({}): something still needs it; delete it once nothing does, by removing that file",
        alarm.display()
    )]
    RootAlarm { root: u32, alarm: PathBuf },

    #[error("root file {}: {reason}", path.display())]
    RootFile { path: PathBuf, reason: String },

    #[error("manifest {name}: {source}")]
    Manifest { name: String, source: crate::crypto::Error },

    #[error(
        "salt {label:?} belongs to root {root}, which is {state}: new manifests go to the active root {active}"
    )]
    NotActive { label: String, root: u32, state: &'static str, active: u32 },

    #[error(transparent)]
    Salt(crate::crypto::Error),

    #[error("store: cannot {op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
