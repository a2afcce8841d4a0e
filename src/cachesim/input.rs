//! Reading a trace for cachesim: format detection, the optional first pass (working set, trace
//! length, next accesses for a CSV), sampling, interning and the batches the simulations consume.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc::{Receiver, SyncSender};

use serde::Serialize;

use super::interner::Interner;
use super::{CacheSize, CachesimError, Config, Outcome, Warmup, WorkingSet};
use crate::requests::{
    CsvColumns, CsvReader, CsvRecord, OracleReader, OracleRecord, OracleWriter, Request, TimeUnit,
};
use crate::sim::rng;
use crate::sim::time::SimTime;

/// Requests per batch handed to the simulations.
const BATCH: usize = 65_536;

/// A trace file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormat {
    /// libCacheSim's oracleGeneral, plain or zstd-compressed.
    Oracle,
    /// CSV with a header; columns found by name.
    Csv,
}

impl TraceFormat {
    /// By file name: `*.csv` and `*.csv.zst` are CSV, anything else oracleGeneral.
    pub fn guess(path: &Path) -> TraceFormat {
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        if name.ends_with(".csv") || name.ends_with(".csv.zst") {
            TraceFormat::Csv
        } else {
            TraceFormat::Oracle
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            TraceFormat::Oracle => "oracle",
            TraceFormat::Csv => "csv",
        })
    }
}

impl FromStr for TraceFormat {
    type Err = CachesimError;
    fn from_str(s: &str) -> Result<Self, CachesimError> {
        match s {
            "oracle" | "oracleGeneral" => Ok(TraceFormat::Oracle),
            "csv" => Ok(TraceFormat::Csv),
            _ => Err(CachesimError::Spec(format!("unknown trace format {s:?} (valid: oracle, csv)"))),
        }
    }
}

/// The trace to read.
#[derive(Debug, Clone)]
pub struct TraceSpec {
    pub path: PathBuf,
    /// `None`: guessed from the file name.
    pub format: Option<TraceFormat>,
    pub columns: CsvColumns,
}

/// One request as the simulations see it: a dense id, a size and the number of the next request
/// for the same object (`u64::MAX`: none or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    pub id: u32,
    pub size: u32,
    pub next: u64,
}

/// How the main pass reads the trace, decided up front.
pub struct Plan {
    pub format: TraceFormat,
    path: PathBuf,
    columns: CsvColumns,
    /// Holds the converted trace when a CSV needed next accesses.
    _temp: Option<tempfile::TempDir>,
    pub working_set: Option<WorkingSet>,
    /// The warm-up with fractions resolved to counts.
    warmup: Warmup,
}

/// A sampling filter: keeps an object when the top 24 bits of a seeded hash of its id fall
/// under `rate * 2^24` (the same objects at every request, as SHARDS requires).
#[derive(Clone, Copy)]
struct Sampler {
    key: u64,
    threshold: u64,
}

impl Sampler {
    fn new(rate: Option<f64>, seed: u64) -> Option<Self> {
        rate.filter(|&r| r < 1.0).map(|r| Sampler {
            key: rng::derive(seed, 0x5A4D_504C),
            threshold: (r * (1u64 << 24) as f64) as u64,
        })
    }

    #[inline]
    fn keep(&self, obj: u64) -> bool {
        // splitmix64's finaliser.
        let mut z = obj ^ self.key;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) < self.threshold
    }
}

/// One raw request of either format.
#[derive(Clone, Copy)]
struct Raw {
    time: u64,
    obj: u64,
    size: u32,
    next: u64,
}

enum Reader {
    Oracle(OracleReader, Vec<OracleRecord>),
    Csv(CsvReader, Vec<CsvRecord>),
}

impl Reader {
    fn open(path: &Path, format: TraceFormat, columns: &CsvColumns) -> Result<Self, CachesimError> {
        Ok(match format {
            TraceFormat::Oracle => Reader::Oracle(OracleReader::open(path)?, Vec::new()),
            TraceFormat::Csv => Reader::Csv(CsvReader::open(path, columns)?, Vec::new()),
        })
    }

    fn has_times(&self) -> bool {
        match self {
            Reader::Oracle(..) => true,
            Reader::Csv(r, _) => r.has_times(),
        }
    }

    /// Calls `each` on every request of the next batch; returns how many (0 at the end).
    fn batch(&mut self, mut each: impl FnMut(Raw)) -> Result<usize, CachesimError> {
        Ok(match self {
            Reader::Oracle(r, buf) => {
                let n = r.read_batch(buf, BATCH)?;
                for x in buf.iter() {
                    each(Raw {
                        time: u64::from(x.time),
                        obj: x.obj_id,
                        size: x.size,
                        next: x.next().unwrap_or(u64::MAX),
                    });
                }
                n
            }
            Reader::Csv(r, buf) => {
                let n = r.read_batch(buf, BATCH)?;
                for x in buf.iter() {
                    each(Raw { time: x.time, obj: x.obj_id, size: x.size, next: u64::MAX });
                }
                n
            }
        })
    }
}

