//! `explain`: one cold start told step by step for someone who has never met any of this. Every
//! number comes from the real pipeline: the flattened layers, the block image and its chunks
//! against what a store already holds, and the replay engine's per-read events (`sim::replay`),
//! each read followed from file to block-image bytes to chunks to the tier that served them, with
//! the reason each cache missed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::cache::ChunkId;
use crate::crypto::{ChunkName, ManifestPublic, PlainDigest};
use crate::flatten::Flattened;
use crate::ingest::map_trace;
use crate::layout::{BLOCK_SIZE, BlockMeta};
use crate::replay::baseline::{self, Baselines};
use crate::replay::{self, ReadEvent, ReplayResult, Scenario, Source, Via};
use crate::sim::{SimDuration, Tier};
use crate::trace::{MappedAccess, Region};
use crate::trace::{MmapRule, Record};
use crate::units::ByteSize;

/// What a cache holds before the start.
/// The caches' state before a start: the library's one type (shim until teach/ uses it by name).
pub use crate::replay::CacheState as CacheFill;

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
    pub l1: CacheFill,
    pub l2: CacheFill,
    pub mmap: MmapRule,
    /// Reads narrated one by one.
    pub reads: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub image: String,
    pub seed: u64,
    pub l1: CacheFill,
    pub l2: CacheFill,
    pub layers: Option<LayerStory>,
    pub block: BlockStory,
    pub trace: TraceStory,
    pub total: TotalStory,
    pub scenario: Scenario,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerStory {
    pub layers: Vec<LayerLine>,
    pub files: u64,
    pub live_bytes: u64,
    pub hidden_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerLine {
    pub index: usize,
    pub created_by: Option<String>,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub files: u64,
    pub whiteouts: u64,
    pub opaque_whiteouts: u64,
    pub hid_entries: u64,
    pub hid_bytes: u64,
    pub dead_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockStory {
    pub image_bytes: u64,
    pub data_bytes: u64,
    pub metadata_bytes: u64,
    pub chunk_size: u64,
    pub salt: String,
    pub chunks: u64,
    pub zero_chunks: u64,
    pub stored_chunks: u64,
    /// Distinct chunk names among the stored ones (a chunk repeated in the image is one object).
    pub distinct_chunks: u64,
    /// Positions whose chunk (same name) another image of the store already has.
    pub in_store: u64,
    /// Positions whose content another image has, but under another salt (so another name).
    pub other_salt: u64,
    /// Positions only this image has.
    pub new: u64,
    /// Per other image: positions of this one it shares (same name).
    pub shared_with: BTreeMap<String, u64>,
    /// Other images of the store compared with (0: no store given, or only this image in it).
    pub compared_with: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceStory {
    pub records: u64,
    pub operations: u64,
    pub page_cache_hits: u64,
    pub device_reads: u64,
    pub missing_paths: u64,
    pub reads: Vec<ReadStory>,
}

/// One operation of the start, followed down the stack.
#[derive(Debug, Clone, Serialize)]
pub struct ReadStory {
    pub record: usize,
    pub thread: u32,
    pub op: &'static str,
    pub path: String,
    /// Byte range of the file it asked for (reads and mmaps).
    pub file_range: Option<Range<u64>>,
    /// Page-aligned ranges of the block image it needs, and whether they hold metadata or data.
    pub block_ranges: Vec<(Region, Range<u64>)>,
    pub started: SimDuration,
    /// Operations served entirely by the guest page cache since the previous narrated read.
    pub page_cache_hits_before: u64,
    pub device_pages: u64,
    pub chunks: Vec<ChunkStory>,
    pub latency: SimDuration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChunkStory {
    pub index: u32,
    pub tier: Tier,
    pub via: Via,
    pub worker_miss: Option<WorkerMiss>,
    pub az_miss: Option<AzMiss>,
    /// From the read's start until this chunk was in the agent.
    pub ready_after: SimDuration,
}

/// Why the worker cache (L1) did not have a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerMiss {
    /// This worker never fetched it.
    Cold,
    /// It held the chunk but evicted it for room.
    Evicted,
}

/// Why the AZ cache (L2) did not have a chunk, so it came from S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AzMiss {
    /// No worker has asked the AZ cache for it (it may well be in S3, uploaded by another image).
    NeverSeen,
    /// It held the chunk but evicted it.
    Evicted,
    /// The same content is cached under another salt: another key, another name, no help.
    DifferentSalt,
}

#[derive(Debug, Clone, Serialize)]
pub struct TotalStory {
    pub lazy: ReplayResult,
    pub baselines: Option<Baselines>,
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
    let block = block_story(subject);

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
    let warm = |fill: CacheFill| -> BTreeSet<ChunkId> {
        m.chunks
            .iter()
            .filter(|c| match fill {
                CacheFill::Cold => false,
                CacheFill::Warm => true,
                CacheFill::Store => in_other.contains(&c.name),
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
        reads.push(read_story(
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
        layers: subject.flat.map(|f| layer_story(f, &subject.layer_history)),
        block,
        trace: TraceStory {
            records: records.len() as u64,
            operations: lazy.operations,
            page_cache_hits: lazy.page_cache_hits,
            device_reads: lazy.device_reads,
            missing_paths: map.missing,
            reads,
        },
        total: TotalStory { lazy, baselines },
        scenario: sc.clone(),
    }
}

fn layer_story(f: &Flattened, history: &[Option<String>]) -> LayerStory {
    LayerStory {
        layers: f
            .layers
            .iter()
            .map(|l| LayerLine {
                index: l.index,
                created_by: history.get(l.index).cloned().flatten(),
                compressed_bytes: l.compressed_bytes,
                uncompressed_bytes: l.uncompressed_bytes,
                files: l.files,
                whiteouts: l.whiteouts,
                opaque_whiteouts: l.opaque_whiteouts,
                hid_entries: l.hid_entries,
                hid_bytes: l.hid_bytes,
                dead_bytes: l.dead_bytes,
            })
            .collect(),
        files: f.summary.files,
        live_bytes: f.summary.total_bytes,
        hidden_bytes: f.summary.hidden_bytes,
    }
}

fn block_story(subject: &Subject<'_>) -> BlockStory {
    let m = subject.manifest;
    let salt = m.header.salt.label();
    let mut names: BTreeMap<ChunkName, Vec<&str>> = BTreeMap::new();
    let mut other_salt: BTreeSet<PlainDigest> = BTreeSet::new();
    for s in subject.store {
        if s.manifest.header.salt.label() == salt {
            for c in &s.manifest.chunks {
                let owners = names.entry(c.name).or_default();
                if owners.last() != Some(&s.name.as_str()) {
                    owners.push(&s.name);
                }
            }
        } else {
            other_salt.extend(s.manifest.chunks.iter().map(|c| c.plain));
        }
    }
    let (mut in_store, mut in_other_salt, mut new) = (0, 0, 0);
    let mut shared_with: BTreeMap<String, u64> = BTreeMap::new();
    for c in &m.chunks {
        if let Some(owners) = names.get(&c.name) {
            in_store += 1;
            for o in owners {
                *shared_with.entry(o.to_string()).or_default() += 1;
            }
        } else if other_salt.contains(&c.plain) {
            in_other_salt += 1;
        } else {
            new += 1;
        }
    }
    let total = m.header.total_chunks();
    let sb = &subject.meta.superblock;
    let distinct: BTreeSet<ChunkName> = m.chunks.iter().map(|c| c.name).collect();
    BlockStory {
        image_bytes: m.header.image_size,
        data_bytes: sb.meta_offset,
        metadata_bytes: m.header.image_size - sb.meta_offset,
        chunk_size: u64::from(m.header.chunk_size),
        salt: salt.to_string(),
        chunks: total,
        zero_chunks: total - m.chunks.len() as u64,
        stored_chunks: m.chunks.len() as u64,
        distinct_chunks: distinct.len() as u64,
        in_store,
        other_salt: in_other_salt,
        new,
        shared_with,
        compared_with: subject.store.len() as u64,
    }
}

fn read_story(
    e: &ReadEvent,
    rec: &Record,
    accesses: Option<&Vec<&MappedAccess>>,
    page_cache_hits_before: u64,
    why: impl Fn(u32) -> Option<(WorkerMiss, AzMiss)>,
) -> ReadStory {
    let block_ranges = accesses
        .map(|v| v.iter().filter(|a| a.thread == e.thread).map(|a| (a.region, a.bytes.clone())).collect())
        .unwrap_or_default();
    let chunks = e
        .chunks
        .iter()
        .map(|c| {
            let below_worker = c.via == Via::Requested && matches!(c.tier, Tier::AzCache | Tier::S3);
            let reasons = if below_worker { why(c.index) } else { None };
            ChunkStory {
                index: c.index,
                tier: c.tier,
                via: c.via,
                worker_miss: reasons.map(|r| r.0),
                az_miss: reasons.filter(|_| c.tier == Tier::S3).map(|r| r.1),
                ready_after: c.ready.max(e.start) - e.start,
            }
        })
        .collect();
    ReadStory {
        record: e.record,
        thread: e.thread,
        op: rec.access.op().as_str(),
        path: rec.path.to_string(),
        file_range: rec.access.range().map(|(o, l)| o..o.saturating_add(l)),
        block_ranges,
        started: e.start.since_start(),
        page_cache_hits_before,
        device_pages: e.device_pages,
        chunks,
        latency: e.latency(),
    }
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Hole => "nothing to fetch (an all-zero chunk)",
        Tier::WorkerMemory => "the worker cache's memory (L1)",
        Tier::WorkerDisk => "the worker cache's local disk (L1)",
        Tier::AzCache => "the AZ cache (L2)",
        Tier::S3 => "S3",
        Tier::LocalDisk => "the local disk",
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
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
            writeln!(f, "1. The layers")?;
            writeln!(
                f,
                "   A container image is a stack of tar archives (layers), each one the files a build step added,\n   \
                 changed or deleted. Deleting a lower layer's file leaves a 'whiteout' marker; the bytes stay\n   \
                 in the lower layer and are downloaded anyway ('hidden')."
            )?;
            for x in &l.layers {
                write!(
                    f,
                    "   layer {}: {} compressed, {} as tar, {} files",
                    x.index,
                    ByteSize(x.compressed_bytes),
                    ByteSize(x.uncompressed_bytes),
                    x.files
                )?;
                if x.whiteouts + x.opaque_whiteouts > 0 {
                    write!(
                        f,
                        "; {} whiteouts hide {} entries ({}) of the layers below",
                        x.whiteouts + x.opaque_whiteouts,
                        x.hid_entries,
                        ByteSize(x.hid_bytes)
                    )?;
                } else if x.hid_entries > 0 {
                    write!(
                        f,
                        "; replaces {} entries ({}) of the layers below",
                        x.hid_entries,
                        ByteSize(x.hid_bytes)
                    )?;
                }
                if x.dead_bytes > 0 {
                    write!(f, "; {} of it never reach the final image", ByteSize(x.dead_bytes))?;
                }
                writeln!(f)?;
                if let Some(by) = &x.created_by {
                    writeln!(f, "     made by: {}", shorten(by, 90))?;
                }
            }
            writeln!(
                f,
                "   Flattening applies the layers in order: {} files, {} of live file data; {} carried by the\n   \
                 layers are hidden and do not reach the block image.",
                l.files,
                ByteSize(l.live_bytes),
                ByteSize(l.hidden_bytes)
            )?;
        }
        let b = &self.block;
        writeln!(f)?;
        writeln!(f, "2. The block image and its chunks")?;
        writeln!(
            f,
            "   Lambda does not ship files: it writes the flattened tree into one filesystem image, the same\n   \
             way every time, so that unchanged files land on identical blocks in every image that has them.\n   \
             This one is {} ({} of file data, then {} of metadata: inodes, directories, superblock).",
            ByteSize(b.image_bytes),
            ByteSize(b.data_bytes),
            ByteSize(b.metadata_bytes)
        )?;
        writeln!(
            f,
            "   Cut into {} chunks of {}: {} are all zeros (never stored or fetched), {} are stored, {} distinct.",
            b.chunks,
            ByteSize(b.chunk_size),
            b.zero_chunks,
            b.stored_chunks,
            b.distinct_chunks
        )?;
        writeln!(
            f,
            "   Each chunk is encrypted with a key derived from its own content and the salt {:?}, and named by\n   \
             the hash of the result: equal content under the same salt gives the same name, so it is stored\n   \
             once (convergent encryption).",
            b.salt
        )?;
        if b.compared_with == 0 {
            writeln!(
                f,
                "   No other image to compare with (pass --store DIR): uploading it would store all {} chunks.",
                b.distinct_chunks
            )?;
        } else {
            writeln!(
                f,
                "   Against the store's {} other images: {} of {} stored chunks ({:.1}%) are already there, {} have\n   \
                 the same content under another salt (a different name: no dedup), {} are new.",
                b.compared_with,
                b.in_store,
                b.stored_chunks,
                pct(b.in_store, b.stored_chunks),
                b.other_salt,
                b.new
            )?;
        }
        for (name, n) in &b.shared_with {
            writeln!(f, "     shared with {name}: {n} chunks")?;
        }
        let t = &self.trace;
        writeln!(f)?;
        writeln!(f, "3. The start, read by read")?;
        writeln!(
            f,
            "   The trace has {} file accesses; replayed, they are {} operations: {} served by the guest's page\n   \
             cache, {} reaching the block device. The first {} device reads:",
            t.records,
            t.operations,
            t.page_cache_hits,
            t.device_reads,
            t.reads.len()
        )?;
        for r in &t.reads {
            writeln!(f)?;
            if r.page_cache_hits_before > 0 {
                writeln!(
                    f,
                    "   ({} operations before this one found all their pages in the guest page cache: no wait)",
                    r.page_cache_hits_before
                )?;
            }
            write!(f, "   #{} at {} (thread {}): {} {}", r.record, r.started, r.thread, r.op, r.path)?;
            if let Some(range) = &r.file_range {
                write!(f, " bytes {}..{}", range.start, range.end)?;
            }
            writeln!(f)?;
            for (region, bytes) in &r.block_ranges {
                if *region == Region::Data {
                    writeln!(
                        f,
                        "     the file's bytes are block-image bytes {}..{} = pages {}..{} = chunk {}",
                        bytes.start,
                        bytes.end,
                        bytes.start / BLOCK_SIZE,
                        bytes.end / BLOCK_SIZE,
                        chunk_span(bytes, b.chunk_size)
                    )?;
                }
            }
            let meta: Vec<_> = r.block_ranges.iter().filter(|(g, _)| *g == Region::Metadata).collect();
            if !meta.is_empty() {
                let pages: u64 = meta.iter().map(|(_, x)| (x.end - x.start) / BLOCK_SIZE).sum();
                let chunks: BTreeSet<u64> = meta
                    .iter()
                    .flat_map(|(_, x)| x.start / b.chunk_size..=(x.end - 1) / b.chunk_size)
                    .collect();
                let chunks: Vec<String> = chunks.iter().map(u64::to_string).collect();
                writeln!(
                    f,
                    "     the path lookup reads directory entries and inodes: {pages} metadata pages, in chunk {}",
                    chunks.join(", ")
                )?;
            }
            writeln!(
                f,
                "     the guest reads {} pages from the device (read-ahead included)",
                r.device_pages
            )?;
            for c in &r.chunks {
                write!(f, "     chunk {}: ", c.index)?;
                match c.via {
                    Via::Hole => write!(f, "all zeros, nothing to fetch")?,
                    Via::Resident => write!(f, "this start fetched it already: in the agent's memory")?,
                    Via::InFlight => write!(
                        f,
                        "another read is already fetching it (from {}); waits for that",
                        tier_name(c.tier)
                    )?,
                    Via::Requested => {
                        write!(f, "served by {}", tier_name(c.tier))?;
                        if let Some(w) = c.worker_miss {
                            write!(
                                f,
                                "; the worker cache missed ({})",
                                match w {
                                    WorkerMiss::Cold => "cold: this worker never fetched it",
                                    WorkerMiss::Evicted => "evicted: it held it but needed the room",
                                }
                            )?;
                        }
                        if let Some(a) = c.az_miss {
                            write!(
                                f,
                                "; the AZ cache missed ({})",
                                match a {
                                    AzMiss::NeverSeen => "never seen: no worker asked it for this chunk yet",
                                    AzMiss::Evicted => "evicted",
                                    AzMiss::DifferentSalt =>
                                        "different salt: it holds this content, but under another name",
                                }
                            )?;
                        }
                    }
                }
                writeln!(f, "; ready after {}", c.ready_after)?;
            }
            writeln!(f, "     the read waited {}", r.latency)?;
        }
        let l = &self.total.lazy;
        writeln!(f)?;
        writeln!(f, "4. The whole start")?;
        writeln!(
            f,
            "   {} from the first access to the last: {} of {} chunks touched ({:.1}%), {} fetched.",
            l.start_time,
            l.chunks_touched,
            l.chunks_in_image,
            pct(l.chunks_touched, l.chunks_in_image),
            ByteSize(l.bytes_fetched)
        )?;
        for (tier, c) in &l.by_tier {
            if c.chunks == 0 {
                writeln!(f, "   reads also waited {} on chunks this start had already fetched", c.stall)?;
                continue;
            }
            writeln!(
                f,
                "   {:<34} {:>5} chunks {:>10}   reads waited {} on them",
                tier_name(*tier),
                c.chunks,
                ByteSize(c.bytes).to_string(),
                c.stall
            )?;
        }
        if let Some(b) = &self.total.baselines {
            writeln!(f, "   Without lazy loading the worker would first download and unpack:")?;
            for x in b.iter() {
                writeln!(f, "   {:<10} {x}", x.name)?;
            }
            writeln!(f, "   lazy       {}", l.start_time)?;
            if b.zip_over_limit {
                writeln!(f, "   (the zip would exceed Lambda's limit on unzipped packages)")?;
            }
        } else {
            writeln!(f, "   (pass --image IMAGE to compare with a full pull and a zip package)")?;
        }
        writeln!(f)?;
        writeln!(f, "Effective scenario (pass it back with --scenario):")?;
        for line in self.scenario.to_toml().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

fn chunk_span(bytes: &Range<u64>, chunk_size: u64) -> String {
    let (a, z) = (bytes.start / chunk_size, (bytes.end - 1) / chunk_size);
    if a == z { a.to_string() } else { format!("{a}..={z}") }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_fill_round_trips() {
        for f in CacheFill::ALL {
            assert_eq!(f.name().parse::<CacheFill>().unwrap(), f);
        }
        assert!("lukewarm".parse::<CacheFill>().unwrap_err().to_string().contains("cold, warm or store"));
    }

    #[test]
    fn chunk_spans_read_naturally() {
        assert_eq!(chunk_span(&(0..4096), 512 << 10), "0");
        assert_eq!(chunk_span(&((512 << 10) - 4096..(512 << 10) + 4096), 512 << 10), "0..=1");
    }
}
