//! The function population: images built from a pool of layers, and the uploads (new functions,
//! new versions) that happen during the run, all generated up front from the seed.
//!
//! An image is a chain base -> runtime -> dependencies -> app. The flattener places a layer's
//! files after everything below it, so a layer's chunks are shared exactly by the images whose
//! chain up to and including that layer is the same: chunk identity is a node of the tree of layer
//! prefixes, and the layout rules need no bytes. Only chunks a start reads get dense ids (the rest
//! are counted, for image sizes and unique shares), which is what keeps 100,000 functions in memory.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::popularity::Zipf;
use super::real::RealImage;
use super::scenario::{FleetScenario, LayerLevel};
use crate::sim::chunks::{ContentKey, Interner};
use crate::sim::rng::stream;
use crate::sim::time::SimTime;

/// A layer node of the prefix tree.
#[derive(Debug, Clone, Copy)]
struct Layer {
    /// Every chunk of the layer (for sizes and unique shares).
    chunks: u32,
    /// Range of the layer's read chunks in the hot arena.
    hot_start: u32,
    hot_len: u32,
}

/// A function, as created (initially or during the run).
#[derive(Debug, Clone)]
pub struct Function {
    pub created: SimTime,
    /// Popularity rank among the initial functions; new functions get a uniformly drawn rank.
    pub rank: usize,
    /// Lengths of the base, runtime, deps and app parts of the working set, in that order.
    parts: [u32; 4],
    /// Every chunk of the app layer and of the deps layer (their sizes, for updates).
    app_chunks: u32,
    deps_chunks: u32,
    pub first_version: u32,
    /// The `[[population.real]]` entry whose image it runs; `None` for a synthetic function.
    pub real: Option<u32>,
}

/// One image of a function.
#[derive(Debug, Clone, Copy)]
pub struct Version {
    pub function: u32,
    ws_start: u32,
    ws_len: u32,
    pub image_chunks: u32,
    /// Chunks no earlier image had.
    pub unique_chunks: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UploadKind {
    NewFunction,
    Update,
}

/// An upload during the run: from `at`, `function` runs `version`.
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    pub at: SimTime,
    pub function: u32,
    pub version: u32,
    pub kind: UploadKind,
}

/// What the generated population looks like.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PopulationSummary {
    pub initial_functions: usize,
    pub functions_created: usize,
    pub updates: usize,
    /// Updates with no unique chunk, over all updates (the paper: ~80%).
    pub reupload_share: f64,
    /// Unique share of the updates that had some (the paper: mean 4.3%, median 2.5%).
    pub unique_share_mean: f64,
    pub unique_share_median: f64,
    pub layers: usize,
    /// Distinct chunks any start can read (the dense id space).
    pub readable_chunks: u32,
    pub mean_image_chunks: f64,
    pub mean_working_set_chunks: f64,
    /// Real images mixed in, and the functions running them (extra to `initial_functions`).
    pub real_images: usize,
    pub real_functions: usize,
    /// Stored chunks summed over the real images, and distinct among them (by chunk name): the
    /// difference is what they share.
    pub real_image_chunks: u64,
    pub real_distinct_chunks: u64,
    /// Distinct chunks the real images' starts read (their share of the dense id space).
    pub real_readable_chunks: u64,
}

pub struct Population {
    layers: Vec<Layer>,
    hot: Vec<u32>,
    children: FxHashMap<(u32, u32), u32>,
    next_chunk: u32,
    pub functions: Vec<Function>,
    pub versions: Vec<Version>,
    ws: Vec<u32>,
    /// Latest version of each function.
    latest: Vec<u32>,
    /// Time-ordered.
    pub uploads: Vec<Upload>,
    pub summary: PopulationSummary,
}

/// The virtual root of the layer tree: base layer `i` is its child `i`.
const ROOT: u32 = u32::MAX;

