//! `demo`: the whole pipeline over the small real images committed in images/, in sections a
//! reader can follow: the images and the layers they share, their conversion into one chunk store
//! (what dedup saves), and one function's start replayed under several cache states against a full
//! pull and a zip, then a small region of many functions and workers (the fleet model) over a few
//! simulated minutes, with one AZ cache node lost. Each section is a function from the [`Demo`] context to a report struct that is
//! printed (Display) and saved (JSON, CSV); a new section is one more such function and one field.

//!
//! One file per section: `images.rs` (1), `store.rs` (2), `starts.rs` (3), `fleet.rs` (4). Each
//! owns its computation, its struct, its Display, its figures and its data files; this file holds
//! the shared context ([`Demo`]), the whole report and the order the sections run and print in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chunk::{self, ChunkSize, ChunkedImage, ConvertOptions, ConvertStats};
use crate::crypto::{ManifestPublic, Salt};
use crate::flatten::{self, Flattened};
use crate::fleet::{FleetScenario, FleetScenarioError};
use crate::image::{Image, OpenOptions, spec};
use crate::replay::Scenario;
use crate::report::plot;
use crate::store::MemStore;

mod fleet;
mod html;
mod images;
mod starts;
mod store;

pub use fleet::{FLEET_SCENARIO_FILE, FleetSection, fleet_scenario, fleet_section};
pub use html::PAGE;
pub use images::{ImageFacts, ImageLine, ImagesSection, images_section};
pub use starts::{CASES, StartCase, StartsSection, starts_section};
pub use store::{StoreSection, UploadLine, store_section};

/// The function whose start the demo replays: the app-only update of hello-py, so most of its
/// chunks were already brought into the store and the caches by the images before it.
pub const SUBJECT: &str = "hello-py-v2";

/// The salt every image is converted under (one dedup namespace).
const SALT: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{dir}: no OCI layout here (expected {dir}/oci/index.json, as images/build.sh makes it)")]
    NoImages { dir: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("image {image}: {source}")]
    Image { image: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("trace {path}: {source}")]
    Trace { path: String, source: crate::trace::Error },
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    #[error(transparent)]
    FleetScenario(#[from] FleetScenarioError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DemoError + '_ {
    move |source| DemoError::Io { path: path.display().to_string(), source }
}

fn image_err<E: std::error::Error + Send + Sync + 'static>(image: &str) -> impl FnOnce(E) -> DemoError + '_ {
    move |e| DemoError::Image { image: image.to_string(), source: Box::new(e) }
}

/// One image of images/oci, opened, flattened and converted.
pub struct DemoImage {
    pub tag: String,
    pub image: Image,
    pub flat: Flattened,
    pub manifest: ManifestPublic,
    pub convert: ConvertStats,
}

/// What the sections share: the images (in upload order) and the store they were converted into.
pub struct Demo {
    pub images_dir: PathBuf,
    pub scenario: Scenario,
    pub store: MemStore,
    pub images: Vec<DemoImage>,
    /// Block-image metadata of each image, by tag (to map traces).
    metas: BTreeMap<String, crate::layout::BlockMeta>,
}

/// The tags of an OCI layout's index, in index order (the order images/build.sh uploads them).
pub fn layout_tags(layout: &Path) -> Result<Vec<String>, DemoError> {
    let path = layout.join("index.json");
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            DemoError::NoImages { dir: layout.parent().unwrap_or(layout).display().to_string() }
        }
        _ => DemoError::Io { path: path.display().to_string(), source: e },
    })?;
    let index: spec::ImageIndex = serde_json::from_str(&text)
        .map_err(|e| DemoError::Invalid { path: path.display().to_string(), reason: e.to_string() })?;
    let tags: Vec<String> =
        index.manifests.iter().filter_map(|d| d.annotations.get(spec::REF_NAME).cloned()).collect();
    if tags.is_empty() {
        return Err(DemoError::Invalid {
            path: path.display().to_string(),
            reason: "no tagged images".into(),
        });
    }
    Ok(tags)
}

impl Demo {
    /// Opens, flattens and converts every tagged image of `images_dir/oci` into one memory store,
    /// in index order (each conversion sees what the ones before it uploaded).
    pub fn load(images_dir: &Path, scenario: Scenario) -> Result<Self, DemoError> {
        let layout = images_dir.join("oci");
        let tags = layout_tags(&layout)?;
        let store = MemStore::new();
        let options =
            ConvertOptions { chunk_size: ChunkSize::DEFAULT, salt: Salt::new(SALT).expect("valid salt") };
        let mut images = Vec::new();
        let mut metas = BTreeMap::new();
        for tag in tags {
            let reference = format!("{}:{tag}", layout.display());
            let image = Image::open(&reference, &OpenOptions::default()).map_err(image_err(&tag))?;
            let flat = flatten::flatten(&image).map_err(image_err(&tag))?;
            let converted = chunk::convert(&image, &flat, &options, &store).map_err(image_err(&tag))?;
            let manifest = converted.manifest.public();
            let (meta, _) = ChunkedImage { manifest: converted.manifest, store: &store }
                .tree()
                .map_err(image_err(&tag))?;
            metas.insert(tag.clone(), meta);
            images.push(DemoImage { tag, image, flat, manifest, convert: converted.stats });
        }
        Ok(Demo { images_dir: images_dir.to_path_buf(), scenario, store, images, metas })
    }
}

