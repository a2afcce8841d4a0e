use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use chunkload::units::ByteSize;

use super::ManifestFlags;

#[derive(Debug, Args)]
pub struct MaterializeArgs {
    #[command(flatten)]
    manifest: ManifestFlags,
    /// Where to write the block image (written beside it, renamed when complete; must not exist
    /// unless --force).
    #[arg(short, long, value_name = "IMAGE.img")]
    output: PathBuf,
    /// Replace an existing -o file.
    #[arg(long)]
    force: bool,
}

pub fn run(args: MaterializeArgs) -> Result<()> {
    let manifest = PathBuf::from(&args.manifest.manifest);
    super::output::check_file(
        "-o",
        &args.output,
        &[
            ("manifest", &manifest),
            (super::output::STORE, &args.manifest.store),
            ("--key file", &args.manifest.key),
        ],
        args.force,
    )?;
    let store = args.manifest.open_store()?;
    let image = args.manifest.open(&store)?;
    let start = std::time::Instant::now();
    image.materialize(&args.output)?;
    println!(
        "materialized {} ({}) into {} in {:.2}s: every chunk checked against its name and plaintext hash",
        args.manifest.manifest,
        ByteSize(image.image_size()),
        args.output.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
