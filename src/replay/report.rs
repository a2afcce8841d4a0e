//! One `chunkload replay` run as a report: what was replayed, under which scenario and cache
//! states, the lazy start and the baselines. `Display` is the text report, [`ReplayReport::to_json`]
//! the JSON one.

use std::fmt;
use std::path::PathBuf;

use serde_json::json;

use super::baseline::Baselines;
use super::result::ReplayResult;
use super::scenario::Scenario;
use super::start::CacheState;
use crate::trace::MmapRule;

/// How the trace met the image (`ingest::mapping`'s counters).
#[derive(Debug, Clone, Copy, Default)]
pub struct MappingCounts {
    pub missing_paths: u64,
    pub not_files: u64,
    pub clipped_bytes: u64,
}

/// A replayed start with its inputs and baselines.
pub struct ReplayReport {
    pub scenario: Scenario,
    pub manifest: String,
    pub trace: PathBuf,
    pub l1: CacheState,
    pub l2: CacheState,
    pub mmap: MmapRule,
    pub mapping: MappingCounts,
    pub lazy: ReplayResult,
    pub baselines: Option<Baselines>,
}

impl ReplayReport {
    /// The JSON report (keys in sorted order).
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.mapping;
        json!({
            "chunkload_version": env!("CARGO_PKG_VERSION"), "seed": self.scenario.seed, "scenario": self.scenario,
            "manifest": self.manifest, "trace": self.trace, "l1": self.l1.name(), "l2": self.l2.name(),
            "mmap_rule": self.mmap.to_string(),
            "mapping": { "missing_paths": m.missing_paths, "not_files": m.not_files, "clipped_bytes": m.clipped_bytes },
            "lazy": self.lazy, "baselines": self.baselines,
        })
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "replay of {} on {} (chunkload {}, seed {}, L1 {:?}, L2 {:?}, mmap {})",
            self.trace.display(),
            self.manifest,
            env!("CARGO_PKG_VERSION"),
            self.scenario.seed,
            self.l1,
            self.l2,
            self.mmap
        )?;
        write!(f, "lazy loading: {}", self.lazy)?;
        if let Some(b) = &self.baselines {
            writeln!(f)?;
            writeln!(f, "baselines (same trace, local disk after the download):")?;
            for x in b.iter() {
                writeln!(
                    f,
                    "  {:<10} {} = {} download+unpack + {} running the trace",
                    x.name, x.total, x.setup, x.run.start_time
                )?;
            }
            writeln!(f, "  lazy       {}", self.lazy.start_time)?;
        }
        writeln!(f)?;
        writeln!(f, "effective scenario (pass it back with --scenario):")?;
        for line in self.scenario.to_toml().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}