struct Levels<'a> {
    base: (&'a LayerLevel, Zipf),
    runtime: (&'a LayerLevel, Zipf),
    deps: (&'a LayerLevel, Zipf),
}

impl Population {
    /// The population of `sc`, with `real` the loaded images of its `[[population.real]]`
    /// entries, in order (`ingest::real::load`).
    ///
    /// # Panics
    /// If `real` does not hold one image per entry: a caller's bug, not an input error.
    pub fn generate(sc: &FleetScenario, seed: u64, real: &[RealImage]) -> Self {
        assert_eq!(
            real.len(),
            sc.population.real.len(),
            "load the scenario's [[population.real]] images with ingest::real::load"
        );
        let p = &sc.population;
        let mut rng = stream(seed, "population");
        let mut pop = Population {
            layers: Vec::new(),
            hot: Vec::new(),
            children: FxHashMap::default(),
            next_chunk: 0,
            functions: Vec::with_capacity(p.functions),
            versions: Vec::new(),
            ws: Vec::new(),
            latest: Vec::new(),
            uploads: Vec::new(),
            summary: PopulationSummary { initial_functions: p.functions, ..Default::default() },
        };
        let levels = Levels {
            base: (&p.base, Zipf::new(p.base.choices, p.base.zipf)),
            runtime: (&p.runtime, Zipf::new(p.runtime.choices, p.runtime.zipf)),
            deps: (&p.deps, Zipf::new(p.deps.choices, p.deps.zipf)),
        };
        for rank in 0..p.functions {
            pop.create_function(sc, &levels, SimTime::ZERO, rank, &mut rng);
        }
        // Uploads over the whole run, warm-up included: two Poisson processes.
        let end = (sc.warmup + sc.duration).as_secs_f64();
        let popularity = Zipf::new(p.functions, sc.workload.popularity_zipf);
        let mut events: Vec<(f64, UploadKind)> = Vec::new();
        for (rate, kind) in [
            (sc.uploads.new_functions_per_hour, UploadKind::NewFunction),
            (sc.uploads.updates_per_hour, UploadKind::Update),
        ] {
            if rate <= 0.0 {
                continue;
            }
            let gap = Exp::new(rate / 3600.0).expect("a positive rate");
            let mut t = gap.sample(&mut rng);
            while t < end {
                events.push((t, kind));
                t += gap.sample(&mut rng);
            }
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut shares = Vec::new();
        for (t, kind) in events {
            let at = SimTime::from_nanos((t * 1e9) as u64);
            match kind {
                UploadKind::NewFunction => {
                    let rank = rng.random_range(0..p.functions);
                    let f = pop.create_function(sc, &levels, at, rank, &mut rng);
                    let version = pop.functions[f as usize].first_version;
                    pop.uploads.push(Upload { at, function: f, version, kind });
                    pop.summary.functions_created += 1;
                }
                UploadKind::Update => {
                    let f = popularity.pick(&mut rng) as u32;
                    let version = pop.update(sc, f, &mut rng);
                    let v = pop.versions[version as usize];
                    if v.unique_chunks > 0 {
                        shares.push(f64::from(v.unique_chunks) / f64::from(v.image_chunks));
                    }
                    pop.uploads.push(Upload { at, function: f, version, kind });
                    pop.summary.updates += 1;
                }
            }
        }
        pop.add_real(sc, seed, real);
        let s = &mut pop.summary;
        if s.updates > 0 {
            s.reupload_share = 1.0 - shares.len() as f64 / s.updates as f64;
        }
        if !shares.is_empty() {
            s.unique_share_mean = shares.iter().sum::<f64>() / shares.len() as f64;
            shares.sort_by(f64::total_cmp);
            s.unique_share_median = shares[shares.len() / 2];
        }
        s.layers = pop.layers.len();
        s.readable_chunks = pop.next_chunk;
        let n = pop.versions.len() as f64;
        s.mean_image_chunks = pop.versions.iter().map(|v| f64::from(v.image_chunks)).sum::<f64>() / n;
        s.mean_working_set_chunks = pop.versions.iter().map(|v| f64::from(v.ws_len)).sum::<f64>() / n;
        pop
    }

    /// The real images' functions, after every synthetic one (so no synthetic id moves). Chunk ids
    /// come from chunk names: a chunk two images share gets one id; a real chunk never takes a
    /// synthetic id. Ranks and working sets without a trace come from their own random stream,
    /// so mixing real images in leaves the synthetic population as it was.
    fn add_real(&mut self, sc: &FleetScenario, seed: u64, real: &[RealImage]) {
        let mut rng = stream(seed, "population.real");
        // Real chunks take the next ids, in first-read order: the base plus the interned id.
        let base = self.next_chunk;
        let mut ids: Interner<ContentKey> = Interner::default();
        let mut seen: std::collections::BTreeSet<ContentKey> = Default::default();
        for (i, (img, cfg)) in real.iter().zip(&sc.population.real).enumerate() {
            let drawn: Vec<u32>;
            let positions: &[u32] = match &img.working_set {
                Some(ws) => ws,
                None => {
                    let f = cfg.read_fraction.unwrap_or(0.0);
                    drawn = (0..img.chunks.len() as u32).filter(|_| rng.random_bool(f)).collect();
                    &drawn
                }
            };
            let ws_start = self.ws.len() as u32;
            for &pos in positions {
                let before = ids.len();
                let id = base + ids.intern(img.chunks[pos as usize]).0;
                if ids.len() > before {
                    self.fresh(1);
                }
                self.ws.push(id);
            }
            let ws_len = self.ws.len() as u32 - ws_start;
            let image_chunks = img.chunks.len() as u32;
            let mut unique = 0;
            for name in &img.chunks {
                unique += u32::from(seen.insert(*name));
            }
            for k in 0..cfg.functions {
                let f = self.functions.len() as u32;
                let version = self.versions.len() as u32;
                self.versions.push(Version {
                    function: f,
                    ws_start,
                    ws_len,
                    image_chunks,
                    unique_chunks: if k == 0 { unique } else { 0 },
                });
                self.latest.push(version);
                self.functions.push(Function {
                    created: SimTime::ZERO,
                    rank: rng.random_range(0..sc.population.functions),
                    parts: [0, 0, 0, ws_len],
                    app_chunks: image_chunks,
                    deps_chunks: 0,
                    first_version: version,
                    real: Some(i as u32),
                });
            }
            let s = &mut self.summary;
            s.real_images += 1;
            s.real_functions += cfg.functions;
            s.real_image_chunks += u64::from(image_chunks);
        }
        self.summary.real_distinct_chunks = seen.len() as u64;
        self.summary.real_readable_chunks = ids.len() as u64;
    }

    /// The chunks a start of `version` reads, in order.
    pub fn working_set(&self, version: u32) -> &[u32] {
        let v = &self.versions[version as usize];
        &self.ws[v.ws_start as usize..(v.ws_start + v.ws_len) as usize]
    }

    /// Distinct readable chunks (ids are `0..readable_chunks`).
    pub fn readable_chunks(&self) -> u32 {
        self.next_chunk
    }

    fn fresh(&mut self, n: u32) -> u32 {
        let first = self.next_chunk;
        self.next_chunk = self.next_chunk.checked_add(n).expect("fewer than 2^32 readable chunks");
        first
    }

    /// The layer `choice` under `parent`, created on first use; whether it is new.
    fn layer(
        &mut self,
        sc: &FleetScenario,
        parent: u32,
        choice: u32,
        level: &LayerLevel,
        rng: &mut ChaCha8Rng,
    ) -> (u32, bool) {
        if let Some(&l) = self.children.get(&(parent, choice)) {
            return (l, false);
        }
        let (chunks, hot_len) =
            layer_shape(sc, level.size_median.bytes(), level.size_sigma, level.read_fraction, rng);
        let first = self.fresh(hot_len);
        let hot_start = self.hot.len() as u32;
        self.hot.extend(first..first + hot_len);
        let id = self.layers.len() as u32;
        self.layers.push(Layer { chunks, hot_start, hot_len });
        self.children.insert((parent, choice), id);
        (id, true)
    }

    fn create_function(
        &mut self,
        sc: &FleetScenario,
        lv: &Levels<'_>,
        at: SimTime,
        rank: usize,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        let mut chain = [0u32; 3];
        let mut unique = 0u32;
        let mut parent = ROOT;
        for (i, (level, zipf)) in [&lv.base, &lv.runtime, &lv.deps].into_iter().enumerate() {
            let choice = zipf.pick(rng) as u32;
            let (l, new) = self.layer(sc, parent, choice, level, rng);
            if new {
                unique += self.layers[l as usize].chunks;
            }
            chain[i] = l;
            parent = l;
        }
        let app = &sc.population.app;
        let (app_chunks, app_hot) =
            layer_shape(sc, app.size_median.bytes(), app.size_sigma, app.read_fraction, rng);
        let first = self.fresh(app_hot);
        let ws_start = self.ws.len() as u32;
        let mut parts = [0u32; 4];
        for (i, &l) in chain.iter().enumerate() {
            let layer = self.layers[l as usize];
            parts[i] = layer.hot_len;
            let range = layer.hot_start as usize..(layer.hot_start + layer.hot_len) as usize;
            self.ws.extend_from_slice(&self.hot[range]);
        }
        parts[3] = app_hot;
        self.ws.extend(first..first + app_hot);
        let image_chunks = chain.iter().map(|&l| self.layers[l as usize].chunks).sum::<u32>() + app_chunks;
        let f = self.functions.len() as u32;
        let version = self.versions.len() as u32;
        self.versions.push(Version {
            function: f,
            ws_start,
            ws_len: self.ws.len() as u32 - ws_start,
            image_chunks,
            unique_chunks: unique + app_chunks,
        });
        self.latest.push(version);
        self.functions.push(Function {
            created: at,
            rank,
            parts,
            app_chunks,
            deps_chunks: self.layers[chain[2] as usize].chunks,
            first_version: version,
            real: None,
        });
        f
    }

    /// A new version of `f`'s latest image: a re-upload (same chunks) or a change whose unique
    /// share is log-normal with the configured median and mean. The change rewrites the app
    /// layer first, then the dependency layer; a rewritten share of a layer rewrites the same
    /// share of its read chunks.
    fn update(&mut self, sc: &FleetScenario, f: u32, rng: &mut ChaCha8Rng) -> u32 {
        let func = self.functions[f as usize].clone();
        let prev_index = self.latest[f as usize];
        let prev = self.versions[prev_index as usize];
        let u = &sc.uploads;
        let version = self.versions.len() as u32;
        self.latest[f as usize] = version;
        if rng.random_bool(u.reupload_share) {
            self.versions.push(Version { unique_chunks: 0, ..prev });
            return version;
        }
        let sigma = (2.0 * (u.unique_share_mean / u.unique_share_median).ln()).sqrt();
        let z: f64 = StandardNormal.sample(rng);
        let share = (u.unique_share_median * (sigma * z).exp()).min(1.0);
        let unique = ((share * f64::from(prev.image_chunks)).round() as u32).max(1);
        let ws_start = self.ws.len() as u32;
        self.ws.extend_from_within(prev.ws_start as usize..(prev.ws_start + prev.ws_len) as usize);
        let [b, r, d, a] = func.parts;
        let app_share = (f64::from(unique) / f64::from(func.app_chunks.max(1))).min(1.0);
        let deps_share =
            (f64::from(unique.saturating_sub(func.app_chunks)) / f64::from(func.deps_chunks.max(1))).min(1.0);
        for (offset, len, share) in [(b + r + d, a, app_share), (b + r, d, deps_share)] {
            let rewrite = stochastic_round(share * f64::from(len), rng).min(len);
            let first = self.fresh(rewrite);
            for i in 0..rewrite {
                self.ws[(ws_start + offset + i) as usize] = first + i;
            }
        }
        self.versions.push(Version {
            function: f,
            ws_start,
            ws_len: prev.ws_len,
            image_chunks: prev.image_chunks,
            unique_chunks: unique,
        });
        version
    }
}

/// A layer's chunk count (log-normal size, at least one chunk) and how many of them starts read.
fn layer_shape(sc: &FleetScenario, median: u64, sigma: f64, read: f64, rng: &mut ChaCha8Rng) -> (u32, u32) {
    let z: f64 = StandardNormal.sample(rng);
    let bytes = median as f64 * (sigma * z).exp();
    let chunks = (bytes / sc.chunk_size.bytes() as f64).ceil().clamp(1.0, 1e7) as u32;
    let hot = stochastic_round(f64::from(chunks) * read, rng).min(chunks);
    (chunks, hot)
}

/// `x` rounded down or up with the odds that keep its expectation.
fn stochastic_round(x: f64, rng: &mut ChaCha8Rng) -> u32 {
    let floor = x.floor();
    (floor as u32) + u32::from(rng.random::<f64>() < x - floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FleetScenario {
        FleetScenario::load(
            None,
            &[
                "population.functions=2000".into(),
                "cron.hourly_functions=0".into(),
                "cron.daily_functions=0".into(),
                "cron.weekly_functions=0".into(),
                "uploads.updates_per_hour=20000".into(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn reupload_share_and_unique_share_follow_the_paper_inputs() {
        let pop = Population::generate(&small(), 7, &[]);
        let s = &pop.summary;
        assert!(s.updates > 20_000, "{}", s.updates);
        assert!((s.reupload_share - 0.8).abs() < 0.015, "{}", s.reupload_share);
        assert!((s.unique_share_median - 0.025).abs() < 0.003, "{}", s.unique_share_median);
        assert!((s.unique_share_mean - 0.043).abs() < 0.005, "{}", s.unique_share_mean);
    }

    #[test]
    fn shared_layers_share_chunks_and_reuploads_reuse_them() {
        let pop = Population::generate(&small(), 3, &[]);
        // The most popular base layer's read chunks are in many working sets.
        let mut firsts: FxHashMap<u32, usize> = FxHashMap::default();
        for f in &pop.functions {
            *firsts.entry(pop.working_set(f.first_version)[0]).or_default() += 1;
        }
        let with = firsts.values().copied().max().unwrap();
        assert!(with > pop.functions.len() / 4, "{with}");
        // A re-upload reads exactly its predecessor's chunks; a change reads some new ones.
        let mut seen = 0;
        for u in &pop.uploads {
            let v = pop.versions[u.version as usize];
            if u.kind == UploadKind::Update && v.unique_chunks == 0 {
                let prev =
                    (0..u.version).rev().find(|&i| pop.versions[i as usize].function == u.function).unwrap();
                assert_eq!(pop.working_set(u.version), pop.working_set(prev));
                seen += 1;
            }
        }
        assert!(seen > 100);
        assert!(pop.summary.mean_working_set_chunks > 20.0);
    }

    #[test]
    fn real_images_share_chunks_by_name_and_leave_the_synthetic_population_alone() {
        use crate::fleet::scenario::RealImageConfig;
        let name = |i: u8| ContentKey([i; 32]);
        let cfg = |trace: bool, functions: usize| RealImageConfig {
            manifest: "m".into(),
            store: "s".into(),
            key: trace.then(|| "k".into()),
            trace: trace.then(|| "t".into()),
            read_fraction: (!trace).then_some(0.5),
            functions,
        };
        let mut sc = small();
        sc.population.real = vec![cfg(true, 2), cfg(true, 1), cfg(false, 3)];
        sc.validate().unwrap();
        let img = |names: &[u8], ws: Option<Vec<u32>>| RealImage {
            name: "m".into(),
            chunks: names.iter().map(|&i| name(i)).collect(),
            working_set: ws,
            trace_missing_paths: 0,
        };
        // Image b shares chunks 1 and 2 with image a; c is all its own.
        let real = [
            img(&[1, 2, 3], Some(vec![0, 2, 1])),
            img(&[1, 2, 4], Some(vec![1, 2])),
            img(&[10, 11, 12, 13, 14, 15, 16, 17], None),
        ];
        let plain = Population::generate(&small(), 5, &[]);
        let pop = Population::generate(&sc, 5, &real);
        let synthetic = plain.functions.len();
        assert_eq!(pop.functions.len(), synthetic + 6, "real functions come after every synthetic one");
        assert_eq!(pop.readable_chunks() - plain.readable_chunks(), pop.summary.real_readable_chunks as u32);
        for (f, g) in plain.functions.iter().zip(&pop.functions) {
            assert_eq!(plain.working_set(f.first_version), pop.working_set(g.first_version));
        }
        let ws = |k: usize| pop.working_set(pop.functions[synthetic + k].first_version).to_vec();
        let (a, b) = (ws(0), ws(2));
        assert_eq!(ws(1), a, "functions of one image share its working set");
        assert!(a.iter().all(|&id| id >= plain.readable_chunks()), "no real chunk takes a synthetic id");
        // a reads chunks [1, 3, 2]; b reads [2, 4]: chunk 2 has one id in both.
        assert_eq!(b[0], a[2]);
        assert!(!a.contains(&b[1]));
        let s = &pop.summary;
        assert_eq!(
            (s.real_images, s.real_functions, s.real_image_chunks, s.real_distinct_chunks),
            (3, 6, 14, 12)
        );
        assert_eq!(pop.functions[synthetic + 3].real, Some(2));
        let c = ws(3);
        assert!(c.len() < 8 && c == ws(5), "a read_fraction draw, one per image: {c:?}");
    }
}
