//! Real converted images mixed into the fleet population (`[[population.real]]`).
//!
//! An image's chunk list comes from its sealed manifest read keyless ([`ManifestPublic`]): chunk
//! names are convergent content ids, so two images that share a chunk name share the chunk in the
//! fleet too, and a real chunk never takes a synthetic chunk's id. The start's working set is a
//! real trace mapped onto the image (`trace::mapping`: that needs the block metadata, so the key),
//! or, without a trace, drawn by the population from `read_fraction`. Loading is the only I/O of
//! the fleet and happens once, before [`super::run_with`].

use std::path::Path;

use crate::chunk::ChunkedImage;
use crate::crypto::{ChunkName, CustomerKey, Manifest, ManifestPublic};
use crate::store::{ChunkStore, DirStore, ManifestName};
use crate::trace::mapping::map_trace;
use crate::trace::{MmapRule, Reader};

use super::scenario::{FleetScenario, RealImageConfig};

/// Why a real image of the scenario could not be loaded. Every message names the scenario entry.
#[derive(Debug, thiserror::Error)]
#[error("population.real[{index}] ({key} = {value:?}): {reason}")]
pub struct RealImageError {
    pub index: usize,
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

/// One loaded real image: what the population needs, ids and positions only.
#[derive(Debug, Clone)]
pub struct RealImage {
    /// The manifest as the scenario names it.
    pub name: String,
    /// Stored chunks' names, in index order (holes have none).
    pub chunks: Vec<ChunkName>,
    /// The start's reads as positions into `chunks`, first touch order; `None` without a trace.
    pub working_set: Option<Vec<u32>>,
    /// Records of the trace whose path the image does not have.
    pub trace_missing_paths: u64,
}

/// Loads every `[[population.real]]` entry of `sc`, in order.
pub fn load(sc: &FleetScenario) -> Result<Vec<RealImage>, RealImageError> {
    sc.population.real.iter().enumerate().map(|(i, c)| load_one(sc, i, c)).collect()
}

fn load_one(sc: &FleetScenario, index: usize, c: &RealImageConfig) -> Result<RealImage, RealImageError> {
    let fail = |key: &'static str, value: &dyn AsRef<str>, reason: String| RealImageError {
        index,
        key,
        value: value.as_ref().to_string(),
        reason,
    };
    let store_s = c.store.display().to_string();
    if !c.store.join("manifests").is_dir() {
        return Err(fail("store", &store_s, "not a chunk store (it has no manifests/ directory)".into()));
    }
    let store = DirStore::open(&c.store).map_err(|e| fail("store", &store_s, e.to_string()))?;
    let bytes = if Path::new(&c.manifest).is_file() {
        std::fs::read(&c.manifest).map_err(|e| fail("manifest", &c.manifest, format!("cannot read: {e}")))?
    } else {
        let name: ManifestName = c.manifest.parse().map_err(|e| {
            fail("manifest", &c.manifest, format!("neither a file nor a manifest name in the store: {e}"))
        })?;
        store.get_manifest(&name).map_err(|e| fail("manifest", &c.manifest, e.to_string()))?
    };
    let public = ManifestPublic::parse(&bytes).map_err(|e| fail("manifest", &c.manifest, e.to_string()))?;
    let chunk_size = u64::from(public.header.chunk_size);
    if chunk_size != sc.chunk_size.bytes() {
        return Err(fail(
            "manifest",
            &c.manifest,
            format!(
                "the image is cut into {chunk_size}-byte chunks but the scenario's chunk_size is {} \
                 (a fleet has one chunk size; convert the image with --chunk-size to match)",
                sc.chunk_size.bytes()
            ),
        ));
    }
    let chunks: Vec<ChunkName> = public.chunks.iter().map(|e| e.name).collect();
    let mut trace_missing_paths = 0;
    let working_set = match &c.trace {
        None => None,
        Some(trace) => {
            let trace_s = trace.display().to_string();
            let key_path = c.key.as_ref().ok_or_else(|| {
                fail("trace", &trace_s, "mapping a trace onto the image needs its key: set `key`".into())
            })?;
            let key_s = key_path.display().to_string();
            let key = CustomerKey::load(key_path).map_err(|e| fail("key", &key_s, e.to_string()))?;
            let manifest = Manifest::open(&bytes, &key).map_err(|e| fail("key", &key_s, e.to_string()))?;
            let image = ChunkedImage { manifest, store: &store as &dyn ChunkStore };
            let (meta, _) = image.tree().map_err(|e| fail("manifest", &c.manifest, e.to_string()))?;
            let records = Reader::open(trace)
                .and_then(|r| r.collect::<crate::trace::Result<Vec<_>>>())
                .map_err(|e| fail("trace", &trace_s, e.to_string()))?;
            let map = map_trace(&meta, records, MmapRule::Whole);
            trace_missing_paths = map.missing;
            let mut seen = vec![false; public.chunks.len()];
            let mut ws = Vec::new();
            for a in &map.accesses {
                for idx in a.chunks(chunk_size) {
                    if let Ok(pos) = public.chunks.binary_search_by_key(&idx, |e| e.index)
                        && !std::mem::replace(&mut seen[pos], true)
                    {
                        ws.push(pos as u32);
                    }
                }
            }
            if ws.is_empty() {
                return Err(fail("trace", &trace_s, "the trace reads no stored chunk of this image".into()));
            }
            Some(ws)
        }
    };
    Ok(RealImage { name: c.manifest.clone(), chunks, working_set, trace_missing_paths })
}
