use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use chunkload::crypto::{Manifest, ManifestPublic};
use chunkload::report::manifest::{Authenticity, ManifestReport};
use chunkload::store::{ChunkStore, DirStore, ManifestName};

use super::common::open_store;

#[derive(Debug, Args)]
pub struct ManifestArgs {
    #[command(subcommand)]
    command: ManifestCommand,
}

#[derive(Debug, Subcommand)]
enum ManifestCommand {
    /// Show a sealed manifest's header and chunk list; needs no key (as garbage collection reads it).
    Show(ShowArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// A manifest file, or with --store the manifest's name in that store.
    manifest: String,
    /// Read MANIFEST as a name in this chunk store directory.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Customer key file: verify the manifest's authentication tag (keys are never printed).
    #[arg(long, value_name = "KEYFILE")]
    key: Option<PathBuf>,
    /// List every stored chunk: index, offset, length, name, plaintext SHA-256.
    #[arg(long)]
    chunks: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ManifestArgs) -> Result<()> {
    match args.command {
        ManifestCommand::Show(args) => show(args),
    }
}

fn show(args: ShowArgs) -> Result<()> {
    let (label, bytes) = match &args.store {
        Some(dir) => {
            let store: DirStore = open_store(dir)?;
            let name = ManifestName::new(args.manifest.as_str())?;
            (format!("{}:{name}", dir.display()), store.get_manifest(&name)?)
        }
        None => {
            super::common::sniff_manifest(&args.manifest)?;
            let bytes =
                std::fs::read(&args.manifest).with_context(|| format!("cannot read {}", args.manifest))?;
            (args.manifest.clone(), bytes)
        }
    };
    let (public, authenticity) = match &args.key {
        None => (ManifestPublic::parse(&bytes).with_context(|| label.clone())?, Authenticity::NotVerified),
        Some(keyfile) => {
            let key = super::common::load_key(keyfile)?;
            let m = Manifest::open(&bytes, &key).with_context(|| {
                format!("{label}: does not verify under the key in {}", keyfile.display())
            })?;
            (m.public(), Authenticity::Authenticated)
        }
    };
    let report = ManifestReport::new(label, bytes.len() as u64, &public, authenticity, args.chunks);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
