//! The per-image manifest: which chunk holds each 512 KiB of the block image, and its key.
//!
//! Everything but the key table is clear text, so garbage collection and `chunkload dedup` can list
//! chunk names with [`ManifestPublic::parse`] and no key. The key table is AES-256-GCM encrypted
//! under the customer key and the whole document is the GCM associated data, so
//! [`Manifest::open`] rejects any change anywhere. The byte layout is in `docs/manifest-format.md`.
//!
//! All-zero chunks are holes: they have no entry, no key and nothing in the store.

mod seal;
mod wire;

use super::convergent::SealedChunk;
use super::error::Error;
use super::ids::{ChunkName, PlainDigest};
use super::keys::ChunkKey;
use super::salt::Salt;

pub use wire::{FORMAT_VERSION, MAGIC as MANIFEST_MAGIC};

/// Image-wide facts recorded in clear text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHeader {
    /// Bytes per chunk; chunk `i` covers `[i * chunk_size, (i + 1) * chunk_size)` of the image.
    pub chunk_size: u32,
    /// Length of the block image; the last chunk may be shorter than `chunk_size`.
    pub image_size: u64,
    /// The salt every chunk key was derived with (public; see [`Salt`]).
    pub salt: Salt,
    /// What the image was built from (e.g. an OCI reference or manifest digest); free text.
    pub source: String,
}

impl ManifestHeader {
    /// Number of chunk positions in the image, holes included.
    pub fn total_chunks(&self) -> u64 {
        self.image_size.div_ceil(u64::from(self.chunk_size))
    }

    /// Byte offset of chunk `index` in the image.
    pub fn offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.chunk_size)
    }

    /// Plaintext length of chunk `index`: `chunk_size`, except a shorter last chunk.
    pub fn chunk_len(&self, index: u32) -> u64 {
        self.image_size.saturating_sub(self.offset(index)).min(u64::from(self.chunk_size))
    }
}

/// One stored chunk, as anyone can read it without keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    /// Position in the image (offset = index * chunk_size).
    pub index: u32,
    pub name: ChunkName,
    pub plain: PlainDigest,
}

/// The clear-text view of a sealed manifest: header and chunk list, no keys.
///
/// Parsing does not authenticate (that needs the customer key): it is for readers that only
/// count or list chunks, such as garbage collection, which the paper lets read manifests keyless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestPublic {
    pub header: ManifestHeader,
    /// Stored chunks in increasing index order.
    pub chunks: Vec<ChunkEntry>,
}

impl ManifestPublic {
    /// Parses a sealed manifest without decrypting its key table.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let p = wire::parse(bytes)?;
        Ok(ManifestPublic { header: p.header, chunks: p.chunks })
    }

    /// The entry for chunk `index`, or `None` if that position is a hole.
    pub fn find(&self, index: u32) -> Option<&ChunkEntry> {
        self.chunks.binary_search_by_key(&index, |c| c.index).ok().map(|i| &self.chunks[i])
    }

    /// Indices of the all-zero chunks, which are not stored.
    pub fn holes(&self) -> impl Iterator<Item = u64> + '_ {
        let mut stored = self.chunks.iter().map(|c| u64::from(c.index)).peekable();
        (0..self.header.total_chunks()).filter(move |&i| {
            if stored.peek() == Some(&i) {
                stored.next();
                false
            } else {
                true
            }
        })
    }
}

/// A manifest with its keys: what a converter builds and a loader opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    header: ManifestHeader,
    chunks: Vec<ChunkEntry>,
    /// `keys[i]` belongs to `chunks[i]`.
    keys: Vec<ChunkKey>,
}

impl Manifest {
    pub fn builder(header: ManifestHeader) -> ManifestBuilder {
        ManifestBuilder { header, chunks: Vec::new() }
    }

    pub fn header(&self) -> &ManifestHeader {
        &self.header
    }

    /// Number of stored (non-hole) chunks.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Stored chunks with their keys, in increasing index order.
    pub fn chunks(&self) -> impl ExactSizeIterator<Item = (&ChunkEntry, &ChunkKey)> {
        self.chunks.iter().zip(&self.keys)
    }

    /// Entry and key of chunk `index`, or `None` for a hole.
    pub fn find(&self, index: u32) -> Option<(&ChunkEntry, &ChunkKey)> {
        let i = self.chunks.binary_search_by_key(&index, |c| c.index).ok()?;
        Some((&self.chunks[i], &self.keys[i]))
    }

    /// The keyless view.
    pub fn public(&self) -> ManifestPublic {
        ManifestPublic { header: self.header.clone(), chunks: self.chunks.clone() }
    }
}

/// Collects sealed chunks in any order (e.g. from parallel workers) into a [`Manifest`].
#[derive(Debug)]
pub struct ManifestBuilder {
    header: ManifestHeader,
    chunks: Vec<(ChunkEntry, ChunkKey)>,
}

impl ManifestBuilder {
    /// Records that chunk `index` was stored as `sealed`. Zero chunks are simply not pushed.
    pub fn push(&mut self, index: u32, sealed: SealedChunk) -> &mut Self {
        let SealedChunk { name, key, plain } = sealed;
        self.chunks.push((ChunkEntry { index, name, plain }, key));
        self
    }

    /// Sorts the chunks and checks that indices are unique and inside the image.
    pub fn finish(mut self) -> Result<Manifest, Error> {
        let h = &self.header;
        if h.chunk_size == 0 {
            return Err(Error::ManifestBuild("chunk size is zero".into()));
        }
        let total = h.total_chunks();
        if total > wire::MAX_TOTAL_CHUNKS {
            return Err(Error::ManifestBuild(format!(
                "image of {} bytes has {total} chunks of {} bytes; at most 2^32 fit a manifest",
                h.image_size, h.chunk_size
            )));
        }
        if h.source.len() > usize::from(u16::MAX) {
            return Err(Error::ManifestBuild(format!("source is {} bytes, at most 65535", h.source.len())));
        }
        self.chunks.sort_by_key(|(c, _)| c.index);
        for pair in self.chunks.windows(2) {
            if pair[0].0.index == pair[1].0.index {
                return Err(Error::ManifestBuild(format!("chunk index {} pushed twice", pair[0].0.index)));
            }
        }
        let past_end = self.chunks.last().filter(|(last, _)| u64::from(last.index) >= total);
        if let Some((last, _)) = past_end {
            return Err(Error::ManifestBuild(format!(
                "chunk index {} is past the end of a {}-byte image ({total} chunks)",
                last.index, h.image_size
            )));
        }
        let (chunks, keys) = self.chunks.into_iter().unzip();
        Ok(Manifest { header: self.header, chunks, keys })
    }
}
