use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use chunkload::replay::{self, CacheState, MappingCounts, ReplayReport, Source};
use chunkload::requests::TimeUnit;
use chunkload::units::ByteSize;

use super::common::{self, ImageFlags, ManifestFlags, StartFlags};
use super::output;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    manifest: ManifestFlags,
    /// The start's file-access trace (docs/trace-format.md).
    #[arg(long)]
    trace: PathBuf,
    /// Worker cache before the start: empty, or holding the whole image.
    #[arg(long, value_parser = common::cold_or_warm(), default_value = "cold")]
    l1: CacheState,
    /// AZ cache before the start: empty, or holding the whole image.
    #[arg(long, value_parser = common::cold_or_warm(), default_value = "warm")]
    l2: CacheState,
    #[command(flatten)]
    start: StartFlags,
    /// The OCI image the manifest came from: enables the full-pull and zip baselines.
    #[arg(long)]
    image: Option<String>,
    /// Write every chunk request the agent made (time, chunk id, size, tier) as CSV.
    #[arg(long)]
    chunk_stream: Option<PathBuf>,
    /// Write the request stream each cache tier saw (worker cache, AZ cache) into this directory,
    /// in libCacheSim's oracleGeneral format and as CSV (docs/request-streams.md).
    #[arg(long, value_name = "DIR")]
    requests_out: Option<PathBuf>,
    /// Unit of the oracleGeneral files' 32-bit time field: s, ms or us.
    #[arg(long, default_value = "us", value_name = "s|ms|us", requires = "requests_out")]
    requests_time_unit: TimeUnit,
    /// Write the per-fetch timeline (issued, done, chunk index and id, size, tier) as JSON.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Replace existing --chunk-stream and --timeline files.
    #[arg(long)]
    force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let image_path = args.image.as_deref().map(output::image_path);
    let manifest = PathBuf::from(&args.manifest.manifest);
    let mut inputs: Vec<output::Input> = vec![
        ("manifest", &manifest),
        (output::STORE, &args.manifest.store),
        ("--key file", &args.manifest.key),
        ("trace", &args.trace),
    ];
    if let Some(p) = &image_path {
        inputs.push(("--image", p));
    }
    if let Some(p) = &args.start.scenario {
        inputs.push(("scenario", p));
    }
    for (flag, out) in [("--chunk-stream", &args.chunk_stream), ("--timeline", &args.timeline)] {
        if let Some(out) = out {
            output::check_file(flag, out, &inputs, args.force)?;
        }
    }
    if let (Some(a), Some(b)) = (&args.chunk_stream, &args.timeline)
        && a == b
    {
        bail!("--chunk-stream and --timeline name the same file {}", a.display());
    }
    let mut sc = args.start.scenario()?;
    let store = args.manifest.open_store()?;
    let opened = args.manifest.opened(&store, args.image.as_deref().map(|r| (r, &args.flags)))?;
    let records = common::read_trace_for(&args.trace, &mut sc)?;
    common::check_trace_fit(&args.trace, &args.manifest.manifest, &opened.meta, &records, true)?;
    let map = opened.map(records, args.start.mmap);
    let source = Source::before_start(&sc, &opened.table, args.l1, args.l2, |_| false);
    let lazy = replay::replay(&map.accesses, &opened.table, &sc, source);
    let baselines = match &opened.flat {
        Some(flat) => {
            let Some(b) = replay::baselines(&flat.layers, &map.accesses, &opened.table, &sc) else {
                bail!("{} has no layers", args.image.as_deref().unwrap_or_default());
            };
            if b.zip_over_limit {
                eprintln!(
                    "note: the zip baseline's {} unzipped exceed Lambda's {} limit: such a function could not ship as a zip",
                    ByteSize(b.zip.unpack_bytes),
                    sc.baseline.zip_limit
                );
            }
            Some(b)
        }
        None => None,
    };
    if let Some(path) = &args.chunk_stream {
        let staged = output::Staged::beside(path);
        let file =
            File::create(staged.path()).with_context(|| format!("cannot create {}", path.display()))?;
        replay::write_chunk_stream(&lazy.fetches, BufWriter::new(file))
            .with_context(|| format!("cannot write {}", path.display()))?;
        staged.commit(output::PUBLIC)?;
    }
    if let Some(dir) = &args.requests_out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        replay::write_request_streams(&lazy.fetches, dir, args.requests_time_unit)?;
    }
    if let Some(path) = &args.timeline {
        let staged = output::Staged::beside(path);
        let file =
            File::create(staged.path()).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut w, &lazy.fetches)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", path.display()))?;
        staged.commit(output::PUBLIC)?;
    }
    let report = ReplayReport {
        scenario: sc,
        manifest: args.manifest.manifest.clone(),
        trace: args.trace.clone(),
        l1: args.l1,
        l2: args.l2,
        mmap: args.start.mmap,
        mapping: MappingCounts {
            missing_paths: map.missing,
            not_files: map.not_files,
            clipped_bytes: map.clipped_bytes,
        },
        lazy,
        baselines,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{report}");
    }
    Ok(())
}
