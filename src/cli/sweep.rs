use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};

use chunkload::ingest;
use chunkload::replay::{CacheState, Scenario};
use chunkload::sim::rng::DEFAULT_SEED;
use chunkload::sweep::fleet::FleetExperiment;
use chunkload::sweep::plan::WallTime;
use chunkload::sweep::replay::ReplayExperiment;
use chunkload::sweep::{self, Experiment, Grid, ShardSpec};
use chunkload::trace::MmapRule;

use super::common::{self, ManifestFlags};
use super::progress::Progress;

/// What each point of a sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExperimentKind {
    // (No doc comments here: clap would switch the whole help to its long layout.)
    Replay,
    Fleet,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Base scenario (TOML) every point's overrides apply to. Default: the built-in one. For
    /// `--experiment fleet`, a fleet scenario file laid over `paper-region` (as `simulate` reads
    /// it), or `paper-region` itself.
    #[arg(long, value_name = "FILE")]
    scenario: Option<String>,
    /// The grid: key=v1,v2;key2=w1,w2 with keys as scenario paths, e.g.
    /// "l2.node_capacity=16GiB,64GiB;l2.policy=lru,lru-k,s3-fifo" (docs/sweeps.md).
    #[arg(long)]
    grid: String,
    /// What each point runs: `replay`, one start (the replay inputs below), or `fleet`, one
    /// `chunkload simulate` run (--scenario is then a fleet scenario).
    #[arg(long, value_enum, default_value = "replay")]
    experiment: ExperimentKind,
    /// Run only slice i of n (1-based; round robin over point indices) and write
    /// results-shard-I-of-N.json; join the slices with `chunkload merge`. `auto`: i (and n) from
    /// a SLURM, Kubernetes Indexed Job or AWS Batch array task's environment (docs/sweeps.md).
    #[arg(long, value_name = "I/N|auto")]
    shard: Option<ShardSpec>,
    /// With --shard auto: the number of shards, for schedulers that do not say it (Kubernetes, AWS
    /// Batch) or a resubmitted part of a SLURM array.
    #[arg(long, value_name = "N", requires = "shard")]
    shard_count: Option<usize>,
    /// Seed every point runs with (overrides the scenario's; all points share it; decimal or 0x-hex).
    #[arg(long)]
    seed: Option<chunkload::quantity::Seed>,
    /// Output directory (created if missing): results.json, results.csv, charts (*.svg) and
    /// index.html (all of it on one page).
    #[arg(long, value_name = "DIR", required_unless_present = "plan")]
    out: Option<PathBuf>,
    /// Run nothing: list the points, estimate each one's time and memory from a short
    /// calibration run of point 0, and suggest an array size (docs/sweeps.md, "Planning").
    #[arg(long, conflicts_with_all = ["shard", "json"])]
    plan: bool,
    /// With --plan: the wall time the array should finish in, e.g. 1h or 45min.
    #[arg(long, value_name = "TIME", requires = "plan")]
    target_wall: Option<WallTime>,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long, short)]
    quiet: bool,
    /// Print the results JSON instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    replay: ReplayInputs,
}

/// Inputs of the replay experiment: what `chunkload replay` reads, fixed for every point.
#[derive(Debug, Args)]
#[command(next_help_heading = "Replay experiment")]
struct ReplayInputs {
    /// A sealed manifest file, or the name of a manifest in the store.
    #[arg(long)]
    manifest: Option<String>,
    /// Chunk store directory.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Customer key file that sealed the manifest.
    #[arg(long, value_name = "KEYFILE")]
    key: Option<PathBuf>,
    /// The start's file-access trace (docs/trace-format.md).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Worker cache before the start: empty, or holding the whole image.
    #[arg(long, value_parser = common::cold_or_warm(), default_value = "cold")]
    l1: CacheState,
    /// AZ cache before the start: empty, or holding the whole image.
    #[arg(long, value_parser = common::cold_or_warm(), default_value = "warm")]
    l2: CacheState,
    /// What an mmap in the trace reads: whole, ignore or fraction:F.
    #[arg(long, default_value = "whole")]
    mmap: MmapRule,
}

