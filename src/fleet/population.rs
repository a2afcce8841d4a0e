//! The open world's functions and images: who owns which function, which layers each image is
//! built from, and every upload, version, abandonment, layer update and salt rotation over the
//! run, generated up front from the seed (to the longest warm-up plus the window).
//!
//! An image is a chain base -> runtime -> dependencies -> app. The flattener places a layer's
//! files after everything below it, so a layer's chunks are shared exactly by the images whose
//! chain up to and including that layer is the same: chunk identity is a node of the tree of layer
//! prefixes, and the layout rules need no bytes. Base and runtime lineages get new versions
//! (security updates) and the salt rotates; both are part of a node's key, so a function that
//! redeploys after either gets new chunks for the same bytes, shared with every other function
//! that redeploys onto the same chain. Only chunks a start reads get dense ids (the rest are
//! counted, for image sizes and unique shares), which is what keeps 100,000 functions in memory.
//!
//! Deploys are edits, not draws of a unique share: a deploy rebuilds the image on the current
//! chain and salt, and changes the code (a share of the app layer's chunks) or the dependencies
//! (a share of the deps layer's) with the scenario's odds. How many uploads bring no unique chunk,
//! and the unique share of the others, are outputs: they come out of the edit odds, the layer
//! sizes, the update and rotation intervals and how often each function deploys.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::popularity::Zipf;
use super::real::RealImage;
use super::scenario::{FleetScenario, LayerLevel};
use crate::cache::reuse::{HASH_MODULUS, sample_hash};
use crate::sim::chunks::{ContentKey, Interner};
use crate::sim::rng::stream;
use crate::sim::time::{SimDuration, SimTime};

/// A layer node of the prefix tree.
#[derive(Debug, Clone, Copy)]
struct Layer {
    /// Every chunk of the layer (for sizes and unique shares).
    chunks: u32,
    /// Range of the layer's read chunks in the hot arena.
    hot_start: u32,
    hot_len: u32,
}

/// No layer (a real image's version has no chain).
const NO_LAYER: u32 = u32::MAX;
/// The origin of a chunk that no synthetic version created (a real image's).
pub const NO_VERSION: u32 = u32::MAX;

/// Why a version's new chunks are new (bits of [`Version::news`]).
pub mod news {
    /// The function's first image.
    pub const NEW_FUNCTION: u8 = 1;
    /// A code change rewrote part of the app layer.
    pub const CODE: u8 = 2;
    /// A dependency change rewrote part of the deps layer.
    pub const DEPS: u8 = 4;
    /// A new base or runtime version under the image: everything above it is new.
    pub const LAYER_UPDATE: u8 = 8;
    /// A salt rotation since the function's last upload: every chunk is new.
    pub const SALT: u8 = 16;
    /// A large function's deploy shipped a new model: its whole own layer is new.
    pub const MODEL: u8 = 32;
    /// Names, in bit order, for reports.
    pub const NAMES: [(u8, &str); 6] = [
        (NEW_FUNCTION, "new function"),
        (CODE, "code change"),
        (DEPS, "dependency change"),
        (LAYER_UPDATE, "base/runtime update"),
        (SALT, "salt rotation"),
        (MODEL, "model change"),
    ];
}

/// A function, as created (initially or during the run).
#[derive(Debug, Clone)]
pub struct Function {
    pub created: SimTime,
    /// When it stops being invoked; `None`: never (real images).
    pub abandoned: Option<SimTime>,
    /// Popularity rank among the steady (unscheduled) functions.
    pub rank: usize,
    pub customer: u32,
    /// `(period, offset)` in minutes of the week for a scheduled (cron) function: it runs only
    /// when the minute of the week modulo `period` is `offset`.
    pub schedule: Option<(u32, u32)>,
    /// Base, runtime and dependency choices (lineages).
    stack: [u32; 3],
    /// Lengths of the base, runtime, deps and app parts of the working set, in that order.
    parts: [u32; 4],
    /// Every chunk of the app layer and of the deps layer (their sizes, for edits).
    app_chunks: u32,
    deps_chunks: u32,
    pub first_version: u32,
    /// Its own layer is large (`[population.large]`): a model or a big application.
    pub large: bool,
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
    pub created: SimTime,
    /// The deps layer node the image is built on.
    chain: u32,
    /// The salt epoch it was chunked under.
    epoch: u64,
    /// Why its new chunks are new ([`news`] bits).
    pub news: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UploadKind {
    NewFunction,
    Update,
    /// The function is abandoned: no more invocations.
    Abandon,
}

/// An event of a function: from `at`, `function` runs `version` (or, abandoned, nothing).
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    pub at: SimTime,
    pub function: u32,
    pub version: u32,
    pub kind: UploadKind,
}

