//! `explain`: one cold start told step by step for someone who has never met any of this. Every
//! number comes from the real pipeline: the flattened layers, the block image and its chunks
//! against what a store already holds, and the replay engine's per-read events (`replay`),
//! each read followed from file to block-image bytes to chunks to the tier that served them, with
//! the reason each cache missed.
//!
//! One file per story, each with its struct, its computation and its Display: `layers.rs` (1),
//! `block.rs` (2), `reads.rs` (3), `total.rs` (4). This file runs the start and puts them in order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::cache::ChunkId;
use crate::crypto::{ChunkName, ManifestPublic, PlainDigest};
use crate::flatten::Flattened;
use crate::ingest::map_trace;
use crate::layout::BlockMeta;
use crate::replay::baseline;
use crate::replay::{self, CacheState, Scenario, Source};
use crate::trace::MappedAccess;
use crate::trace::{MmapRule, Record};

mod block;
mod layers;
mod reads;
pub mod timeline;
mod total;

pub use block::BlockStory;
pub use layers::{LayerLine, LayerStory};
pub use reads::{AzMiss, ChunkStory, ReadStory, TraceStory, WorkerMiss};
pub use total::TotalStory;

/// One other image in the store, by its keyless manifest.
pub struct StoredImage {
    pub name: String,
    pub manifest: ManifestPublic,
}

/// Everything `explain` needs, already opened.
pub struct Subject<'a> {
    /// The image's name for the reader (reference or manifest path).
    pub name: String,
    /// The flattened layers, when the OCI image is at hand (layers story and baselines).
    pub flat: Option<&'a Flattened>,
    /// `created_by` of each layer, from the image config's history, when known.
    pub layer_history: Vec<Option<String>>,
    pub manifest: &'a ManifestPublic,
    pub meta: &'a BlockMeta,
    /// The other images of the store this start is compared with.
    pub store: &'a [StoredImage],
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    pub scenario: Scenario,
    pub l1: CacheState,
    pub l2: CacheState,
    pub mmap: MmapRule,
    /// Reads narrated one by one.
    pub reads: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub image: String,
    pub seed: u64,
    pub l1: CacheState,
    pub l2: CacheState,
    pub layers: Option<LayerStory>,
    pub block: BlockStory,
    pub trace: TraceStory,
    pub total: TotalStory,
    pub scenario: Scenario,
}

/// `created_by` of each layer, from the config's history (entries that made no layer skipped).
pub fn layer_history(image: &crate::image::Image) -> Vec<Option<String>> {
    let made: Vec<_> = image.config.history.iter().filter(|h| !h.empty_layer).collect();
    if made.len() != image.layers.len() {
        return vec![None; image.layers.len()];
    }
    made.into_iter().map(|h| h.created_by.clone()).collect()
}

