//! The JSON documents of an image, as the OCI image spec and `docker save` define them. Only the
//! fields chunkload uses are modelled; unknown fields are ignored, as the spec requires of readers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Digest;

/// A content descriptor: the spec says readers MUST verify `digest` and `size` of what it points to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// `org.opencontainers.image.ref.name`: the tag an index entry is known by in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Lambda runs linux/amd64 unless told otherwise.
    pub fn default_target() -> Self {
        Platform { architecture: "amd64".into(), os: "linux".into(), variant: None }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?.to_string();
        let architecture = parts.next().filter(|p| !p.is_empty())?.to_string();
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform { architecture, os, variant })
    }

    /// Whether `self` (what an index offers) satisfies `want`; a variant is compared only when asked.
    pub fn satisfies(&self, want: &Platform) -> bool {
        self.os == want.os
            && self.architecture == want.architecture
            && (want.variant.is_none() || self.variant == want.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// `index.json` of a layout, or a multi-platform image index blob.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The image configuration; `rootfs.diff_ids` are the digests of the uncompressed layers.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
    /// How a container of the image starts (`config` in the spec), if the image says.
    #[serde(default)]
    pub config: Option<ProcessConfig>,
}

/// The execution parameters of an image config: what a runtime starts, as whom, where and with
/// which environment. Fields the spec leaves optional may be missing or `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ProcessConfig {
    /// `user`, `uid`, `user:group`, `uid:gid` (names are looked up in the image's /etc/passwd
    /// and /etc/group); empty means root.
    #[serde(rename = "User", default, deserialize_with = "null_default")]
    pub user: String,
    /// `KEY=VALUE` entries.
    #[serde(rename = "Env", default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(rename = "Entrypoint", default, deserialize_with = "null_default")]
    pub entrypoint: Vec<String>,
    /// The default arguments to the entrypoint, or the command when there is no entrypoint.
    #[serde(rename = "Cmd", default, deserialize_with = "null_default")]
    pub cmd: Vec<String>,
    /// Empty means `/`.
    #[serde(rename = "WorkingDir", default, deserialize_with = "null_default")]
    pub working_dir: String,
}

/// `null` reads as the type's default, as docker writes `"Entrypoint": null`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

/// One entry of a `docker save` archive's `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_config_reads_docker_nulls_and_missing_fields() {
        let c: ImageConfig = serde_json::from_str(
            r#"{"rootfs":{"type":"layers","diff_ids":[]},"config":{"User":"app:staff",
               "Env":["PATH=/bin","A=b=c"],"Entrypoint":null,"Cmd":["sh","-c","true"]}}"#,
        )
        .unwrap();
        let p = c.config.unwrap();
        assert_eq!(p.user, "app:staff");
        assert_eq!(p.env, ["PATH=/bin", "A=b=c"]);
        assert!(p.entrypoint.is_empty());
        assert_eq!(p.cmd, ["sh", "-c", "true"]);
        assert_eq!(p.working_dir, "");
        let bare: ImageConfig =
            serde_json::from_str(r#"{"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert!(bare.config.is_none());
    }
}
