use std::fs::{self, File};
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use chunkload::report::dedup::{DedupReport, RotationCost};
use chunkload::store::ManifestName;

use super::common::open_store;

#[derive(Debug, Args)]
pub struct DedupArgs {
    /// Chunk store directory (with manifests/ and chunks/).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Only these manifests, in this upload order (repeatable). Default: all, in name order.
    #[arg(long = "manifest", value_name = "NAME")]
    manifests: Vec<ManifestName>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write dedup-images.csv and dedup-ecdf.csv into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    csv_dir: Option<PathBuf>,
}

pub fn run(args: DedupArgs) -> Result<()> {
    if let Some(dir) = &args.csv_dir {
        super::output::check_dir("--csv-dir", dir, &[(super::output::STORE, &args.store)], false)?;
    }
    let store = open_store(&args.store)?;
    let mut report = DedupReport::from_store(&store, &args.manifests)?;
    report.rotation = Some(RotationCost::measure(&store)?);
    if let Some(dir) = &args.csv_dir {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let images = dir.join("dedup-images.csv");
        let ecdf = dir.join("dedup-ecdf.csv");
        let create = |p: &PathBuf| {
            File::create(p).map(BufWriter::new).with_context(|| format!("cannot create {}", p.display()))
        };
        report
            .write_images_csv(create(&images)?)
            .with_context(|| format!("cannot write {}", images.display()))?;
        report.write_ecdf_csv(create(&ecdf)?).with_context(|| format!("cannot write {}", ecdf.display()))?;
        eprintln!("wrote {} and {}", images.display(), ecdf.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