// ---- the whole demo -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub chunkload_version: &'static str,
    pub seed: u64,
    pub images_dir: String,
    pub images: ImagesSection,
    pub store: StoreSection,
    pub starts: StartsSection,
    pub fleet: FleetSection,
    /// Files written into the output folder, relative to it.
    pub files: Vec<String>,
    pub scenario: Scenario,
}

/// Runs every section.
/// The zip baseline ships the subject's top layer only: the layers below it (base + python) are the
/// runtime, which Lambda provides to zip functions; this overrides `baseline.zip_from_layer`.
pub fn run(images_dir: &Path, scenario: Scenario, fleet: &FleetScenario) -> Result<DemoReport, DemoError> {
    let mut demo = Demo::load(images_dir, scenario)?;
    if let Some(d) = demo.images.iter().find(|d| d.tag == SUBJECT) {
        demo.scenario.baseline.zip_from_layer = d.image.layers.len().saturating_sub(1);
    }
    Ok(DemoReport {
        chunkload_version: env!("CARGO_PKG_VERSION"),
        seed: demo.scenario.seed,
        images_dir: images_dir.display().to_string(),
        images: images_section(&demo),
        store: store_section(&demo),
        starts: starts_section(&demo, SUBJECT)?,
        fleet: fleet_section(fleet, demo.scenario.seed),
        files: Vec::new(),
        scenario: demo.scenario.clone(),
    })
}

/// The files one run writes into its output folder: each is written whole, and its name kept
/// for the report's `files` list.
pub struct Files<'a> {
    dir: &'a Path,
    names: BTreeSet<String>,
}

impl Files<'_> {
    pub fn put(&mut self, name: &str, body: &[u8]) -> Result<(), DemoError> {
        let path = self.dir.join(name);
        fs::write(&path, body).map_err(io_err(&path))?;
        self.names.insert(name.to_string());
        Ok(())
    }
}

impl DemoReport {
    /// Writes the report's data files into `dir` (which must exist) and records their names.
    pub fn write_files(&mut self, dir: &Path) -> Result<(), DemoError> {
        let mut put = Files { dir, names: BTreeSet::new() };
        self.images.write_files(&mut put)?;
        self.store.write_files(&mut put)?;
        self.starts.write_files(&mut put)?;
        for (name, svg) in self.figures()? {
            put.put(name, svg.as_bytes())?;
        }
        self.fleet.write_files(&mut put)?;
        let mut files = put.names;
        files.insert("report.json".into());
        files.insert("report.txt".into());
        files.insert(PAGE.into());
        self.files = files.into_iter().collect();
        let path = dir.join(PAGE);
        fs::write(&path, self.page()?.render()).map_err(io_err(&path))?;
        let json = serde_json::to_vec_pretty(self).expect("report serializes");
        let path = dir.join("report.json");
        fs::write(&path, json).map_err(io_err(&path))?;
        let path = dir.join("report.txt");
        fs::write(&path, self.to_string()).map_err(io_err(&path))?;
        Ok(())
    }

    /// The demo's figures as SVG: what each upload added to the store (section 2), where each
    /// start's chunks came from, the per-read latency distribution per cache state, and the start
    /// times (section 3). The region's figures are `FleetSection::figures`.
    pub fn figures(&self) -> Result<Vec<(&'static str, String)>, DemoError> {
        let mut out = vec![("uploads.svg", self.store.figure()?)];
        out.extend(self.starts.figures()?);
        Ok(out)
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chunkload {} demo: how a container image becomes a cold start (seed {}, images from {})",
            self.chunkload_version, self.seed, self.images_dir
        )?;
        writeln!(f)?;
        write!(f, "{}", self.images)?;
        writeln!(f)?;
        write!(f, "{}", self.store)?;
        writeln!(f)?;
        write!(f, "{}", self.starts)?;
        writeln!(f)?;
        write!(f, "{}", self.fleet)?;
        writeln!(f)?;
        writeln!(f, "Effective scenario (chunkload replay --scenario FILE takes it back):")?;
        for line in self.scenario.to_toml().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

fn indent(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for line in text.lines() {
        writeln!(f, "   {line}")?;
    }
    Ok(())
}