/// What the generated world looks like, over the measured window ([`Population::summary`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PopulationSummary {
    pub initial_functions: usize,
    /// Functions invocable at the end of the window.
    pub active_functions: usize,
    pub functions_created: usize,
    pub functions_abandoned: usize,
    pub updates: usize,
    pub base_updates: usize,
    pub runtime_updates: usize,
    pub salt_rotations: usize,
    /// Updates with no unique chunk, over all updates (the paper: ~80%). An output of the edit model.
    pub reupload_share: f64,
    /// Unique share of the updates that had some (the paper: mean 4.3%, median 2.5%). An output.
    pub unique_share_mean: f64,
    pub unique_share_median: f64,
    pub layers: usize,
    /// Distinct chunks any start could read by the end of the window (the dense id space).
    pub readable_chunks: u32,
    pub mean_image_chunks: f64,
    pub mean_working_set_chunks: f64,
    /// Large functions (`[population.large]`) invocable at the end of the window, and their mean
    /// working set.
    pub large_functions: usize,
    pub mean_large_working_set_chunks: f64,
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
    /// `(parent, choice, lineage version, salt epoch)` -> layer.
    children: FxHashMap<(u32, u32, u32, u64), u32>,
    next_chunk: u32,
    /// Per chunk id, the version that created it ([`NO_VERSION`] for real images' chunks).
    origin: Vec<u32>,
    pub functions: Vec<Function>,
    pub versions: Vec<Version>,
    ws: Vec<u32>,
    /// Latest version of each function.
    latest: Vec<u32>,
    /// Time-ordered.
    pub uploads: Vec<Upload>,
    /// Times of base updates, runtime updates and salt rotations (for the summary).
    layer_updates: Vec<(SimTime, bool)>,
    salt_rotation: SimDuration,
    /// Functions with a popularity (not scheduled, not real) at the start.
    steady_functions: usize,
    base_version: Vec<u32>,
    runtime_version: Vec<u32>,
    customer_stacks: Vec<Option<[u32; 3]>>,
    /// Summary of what was loaded (real images); the window's is [`Population::summary`].
    real_summary: PopulationSummary,
    /// Under `sampling.one_in`, the sampled part of every version's working set.
    sampled: Option<SampledSets>,
}

/// Each version's working set restricted to the sampled chunks: `spans[version]` = `(start, len)`
/// in `ws`. Versions that share a working set share its span.
struct SampledSets {
    ws: Vec<u32>,
    spans: Vec<(u32, u32)>,
}

/// The virtual root of the layer tree: base layer `i` is its child `i`.
const ROOT: u32 = u32::MAX;

struct Picks {
    base: Zipf,
    runtime: Zipf,
    deps: Zipf,
    customer: Zipf,
}