/// Decides whether a first pass is needed and runs it.
pub fn plan(trace: &TraceSpec, config: &Config, belady: bool) -> Result<Plan, CachesimError> {
    let format = trace.format.unwrap_or_else(|| TraceFormat::guess(&trace.path));
    let mut reader = Reader::open(&trace.path, format, &trace.columns)?;
    if matches!(config.warmup, Warmup::Time(_)) && !reader.has_times() {
        return Err(CachesimError::Trace {
            path: trace.path.clone(),
            reason: "a warm-up by time needs a time column (name it with --time-column)".into(),
        });
    }
    let fractional = config.sizes.iter().any(|s| matches!(s, CacheSize::Fraction(_)));
    let convert = belady && format == TraceFormat::Csv;
    let mut plan = Plan {
        format,
        path: trace.path.clone(),
        columns: trace.columns.clone(),
        _temp: None,
        working_set: None,
        warmup: config.warmup,
    };
    if let (Warmup::Fraction(f), Reader::Oracle(r, _), None, false, false) =
        (config.warmup, &reader, config.sample, fractional, convert)
        && let Some(n) = r.len_hint()
    {
        plan.warmup = Warmup::Requests((f * n as f64).round() as u64);
        return Ok(plan);
    }
    if !fractional && !convert && !matches!(config.warmup, Warmup::Fraction(_)) {
        return Ok(plan);
    }

    // The first pass.
    let sampler = Sampler::new(config.sample, config.seed);
    let temp = if convert {
        Some(tempfile::tempdir().map_err(|e| CachesimError::Trace {
            path: trace.path.clone(),
            reason: format!("cannot create a temporary directory: {e}"),
        })?)
    } else {
        None
    };
    let mut writer = match &temp {
        Some(dir) => {
            Some(OracleWriter::create(&dir.path().join("converted.oracleGeneral.bin"), TimeUnit::S)?)
        }
        None => None,
    };
    let mut first = Interner::default();
    let (mut objects, mut bytes, mut sampled) = (0u64, 0u64, 0u64);
    let mut t0 = None;
    let mut warm_by_time = 0u64;
    let mut failed = None;
    loop {
        let n = reader.batch(|r| {
            if sampler.is_some_and(|s| !s.keep(r.obj)) || failed.is_some() {
                return;
            }
            sampled += 1;
            let size = if config.ignore_obj_size { 1 } else { r.size };
            let known = first.len();
            if first.intern(r.obj).is_some() && first.len() > known {
                objects += 1;
                bytes += u64::from(size);
            }
            if let Warmup::Time(t) = config.warmup {
                let start = *t0.get_or_insert(r.time);
                if r.time.saturating_sub(start) < t && warm_by_time + 1 == sampled {
                    warm_by_time += 1;
                }
            }
            if let Some(w) = &mut writer
                && let Err(e) = w.push(Request { time: SimTime::ZERO, object: r.obj, size: r.size })
            {
                failed = Some(e);
            }
        })?;
        if n == 0 {
            break;
        }
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    plan.working_set = Some(WorkingSet { objects, bytes, requests: sampled });
    plan.warmup = match config.warmup {
        Warmup::Fraction(f) => Warmup::Requests((f * sampled as f64).round() as u64),
        Warmup::Time(_) if convert => Warmup::Requests(warm_by_time),
        w => w,
    };
    if let (Some(w), Some(dir)) = (writer, temp) {
        plan.path = w.path().to_path_buf();
        w.finish()?;
        plan.format = TraceFormat::Oracle;
        plan._temp = Some(dir);
    }
    Ok(plan)
}

/// The reader thread: reads the trace (again), samples, interns ids, marks the warm-up and sends
/// batches; takes used buffers back through `free`.
pub fn produce(
    plan: &Plan,
    config: &Config,
    tx: SyncSender<(Vec<Dense>, usize)>,
    free: Receiver<Vec<Dense>>,
) -> Result<Outcome, CachesimError> {
    let mut reader = Reader::open(&plan.path, plan.format, &plan.columns)?;
    let sampler = Sampler::new(config.sample, config.seed);
    let mut ids = Interner::default();
    let mut out = Outcome::default();
    let mut warming = !matches!(plan.warmup, Warmup::None | Warmup::Requests(0));
    let mut t0 = None;
    let mut raws: Vec<Raw> = Vec::with_capacity(BATCH);
    loop {
        raws.clear();
        let n = reader.batch(|r| {
            out.read += 1;
            if sampler.is_none_or(|s| s.keep(r.obj)) {
                raws.push(r);
            }
        })?;
        if n == 0 {
            break;
        }
        let mut buf = free.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        buf.clear();
        let mut warm = 0usize;
        if warming {
            for r in &raws {
                warming = match plan.warmup {
                    Warmup::Requests(n) => out.sampled + (warm as u64) < n,
                    Warmup::Time(t) => r.time.saturating_sub(*t0.get_or_insert(r.time)) < t,
                    Warmup::None | Warmup::Fraction(_) => false,
                };
                if !warming {
                    break;
                }
                warm += 1;
            }
            out.warmup += warm as u64;
        }
        out.sampled += raws.len() as u64;
        let ignore = config.ignore_obj_size;
        let whole = ids.intern_many(
            raws.len(),
            |i| raws[i].obj,
            |i, id| {
                let r = &raws[i];
                buf.push(Dense { id, size: if ignore { 1 } else { r.size }, next: r.next });
            },
        );
        if !whole {
            return Err(CachesimError::Trace {
                path: plan.path.clone(),
                reason: format!("more than {} distinct objects: sample it (--sample)", u32::MAX - 1),
            });
        }
        if !buf.is_empty() && tx.send((buf, warm)).is_err() {
            break;
        }
    }
    Ok(out)
}
