use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use chunkload::fleet::{self, plots};
use chunkload::ingest;
use chunkload::quantity::Seed;
use chunkload::sim::rng::DEFAULT_SEED;
use chunkload::teach::fleet_page;

use super::common;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A fleet scenario file (TOML, laid over the built-in one; see docs/fleet-model.md and
    /// `--print-scenario`), or `paper-region` for the built-in scenario.
    #[arg(long, default_value = "paper-region", value_name = "FILE|paper-region")]
    scenario: String,
    /// Override one scenario key, e.g. `--set l2.policy=lru --set placement.workers=200`
    /// (the value is TOML; a bare word is a string). Repeatable; applied after the file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Seed of every random stream (decimal or 0x-hex).
    #[arg(long, default_value_t = Seed(DEFAULT_SEED))]
    seed: Seed,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write report.json, metrics.csv, minutes.csv, ecdf.csv, scenario.toml, SVG plots and
    /// index.html (all of it on one page) into this directory (created; must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the effective scenario (TOML) and exit without simulating.
    #[arg(long)]
    print_scenario: bool,
}

pub fn run(args: SimulateArgs) -> Result<()> {
    let sc = common::load_fleet_scenario(&args.scenario, &args.set)?;
    if args.print_scenario {
        print!("{}", sc.to_toml());
        return Ok(());
    }
    if let Some(dir) = &args.out {
        let scenario = Path::new(&args.scenario);
        super::output::check_dir("--out", dir, &[("scenario file", scenario)], false)?;
        check_out_dir(dir)?;
    }
    let real = ingest::real::load(&sc)?;
    let report = run_with_progress(&sc, args.seed.0, &real);
    let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
    if let Some(dir) = &args.out {
        write_out(dir, &report, &json)?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{report}");
        if let Some(dir) = &args.out {
            println!(
                "wrote report.json, metrics.csv, minutes.csv, ecdf.csv, scenario.toml and plots to {}; open {} in a browser",
                dir.display(),
                dir.join("index.html").display()
            );
        }
    }
    Ok(())
}

/// Runs the fleet, showing simulated time and speed on stderr when it is a terminal (or when
/// `CHUNKLOAD_PROGRESS=1`), one line rewritten in place; nothing otherwise.
fn run_with_progress(
    sc: &fleet::FleetScenario,
    seed: u64,
    real: &[fleet::real::RealImage],
) -> fleet::FleetReport {
    use std::io::{IsTerminal, Write};
    let show =
        std::io::stderr().is_terminal() || std::env::var_os("CHUNKLOAD_PROGRESS").is_some_and(|v| v == "1");
    if !show {
        return fleet::run_with(sc, seed, real);
    }
    let started = std::time::Instant::now();
    let progress = move |simulated_s: f64, measuring: bool| {
        let wall = started.elapsed().as_secs_f64().max(1e-9);
        let phase = if measuring { "measured window" } else { "warm-up (cache-only)" };
        eprint!(
            "\r  simulated {:>6.2} h, {phase}: {:.0}x real time, {:.0} s elapsed   ",
            simulated_s / 3600.0,
            simulated_s / wall,
            wall
        );
        let _ = std::io::stderr().flush();
    };
    let report = fleet::run_with_progress(sc, seed, real, &progress);
    eprintln!();
    report
}

fn check_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = fs::read_dir(dir)
            .with_context(|| format!("--out {}: not a readable directory", dir.display()))?
            .next()
            .is_none();
        if !empty {
            bail!("--out {}: directory exists and is not empty (refusing to mix runs)", dir.display());
        }
    }
    Ok(())
}

/// Writes every file into a staging directory beside `dir`, then renames it into place: a failed
/// run leaves no directory that looks complete.
fn write_out(dir: &Path, report: &fleet::FleetReport, json: &str) -> Result<()> {
    let name = dir.file_name().with_context(|| format!("--out {}: needs a directory name", dir.display()))?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stage = parent.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> Result<()> {
        fs::create_dir_all(&stage).with_context(|| format!("cannot create {}", stage.display()))?;
        let put = |file: &str, body: &str| {
            fs::write(stage.join(file), body)
                .with_context(|| format!("cannot write {}", stage.join(file).display()))
        };
        put("report.json", json)?;
        put("metrics.csv", &report.metrics_csv())?;
        put("minutes.csv", &report.minutes_csv())?;
        put("ecdf.csv", &report.ecdf_csv())?;
        put(
            "scenario.toml",
            &format!(
                "# seed {}, chunkload {}\n{}",
                report.seed,
                report.chunkload_version,
                report.scenario.to_toml()
            ),
        )?;
        let mut files = vec!["report.json", "metrics.csv", "minutes.csv", "ecdf.csv", "scenario.toml"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        for (file, svg) in plots::all(report)? {
            put(&file, &svg)?;
            files.push(file);
        }
        put("index.html", &fleet_page::simulate_page(report, files)?.render())?;
        if dir.exists() {
            fs::remove_dir(dir).with_context(|| format!("cannot replace empty {}", dir.display()))?;
        }
        fs::rename(&stage, dir).with_context(|| format!("cannot move results into {}", dir.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&stage);
    }
    result
}
