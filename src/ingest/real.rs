//! Opens the real images a fleet scenario mixes in (`[[population.real]]`): each entry's store,
//! manifest (read keyless: chunk names are convergent content ids), and, with a trace, its key, to
//! map the trace onto the image (that needs the block metadata). The fleet gets
//! [`RealImage`]s: content keys and read positions only.

use std::path::Path;

use crate::chunk::ChunkedImage;
use crate::crypto::{CustomerKey, Manifest, ManifestPublic};
use crate::fleet::real::RealImage;
use crate::fleet::scenario::{FleetScenario, RealImageConfig};
use crate::sim::chunks::ContentKey;
use crate::store::{ChunkStore, DirStore, ManifestName};
use crate::trace::{MmapRule, Reader};

use super::mapping::map_trace;

/// Why a real image of the scenario could not be loaded. Every message names the scenario entry.
#[derive(Debug, thiserror::Error)]
#[error("population.real[{index}] ({key} = {value:?}): {reason}")]
pub struct RealImageError {
    pub index: usize,
    pub key: &'static str,
    pub value: String,
    pub reason: String,
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
    let chunks: Vec<ContentKey> = public.chunks.iter().map(|e| ContentKey(*e.name.as_bytes())).collect();
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
