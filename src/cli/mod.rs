//! The command line: parses flags into the library's options, runs one command, prints its report.
//! `anyhow` lives here only; the library's errors carry the detail.

mod common;
mod convert;
mod dedup;
mod demo;
mod explain;
mod extract;
mod inspect;
mod keygen;
mod manifest;
mod materialize;
mod merge;
mod mount;
mod replay;
mod simulate;
mod sweep;
mod trace;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use std::path::PathBuf;

use chunkload::chunk::ChunkedImage;
use chunkload::crypto::{CustomerKey, Manifest};
use chunkload::image::{OpenOptions, spec::Platform};
use chunkload::store::{ChunkStore, DirStore, ManifestName};
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
    /// Run the whole pipeline over the images in images/: layers, chunks and dedup, one start
    /// replayed cold and warm against a zip and a full pull; writes its data and charts to a folder.
    Demo(demo::DemoArgs),
    /// Show an image's layers and what flattening them does.
    Inspect(inspect::InspectArgs),
    /// Write an image's flattened root filesystem into a directory.
    Extract(extract::ExtractArgs),
    /// Cut an image into convergently encrypted chunks in a store and write its sealed manifest.
    Convert(convert::ConvertArgs),
    /// Rebuild an image's block image from its manifest and store, checking every chunk.
    Materialize(materialize::MaterializeArgs),
    /// Deduplication across the manifests of a chunk store: unique chunks per image, savings, eCDF.
    Dedup(dedup::DedupArgs),
    /// Read sealed manifests.
    Manifest(manifest::ManifestArgs),
    /// Write a new customer key file (mode 0600; never overwrites).
    Keygen(keygen::KeygenArgs),
    /// Read, summarise and import file-access traces.
    Trace(trace::TraceArgs),
    /// Replay one start's trace through the worker cache, the AZ cache and S3 in simulated time.
    Replay(replay::ReplayArgs),
    /// Run an experiment over a grid of scenario overrides, in parallel or one shard at a time.
    Sweep(sweep::SweepArgs),
    /// Join the shard files of a sweep into the outputs of one unsharded run.
    Merge(merge::MergeArgs),
    /// Mount a converted image read-only with FUSE, loading chunks on demand (real mode).
    Mount(mount::MountArgs),
    /// Tell one cold start step by step: layers, block image, chunks, each read down to the tier.
    Explain(explain::ExplainArgs),
    /// Simulate a fleet (workers, AZ cache, S3) over many functions and cold starts.
    Simulate(simulate::SimulateArgs),
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

/// Flags that name a converted image: its sealed manifest, the store and the customer key.
#[derive(Debug, Clone, Args)]
pub struct ManifestFlags {
    /// A sealed manifest file, or the name of a manifest in the store.
    pub manifest: String,
    /// Chunk store directory.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Customer key file that sealed the manifest.
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
}

impl ManifestFlags {
    pub fn open_store(&self) -> anyhow::Result<DirStore> {
        common::open_existing_store(&self.store)
    }

    /// Opens (authenticates and decrypts) the manifest and pairs it with the store.
    pub fn open<'s>(&self, store: &'s DirStore) -> anyhow::Result<ChunkedImage<'s>> {
        use anyhow::Context;
        let key = CustomerKey::load(&self.key)?;
        let bytes = if std::path::Path::new(&self.manifest).is_file() {
            std::fs::read(&self.manifest).with_context(|| format!("cannot read {}", self.manifest))?
        } else {
            let name: ManifestName = self.manifest.parse()?;
            store.get_manifest(&name)?
        };
        let manifest = Manifest::open(&bytes, &key).with_context(|| format!("manifest {}", self.manifest))?;
        Ok(ChunkedImage { manifest, store })
    }
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s)
        .ok_or_else(|| format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Extract(args) => extract::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Materialize(args) => materialize::run(args),
        Command::Dedup(args) => dedup::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Mount(args) => mount::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Simulate(args) => simulate::run(args),
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
