//! `demo`: the whole pipeline over the small real images committed in images/, in sections a
//! reader can follow: the images and the layers they share, their conversion into one chunk store
//! (what dedup saves), and one function's start replayed under several cache states against a full
//! pull and a zip, then a small region of many functions and workers (the fleet model) over a few
//! simulated minutes, with one AZ cache node lost. Each section is a function from the [`Demo`] context to a report struct that is
//! printed (Display) and saved (JSON, CSV); a new section is one more such function and one field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::explain::{self, CacheFill, ExplainOptions, StoredImage, Subject};
use crate::chunk::{self, ChunkSize, ChunkedImage, ConvertOptions, ConvertStats};
use crate::crypto::{ManifestPublic, Salt};
use crate::flatten::{self, Flattened};
use crate::fleet::{self, FleetReport, FleetScenario, FleetScenarioError};
use crate::image::{Image, OpenOptions, spec};
use crate::report::Table;
use crate::report::dedup::DedupReport;
use crate::report::plot::{self, AxisFormat, BarGroup, ChartOptions, Series};
use crate::sim::baseline::Baselines;
use crate::sim::replay::{ReplayResult, Tier};
use crate::sim::{Scenario, SimDuration};
use crate::store::MemStore;
use crate::trace::{MmapRule, Reader};
use crate::units::ByteSize;

/// The function whose start the demo replays: the app-only update of hello-py, so most of its
/// chunks were already brought into the store and the caches by the images before it.
pub const SUBJECT: &str = "hello-py-v2";

/// The salt every image is converted under (one dedup namespace).
const SALT: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{dir}: no OCI layout here (expected {dir}/oci/index.json, as images/build.sh makes it)")]
    NoImages { dir: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("image {image}: {source}")]
    Image { image: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("trace {path}: {source}")]
    Trace { path: String, source: crate::trace::Error },
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    #[error(transparent)]
    FleetScenario(#[from] FleetScenarioError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DemoError + '_ {
    move |source| DemoError::Io { path: path.display().to_string(), source }
}

fn image_err<E: std::error::Error + Send + Sync + 'static>(image: &str) -> impl FnOnce(E) -> DemoError + '_ {
    move |e| DemoError::Image { image: image.to_string(), source: Box::new(e) }
}

/// One image of images/oci, opened, flattened and converted.
pub struct DemoImage {
    pub tag: String,
    pub image: Image,
    pub flat: Flattened,
    pub manifest: ManifestPublic,
    pub convert: ConvertStats,
}

/// What the sections share: the images (in upload order) and the store they were converted into.
pub struct Demo {
    pub images_dir: PathBuf,
    pub scenario: Scenario,
    pub store: MemStore,
    pub images: Vec<DemoImage>,
    /// Block-image metadata of each image, by tag (to map traces).
    metas: BTreeMap<String, crate::layout::BlockMeta>,
}

/// The tags of an OCI layout's index, in index order (the order images/build.sh uploads them).
pub fn layout_tags(layout: &Path) -> Result<Vec<String>, DemoError> {
    let path = layout.join("index.json");
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            DemoError::NoImages { dir: layout.parent().unwrap_or(layout).display().to_string() }
        }
        _ => DemoError::Io { path: path.display().to_string(), source: e },
    })?;
    let index: spec::ImageIndex = serde_json::from_str(&text)
        .map_err(|e| DemoError::Invalid { path: path.display().to_string(), reason: e.to_string() })?;
    let tags: Vec<String> =
        index.manifests.iter().filter_map(|d| d.annotations.get(spec::REF_NAME).cloned()).collect();
    if tags.is_empty() {
        return Err(DemoError::Invalid {
            path: path.display().to_string(),
            reason: "no tagged images".into(),
        });
    }
    Ok(tags)
}

