//! The image stage: open an OCI image layout, an OCI layout packed as tar, or a `docker save`
//! archive; resolve index -> manifest -> config -> layers; verify every blob against its descriptor.
//!
//! Image references follow umoci: `DIR` (an index holding one image), `DIR:TAG` (picked by
//! `org.opencontainers.image.ref.name`), `FILE.tar[:TAG]` for an OCI archive and
//! `FILE.tar[:REPO:TAG]` for a docker archive.

mod background;
mod digest;
mod error;
mod layer;
mod media;
mod source;
pub mod spec;
mod spool;

use std::path::{Path, PathBuf};

pub use digest::{Digest, DigestError};
pub use error::{Error, LayerError, Result};
pub use layer::{Expected, LayerStream, SizeBudget, StreamSizes};
pub use media::Compression;
use serde::Serialize;
use source::{Container, ReadError};
use spec::{DockerArchiveEntry, ImageConfig, ImageIndex, ImageManifest, Platform};
pub use spool::{SpoolReader, SpooledLayer};

use crate::units::ByteSize;

/// Lambda's limit on an image's uncompressed size: the default cap against decompression bombs.
pub const DEFAULT_MAX_UNCOMPRESSED: ByteSize = ByteSize::gib(10);

/// How the image was packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    OciLayout,
    OciArchive,
    DockerArchive,
}

impl std::fmt::Display for ImageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageKind::OciLayout => "OCI image layout",
            ImageKind::OciArchive => "OCI archive",
            ImageKind::DockerArchive => "docker archive",
        })
    }
}

/// Options for [`Image::open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Which entry of a multi-platform index to pick.
    pub platform: Platform,
    /// Cap on the total uncompressed size of all layers, enforced while streaming.
    pub max_uncompressed: ByteSize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { platform: Platform::default_target(), max_uncompressed: DEFAULT_MAX_UNCOMPRESSED }
    }
}

/// One layer as the manifest (or docker archive) declares it.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub index: usize,
    pub media_type: String,
    pub compression: Compression,
    /// Declared digest of the blob, when the format declares one.
    pub digest: Option<Digest>,
    /// Size of the blob as stored (compressed).
    pub size: u64,
    /// Digest of the uncompressed tar stream, from the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    #[serde(skip)]
    member: String,
}

impl LayerInfo {
    /// The digest to name this layer by: the blob digest, else the diff id.
    pub fn id(&self) -> Digest {
        self.digest.unwrap_or(self.diff_id)
    }
}

/// An opened, resolved image. Opening reads only the small JSON documents; layer bytes are
/// streamed (and verified) on demand by [`Image::open_layer`].
#[derive(Debug)]
pub struct Image {
    /// The reference as the user gave it, for messages.
    pub reference: String,
    pub kind: ImageKind,
    /// Digest of the image manifest; `None` for docker archives, which carry no manifest blob.
    pub manifest_digest: Option<Digest>,
    /// Digest of the config blob (docker's "image ID").
    pub config_digest: Digest,
    pub platform: Platform,
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
    pub max_uncompressed: ByteSize,
    container: Container,
}

impl Image {
    /// Opens and resolves an image reference, verifying every document it reads.
    /// One of the small images committed in `images/oci`, by tag (for unit tests).
    #[cfg(test)]
    pub(crate) fn committed(tag: &str) -> Image {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("images/oci");
        Image::open(&format!("{}:{tag}", root.display()), &OpenOptions::default()).expect("committed image")
    }

