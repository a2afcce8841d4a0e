//! Section 3: one function's start (`SUBJECT`) replayed from its strace under four cache states,
//! from the first start anywhere to a warm worker, against a full pull and a zip (`explain` does
//! the replaying; this section picks the cases and tabulates them).

use std::fmt::{self, Write as _};
use std::path::Path;

use serde::Serialize;

use super::{Demo, DemoError, Files, indent};
use crate::replay::Baselines;
use crate::replay::CacheState;
use crate::replay::ReplayResult;
use crate::report::Table;
use crate::report::html::TimelineState;
use crate::report::plot::{self, AxisFormat, BarGroup, ChartOptions, Series};
use crate::sim::SimDuration;
use crate::teach::explain::timeline::{CHART_TIERS, timeline_state};
use crate::teach::explain::{self, ExplainOptions, StoredImage, Subject};
use crate::trace::{MmapRule, Reader};
use crate::units::ByteSize;

#[derive(Debug, Clone, Serialize)]
pub struct StartsSection {
    pub image: String,
    pub trace: String,
    pub trace_records: u64,
    /// Layers a zip package of this function would carry (the ones above the managed runtime).
    pub zip_from_layer: usize,
    pub cases: Vec<StartCase>,
    pub baselines: Option<Baselines>,
    /// Every device read of every case, for the page's timeline (the data files have them).
    #[serde(skip)]
    pub timeline: Vec<TimelineState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StartCase {
    pub name: &'static str,
    pub l1: CacheState,
    pub l2: CacheState,
    pub result: ReplayResult,
}

/// The cache states the demo replays, from the first start anywhere to a warm worker.
pub const CASES: [(&str, CacheState, CacheState); 4] = [
    ("first start anywhere (all caches empty)", CacheState::Cold, CacheState::Cold),
    ("new version; AZ cache holds the other images", CacheState::Cold, CacheState::Store),
    ("usual cold start (AZ cache holds the image)", CacheState::Cold, CacheState::Warm),
    ("warm worker (worker cache holds the image)", CacheState::Warm, CacheState::Warm),
];

/// Replays `subject`'s start under every case of [`CASES`], against a store holding the other
/// images.
pub fn starts_section(demo: &Demo, subject: &str) -> Result<StartsSection, DemoError> {
    let d = demo.images.iter().find(|d| d.tag == subject).ok_or_else(|| DemoError::Invalid {
        path: demo.images_dir.join("oci").display().to_string(),
        reason: format!("no image tagged {subject}"),
    })?;
    let trace_path = demo.images_dir.join("traces").join(format!("{subject}.trace"));
    let trace_err = |source| DemoError::Trace { path: trace_path.display().to_string(), source };
    let records = Reader::open(&trace_path)
        .map_err(trace_err)?
        .collect::<crate::trace::Result<Vec<_>>>()
        .map_err(trace_err)?;
    let sc = &demo.scenario;
    let others: Vec<StoredImage> = demo
        .images
        .iter()
        .filter(|o| o.tag != subject && o.manifest.chunks != d.manifest.chunks)
        .map(|o| StoredImage { name: o.tag.clone(), manifest: o.manifest.clone() })
        .collect();
    let subject_view = Subject {
        name: subject.to_string(),
        flat: Some(&d.flat),
        layer_history: explain::layer_history(&d.image),
        manifest: &d.manifest,
        meta: &demo.metas[subject],
        store: &others,
    };
    let mut cases = Vec::new();
    let mut baselines = None;
    let mut timeline = Vec::new();
    for (name, l1, l2) in CASES {
        let opts = ExplainOptions { scenario: sc.clone(), l1, l2, mmap: MmapRule::Whole, reads: usize::MAX };
        let story = explain::explain(&subject_view, records.clone(), &opts);
        timeline.push(timeline_state(
            format!("{}/{}", l1.name(), l2.name()),
            format!("{}/{}: {name}", l1.name(), l2.name()),
            &story,
        ));
        baselines = story.total.baselines;
        cases.push(StartCase { name, l1, l2, result: story.total.lazy });
    }
    Ok(StartsSection {
        image: subject.to_string(),
        trace: trace_path.display().to_string(),
        trace_records: records.len() as u64,
        zip_from_layer: sc.baseline.zip_from_layer,
        cases,
        baselines,
        timeline,
    })
}

/// A case's label for charts: the cache fills, `worker/AZ`.
fn short_case(c: &StartCase) -> String {
    format!("{}/{}", c.l1.name(), c.l2.name())
}

/// "N tier" for every tier that served at least one chunk of `r`.
fn served_by(r: &ReplayResult) -> Vec<String> {
    r.by_tier
        .iter()
        .filter(|(_, n)| n.chunks > 0)
        .map(|(tier, n)| format!("{} {}", n.chunks, tier.label()))
        .collect()
}

impl StartsSection {
    /// The bars of chunk-sources.svg: per case, the chunks each tier served.
    pub fn source_bars(&self) -> Vec<BarGroup> {
        self.cases
            .iter()
            .map(|c| BarGroup {
                label: short_case(c),
                values: CHART_TIERS
                    .iter()
                    .map(|t| c.result.by_tier.get(t).map_or(0.0, |n| n.chunks as f64))
                    .collect(),
            })
            .collect()
    }

