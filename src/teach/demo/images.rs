//! Section 1: the images and their layers: how many layer blobs the images share, and what a
//! registry that stores each blob once keeps.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::{Demo, DemoError, Files, indent};
use crate::report::Table;
use crate::units::ByteSize;

#[derive(Debug, Clone, Serialize)]
pub struct ImagesSection {
    pub images: Vec<ImageLine>,
    /// Layer blobs referenced by all images, and the distinct ones a registry stores.
    pub layer_refs: u64,
    pub distinct_layers: u64,
    pub referenced_bytes: u64,
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageLine {
    pub tag: String,
    pub digest: String,
    pub layers: usize,
    pub compressed_bytes: u64,
    pub live_bytes: u64,
    /// Layers whose blob an earlier image already had.
    pub layers_seen_before: usize,
    pub whiteouts: u64,
    pub hidden_bytes: u64,
}

/// What section 1 reads of one image: its layer blobs (id and compressed size, bottom first) and
/// what flattening found.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    pub tag: String,
    pub digest: String,
    pub layers: Vec<(String, u64)>,
    pub live_bytes: u64,
    pub whiteouts: u64,
    pub hidden_bytes: u64,
}

pub fn images_section(demo: &Demo) -> ImagesSection {
    let facts: Vec<ImageFacts> = demo
        .images
        .iter()
        .map(|d| ImageFacts {
            tag: d.tag.clone(),
            digest: d.image.digest().short(),
            layers: d.image.layers.iter().map(|l| (l.id().to_string(), l.size)).collect(),
            live_bytes: d.flat.summary.total_bytes,
            whiteouts: d.flat.layers.iter().map(|l| l.whiteouts + l.opaque_whiteouts).sum(),
            hidden_bytes: d.flat.summary.hidden_bytes,
        })
        .collect();
    ImagesSection::build(&facts)
}

impl ImagesSection {
    /// The section over images given in upload order: a layer is "reused" when an earlier image
    /// (or an earlier layer of the same image) had its blob.
    pub fn build(images: &[ImageFacts]) -> Self {
        let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
        let mut lines = Vec::new();
        let mut referenced = 0;
        for d in images {
            let mut before = 0;
            for (id, size) in &d.layers {
                if seen.insert(id, *size).is_some() {
                    before += 1;
                }
                referenced += size;
            }
            lines.push(ImageLine {
                tag: d.tag.clone(),
                digest: d.digest.clone(),
                layers: d.layers.len(),
                compressed_bytes: d.layers.iter().map(|l| l.1).sum(),
                live_bytes: d.live_bytes,
                layers_seen_before: before,
                whiteouts: d.whiteouts,
                hidden_bytes: d.hidden_bytes,
            });
        }
        ImagesSection {
            layer_refs: images.iter().map(|d| d.layers.len() as u64).sum(),
            distinct_layers: seen.len() as u64,
            referenced_bytes: referenced,
            stored_bytes: seen.values().sum(),
            images: lines,
        }
    }

    /// images.csv: one row per image.
    pub fn write_files(&self, put: &mut Files<'_>) -> Result<(), DemoError> {
        let mut csv = String::from(
            "tag,digest,layers,compressed_bytes,live_bytes,layers_seen_before,whiteouts,hidden_bytes\n",
        );
        for i in &self.images {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{}",
                i.tag,
                i.digest,
                i.layers,
                i.compressed_bytes,
                i.live_bytes,
                i.layers_seen_before,
                i.whiteouts,
                i.hidden_bytes
            );
        }
        put.put("images.csv", csv.as_bytes())
    }
}

impl fmt::Display for ImagesSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "1. The images: real Debian packages in layers, shared the way real functions share them"
        )?;
        let mut t = Table::new([
            "image",
            "digest",
            "layers",
            "compressed",
            "file data",
            "reused layers",
            "whiteouts",
        ]);
        for i in &self.images {
            t.row([
                i.tag.clone(),
                i.digest.clone(),
                i.layers.to_string(),
                ByteSize(i.compressed_bytes).to_string(),
                ByteSize(i.live_bytes).to_string(),
                i.layers_seen_before.to_string(),
                i.whiteouts.to_string(),
            ]);
        }
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   A registry stores each layer blob once: {} layer references, {} distinct blobs, {} instead of {}.",
            self.layer_refs,
            self.distinct_layers,
            ByteSize(self.stored_bytes),
            ByteSize(self.referenced_bytes)
        )?;
        writeln!(
            f,
            "   But layers only dedup whole: change one file in the base and every image above it is new.\n   \
             Lambda dedups below the layers instead, on chunks of one flattened block image."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tag: &str, layers: &[(&str, u64)]) -> ImageFacts {
        ImageFacts {
            tag: tag.into(),
            digest: format!("sha256:{tag}"),
            layers: layers.iter().map(|(id, n)| (id.to_string(), *n)).collect(),
            live_bytes: 1000,
            whiteouts: 1,
            hidden_bytes: 10,
        }
    }

    #[test]
    fn layers_an_earlier_image_had_are_reused_and_stored_once() {
        let s = ImagesSection::build(&[
            image("base", &[("a", 100)]),
            image("app", &[("a", 100), ("b", 20)]),
            image("app-v2", &[("a", 100), ("b", 20), ("c", 5)]),
        ]);
        let reused: Vec<usize> = s.images.iter().map(|i| i.layers_seen_before).collect();
        assert_eq!(reused, [0, 1, 2]);
        assert_eq!(s.images[2].compressed_bytes, 125);
        assert_eq!((s.layer_refs, s.distinct_layers), (6, 3));
        assert_eq!((s.referenced_bytes, s.stored_bytes), (345, 125));
        assert!(s.to_string().contains("6 layer references, 3 distinct blobs"));
    }

    #[test]
    fn no_images_no_layers() {
        let s = ImagesSection::build(&[]);
        assert_eq!((s.layer_refs, s.distinct_layers, s.stored_bytes), (0, 0, 0));
    }
}
