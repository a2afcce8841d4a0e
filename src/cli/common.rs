//! What several commands share: the flags that open an image, name a converted image or set up a
//! simulated start; loading scenarios (replay and fleet); opening a chunk store; writing and
//! printing a sweep's results (`sweep`, `merge`). No command file imports another: they import
//! this.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use chunkload::chunk::ChunkedImage;
use chunkload::crypto::{CustomerKey, Manifest, Salt};
use chunkload::fleet::FleetScenario;
use chunkload::image::{OpenOptions, spec::Platform};
use chunkload::ingest;
use chunkload::quantity::{Scale, Seed};
use chunkload::replay::{CacheState, Scenario};
use chunkload::report::Table;
use chunkload::report::plot::write_svg;
use chunkload::store::DirStore;
use chunkload::sweep::SweepResults;
use chunkload::sweep::charts;
use chunkload::sweep::results::write_atomic;
use chunkload::trace::MmapRule;
use chunkload::units::ByteSize;

/// Flags every command that opens an image shares.
#[derive(Debug, Clone, Args)]
pub struct ImageFlags {
    /// Platform to pick from a multi-platform index (os/arch[/variant]).
    #[arg(long, default_value = "linux/amd64", value_parser = parse_platform)]
    pub platform: Platform,
    /// Refuse images whose layers decompress to more than this in total (decompression-bomb guard;
    /// Lambda's image limit is 10 GiB).
    #[arg(long, default_value = "10GiB")]
    pub max_uncompressed: ByteSize,
}

impl ImageFlags {
    pub fn options(&self) -> OpenOptions {
        OpenOptions { platform: self.platform.clone(), max_uncompressed: self.max_uncompressed }
    }
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s)
        .ok_or_else(|| format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"))
}

/// Flags that name a converted image: its sealed manifest, the store and the customer key.
#[derive(Debug, Clone, Args)]
pub struct ManifestFlags {
    /// A sealed manifest file, or the name of a manifest in the store.
    pub manifest: String,
    /// Chunk store directory.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Customer key file that sealed the manifest.
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
}

impl ManifestFlags {
    pub fn open_store(&self) -> Result<DirStore> {
        open_store(&self.store)
    }

    /// Opens (authenticates and decrypts) the manifest and pairs it with the store.
    pub fn open<'s>(&self, store: &'s DirStore) -> Result<ChunkedImage<'s>> {
        let key = CustomerKey::load(&self.key)?;
        let (bytes, _) = ingest::read_sealed(&self.manifest, store)?;
        let manifest = Manifest::open(&bytes, &key).with_context(|| format!("manifest {}", self.manifest))?;
        warn_if_expired(store, &manifest.header().salt, &self.manifest)?;
        Ok(ChunkedImage { manifest, store })
    }

    /// Opens the manifest ready to replay; `image` (with its flags) is the OCI image it came from.
    pub fn opened(&self, store: &DirStore, image: Option<(&str, &ImageFlags)>) -> Result<ingest::Opened> {
        let key = CustomerKey::load(&self.key)?;
        let options = image.map(|(r, f)| (r, f.options()));
        let opened =
            ingest::Opened::sealed(&self.manifest, store, &key, options.as_ref().map(|(r, o)| (*r, o)))?;
        warn_if_expired(store, &opened.manifest.header().salt, &self.manifest)?;
        Ok(opened)
    }
}

/// A manifest read from `store` whose root has expired still reads, with a warning on stderr and
/// the alarm recorded in the store (`store::roots::note_read`).
pub fn warn_if_expired(store: &DirStore, salt: &Salt, manifest: &str) -> Result<()> {
    if let Some(read) = chunkload::store::roots::note_read(store, salt)? {
        eprintln!("warning: manifest {manifest}: {read}");
    }
    Ok(())
}

/// An existing chunk store, opened for reading.
pub fn open_store(dir: &Path) -> Result<DirStore> {
    Ok(ingest::open_store(dir)?)
}

/// A `--l1`/`--l2` value of `replay` and `sweep`: cold or warm (the store's other images are
/// `explain`'s, which reads them).
pub fn cold_or_warm() -> impl TypedValueParser<Value = CacheState> {
    PossibleValuesParser::new(["cold", "warm"]).try_map(|s| s.parse::<CacheState>())
}

