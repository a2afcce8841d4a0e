//! The Azure Functions trace of 2019 (Shahrad et al., "Serverless in the Wild", USENIX ATC 2020):
//! per day, `invocations_per_function_md.anon.dNN.csv` (invocations of each function per minute),
//! `function_durations_percentiles.anon.dNN.csv` (execution time in ms: average, count, minimum,
//! maximum, percentiles 0, 1, 25, 50, 75, 99, 100) and `app_memory_percentiles.anon.dNN.csv`
//! (allocated MB per app: sample count, average, percentiles 1, 5, 25, 50, 75, 95, 99, 100).
//!
//! The counts file's minute columns are numbered `1..1440`; a window of them (consecutive numbers
//! starting anywhere in the day, as samplers of the trace write) is accepted too.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{
    AppId, FunctionId, Invocation, InvocationsError, Names, OwnerId, column, csv_error, field, line_of,
    open_csv,
};
use crate::sim::rng;
use crate::sim::time::{SimDuration, SimTime};

pub const MINUTES_PER_DAY: u32 = 1440;
const MINUTE: SimDuration = SimDuration::from_secs(60);
const ID_COLUMNS: [&str; 4] = ["HashOwner", "HashApp", "HashFunction", "Trigger"];

/// One function's row of a counts file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionDay {
    pub owner: OwnerId,
    pub app: AppId,
    pub function: FunctionId,
    /// `http`, `timer`, `queue`, `event`, `storage`, `orchestration` or `others`.
    pub trigger: String,
    /// Number of the first minute column (1 for a whole day).
    pub first_minute: u32,
    /// Invocations per minute, from `first_minute` on.
    pub counts: Vec<u32>,
}

/// Streams the rows of a counts file.
pub struct CountsReader {
    path: PathBuf,
    rows: csv::Reader<std::fs::File>,
    first_minute: u32,
    width: usize,
    record: csv::StringRecord,
}

impl CountsReader {
    /// Opens the file and checks its header: the four id columns, then consecutive minute numbers
    /// within `1..=1440`.
    pub fn open(path: &Path) -> Result<Self, InvocationsError> {
        let (rows, header) = open_csv(path)?;
        let bad = |reason: String| InvocationsError::Header { path: path.to_path_buf(), reason };
        for (i, want) in ID_COLUMNS.iter().enumerate() {
            if header.get(i).map(str::trim) != Some(*want) {
                return Err(bad(format!(
                    "column {} is {:?}, expected {want:?}",
                    i + 1,
                    header.get(i).unwrap_or("")
                )));
            }
        }
        let minutes: Vec<&str> = header.iter().skip(ID_COLUMNS.len()).collect();
        let first_minute = match minutes.first().map(|m| m.trim().parse::<u32>()) {
            Some(Ok(m)) if (1..=MINUTES_PER_DAY).contains(&m) => m,
            _ => return Err(bad("no minute columns (expected 1,2,...,1440 after Trigger)".into())),
        };
        for (i, m) in minutes.iter().enumerate() {
            let want = first_minute + i as u32;
            if m.trim().parse::<u32>().ok() != Some(want) || want > MINUTES_PER_DAY {
                return Err(bad(format!(
                    "minute column {:?} where {want} was expected (minutes 1..=1440, consecutive)",
                    m
                )));
            }
        }
        Ok(CountsReader {
            path: path.to_path_buf(),
            rows,
            first_minute,
            width: header.len(),
            record: csv::StringRecord::new(),
        })
    }

    pub fn first_minute(&self) -> u32 {
        self.first_minute
    }