    pub fn open(reference: &str, options: &OpenOptions) -> Result<Image> {
        let (path, selector) = split_reference(reference);
        let ctx = Ctx { image: reference.to_string() };
        let meta = std::fs::metadata(&path).map_err(|source| Error::Io {
            image: ctx.image.clone(),
            what: path.display().to_string(),
            source,
        })?;
        let container = if meta.is_dir() {
            Container::Dir(path.clone())
        } else {
            Container::index_tar(&path).map_err(|e| Error::NotAnImage {
                image: ctx.image.clone(),
                reason: format!("{} is neither a directory nor a readable tar file: {e}", path.display()),
            })?
        };
        let kind = if container.has("manifest.json") && !meta.is_dir() {
            ImageKind::DockerArchive
        } else if container.has("index.json") {
            if meta.is_dir() { ImageKind::OciLayout } else { ImageKind::OciArchive }
        } else {
            return Err(Error::NotAnImage {
                image: ctx.image,
                reason: format!(
                    "{} has no index.json (OCI layout) and no manifest.json (docker archive)",
                    container.describe()
                ),
            });
        };
        if kind != ImageKind::DockerArchive {
            ctx.check_layout_marker(&container)?;
        }
        let resolved = match kind {
            ImageKind::DockerArchive => ctx.resolve_docker(&container, selector.as_deref())?,
            _ => ctx.resolve_oci(&container, selector.as_deref(), &options.platform)?,
        };
        let platform = Platform {
            architecture: resolved.config.architecture.clone(),
            os: resolved.config.os.clone(),
            variant: resolved.config.variant.clone(),
        };
        Ok(Image {
            reference: ctx.image,
            kind,
            manifest_digest: resolved.manifest_digest,
            config_digest: resolved.config_digest,
            platform,
            config: resolved.config,
            layers: resolved.layers,
            max_uncompressed: options.max_uncompressed,
            container,
        })
    }

    /// The digest that identifies the image: the manifest digest, else (docker) the config digest.
    pub fn digest(&self) -> Digest {
        self.manifest_digest.unwrap_or(self.config_digest)
    }

    /// A fresh budget for one full pass over the layers.
    pub fn size_budget(&self) -> SizeBudget {
        SizeBudget::new(self.max_uncompressed)
    }

    /// Opens layer `index` as a verified, decompressed tar stream.
    pub fn open_layer(&self, index: usize, budget: &SizeBudget) -> Result<LayerStream> {
        self.open_layer_checked(index, budget, true)
    }

    /// Opens a layer that an earlier pass verified in full: only the blob digest is checked again
    /// (when the format declares one), which still catches a blob changed between passes.
    pub fn reopen_layer(&self, index: usize, budget: &SizeBudget) -> Result<LayerStream> {
        self.open_layer_checked(index, budget, false)
    }

    fn open_layer_checked(
        &self,
        index: usize,
        budget: &SizeBudget,
        check_diff_id: bool,
    ) -> Result<LayerStream> {
        let layer = &self.layers[index];
        let (reader, size) = self.container.open(&layer.member).map_err(|e| match e {
            ReadError::Io(source) => self.layer_error(index, LayerError::Open(source)),
            // `open` streams; only whole-document reads refuse large members.
            ReadError::Missing | ReadError::TooLarge(_) => {
                Error::Missing { image: self.reference.clone(), what: format!("layer blob {}", layer.member) }
            }
        })?;
        if size != layer.size {
            return Err(self.layer_error(index, LayerError::BlobSize { expected: layer.size, actual: size }));
        }
        let expected = Expected {
            blob_digest: layer.digest,
            blob_size: Some(layer.size),
            diff_id: layer.diff_id,
            compression: layer.compression,
            check_diff_id,
        };
        LayerStream::new(reader, expected, budget.clone()).map_err(|e| self.layer_error(index, e))
    }

    /// Wraps a layer-level failure with the image and layer it belongs to.
    pub fn layer_error(&self, index: usize, source: LayerError) -> Error {
        Error::Layer {
            image: self.reference.clone(),
            index,
            digest: self.layers[index].id().short(),
            source: Box::new(source),
        }
    }
}

/// Splits `PATH[:SELECTOR]`: the longest-existing-prefix rule lets paths contain colons.
fn split_reference(reference: &str) -> (PathBuf, Option<String>) {
    if Path::new(reference).exists() {
        return (PathBuf::from(reference), None);
    }
    for (i, _) in reference.match_indices(':') {
        let (path, rest) = (&reference[..i], &reference[i + 1..]);
        if !path.is_empty() && Path::new(path).exists() {
            return (PathBuf::from(path), Some(rest.to_string()).filter(|s| !s.is_empty()));
        }
    }
    (PathBuf::from(reference), None)
}