impl Demo {
    /// Opens, flattens and converts every tagged image of `images_dir/oci` into one memory store,
    /// in index order (each conversion sees what the ones before it uploaded).
    pub fn load(images_dir: &Path, scenario: Scenario) -> Result<Self, DemoError> {
        let layout = images_dir.join("oci");
        let tags = layout_tags(&layout)?;
        let store = MemStore::new();
        let options =
            ConvertOptions { chunk_size: ChunkSize::DEFAULT, salt: Salt::new(SALT).expect("valid salt") };
        let mut images = Vec::new();
        let mut metas = BTreeMap::new();
        for tag in tags {
            let reference = format!("{}:{tag}", layout.display());
            let image = Image::open(&reference, &OpenOptions::default()).map_err(image_err(&tag))?;
            let flat = flatten::flatten(&image).map_err(image_err(&tag))?;
            let converted = chunk::convert(&image, &flat, &options, &store).map_err(image_err(&tag))?;
            let manifest = converted.manifest.public();
            let (meta, _) = ChunkedImage { manifest: converted.manifest, store: &store }
                .tree()
                .map_err(image_err(&tag))?;
            metas.insert(tag.clone(), meta);
            images.push(DemoImage { tag, image, flat, manifest, convert: converted.stats });
        }
        Ok(Demo { images_dir: images_dir.to_path_buf(), scenario, store, images, metas })
    }
}

// ---- section 1: the images and their layers ------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct ImagesSection {
    pub images: Vec<ImageLine>,
    /// Layer blobs referenced by all images, and the distinct ones a registry stores.
    pub layer_refs: u64,
    pub distinct_layers: u64,
    pub referenced_bytes: u64,
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageLine {
    pub tag: String,
    pub digest: String,
    pub layers: usize,
    pub compressed_bytes: u64,
    pub live_bytes: u64,
    /// Layers whose blob an earlier image already had.
    pub layers_seen_before: usize,
    pub whiteouts: u64,
    pub hidden_bytes: u64,
}

pub fn images_section(demo: &Demo) -> ImagesSection {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut referenced = 0;
    for d in &demo.images {
        let mut before = 0;
        for l in &d.image.layers {
            let id = l.id().to_string();
            if seen.insert(id, l.size).is_some() {
                before += 1;
            }
            referenced += l.size;
        }
        lines.push(ImageLine {
            tag: d.tag.clone(),
            digest: d.image.digest().short(),
            layers: d.image.layers.len(),
            compressed_bytes: d.image.layers.iter().map(|l| l.size).sum(),
            live_bytes: d.flat.summary.total_bytes,
            layers_seen_before: before,
            whiteouts: d.flat.layers.iter().map(|l| l.whiteouts + l.opaque_whiteouts).sum(),
            hidden_bytes: d.flat.summary.hidden_bytes,
        });
    }
    ImagesSection {
        layer_refs: demo.images.iter().map(|d| d.image.layers.len() as u64).sum(),
        distinct_layers: seen.len() as u64,
        referenced_bytes: referenced,
        stored_bytes: seen.values().sum(),
        images: lines,
    }
}

impl fmt::Display for ImagesSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "1. The images: real Debian packages in layers, shared the way real functions share them"
        )?;
        let mut t = Table::new([
            "image",
            "digest",
            "layers",
            "compressed",
            "file data",
            "reused layers",
            "whiteouts",
        ]);
        for i in &self.images {
            t.row([
                i.tag.clone(),
                i.digest.clone(),
                i.layers.to_string(),
                ByteSize(i.compressed_bytes).to_string(),
                ByteSize(i.live_bytes).to_string(),
                i.layers_seen_before.to_string(),
                i.whiteouts.to_string(),
            ]);
        }
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   A registry stores each layer blob once: {} layer references, {} distinct blobs, {} instead of {}.",
            self.layer_refs,
            self.distinct_layers,
            ByteSize(self.stored_bytes),
            ByteSize(self.referenced_bytes)
        )?;
        writeln!(
            f,
            "   But layers only dedup whole: change one file in the base and every image above it is new.\n   \
             Lambda dedups below the layers instead, on chunks of one flattened block image."
        )
    }
}

// ---- section 2: conversion into one chunk store --------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct StoreSection {
    pub salt: String,
    pub chunk_size: u64,
    pub uploads: Vec<UploadLine>,
    pub dedup: DedupReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadLine {
    pub tag: String,
    pub image_bytes: u64,
    pub chunks: u64,
    pub zero: u64,
    pub present: u64,
    pub new: u64,
    pub bytes_written: u64,
}

