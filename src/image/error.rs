//! Errors of the image stage.
//!
//! Rules: every error names the image (as the user spelled it) and the thing inside it (document,
//! blob digest, layer index, tar entry) and says why. Errors are values: nothing is logged where an
//! error is made; the CLI prints the chain once.

use std::io;

use super::{Compression, Digest};
use crate::units::ByteSize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{image}: cannot read {what}: {source}")]
    Io {
        image: String,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{image}: not an image: {reason}")]
    NotAnImage { image: String, reason: String },
    #[error("{image}: {what} is missing")]
    Missing { image: String, what: String },
    #[error("{image}: {what} is malformed: {source}")]
    Json {
        image: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{image}: {what}: {reason}")]
    Invalid { image: String, what: String, reason: String },
    #[error("{image}: {what}: digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { image: String, what: String, expected: Digest, actual: Digest },
    #[error("{image}: {what}: size mismatch: descriptor says {expected} bytes, found {actual}")]
    SizeMismatch { image: String, what: String, expected: u64, actual: u64 },
    #[error("{image}: no image matches {wanted}; available: {available}")]
    NoMatch { image: String, wanted: String, available: String },
    #[error("{image}: layer {index} ({digest}): {source}")]
    Layer {
        image: String,
        index: usize,
        digest: String,
        #[source]
        source: Box<LayerError>,
    },
}

/// What went wrong inside one layer's stream.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot open layer blob: {0}")]
    Open(#[source] io::Error),
    #[error("corrupt {compression} stream: {source}")]
    Decompress {
        compression: Compression,
        #[source]
        source: io::Error,
    },
    #[error("not a valid tar stream: {0}")]
    Tar(#[source] io::Error),
    #[error("entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    #[error(
        "uncompressed image size exceeds the {limit} limit (decompression bomb?); raise it with --max-uncompressed"
    )]
    TooLarge { limit: ByteSize },
    #[error("blob digest mismatch: descriptor says {expected}, content hashes to {actual}")]
    BlobDigest { expected: Digest, actual: Digest },
    #[error("blob size mismatch: descriptor says {expected} bytes, read {actual}")]
    BlobSize { expected: u64, actual: u64 },
    #[error("uncompressed digest {actual} does not match the config's rootfs.diff_ids entry {expected}")]
    DiffId { expected: Digest, actual: Digest },
    #[error("layer changed between reads (content no longer matches the first pass)")]
    Changed,
    #[error("cannot keep the decoded layer in a temporary file: {0}")]
    Spool(#[source] io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