    /// The next row, its names interned in `names`; `None` at the end.
    pub fn next_row(&mut self, names: &mut Names) -> Result<Option<FunctionDay>, InvocationsError> {
        if !self.rows.read_record(&mut self.record).map_err(|e| csv_error(&self.path, e))? {
            return Ok(None);
        }
        let r = &self.record;
        if r.len() != self.width {
            return Err(InvocationsError::Columns {
                path: self.path.clone(),
                line: line_of(r),
                expected: self.width,
                found: r.len(),
            });
        }
        let mut counts = Vec::with_capacity(self.width - ID_COLUMNS.len());
        for i in ID_COLUMNS.len()..self.width {
            let minute = self.first_minute as usize + i - ID_COLUMNS.len();
            let n: i64 = field(&self.path, r, i, &minute.to_string(), "an integer count")?;
            let n = u32::try_from(n).map_err(|_| InvocationsError::Field {
                path: self.path.clone(),
                line: line_of(r),
                field: minute.to_string(),
                reason: if n < 0 { format!("negative count {n}") } else { format!("count {n} is too large") },
            })?;
            counts.push(n);
        }
        for (i, name) in ID_COLUMNS.iter().enumerate().take(3) {
            if r[i].trim().is_empty() {
                return Err(InvocationsError::Field {
                    path: self.path.clone(),
                    line: line_of(r),
                    field: name.to_string(),
                    reason: "empty".into(),
                });
            }
        }
        let (o, a, f) = (r[0].trim(), r[1].trim(), r[2].trim());
        Ok(Some(FunctionDay {
            owner: names.owner(o),
            app: names.app(o, a),
            function: names.function(o, a, f),
            trigger: r[3].trim().to_string(),
            first_minute: self.first_minute,
            counts,
        }))
    }
}

/// Execution time of one function over the day, in ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationPercentiles {
    pub average_ms: f64,
    pub count: u64,
    pub minimum_ms: f64,
    pub maximum_ms: f64,
    /// (share, ms) at shares 0, 0.01, 0.25, 0.5, 0.75, 0.99, 1: non-decreasing.
    pub percentiles: [(f64, f64); 7],
}

const DURATION_PERCENTILES: [(&str, f64); 7] = [
    ("percentile_Average_0", 0.0),
    ("percentile_Average_1", 0.01),
    ("percentile_Average_25", 0.25),
    ("percentile_Average_50", 0.5),
    ("percentile_Average_75", 0.75),
    ("percentile_Average_99", 0.99),
    ("percentile_Average_100", 1.0),
];

impl DurationPercentiles {
    /// A duration drawn from the percentiles: the inverse of the piecewise-linear CDF through
    /// them, at `u` in [0, 1).
    pub fn at(&self, u: f64) -> SimDuration {
        let p = &self.percentiles;
        let ms = match p.windows(2).find(|w| u <= w[1].0) {
            Some(w) if w[1].0 > w[0].0 => w[0].1 + (w[1].1 - w[0].1) * (u - w[0].0) / (w[1].0 - w[0].0),
            Some(w) => w[1].1,
            None => p[6].1,
        };
        SimDuration::from_secs_f64(ms / 1000.0)
    }
}

/// Reads a durations file: per function, its percentiles. Values must be finite, non-negative and
/// the percentiles non-decreasing.
pub fn read_durations(
    path: &Path,
    names: &mut Names,
) -> Result<BTreeMap<FunctionId, DurationPercentiles>, InvocationsError> {
    let (mut rows, header) = open_csv(path)?;
    let ids: Vec<usize> = ["HashOwner", "HashApp", "HashFunction"]
        .iter()
        .map(|c| column(path, &header, c))
        .collect::<Result<_, _>>()?;
    let [average, count, minimum, maximum] =
        ["Average", "Count", "Minimum", "Maximum"].map(|c| column(path, &header, c));
    let (average, count, minimum, maximum) = (average?, count?, minimum?, maximum?);
    let pcts: Vec<(usize, f64, &str)> = DURATION_PERCENTILES
        .iter()
        .map(|&(c, share)| column(path, &header, c).map(|i| (i, share, c)))
        .collect::<Result<_, _>>()?;
    let mut out = BTreeMap::new();
    let mut r = csv::StringRecord::new();
    while rows.read_record(&mut r).map_err(|e| csv_error(path, e))? {
        same_columns(path, &r, header.len())?;
        let ms = |at: usize, name: &str| non_negative(path, &r, at, name, "duration");
        let mut percentiles = [(0.0, 0.0); 7];
        for (k, &(at, share, name)) in pcts.iter().enumerate() {
            percentiles[k] = (share, ms(at, name)?);
            if k > 0 && percentiles[k].1 < percentiles[k - 1].1 {
                return Err(InvocationsError::Field {
                    path: path.to_path_buf(),
                    line: line_of(&r),
                    field: name.to_string(),
                    reason: format!(
                        "{} is below the previous percentile {}",
                        percentiles[k].1,
                        percentiles[k - 1].1
                    ),
                });
            }
        }
        let count_f = ms(count, "Count")?;
        let d = DurationPercentiles {
            average_ms: ms(average, "Average")?,
            count: count_f as u64,
            minimum_ms: ms(minimum, "Minimum")?,
            maximum_ms: ms(maximum, "Maximum")?,
            percentiles,
        };
        let (o, a, f) = (r[ids[0]].trim(), r[ids[1]].trim(), r[ids[2]].trim());
        names.owner(o);
        names.app(o, a);
        out.insert(names.function(o, a, f), d);
    }
    Ok(out)
}

