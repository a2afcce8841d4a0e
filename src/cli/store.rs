use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use chunkload::crypto::CustomerKey;
use chunkload::store::{DirStore, copy_forward, gc, roots, verify};
use chunkload::units::ByteSize;

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// List the generational roots: state, manifests, chunks and bytes each holds.
    Roots {
        #[command(flatten)]
        store: StoreFlag,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start a new active root; the old one is retired (read-only, to be copied forward).
    Rotate {
        #[command(flatten)]
        store: StoreFlag,
    },
    /// Re-encrypt the manifests of retired and expired roots under the active root.
    CopyForward {
        #[command(flatten)]
        store: StoreFlag,
        /// Customer key files of the manifests to move (repeatable); others are skipped and listed.
        #[arg(long = "key", value_name = "KEYFILE", required = true)]
        keys: Vec<PathBuf>,
        /// Only this root's manifests.
        #[arg(long, value_name = "ROOT")]
        from: Option<u32>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a retired root to expired: reads still work, and are reported.
    Expire {
        /// The root's number (see `store roots`).
        root: u32,
        #[command(flatten)]
        store: StoreFlag,
    },
    /// Move an expired root to deleted; refused while any manifest belongs to it.
    Delete {
        /// The root's number (see `store roots`).
        root: u32,
        #[command(flatten)]
        store: StoreFlag,
    },
    /// Check every chunk against its name and every manifest's chunks against the store.
    Verify {
        #[command(flatten)]
        store: StoreFlag,
        /// Also decrypt each chunk with its manifest's key and check the plaintext digest.
        #[arg(long, requires = "keys")]
        deep: bool,
        /// Customer key files for --deep (repeatable).
        #[arg(long = "key", value_name = "KEYFILE")]
        keys: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove temporary files left by crashed writers and, on request, unreferenced chunks.
    Gc {
        #[command(flatten)]
        store: StoreFlag,
        /// Also remove chunks that no manifest of a live root references.
        #[arg(long)]
        unreferenced: bool,
        /// Show what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct StoreFlag {
    /// Chunk store directory.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
}

impl StoreFlag {
    /// Opens an existing store (a mistyped path must not become a new empty store).
    fn open(&self) -> Result<DirStore> {
        if !self.store.join("manifests").is_dir() {
            bail!("{} is not a chunk store (it has no manifests/ directory)", self.store.display());
        }
        Ok(DirStore::open(&self.store)?)
    }
}

fn load_keys(paths: &[PathBuf]) -> Result<Vec<CustomerKey>> {
    paths.iter().map(|p| super::common::load_key(p)).collect::<Result<_>>()
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn run(args: StoreArgs) -> Result<()> {
    match args.command {
        StoreCommand::Roots { store, json } => {
            let r = roots::summarize(&store.open()?)?;
            if json {
                return print_json(&r);
            }
            println!("root  state    manifests  chunks  bytes");
            for s in &r.roots {
                let mark = if s.root == r.active { " (new manifests go here)" } else { "" };
                println!(
                    "{:<5} {:<8} {:>9}  {:>6}  {}{mark}",
                    s.root,
                    s.state,
                    s.manifests,
                    s.chunks,
                    ByteSize(s.bytes)
                );
                for m in &s.alarms {
                    println!("      alarm: manifest {m} is still on this {} root", s.state);
                }
            }
            for (m, why) in &r.unreadable {
                println!("unreadable manifest {m}: {why}");
            }
            println!("on disk: {} chunk files, {}", r.chunk_files, ByteSize(r.chunk_bytes));
            println!(
                "rotating now: copy-forward re-uploads {} chunks, {}; the store holds both copies until the old root is deleted",
                r.rotation_reupload_chunks,
                ByteSize(r.rotation_reupload_bytes)
            );
        }
        StoreCommand::Rotate { store } => {
            let (old, new) = roots::rotate(&store.open()?)?;
            println!("root {new} is active; root {old} is retired (copy its manifests forward next)");
        }
        StoreCommand::CopyForward { store, keys, from, json } => {
            let r = copy_forward::copy_forward(&store.open()?, &load_keys(&keys)?, from)?;
            if json {
                print_json(&r)?;
            } else {
                for m in &r.moved {
                    println!(
                        "moved {} from root {} to {}: {} chunks, {} new, {} written",
                        m.manifest,
                        m.from_root,
                        m.salt,
                        m.chunks,
                        m.chunks_new,
                        ByteSize(m.bytes_written)
                    );
                }
                for m in &r.skipped_no_key {
                    println!("skipped {m}: none of the given keys opens it");
                }
                for (m, why) in &r.failed {
                    println!("left {m} where it is: {why}");
                }
                println!(
                    "{} manifests moved to root {} ({} written), {} already there",
                    r.moved.len(),
                    r.to_root,
                    ByteSize(r.bytes_written()),
                    r.already_current
                );
            }
            if !r.complete() {
                bail!(
                    "{} manifests were not moved (no key: {}, damaged: {})",
                    r.skipped_no_key.len() + r.failed.len(),
                    r.skipped_no_key.len(),
                    r.failed.len()
                );
            }
        }
        StoreCommand::Expire { root, store } => {
            roots::expire(&store.open()?, root)?;
            println!(
                "root {root} is expired: reads of its manifests are reported; delete it when none is left"
            );
        }
        StoreCommand::Delete { root, store } => {
            roots::delete(&store.open()?, root)?;
            println!("root {root} is deleted; `store gc --unreferenced` reclaims its chunks");
        }
        StoreCommand::Verify { store, deep, keys, json } => {
            let keys = if deep { load_keys(&keys)? } else { Vec::new() };
            let r = verify::verify(&store.open()?, &keys, &progress_bar("verify"))?;
            if json {
                print_json(&r)?;
            } else {
                print_verify(&r, deep);
            }
            if !r.is_clean() {
                bail!("{} problem(s) in {}", r.problems.len(), store.store.display());
            }
        }
        StoreCommand::Gc { store, unreferenced, dry_run, json } => {
            let r = gc::gc(&store.open()?, gc::GcOptions { unreferenced, dry_run })?;
            if json {
                return print_json(&r);
            }
            let verb = if dry_run { "would remove" } else { "removed" };
            for (p, b) in &r.temp_files {
                println!("{verb} temporary file {} ({})", short(p), ByteSize(*b));
            }
            for (c, b) in &r.chunks {
                println!("{verb} unreferenced chunk {c} ({})", ByteSize(*b));
            }
            println!(
                "{verb} {} temporary files and {} unreferenced chunks: {} freed{}",
                r.temp_files.len(),
                r.chunks.len(),
                ByteSize(r.bytes_freed()),
                if unreferenced {
                    format!("; {} referenced chunks kept", r.chunks_kept)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

fn print_verify(r: &verify::VerifyReport, deep: bool) {
    println!(
        "checked {} chunk files ({}) and {} manifests ({} chunk references)",
        r.chunks_checked,
        ByteSize(r.chunk_bytes_checked),
        r.manifests_checked,
        r.chunk_refs_checked
    );
    if deep {
        println!("  deep: opened {} chunks", r.chunks_opened);
        for m in &r.manifests_without_key {
            println!("  deep: manifest {m} not opened (none of the given keys opens it)");
        }
    }
    if !r.temp_files.is_empty() {
        let bytes: u64 = r.temp_files.iter().map(|(_, b)| b).sum();
        println!(
            "  {} temporary files ({}) in tmp/, from crashed or running writers: `store gc` removes them",
            r.temp_files.len(),
            ByteSize(bytes)
        );
    }
    for p in &r.problems {
        println!("problem: {p}");
    }
    if r.problems.is_empty() {
        println!("no problems");
    }
}

fn short(path: &str) -> String {
    Path::new(path).file_name().map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

fn progress_bar(prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} chunks, {elapsed} elapsed, ~{eta} left",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}
