use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use chunkload::chunk::ChunkSize;
use chunkload::chunk::ConvertOptions;
use chunkload::flatten;
use chunkload::image::Image;
use chunkload::ingest::Opened;
use chunkload::ingest::map_trace;
use chunkload::ingest::synth::{SynthOptions, synthesize};
use chunkload::layout::{BlockLayout, BlockMeta};
use chunkload::mount::Mountable;
use chunkload::mount::run::{self, RecordSpec, Signals};
use chunkload::mount::sandbox::{Limits, Network};
use chunkload::quantity::{Count, Fraction, Seed};
use chunkload::trace::footprint::{ImageSizes, MapSubject, TraceFootprint};
use chunkload::trace::strace::{self, ImportOptions};
use chunkload::trace::{MmapRule, Reader, TraceStats, Writer};
use chunkload::units::ByteSize;

use super::output;

#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(Debug, Subcommand)]
enum TraceCommand {
    /// Summarise a trace: duration, threads, records by op, files, bytes read, read sizes.
    Stats(StatsArgs),
    /// Convert `strace -f -tt -y` output of a program run in a chroot into a trace.
    ImportStrace(ImportArgs),
    /// Map a trace onto an image's block image: pages and chunks it touches, against the whole.
    Map(MapArgs),
    /// Make a seeded synthetic start trace for an image (import-like order, 6.4% of its bytes).
    Synth(SynthArgs),
    /// Run an image's program (its Entrypoint + Cmd, or `-- CMD`) on the image mounted with FUSE,
    /// isolated like a container, and record every request the kernel sends, page faults of
    /// mmap'd files included.
    Record(Box<RecordArgs>),
}

#[derive(Debug, Args)]
struct RecordArgs {
    /// A sealed manifest (with --store and --key), or an image (OCI layout, OCI archive or docker
    /// archive), converted into memory first.
    source: String,
    /// Chunk store directory, when SOURCE is a manifest.
    #[arg(long, value_name = "DIR", requires = "key")]
    store: Option<PathBuf>,
    /// Customer key file, when SOURCE is a manifest.
    #[arg(long, value_name = "KEYFILE", requires = "store")]
    key: Option<PathBuf>,
    /// Where to write the trace (`.zst` compresses; must not exist unless --force).
    #[arg(short, long, value_name = "TRACE")]
    output: PathBuf,
    /// Replace an existing -o file.
    #[arg(long)]
    force: bool,
    /// The command as the trace header records it (default: what ran, as one shell line).
    #[arg(long)]
    command: Option<String>,
    /// Set an environment variable (repeatable), after the image's Env. The program gets the
    /// image's Env (PATH and HOME defaulted as a container runtime does) and these: nothing of
    /// the host's environment.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// `none`: a network namespace with only loopback. `host`: the host's network (the program
    /// can reach anything the host can).
    #[arg(long, default_value = "none", value_name = "MODE")]
    network: Network,
    /// Address space per process (RLIMIT_AS), and the size of each writable tmpfs.
    #[arg(long, default_value = "4GiB", value_name = "SIZE")]
    memory: ByteSize,
    /// Processes and threads the program's user may have (RLIMIT_NPROC, in its user namespace).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pids: u64,
    /// Wall time in seconds before the program and everything it started are killed.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    timeout: u64,
    #[command(flatten)]
    serve: super::serve::ServeFlags,
    #[command(flatten)]
    flags: super::ImageFlags,
    /// Replaces the image's Cmd (its Entrypoint is kept), as `docker run IMAGE CMD` does. Default:
    /// the image's Entrypoint + Cmd. Required for a manifest, which has no image configuration.
    #[arg(last = true, value_name = "CMD")]
    cmd: Vec<String>,
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// The image to read files of (OCI layout, OCI archive or docker archive).
    #[arg(long)]
    image: String,
    /// Where to write the trace (`.zst` compresses; must not exist unless --force).
    #[arg(short, long, value_name = "TRACE")]
    output: PathBuf,
    /// Replace an existing -o file.
    #[arg(long)]
    force: bool,
    /// Seed (decimal or 0x-hex).
    #[arg(long, default_value_t = Seed(chunkload::sim::rng::DEFAULT_SEED))]
    seed: Seed,
    /// Share of the image's live file bytes the start reads, above 0 and at most 1 (the paper
    /// cites 6.4% from Slacker).
    #[arg(long, default_value = "0.064")]
    read_share: Fraction,
    /// Threads to spread the accesses over (1 to 4096).
    #[arg(long, default_value = "1")]
    threads: Count<1, 4096>,
    #[command(flatten)]
    flags: super::ImageFlags,
}

