//! `chunkload cachesim`: chunkload's eviction policies (every [`PolicyKind`]) and Belady's MIN over
//! a request trace, at many cache sizes in one pass over the file.
//!
//! - Input ([`input`]): libCacheSim's `oracleGeneral` (plain or zstd), or CSV with named columns
//!   (chunkload's own chunk and request streams among them). Object ids are interned to dense ids
//!   as they are read, on a reader thread; the simulations consume batches on the rayon pool, one
//!   (algorithm, size) point per task, so both cores work and the file is read once.
//! - Memory grows with the cache sizes and the distinct objects (one map entry and a few bytes of
//!   policy state each), never with the number of requests. `sample` (SHARDS-style spatial
//!   sampling: an object is kept when a hash of its id falls under the rate, and byte sizes are
//!   scaled by it) cuts both for traces whose objects do not fit.
//! - A second pass is needed only when a size is a fraction of the working set, the warm-up a
//!   fraction of the trace (its length unknown), or Belady runs on a CSV (which has no
//!   next-access field: the first pass writes the sampled stream as a temporary `oracleGeneral`
//!   file, whose backward fix-up supplies it).
//! - Counting follows libCacheSim's `cachesim`: a request is a hit or a miss; a miss is admitted
//!   (evicting until it fits) unless the object is larger than the cache; byte counts use each
//!   request's own size; warm-up requests go through the cache but are not counted.
//!
//! docs/cachesim.md describes the command and how its results compare with libCacheSim's.

pub mod belady;
pub mod input;
pub mod interner;
pub mod report;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc;

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::{BoundedCache, ChunkId, PolicyKind};
use crate::requests::RequestsError;
use crate::units::ByteSize;

pub use belady::StreamingBelady;
pub use input::{Dense, TraceFormat, TraceSpec};
pub use report::{CachesimReport, PointResult, WorkingSet};

/// What to run: a chunkload policy or Belady's MIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Policy(PolicyKind),
    Belady,
}

impl Algorithm {
    /// Every policy of [`PolicyKind::ALL`], then Belady.
    pub fn all() -> Vec<Algorithm> {
        PolicyKind::ALL.iter().map(|&k| Algorithm::Policy(k)).chain([Algorithm::Belady]).collect()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Policy(k) => k.fmt(f),
            Algorithm::Belady => f.pad("belady"),
        }
    }
}

impl FromStr for Algorithm {
    type Err = CachesimError;
    fn from_str(s: &str) -> Result<Self, CachesimError> {
        if s == "belady" {
            return Ok(Algorithm::Belady);
        }
        s.parse().map(Algorithm::Policy).map_err(|e| CachesimError::Spec(format!("{e}, or belady")))
    }
}

/// A cache size: an absolute size (bytes, or objects with `ignore_obj_size`), or a fraction of
/// the trace's working set (`10%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CacheSize {
    Absolute(u64),
    Fraction(f64),
}

impl FromStr for CacheSize {
    type Err = CachesimError;
    fn from_str(s: &str) -> Result<Self, CachesimError> {
        if let Some(p) = s.strip_suffix('%') {
            return match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p.is_finite() => Ok(CacheSize::Fraction(p / 100.0)),
                _ => Err(CachesimError::Spec(format!(
                    "cache size {s:?}: a percentage must be a positive number"
                ))),
            };
        }
        match s.parse::<ByteSize>() {
            Ok(b) if b.bytes() > 0 => Ok(CacheSize::Absolute(b.bytes())),
            _ => Err(CachesimError::Spec(format!(
                "cache size {s:?}: expected a size (4096, 64MiB, 2GiB; objects with --ignore-obj-size) or a share of the working set (10%)"
            ))),
        }
    }
}

impl fmt::Display for CacheSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheSize::Absolute(n) => write!(f, "{n}"),
            CacheSize::Fraction(x) => write!(f, "{}%", x * 100.0),
        }
    }
}

