//! What several commands share: the flags that open an image, name a converted image or set up a
//! simulated start; loading scenarios (replay and fleet); opening a chunk store; writing and
//! printing a sweep's results (`sweep`, `merge`). No command file imports another: they import
//! this.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use chunkload::chunk::ChunkedImage;
use chunkload::crypto::{CustomerKey, Manifest, ManifestPublic, Salt};
use chunkload::fleet::FleetScenario;
use chunkload::image::{OpenOptions, spec::Platform};
use chunkload::ingest;
use chunkload::quantity::{Scale, Seed};
use chunkload::replay::{CacheState, Scenario};
use chunkload::report::Table;
use chunkload::report::plot::write_svg;
use chunkload::sniff::{self, Want};
use chunkload::store::DirStore;
use chunkload::sweep::SweepResults;
use chunkload::sweep::charts;
use chunkload::sweep::results::write_atomic;
use chunkload::trace::{MmapRule, Reader};
use chunkload::units::ByteSize;

/// How to run this binary again, for printed next steps: `chunkload` when that name on PATH is
/// this binary, else the path it was started by (`target/release/chunkload` under `cargo run`),
/// so a suggested command works as printed.
pub fn program() -> String {
    let arg0 = std::env::args().next().unwrap_or_else(|| "chunkload".into());
    let me = std::env::current_exe().ok();
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("chunkload")).find(|p| p.is_file()));
    let same = match (&on_path, &me) {
        (Some(p), Some(me)) => std::fs::canonicalize(p).ok() == std::fs::canonicalize(me).ok(),
        _ => false,
    };
    if same {
        "chunkload".into()
    } else if arg0.contains(char::is_whitespace) {
        format!("'{arg0}'")
    } else if !arg0.contains('/') {
        // Started through PATH under another name or a PATH entry that moved: the full path works.
        me.map(|p| p.display().to_string()).unwrap_or(arg0)
    } else {
        arg0
    }
}

/// `text` with every suggested `chunkload SUBCOMMAND` spelled as [`program`] says.
pub fn runnable(text: &str) -> String {
    let prog = program();
    if prog == "chunkload" {
        return text.to_string();
    }
    ["explain", "simulate", "replay", "convert", "sweep", "trace", "demo"]
        .iter()
        .fold(text.to_string(), |t, cmd| t.replace(&format!("chunkload {cmd} "), &format!("{prog} {cmd} ")))
}

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
        let key = load_key(&self.key)?;
        sniff_manifest(&self.manifest)?;
        let (bytes, _) = ingest::read_sealed(&self.manifest, store)?;
        precheck_store(store, &self.manifest, &self.store)?;
        let manifest = Manifest::open(&bytes, &key)
            .map_err(|e| explain_open_error(e.into(), &self.manifest, &self.key))?;
        warn_if_expired(store, &manifest.header().salt, &self.manifest)?;
        Ok(ChunkedImage { manifest, store })
    }

    /// Opens the manifest ready to replay; `image` (with its flags) is the OCI image it came from.
    pub fn opened(&self, store: &DirStore, image: Option<(&str, &ImageFlags)>) -> Result<ingest::Opened> {
        let key = load_key(&self.key)?;
        sniff_manifest(&self.manifest)?;
        if let Some((reference, _)) = image {
            sniff_image(reference)?;
        }
        let options = image.map(|(r, f)| (r, f.options()));
        precheck_store(store, &self.manifest, &self.store)?;
        let opened =
            ingest::Opened::sealed(&self.manifest, store, &key, options.as_ref().map(|(r, o)| (*r, o)))
                .map_err(|e| explain_open_error(e.into(), &self.manifest, &self.key))?;
        warn_if_expired(store, &opened.manifest.header().salt, &self.manifest)?;
        Ok(opened)
    }
}

/// A manifest that fails authentication under the key given: said in one line naming both files.
pub fn explain_open_error(e: anyhow::Error, manifest: &str, key: &Path) -> anyhow::Error {
    let auth = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<chunkload::crypto::Error>(),
            Some(chunkload::crypto::Error::ManifestAuthentication)
        )
    });
    if auth {
        anyhow::anyhow!(
            "manifest {manifest} failed authentication under the key in {}: it was sealed under \
             another customer key, or modified since",
            key.display()
        )
    } else {
        e
    }
}

/// [`check_store_holds`] on a manifest's clear-text chunk list, before it is opened (opening reads
/// its metadata chunks from the store, which would fail first with a less helpful message).
pub fn precheck_store(store: &DirStore, manifest: &str, dir: &Path) -> Result<()> {
    let (bytes, _) = ingest::read_sealed(manifest, store)?;
    let public = ManifestPublic::parse(&bytes).with_context(|| format!("manifest {manifest}"))?;
    check_store_holds(store, &public.chunks, manifest, dir)
}

/// How many of a manifest's chunks [`check_store_holds`] looks up.
pub const STORE_SAMPLE: usize = 32;

