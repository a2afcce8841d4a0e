use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use chunkload::flatten;
use chunkload::image::Image;
use chunkload::report::Table;
use chunkload::sim::baseline;
use chunkload::sim::replay::{self, ChunkTable, ReplayResult, Source};
use chunkload::sim::{Scenario, SimDuration};
use chunkload::trace::mapping::map_trace;
use chunkload::trace::{MmapRule, Reader};
use chunkload::units::ByteSize;

use super::{ImageFlags, ManifestFlags};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CacheState {
    Cold,
    Warm,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    manifest: ManifestFlags,
    /// The start's file-access trace (docs/trace-format.md).
    #[arg(long)]
    trace: PathBuf,
    /// Worker cache before the start: empty, or holding the whole image.
    #[arg(long, value_enum, default_value = "cold")]
    l1: CacheState,
    /// AZ cache before the start: empty, or holding the whole image.
    #[arg(long, value_enum, default_value = "warm")]
    l2: CacheState,
    #[command(flatten)]
    start: StartFlags,
    /// The OCI image the manifest came from: enables the full-pull and zip baselines.
    #[arg(long)]
    image: Option<String>,
    /// Write every chunk request the agent made (time, chunk id, size, tier) as CSV.
    #[arg(long)]
    chunk_stream: Option<PathBuf>,
    /// Write the per-fetch timeline (issued, done, chunk index and id, size, tier) as JSON.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let sc = args.start.scenario()?;
    let store = args.manifest.open_store()?;
    let image = args.manifest.open(&store)?;
    let (meta, _) = image.tree()?;
    let public = image.manifest.public();
    let table = ChunkTable::from_manifest(&public);
    let records = Reader::open(&args.trace)?.collect::<chunkload::trace::Result<Vec<_>>>()?;
    let map = map_trace(&meta, records, args.start.mmap);

    let (l1_warm, l2_warm) = (args.l1 == CacheState::Warm, args.l2 == CacheState::Warm);
    let source = Source::lazy_prefilled(&sc, &table, |_| l1_warm, |_| l2_warm);
    let lazy = replay::replay(&map.accesses, &table, &sc, source);
    let baselines = match &args.image {
        Some(reference) => Some(baselines(reference, &args, &sc, &map.accesses, &table)?),
        None => None,
    };
    if let Some(path) = &args.chunk_stream {
        let mut w =
            BufWriter::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?);
        writeln!(w, "time_ns,chunk_id,chunk_index,size,tier,done_ns")?;
        for f in &lazy.fetches {
            let tier = serde_json::to_value(f.tier)?;
            writeln!(
                w,
                "{},{},{},{},{},{}",
                f.issued.since_start().as_nanos(),
                f.chunk,
                f.chunk_index,
                f.size,
                tier.as_str().unwrap_or(""),
                f.done.since_start().as_nanos()
            )?;
        }
        w.flush()?;
    }
    if let Some(path) = &args.timeline {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(file), &lazy.fetches)?;
    }
    if args.json {
        let out = serde_json::json!({
            "chunkload_version": env!("CARGO_PKG_VERSION"), "seed": sc.seed, "scenario": sc,
            "manifest": args.manifest.manifest, "trace": args.trace, "l1": format!("{:?}", args.l1).to_lowercase(),
            "l2": format!("{:?}", args.l2).to_lowercase(), "mmap_rule": args.start.mmap.to_string(),
            "mapping": { "missing_paths": map.missing, "not_files": map.not_files, "clipped_bytes": map.clipped_bytes },
            "lazy": lazy, "baselines": baselines,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "replay of {} on {} (chunkload {}, seed {}, L1 {:?}, L2 {:?}, mmap {})",
        args.trace.display(),
        args.manifest.manifest,
        env!("CARGO_PKG_VERSION"),
        sc.seed,
        args.l1,
        args.l2,
        args.start.mmap
    );
    print_result("lazy loading", &lazy);
    if let Some(b) = &baselines {
        println!();
        println!("baselines (same trace, local disk after the download):");
        for (name, total, setup, result) in b {
            println!(
                "  {name:<10} {} = {} download+unpack + {} running the trace",
                total, setup, result.start_time
            );
        }
        println!("  lazy       {}", lazy.start_time);
    }
    println!();
    println!("effective scenario (pass it back with --scenario):");
    for line in sc.to_toml().lines() {
        println!("  {line}");
    }
    Ok(())
}

/// The scenario file (or the built-in default) with the command line's overrides.
/// What one simulated start of a trace is run with (`replay`, `explain`).
#[derive(Debug, Args)]
pub(super) struct StartFlags {
    /// Scenario file (TOML, in the form every replay report prints; see docs/latency-model.md).
    /// Default: built-in.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Seed (overrides the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Multiplier on the trace's CPU gaps (overrides the scenario's; tracing inflates them).
    #[arg(long)]
    pub cpu_scale: Option<f64>,
    /// What an mmap in the trace reads: whole, ignore or fraction:F.
    #[arg(long, default_value = "whole")]
    pub mmap: MmapRule,
}

impl StartFlags {
    /// The scenario file (or the built-in one) with the seed and CPU-scale overrides applied.
    pub fn scenario(&self) -> Result<Scenario> {
        load_scenario(self.scenario.as_deref(), self.seed, self.cpu_scale)
    }
}

pub(super) fn load_scenario(
    path: Option<&std::path::Path>,
    seed: Option<u64>,
    cpu_scale: Option<f64>,
) -> Result<Scenario> {
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

fn print_result(title: &str, r: &ReplayResult) {
    println!("{title}: start took {}", r.start_time);
    println!(
        "  operations {} ({} page-cache hits, {} device reads of {} pages, {})",
        r.operations,
        r.page_cache_hits,
        r.device_reads,
        r.pages_read,
        ByteSize(r.bytes_read)
    );
    println!(
        "  chunks     {} touched of {} in the image; {} fetched",
        r.chunks_touched,
        r.chunks_in_image,
        ByteSize(r.bytes_fetched)
    );
    let mut t = Table::new(["served by", "chunks", "bytes", "stall"]);
    for (tier, c) in &r.by_tier {
        let name =
            serde_json::to_value(tier).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        t.row([name, c.chunks.to_string(), ByteSize(c.bytes).to_string(), c.stall.to_string()]);
    }
    for line in t.to_string().lines() {
        println!("  {line}");
    }
    if let Some(p) = &r.read_latency {
        println!(
            "  device read latency p50 {} p90 {} p99 {} p99.9 {}; {:.1}% under 100us",
            p.p50,
            p.p90,
            p.p99,
            p.p999,
            100.0 * p.under_100us
        );
    }
}

type Baseline = (&'static str, SimDuration, SimDuration, ReplayResult);

/// Full pull and zip: download (+unpack) first, then the same trace from local disk.
fn baselines(
    reference: &str,
    args: &ReplayArgs,
    sc: &Scenario,
    accesses: &[chunkload::trace::mapping::MappedAccess],
    table: &ChunkTable,
) -> Result<Vec<Baseline>> {
    let image = Image::open(reference, &args.flags.options())?;
    let flat = flatten::flatten(&image)?;
    let Some(b) = baseline::baselines(&flat.layers, accesses, table, sc) else {
        bail!("{reference} has no layers");
    };
    if b.zip_over_limit {
        eprintln!(
            "note: the zip baseline's {} unzipped exceed Lambda's {} limit: such a function could not ship as a zip",
            ByteSize(b.zip.unpack_bytes),
            sc.baseline.zip_limit
        );
    }
    Ok(b.iter().map(|x| (x.name, x.total, x.setup, x.run.clone())).collect())
}
