//! Real converted images mixed into the fleet population (`[[population.real]]`), as the fleet
//! sees them: content keys and read positions, no bytes. Reading their manifests, keys, stores and
//! traces is the ingest step's (`crate::ingest::real::load`), done once before
//! [`super::run_with`]: two images that share a chunk name share the chunk in the fleet too, and
//! a real chunk never takes a synthetic chunk's id.

use crate::sim::chunks::ContentKey;

/// One loaded real image: what the population needs, ids and positions only.
#[derive(Debug, Clone)]
pub struct RealImage {
    /// The manifest as the scenario names it.
    pub name: String,
    /// Stored chunks' content keys (their names' bytes), in index order (holes have none).
    pub chunks: Vec<ContentKey>,
    /// The start's reads as positions into `chunks`, first touch order; `None` without a trace.
    pub working_set: Option<Vec<u32>>,
    /// Records of the trace whose path the image does not have.
    pub trace_missing_paths: u64,
}