pub fn store_section(demo: &Demo) -> StoreSection {
    let uploads = demo
        .images
        .iter()
        .map(|d| UploadLine {
            tag: d.tag.clone(),
            image_bytes: d.convert.image_bytes,
            chunks: d.convert.chunks_total,
            zero: d.convert.chunks_zero,
            present: d.convert.chunks_present,
            new: d.convert.chunks_new,
            bytes_written: d.convert.bytes_written,
        })
        .collect();
    let dedup = DedupReport::build(demo.images.iter().map(|d| (d.tag.clone(), d.manifest.clone())).collect())
        .expect("tags of one index are distinct");
    StoreSection { salt: SALT.into(), chunk_size: ChunkSize::DEFAULT.bytes(), uploads, dedup }
}

impl fmt::Display for StoreSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "2. Flatten, cut into {} chunks, encrypt convergently (salt {:?}), upload what is missing",
            ByteSize(self.chunk_size),
            self.salt
        )?;
        let mut t =
            Table::new(["upload", "block image", "chunks", "zero", "already stored", "new", "written"]);
        for u in &self.uploads {
            t.row([
                u.tag.clone(),
                ByteSize(u.image_bytes).to_string(),
                u.chunks.to_string(),
                u.zero.to_string(),
                u.present.to_string(),
                u.new.to_string(),
                ByteSize(u.bytes_written).to_string(),
            ]);
        }
        indent(f, &t.to_string())?;
        let tot = &self.dedup.totals;
        writeln!(
            f,
            "   The store holds {} distinct chunks ({}) for {} chunk references ({}): {}.",
            tot.distinct_chunks,
            ByteSize(tot.physical_bytes),
            tot.logical_chunks,
            ByteSize(tot.logical_bytes),
            match tot.savings_factor {
                Some(x) => format!("dedup saves {x:.2}x"),
                None => "nothing stored".into(),
            }
        )?;
        writeln!(
            f,
            "   {} upload(s) identical to an earlier image (a re-upload adds no chunk); the paper reports up to\n   \
             23x from dedup plus 5x from such trivial re-uploads, and that ~80% of new uploads add no unique chunk.",
            self.dedup.upload.identical_reuploads
        )?;
        writeln!(
            f,
            "   Files are placed in layer order and never moved, so files the images share keep their blocks and\n   \
             their chunks; only chunks holding changed files or the metadata (inodes, directories) are new."
        )
    }
}

// ---- section 3: one start, replayed ---------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct StartsSection {
    pub image: String,
    pub trace: String,
    pub trace_records: u64,
    /// Layers a zip package of this function would carry (the ones above the managed runtime).
    pub zip_from_layer: usize,
    pub cases: Vec<StartCase>,
    pub baselines: Option<Baselines>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StartCase {
    pub name: &'static str,
    pub l1: CacheFill,
    pub l2: CacheFill,
    pub result: ReplayResult,
}

/// The cache states the demo replays, from the first start anywhere to a warm worker.
pub const CASES: [(&str, CacheFill, CacheFill); 4] = [
    ("first start anywhere (all caches empty)", CacheFill::Cold, CacheFill::Cold),
    ("new version; AZ cache holds the other images", CacheFill::Cold, CacheFill::Store),
    ("usual cold start (AZ cache holds the image)", CacheFill::Cold, CacheFill::Warm),
    ("warm worker (worker cache holds the image)", CacheFill::Warm, CacheFill::Warm),
];

pub fn starts_section(demo: &Demo, subject: &str) -> Result<StartsSection, DemoError> {
    let d = demo.images.iter().find(|d| d.tag == subject).ok_or_else(|| DemoError::Invalid {
        path: demo.images_dir.join("oci").display().to_string(),
        reason: format!("no image tagged {subject}"),
    })?;
    let trace_path = demo.images_dir.join("traces").join(format!("{subject}.trace"));
    let trace_err = |source| DemoError::Trace { path: trace_path.display().to_string(), source };
    let records = Reader::open(&trace_path)
        .map_err(trace_err)?
        .collect::<crate::trace::Result<Vec<_>>>()
        .map_err(trace_err)?;
    let sc = &demo.scenario;
    let others: Vec<StoredImage> = demo
        .images
        .iter()
        .filter(|o| o.tag != subject && o.manifest.chunks != d.manifest.chunks)
        .map(|o| StoredImage { name: o.tag.clone(), manifest: o.manifest.clone() })
        .collect();
    let subject_view = Subject {
        name: subject.to_string(),
        flat: Some(&d.flat),
        layer_history: explain::layer_history(&d.image),
        manifest: &d.manifest,
        meta: &demo.metas[subject],
        store: &others,
    };
    let mut cases = Vec::new();
    let mut baselines = None;
    for (name, l1, l2) in CASES {
        let opts = ExplainOptions { scenario: sc.clone(), l1, l2, mmap: MmapRule::Whole, reads: 0 };
        let story = explain::explain(&subject_view, records.clone(), &opts);
        baselines = story.total.baselines;
        cases.push(StartCase { name, l1, l2, result: story.total.lazy });
    }
    Ok(StartsSection {
        image: subject.to_string(),
        trace: trace_path.display().to_string(),
        trace_records: records.len() as u64,
        zip_from_layer: sc.baseline.zip_from_layer,
        cases,
        baselines,
    })
}

