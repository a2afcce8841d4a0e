//! Printing a dedup report: the text tables (`Display`) and the per-image and eCDF CSV files.
//! The numbers come from `analysis.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};

use super::{DedupReport, Distribution, UploadStep};
use crate::report::Table;
use crate::units::ByteSize;

impl DedupReport {
    /// Per-image CSV: the set view and the upload view side by side, one row per image by name.
    pub fn write_images_csv<W: Write>(&self, mut w: W) -> io::Result<()> {
        writeln!(
            w,
            "name,source,salt,chunk_size,image_bytes,chunks,bytes,distinct_chunks,unique_chunks,\
             unique_bytes,shared_chunks,shared_bytes,pct_unique,zero_chunks,zero_bytes,\
             upload_position,new_chunks,new_bytes,pct_new,uploaded_chunks,uploaded_bytes,identical_to"
        )?;
        let steps: BTreeMap<&str, &UploadStep> =
            self.upload.order.iter().map(|s| (s.name.as_str(), s)).collect();
        for i in &self.images {
            let s = steps[i.name.as_str()];
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&i.name),
                csv_field(&i.source),
                csv_field(&i.salt),
                i.chunk_size,
                i.image_bytes,
                i.chunks,
                i.bytes,
                i.distinct_chunks,
                i.unique_chunks,
                i.unique_bytes,
                i.shared_chunks,
                i.shared_bytes,
                csv_num(i.pct_unique),
                i.zero_chunks,
                i.zero_bytes,
                s.position,
                s.new_chunks,
                s.new_bytes,
                csv_num(s.pct_new),
                s.uploaded_chunks,
                s.uploaded_bytes,
                csv_field(s.identical_to.as_deref().unwrap_or("")),
            )?;
        }
        w.flush()
    }

    /// eCDF CSV: `view` is `unique` (set view, figure 5) or `new-at-upload`.
    pub fn write_ecdf_csv<W: Write>(&self, mut w: W) -> io::Result<()> {
        writeln!(w, "view,pct,fraction_at_or_below")?;
        for (view, d) in [("unique", &self.unique), ("new-at-upload", &self.upload.new)] {
            for p in &d.ecdf {
                writeln!(w, "{view},{:.6},{:.6}", p.pct, p.fraction)?;
            }
        }
        w.flush()
    }
}

/// Quotes a CSV field when it holds a separator, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn csv_num(x: Option<f64>) -> String {
    x.map(|x| format!("{x:.6}")).unwrap_or_default()
}

fn size(b: u64) -> String {
    ByteSize(b).to_string()
}

fn pct_cell(x: Option<f64>) -> String {
    x.map(|x| format!("{x:.2}%")).unwrap_or_else(|| "-".into())
}

fn share_cell(x: Option<f64>) -> String {
    pct_cell(x.map(|x| x * 100.0))
}

impl fmt::Display for DedupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        writeln!(
            f,
            "dedup over {} images ({} salts; chunks deduplicate only within a salt)",
            t.images, t.salts
        )?;
        writeln!(f)?;
        writeln!(f, "per image (unique = referenced by no OTHER image of this set, earlier or later)")?;
        let mut table = Table::new([
            "image",
            "chunks",
            "bytes",
            "unique",
            "unique bytes",
            "% unique",
            "shared",
            "shared bytes",
            "holes",
        ]);
        for i in &self.images {
            table.row([
                i.name.clone(),
                i.chunks.to_string(),
                size(i.bytes),
                i.unique_chunks.to_string(),
                size(i.unique_bytes),
                pct_cell(i.pct_unique),
                i.shared_chunks.to_string(),
                size(i.shared_bytes),
                i.zero_chunks.to_string(),
            ]);
        }
        write!(f, "{table}")?;
        writeln!(f)?;
        writeln!(f, "store")?;
        writeln!(
            f,
            "  logical   {} chunks, {} (sum over images, holes excluded)",
            t.logical_chunks,
            size(t.logical_bytes)
        )?;
        writeln!(f, "  physical  {} distinct chunks, {}", t.distinct_chunks, size(t.physical_bytes))?;
        match t.savings_factor {
            Some(s) => writeln!(f, "  savings   {s:.2}x (logical / physical; paper: up to 23x)")?,
            None => writeln!(f, "  savings   - (nothing stored)")?,
        }
        writeln!(f, "  holes     {} all-zero chunks, not stored", t.zero_chunks)?;
        if t.empty_images > 0 {
            writeln!(f, "  {} images store no chunk and are left out of the distributions", t.empty_images)?;
        }
        writeln!(f)?;
        writeln!(f, "% unique chunks per image (set view), eCDF at the paper's figure 5 thresholds")?;
        write_distribution(f, &self.unique, "unique")?;
        writeln!(f)?;
        writeln!(
            f,
            "upload order (new = in no EARLIER image; the paper's \"new uploads\" numbers are this view)"
        )?;
        let mut table = Table::new([
            "#",
            "image",
            "chunks",
            "new",
            "% new",
            "uploaded",
            "uploaded bytes",
            "identical to",
        ]);
        for s in &self.upload.order {
            table.row([
                s.position.to_string(),
                s.name.clone(),
                s.chunks.to_string(),
                s.new_chunks.to_string(),
                pct_cell(s.pct_new),
                s.uploaded_chunks.to_string(),
                size(s.uploaded_bytes),
                s.identical_to.clone().unwrap_or_default(),
            ]);
        }
        write!(f, "{table}")?;
        let d = &self.upload.new;
        let p = &self.paper;
        writeln!(
            f,
            "  uploads with zero new chunks         {}   paper: ~{:.0}%",
            share_cell(d.zero_share),
            p.zero_new_share * 100.0
        )?;
        writeln!(
            f,
            "  mean / median % new among the rest   {} / {}   paper: {}% / {}%",
            pct_cell(d.mean_pct_nonzero),
            pct_cell(d.median_pct_nonzero),
            p.mean_pct_nonzero,
            p.median_pct_nonzero
        )?;
        writeln!(f, "  identical re-uploads                 {}", self.upload.identical_reuploads)?;
        if let Some(r) = &self.rotation {
            writeln!(f)?;
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

fn write_distribution(f: &mut fmt::Formatter<'_>, d: &Distribution, what: &str) -> fmt::Result {
    let mut table =
        Table::new(["below", "this set", "paper: lower 3 size quartiles", "paper: largest quartile"]);
    for t in &d.thresholds {
        let paper = |x: Option<f64>| x.map(|x| format!("{:.0}%", x * 100.0)).unwrap_or_else(|| "-".into());
        table.row([
            format!("{}%", t.below_pct),
            share_cell(t.share),
            paper(t.paper_lower_quartiles),
            paper(t.paper_largest_quartile),
        ]);
    }
    write!(f, "{table}")?;
    writeln!(f, "  (paper values read off figure 5 by eye)")?;
    writeln!(f, "  images with zero {what} chunks       {}", share_cell(d.zero_share))?;
    writeln!(
        f,
        "  mean / median % {what}               {} / {}",
        pct_cell(d.mean_pct),
        pct_cell(d.median_pct)
    )?;
    writeln!(
        f,
        "  mean / median among images above 0%  {} / {}",
        pct_cell(d.mean_pct_nonzero),
        pct_cell(d.median_pct_nonzero)
    )
}
