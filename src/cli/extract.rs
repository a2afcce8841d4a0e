use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;

use chunkload::chunk::ChunkContent;
use chunkload::flatten;
use chunkload::image::Image;
use chunkload::rootfs::LayerContent;
use chunkload::rootfs::{self, ExtractReport};
use chunkload::units::{ByteSize, plural};

use super::{ImageFlags, ManifestFlags};

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// OCI layout DIR[:TAG], OCI archive FILE[:TAG] or docker archive FILE[:REPO:TAG]; with
    /// --store and --key, a sealed manifest (file, or name in the store) instead.
    image: String,
    /// Destination directory: created; if it exists it must be empty.
    dest: PathBuf,
    /// Read IMAGE as a manifest whose chunks are in this store.
    #[arg(long, value_name = "DIR", requires = "key")]
    store: Option<PathBuf>,
    /// Customer key file for the manifest.
    #[arg(long, value_name = "KEYFILE", requires = "store")]
    key: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: ExtractArgs) -> Result<()> {
    let start = Instant::now();
    let image_path = super::output::image_path(&args.image);
    let mut inputs: Vec<super::output::Input> = vec![("image", &image_path)];
    if let (Some(store), Some(key)) = (&args.store, &args.key) {
        inputs.extend([(super::output::STORE, store.as_path()), ("--key file", key.as_path())]);
    }
    super::output::check_dir("DEST", &args.dest, &inputs, false)?;
    let report = match (&args.store, &args.key) {
        (Some(store), Some(key)) => {
            let flags =
                ManifestFlags { manifest: args.image.clone(), store: store.clone(), key: key.clone() };
            let store = flags.open_store()?;
            let image = flags.open(&store)?;
            let (_, tree) = image.tree()?;
            rootfs::extract(&tree, &ChunkContent { image: &image }, &args.dest)?
        }
        (None, None) => {
            super::common::sniff_image(&args.image)?;
            let image = Image::open(&args.image, &args.flags.options())?;
            let flat = flatten::flatten(&image)?;
            rootfs::extract(&flat.tree, &LayerContent { image: &image }, &args.dest)?
        }
        _ => bail!("--store and --key go together"),
    };
    if !args.quiet {
        print_report(&args, &report, start.elapsed().as_secs_f64());
    }
    Ok(())
}

fn print_report(args: &ExtractArgs, report: &ExtractReport, seconds: f64) {
    println!(
        "extracted {} into {}: {} ({}), {}, {}, {}, {} in {seconds:.2}s",
        args.image,
        args.dest.display(),
        plural(report.files, "file", "files"),
        ByteSize(report.bytes),
        plural(report.dirs, "dir", "dirs"),
        plural(report.symlinks, "symlink", "symlinks"),
        plural(report.hardlinks, "hard link", "hard links"),
        plural(report.devices, "device", "devices"),
    );
    if report.skipped_devices > 0 {
        println!("note: {} device nodes skipped (not running as root)", report.skipped_devices);
    }
    if report.skipped_xattrs > 0 {
        println!(
            "note: {} extended attributes refused by the filesystem or privileges",
            report.skipped_xattrs
        );
    }
    if !report.ownership {
        println!("note: ownership not applied (not running as root)");
    }
}
