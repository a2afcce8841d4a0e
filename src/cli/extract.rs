use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use chunkload::flatten::{self, LayerContent};
use chunkload::image::Image;
use chunkload::rootfs;
use chunkload::units::ByteSize;

use super::ImageFlags;

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// OCI layout DIR[:TAG], OCI archive FILE[:TAG] or docker archive FILE[:REPO:TAG].
    image: String,
    /// Destination directory: created; if it exists it must be empty.
    dest: PathBuf,
    /// Print nothing on success.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: ExtractArgs) -> Result<()> {
    let start = Instant::now();
    let image = Image::open(&args.image, &args.flags.options())?;
    let flat = flatten::flatten(&image)?;
    let report = rootfs::extract(&flat.tree, &LayerContent { image: &image }, &args.dest)?;
    if !args.quiet {
        println!(
            "extracted {} into {}: {} files ({}), {} dirs, {} symlinks, {} hard links, {} devices in {:.2}s",
            image.reference,
            args.dest.display(),
            report.files,
            ByteSize(report.bytes),
            report.dirs,
            report.symlinks,
            report.hardlinks,
            report.devices,
            start.elapsed().as_secs_f64()
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
    Ok(())
}
