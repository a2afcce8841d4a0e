//! What several command files share, so that no command file imports another. This is the
//! presentation side's part (store opening, the replay scenario for `demo`); shared flags stay in
//! cli/mod.rs for now.

use std::path::Path;

use anyhow::{Context, Result, bail};

use chunkload::sim::Scenario;
use chunkload::store::DirStore;

// ---- stores ---------------------------------------------------------------------------------

/// Opens a store directory for reading. `DirStore::open` creates missing directories, which would
/// turn a mistyped path into a new empty store and an empty report; read commands refuse that.
pub fn open_existing_store(dir: &Path) -> Result<DirStore> {
    if !dir.join("manifests").is_dir() {
        bail!("{} is not a chunk store (it has no manifests/ directory)", dir.display());
    }
    Ok(DirStore::open(dir)?.with_sync(false))
}

// ---- scenarios ------------------------------------------------------------------------------

/// The one-start scenario: `path`'s TOML (default: the built-in scenario), then `--seed` and
/// `--cpu-scale` over it.
pub fn load_scenario(path: Option<&Path>, seed: Option<u64>, cpu_scale: Option<f64>) -> Result<Scenario> {
    let mut sc = match path {
        Some(p) => Scenario::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )?,
        None => Scenario::default(),
    };
    if let Some(seed) = seed {
        sc.seed = seed;
    }
    if let Some(scale) = cpu_scale {
        if !(scale >= 0.0 && scale.is_finite()) {
            bail!("--cpu-scale must be a non-negative number, got {scale}");
        }
        sc.cpu_scale = scale;
    }
    Ok(sc)
}
