use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use chunkload::fleet::FleetScenario;
use chunkload::teach::demo;
use chunkload::units::plural;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder for the report, its data (CSV, JSON), charts (SVG) and index.html (all of it
    /// on one page, to open in a browser); replaced if it holds an earlier demo's output.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// The images folder: oci/ (an OCI layout) and traces/ (TAG.trace). Default: images/ of the
    /// chunkload checkout (searched upwards from the current directory, then where it was built).
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// Scenario file (TOML, as `replay` prints it). Default: built-in. The zip baseline always
    /// ships only the function's top layer (the runtime below it is on the worker).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Fleet scenario file for the region section (TOML laid over paper-region, as `simulate`
    /// takes it). Default: scenarios/demo-region.toml (built in).
    #[arg(long, value_name = "FILE")]
    fleet_scenario: Option<PathBuf>,
    /// Seed (overrides the scenario's; the region runs with it too; decimal or 0x-hex).
    #[arg(long)]
    seed: Option<chunkload::quantity::Seed>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let scenario = super::common::load_scenario(args.scenario.as_deref(), args.seed, None)?;
    let fleet = match &args.fleet_scenario {
        None => demo::fleet_scenario()?,
        Some(path) => {
            chunkload::sniff::expect(path, chunkload::sniff::Want::FleetScenario)?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read fleet scenario file {}", path.display()))?;
            FleetScenario::load(Some((&path.display().to_string(), &text)), &[])?
        }
    };
    let images = match args.images {
        Some(dir) => dir,
        None => find_images()?,
    };
    // Write beside the destination and rename when complete: a failed run leaves no folder that
    // looks like a finished demo.
    let out = &args.out;
    let mut inputs: Vec<super::output::Input> = vec![("images folder", &images)];
    for (what, p) in [("--scenario file", &args.scenario), ("--fleet-scenario file", &args.fleet_scenario)] {
        if let Some(p) = p {
            inputs.push((what, p));
        }
    }
    super::output::check_dir("--out", out, &inputs, true)?;
    if out.exists() && std::fs::read_dir(out)?.next().is_some() && !out.join("report.json").is_file() {
        bail!(
            "{} exists and does not hold an earlier demo's output (no report.json): choose another --out",
            out.display()
        );
    }
    let mut report = demo::run(&images, scenario, &fleet)?;
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "demo".into());
    let staging = out.with_file_name(format!(".{name}.partial"));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    report.write_files(&staging)?;
    // The text report's suggested commands spelled as this binary runs (as printed below).
    let text = super::common::runnable(&report.to_string());
    std::fs::write(staging.join("report.txt"), &text)
        .with_context(|| format!("cannot write {}", staging.join("report.txt").display()))?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    std::fs::rename(&staging, out)
        .with_context(|| format!("cannot move {} to {}", staging.display(), out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{text}");
        println!();
        println!(
            "Wrote {} to {}: {}",
            plural(report.files.len() as u64, "file", "files"),
            out.display(),
            report.files.join(", ")
        );
        println!(
            "Open {} in a browser: the same story with each chart beside the sentence that reads it, and the\n\
             start as a timeline to explore read by read under each cache state.",
            out.join(demo::PAGE).display()
        );
    }
    Ok(())
}

/// images/ of the checkout: upwards from the current directory, then the source tree it was built from.
fn find_images() -> Result<PathBuf> {
    let has = |d: &Path| d.join("images/oci/index.json").is_file();
    let cwd = std::env::current_dir()?;
    if let Some(dir) = cwd.ancestors().find(|d| has(d)) {
        return Ok(dir.join("images"));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    if has(built) {
        return Ok(built.join("images"));
    }
    bail!(
        "no images/oci/index.json above {} or in {}: pass --images DIR (a folder with oci/ and traces/)",
        cwd.display(),
        built.display()
    )
}
