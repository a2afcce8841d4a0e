//! Media types of manifests and layers, in both the OCI and the Docker spellings.

use std::fmt;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// How a layer blob is compressed. Detected from the media type, or from magic bytes where an
/// archive format (docker save) declares none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Parses a layer media type. Returns `None` for anything that is not a tar layer we can read.
    pub fn from_layer_media_type(media_type: &str) -> Option<Self> {
        let base = media_type
            .strip_prefix("application/vnd.oci.image.layer.nondistributable.v1.")
            .or_else(|| media_type.strip_prefix("application/vnd.oci.image.layer.v1."))
            .map(|rest| match rest {
                "tar" => Some(Compression::None),
                "tar+gzip" => Some(Compression::Gzip),
                "tar+zstd" => Some(Compression::Zstd),
                _ => None,
            });
        if let Some(found) = base {
            return found;
        }
        let docker = media_type
            .strip_prefix("application/vnd.docker.image.rootfs.foreign.diff.")
            .or_else(|| media_type.strip_prefix("application/vnd.docker.image.rootfs.diff."));
        match docker? {
            "tar" => Some(Compression::None),
            "tar.gzip" => Some(Compression::Gzip),
            "tar.zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Sniffs the first bytes of a blob: gzip and zstd have fixed magic numbers; anything else is
    /// taken as plain tar (the tar reader then rejects it if it is not one).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings() {
        use Compression::*;
        for (mt, c) in [
            ("application/vnd.oci.image.layer.v1.tar", Some(None)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Some(Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Some(Zstd)),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Some(Gzip)),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Some(Gzip)),
            ("application/vnd.docker.image.rootfs.diff.tar", Some(None)),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Some(Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+bzip2", Option::None),
            ("text/plain", Option::None),
        ] {
            assert_eq!(Compression::from_layer_media_type(mt), c, "{mt}");
        }
    }
}