fn tier_label(t: Tier) -> &'static str {
    match t {
        Tier::Hole => "zero",
        Tier::WorkerMemory => "worker mem",
        Tier::WorkerDisk => "worker disk",
        Tier::AzCache => "AZ cache",
        Tier::S3 => "S3",
        Tier::LocalDisk => "local disk",
    }
}

impl fmt::Display for StartsSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "3. One start of {}, replayed from its strace ({} file accesses) in simulated time",
            self.image, self.trace_records
        )?;
        let mut t =
            Table::new(["caches before the start", "start", "p50 read", "p99 read", "chunks: served by"]);
        for c in &self.cases {
            let r = &c.result;
            let served: Vec<String> = r
                .by_tier
                .iter()
                .filter(|(_, n)| n.chunks > 0)
                .map(|(tier, n)| format!("{} {}", n.chunks, tier_label(*tier)))
                .collect();
            let p = |get: fn(&crate::sim::replay::Percentiles) -> SimDuration| {
                r.read_latency.as_ref().map(|p| get(p).to_string()).unwrap_or_default()
            };
            t.row([
                c.name.to_string(),
                r.start_time.to_string(),
                p(|p| p.p50),
                p(|p| p.p99),
                served.join(", "),
            ]);
        }
        if let Some(b) = &self.baselines {
            for x in b.iter() {
                t.row([
                    format!(
                        "{} (download {}, unpack {})",
                        x.name,
                        ByteSize(x.download_bytes),
                        ByteSize(x.unpack_bytes)
                    ),
                    x.total.to_string(),
                    String::new(),
                    String::new(),
                    format!("{} before the first read", x.setup),
                ]);
            }
        }
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   Lazy loading fetches only the chunks the start touches; the zip (layers {}.. only: the runtime is\n   \
             already on the worker) and the full pull download and unpack everything first. Every chunk from\n   \
             S3 costs ~36 ms median, from the AZ cache ~0.5 ms, from the worker cache ~20 us.",
            self.zip_from_layer
        )?;
        writeln!(
            f,
            "   Follow this start read by read: chunkload explain {}/oci:{} --trace {}",
            Path::new(&self.trace).parent().and_then(Path::parent).unwrap_or(Path::new("images")).display(),
            self.image,
            self.trace
        )
    }
}

// ---- section 4: a region ---------------------------------------------------------------------

/// The region the demo simulates (scenarios/demo-region.toml, compiled in so the demo needs no
/// file but the images).
pub const FLEET_SCENARIO_FILE: &str = "scenarios/demo-region.toml";
const FLEET_SCENARIO_TOML: &str = include_str!("../../scenarios/demo-region.toml");

/// The demo's region, as `chunkload simulate --scenario scenarios/demo-region.toml` runs it.
pub fn fleet_scenario() -> Result<FleetScenario, FleetScenarioError> {
    FleetScenario::load(Some((FLEET_SCENARIO_FILE, FLEET_SCENARIO_TOML)), &[])
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetSection {
    pub scenario_file: &'static str,
    /// The region as configured (4-of-5 erasure coding in the AZ cache).
    pub region: FleetReport,
    /// The same region and seed with a single copy of each chunk in the AZ cache.
    pub single_copy: FleetReport,
}

/// Runs the region twice, erasure coded and single copy, with the same seed: the same functions,
/// starts and reads, so the two differ only in what the lost node takes with it.
pub fn fleet_section(scenario: &FleetScenario, seed: u64) -> FleetSection {
    let mut single = scenario.clone();
    single.l2.redundancy = crate::sim::scenario::RedundancyName::SingleCopy;
    let (region, single_copy) = rayon::join(|| fleet::run(scenario, seed), || fleet::run(&single, seed));
    FleetSection { scenario_file: FLEET_SCENARIO_FILE, region, single_copy }
}

/// How a run's AZ cache stores a chunk, for labels.
fn redundancy_name(r: &FleetReport) -> &'static str {
    match r.scenario.l2.redundancy {
        crate::sim::scenario::RedundancyName::ErasureCoded => "4-of-5 erasure coding",
        crate::sim::scenario::RedundancyName::SingleCopy => "single copy",
    }
}

