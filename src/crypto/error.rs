//! Errors of the crypto stage.
//!
//! Rules for errors in this module:
//! - A message names the thing (chunk name, file path, manifest field and byte offset) and the reason,
//!   so that it can be printed as is, without context added by the caller.
//! - Errors never carry or print key bytes; a message may name a key file but not its contents.
//! - Errors are returned, never logged where they are made; the caller decides what to report.
//! - Integrity failures have their own variants so callers can tell "corrupted" from "I/O failed".

use std::io;
use std::path::PathBuf;

use super::ids::ChunkName;

/// Everything that can go wrong while encrypting, decrypting, naming or sealing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes presented as chunk `expected` hash to another name: corrupted or substituted.
    #[error(
        "chunk {expected}: ciphertext hashes to {actual}, not to its name (corrupted or substituted chunk)"
    )]
    ChunkNameMismatch { expected: ChunkName, actual: ChunkName },

    /// The ciphertext matched its name but did not decrypt to the recorded plaintext (wrong key).
    #[error(
        "chunk {name}: decrypted plaintext does not match the recorded SHA-256 (wrong key for this chunk?)"
    )]
    PlaintextMismatch { name: ChunkName },

    /// A hex id (chunk name, digest) did not parse.
    #[error("invalid {what} {input:?}: {reason}")]
    InvalidId { what: &'static str, input: String, reason: &'static str },

    /// A salt label was empty, too long or held control characters.
    #[error("invalid salt {label:?}: {reason}")]
    InvalidSalt { label: String, reason: &'static str },

    /// A key file could not be created, read or checked.
    #[error("key file {}: {source}", path.display())]
    KeyFileIo { path: PathBuf, source: io::Error },

    /// A key file exists but does not hold exactly one well-formed key.
    #[error("key file {}: {reason}", path.display())]
    KeyFileFormat { path: PathBuf, reason: String },

    /// A key file is readable by group or others; keys must be private to their owner.
    #[error("key file {}: mode {mode:04o} lets group or others read it; run `chmod 600` on it", path.display())]
    KeyFilePermissions { path: PathBuf, mode: u32 },

    /// The operating system's random source failed.
    #[error("cannot read OS randomness for a new key: {0}")]
    Randomness(String),

    /// A manifest's bytes do not follow the format (bad magic, bad length, field out of range).
    #[error("manifest malformed: field {field} at byte offset {offset}: {reason}")]
    ManifestMalformed { field: &'static str, offset: usize, reason: String },

    /// A manifest with a format version this build does not read.
    #[error("manifest format version {found} is not supported (this build reads version {supported})")]
    ManifestVersion { found: u16, supported: u16 },

    /// The AES-GCM tag did not verify: any bit of the manifest changed, or another customer key.
    #[error(
        "manifest failed authentication: it was modified or corrupted, or it was sealed under a different customer key"
    )]
    ManifestAuthentication,

    /// A manifest could not be built from the chunks given.
    #[error("cannot build manifest: {0}")]
    ManifestBuild(String),

    /// `CHUNKLOAD_CRYPTO_PATH` named a kernel that does not exist or that this CPU cannot run.
    #[error("CHUNKLOAD_CRYPTO_PATH={value}: {reason}")]
    CryptoPath { value: String, reason: String },

    /// A sealed manifest could not be written to its file.
    #[error("manifest file {}: {source}", path.display())]
    ManifestIo { path: PathBuf, source: io::Error },
}

/// Result alias for the crypto stage.
pub type Result<T, E = Error> = std::result::Result<T, E>;
