//! The two packagings a lazy load is compared with: a full image pull (download every layer,
//! unpack it, then start) and a zip package (download and unzip the function's own layers; the
//! runtime below them is already on the worker). Both then run the same trace from local disk.

use serde::Serialize;

use super::engine::{Source, replay};
use super::result::ReplayResult;
use super::scenario::Scenario;
use crate::sim::{ChunkTable, SimDuration};
use crate::trace::MappedAccess;
use crate::units::ByteSize;

/// A layer as the baselines see it: what a pull downloads (compressed) and unpacks
/// (uncompressed). The ingest step implements it for `flatten::LayerStats`.
pub trait LayerSize {
    fn compressed_bytes(&self) -> u64;
    fn uncompressed_bytes(&self) -> u64;
}

/// One baseline's cost: the download and unpack before the start, then the start itself.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub name: &'static str,
    /// Setup + the run (in JSON, like every duration: integer nanoseconds).
    pub total: SimDuration,
    /// Download + unpack, before the first access.
    pub setup: SimDuration,
    /// Compressed bytes downloaded and uncompressed bytes written.
    pub download_bytes: u64,
    pub unpack_bytes: u64,
    /// The trace from local disk.
    pub run: ReplayResult,
}

/// Full pull and zip for an image whose layers are `layers`.
#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    pub full_pull: Baseline,
    pub zip: Baseline,
    /// The zip's unzipped size exceeds Lambda's zip limit: such a function could not ship as a zip.
    pub zip_over_limit: bool,
}

impl Baselines {
    pub fn iter(&self) -> impl Iterator<Item = &Baseline> {
        [&self.full_pull, &self.zip].into_iter()
    }
}

/// Prices both baselines; `None` when the image has no layers.
pub fn baselines(
    layers: &[impl LayerSize],
    accesses: &[MappedAccess],
    table: &ChunkTable,
    sc: &Scenario,
) -> Option<Baselines> {
    if layers.is_empty() {
        return None;
    }
    let b = &sc.baseline;
    let cost = |compressed: u64, uncompressed: u64| {
        SimDuration::from_secs_f64(
            compressed as f64 / b.download_bandwidth.bytes() as f64
                + uncompressed as f64 / b.unpack_speed.bytes() as f64,
        )
    };
    let local = replay(accesses, table, sc, Source::LocalDisk);
    let sum = |from: usize| {
        layers
            .iter()
            .skip(from)
            .fold((0, 0), |(c, u), l| (c + l.compressed_bytes(), u + l.uncompressed_bytes()))
    };
    let make = |name, (c, u): (u64, u64), run: ReplayResult| {
        let setup = cost(c, u);
        Baseline { name, total: setup + run.start_time, setup, download_bytes: c, unpack_bytes: u, run }
    };
    let zip = sum(b.zip_from_layer);
    Some(Baselines {
        full_pull: make("full pull", sum(0), local.clone()),
        zip_over_limit: zip.1 > b.zip_limit.bytes(),
        zip: make("zip", zip, local),
    })
}

impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} = {} download ({}) + unpack ({}) + {} running the trace",
            self.total,
            self.setup,
            ByteSize(self.download_bytes),
            ByteSize(self.unpack_bytes),
            self.run.start_time
        )
    }
}
