//! What `chunkload manifest show` prints: a manifest's clear-text fields, read with or without
//! the customer key. Without the key nothing is authenticated, and the report says so, because
//! anyone who can write the file can change every field shown.

use std::fmt;

use serde::Serialize;

use super::Table;
use crate::crypto::{ChunkName, FORMAT_VERSION, ManifestPublic, PlainDigest};
use crate::units::ByteSize;

/// How far the shown fields can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authenticity {
    /// Parsed without a key: the GCM tag was not checked.
    NotVerified,
    /// Opened with the customer key: the tag over the whole document verified.
    Authenticated,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ManifestReport {
    /// The file path, or `STORE:NAME`.
    pub manifest: String,
    pub authenticity: Authenticity,
    pub format_version: u16,
    pub source: String,
    pub salt: String,
    pub chunk_size: u32,
    pub image_size: u64,
    /// Chunk positions in the image, holes included.
    pub positions: u64,
    /// Positions with a stored chunk, and their plaintext bytes.
    pub stored_chunks: u64,
    pub stored_bytes: u64,
    /// All-zero positions: no entry, nothing stored.
    pub holes: u64,
    pub hole_bytes: u64,
    /// Size of the sealed manifest file.
    pub file_bytes: u64,
    /// `file_bytes / stored_chunks` (the paper: under 3 MiB for 16 GiB, about 96 B per chunk).
    pub file_bytes_per_chunk: Option<f64>,
    /// Present only when asked for: the chunk list, in index order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<ChunkRow>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChunkRow {
    pub index: u32,
    pub offset: u64,
    pub len: u64,
    pub name: ChunkName,
    pub plain_sha256: PlainDigest,
}

impl ManifestReport {
    pub fn new(
        manifest: String,
        file_bytes: u64,
        m: &ManifestPublic,
        authenticity: Authenticity,
        with_chunks: bool,
    ) -> Self {
        let h = &m.header;
        let stored_bytes: u64 = m.chunks.iter().map(|c| h.chunk_len(c.index)).sum();
        let stored_chunks = m.chunks.len() as u64;
        let chunks = with_chunks.then(|| {
            m.chunks
                .iter()
                .map(|c| ChunkRow {
                    index: c.index,
                    offset: h.offset(c.index),
                    len: h.chunk_len(c.index),
                    name: c.name,
                    plain_sha256: c.plain,
                })
                .collect()
        });
        ManifestReport {
            manifest,
            authenticity,
            format_version: FORMAT_VERSION,
            source: h.source.clone(),
            salt: h.salt.label().to_string(),
            chunk_size: h.chunk_size,
            image_size: h.image_size,
            positions: h.total_chunks(),
            stored_chunks,
            stored_bytes,
            // Counted, not enumerated: an unauthenticated header may claim 2^32 positions.
            holes: h.total_chunks().saturating_sub(stored_chunks),
            hole_bytes: h.image_size.saturating_sub(stored_bytes),
            file_bytes,
            file_bytes_per_chunk: (stored_chunks > 0).then(|| file_bytes as f64 / stored_chunks as f64),
            chunks,
        }
    }
}

impl fmt::Display for ManifestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "manifest      {}", self.manifest)?;
        match self.authenticity {
            Authenticity::NotVerified => writeln!(
                f,
                "authenticity  NOT VERIFIED: read without the customer key, so any field below may have \
                 been altered; open it with the key to verify"
            )?,
            Authenticity::Authenticated => {
                writeln!(f, "authenticity  authenticated with the customer key (the whole file is intact)")?
            }
        }
        writeln!(f, "format        version {}", self.format_version)?;
        writeln!(f, "source        {}", self.source)?;
        writeln!(f, "salt          {}", self.salt)?;
        writeln!(f, "chunk size    {}", ByteSize(u64::from(self.chunk_size)))?;
        writeln!(f, "image size    {} ({})", self.image_size, ByteSize(self.image_size))?;
        writeln!(
            f,
            "chunks        {} positions: {} stored ({}), {} holes ({})",
            self.positions,
            self.stored_chunks,
            ByteSize(self.stored_bytes),
            self.holes,
            ByteSize(self.hole_bytes)
        )?;
        let per_chunk =
            self.file_bytes_per_chunk.map(|b| format!(", {b:.1} bytes per stored chunk")).unwrap_or_default();
        writeln!(f, "file          {} bytes{per_chunk}", self.file_bytes)?;
        if let Some(chunks) = &self.chunks {
            writeln!(f)?;
            let mut t = Table::new(["index", "offset", "len", "name", "plaintext sha256"]);
            for c in chunks {
                t.row([
                    c.index.to_string(),
                    c.offset.to_string(),
                    c.len.to_string(),
                    c.name.to_string(),
                    c.plain_sha256.to_string(),
                ]);
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}