fn minutes(d: SimDuration) -> String {
    format!("{:.0}", d.as_millis_f64() / 60_000.0)
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

impl fmt::Display for FleetSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.region;
        let sc = &r.scenario;
        writeln!(
            f,
            "4. A region: {} functions on {} workers sharing one AZ cache of {} nodes, {} simulated minutes",
            sc.population.functions,
            sc.placement.workers,
            sc.l2.nodes,
            minutes(sc.duration)
        )?;
        writeln!(
            f,
            "   ({}: a tenth of paper-region, seed {:#x}; {} minutes of warm-up from empty caches\n   \
             first, not counted)",
            self.scenario_file,
            r.seed,
            minutes(sc.warmup)
        )?;
        writeln!(
            f,
            "   Functions share base, runtime and dependency layers; a few are popular, most are not. Sandboxes\n   \
             start and retire, cron jobs fire on the minute, new functions and deploys bring new chunks.\n   \
             {} cold starts read {} chunks.",
            r.workload.cold_starts, r.sources.reads
        )?;
        let s = &r.sources;
        let mut t = Table::new(["where the chunks came from (paper fig. 7)", "chunks", "ours", "paper"]);
        t.row([
            "worker cache (L1)".into(),
            (s.l1_memory + s.l1_disk).to_string(),
            pct(s.l1_share),
            "67%".into(),
        ]);
        t.row(["AZ cache (L2)".into(), s.l2.to_string(), pct(s.l2_share), "32%".into()]);
        t.row(["S3".into(), s.s3.to_string(), pct(s.s3_share), "0.06%".into()]);
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   Two thirds of the chunks are on the worker already: the popular base and runtime layers. The\n   \
             rest come from the AZ cache, which almost always has them; S3 serves only chunks nobody read yet\n   \
             (the paper's 0.06% is a week's average; here one minute of five is a midnight spike)."
        )?;
        let mut t =
            Table::new(["minute", "cold starts", "AZ cache hit rate (fig. 8)", "single copy", "S3 GETs"]);
        for (m, one) in r.minutes.iter().zip(&self.single_copy.minutes) {
            let rate = |x: &fleet::engine::MinuteRow| x.l2_hit_rate().map_or("-".into(), pct);
            t.row([
                m.minute.to_string(),
                m.cold_starts.to_string(),
                rate(m),
                rate(one),
                m.s3_reads.to_string(),
            ]);
        }
        indent(f, &t.to_string())?;
        let cron = r.minutes.iter().max_by_key(|m| (m.s3_reads, std::cmp::Reverse(m.minute)));
        if let Some(m) = cron {
            writeln!(
                f,
                "   Minute {} is the worst: {} S3 GETs against a typical minute's {}. The paper's median minute hits\n   \
                 ~99.8% and ~4% of minutes fall below 99%, at midnight cron spikes and new-function bursts: this\n   \
                 window crosses midnight, when hourly, daily and weekly jobs start at once and read chunks no start\n   \
                 has read since the simulation began. Over five minutes that one minute weighs more than in a week.",
                m.minute, m.s3_reads, r.s3.median_minute_requests
            )?;
        }
        for (name, x) in [(redundancy_name(r), r), ("single copy", &self.single_copy)] {
            for fr in &x.failures {
                writeln!(
                    f,
                    "   AZ cache node {} lost at minute {:.0}, with {}: {} of the cached chunks became\n   \
                     unreadable{}.",
                    fr.node.map_or("(all)".into(), |n| n.to_string()),
                    fr.at_s / 60.0,
                    name,
                    pct(fr.lost_share),
                    if x.l2.degraded_hits > 0 {
                        format!(" ({} reads decoded from the four stripes left)", x.l2.degraded_hits)
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        writeln!(
            f,
            "   The paper: erasure coding rides out a node loss with no drop in hit rate; one copy loses ~1/20."
        )?;
        let ms = |v: f64| format!("{v:.2} ms");
        let mut t = Table::new(["latency", "p50", "p90", "p99", "paper"]);
        let c = &r.cold_start;
        t.row(["cold start".into(), ms(c.p50_ms), ms(c.p90_ms), ms(c.p99_ms), "not given".into()]);
        let a = &r.agent_read.quantiles;
        t.row(["chunk read (fig. 11)".into(), ms(a.p50_ms), ms(a.p90_ms), ms(a.p99_ms), "two modes".into()]);
        let (e, n) = (&r.stripe_fetch_ec, &r.stripe_fetch_no_parity);
        t.row([
            "AZ read, 4 of 5 stripes (fig. 9)".into(),
            ms(e.p50_ms),
            ms(e.p90_ms),
            ms(e.p99_ms),
            "~1.3 ms p50".into(),
        ]);
        t.row([
            "AZ read, all 4 of 4 (fig. 9)".into(),
            ms(n.p50_ms),
            ms(n.p90_ms),
            ms(n.p99_ms),
            "~1.45 ms p50".into(),
        ]);
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   Chunk reads are bimodal: {} took under 0.1 ms (the worker cache; paper ~69%) and {} under\n   \
             3.8 ms (the AZ cache; paper 97.5%), with almost nothing between. Reading any 4 of 5 stripes cuts the\n   \
             AZ read's tail: the slowest stripe is never waited for. A cold start is mostly the runtime's own\n   \
             initialisation; chunk reads add milliseconds, an S3 read ~40 ms. docs/fleet-model.md has more.",
            pct(r.agent_read.under_100us),
            pct(r.agent_read.under_3_8ms)
        )?;
        writeln!(
            f,
            "   The whole-size region (10,000 functions, 1,000 workers, an hour): chunkload simulate --out DIR"
        )
    }
}

impl FleetSection {
    /// The fleet charts (`fleet::plots`, prefixed `fleet-`) and the per-minute AZ cache hit rate
    /// of both redundancies across the node loss.
    pub fn figures(&self) -> Result<Vec<(String, String)>, DemoError> {
        let mut out: Vec<(String, String)> = fleet::plots::all(&self.region)?
            .into_iter()
            .map(|(n, svg)| (format!("fleet-{n}"), svg))
            .collect();
        let series = |name: &str, r: &FleetReport| {
            Series::new(
                name,
                r.minutes
                    .iter()
                    .filter_map(|m| Some((f64::from(m.minute), m.l2_hit_rate()? * 100.0)))
                    .collect(),
            )
        };
        let at = self
            .region
            .failures
            .first()
            .map_or(String::new(), |fr| format!(" (node lost at minute {:.0})", fr.at_s / 60.0));
        let lines =
            [series(redundancy_name(&self.region), &self.region), series("single copy", &self.single_copy)];
        // Zoom on the top of the scale, where the two redundancies differ; whole minutes on x.
        let low = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(100.0, f64::min);
        let minutes = self.region.minutes.iter().map(|m| f64::from(m.minute)).collect();
        out.push((
            "fleet-node-loss.svg".into(),
            plot::time_series_chart(
                &lines,
                &ChartOptions::new(
                    format!(
                        "AZ cache hit rate per minute, one node of {} lost{at}",
                        self.region.scenario.l2.nodes
                    ),
                    "minute of the window",
                    "AZ cache hit rate (%)",
                )
                .y_range((low - 1.0).floor(), 100.5)
                .x_ticks(minutes),
            )?,
        ));
        Ok(out)
    }
}

// ---- the whole demo -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub chunkload_version: &'static str,
    pub seed: u64,
    pub images_dir: String,
    pub images: ImagesSection,
    pub store: StoreSection,
    pub starts: StartsSection,
    pub fleet: FleetSection,
    /// Files written into the output folder, relative to it.
    pub files: Vec<String>,
    pub scenario: Scenario,
}