/// Which leading requests only warm the caches (simulated, not counted).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Warmup {
    #[default]
    None,
    /// The first N requests (after sampling).
    Requests(u64),
    /// This share of the requests (after sampling).
    Fraction(f64),
    /// Requests less than T after the first one, in the trace's time unit (libCacheSim's
    /// `--warmup-sec` rule in its multi-cache mode).
    Time(u64),
}

impl FromStr for Warmup {
    type Err = CachesimError;
    fn from_str(s: &str) -> Result<Self, CachesimError> {
        let bad = || {
            CachesimError::Spec(format!(
                "warm-up {s:?}: expected a request count (1000000), a share of the requests (20%) or a trace time (time=3600)"
            ))
        };
        if let Some(t) = s.strip_prefix("time=") {
            return t.parse().map(Warmup::Time).map_err(|_| bad());
        }
        if let Some(p) = s.strip_suffix('%') {
            return match p.parse::<f64>() {
                Ok(p) if (0.0..100.0).contains(&p) => Ok(Warmup::Fraction(p / 100.0)),
                _ => Err(bad()),
            };
        }
        s.parse().map(Warmup::Requests).map_err(|_| bad())
    }
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub algorithms: Vec<Algorithm>,
    pub sizes: Vec<CacheSize>,
    pub warmup: Warmup,
    /// Spatial sampling rate in (0, 1]; `None` keeps every request.
    pub sample: Option<f64>,
    /// Every object counts as size 1 (libCacheSim's `--ignore-obj-size`): sizes are in objects.
    pub ignore_obj_size: bool,
    /// Seeds the random policy and the sampling hash.
    pub seed: u64,
}

