//! The chunk store: content-addressed, write-once chunks plus named manifests.
//!
//! Chunks are stored under their [`ChunkName`] (SHA-256 of the ciphertext) and uploaded only if
//! absent, so converters need no coordination: two writers of the same chunk write the same bytes,
//! and one of them wins. The store does not re-hash what it is given (that would cost a third of
//! the crypto stage); readers verify every chunk against its name with `crypto::open_chunk`.
//!
//! A [`DirStore`]'s lifecycle (generational roots, verify, gc, copy-forward) is in [`roots`],
//! [`verify`], [`gc`] and [`copy_forward`]; its layout and crash guarantees in
//! `docs/store-format.md`.

pub mod copy_forward;
mod crash;
mod dir;
mod error;
pub mod gc;
mod mem;
pub mod roots;
mod stats;
pub mod verify;

use std::fmt;

use crate::crypto::ChunkName;

pub use crash::{CRASH_ENV, crash_point};
pub use dir::{ChunkFile, DirStore, StoreLock};
pub use error::{Error, Result};
pub use mem::MemStore;
pub use stats::StoreStats;

/// Where encrypted chunks and sealed manifests live. Implementations are shared between threads.
pub trait ChunkStore: Send + Sync {
    /// Whether chunk `name` is present.
    fn contains(&self, name: &ChunkName) -> Result<bool>;

    /// Stores `ciphertext` as chunk `name` unless a chunk of that name exists. Returns `true` if
    /// this call wrote it. The caller guarantees `name` is the SHA-256 of `ciphertext`.
    ///
    /// A chunk's bytes are durable before its name appears, so a crash never leaves a torn chunk
    /// under a valid name; the name itself needs [`flush`](Self::flush) to be sure to survive one.
    fn put_if_absent(&self, name: &ChunkName, ciphertext: &[u8]) -> Result<bool>;

    /// Makes the names of every chunk put so far durable. Call it before publishing anything that
    /// refers to them (a manifest).
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// The ciphertext of chunk `name`; [`Error::ChunkNotFound`] if absent.
    fn get(&self, name: &ChunkName) -> Result<Vec<u8>>;

    /// Stores a sealed manifest under `name`, replacing any previous one atomically.
    fn put_manifest(&self, name: &ManifestName, sealed: &[u8]) -> Result<()>;

    /// The sealed manifest `name`; [`Error::ManifestNotFound`] if absent.
    fn get_manifest(&self, name: &ManifestName) -> Result<Vec<u8>>;

    /// Names of all stored manifests, sorted.
    fn list_manifests(&self) -> Result<Vec<ManifestName>>;

    /// Counters since this handle was opened.
    fn stats(&self) -> StoreStats;
}

/// A manifest's name in a store: 1..=128 bytes of `[A-Za-z0-9._-]`, not starting with `.`, so it is
/// a safe single path component everywhere (no separators, no `..`, no hidden temp-file names).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManifestName(String);

impl ManifestName {
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > 128 {
            Some("longer than 128 bytes")
        } else if name.starts_with('.') {
            Some("must not start with '.'")
        } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidManifestName { name, reason }),
            None => Ok(ManifestName(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ManifestName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ManifestName::new(s)
    }
}

impl fmt::Display for ManifestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ManifestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManifestName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_are_safe_path_components() {
        for ok in ["python-3.12_slim", "a", &"x".repeat(128)] {
            assert!(ManifestName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "..", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(ManifestName::new(bad).is_err(), "{bad:?}");
        }
    }
}
