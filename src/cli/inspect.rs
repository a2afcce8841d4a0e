use anyhow::Result;
use clap::Args;

use chunkload::flatten;
use chunkload::image::Image;
use chunkload::report::inspect::InspectReport;

use super::ImageFlags;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// OCI layout DIR[:TAG], OCI archive FILE[:TAG] or docker archive FILE[:REPO:TAG].
    image: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: InspectArgs) -> Result<()> {
    super::common::sniff_image(&args.image)?;
    let image = Image::open(&args.image, &args.flags.options())?;
    let flat = flatten::flatten(&image)?;
    let report = InspectReport::new(&image, &flat);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