struct Resolved {
    manifest_digest: Option<Digest>,
    config_digest: Digest,
    config: ImageConfig,
    layers: Vec<LayerInfo>,
}

/// Resolution context: carries the image name into every error.
struct Ctx {
    image: String,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

const MAX_INDEX_DEPTH: usize = 4;

impl Ctx {
    fn check_layout_marker(&self, c: &Container) -> Result<()> {
        let bytes = self.read(c, "oci-layout", "oci-layout")?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Marker {
            image_layout_version: String,
        }
        let marker: Marker = self.json(&bytes, "oci-layout")?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(self.invalid(
                "oci-layout",
                format!("unsupported imageLayoutVersion {:?}", marker.image_layout_version),
            ));
        }
        Ok(())
    }

    fn read(&self, c: &Container, member: &str, what: &str) -> Result<Vec<u8>> {
        c.read_document(member).map_err(|e| match e {
            ReadError::Missing => Error::Missing { image: self.image.clone(), what: what.to_string() },
            ReadError::TooLarge(size) => self.invalid(
                what,
                format!(
                    "{size} bytes is larger than the {} a JSON document may have",
                    source::MAX_DOCUMENT_BYTES
                ),
            ),
            ReadError::Io(source) => Error::Io { image: self.image.clone(), what: what.to_string(), source },
        })
    }

