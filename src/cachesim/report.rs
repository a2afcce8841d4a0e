//! What a cachesim run found: per (algorithm, size) point the requests, misses and bytes, as a
//! text table, JSON, CSV with named columns and a miss-ratio-curve chart.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

use super::TraceFormat;
use crate::report::Table;
use crate::report::plot::{self, AxisFormat, ChartOptions, PlotError, Series};
use crate::units::ByteSize;

/// The distinct objects of the (sampled) trace, measured by a first pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkingSet {
    pub objects: u64,
    /// Sum of each object's size at its first request (objects with `ignore_obj_size`).
    pub bytes: u64,
    /// Requests after sampling.
    pub requests: u64,
}

/// One (algorithm, size) point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointResult {
    pub algorithm: String,
    /// The size as given (`1073741824` or `10%`).
    pub size: String,
    /// The cache size it stands for, in the report's `size_unit`.
    pub cache_size: u64,
    /// The size simulated: `cache_size` times the sampling rate.
    pub simulated_size: u64,
    /// Requests counted (warm-up excluded).
    pub requests: u64,
    pub misses: u64,
    pub miss_ratio: f64,
    pub request_bytes: u64,
    pub miss_bytes: u64,
    pub byte_miss_ratio: f64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct CachesimReport {
    pub trace: PathBuf,
    pub format: TraceFormat,
    /// Requests in the file.
    pub requests_read: u64,
    /// Requests kept by sampling (all of them without it).
    pub requests_sampled: u64,
    /// Leading requests that only warmed the caches.
    pub warmup_requests: u64,
    pub sample_rate: Option<f64>,
    /// `bytes`, or `objects` when object sizes are ignored.
    pub size_unit: &'static str,
    pub working_set: Option<WorkingSet>,
    pub points: Vec<PointResult>,
}

/// Column names of [`CachesimReport::write_csv`].
pub const CSV_HEADER: &str = "algorithm,size,cache_size,simulated_size,requests,misses,miss_ratio,request_bytes,miss_bytes,byte_miss_ratio";

impl CachesimReport {
    /// One line per point under [`CSV_HEADER`].
    pub fn write_csv(&self, mut w: impl Write) -> io::Result<()> {
        writeln!(w, "{CSV_HEADER}")?;
        for p in &self.points {
            writeln!(
                w,
                "{},{},{},{},{},{},{:.6},{},{},{:.6}",
                p.algorithm,
                p.size,
                p.cache_size,
                p.simulated_size,
                p.requests,
                p.misses,
                p.miss_ratio,
                p.request_bytes,
                p.miss_bytes,
                p.byte_miss_ratio
            )?;
        }
        w.flush()
    }

    /// The miss-ratio curve: miss ratio against cache size, one line per algorithm (Belady dashed).
    pub fn mrc_svg(&self) -> Result<String, PlotError> {
        let mut names: Vec<&str> = Vec::new();
        for p in &self.points {
            if !names.contains(&p.algorithm.as_str()) {
                names.push(&p.algorithm);
            }
        }
        let series: Vec<Series> = names
            .iter()
            .map(|name| {
                let mut pts: Vec<(f64, f64)> = self
                    .points
                    .iter()
                    .filter(|p| p.algorithm == *name)
                    .map(|p| (p.cache_size as f64, p.miss_ratio))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series::new(*name, pts).with_dashed(*name == "belady")
            })
            .collect();
        let sizes: Vec<u64> = self.points.iter().map(|p| p.cache_size).filter(|&s| s > 0).collect();
        let (lo, hi) = (sizes.iter().min().copied().unwrap_or(1), sizes.iter().max().copied().unwrap_or(1));
        let mut opt = ChartOptions::new(
            format!(
                "Miss ratio curve: {}",
                self.trace.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            ),
            format!("cache size ({})", self.size_unit),
            "miss ratio",
        );
        opt.log_x = hi >= 20 * lo;
        // Ticks at the sizes simulated (automatic byte ticks crowd on a log axis).
        let mut ticks: Vec<u64> = sizes.clone();
        ticks.sort_unstable();
        ticks.dedup();
        opt.x_ticks = Some(ticks.into_iter().map(|t| t as f64).collect());
        opt.x_format = if self.size_unit == "bytes" { AxisFormat::Bytes } else { AxisFormat::Number };
        opt.y_format = AxisFormat::Percent;
        opt.y_range = Some((0.0, 1.0));
        plot::line_chart(&series, &opt)
    }
}

impl fmt::Display for CachesimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}): {} requests{}, {} warm-up",
            self.trace.display(),
            self.format,
            self.requests_read,
            match self.sample_rate {
                Some(r) => format!(", {} sampled at {r}", self.requests_sampled),
                None => String::new(),
            },
            self.warmup_requests
        )?;
        if let Some(ws) = &self.working_set {
            let bytes = if self.size_unit == "bytes" {
                ByteSize(ws.bytes).to_string()
            } else {
                format!("{} objects", ws.bytes)
            };
            writeln!(f, "working set {} objects, {bytes}", ws.objects)?;
        }
        let mut t =
            Table::new(["algorithm", "size", "cache size", "requests", "miss ratio", "byte miss ratio"]);
        for p in &self.points {
            let size = if self.size_unit == "bytes" {
                ByteSize(p.cache_size).to_string()
            } else {
                p.cache_size.to_string()
            };
            t.row([
                p.algorithm.clone(),
                p.size.clone(),
                size,
                p.requests.to_string(),
                format!("{:.4}", p.miss_ratio),
                format!("{:.4}", p.byte_miss_ratio),
            ]);
        }
        write!(f, "{t}")
    }
}