#[derive(Debug, Args)]
struct MapArgs {
    /// A trace file (JSON lines; `.zst` is decompressed).
    trace: PathBuf,
    /// The image the trace was recorded in (OCI layout, OCI archive or docker archive).
    #[arg(long)]
    image: String,
    /// Chunk size to count chunks in.
    #[arg(long, default_value = "512KiB")]
    chunk_size: ChunkSize,
    /// What an mmap reads: whole, ignore or fraction:F.
    #[arg(long, default_value = "whole")]
    mmap: MmapRule,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    flags: super::ImageFlags,
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// A trace file (JSON lines; `.zst` is decompressed).
    trace: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Output of `strace -f -tt -y -e trace=openat,read,pread64,mmap,lseek,close,chroot -o FILE chroot ROOT CMD`.
    strace_out: PathBuf,
    /// The host directory the program was chrooted into; stripped from paths, others are dropped.
    #[arg(long, value_name = "PREFIX")]
    root: PathBuf,
    /// The traced command, recorded in the trace header.
    #[arg(long, default_value = "")]
    command: String,
    /// Where to write the trace (`.zst` compresses; must not exist unless --force).
    #[arg(short, long, value_name = "TRACE")]
    output: PathBuf,
    /// Replace an existing -o file.
    #[arg(long)]
    force: bool,
    /// Print the import summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TraceArgs) -> Result<()> {
    match args.command {
        TraceCommand::Stats(args) => stats(args),
        TraceCommand::ImportStrace(args) => import(args),
        TraceCommand::Map(args) => map(args),
        TraceCommand::Synth(args) => synth(args),
        TraceCommand::Record(args) => record(*args),
    }
}

/// The image behind `trace record` and its configuration: a manifest in a store (no
/// configuration), or an image converted into memory.
fn open_source(args: &RecordArgs) -> Result<(Mountable, Option<chunkload::image::spec::ProcessConfig>)> {
    if let (Some(store), Some(key)) = (&args.store, &args.key) {
        let flags =
            super::ManifestFlags { manifest: args.source.clone(), store: store.clone(), key: key.clone() };
        return Ok((flags.open_for_mount()?, None));
    }
    super::common::sniff_image(&args.source)?;
    let image = Image::open(&args.source, &args.flags.options())?;
    let config = image.config.config.clone().unwrap_or_default();
    let label = image.reference.clone();
    let (opened, store) = Opened::convert_image(image, &ConvertOptions::in_memory())?;
    Ok((opened.into_mountable(Arc::new(store), label), Some(config)))
}

