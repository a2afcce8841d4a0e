//! The command line: parses flags into the library's options, runs one command, prints its report.
//! `anyhow` lives here only; the library's errors carry the detail.

mod cachesim;
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
mod output;
mod progress;
mod replay;
mod serve;
mod simulate;
mod store;
mod sweep;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// A chunk store's lifecycle: generational roots, copy-forward, verify, garbage collection.
    Store(store::StoreArgs),
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
    /// Run every eviction policy and Belady over a request trace (libCacheSim's oracleGeneral or
    /// CSV) at many cache sizes: miss ratios, byte miss ratios, a miss-ratio curve.
    Cachesim(cachesim::CachesimArgs),
}

// The shared flags live in `common`; re-exported for the commands that name them here.
pub use common::{ImageFlags, ManifestFlags};

/// An error and its causes, one line each; a cause whose text is already in the line above it
/// (a wrapper that quotes its source) is not printed again.
fn describe_error(e: &anyhow::Error) -> String {
    let mut out = format!("error: {e}\n");
    let mut above = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !above.contains(text.trim()) {
            out.push_str(&format!("  caused by: {text}\n"));
        }
        above = text;
    }
    out
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A crypto kernel forced (CHUNKLOAD_CRYPTO_PATH) that this CPU cannot run is refused up front.
    if let Err(e) = chunkload::crypto::CryptoPath::active() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Extract(args) => extract::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Materialize(args) => materialize::run(args),
        Command::Dedup(args) => dedup::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Store(args) => store::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Mount(args) => mount::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Cachesim(args) => cachesim::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", describe_error(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe_error;

    #[test]
    fn a_cause_already_quoted_above_is_printed_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(inner).context("cannot read x: no such file");
        assert_eq!(describe_error(&e), "error: cannot read x: no such file\n");
        let e = anyhow::anyhow!("disk full").context("cannot write y");
        assert_eq!(describe_error(&e), "error: cannot write y\n  caused by: disk full\n");
    }
}