/// Allocated memory of one app over the day, in MB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryPercentiles {
    pub sample_count: u64,
    pub average_mb: f64,
    /// (share, MB) at shares 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.
    pub percentiles: [(f64, f64); 8],
}

const MEMORY_PERCENTILES: [(&str, f64); 8] = [
    ("AverageAllocatedMb_pct1", 0.01),
    ("AverageAllocatedMb_pct5", 0.05),
    ("AverageAllocatedMb_pct25", 0.25),
    ("AverageAllocatedMb_pct50", 0.5),
    ("AverageAllocatedMb_pct75", 0.75),
    ("AverageAllocatedMb_pct95", 0.95),
    ("AverageAllocatedMb_pct99", 0.99),
    ("AverageAllocatedMb_pct100", 1.0),
];

/// Reads a memory file: per app, its percentiles. The release has one row per app; a file with a
/// `HashFunction` column as well (as some samples of the trace are) keeps each app's first row.
pub fn read_memory(
    path: &Path,
    names: &mut Names,
) -> Result<BTreeMap<AppId, MemoryPercentiles>, InvocationsError> {
    let (mut rows, header) = open_csv(path)?;
    let owner = column(path, &header, "HashOwner")?;
    let app = column(path, &header, "HashApp")?;
    let samples = column(path, &header, "SampleCount")?;
    let average = column(path, &header, "AverageAllocatedMb")?;
    let pcts: Vec<(usize, f64, &str)> = MEMORY_PERCENTILES
        .iter()
        .map(|&(c, share)| column(path, &header, c).map(|i| (i, share, c)))
        .collect::<Result<_, _>>()?;
    let mut out = BTreeMap::new();
    let mut r = csv::StringRecord::new();
    while rows.read_record(&mut r).map_err(|e| csv_error(path, e))? {
        same_columns(path, &r, header.len())?;
        let mb = |at: usize, name: &str| non_negative(path, &r, at, name, "amount");
        let mut percentiles = [(0.0, 0.0); 8];
        for (k, &(at, share, name)) in pcts.iter().enumerate() {
            percentiles[k] = (share, mb(at, name)?);
        }
        let m = MemoryPercentiles {
            sample_count: mb(samples, "SampleCount")? as u64,
            average_mb: mb(average, "AverageAllocatedMb")?,
            percentiles,
        };
        let (o, a) = (r[owner].trim(), r[app].trim());
        names.owner(o);
        out.entry(names.app(o, a)).or_insert(m);
    }
    Ok(out)
}

/// The arrival-spreading rule: `count` invocations in the minute starting at `minute_start` arrive
/// at independent, uniformly distributed instants of that minute (returned sorted). This is what a
/// Poisson process looks like given only its count in an interval, so it adds no structure the
/// trace does not have; a per-minute count cannot say more. The caller seeds `rng`; the fleet
/// should take it from `sim::rng::stream`, one stream per (function, minute) as
/// [`Azure2019Source`] does, so the arrivals do not depend on the order functions are read in.
pub fn spread_minute(minute_start: SimTime, count: u32, rng: &mut ChaCha8Rng) -> Vec<SimTime> {
    let mut at: Vec<SimTime> = (0..count)
        .map(|_| SimTime::from_nanos(minute_start.as_nanos() + rng.random_range(0..MINUTE.as_nanos())))
        .collect();
    at.sort();
    at
}

