//! An image or a sealed manifest, opened and ready to replay: its manifest, block metadata and
//! chunk table, and, when the OCI image is at hand, the image and its flattened layers (for the
//! layers story and the baselines). One type for every command that replays or explains a start.

use std::path::Path;
use std::sync::Arc;

use crate::chunk::{self, ChunkedImage, ConvertOptions};
use crate::crypto::{self, CustomerKey, Manifest, ManifestPublic};
use crate::flatten::{self, Flattened};
use crate::image::{self, Image, OpenOptions};
use crate::layout::BlockMeta;
use crate::mount::Mountable;
use crate::sim::ChunkTable;
use crate::store::{self, ChunkStore, DirStore, ManifestName, MemStore};
use crate::trace::{MmapRule, Record};

use super::mapping::map_trace;
use crate::trace::TraceMap;

/// Why an image or a manifest could not be opened. Each message names the input.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{} is not a chunk store (it has no manifests/ directory)", .0.display())]
    NotAStore(std::path::PathBuf),
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {subject}")]
    Manifest {
        subject: String,
        #[source]
        source: crypto::Error,
    },
    #[error("manifest {name} in the store")]
    StoredManifest {
        name: ManifestName,
        #[source]
        source: crypto::Error,
    },
    #[error("manifest {manifest} was converted from {source_digest}, not from --image {image} ({digest})")]
    WrongImage { manifest: String, source_digest: String, image: String, digest: String },
    #[error(transparent)]
    TooBig(#[from] crate::quantity::memory::TooBig),
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error(transparent)]
    Flatten(#[from] flatten::Error),
    #[error(transparent)]
    Convert(#[from] chunk::ConvertError),
    #[error(transparent)]
    Chunks(#[from] chunk::ReadError),
    #[error(transparent)]
    Crypto(#[from] crypto::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Opens an existing chunk store (refusing a directory that is not one), without directory syncs:
/// every reader of a store opens it this way.
pub fn open_store(dir: &Path) -> Result<DirStore, IngestError> {
    if !dir.join("manifests").is_dir() {
        return Err(IngestError::NotAStore(dir.to_path_buf()));
    }
    Ok(DirStore::open(dir)?.with_sync(false))
}

/// Bytes of per-chunk bookkeeping an in-memory conversion holds beside each chunk's bytes (its
/// name, digests and key in the manifest, its entry in the memory store and the chunk table), a
/// generous round figure.
pub const PER_CHUNK_OVERHEAD: u64 = 512;

/// Memory an in-memory conversion of a block image of `image_bytes` into `chunk_size` chunks
/// needs: every chunk's bytes, plus [`PER_CHUNK_OVERHEAD`] per chunk; and the arithmetic, for the
/// message.
pub fn in_memory_estimate(
    image_bytes: u64,
    chunk_size: chunk::ChunkSize,
) -> (crate::units::ByteSize, String) {
    let chunks = image_bytes.div_ceil(chunk_size.bytes());
    let estimate = image_bytes.saturating_add(chunks.saturating_mul(PER_CHUNK_OVERHEAD));
    let detail = format!(
        "a {} block image in {chunks} chunks of {chunk_size}, plus {PER_CHUNK_OVERHEAD} B of bookkeeping per chunk",
        crate::units::ByteSize(image_bytes)
    );
    (crate::units::ByteSize(estimate), detail)
}

/// A sealed manifest's bytes: `subject` is a manifest file, or the name of a manifest in `store`
/// (then also returned).
pub fn read_sealed(subject: &str, store: &DirStore) -> Result<(Vec<u8>, Option<ManifestName>), IngestError> {
    if Path::new(subject).is_file() {
        let bytes = std::fs::read(subject)
            .map_err(|source| IngestError::Read { path: subject.to_string(), source })?;
        return Ok((bytes, None));
    }
    let name: ManifestName = subject.parse()?;
    Ok((store.get_manifest(&name)?, Some(name)))
}

/// Another image of a store, by its keyless manifest.
pub struct StoreImage {
    pub name: ManifestName,
    pub manifest: ManifestPublic,
}

/// An image or a sealed manifest, opened: ready to map a trace onto and replay.
pub struct Opened {
    /// As the user named it.
    pub name: String,
    /// The OCI image, when at hand.
    pub image: Option<Image>,
    /// Its flattened layers, when the image is at hand.
    pub flat: Option<Flattened>,
    pub manifest: Manifest,
    pub public: ManifestPublic,
    pub meta: BlockMeta,
    pub table: ChunkTable,
    /// The store's copy of this image (by name, or by identical sealed bytes), which comparisons
    /// with the store's other images leave out.
    stored_name: Option<ManifestName>,
    sealed: Option<Vec<u8>>,
}

impl Opened {
    /// Opens the OCI image `reference` and converts it in memory (no store is written).
    pub fn convert(
        reference: &str,
        options: &OpenOptions,
        convert: &ConvertOptions,
    ) -> Result<Self, IngestError> {
        Ok(Self::convert_image(Image::open(reference, options)?, convert)?.0)
    }

    /// Converts the opened `image` in memory, keeping the chunks: the store is returned beside it
    /// (what a mount of an unconverted image serves from).
    ///
    /// Refused up front, with the estimate, when the chunks would not fit in the memory the
    /// machine has available ([`in_memory_estimate`]).
    pub fn convert_image(image: Image, convert: &ConvertOptions) -> Result<(Self, MemStore), IngestError> {
        let flat = flatten::flatten(&image)?;
        let size = crate::layout::BlockLayout::new(&flat).image_size();
        let (estimate, detail) = in_memory_estimate(size, convert.chunk_size);
        crate::quantity::memory::check(
            &format!("converting {} in memory", image.reference),
            estimate,
            &detail,
            crate::quantity::memory::available(),
        )?;
        let mem = MemStore::new();
        let manifest = chunk::convert(&image, &flat, convert, &mem)?.manifest;
        let name = image.reference.clone();
        let opened = Self::finish(&name, Some(image), Some(flat), manifest, &mem, None, None)?;
        Ok((opened, mem))
    }

    /// The image as a mount serves it: from `store`, which holds its chunks, labelled `label`.
    pub fn into_mountable(self, store: Arc<dyn ChunkStore>, label: String) -> Mountable {
        Mountable { meta: self.meta, manifest: self.manifest, store, label }
    }

    /// Opens the sealed manifest `subject` (a file, or a name in `store`) with `key`; `image`, the
    /// OCI image it was converted from, if given, must be that image.
    pub fn sealed(
        subject: &str,
        store: &DirStore,
        key: &CustomerKey,
        image: Option<(&str, &OpenOptions)>,
    ) -> Result<Self, IngestError> {
        let (bytes, stored_name) = read_sealed(subject, store)?;
        let manifest = Manifest::open(&bytes, key)
            .map_err(|source| IngestError::Manifest { subject: subject.to_string(), source })?;
        let (image, flat) = match image {
            Some((reference, options)) => {
                let image = Image::open(reference, options)?;
                let source = &manifest.header().source;
                if *source != image.digest().to_string() {
                    return Err(IngestError::WrongImage {
                        manifest: subject.to_string(),
                        source_digest: source.clone(),
                        image: image.reference.to_string(),
                        digest: image.digest().to_string(),
                    });
                }
                let flat = flatten::flatten(&image)?;
                (Some(image), Some(flat))
            }
            None => (None, None),
        };
        Self::finish(subject, image, flat, manifest, store, stored_name, Some(bytes))
    }

    fn finish(
        name: &str,
        image: Option<Image>,
        flat: Option<Flattened>,
        manifest: Manifest,
        store: &dyn ChunkStore,
        stored_name: Option<ManifestName>,
        sealed: Option<Vec<u8>>,
    ) -> Result<Self, IngestError> {
        let chunked = ChunkedImage { manifest, store };
        let (meta, _) = chunked.tree()?;
        let manifest = chunked.manifest;
        let public = manifest.public();
        let table = super::chunk_table(&public);
        Ok(Opened { name: name.to_string(), image, flat, manifest, public, meta, table, stored_name, sealed })
    }

    /// `records` (a trace of a start of this image) mapped onto its block image.
    pub fn map(&self, records: impl IntoIterator<Item = Record>, mmap: MmapRule) -> TraceMap {
        map_trace(&self.meta, records, mmap)
    }

    /// The image's identity by content (SHA-256 over its chunk size, size and chunk names by
    /// index, hex): equal for two copies of one converted image wherever they are stored.
    pub fn content_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let public = &self.public;
        let mut id = Sha256::new();
        id.update(format!("{} {}\n", public.header.chunk_size, public.header.image_size));
        for c in &public.chunks {
            id.update(format!("{} {}\n", c.index, c.name));
        }
        hex::encode(id.finalize())
    }

    /// The other images of `store` (this one left out), by their keyless manifests, in name order.
    pub fn store_images(&self, store: &DirStore) -> Result<Vec<StoreImage>, IngestError> {
        let mut out = Vec::new();
        for name in store.list_manifests()? {
            if self.stored_name.as_ref() == Some(&name) {
                continue;
            }
            let bytes = store.get_manifest(&name)?;
            if self.sealed.as_deref() == Some(&bytes[..]) {
                continue;
            }
            let manifest = ManifestPublic::parse(&bytes)
                .map_err(|source| IngestError::StoredManifest { name: name.clone(), source })?;
            out.push(StoreImage { name, manifest });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_estimates_count_bytes_and_chunks() {
        let (est, detail) = in_memory_estimate(10 << 30, chunk::ChunkSize::new(4096).unwrap());
        // 10 GiB of data plus 2.6M chunks of bookkeeping.
        assert_eq!(est.bytes(), (10 << 30) + (10u64 << 30) / 4096 * PER_CHUNK_OVERHEAD);
        assert!(detail.contains("2621440 chunks of 4KiB"), "{detail}");
        let e = crate::quantity::memory::check(
            "converting x in memory",
            est,
            &detail,
            Some(crate::units::ByteSize::gib(8)),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("11.25GiB") && e.contains("8GiB") && e.contains("refusing"), "{e}");
    }
}