/// What one simulated start of a trace is run with (`replay`, `explain`).
#[derive(Debug, Args)]
pub struct StartFlags {
    /// Scenario file (TOML, in the form every replay report prints; see docs/latency-model.md).
    /// Default: built-in.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Seed (overrides the scenario's; decimal or 0x-hex).
    #[arg(long)]
    pub seed: Option<Seed>,
    /// Multiplier on the trace's CPU gaps, 0 to 1000 (overrides the scenario's; tracing inflates
    /// them).
    #[arg(long)]
    pub cpu_scale: Option<Scale>,
    /// What an mmap in the trace reads: whole, ignore or fraction:F.
    #[arg(long, default_value = "whole")]
    pub mmap: MmapRule,
}

impl StartFlags {
    /// The scenario file (or the built-in one) with the seed and CPU-scale overrides applied.
    pub fn scenario(&self) -> Result<Scenario> {
        load_scenario(self.scenario.as_deref(), self.seed, self.cpu_scale)
    }
}

/// A replay scenario file (or the built-in default) with the command line's overrides.
pub fn load_scenario(path: Option<&Path>, seed: Option<Seed>, cpu_scale: Option<Scale>) -> Result<Scenario> {
    let mut sc = match path {
        Some(p) => Scenario::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )?,
        None => Scenario::default(),
    };
    if let Some(seed) = seed {
        sc.seed = seed.0;
    }
    if let Some(scale) = cpu_scale {
        sc.cpu_scale = scale.get();
    }
    Ok(sc)
}

/// A fleet scenario argument (`paper-region`, or a file laid over it) with `--set` overrides on
/// top: what `simulate` and `sweep --experiment fleet` read.
pub fn load_fleet_scenario(scenario: &str, set: &[String]) -> Result<FleetScenario> {
    let text;
    let file = if scenario == "paper-region" {
        None
    } else {
        text = std::fs::read_to_string(scenario)
            .with_context(|| format!("cannot read scenario file {scenario}"))?;
        Some((scenario, text.as_str()))
    };
    Ok(FleetScenario::load(file, set)?)
}

/// Writes a results set into `out`: a shard file alone for a shard; for a whole run or a merge,
/// CSV and charts first and results.json last (its presence means the set is complete).
pub fn write_sweep_outputs(r: &SweepResults, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if let Some(s) = r.shard {
        let path = out.join(format!("results-shard-{}-of-{}.json", s.index, s.count));
        write_atomic(&path, r.to_json().as_bytes())?;
        return Ok(vec![path]);
    }
    // A previous set in the same directory goes first, results.json leading: no stale chart or
    // CSV can sit next to the new results, and no old results.json can look like the new set.
    let json = out.join("results.json");
    let stale = std::fs::read_dir(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| {
            n == "results.csv"
                || (n.ends_with(".svg")
                    && (n.starts_with("miss_ratio_") || n.starts_with("cdf_") || n == "tier_mix.svg"))
        });
    for name in std::iter::once("results.json".to_string()).chain(stale) {
        let p = out.join(&name);
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("cannot replace {}", p.display()))?;
        }
    }
    let mut written = Vec::new();
    let csv = out.join("results.csv");
    write_atomic(&csv, r.to_csv().as_bytes())?;
    written.push(csv);
    for c in charts::charts(r)? {
        let path = out.join(&c.file);
        let tmp = out.join(format!(".{}.partial", c.file));
        write_svg(&tmp, &c.svg)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    write_atomic(&json, r.to_json().as_bytes())?;
    written.push(json);
    Ok(written)
}

/// The terminal view: provenance, one row per point with the headline metrics, the files.
pub fn print_sweep(r: &SweepResults, headline: &[&str], written: &[PathBuf], json: bool) -> Result<()> {
    if json {
        print!("{}", r.to_json());
        return Ok(());
    }
    println!("{}", r.provenance());
    println!("{} of {} points; seeding: {}", r.rows.len(), r.points, r.seeding);
    for (k, v) in &r.inputs {
        println!("  input {k} = {v}");
    }
    let metrics: Vec<String> = if headline.is_empty() {
        r.metric_names().into_iter().take(6).collect()
    } else {
        headline.iter().map(|s| s.to_string()).collect()
    };
    let mut t = Table::new(["#".to_string(), "point".to_string()].into_iter().chain(metrics.iter().cloned()));
    for row in &r.rows {
        let cells =
            metrics.iter().map(|m| row.metrics.get(m).map(|v| fmt_metric(*v)).unwrap_or_else(|| "-".into()));
        t.row([row.index.to_string(), row.label.clone()].into_iter().chain(cells));
    }
    print!("{t}");
    println!("wrote:");
    for p in written {
        println!("  {}", p.display());
    }
    println!("effective base scenario (pass it back with --scenario):");
    for line in r.scenario.lines() {
        println!("  {line}");
    }
    Ok(())
}

fn fmt_metric(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}