/// A day of the 2019 trace as invocations in time order: counts spread by [`spread_minute`],
/// durations drawn from the function's percentiles ([`DurationPercentiles::at`]) when the
/// durations file has the function. Time 0 is the start of minute 1 of the day.
///
/// The counts are held sparsely (one entry per non-zero minute of each function); the day is then
/// produced minute by minute.
pub struct Azure2019Source {
    rows: Vec<FunctionDay>,
    durations: BTreeMap<FunctionId, DurationPercentiles>,
    seed: u64,
    /// Next minute to produce (0-based in the day) and the last one.
    minute: u32,
    end: u32,
    pending: VecDeque<Invocation>,
}

impl Azure2019Source {
    /// Reads `counts` (and `durations`, if given) into a source, interning names in `names`.
    pub fn open(
        counts: &Path,
        durations: Option<&Path>,
        names: &mut Names,
        seed: u64,
    ) -> Result<Self, InvocationsError> {
        let mut reader = CountsReader::open(counts)?;
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row(names)? {
            rows.push(row);
        }
        let durations = match durations {
            Some(p) => read_durations(p, names)?,
            None => BTreeMap::new(),
        };
        let first = reader.first_minute() - 1;
        let width = rows.first().map_or(0, |r| r.counts.len() as u32);
        Ok(Azure2019Source {
            rows,
            durations,
            seed,
            minute: first,
            end: first + width,
            pending: VecDeque::new(),
        })
    }

    /// The function rows read, in file order.
    pub fn rows(&self) -> &[FunctionDay] {
        &self.rows
    }

    fn fill(&mut self) {
        while self.pending.is_empty() && self.minute < self.end {
            let m = self.minute;
            self.minute += 1;
            let start = SimTime::from_nanos(u64::from(m) * MINUTE.as_nanos());
            let mut batch = Vec::new();
            for row in &self.rows {
                let count = row.counts[(m + 1 - row.first_minute) as usize];
                if count == 0 {
                    continue;
                }
                let tag = (u64::from(row.function.0) << 16) | u64::from(m);
                let mut arrivals = rng::stream(rng::derive(self.seed, tag), "azure2019-arrivals");
                let mut lengths = rng::stream(rng::derive(self.seed, tag), "azure2019-durations");
                let pct = self.durations.get(&row.function);
                for at in spread_minute(start, count, &mut arrivals) {
                    batch.push(Invocation {
                        owner: row.owner,
                        app: row.app,
                        function: row.function,
                        start: at,
                        duration: pct.map(|p| p.at(lengths.random::<f64>())),
                    });
                }
            }
            batch.sort_by_key(|i| (i.start, i.function));
            self.pending.extend(batch);
        }
    }
}

impl Iterator for Azure2019Source {
    type Item = Result<Invocation, InvocationsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fill();
        self.pending.pop_front().map(Ok)
    }
}

/// A row with the header's number of columns, or an error naming the line.
fn same_columns(path: &Path, r: &csv::StringRecord, expected: usize) -> Result<(), InvocationsError> {
    if r.len() == expected {
        return Ok(());
    }
    Err(InvocationsError::Columns { path: path.to_path_buf(), line: line_of(r), expected, found: r.len() })
}

/// Field `at` (`name`) of `r` as a finite, non-negative number (`what` names the quantity).
fn non_negative(
    path: &Path,
    r: &csv::StringRecord,
    at: usize,
    name: &str,
    what: &str,
) -> Result<f64, InvocationsError> {
    let v: f64 = field(path, r, at, name, "a number")?;
    if v.is_finite() && v >= 0.0 {
        return Ok(v);
    }
    Err(InvocationsError::Field {
        path: path.to_path_buf(),
        line: line_of(r),
        field: name.to_string(),
        reason: format!("{v} is not a non-negative {what}"),
    })
}