    /// The bars of start-times.svg: each case's start time, then each baseline's, in ms.
    pub fn start_bars(&self) -> Vec<BarGroup> {
        let mut starts: Vec<BarGroup> = self
            .cases
            .iter()
            .map(|c| BarGroup { label: short_case(c), values: vec![c.result.start_time.as_millis_f64()] })
            .collect();
        if let Some(b) = &self.baselines {
            starts.extend(
                b.iter()
                    .map(|x| BarGroup { label: x.name.to_string(), values: vec![x.total.as_millis_f64()] }),
            );
        }
        starts
    }

    /// Where each start's chunks came from, the per-read latency distribution per cache state,
    /// and the start times against the baselines.
    pub fn figures(&self) -> Result<Vec<(&'static str, String)>, DemoError> {
        let mut out = Vec::new();
        out.push((
            "chunk-sources.svg",
            plot::bar_chart(
                &CHART_TIERS.iter().map(|t| t.label().to_string()).collect::<Vec<_>>(),
                &self.source_bars(),
                &ChartOptions::new(
                    format!("Where the chunks of one {} start came from", self.image),
                    "caches before the start (worker / AZ)",
                    "chunks",
                )
                .stacked(),
            )?,
        ));
        let cdfs: Vec<Series> = self
            .cases
            .iter()
            .map(|c| {
                let ms: Vec<f64> = c
                    .result
                    .reads
                    .iter()
                    .filter(|e| !e.page_cache_hit)
                    .map(|e| e.latency().as_millis_f64())
                    .collect();
                Series::ecdf(short_case(c), &ms)
            })
            .collect();
        out.push((
            "read-latency-cdf.svg",
            plot::ecdf_chart(
                &cdfs,
                &ChartOptions::new(
                    format!("Device-read latency of one {} start", self.image),
                    "read latency (ms, log)",
                    "share of device reads",
                )
                .log_x()
                .y_format(AxisFormat::Percent),
            )?,
        ));
        out.push((
            "start-times.svg",
            plot::bar_chart(
                &["start time".into()],
                &self.start_bars(),
                &ChartOptions::new(
                    format!("One {} start: lazy loading by cache state, and the baselines", self.image),
                    "caches before the start (worker / AZ), or baseline",
                    "start time (ms)",
                ),
            )?,
        ));
        Ok(out)
    }