/// Refuses a manifest whose chunks are not in the store (one converted into another store): up to
/// [`STORE_SAMPLE`] chunks spread over the image are looked up; more than half of them missing is
/// an error (chunks another image shares may be there), some missing a warning (a damaged or
/// collected store: `chunkload store verify`).
pub fn check_store_holds(
    store: &DirStore,
    chunks: &[chunkload::crypto::ChunkEntry],
    manifest: &str,
    dir: &Path,
) -> Result<()> {
    use chunkload::store::ChunkStore;
    if chunks.is_empty() {
        return Ok(());
    }
    let step = chunks.len().div_ceil(STORE_SAMPLE);
    let sample: Vec<_> = chunks.iter().step_by(step).collect();
    let mut present = 0;
    for c in &sample {
        if store.contains(&c.name)? {
            present += 1;
        }
    }
    let missing = sample.len() - present;
    if missing * 2 > sample.len() {
        bail!(
            "manifest {manifest} does not belong to the chunk store {}: {missing} of the {} of its chunks \
             looked up are not there (it was converted into another store; pass that one as --store)",
            dir.display(),
            sample.len()
        );
    }
    if present < sample.len() {
        eprintln!(
            "warning: chunk store {} lacks {} of {} chunks of manifest {manifest} looked up; \
             run `chunkload store verify --store {}`",
            dir.display(),
            sample.len() - present,
            sample.len(),
            dir.display()
        );
    }
    Ok(())
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
    sniff::expect(dir, Want::ChunkStore)?;
    Ok(ingest::open_store(dir)?)
}

/// Refuses an image reference whose path is some other kind of file (a manifest, a trace, text).
pub fn sniff_image(reference: &str) -> Result<()> {
    sniff::expect(&super::output::image_path(reference), Want::Image)?;
    Ok(())
}

/// Refuses a manifest argument that is a file of another kind (a name in the store is not sniffed).
pub fn sniff_manifest(manifest: &str) -> Result<()> {
    let p = Path::new(manifest);
    if p.is_file() || p.is_dir() {
        sniff::expect(p, Want::Manifest)?;
    }
    Ok(())
}

/// A customer key file, recognised before its permissions are judged: a README given as a key is
/// told it is not a key, not to `chmod 600` it.
pub fn load_key(path: &Path) -> Result<CustomerKey> {
    sniff::expect(path, Want::Key)?;
    Ok(CustomerKey::load(path)?)
}

/// Every record of a trace file, recognised first (strace output, a manifest, a directory are
/// named as such).
pub fn read_trace(path: &Path) -> Result<Vec<chunkload::trace::Record>> {
    sniff::expect(path, Want::Trace)?;
    Ok(Reader::open(path)?.collect::<chunkload::trace::Result<Vec<_>>>()?)
}

/// Refuses a trace recorded in another image: more than half of the files it reads missing from
/// the image (`PathFit::REFUSE_ABOVE`); warns above `PathFit::WARN_ABOVE` (docs/input-checks.md).
/// `refuse` false (for `trace map`, which reports the mismatch itself) only warns.
pub fn check_trace_fit(
    trace: &Path,
    image: &str,
    meta: &chunkload::layout::BlockMeta,
    records: &[chunkload::trace::Record],
    refuse: bool,
) -> Result<()> {
    use chunkload::ingest::mapping::PathFit;
    let fit = PathFit::measure(meta, records);
    let share = fit.missing_share();
    if share > PathFit::REFUSE_ABOVE && refuse {
        bail!(
            "trace {} does not belong to {image}: {} are missing from the image (more than {:.0}% \
             means it was recorded in another image; record or synthesise a trace of this one)",
            trace.display(),
            fit.describe(),
            100.0 * PathFit::REFUSE_ABOVE
        );
    }
    if share > PathFit::WARN_ABOVE {
        eprintln!(
            "warning: trace {} may not belong to {image}: {} are missing from the image",
            trace.display(),
            fit.describe()
        );
    }
    Ok(())
}

/// A replay scenario file, recognised first (a fleet scenario is sent to `simulate`).
pub fn read_replay_scenario(path: &Path) -> Result<Scenario> {
    sniff::expect(path, Want::ReplayScenario)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Scenario::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
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
        Some(p) => read_replay_scenario(p)?,
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
        sniff::expect(Path::new(scenario), Want::FleetScenario)?;
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
                || n == "index.html"
                || (n.ends_with(".svg")
                    && (n.starts_with("hit_ratio_")
                        || n.starts_with("miss_ratio_")
                        || n.starts_with("cdf_")
                        || n == "tier_mix.svg"))
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
    let charts = charts::charts(r)?;
    for c in &charts {
        let path = out.join(&c.file);
        let tmp = out.join(format!(".{}.partial", c.file));
        write_svg(&tmp, &c.svg)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    let mut files: Vec<String> = ["results.json", "results.csv"].map(String::from).to_vec();
    files.extend(charts.iter().map(|c| c.file.clone()));
    let index = out.join("index.html");
    write_atomic(&index, chunkload::sweep::page::page(r, &charts, files).render().as_bytes())?;
    written.push(index);
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

/// Reads a trace for a replay and fits `sc` to it ([`Scenario::fit_to_trace`]): a FUSE
/// recording gets no guest read-ahead on top of the kernel's, said on stderr.
pub fn read_trace_for(path: &Path, sc: &mut Scenario) -> Result<Vec<chunkload::trace::Record>> {
    sniff::expect(path, Want::Trace)?;
    let reader = chunkload::trace::Reader::open(path)?;
    if sc.fit_to_trace(reader.header()) {
        eprintln!(
            "note: {} was recorded through the FUSE mount (its reads include the kernel's read-ahead): replaying with guest.read_ahead_pages = 0",
            path.display()
        );
    }
    Ok(reader.collect::<chunkload::trace::Result<Vec<_>>>()?)
}