/// Runs the start and builds the story.
pub fn explain(subject: &Subject<'_>, records: Vec<Record>, opts: &ExplainOptions) -> Explanation {
    let sc = &opts.scenario;
    let m = subject.manifest;
    let table = crate::ingest::chunk_table(m);
    let block = BlockStory::build(m, subject.meta.superblock.meta_offset, subject.store);

    // Which chunk ids each cache holds before the start.
    let salt = m.header.salt.label();
    let in_other: BTreeSet<ChunkName> = subject
        .store
        .iter()
        .filter(|s| s.manifest.header.salt.label() == salt)
        .flat_map(|s| s.manifest.chunks.iter().map(|c| c.name))
        .collect();
    let other_salt_plain: BTreeSet<PlainDigest> = subject
        .store
        .iter()
        .filter(|s| s.manifest.header.salt.label() != salt)
        .flat_map(|s| s.manifest.chunks.iter().map(|c| c.plain))
        .collect();
    let warm = |fill: CacheState| -> BTreeSet<ChunkId> {
        m.chunks
            .iter()
            .filter(|c| match fill {
                CacheState::Cold => false,
                CacheState::Warm => true,
                CacheState::Store => in_other.contains(&c.name),
            })
            .filter_map(|c| table.id(c.index))
            .collect()
    };
    let (l1_set, l2_set) = (warm(opts.l1), warm(opts.l2));
    let map = map_trace(subject.meta, records.iter().cloned(), opts.mmap);
    let source = Source::lazy_prefilled(sc, &table, |id| l1_set.contains(&id), |id| l2_set.contains(&id));
    let lazy = replay::replay(&map.accesses, &table, sc, source);
    let baselines = subject.flat.and_then(|f| baseline::baselines(&f.layers, &map.accesses, &table, sc));

    let plain_of: BTreeMap<u32, PlainDigest> = m.chunks.iter().map(|c| (c.index, c.plain)).collect();
    let mut by_record: BTreeMap<usize, Vec<&MappedAccess>> = BTreeMap::new();
    for a in &map.accesses {
        by_record.entry(a.record).or_default().push(a);
    }
    // The first reads that reach the device; page-cache hits between them are counted.
    let mut hits_before = 0;
    let mut reads = Vec::new();
    for e in &lazy.reads {
        if reads.len() == opts.reads {
            break;
        }
        if e.page_cache_hit {
            hits_before += 1;
            continue;
        }
        reads.push(reads::read_story(
            e,
            &records[e.record],
            by_record.get(&e.record),
            std::mem::take(&mut hits_before),
            |c| {
                let id = table.id(c)?;
                let worker = if l1_set.contains(&id) { WorkerMiss::Evicted } else { WorkerMiss::Cold };
                let az = if l2_set.contains(&id) {
                    AzMiss::Evicted
                } else if plain_of.get(&c).is_some_and(|p| other_salt_plain.contains(p)) {
                    AzMiss::DifferentSalt
                } else {
                    AzMiss::NeverSeen
                };
                Some((worker, az))
            },
        ));
    }
    Explanation {
        image: subject.name.clone(),
        seed: sc.seed,
        l1: opts.l1,
        l2: opts.l2,
        layers: subject.flat.map(|f| LayerStory::build(&f.layers, &f.summary, &subject.layer_history)),
        block,
        trace: TraceStory {
            records: records.len() as u64,
            operations: lazy.operations,
            page_cache_hits: lazy.page_cache_hits,
            device_reads: lazy.device_reads,
            missing_paths: map.missing,
            reads,
            chunk_size: u64::from(m.header.chunk_size),
        },
        total: TotalStory { lazy, baselines },
        scenario: sc.clone(),
    }
}

impl Explanation {
    /// Why this start's salt and zip baseline can differ from the demo's for the same start.
    pub fn note(&self) -> String {
        let zip = if self.total.baselines.is_some() {
            format!(
                "   The zip baseline packs layers {}.. of the image (the scenario's baseline.zip_from_layer);\n   \
                 chunkload demo packs only the top layer (the runtime below it is Lambda's managed runtime,\n   \
                 already on the worker), so its zip baseline is smaller.\n",
                self.scenario.baseline.zip_from_layer
            )
        } else {
            String::new()
        };
        format!(
            "{zip}   Chunks are named under salt {:?} here and \"demo\" in chunkload demo (--salt demo gives its\n   \
             names); the lazy start's timings do not depend on the salt.\n",
            self.block.salt
        )
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "How one cold start of {} works (seed {}).", self.image, self.seed)?;
        writeln!(
            f,
            "Before the start the worker cache is {} and the AZ cache is {} (cold: empty; warm: holds this image; \
             store: holds what the other images in the store brought).",
            self.l1.name(),
            self.l2.name()
        )?;
        if let Some(l) = &self.layers {
            writeln!(f)?;
            write!(f, "{l}")?;
        }
        writeln!(f)?;
        write!(f, "{}", self.block)?;
        writeln!(f)?;
        write!(f, "{}", self.trace)?;
        writeln!(f)?;
        write!(f, "{}", self.total)?;
        write!(f, "{}", self.note())?;
        writeln!(f)?;
        writeln!(f, "Effective scenario (pass it back with --scenario):")?;
        for line in self.scenario.to_toml().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}
