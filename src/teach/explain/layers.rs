//! Story 1: the layers of the image, what each added, replaced or hid, and what flattening keeps.

use std::fmt;

use serde::Serialize;

use crate::flatten::{LayerStats, Summary};
use crate::units::ByteSize;

#[derive(Debug, Clone, Serialize)]
pub struct LayerStory {
    pub layers: Vec<LayerLine>,
    pub files: u64,
    pub live_bytes: u64,
    pub hidden_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerLine {
    pub index: usize,
    pub created_by: Option<String>,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub files: u64,
    pub whiteouts: u64,
    pub opaque_whiteouts: u64,
    pub hid_entries: u64,
    pub hid_bytes: u64,
    pub dead_bytes: u64,
}

impl LayerStory {
    /// The story of flattened `layers` (with their totals), `history[i]` being what built layer `i`.
    pub fn build(layers: &[LayerStats], summary: &Summary, history: &[Option<String>]) -> Self {
        LayerStory {
            layers: layers
                .iter()
                .map(|l| LayerLine {
                    index: l.index,
                    created_by: history.get(l.index).cloned().flatten(),
                    compressed_bytes: l.compressed_bytes,
                    uncompressed_bytes: l.uncompressed_bytes,
                    files: l.files,
                    whiteouts: l.whiteouts,
                    opaque_whiteouts: l.opaque_whiteouts,
                    hid_entries: l.hid_entries,
                    hid_bytes: l.hid_bytes,
                    dead_bytes: l.dead_bytes,
                })
                .collect(),
            files: summary.files,
            live_bytes: summary.total_bytes,
            hidden_bytes: summary.hidden_bytes,
        }
    }
}

impl fmt::Display for LayerStory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self;
        writeln!(f, "1. The layers")?;
        writeln!(
            f,
            "   A container image is a stack of tar archives (layers), each one the files a build step added,\n   \
             changed or deleted. Deleting a lower layer's file leaves a 'whiteout' marker; the bytes stay\n   \
             in the lower layer and are downloaded anyway ('hidden')."
        )?;
        for x in &l.layers {
            write!(
                f,
                "   layer {}: {} compressed, {} as tar, {}",
                x.index,
                ByteSize(x.compressed_bytes),
                ByteSize(x.uncompressed_bytes),
                crate::units::plural(x.files, "file", "files")
            )?;
            if x.whiteouts + x.opaque_whiteouts > 0 {
                write!(
                    f,
                    "; {} whiteouts hide {} entries ({}) of the layers below",
                    x.whiteouts + x.opaque_whiteouts,
                    x.hid_entries,
                    ByteSize(x.hid_bytes)
                )?;
            } else if x.hid_entries > 0 {
                write!(
                    f,
                    "; replaces {} entries ({}) of the layers below",
                    x.hid_entries,
                    ByteSize(x.hid_bytes)
                )?;
            }
            if x.dead_bytes > 0 {
                write!(f, "; {} of it never reach the final image", ByteSize(x.dead_bytes))?;
            }
            writeln!(f)?;
            if let Some(by) = &x.created_by {
                writeln!(f, "     made by: {}", shorten(by, 90))?;
            }
        }
        writeln!(
            f,
            "   Flattening applies the layers in order: {}, {} of live file data; {} carried by the\n   \
             layers are hidden and do not reach the block image.",
            crate::units::plural(l.files, "file", "files"),
            ByteSize(l.live_bytes),
            ByteSize(l.hidden_bytes)
        )?;
        Ok(())
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_gets_its_history_line_and_the_totals_come_from_the_summary() {
        let layers = [
            LayerStats { index: 0, files: 10, compressed_bytes: 100, ..Default::default() },
            LayerStats {
                index: 1,
                files: 2,
                whiteouts: 1,
                hid_entries: 3,
                hid_bytes: 40,
                ..Default::default()
            },
        ];
        let summary = Summary { files: 11, total_bytes: 900, hidden_bytes: 40, ..Default::default() };
        let history = [Some("FROM debian".to_string())];
        let s = LayerStory::build(&layers, &summary, &history);
        assert_eq!(s.layers.len(), 2);
        assert_eq!(s.layers[0].created_by.as_deref(), Some("FROM debian"));
        assert_eq!(s.layers[1].created_by, None, "no history entry: nothing invented");
        assert_eq!((s.layers[1].whiteouts, s.layers[1].hid_entries, s.layers[1].hid_bytes), (1, 3, 40));
        assert_eq!((s.files, s.live_bytes, s.hidden_bytes), (11, 900, 40));
    }

    #[test]
    fn long_history_lines_are_shortened_on_a_char_boundary() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 2), "éé...");
    }
}