/// Errors of a cachesim run.
#[derive(Debug, thiserror::Error)]
pub enum CachesimError {
    #[error(transparent)]
    Requests(#[from] RequestsError),
    #[error("{0}")]
    Spec(String),
    #[error("{}: {reason}", path.display())]
    Trace { path: PathBuf, reason: String },
    #[error("the reader thread failed: {0}")]
    Reader(String),
}

/// One (algorithm, size) point's cache and its counters.
struct Point {
    algorithm: Algorithm,
    size: CacheSize,
    /// Capacity as requested, before sampling.
    capacity: u64,
    /// Capacity simulated (scaled by the sampling rate).
    simulated: u64,
    cache: Option<Engine>,
    requests: u64,
    misses: u64,
    request_bytes: u64,
    miss_bytes: u64,
}

enum Engine {
    Policy(BoundedCache),
    Belady(StreamingBelady),
}

impl Point {
    #[inline]
    fn run(&mut self, batch: &[Dense], warm: usize) {
        let Point { cache, requests, misses, request_bytes, miss_bytes, .. } = self;
        let mut count = |i: usize, hit: bool, size: u32| {
            if i >= warm {
                *requests += 1;
                *request_bytes += u64::from(size);
                if !hit {
                    *misses += 1;
                    *miss_bytes += u64::from(size);
                }
            }
        };
        match cache {
            // A zero-byte cache: every request misses.
            None => batch.iter().enumerate().for_each(|(i, r)| count(i, false, r.size)),
            Some(Engine::Policy(cache)) => {
                for (i, r) in batch.iter().enumerate() {
                    let id = ChunkId(r.id);
                    let size = ByteSize(u64::from(r.size));
                    let hit = cache.get(id, size);
                    if !hit {
                        cache.insert(id, size);
                    }
                    count(i, hit, r.size);
                }
            }
            Some(Engine::Belady(b)) => {
                for (i, r) in batch.iter().enumerate() {
                    count(i, b.access(r.id, r.size, r.next), r.size);
                }
            }
        }
    }
}

/// Runs every (algorithm, size) point of `config` over the trace.
pub fn run(trace: &TraceSpec, config: &Config) -> Result<CachesimReport, CachesimError> {
    if config.algorithms.is_empty() || config.sizes.is_empty() {
        return Err(CachesimError::Spec("nothing to run: give at least one algorithm and one size".into()));
    }
    if let Some(rate) = config.sample
        && !(rate > 0.0 && rate <= 1.0)
    {
        return Err(CachesimError::Spec(format!("sampling rate {rate}: must be in (0, 1]")));
    }
    let wants_belady = config.algorithms.contains(&Algorithm::Belady);
    let plan = input::plan(trace, config, wants_belady)?;
    let rate = config.sample.unwrap_or(1.0);
    let mut points: Vec<Point> = Vec::new();
    for &algorithm in &config.algorithms {
        for &size in &config.sizes {
            let (capacity, simulated) = match size {
                CacheSize::Absolute(n) => (n, (n as f64 * rate).round() as u64),
                CacheSize::Fraction(x) => {
                    let ws = plan.working_set.expect("plan measures the working set for fractional sizes");
                    let c = (x * ws.bytes as f64 / rate).round() as u64;
                    (c, (x * ws.bytes as f64).round() as u64)
                }
            };
            points.push(Point {
                algorithm,
                size,
                capacity,
                simulated,
                cache: None,
                requests: 0,
                misses: 0,
                request_bytes: 0,
                miss_bytes: 0,
            });
        }
    }

    let (tx, rx) = mpsc::sync_channel::<(Vec<Dense>, usize)>(4);
    let (free_tx, free_rx) = mpsc::channel::<Vec<Dense>>();
    let mut mean_size: Option<f64> = plan.working_set.map(|ws| ws.bytes as f64 / ws.objects.max(1) as f64);
    let seed = config.seed;
    let outcome = std::thread::scope(|s| {
        let reader = s.spawn(|| input::produce(&plan, config, tx, free_rx));
        for (batch, warm) in rx.iter() {
            let typical = *mean_size.get_or_insert_with(|| {
                batch.iter().map(|r| r.size as f64).sum::<f64>() / batch.len().max(1) as f64
            });
            for p in points.iter_mut().filter(|p| p.cache.is_none() && p.simulated > 0) {
                p.cache = Some(match p.algorithm {
                    Algorithm::Belady => Engine::Belady(StreamingBelady::new(p.simulated)),
                    Algorithm::Policy(kind) => {
                        let entries = (p.simulated as f64 / typical.max(1.0)).round().max(1.0) as usize;
                        Engine::Policy(BoundedCache::new(kind.build(entries, seed), ByteSize(p.simulated)))
                    }
                });
            }
            if points.len() == 1 {
                points[0].run(&batch, warm);
            } else {
                points.par_iter_mut().for_each(|p| p.run(&batch, warm));
            }
            // The reader may have finished; then the buffer is simply dropped.
            let _ = free_tx.send(batch);
        }
        reader.join().map_err(|_| CachesimError::Reader("panicked".into()))?
    })?;

    let unit = if config.ignore_obj_size { "objects" } else { "bytes" };
    Ok(CachesimReport {
        trace: trace.path.clone(),
        format: plan.format,
        requests_read: outcome.read,
        requests_sampled: outcome.sampled,
        warmup_requests: outcome.warmup,
        sample_rate: config.sample,
        size_unit: unit,
        working_set: plan.working_set,
        points: points
            .into_iter()
            .map(|p| PointResult {
                algorithm: p.algorithm.to_string(),
                size: p.size.to_string(),
                cache_size: p.capacity,
                simulated_size: p.simulated,
                requests: p.requests,
                misses: p.misses,
                miss_ratio: ratio(p.misses, p.requests),
                request_bytes: p.request_bytes,
                miss_bytes: p.miss_bytes,
                byte_miss_ratio: ratio(p.miss_bytes, p.request_bytes),
            })
            .collect(),
    })
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// What a run saw of the trace.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Outcome {
    pub read: u64,
    pub sampled: u64,
    pub warmup: u64,
}
