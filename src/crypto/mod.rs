//! Crypto stage: convergent encryption of chunks, and the manifest that records their keys.
//!
//! - [`encrypt_chunk`] / [`open_chunk`]: one chunk, in place (see `convergent.rs` for the scheme).
//! - [`ChunkName`], [`PlainDigest`]: content ids; [`Salt`]: the dedup namespace.
//! - [`ChunkKey`], [`CustomerKey`]: secrets, redacted in `Debug`, zeroed on drop.
//! - [`CryptoPath`]: which AES-256-CTR kernel runs (detected, or forced by `CHUNKLOAD_CRYPTO_PATH`).
//! - [`Manifest`]: per-image chunk list and sealed key table; [`ManifestPublic`] reads it keyless.

mod convergent;
mod error;
mod ids;
mod keys;
mod keystream;
mod lanes;
mod manifest;
mod path;
mod salt;
mod sealer;

pub use convergent::{SealedChunk, encrypt_chunk, open_chunk};
pub use error::{Error, Result};
pub use ids::{ChunkName, PlainDigest};
pub use keys::{ChunkKey, CustomerKey};
pub use keystream::Keystream;
pub use manifest::{
    ChunkEntry, FORMAT_VERSION, MANIFEST_MAGIC, Manifest, ManifestBuilder, ManifestHeader, ManifestPublic,
};
pub use path::{CRYPTO_PATH_ENV, CryptoPath, cpu_features, describe as describe_kernels};
pub use salt::Salt;
pub use sealer::{Sealed, Sealer};
