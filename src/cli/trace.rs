use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use chunkload::trace::strace::{self, ImportOptions};
use chunkload::trace::{Reader, TraceStats, Writer};

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
    /// Output of `strace -f -tt -y -e trace=openat,read,pread64,mmap,lseek,close -o FILE chroot ROOT CMD`.
    strace_out: PathBuf,
    /// The host directory the program was chrooted into; stripped from paths, others are dropped.
    #[arg(long, value_name = "PREFIX")]
    root: PathBuf,
    /// The traced command, recorded in the trace header.
    #[arg(long, default_value = "")]
    command: String,
    /// Where to write the trace (`.zst` compresses).
    #[arg(short, long, value_name = "TRACE")]
    output: PathBuf,
    /// Print the import summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TraceArgs) -> Result<()> {
    match args.command {
        TraceCommand::Stats(args) => stats(args),
        TraceCommand::ImportStrace(args) => import(args),
    }
}

fn stats(args: StatsArgs) -> Result<()> {
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
    let input = File::open(&args.strace_out).with_context(|| format!("cannot open {label}"))?;
    let opts = ImportOptions { root: args.root.as_os_str().as_bytes().to_vec(), command: args.command };
    let imported = strace::import(BufReader::new(input), &label, &opts)?;
    let mut writer = Writer::create(&args.output, &imported.header)?;
    for r in &imported.records {
        writer.write(r)?;
    }
    writer.finish()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&imported.summary)?);
    } else {
        print!("{}", imported.summary);
        println!("wrote {}", args.output.display());
    }
    Ok(())
}
