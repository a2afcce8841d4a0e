use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use chunkload::sweep::{SweepResults, fleet, replay, results};

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard files written by `chunkload sweep --shard i/n` (every shard once, any order).
    #[arg(required = true, value_name = "SHARD.json")]
    shards: Vec<PathBuf>,
    /// Output directory: the same results.json, results.csv and charts one unsharded run writes.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the results JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: MergeArgs) -> Result<()> {
    let inputs: Vec<super::output::Input> = args.shards.iter().map(|p| ("shard file", p.as_path())).collect();
    super::output::check_dir("--out", &args.out, &inputs, false)?;
    let mut files = Vec::with_capacity(args.shards.len());
    for p in &args.shards {
        files.push((p.display().to_string(), SweepResults::read(p)?));
    }
    let merged = results::merge(&files)?;
    let written = super::common::write_sweep_outputs(&merged, &args.out)?;
    let headline: &[&str] = match merged.experiment.as_str() {
        "replay" => replay::HEADLINE,
        "fleet" => fleet::HEADLINE,
        _ => &[],
    };
    super::common::print_sweep(&merged, headline, &written, args.json)
}