/// Runs every section.
/// The zip baseline ships the subject's top layer only: the layers below it (base + python) are the
/// runtime, which Lambda provides to zip functions; this overrides `baseline.zip_from_layer`.
pub fn run(images_dir: &Path, scenario: Scenario, fleet: &FleetScenario) -> Result<DemoReport, DemoError> {
    let mut demo = Demo::load(images_dir, scenario)?;
    if let Some(d) = demo.images.iter().find(|d| d.tag == SUBJECT) {
        demo.scenario.baseline.zip_from_layer = d.image.layers.len().saturating_sub(1);
    }
    Ok(DemoReport {
        chunkload_version: env!("CARGO_PKG_VERSION"),
        seed: demo.scenario.seed,
        images_dir: images_dir.display().to_string(),
        images: images_section(&demo),
        store: store_section(&demo),
        starts: starts_section(&demo, SUBJECT)?,
        fleet: fleet_section(fleet, demo.scenario.seed),
        files: Vec::new(),
        scenario: demo.scenario.clone(),
    })
}

impl DemoReport {
    /// Writes the report's data files into `dir` (which must exist) and records their names.
    pub fn write_files(&mut self, dir: &Path) -> Result<(), DemoError> {
        let mut files = BTreeSet::new();
        let mut put = |name: &str, body: &[u8]| -> Result<(), DemoError> {
            let path = dir.join(name);
            fs::write(&path, body).map_err(io_err(&path))?;
            files.insert(name.to_string());
            Ok(())
        };
        let mut csv = String::from(
            "tag,digest,layers,compressed_bytes,live_bytes,layers_seen_before,whiteouts,hidden_bytes\n",
        );
        for i in &self.images.images {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{}",
                i.tag,
                i.digest,
                i.layers,
                i.compressed_bytes,
                i.live_bytes,
                i.layers_seen_before,
                i.whiteouts,
                i.hidden_bytes
            );
        }
        put("images.csv", csv.as_bytes())?;
        let mut csv = String::from("position,tag,image_bytes,chunks,zero,present,new,bytes_written\n");
        for (i, u) in self.store.uploads.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{}",
                i + 1,
                u.tag,
                u.image_bytes,
                u.chunks,
                u.zero,
                u.present,
                u.new,
                u.bytes_written
            );
        }
        put("uploads.csv", csv.as_bytes())?;
        let mut dedup = Vec::new();
        self.store.dedup.write_images_csv(&mut dedup).expect("writing to memory");
        put("dedup-images.csv", &dedup)?;
        let mut starts = String::from("case,l1,l2,start_ns,tier,chunks,bytes,stall_ns\n");
        let mut reads = String::from("case,record,thread,start_ns,latency_ns,page_cache_hit,slowest_tier\n");
        for c in &self.starts.cases {
            let r = &c.result;
            for (tier, n) in &r.by_tier {
                let _ = writeln!(
                    starts,
                    "{:?},{},{},{},{},{},{},{}",
                    c.name,
                    c.l1.as_str(),
                    c.l2.as_str(),
                    r.start_time.as_nanos(),
                    tier_label(*tier),
                    n.chunks,
                    n.bytes,
                    n.stall.as_nanos()
                );
            }
            for e in &r.reads {
                let slowest = e.chunks.iter().max_by_key(|c| (c.ready, c.tier)).map(|c| tier_label(c.tier));
                let _ = writeln!(
                    reads,
                    "{:?},{},{},{},{},{},{}",
                    c.name,
                    e.record,
                    e.thread,
                    e.start.since_start().as_nanos(),
                    e.latency().as_nanos(),
                    e.page_cache_hit,
                    slowest.unwrap_or("page cache")
                );
            }
        }
        put("starts.csv", starts.as_bytes())?;
        put("reads.csv", reads.as_bytes())?;
        for (name, svg) in self.figures()? {
            put(name, svg.as_bytes())?;
        }
        let region = &self.fleet.region;
        put("fleet-minutes.csv", region.minutes_csv().as_bytes())?;
        put("fleet-minutes-single-copy.csv", self.fleet.single_copy.minutes_csv().as_bytes())?;
        put("fleet-metrics.csv", region.metrics_csv().as_bytes())?;
        put("fleet-ecdf.csv", region.ecdf_csv().as_bytes())?;
        let toml = format!(
            "# seed {:#x}, chunkload {}; chunkload simulate --scenario THIS_FILE --seed {:#x}\n{}",
            region.seed,
            region.chunkload_version,
            region.seed,
            region.scenario.to_toml()
        );
        put("fleet-scenario.toml", toml.as_bytes())?;
        for (name, svg) in self.fleet.figures()? {
            put(&name, svg.as_bytes())?;
        }
        files.insert("report.json".into());
        files.insert("report.txt".into());
        self.files = files.into_iter().collect();
        let json = serde_json::to_vec_pretty(self).expect("report serializes");
        let path = dir.join("report.json");
        fs::write(&path, json).map_err(io_err(&path))?;
        let path = dir.join("report.txt");
        fs::write(&path, self.to_string()).map_err(io_err(&path))?;
        Ok(())
    }
}