fn record(args: RecordArgs) -> Result<()> {
    if args.timeout == 0 {
        anyhow::bail!("--timeout must be at least 1 second");
    }
    let source = output::image_path(&args.source);
    let mut inputs: Vec<output::Input> = vec![("source", &source)];
    if let (Some(store), Some(key)) = (&args.store, &args.key) {
        inputs.extend([(output::STORE, store.as_path()), ("--key file", key.as_path())]);
    }
    output::check_file("-o", &args.output, &inputs, args.force)?;
    if args.force && args.output.exists() {
        std::fs::remove_file(&args.output)
            .with_context(|| format!("cannot replace {}", args.output.display()))?;
    }
    let (opened, config) = open_source(&args)?;
    let signals = Signals::new().context("installing signal handlers")?;
    let (options, latency, _temp_cache) = args.serve.options(&opened.label, false, false)?;
    let spec = RecordSpec {
        output: args.output.clone(),
        label: args.command.clone(),
        cmd: args.cmd.clone(),
        env: args.env.clone(),
        limits: Limits {
            memory: args.memory,
            processes: args.pids,
            wall_time: std::time::Duration::from_secs(args.timeout),
        },
        network: args.network,
    };
    let rec = run::record(opened, config.as_ref(), &options, latency, &spec, &|| signals.received())?;
    eprint!("{}", rec.report);
    println!(
        "recorded {} records of `{}` to {}",
        rec.report.recorded.unwrap_or(0),
        rec.command,
        args.output.display()
    );
    if !rec.outcome.success() {
        anyhow::bail!("{}; the trace of its run is in {}", rec.failure(&spec.limits), args.output.display());
    }
    Ok(())
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn synth(args: SynthArgs) -> Result<()> {
    if args.read_share.get() == 0.0 {
        anyhow::bail!("--read-share 0: a start that reads nothing has no trace; give a share above 0");
    }
    let image_path = output::image_path(&args.image);
    output::check_file("-o", &args.output, &[("--image", &image_path)], args.force)?;
    super::common::sniff_image(&args.image)?;
    let image = Image::open(&args.image, &args.flags.options())?;
    let flat = flatten::flatten(&image)?;
    let opts = SynthOptions {
        seed: args.seed.0,
        read_share: args.read_share.get(),
        threads: args.threads.get() as u32,
        ..SynthOptions::default()
    };
    let s = synthesize(&flat, &image.digest().to_string(), &opts);
    let staged = output::Staged::beside(&args.output);
    let mut w = Writer::create(staged.path(), &s.header)?;
    for r in &s.records {
        w.write(r)?;
    }
    w.finish()?;
    staged.commit(output::PUBLIC)?;
    println!(
        "wrote {} records to {} (seed {}): {} read of {} live file bytes ({:.2}%)",
        s.records.len(),
        args.output.display(),
        args.seed,
        ByteSize(s.bytes_read),
        ByteSize(s.live_bytes),
        100.0 * s.bytes_read as f64 / s.live_bytes.max(1) as f64
    );
    Ok(())
}

fn map(args: MapArgs) -> Result<()> {
    super::common::sniff_image(&args.image)?;
    let records = super::common::read_trace(&args.trace)?;
    let image = Image::open(&args.image, &args.flags.options())?;
    let flat = flatten::flatten(&image)?;
    let layout = BlockLayout::new(&flat);
    let meta = BlockMeta::new(layout.superblock, layout.meta.clone())?;
    let subject = MapSubject {
        trace: args.trace.display().to_string(),
        image: image.reference.clone(),
        records: records.len(),
        mmap_rule: args.mmap,
    };
    super::common::check_trace_fit(&args.trace, &args.image, &meta, &records, false)?;
    let map = map_trace(&meta, records, args.mmap);
    let sizes = ImageSizes {
        chunk_size: args.chunk_size.bytes(),
        image_bytes: layout.image_size(),
        live_file_bytes: flat.summary.total_bytes,
    };
    let footprint = TraceFootprint::measure(subject, &map, sizes);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&footprint)?);
    } else {
        print!("{footprint}");
    }
    Ok(())
}

fn stats(args: StatsArgs) -> Result<()> {
    chunkload::sniff::expect(&args.trace, chunkload::sniff::Want::Trace)?;
    let reader = Reader::open(&args.trace)?;
    let header = reader.header().clone();
    let stats = TraceStats::from_records(&header, reader)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{stats}");
    }
    Ok(())
}

fn import(args: ImportArgs) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let label = args.strace_out.display().to_string();
    output::check_file("-o", &args.output, &[("strace output", &args.strace_out)], args.force)?;
    chunkload::sniff::expect(&args.strace_out, chunkload::sniff::Want::Strace)?;
    let input = File::open(&args.strace_out).with_context(|| format!("cannot open {label}"))?;
    let opts = ImportOptions { root: args.root.as_os_str().as_bytes().to_vec(), command: args.command };
    let imported = strace::import(BufReader::new(input), &label, &opts)?;
    let staged = output::Staged::beside(&args.output);
    let mut writer = Writer::create(staged.path(), &imported.header)?;
    for r in &imported.records {
        writer.write(r)?;
    }
    writer.finish()?;
    staged.commit(output::PUBLIC)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&imported.summary)?);
    } else {
        print!("{}", imported.summary);
        println!("wrote {}", args.output.display());
    }
    Ok(())
}
