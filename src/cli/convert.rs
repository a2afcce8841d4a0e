use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use chunkload::chunk::{self, ChunkSize, ConvertOptions, ConvertProgress};
use chunkload::crypto::Salt;
use chunkload::flatten;
use chunkload::image::Image;
use chunkload::store::roots::RootTable;
use chunkload::store::{ChunkStore, DirStore, ManifestName};
use chunkload::units::ByteSize;

use super::ImageFlags;
use super::output;
use super::progress::Progress;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// OCI layout DIR[:TAG], OCI archive FILE[:TAG] or docker archive FILE[:REPO:TAG].
    image: String,
    /// Chunk store directory (created if missing).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Customer key file (from `chunkload keygen`): seals the manifest's key table.
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Salt label to use instead of the store's active root (its root must be the active one).
    /// Chunks under different salts never deduplicate.
    #[arg(long, conflicts_with_all = ["placement", "class"])]
    salt: Option<Salt>,
    /// Placement (e.g. an AZ) mixed into the active root's salt: root-N/at-PLACEMENT.
    #[arg(long)]
    placement: Option<String>,
    /// Popularity class mixed into the active root's salt: root-N[/at-P]/pop-CLASS.
    #[arg(long)]
    class: Option<String>,
    /// Chunk size: a power of two from 4KiB to 16MiB.
    #[arg(long, default_value = "512KiB")]
    chunk_size: ChunkSize,
    /// Where to write the sealed manifest (must not exist unless --force; never one of the inputs).
    #[arg(short, long, value_name = "MANIFEST")]
    output: PathBuf,
    /// Replace an existing -o file.
    #[arg(long)]
    force: bool,
    /// Name to store the manifest under in the store (default: the output file's name).
    #[arg(long)]
    name: Option<ManifestName>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let image_path = output::image_path(&args.image);
    output::check_file(
        "-o",
        &args.output,
        &[("--key file", &args.key), ("image", &image_path), (output::STORE, &args.store)],
        args.force,
    )?;
    let key = super::common::load_key(&args.key)?;
    super::common::sniff_image(&args.image)?;
    if args.store.exists() && std::fs::read_dir(&args.store).map(|mut d| d.next().is_some()).unwrap_or(true) {
        chunkload::sniff::expect(&args.store, chunkload::sniff::Want::ChunkStore)?;
    }
    let name = match args.name {
        Some(n) => n,
        None => default_name(&args.output)?,
    };
    let started = std::time::Instant::now();
    let image = Image::open(&args.image, &args.flags.options())?;
    // Every chunk is made durable before it is published under its name: a crash can then never
    // leave a torn chunk that a later convert would take as present.
    let store = DirStore::open(&args.store)?;
    // Held shared until the manifest is published, so `store gc` cannot run in between.
    let _lock = store.lock_shared()?;
    let roots = RootTable::load(&store)?;
    let salt = match args.salt {
        Some(salt) => {
            roots.check_writable(&salt)?;
            salt
        }
        None => roots.salt_for_new(args.placement.as_deref(), args.class.as_deref())?,
    };
    // Flattening keeps each decoded layer in an anonymous file in the store's scratch directory, so
    // cutting the block image reads those back instead of decoding every layer a second time.
    let flat = flatten::flatten_spooled(&image, &store.scratch_dir())?;
    let flattened = started.elapsed().as_secs_f64();
    let options = ConvertOptions { chunk_size: args.chunk_size, salt: salt.clone() };
    let bar = Progress::new("convert", "chunks", args.quiet);
    let converted = chunk::convert_with_progress(&image, &flat, &options, &store, &|p| match p {
        ConvertProgress::Total(n) => bar.set_total(n),
        ConvertProgress::Done(n) => bar.inc(n),
    })?;
    bar.finish();
    drop(flat);
    let sealed = converted.manifest.seal(&key);
    // Published in the store first: an interruption between the two leaves no -o file that a
    // re-run would have to --force over.
    store.put_manifest(&name, &sealed)?;
    output::write_file(&args.output, &sealed, output::PUBLIC)?;
    let total = started.elapsed().as_secs_f64();
    let s = &converted.stats;
    if args.json {
        let out = serde_json::json!({
            "image": image.reference, "digest": image.digest().to_string(), "salt": salt.label(),
            "manifest": args.output, "manifest_name": name.as_str(), "manifest_bytes": sealed.len(),
            "stats": s, "throughput_bytes_per_s": s.throughput(),
            "seconds_read_and_flatten": flattened, "seconds_total": total,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "converted {} ({}) with salt {:?}, chunk size {}",
        image.reference,
        image.digest(),
        salt.label(),
        args.chunk_size
    );
    println!("  block image   {} ({} bytes)", ByteSize(s.image_bytes), s.image_bytes);
    println!(
        "  chunks        {} total: {} new, {} already present, {} zero (holes)",
        s.chunks_total, s.chunks_new, s.chunks_present, s.chunks_zero
    );
    println!("  written       {} to {}", ByteSize(s.bytes_written), args.store.display());
    println!(
        "  manifest      {} ({} bytes, {:.1} B/chunk), stored as {}",
        args.output.display(),
        sealed.len(),
        sealed.len() as f64 / (s.chunks_new + s.chunks_present).max(1) as f64,
        name
    );
    println!(
        "  time          {total:.2}s in all: read and flatten {flattened:.2}s, chunk, encrypt and store {:.2}s ({}/s)",
        s.seconds,
        ByteSize(s.throughput() as u64)
    );
    Ok(())
}

/// The output file's name, restricted to what a manifest name may hold.
fn default_name(output: &std::path::Path) -> Result<ManifestName> {
    let stem = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let cleaned: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    ManifestName::new(cleaned.trim_start_matches('.'))
        .context("cannot derive a manifest name from -o; pass --name")
}