impl DemoReport {
    /// The demo's figures as SVG: what each upload added to the store, where each start's chunks
    /// came from, the per-read latency distribution per cache state, and the start times.
    pub fn figures(&self) -> Result<Vec<(&'static str, String)>, DemoError> {
        let mut out = Vec::new();
        let uploads: Vec<BarGroup> = self
            .store
            .uploads
            .iter()
            .map(|u| BarGroup { label: u.tag.clone(), values: vec![u.present as f64, u.new as f64] })
            .collect();
        out.push((
            "uploads.svg",
            plot::bar_chart(
                &["already stored".into(), "new".into()],
                &uploads,
                &ChartOptions::new("Chunks per upload, in upload order", "image", "chunks").stacked(),
            )?,
        ));
        let tiers = [Tier::WorkerMemory, Tier::WorkerDisk, Tier::AzCache, Tier::S3];
        let sources: Vec<BarGroup> = self
            .starts
            .cases
            .iter()
            .map(|c| BarGroup {
                label: short_case(c),
                values: tiers
                    .iter()
                    .map(|t| c.result.by_tier.get(t).map_or(0.0, |n| n.chunks as f64))
                    .collect(),
            })
            .collect();
        out.push((
            "chunk-sources.svg",
            plot::bar_chart(
                &tiers.iter().map(|t| tier_label(*t).to_string()).collect::<Vec<_>>(),
                &sources,
                &ChartOptions::new(
                    format!("Where the chunks of one {} start came from", self.starts.image),
                    "caches before the start (worker / AZ)",
                    "chunks",
                )
                .stacked(),
            )?,
        ));
        let cdfs: Vec<Series> = self
            .starts
            .cases
            .iter()
            .map(|c| {
                let ms: Vec<f64> = c
                    .result
                    .reads
                    .iter()
                    .filter(|e| !e.page_cache_hit)
                    .map(|e| e.latency().as_millis_f64())
                    .collect();
                Series::ecdf(short_case(c), &ms)
            })
            .collect();
        out.push((
            "read-latency-cdf.svg",
            plot::ecdf_chart(
                &cdfs,
                &ChartOptions::new(
                    format!("Device-read latency of one {} start", self.starts.image),
                    "read latency (ms, log)",
                    "share of device reads",
                )
                .log_x()
                .y_format(AxisFormat::Percent),
            )?,
        ));
        let mut starts: Vec<BarGroup> = self
            .starts
            .cases
            .iter()
            .map(|c| BarGroup { label: short_case(c), values: vec![c.result.start_time.as_millis_f64()] })
            .collect();
        if let Some(b) = &self.starts.baselines {
            starts.extend(
                b.iter()
                    .map(|x| BarGroup { label: x.name.to_string(), values: vec![x.total.as_millis_f64()] }),
            );
        }
        out.push((
            "start-times.svg",
            plot::bar_chart(
                &["start time".into()],
                &starts,
                &ChartOptions::new(
                    format!(
                        "One {} start: lazy loading by cache state, and the baselines",
                        self.starts.image
                    ),
                    "caches before the start (worker / AZ), or baseline",
                    "start time (ms)",
                ),
            )?,
        ));
        Ok(out)
    }
}

/// A case's label for charts: the cache fills, `worker/AZ`.
fn short_case(c: &StartCase) -> String {
    format!("{}/{}", c.l1.as_str(), c.l2.as_str())
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chunkload {} demo: how a container image becomes a cold start (seed {}, images from {})",
            self.chunkload_version, self.seed, self.images_dir
        )?;
        writeln!(f)?;
        write!(f, "{}", self.images)?;
        writeln!(f)?;
        write!(f, "{}", self.store)?;
        writeln!(f)?;
        write!(f, "{}", self.starts)?;
        writeln!(f)?;
        write!(f, "{}", self.fleet)?;
        writeln!(f)?;
        writeln!(f, "Effective scenario (chunkload replay --scenario FILE takes it back):")?;
        for line in self.scenario.to_toml().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

fn indent(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for line in text.lines() {
        writeln!(f, "   {line}")?;
    }
    Ok(())
}
