//! `chunkload inspect`: what an image is made of and what flattening did to it.

use std::fmt;

use serde::Serialize;

use super::Table;
use crate::flatten::{Flattened, LayerStats, Summary};
use crate::image::{Compression, Image, ImageKind};
use crate::units::ByteSize;

#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub image: String,
    pub kind: ImageKind,
    pub digest: String,
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    pub platform: String,
    pub layers: Vec<LayerReport>,
    pub flattened: Summary,
}

#[derive(Debug, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    pub compression: Compression,
    pub created_by: Option<String>,
    #[serde(flatten)]
    pub stats: LayerStats,
}

impl InspectReport {
    pub fn new(image: &Image, flat: &Flattened) -> Self {
        let history: Vec<Option<String>> =
            image.config.history.iter().filter(|h| !h.empty_layer).map(|h| h.created_by.clone()).collect();
        let layers = image
            .layers
            .iter()
            .zip(&flat.layers)
            .map(|(info, stats)| LayerReport {
                index: info.index,
                digest: info.id().to_string(),
                diff_id: info.diff_id.to_string(),
                media_type: info.media_type.clone(),
                compression: info.compression,
                created_by: history.get(info.index).cloned().flatten(),
                stats: stats.clone(),
            })
            .collect();
        InspectReport {
            image: image.reference.clone(),
            kind: image.kind,
            digest: image.digest().to_string(),
            manifest_digest: image.manifest_digest.map(|d| d.to_string()),
            config_digest: image.config_digest.to_string(),
            platform: image.platform.to_string(),
            layers,
            flattened: flat.summary.clone(),
        }
    }
}

fn size(b: u64) -> String {
    ByteSize(b).to_string()
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "image     {} ({})", self.image, self.kind)?;
        writeln!(f, "digest    {}", self.digest)?;
        writeln!(f, "config    {}", self.config_digest)?;
        writeln!(f, "platform  {}", self.platform)?;
        writeln!(f)?;
        let mut t = Table::new([
            "layer",
            "digest",
            "compression",
            "compressed",
            "uncompressed",
            "entries",
            "whiteouts",
            "added",
            "hid",
            "dead",
        ]);
        for l in &self.layers {
            let s = &l.stats;
            t.row([
                l.index.to_string(),
                l.digest.chars().take(19).collect(),
                l.compression.to_string(),
                size(s.compressed_bytes),
                size(s.uncompressed_bytes),
                s.entries.to_string(),
                (s.whiteouts + s.opaque_whiteouts).to_string(),
                size(s.bytes_added),
                size(s.hid_bytes),
                size(s.dead_bytes),
            ]);
        }
        write!(f, "{t}")?;
        writeln!(
            f,
            "  added: regular-file bytes the layer carries; hid: bytes of lower layers it removed or"
        )?;
        writeln!(f, "  replaced; dead: bytes it carries that do not survive into the flattened image")?;
        writeln!(f)?;
        let s = &self.flattened;
        writeln!(f, "flattened")?;
        writeln!(f, "  files        {}", s.files)?;
        writeln!(f, "  directories  {}", s.dirs)?;
        writeln!(f, "  symlinks     {}", s.symlinks)?;
        writeln!(f, "  hard links   {}", s.hardlinks)?;
        writeln!(f, "  devices      {}", s.devices)?;
        writeln!(f, "  bytes        {} ({})", s.total_bytes, size(s.total_bytes))?;
        writeln!(
            f,
            "  hidden       {} ({}) carried by layers but hidden by later ones",
            s.hidden_bytes,
            size(s.hidden_bytes)
        )
    }
}
