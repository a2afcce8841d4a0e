//! Section 2: the images converted, in upload order, into one chunk store: what each upload
//! found already stored, and what dedup saves (`report::dedup`).

use std::fmt::{self, Write as _};

use serde::Serialize;

use super::{Demo, DemoError, Files, SALT, indent};
use crate::chunk::{ChunkSize, ConvertStats};
use crate::crypto::ManifestPublic;
use crate::report::Table;
use crate::report::dedup::DedupReport;
use crate::report::plot::{self, BarGroup, ChartOptions};
use crate::units::ByteSize;

#[derive(Debug, Clone, Serialize)]
pub struct StoreSection {
    pub salt: String,
    pub chunk_size: u64,
    pub uploads: Vec<UploadLine>,
    pub dedup: DedupReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadLine {
    pub tag: String,
    pub image_bytes: u64,
    pub chunks: u64,
    pub zero: u64,
    pub present: u64,
    pub new: u64,
    pub bytes_written: u64,
}

pub fn store_section(demo: &Demo) -> StoreSection {
    StoreSection::build(demo.images.iter().map(|d| (d.tag.clone(), &d.convert, d.manifest.clone())).collect())
}

impl StoreSection {
    /// The section over `(tag, conversion, manifest)` in upload order (tags distinct).
    pub fn build(uploads: Vec<(String, &ConvertStats, ManifestPublic)>) -> Self {
        let lines = uploads
            .iter()
            .map(|(tag, c, _)| UploadLine {
                tag: tag.clone(),
                image_bytes: c.image_bytes,
                chunks: c.chunks_total,
                zero: c.chunks_zero,
                present: c.chunks_present,
                new: c.chunks_new,
                bytes_written: c.bytes_written,
            })
            .collect();
        let dedup = DedupReport::build(uploads.into_iter().map(|(tag, _, m)| (tag, m)).collect())
            .expect("tags of one index are distinct");
        StoreSection { salt: SALT.into(), chunk_size: ChunkSize::DEFAULT.bytes(), uploads: lines, dedup }
    }

    /// uploads.csv (one row per upload, in order) and dedup-images.csv (`report::dedup`).
    pub fn write_files(&self, put: &mut Files<'_>) -> Result<(), DemoError> {
        let mut csv = String::from("position,tag,image_bytes,chunks,zero,present,new,bytes_written\n");
        for (i, u) in self.uploads.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{}",
                i + 1,
                u.tag,
                u.image_bytes,
                u.chunks,
                u.zero,
                u.present,
                u.new,
                u.bytes_written
            );
        }
        put.put("uploads.csv", csv.as_bytes())?;
        let mut dedup = Vec::new();
        self.dedup.write_images_csv(&mut dedup).expect("writing to memory");
        put.put("dedup-images.csv", &dedup)
    }

    /// The bars of uploads.svg: per upload, the chunks already stored and the new ones.
    pub fn upload_bars(&self) -> Vec<BarGroup> {
        self.uploads
            .iter()
            .map(|u| BarGroup { label: u.tag.clone(), values: vec![u.present as f64, u.new as f64] })
            .collect()
    }

    /// uploads.svg: what each upload added to the store.
    pub fn figure(&self) -> Result<String, DemoError> {
        Ok(plot::bar_chart(
            &["already stored".into(), "new".into()],
            &self.upload_bars(),
            &ChartOptions::new("Chunks per upload, in upload order", "image", "chunks").stacked(),
        )?)
    }
}

impl fmt::Display for StoreSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "2. Flatten, cut into {} chunks, encrypt convergently (salt {:?}), upload what is missing",
            ByteSize(self.chunk_size),
            self.salt
        )?;
        let mut t =
            Table::new(["upload", "block image", "chunks", "zero", "already stored", "new", "written"]);
        for u in &self.uploads {
            t.row([
                u.tag.clone(),
                ByteSize(u.image_bytes).to_string(),
                u.chunks.to_string(),
                u.zero.to_string(),
                u.present.to_string(),
                u.new.to_string(),
                ByteSize(u.bytes_written).to_string(),
            ]);
        }
        indent(f, &t.to_string())?;
        let tot = &self.dedup.totals;
        writeln!(
            f,
            "   The store holds {} distinct chunks ({}) for {} chunk references ({}): {}.",
            tot.distinct_chunks,
            ByteSize(tot.physical_bytes),
            tot.logical_chunks,
            ByteSize(tot.logical_bytes),
            match tot.savings_factor {
                Some(x) => format!("dedup saves {x:.2}x"),
                None => "nothing stored".into(),
            }
        )?;
        writeln!(
            f,
            "   {} upload(s) identical to an earlier image (a re-upload adds no chunk); the paper reports up to\n   \
             23x from dedup plus 5x from such trivial re-uploads, and that ~80% of new uploads add no unique chunk.",
            self.dedup.upload.identical_reuploads
        )?;
        writeln!(
            f,
            "   Files are placed in layer order and never moved, so files the images share keep their blocks and\n   \
             their chunks; only chunks holding changed files or the metadata (inodes, directories) are new."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Manifest, ManifestHeader, Salt, encrypt_chunk};

    /// A manifest of 4 KiB chunks, chunk `i` filled with the byte `fills[i]`.
    fn manifest(fills: &[u8]) -> ManifestPublic {
        let salt = Salt::new(SALT).unwrap();
        let header = ManifestHeader {
            chunk_size: 4096,
            image_size: 4096 * fills.len() as u64,
            salt,
            source: String::new(),
        };
        let mut b = Manifest::builder(header.clone());
        for (i, &fill) in fills.iter().enumerate() {
            b.push(i as u32, encrypt_chunk(&header.salt, &mut vec![fill; 4096]));
        }
        b.finish().unwrap().public()
    }

    fn stats(total: u64, zero: u64, present: u64) -> ConvertStats {
        ConvertStats {
            image_bytes: total * 4096,
            chunk_size: 4096,
            chunks_total: total,
            chunks_new: total - zero - present,
            chunks_present: present,
            chunks_zero: zero,
            bytes_written: (total - zero - present) * 4096,
            seconds: 0.0,
        }
    }

    #[test]
    fn each_upload_is_a_line_and_a_bar_of_stored_and_new_chunks() {
        let (a, b) = (stats(10, 2, 0), stats(12, 2, 7));
        let s = StoreSection::build(vec![
            ("first".into(), &a, manifest(&[1, 2])),
            ("second".into(), &b, manifest(&[1, 3])),
        ]);
        assert_eq!(s.uploads.len(), 2);
        assert_eq!((s.uploads[1].present, s.uploads[1].new, s.uploads[1].zero), (7, 3, 2));
        assert_eq!(s.upload_bars()[0].values, vec![0.0, 8.0]);
        assert_eq!(s.upload_bars()[1].values, vec![7.0, 3.0]);
        assert_eq!(s.salt, SALT);
        // The dedup report sees the same uploads: the second brings one new chunk of two.
        let d = &s.dedup;
        assert_eq!((d.totals.logical_chunks, d.totals.distinct_chunks), (4, 3));
        assert_eq!(d.upload.order[1].new_chunks, 1);
    }
}