    /// starts.csv (per case and tier: chunks, bytes, stall) and reads.csv (per case and read).
    pub fn write_files(&self, put: &mut Files<'_>) -> Result<(), DemoError> {
        let mut starts = String::from("case,l1,l2,start_ns,tier,chunks,bytes,stall_ns\n");
        let mut reads = String::from("case,record,thread,start_ns,latency_ns,page_cache_hit,slowest_tier\n");
        for c in &self.cases {
            let r = &c.result;
            for (tier, n) in &r.by_tier {
                let _ = writeln!(
                    starts,
                    "{:?},{},{},{},{},{},{},{}",
                    c.name,
                    c.l1.name(),
                    c.l2.name(),
                    r.start_time.as_nanos(),
                    tier.name(),
                    n.chunks,
                    n.bytes,
                    n.stall.as_nanos()
                );
            }
            for e in &r.reads {
                let slowest = e.chunks.iter().max_by_key(|c| (c.ready, c.tier)).map(|c| c.tier.name());
                let _ = writeln!(
                    reads,
                    "{:?},{},{},{},{},{},{}",
                    c.name,
                    e.record,
                    e.thread,
                    e.start.since_start().as_nanos(),
                    e.latency().as_nanos(),
                    e.page_cache_hit,
                    slowest.unwrap_or("page cache")
                );
            }
        }
        put.put("starts.csv", starts.as_bytes())?;
        put.put("reads.csv", reads.as_bytes())
    }
}

impl fmt::Display for StartsSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "3. One start of {}, replayed from its strace ({} file accesses) in simulated time",
            self.image, self.trace_records
        )?;
        let mut t =
            Table::new(["caches before the start", "start", "p50 read", "p99 read", "chunks: served by"]);
        for c in &self.cases {
            let r = &c.result;
            let served = served_by(r);
            let p = |get: fn(&crate::replay::Percentiles) -> SimDuration| {
                r.read_latency.as_ref().map(|p| get(p).to_string()).unwrap_or_default()
            };
            t.row([
                c.name.to_string(),
                r.start_time.to_string(),
                p(|p| p.p50),
                p(|p| p.p99),
                served.join(", "),
            ]);
        }
        if let Some(b) = &self.baselines {
            for x in b.iter() {
                t.row([
                    format!(
                        "{} (download {}, unpack {})",
                        x.name,
                        ByteSize(x.download_bytes),
                        ByteSize(x.unpack_bytes)
                    ),
                    x.total.to_string(),
                    String::new(),
                    String::new(),
                    format!("{} before the first read", x.setup),
                ]);
            }
        }
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   Lazy loading fetches only the chunks the start touches; the zip (layers {}.. only: the runtime is\n   \
             already on the worker) and the full pull download and unpack everything first. Every chunk from\n   \
             S3 costs ~36 ms median, from the AZ cache ~0.5 ms, from the worker cache ~20 us.",
            self.zip_from_layer
        )?;
        writeln!(
            f,
            "   Follow this start read by read (add --html FILE for a page to explore in a browser):\n   \
             chunkload explain {}/oci:{} --trace {} --salt demo\n   \
             (explain's zip baseline packs layers {}.. by default, the runtime included, so it is larger than this one)",
            Path::new(&self.trace).parent().and_then(Path::parent).unwrap_or(Path::new("images")).display(),
            self.image,
            self.trace,
            crate::replay::Scenario::default().baseline.zip_from_layer
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::replay::TierCount;
    use crate::sim::Tier;

    fn case(
        name: &'static str,
        l1: CacheState,
        l2: CacheState,
        start_ms: u64,
        tiers: &[(Tier, u64)],
    ) -> StartCase {
        let by_tier: BTreeMap<Tier, TierCount> = tiers
            .iter()
            .map(|&(t, chunks)| (t, TierCount { chunks, bytes: chunks * 4096, stall: SimDuration::ZERO }))
            .collect();
        let result = ReplayResult {
            start_time: SimDuration::from_millis(start_ms),
            operations: 0,
            page_cache_hits: 0,
            device_reads: 0,
            pages_read: 0,
            bytes_read: 0,
            chunks_in_image: 0,
            chunks_touched: tiers.iter().map(|t| t.1).sum(),
            bytes_fetched: 0,
            by_tier,
            read_latency: None,
            l1: None,
            l2: None,
            fetches: Vec::new(),
            reads: Vec::new(),
        };
        StartCase { name, l1, l2, result }
    }

    fn section() -> StartsSection {
        StartsSection {
            image: "f".into(),
            trace: "images/traces/f.trace".into(),
            trace_records: 3,
            zip_from_layer: 1,
            cases: vec![
                case("cold", CacheState::Cold, CacheState::Cold, 900, &[(Tier::Hole, 2), (Tier::S3, 10)]),
                case(
                    "warm",
                    CacheState::Warm,
                    CacheState::Warm,
                    5,
                    &[(Tier::WorkerMemory, 7), (Tier::WorkerDisk, 3)],
                ),
            ],
            baselines: None,
            timeline: Vec::new(),
        }
    }

    #[test]
    fn cases_run_from_all_cold_to_a_warm_worker() {
        let fills: Vec<(CacheState, CacheState)> = CASES.iter().map(|c| (c.1, c.2)).collect();
        assert_eq!(fills.first(), Some(&(CacheState::Cold, CacheState::Cold)));
        assert_eq!(fills.last(), Some(&(CacheState::Warm, CacheState::Warm)));
        assert!(fills.contains(&(CacheState::Cold, CacheState::Store)));
    }

    #[test]
    fn chunks_are_counted_per_tier_and_holes_left_out_of_the_bars() {
        let s = section();
        let bars = s.source_bars();
        assert_eq!(bars[0].label, "cold/cold");
        assert_eq!(bars[0].values, vec![0.0, 0.0, 0.0, 10.0]);
        assert_eq!(bars[1].values, vec![7.0, 3.0, 0.0, 0.0]);
        assert_eq!(served_by(&s.cases[0].result), ["2 zero", "10 S3"]);
        let starts: Vec<f64> = s.start_bars().iter().map(|b| b.values[0]).collect();
        assert_eq!(starts, vec![900.0, 5.0]);
    }
}