pub fn run(args: SweepArgs) -> Result<()> {
    let grid = Grid::parse(&args.grid)?;
    if let Some(out) = &args.out {
        let scenario = args.scenario.as_deref().map(std::path::Path::new);
        let r = &args.replay;
        let manifest = r.manifest.as_deref().map(std::path::Path::new);
        let inputs: Vec<super::output::Input> = [
            ("--scenario file", scenario),
            ("--manifest", manifest),
            (super::output::STORE, r.store.as_deref()),
            ("--key file", r.key.as_deref()),
            ("--trace", r.trace.as_deref()),
        ]
        .into_iter()
        .filter_map(|(what, p)| p.map(|p| (what, p)))
        .collect();
        super::output::check_dir("--out", out, &inputs, false)?;
    }
    match args.experiment {
        ExperimentKind::Replay => {
            let mut base = match &args.scenario {
                Some(p) => common::read_replay_scenario(std::path::Path::new(p))?,
                None => Scenario::default(),
            };
            base.seed = args.seed.map_or(base.seed, u64::from);
            let exp = replay_experiment(&args.replay, &mut base)?;
            let seed = base.seed;
            sweep_with(&exp, &base, &grid, seed, &args)
        }
        ExperimentKind::Fleet => {
            refuse_replay_inputs(&args.replay)?;
            let base = common::load_fleet_scenario(args.scenario.as_deref().unwrap_or("paper-region"), &[])?;
            let exp = FleetExperiment::new(&base, ingest::real::load(&base)?);
            sweep_with(&exp, &base, &grid, args.seed.map_or(DEFAULT_SEED, u64::from), &args)
        }
    }
}

impl ReplayInputs {
    /// The replay's input flags that were given (`true`) or left out (`false`).
    fn flags(&self, given: bool) -> Vec<&'static str> {
        [
            ("--manifest", self.manifest.is_some()),
            ("--store", self.store.is_some()),
            ("--key", self.key.is_some()),
            ("--trace", self.trace.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, present)| (present == given).then_some(flag))
        .collect()
    }
}

/// The replay's inputs mean nothing to the fleet: refused rather than silently ignored.
fn refuse_replay_inputs(a: &ReplayInputs) -> Result<()> {
    let given = a.flags(true);
    if !given.is_empty() {
        bail!(
            "{} belong to the replay experiment; the fleet experiment reads only --scenario",
            given.join(", ")
        );
    }
    Ok(())
}

fn replay_experiment(a: &ReplayInputs, base: &mut Scenario) -> Result<ReplayExperiment> {
    let missing = a.flags(false);
    if !missing.is_empty() {
        bail!("the replay experiment needs {}", missing.join(", "));
    }
    let (manifest, store, key, trace) = (
        a.manifest.clone().unwrap(),
        a.store.clone().unwrap(),
        a.key.clone().unwrap(),
        a.trace.clone().unwrap(),
    );
    let flags = ManifestFlags { manifest, store, key };
    let store = flags.open_store()?;
    let opened = flags.opened(&store, None)?;
    let public = &opened.public;
    let trace_bytes = std::fs::read(&trace).with_context(|| format!("cannot read {}", trace.display()))?;
    let records = common::read_trace_for(&trace, base)?;
    common::check_trace_fit(&trace, &flags.manifest, &opened.meta, &records, true)?;
    let map = opened.map(records, a.mmap);

    // Inputs by content, not by path: shards run on other machines merge when the files match.
    let inputs = BTreeMap::from([
        ("image_sha256".to_string(), opened.content_id()),
        ("chunk_size".to_string(), public.header.chunk_size.to_string()),
        ("trace_sha256".to_string(), hex::encode(Sha256::digest(&trace_bytes))),
        ("mmap_rule".to_string(), a.mmap.to_string()),
        ("trace_missing_paths".to_string(), map.missing.to_string()),
    ]);
    Ok(ReplayExperiment::new(map.accesses, opened.table, a.l1, a.l2, inputs))
}

fn sweep_with<E: Experiment>(
    exp: &E,
    base: &E::Scenario,
    grid: &Grid,
    seed: u64,
    args: &SweepArgs,
) -> Result<()> {
    if args.plan {
        print!("{}", sweep::plan::plan(exp, base, grid, seed, args.target_wall)?);
        return Ok(());
    }
    let resolved = args.shard.map(|s| s.resolve(args.shard_count, &|k| std::env::var(k).ok())).transpose()?;
    let shard = resolved.as_ref().map(|r| r.shard);
    if let Some(r) = resolved.filter(|r| !r.source.is_empty()) {
        eprintln!("--shard auto: shard {} from {}", r.shard, r.source);
    }
    let n = shard.map(|s| s.points(grid.len()).count()).unwrap_or(grid.len());
    let prefix = shard.map(|s| format!("sweep shard {s}")).unwrap_or_else(|| "sweep".into());
    let bar = Progress::new(&prefix, "points", args.quiet);
    bar.set_total(n as u64);
    let results = sweep::run(exp, base, grid, seed, shard, &|| bar.inc(1))?;
    bar.finish();
    let written = common::write_sweep_outputs(
        &results,
        args.out.as_deref().expect("clap requires --out without --plan"),
    )?;
    common::print_sweep(&results, exp.headline(), &written, args.json)
}
