//! The command line: parses flags into the library's options, runs one command, prints its report.
//! `anyhow` lives here only; the library's errors carry the detail.

mod dedup;
mod extract;
mod inspect;
mod keygen;
mod manifest;
mod trace;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use chunkload::image::{OpenOptions, spec::Platform};
use chunkload::units::ByteSize;

#[derive(Debug, Parser)]
#[command(
    name = "chunkload",
    version,
    about = "Model how AWS Lambda loads container images: flatten, chunk, cache, replay."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show an image's layers and what flattening them does.
    Inspect(inspect::InspectArgs),
    /// Write an image's flattened root filesystem into a directory.
    Extract(extract::ExtractArgs),
    /// Deduplication across the manifests of a chunk store: unique chunks per image, savings, eCDF.
    Dedup(dedup::DedupArgs),
    /// Read sealed manifests.
    Manifest(manifest::ManifestArgs),
    /// Write a new customer key file (mode 0600; never overwrites).
    Keygen(keygen::KeygenArgs),
    /// Read, summarise and import file-access traces.
    Trace(trace::TraceArgs),
}

/// Flags every command that opens an image shares.
#[derive(Debug, Clone, Args)]
pub struct ImageFlags {
    /// Platform to pick from a multi-platform index (os/arch[/variant]).
    #[arg(long, default_value = "linux/amd64", value_parser = parse_platform)]
    pub platform: Platform,
    /// Refuse images whose layers decompress to more than this in total (decompression-bomb guard;
    /// Lambda's image limit is 10 GiB).
    #[arg(long, default_value = "10GiB")]
    pub max_uncompressed: ByteSize,
}

impl ImageFlags {
    pub fn options(&self) -> OpenOptions {
        OpenOptions { platform: self.platform.clone(), max_uncompressed: self.max_uncompressed }
    }
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s)
        .ok_or_else(|| format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Extract(args) => extract::run(args),
        Command::Dedup(args) => dedup::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Trace(args) => trace::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