    /// Reads a blob a descriptor points to, checking its size and digest.
    fn read_blob(&self, c: &Container, d: &spec::Descriptor, what: &str) -> Result<Vec<u8>> {
        let what = format!("{what} {}", d.digest);
        let bytes = self.read(c, &blob_path(&d.digest), &what)?;
        if bytes.len() as u64 != d.size {
            return Err(Error::SizeMismatch {
                image: self.image.clone(),
                what,
                expected: d.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::of(&bytes);
        if actual != d.digest {
            return Err(Error::DigestMismatch {
                image: self.image.clone(),
                what,
                expected: d.digest,
                actual,
            });
        }
        Ok(bytes)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            image: self.image.clone(),
            what: what.to_string(),
            source,
        })
    }

    fn invalid(&self, what: &str, reason: String) -> Error {
        Error::Invalid { image: self.image.clone(), what: what.to_string(), reason }
    }

    fn resolve_oci(&self, c: &Container, tag: Option<&str>, platform: &Platform) -> Result<Resolved> {
        let index: ImageIndex = self.json(&self.read(c, "index.json", "index.json")?, "index.json")?;
        if index.schema_version != 2 {
            return Err(
                self.invalid("index.json", format!("schemaVersion {} (expected 2)", index.schema_version))
            );
        }
        let names = |ix: &ImageIndex| {
            let v: Vec<String> = ix
                .manifests
                .iter()
                .map(|d| d.annotations.get(spec::REF_NAME).cloned().unwrap_or_else(|| d.digest.short()))
                .collect();
            if v.is_empty() { "none".to_string() } else { v.join(", ") }
        };
        let mut candidates: Vec<&spec::Descriptor> = match tag {
            Some(tag) => index
                .manifests
                .iter()
                .filter(|d| d.annotations.get(spec::REF_NAME).map(String::as_str) == Some(tag))
                .collect(),
            None => index.manifests.iter().collect(),
        };
        if candidates.len() > 1 {
            candidates.retain(|d| d.platform.as_ref().is_none_or(|p| p.satisfies(platform)));
        }
        let chosen = match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(Error::NoMatch {
                    image: self.image.clone(),
                    wanted: tag.map_or_else(|| "any tag".to_string(), |t| format!("tag {t:?}")),
                    available: names(&index),
                });
            }
            _ => {
                return Err(Error::NoMatch {
                    image: self.image.clone(),
                    wanted: "a single image (the index holds several: add :TAG)".to_string(),
                    available: names(&index),
                });
            }
        };
        let (manifest_digest, manifest) = self.resolve_descriptor(c, chosen, platform, 0)?;
        let (config_digest, config) = self.read_config(c, &manifest.config)?;
        if manifest.layers.len() != config.rootfs.diff_ids.len() {
            return Err(self.invalid(
                &format!("manifest {manifest_digest}"),
                format!(
                    "{} layers but the config lists {} rootfs.diff_ids",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        let layers = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .enumerate()
            .map(|(index, (d, diff_id))| {
                let compression = Compression::from_layer_media_type(&d.media_type).ok_or_else(|| {
                    self.invalid(
                        &format!("layer {index} ({})", d.digest),
                        format!("unsupported media type {:?}", d.media_type),
                    )
                })?;
                let member = blob_path(&d.digest);
                if !c.has(&member) {
                    return Err(Error::Missing {
                        image: self.image.clone(),
                        what: format!("layer {index} blob {}", d.digest),
                    });
                }
                Ok(LayerInfo {
                    index,
                    media_type: d.media_type.clone(),
                    compression,
                    digest: Some(d.digest),
                    size: d.size,
                    diff_id: *diff_id,
                    member,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Resolved { manifest_digest: Some(manifest_digest), config_digest, config, layers })
    }

    /// Follows a descriptor through nested indexes (multi-platform images) to an image manifest.
    fn resolve_descriptor(
        &self,
        c: &Container,
        d: spec::Descriptor,
        platform: &Platform,
        depth: usize,
    ) -> Result<(Digest, ImageManifest)> {
        if depth > MAX_INDEX_DEPTH {
            return Err(self.invalid(&format!("index {}", d.digest), "indexes nested too deeply".to_string()));
        }
        let bytes = self.read_blob(c, &d, "manifest")?;
        let what = format!("manifest {}", d.digest);
        let media = if d.media_type.is_empty() {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Probe {
                #[serde(default)]
                media_type: Option<String>,
                #[serde(default)]
                manifests: Option<serde_json::Value>,
            }
            let probe: Probe = self.json(&bytes, &what)?;
            probe.media_type.unwrap_or_else(|| {
                if probe.manifests.is_some() { media::OCI_INDEX.into() } else { media::OCI_MANIFEST.into() }
            })
        } else {
            d.media_type.clone()
        };
        match media.as_str() {
            media::OCI_INDEX | media::DOCKER_MANIFEST_LIST => {
                let index: ImageIndex = self.json(&bytes, &format!("index {}", d.digest))?;
                let offered: Vec<String> = index
                    .manifests
                    .iter()
                    .map(|m| m.platform.as_ref().map_or_else(|| "unknown".into(), |p| p.to_string()))
                    .collect();
                let next = index
                    .manifests
                    .into_iter()
                    .find(|m| m.platform.as_ref().is_some_and(|p| p.satisfies(platform)))
                    .ok_or_else(|| Error::NoMatch {
                        image: self.image.clone(),
                        wanted: format!("platform {platform}"),
                        available: offered.join(", "),
                    })?;
                self.resolve_descriptor(c, next, platform, depth + 1)
            }
            media::OCI_MANIFEST | media::DOCKER_MANIFEST => {
                let manifest: ImageManifest = self.json(&bytes, &what)?;
                if manifest.schema_version != 2 {
                    return Err(self.invalid(&what, format!("schemaVersion {}", manifest.schema_version)));
                }
                Ok((d.digest, manifest))
            }
            other => Err(self.invalid(&what, format!("unsupported media type {other:?}"))),
        }
    }

    fn read_config(&self, c: &Container, d: &spec::Descriptor) -> Result<(Digest, ImageConfig)> {
        let bytes = self.read_blob(c, d, "config")?;
        let config: ImageConfig = self.json(&bytes, &format!("config {}", d.digest))?;
        self.check_config(&config, &format!("config {}", d.digest))?;
        Ok((d.digest, config))
    }

    fn check_config(&self, config: &ImageConfig, what: &str) -> Result<()> {
        if config.rootfs.kind != "layers" {
            return Err(
                self.invalid(what, format!("rootfs.type {:?} (expected \"layers\")", config.rootfs.kind))
            );
        }
        Ok(())
    }

    fn resolve_docker(&self, c: &Container, selector: Option<&str>) -> Result<Resolved> {
        let entries: Vec<DockerArchiveEntry> =
            self.json(&self.read(c, "manifest.json", "manifest.json")?, "manifest.json")?;
        let tags = |e: &DockerArchiveEntry| e.repo_tags.clone().unwrap_or_default();
        let chosen = match selector {
            Some(sel) => entries.iter().find(|e| tags(e).iter().any(|t| same_repo_tag(t, sel))),
            None if entries.len() == 1 => entries.first(),
            None => None,
        };
        let Some(entry) = chosen else {
            let available: Vec<String> = entries.iter().flat_map(tags).collect();
            return Err(Error::NoMatch {
                image: self.image.clone(),
                wanted: selector.map_or_else(
                    || format!("a single image (the archive holds {}: add :REPO:TAG)", entries.len()),
                    |s| format!("repo tag {s:?}"),
                ),
                available: if available.is_empty() { "none".into() } else { available.join(", ") },
            });
        };
        let what = format!("config {}", entry.config);
        let bytes = self.read(c, &entry.config, &what)?;
        let config_digest = Digest::of(&bytes);
        if let Some(named) = digest_in_name(&entry.config)
            && named != config_digest
        {
            return Err(Error::DigestMismatch {
                image: self.image.clone(),
                what,
                expected: named,
                actual: config_digest,
            });
        }
        let config: ImageConfig = self.json(&bytes, &what)?;
        self.check_config(&config, &what)?;
        if entry.layers.len() != config.rootfs.diff_ids.len() {
            return Err(self.invalid(
                "manifest.json",
                format!(
                    "{} layers but the config lists {} rootfs.diff_ids",
                    entry.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::with_capacity(entry.layers.len());
        for (index, (member, diff_id)) in entry.layers.iter().zip(&config.rootfs.diff_ids).enumerate() {
            let (mut reader, size) = c.open(member).map_err(|e| match e {
                ReadError::Io(source) => {
                    Error::Io { image: self.image.clone(), what: format!("layer {index} {member}"), source }
                }
                _ => Error::Missing { image: self.image.clone(), what: format!("layer {index} {member}") },
            })?;
            let mut head = [0u8; 4];
            let n = read_up_to(&mut reader, &mut head).map_err(|source| Error::Io {
                image: self.image.clone(),
                what: format!("layer {index} {member}"),
                source,
            })?;
            let compression = Compression::sniff(&head[..n]);
            let media_type = match compression {
                Compression::None => "application/vnd.docker.image.rootfs.diff.tar",
                Compression::Gzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Compression::Zstd => "application/vnd.docker.image.rootfs.diff.tar.zstd",
            };
            layers.push(LayerInfo {
                index,
                media_type: media_type.to_string(),
                compression,
                digest: digest_in_name(member),
                size,
                diff_id: *diff_id,
                member: member.clone(),
            });
        }
        Ok(Resolved { manifest_digest: None, config_digest, config, layers })
    }
}

fn read_up_to(r: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Content-addressed member names (`blobs/sha256/<hex>`, `<hex>.tar`, `<hex>.json`) carry the
/// digest of their content, which we then verify. Legacy `<id>/layer.tar` ids are not digests.
fn digest_in_name(member: &str) -> Option<Digest> {
    let name = member.trim_start_matches("./");
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".tar"))
        .or_else(|| name.strip_suffix(".json"))?;
    Digest::from_hex(hex).ok()
}

/// `busybox` matches `busybox:latest` and `docker.io/library/busybox:latest`.
fn same_repo_tag(have: &str, want: &str) -> bool {
    fn normalize(s: &str) -> String {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        let s = s.strip_prefix("library/").unwrap_or(s);
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') { s.to_string() } else { format!("{s}:latest") }
    }
    normalize(have) == normalize(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_normalize() {
        assert!(same_repo_tag("docker.io/library/busybox:latest", "busybox"));
        assert!(same_repo_tag("localhost:5000/app:v1", "localhost:5000/app:v1"));
        assert!(!same_repo_tag("app:v1", "app:v2"));
    }

    #[test]
    fn content_addressed_names() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(digest_in_name(&format!("{hex}.tar")).is_some());
        assert!(digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_name(&format!("{hex}/layer.tar")).is_none());
    }
}
