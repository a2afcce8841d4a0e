//! Reading a block image back from its manifest and a store: every chunk is fetched, its name
//! checked against its ciphertext, decrypted and its plaintext checked, before any byte is used.

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;

use crate::crypto::{self, Manifest, open_chunk};
use crate::flatten::Tree;
use crate::layout::{self, BLOCK_SIZE, BlockMeta, Superblock};
use crate::store::{self, ChunkStore};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("chunk {index} (offset {offset}): {source}")]
    Chunk {
        index: u32,
        offset: u64,
        #[source]
        source: crypto::Error,
    },
    #[error("chunk {index} (offset {offset}): {source}")]
    Store {
        index: u32,
        offset: u64,
        #[source]
        source: store::Error,
    },
    #[error("chunk {index}: stored ciphertext is {actual} bytes, the manifest says {expected}")]
    Length { index: u32, expected: u64, actual: u64 },
    #[error(transparent)]
    Layout(#[from] layout::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The verified plaintext of chunk `index` of the image `manifest` describes, fetched from
/// `store` (zeros for a hole). Shared by whole-image reads and the FUSE agent's loader.
pub fn read_chunk(manifest: &Manifest, store: &dyn ChunkStore, index: u32) -> Result<Vec<u8>, ReadError> {
    let Some((entry, _)) = manifest.find(index) else {
        return Ok(vec![0u8; manifest.header().chunk_len(index) as usize]);
    };
    let h = manifest.header();
    let buf = store.get(&entry.name).map_err(|source| ReadError::Store {
        index,
        offset: h.offset(index),
        source,
    })?;
    open_stored(manifest, index, buf)
}

/// Checks `ciphertext` (as a store or cache held it) against chunk `index`'s manifest entry and
/// decrypts it in place: the name must match the ciphertext and the plaintext its digest.
pub fn open_stored(manifest: &Manifest, index: u32, mut ciphertext: Vec<u8>) -> Result<Vec<u8>, ReadError> {
    let h = manifest.header();
    let (offset, len) = (h.offset(index), h.chunk_len(index));
    let Some((entry, key)) = manifest.find(index) else {
        return Ok(vec![0u8; len as usize]);
    };
    if ciphertext.len() as u64 != len {
        return Err(ReadError::Length { index, expected: len, actual: ciphertext.len() as u64 });
    }
    open_chunk(&entry.name, key, &entry.plain, &mut ciphertext).map_err(|source| ReadError::Chunk {
        index,
        offset,
        source,
    })?;
    Ok(ciphertext)
}

/// A block image as a manifest describes it, readable chunk by chunk.
pub struct ChunkedImage<'a> {
    pub manifest: Manifest,
    pub store: &'a dyn ChunkStore,
}

impl ChunkedImage<'_> {
    pub fn chunk_size(&self) -> u64 {
        u64::from(self.manifest.header().chunk_size)
    }

    pub fn image_size(&self) -> u64 {
        self.manifest.header().image_size
    }

    /// The verified plaintext of chunk `index` (zeros for a hole).
    pub fn read_chunk(&self, index: u32) -> Result<Vec<u8>, ReadError> {
        read_chunk(&self.manifest, self.store, index)
    }

    /// Reads `len` bytes at `offset` of the block image.
    pub fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        let cs = self.chunk_size();
        let mut out = Vec::with_capacity(len as usize);
        let mut pos = offset;
        while pos < offset + len {
            let index = (pos / cs) as u32;
            let chunk = self.read_chunk(index)?;
            let from = (pos - u64::from(index) * cs) as usize;
            let take = ((offset + len - pos) as usize).min(chunk.len() - from);
            out.extend_from_slice(&chunk[from..from + take]);
            pos += take as u64;
        }
        Ok(out)
    }

    /// Reads the superblock and metadata region and rebuilds the flattened tree.
    pub fn tree(&self) -> Result<(BlockMeta, Tree), ReadError> {
        let size = self.image_size();
        if size < BLOCK_SIZE || !size.is_multiple_of(BLOCK_SIZE) {
            return Err(
                layout::Error::Format(format!("image size {size} is not a whole number of blocks")).into()
            );
        }
        let sb = Superblock::decode(&self.read_range(size - BLOCK_SIZE, BLOCK_SIZE)?)?;
        if sb.image_size() != size {
            return Err(
                layout::Error::Format("superblock does not match the manifest's image size".into()).into()
            );
        }
        let meta = BlockMeta::new(sb, self.read_range(sb.meta_offset, sb.meta_len)?)?;
        let tree = meta.to_tree()?;
        Ok((meta, tree))
    }

    /// Rebuilds the whole block image into `dest` (written beside it, renamed when complete).
    /// Chunks are fetched and verified in parallel.
    pub fn materialize(&self, dest: &Path) -> Result<(), ReadError> {
        let io = |source| ReadError::Io { path: dest.display().to_string(), source };
        let tmp = dest.with_file_name(format!(
            ".{}.partial-{}",
            dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id()
        ));
        let file = fs::File::create(&tmp).map_err(io)?;
        let result = (|| {
            file.set_len(self.image_size()).map_err(io)?;
            let total = self.manifest.header().total_chunks() as u32;
            (0..total).into_par_iter().try_for_each(|index| {
                if self.manifest.find(index).is_none() {
                    return Ok(()); // a hole: set_len already made it zeros
                }
                let data = self.read_chunk(index)?;
                file.write_all_at(&data, u64::from(index) * self.chunk_size()).map_err(io)
            })?;
            (&file).flush().map_err(io)?;
            fs::rename(&tmp, dest).map_err(io)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}