impl Population {
    /// The world of `sc` from time zero to `horizon`, with `real` the loaded images of its
    /// `[[population.real]]` entries, in order (`ingest::real::load`).
    ///
    /// # Panics
    /// If `real` does not hold one image per entry: a caller's bug, not an input error.
    pub fn generate(sc: &FleetScenario, seed: u64, real: &[RealImage], horizon: SimDuration) -> Self {
        assert_eq!(
            real.len(),
            sc.population.real.len(),
            "load the scenario's [[population.real]] images with ingest::real::load"
        );
        let p = &sc.population;
        let w = &sc.world;
        let mut rng = stream(seed, "population");
        let c = &sc.cron;
        let scheduled = c.hourly_functions + c.daily_functions + c.weekly_functions;
        let steady = p.functions - scheduled;
        let mut pop = Population {
            layers: Vec::new(),
            hot: Vec::new(),
            children: FxHashMap::default(),
            next_chunk: 0,
            origin: Vec::new(),
            functions: Vec::with_capacity(p.functions),
            versions: Vec::new(),
            ws: Vec::new(),
            latest: Vec::new(),
            uploads: Vec::new(),
            layer_updates: Vec::new(),
            salt_rotation: w.salt_rotation,
            steady_functions: steady,
            base_version: vec![0; p.base.choices],
            runtime_version: vec![0; p.base.choices * p.runtime.choices],
            customer_stacks: vec![None; w.customers],
            real_summary: PopulationSummary::default(),
            sampled: None,
        };
        let picks = Picks {
            base: Zipf::new(p.base.choices, p.base.zipf),
            runtime: Zipf::new(p.runtime.choices, p.runtime.zipf),
            deps: Zipf::new(p.deps.choices, p.deps.zipf),
            customer: Zipf::new(w.customers, w.customer_zipf),
        };
        let lifetime = Exp::new(1.0 / w.function_lifetime.as_secs_f64()).expect("validated lifetime");
        let mut abandon: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
        let week = 7 * 24 * 60;
        let schedule_of = |i: usize, rng: &mut ChaCha8Rng| -> Option<(u32, u32)> {
            let period = if i < steady {
                return None;
            } else if i < steady + c.hourly_functions {
                60
            } else if i < steady + c.hourly_functions + c.daily_functions {
                24 * 60
            } else {
                week
            };
            let offset = if rng.random_bool(c.on_the_hour_share) { 0 } else { rng.random_range(0..period) };
            Some((period, offset))
        };
        for i in 0..p.functions {
            let schedule = schedule_of(i, &mut rng);
            let f = pop.create_function(
                sc,
                &picks,
                SimTime::ZERO,
                i.min(steady.saturating_sub(1)),
                schedule,
                &mut rng,
            );
            let end = lifetime.sample(&mut rng);
            abandon.push(Reverse(((end * 1e9) as u64, f)));
        }
        // The processes of the open world, merged in time order.
        let end = horizon.as_secs_f64();
        let mut events: Vec<(f64, u8)> = Vec::new();
        let lineages = [p.base.choices as f64, (p.base.choices * p.runtime.choices) as f64];
        for (rate, kind) in [
            (sc.uploads.new_functions_per_hour / 3600.0, 0u8),
            (sc.uploads.updates_per_hour / 3600.0, 1),
            (lineages[0] / w.base_update_interval.as_secs_f64(), 2),
            (lineages[1] / w.runtime_update_interval.as_secs_f64(), 3),
        ] {
            if rate <= 0.0 {
                continue;
            }
            let gap = Exp::new(rate).expect("a positive rate");
            let mut t = gap.sample(&mut rng);
            while t < end {
                events.push((t, kind));
                t += gap.sample(&mut rng);
            }
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut active: Vec<u32> = (0..p.functions as u32).collect();
        let mut slot: Vec<u32> = (0..p.functions as u32).collect();
        let weight = |rank: usize| Zipf::weight(rank, sc.workload.popularity_zipf);
        for (t, kind) in events {
            let at = SimTime::from_nanos((t * 1e9) as u64);
            while let Some(&Reverse((gone, f))) = abandon.peek() {
                if gone > at.as_nanos() {
                    break;
                }
                abandon.pop();
                let i = slot[f as usize] as usize;
                active.swap_remove(i);
                if let Some(&moved) = active.get(i) {
                    slot[moved as usize] = i as u32;
                }
                let when = SimTime::from_nanos(gone);
                pop.functions[f as usize].abandoned = Some(when);
                pop.uploads.push(Upload {
                    at: when,
                    function: f,
                    version: pop.latest[f as usize],
                    kind: UploadKind::Abandon,
                });
            }
            match kind {
                0 => {
                    // A new function replaces the abandoned ones: scheduled with the initial odds.
                    let i = rng.random_range(0..p.functions);
                    let schedule = schedule_of(i, &mut rng);
                    let rank = rng.random_range(0..steady.max(1));
                    let f = pop.create_function(sc, &picks, at, rank, schedule, &mut rng);
                    slot.push(active.len() as u32);
                    active.push(f);
                    let gone = at.as_nanos() + (lifetime.sample(&mut rng) * 1e9) as u64;
                    abandon.push(Reverse((gone, f)));
                    let version = pop.functions[f as usize].first_version;
                    pop.uploads.push(Upload { at, function: f, version, kind: UploadKind::NewFunction });
                }
                1 if !active.is_empty() => {
                    // By popularity among the live functions: rejection on the Zipf weight.
                    let f = loop {
                        let f = active[rng.random_range(0..active.len())];
                        if rng.random::<f64>() < weight(pop.functions[f as usize].rank) {
                            break f;
                        }
                    };
                    let version = pop.update(sc, f, at, &mut rng);
                    pop.uploads.push(Upload { at, function: f, version, kind: UploadKind::Update });
                }
                2 => {
                    let b = rng.random_range(0..pop.base_version.len());
                    pop.base_version[b] += 1;
                    pop.layer_updates.push((at, true));
                }
                3 => {
                    let r = rng.random_range(0..pop.runtime_version.len());
                    pop.runtime_version[r] += 1;
                    pop.layer_updates.push((at, false));
                }
                _ => {}
            }
        }
        pop.add_real(sc, seed, real);
        pop
    }

    /// The world over `[from, to)`: uploads, updates, the dedup figures of the updates, and the
    /// population as it stands at `to`.
    pub fn summary(&self, sc: &FleetScenario, from: SimTime, to: SimTime) -> PopulationSummary {
        let mut s = PopulationSummary {
            initial_functions: sc.population.functions,
            layers: self.layers.len(),
            ..self.real_summary.clone()
        };
        let inside = |t: SimTime| t >= from && t < to;
        let mut shares = Vec::new();
        for u in self.uploads.iter().filter(|u| inside(u.at)) {
            match u.kind {
                UploadKind::NewFunction => s.functions_created += 1,
                UploadKind::Abandon => s.functions_abandoned += 1,
                UploadKind::Update => {
                    s.updates += 1;
                    let v = self.versions[u.version as usize];
                    if v.unique_chunks > 0 {
                        shares.push(f64::from(v.unique_chunks) / f64::from(v.image_chunks));
                    }
                }
            }
        }
        for &(_, base) in self.layer_updates.iter().filter(|(t, _)| inside(*t)) {
            if base {
                s.base_updates += 1;
            } else {
                s.runtime_updates += 1;
            }
        }
        let rot = self.salt_rotation.as_nanos();
        s.salt_rotations = (to.as_nanos().saturating_sub(1) / rot)
            .saturating_sub(from.as_nanos().saturating_sub(1) / rot) as usize;
        if s.updates > 0 {
            s.reupload_share = 1.0 - shares.len() as f64 / s.updates as f64;
        }
        if !shares.is_empty() {
            s.unique_share_mean = shares.iter().sum::<f64>() / shares.len() as f64;
            shares.sort_by(f64::total_cmp);
            s.unique_share_median = shares[shares.len() / 2];
        }
        let alive = |f: &Function| f.created <= to && f.abandoned.is_none_or(|a| a > to);
        s.active_functions = self.functions.iter().filter(|f| alive(f)).count();
        let live: Vec<(&Version, bool)> = self
            .latest
            .iter()
            .zip(&self.functions)
            .filter(|(_, f)| alive(f))
            .map(|(&v, f)| (&self.versions[v as usize], f.large))
            .collect();
        let large: Vec<f64> = live.iter().filter(|(_, l)| *l).map(|(v, _)| f64::from(v.ws_len)).collect();
        s.large_functions = large.len();
        s.mean_large_working_set_chunks = large.iter().sum::<f64>() / large.len().max(1) as f64;
        let n = live.len().max(1) as f64;
        s.mean_image_chunks = live.iter().map(|(v, _)| f64::from(v.image_chunks)).sum::<f64>() / n;
        s.mean_working_set_chunks = live.iter().map(|(v, _)| f64::from(v.ws_len)).sum::<f64>() / n;
        s.readable_chunks = self.chunks_by(to);
        s
    }

    /// Chunk ids created by uploads before `t`, and every real image's.
    fn chunks_by(&self, t: SimTime) -> u32 {
        self.origin.iter().filter(|&&o| o == NO_VERSION || self.versions[o as usize].created < t).count()
            as u32
    }

    /// The real images' functions, after every synthetic one (so no synthetic id moves). Chunk ids
    /// come from chunk names: a chunk two images share gets one id; a real chunk never takes a
    /// synthetic id. Ranks and working sets without a trace come from their own random stream,
    /// so mixing real images in leaves the synthetic population as it was.
    fn add_real(&mut self, sc: &FleetScenario, seed: u64, real: &[RealImage]) {
        let mut rng = stream(seed, "population.real");
        // Real chunks take the next ids, in first-read order: the base plus the interned id.
        let base = self.next_chunk;
        let mut summary = PopulationSummary::default();
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
                    self.fresh(1, NO_VERSION);
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
                    created: SimTime::ZERO,
                    chain: NO_LAYER,
                    epoch: 0,
                    news: 0,
                });
                self.latest.push(version);
                self.functions.push(Function {
                    created: SimTime::ZERO,
                    abandoned: None,
                    rank: rng.random_range(0..self.steady_functions.max(1)),
                    customer: 0,
                    schedule: None,
                    stack: [0; 3],
                    parts: [0, 0, 0, ws_len],
                    app_chunks: image_chunks,
                    deps_chunks: 0,
                    first_version: version,
                    large: false,
                    real: Some(i as u32),
                });
            }
            let s = &mut summary;
            s.real_images += 1;
            s.real_functions += cfg.functions;
            s.real_image_chunks += u64::from(image_chunks);
        }
        summary.real_distinct_chunks = seen.len() as u64;
        summary.real_readable_chunks = ids.len() as u64;
        self.real_summary = summary;
    }

    /// The chunks a start of `version` reads in the simulation, in order: its whole working set,
    /// or under [`Population::sample`] the sampled chunks of it.
    pub fn working_set(&self, version: u32) -> &[u32] {
        match &self.sampled {
            None => self.full_working_set(version),
            Some(s) => {
                let (start, len) = s.spans[version as usize];
                &s.ws[start as usize..(start + len) as usize]
            }
        }
    }

    /// Every chunk a start of `version` reads, in order, sampled or not.
    pub fn full_working_set(&self, version: u32) -> &[u32] {
        let v = &self.versions[version as usize];
        &self.ws[v.ws_start as usize..(v.ws_start + v.ws_len) as usize]
    }

    /// Restricts the simulated working sets to the chunks whose hash (of `seed`) falls in one in
    /// `one_in`: a spatial sample, the same chunks for every version and every reader, as SHARDS
    /// samples a request stream. The generated world (chunk ids, origins, the summary) is kept.
    pub fn sample(&mut self, one_in: u32, seed: u64) {
        if one_in <= 1 {
            self.sampled = None;
            return;
        }
        let below = (HASH_MODULUS / u64::from(one_in)) as u32;
        let mut ws = Vec::with_capacity(self.ws.len() / one_in as usize);
        let mut spans: Vec<(u32, u32)> = Vec::with_capacity(self.versions.len());
        let mut previous = None;
        for v in &self.versions {
            // A real image's functions (one after the other) share one span, and so one sample.
            if previous == Some((v.ws_start, v.ws_len)) {
                spans.push(*spans.last().expect("the previous version's span"));
                continue;
            }
            previous = Some((v.ws_start, v.ws_len));
            let start = ws.len() as u32;
            let full = &self.ws[v.ws_start as usize..(v.ws_start + v.ws_len) as usize];
            ws.extend(full.iter().filter(|&&c| sample_hash(c, seed) < below));
            spans.push((start, ws.len() as u32 - start));
        }
        self.sampled = Some(SampledSets { ws, spans });
    }

    /// Distinct readable chunks over the whole generated world (ids are `0..readable_chunks`).
    pub fn readable_chunks(&self) -> u32 {
        self.next_chunk
    }

    /// The version that created chunk `id` ([`NO_VERSION`] for a real image's chunk).
    pub fn origin(&self, id: u32) -> u32 {
        self.origin.get(id as usize).copied().unwrap_or(NO_VERSION)
    }

    fn fresh(&mut self, n: u32, version: u32) -> u32 {
        let first = self.next_chunk;
        self.next_chunk = self.next_chunk.checked_add(n).expect("fewer than 2^32 readable chunks");
        self.origin.extend(std::iter::repeat_n(version, n as usize));
        first
    }

    /// The layer `choice` under `parent` at lineage version `lineage` and salt `epoch`, created on
    /// first use (its new chunks credited to `version`); whether it is new.
    #[allow(clippy::too_many_arguments)]
    fn layer(
        &mut self,
        sc: &FleetScenario,
        key: (u32, u32, u32, u64),
        level: &LayerLevel,
        version: u32,
        rng: &mut ChaCha8Rng,
    ) -> (u32, bool) {
        if let Some(&l) = self.children.get(&key) {
            return (l, false);
        }
        let (chunks, hot_len) =
            layer_shape(sc, level.size_median.bytes(), level.size_sigma, level.read_fraction, rng);
        let first = self.fresh(hot_len, version);
        let hot_start = self.hot.len() as u32;
        self.hot.extend(first..first + hot_len);
        let id = self.layers.len() as u32;
        self.layers.push(Layer { chunks, hot_start, hot_len });
        self.children.insert(key, id);
        (id, true)
    }

    fn epoch(&self, at: SimTime) -> u64 {
        at.as_nanos() / self.salt_rotation.as_nanos()
    }

    /// The chain (base, runtime, deps nodes) of `stack` at `at`, and the chunks its new layers
    /// brought.
    fn chain(
        &mut self,
        sc: &FleetScenario,
        stack: [u32; 3],
        at: SimTime,
        version: u32,
        rng: &mut ChaCha8Rng,
    ) -> ([u32; 3], u32) {
        let p = &sc.population;
        let epoch = self.epoch(at);
        let vb = self.base_version[stack[0] as usize];
        let vr = self.runtime_version[(stack[0] as usize) * p.runtime.choices + stack[1] as usize];
        let mut unique = 0;
        let (b, new) = self.layer(sc, (ROOT, stack[0], vb, epoch), &p.base, version, rng);
        unique += if new { self.layers[b as usize].chunks } else { 0 };
        let (r, new) = self.layer(sc, (b, stack[1], vr, epoch), &p.runtime, version, rng);
        unique += if new { self.layers[r as usize].chunks } else { 0 };
        let (d, new) = self.layer(sc, (r, stack[2], 0, epoch), &p.deps, version, rng);
        unique += if new { self.layers[d as usize].chunks } else { 0 };
        ([b, r, d], unique)
    }

    fn hot(&self, layer: u32) -> std::ops::Range<usize> {
        let l = self.layers[layer as usize];
        l.hot_start as usize..(l.hot_start + l.hot_len) as usize
    }

    fn create_function(
        &mut self,
        sc: &FleetScenario,
        picks: &Picks,
        at: SimTime,
        rank: usize,
        schedule: Option<(u32, u32)>,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        let customer = picks.customer.pick(rng) as u32;
        let own = rng.random_bool(sc.world.customer_stack_share);
        let mut draw =
            || [picks.base.pick(rng) as u32, picks.runtime.pick(rng) as u32, picks.deps.pick(rng) as u32];
        let stack = if own {
            match self.customer_stacks[customer as usize] {
                Some(s) => s,
                None => {
                    let s = draw();
                    self.customer_stacks[customer as usize] = Some(s);
                    s
                }
            }
        } else {
            draw()
        };
        let version = self.versions.len() as u32;
        let (chain, mut unique) = self.chain(sc, stack, at, version, rng);
        let (large, app) = (rng.random_bool(sc.population.large.share), &sc.population);
        let (median, sigma, read) = if large {
            (app.large.size_median, app.large.size_sigma, app.large.read_fraction)
        } else {
            (app.app.size_median, app.app.size_sigma, app.app.read_fraction)
        };
        let (app_chunks, app_hot) = layer_shape(sc, median.bytes(), sigma, read, rng);
        let first = self.fresh(app_hot, version);
        unique += app_chunks;
        let ws_start = self.ws.len() as u32;
        let mut parts = [0u32; 4];
        for (i, &l) in chain.iter().enumerate() {
            parts[i] = self.layers[l as usize].hot_len;
            let range = self.hot(l);
            self.ws.extend_from_slice(&self.hot[range]);
        }
        parts[3] = app_hot;
        self.ws.extend(first..first + app_hot);
        let image_chunks = chain.iter().map(|&l| self.layers[l as usize].chunks).sum::<u32>() + app_chunks;
        let f = self.functions.len() as u32;
        self.versions.push(Version {
            function: f,
            ws_start,
            ws_len: self.ws.len() as u32 - ws_start,
            image_chunks,
            unique_chunks: unique,
            created: at,
            chain: chain[2],
            epoch: self.epoch(at),
            news: news::NEW_FUNCTION,
        });
        self.latest.push(version);
        self.functions.push(Function {
            created: at,
            abandoned: None,
            rank,
            customer,
            schedule,
            stack,
            parts,
            app_chunks,
            deps_chunks: self.layers[chain[2] as usize].chunks,
            first_version: version,
            large,
            real: None,
        });
        f
    }

    /// A deploy of `f` at `at`: the image rebuilt on the current chain and salt, with a code
    /// change and a dependency change each with the scenario's odds. A new chain or salt makes
    /// every layer above the change new (the flattener's layout shifts them); an edit rewrites a
    /// share of its layer's read chunks.
    fn update(&mut self, sc: &FleetScenario, f: u32, at: SimTime, rng: &mut ChaCha8Rng) -> u32 {
        let func = self.functions[f as usize].clone();
        let prev = self.versions[self.latest[f as usize] as usize];
        let u = &sc.uploads;
        let version = self.versions.len() as u32;
        self.latest[f as usize] = version;
        let (chain, mut unique) = self.chain(sc, func.stack, at, version, rng);
        let epoch = self.epoch(at);
        let mut why = 0u8;
        let ws_start = self.ws.len() as u32;
        let [mut b, mut r, mut d, a] = func.parts;
        if chain[2] != prev.chain {
            // Rebuilt on a new chain: its layers' read chunks, then a new app layer on top.
            why |= if epoch != prev.epoch { news::SALT } else { news::LAYER_UPDATE };
            for &l in &chain {
                let range = self.hot(l);
                self.ws.extend_from_slice(&self.hot[range]);
            }
            [b, r, d] = chain.map(|l| self.layers[l as usize].hot_len);
            let first = self.fresh(a, version);
            self.ws.extend(first..first + a);
            unique += func.app_chunks;
            let deps_chunks = self.layers[chain[2] as usize].chunks;
            let f = &mut self.functions[f as usize];
            f.parts = [b, r, d, a];
            f.deps_chunks = deps_chunks;
        } else {
            self.ws.extend_from_within(prev.ws_start as usize..(prev.ws_start + prev.ws_len) as usize);
        }
        assert_eq!(self.ws.len() as u32 - ws_start, b + r + d + a, "a working set is its parts");
        if rng.random_bool(u.deps_change_share) {
            let rewrite = stochastic_round(u.deps_change_fraction * f64::from(d), rng).min(d);
            let first = self.fresh(rewrite, version);
            for i in 0..rewrite {
                self.ws[(ws_start + b + r + i) as usize] = first + i;
            }
            unique +=
                (u.deps_change_fraction * f64::from(self.functions[f as usize].deps_chunks)).round() as u32;
            why |= news::DEPS;
        }
        let fresh_top = why & (news::SALT | news::LAYER_UPDATE) != 0;
        if func.large && !fresh_top && rng.random_bool(sc.population.large.model_change_share) {
            // A new model: every read chunk of the own layer is new.
            let first = self.fresh(a, version);
            for i in 0..a {
                self.ws[(ws_start + b + r + d + i) as usize] = first + i;
            }
            unique += func.app_chunks;
            why |= news::MODEL;
        } else if rng.random_bool(u.code_change_share) && !fresh_top {
            let z: f64 = StandardNormal.sample(rng);
            let share = (u.code_change_median * (u.code_change_sigma * z).exp()).min(1.0);
            let rewrite = stochastic_round(share * f64::from(a), rng).clamp(1, a.max(1)).min(a);
            let first = self.fresh(rewrite, version);
            for i in 0..rewrite {
                self.ws[(ws_start + b + r + d + i) as usize] = first + i;
            }
            unique += ((share * f64::from(func.app_chunks)).round() as u32).max(1);
            why |= news::CODE;
        }
        let image_chunks =
            chain.iter().map(|&l| self.layers[l as usize].chunks).sum::<u32>() + func.app_chunks;
        self.versions.push(Version {
            function: f,
            ws_start,
            ws_len: self.ws.len() as u32 - ws_start,
            image_chunks,
            unique_chunks: unique.min(image_chunks),
            created: at,
            chain: chain[2],
            epoch,
            news: why,
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

    /// The dedup figures are outputs of the edit model: more code changes, fewer uploads without
    /// a unique chunk; a salt rotation or a base update in the world makes some deploys new.
    #[test]
    fn reupload_share_comes_out_of_the_edit_odds() {
        let horizon = SimDuration::from_secs(6 * 3600);
        let zero = |extra: &[&str]| {
            let mut o: Vec<String> = [
                "uploads.code_change_share=0.0",
                "uploads.deps_change_share=0.0",
                "population.large.model_change_share=0.0",
                "world.salt_rotation=\"1000d\"",
                "world.base_update_interval=\"1000d\"",
                "world.runtime_update_interval=\"1000d\"",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            o.extend(extra.iter().map(|s| s.to_string()));
            let mut sc = small();
            sc = FleetScenario::load(Some(("x", &sc.to_toml())), &o).unwrap();
            let pop = Population::generate(&sc, 7, &[], horizon);
            pop.summary(&sc, SimTime::ZERO, SimTime::ZERO + horizon).reupload_share
        };
        assert_eq!(zero(&[]), 1.0, "nothing changes: every deploy is a re-upload");
        let some = zero(&["uploads.code_change_share=0.2"]);
        let more = zero(&["uploads.code_change_share=0.5"]);
        assert!(some < 0.9 && more < some, "{some} {more}");
        // A salt rotation every ten minutes: a deploy after it re-chunks every layer.
        let rotated = zero(&["world.salt_rotation=\"10min\""]);
        assert!(rotated < 0.8, "{rotated}");
    }

    /// A large function's new model makes its whole own layer new and nothing below it; a
    /// code change of an ordinary function rewrites only part of it.
    #[test]
    fn a_new_model_rewrites_the_whole_own_layer() {
        let sc = FleetScenario::load(
            Some(("x", &small().to_toml())),
            &[
                "population.large.share=0.5".into(),
                "population.large.model_change_share=1.0".into(),
                "world.salt_rotation=\"1000d\"".into(),
                "world.base_update_interval=\"1000d\"".into(),
                "world.runtime_update_interval=\"1000d\"".into(),
                "uploads.deps_change_share=0.0".into(),
            ],
        )
        .unwrap();
        let pop = Population::generate(&sc, 5, &[], SimDuration::from_secs(3600));
        let mut models = 0;
        for u in pop.uploads.iter().filter(|u| u.kind == UploadKind::Update) {
            let f = &pop.functions[u.function as usize];
            let v = pop.versions[u.version as usize];
            let ws = pop.working_set(u.version);
            let own = &ws[ws.len() - f.parts[3] as usize..];
            let new_own = own.iter().filter(|&&c| pop.origin(c) == u.version).count();
            let new_below =
                ws[..ws.len() - own.len()].iter().filter(|&&c| pop.origin(c) == u.version).count();
            assert_eq!(new_below, 0, "only the own layer changes");
            if f.large {
                assert!(v.news & news::MODEL != 0 && new_own == own.len(), "a model change rewrites it all");
                models += 1;
            } else if v.news & news::CODE != 0 {
                assert!(new_own <= own.len());
            }
        }
        assert!(models > 100, "{models} model changes");
        let large: Vec<&Function> = pop.functions.iter().filter(|f| f.large).collect();
        let ordinary: Vec<&Function> = pop.functions.iter().filter(|f| !f.large).collect();
        let mean = |fs: &[&Function]| fs.iter().map(|f| f64::from(f.parts[3])).sum::<f64>() / fs.len() as f64;
        assert!(mean(&large) > 10.0 * mean(&ordinary), "{} vs {}", mean(&large), mean(&ordinary));
    }

    #[test]
    fn a_deploy_after_a_rotation_shares_the_new_chain_with_other_deploys() {
        let mut sc = FleetScenario::load(
            Some(("x", &small().to_toml())),
            &[
                "world.salt_rotation=\"2h\"".into(),
                "uploads.code_change_share=0.0".into(),
                "uploads.deps_change_share=0.0".into(),
            ],
        )
        .unwrap();
        sc.population.base.choices = 1;
        sc.population.runtime.choices = 1;
        let pop = Population::generate(&sc, 9, &[], SimDuration::from_secs(4 * 3600));
        let after: Vec<&Upload> = pop
            .uploads
            .iter()
            .filter(|u| {
                u.kind == UploadKind::Update && u.at > SimTime::ZERO + SimDuration::from_secs(2 * 3600)
            })
            .collect();
        assert!(after.len() > 10);
        // Every deploy after the rotation reads new base chunks, the same ones for all of them.
        let first = pop.working_set(after[0].version)[0];
        assert!(pop.versions[pop.origin(first) as usize].created > SimTime::ZERO);
        for u in &after {
            let v = pop.versions[u.version as usize];
            if v.news & news::SALT != 0 {
                assert_eq!(pop.working_set(u.version)[0], first);
            }
        }
    }

    /// Sampling keeps, for every version, exactly the chunks of its working set whose hash falls
    /// in the sample, in order: the same chunks wherever they are read, about one in N of them.
    #[test]
    fn sampled_working_sets_are_the_hashed_subset_of_the_full_ones() {
        let mut pop = Population::generate(&small(), 3, &[], SimDuration::from_secs(3600));
        let full: Vec<Vec<u32>> =
            (0..pop.versions.len() as u32).map(|v| pop.working_set(v).to_vec()).collect();
        pop.sample(4, 99);
        let (mut kept, mut all) = (0usize, 0usize);
        for (v, ws) in full.iter().enumerate() {
            let v = v as u32;
            assert_eq!(pop.full_working_set(v), &ws[..]);
            let expect: Vec<u32> =
                ws.iter().copied().filter(|&c| sample_hash(c, 99) < (HASH_MODULUS / 4) as u32).collect();
            assert_eq!(pop.working_set(v), &expect[..], "version {v}");
            (kept, all) = (kept + expect.len(), all + ws.len());
        }
        let share = kept as f64 / all as f64;
        assert!((0.2..0.3).contains(&share), "{share} of the reads kept");
        pop.sample(1, 99);
        assert_eq!(pop.working_set(0), &full[0][..]);
    }

    #[test]
    fn shared_layers_share_chunks_and_reuploads_reuse_them() {
        let pop = Population::generate(&small(), 3, &[], SimDuration::from_secs(3600));
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
        let sc = small();
        assert!(
            pop.summary(&sc, SimTime::ZERO, SimTime::ZERO + SimDuration::from_secs(3600))
                .mean_working_set_chunks
                > 20.0
        );
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
        let plain = Population::generate(&small(), 5, &[], SimDuration::from_secs(3600));
        let pop = Population::generate(&sc, 5, &real, SimDuration::from_secs(3600));
        let synthetic = plain.functions.len();
        assert_eq!(pop.functions.len(), synthetic + 6, "real functions come after every synthetic one");
        assert_eq!(
            pop.readable_chunks() - plain.readable_chunks(),
            pop.real_summary.real_readable_chunks as u32
        );
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
        let s = &pop.real_summary;
        assert_eq!(
            (s.real_images, s.real_functions, s.real_image_chunks, s.real_distinct_chunks),
            (3, 6, 14, 12)
        );
        assert_eq!(pop.functions[synthetic + 3].real, Some(2));
        let c = ws(3);
        assert!(c.len() < 8 && c == ws(5), "a read_fraction draw, one per image: {c:?}");
    }
}
