//! The fleet report: the paper's figures as numbers, the per-minute series, the seed, the version
//! and the effective scenario. Text tables for the terminal, JSON, CSV; [`FleetReport::metrics`]
//! flattens the scalars for sweeps.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::engine::{Interval, Measured, MinuteRow, S3_CAUSES};
use super::failure::FailureRecord;
use super::histogram::LogHistogram;
use super::population::{Population, PopulationSummary, news};
use super::pricing::Flood;
use super::scenario::FleetScenario;
use super::workload::WorkloadSummary;
use crate::report::Table;
use crate::sim::time::{SimDuration, SimTime};
use crate::stats::{nearest_rank, share};

/// Where the chunks starts read came from (figure 7).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceMix {
    pub reads: u64,
    pub l1_memory: u64,
    pub l1_disk: u64,
    pub l2: u64,
    pub s3: u64,
    pub l1_share: f64,
    pub l2_share: f64,
    pub s3_share: f64,
}

/// The AZ cache's hit rate, overall and per minute (figure 8).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct L2Summary {
    pub requests: u64,
    pub hits: u64,
    pub hit_rate: f64,
    /// Minutes with any AZ-cache request.
    pub minutes: usize,
    pub minute_hit_rate_p10: f64,
    pub minute_hit_rate_median: f64,
    pub minutes_below_99: f64,
    /// Hits that decoded around a missing stripe.
    pub degraded_hits: u64,
    /// Degraded reads that wrote the missing stripes back.
    pub repairs: u64,
    /// Belady's bound on the same requests with the cluster's capacity (`l2_belady`).
    pub belady_hit_rate: Option<f64>,
    pub stored_bytes: u64,
    /// Bytes held at the end (all nodes, memory and flash) and pieces evicted over the whole run.
    pub used_bytes: u64,
    pub evictions: u64,
    /// Share of AZ-cache stripe reads served from node memory (window).
    pub memory_stripe_share: f64,
}

/// How the warm-up ended and how the headline figures moved, interval by interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SteadySummary {
    /// Simulated seconds of warm-up before the window.
    pub warmup_s: f64,
    /// Whether the drift check passed (false: `steady.max_warmup` ended the warm-up).
    pub steady: bool,
    /// The warm-up's check intervals, then the window's hours.
    pub warmup_intervals: Vec<Interval>,
    pub window_hours: Vec<Interval>,
    /// Largest hour-to-hour change over the window of each headline figure (0 for a one-hour
    /// window: compare the last warm-up interval instead).
    pub drift_l1_share: f64,
    pub drift_az_hit_rate: f64,
    pub drift_s3_share: f64,
}

/// A minute below 99% AZ hit rate and what its S3 reads were for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadMinute {
    pub minute: u32,
    pub hit_rate: f64,
    pub s3_reads: u64,
    /// `(cause, S3 reads)`, largest first, causes with none left out.
    pub causes: Vec<(&'static str, u64)>,
    pub fresh_starts: u64,
    pub cron_runs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct S3Summary {
    pub requests: u64,
    pub bytes: u64,
    pub peak_minute_requests: u64,
    pub median_minute_requests: u64,
    /// Peak over median per-minute requests (the paper: an empty cache means up to 500x).
    pub peak_over_median: f64,
    pub throttle_wait_p99_ms: f64,
}

/// Quantiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

impl Quantiles {
    fn of(h: &LogHistogram) -> Self {
        let ms = |q| h.quantile(q).as_millis_f64();
        Quantiles { count: h.count(), p50_ms: ms(0.5), p90_ms: ms(0.9), p99_ms: ms(0.99), p999_ms: ms(0.999) }
    }
}

/// How many first floods the report lists, and the fewest starts that make one.
pub const FLOODS_LISTED: usize = 5;
const FLOOD_MIN_STARTS: usize = 3;

/// A version's first minute of cold starts in the window: a new function's or a deploy's flood.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloodRow {
    pub function: u32,
    pub version: u32,
    /// When the version was uploaded, seconds from the window's start (negative: before it).
    pub at_s: f64,
    /// Why its new chunks are new (`news` names, joined).
    pub why: String,
    pub large: bool,
    /// Its working set, and the chunks of it the version brought (no earlier image had them).
    pub working_set_mib: f64,
    pub new_chunks: u32,
    pub starts: usize,
    pub s3_reads: u64,
    pub p50_ms: f64,
    pub max_ms: f64,
}

/// The [`FLOODS_LISTED`] floods of at least [`FLOOD_MIN_STARTS`] starts that sent the most reads
/// to S3, then with the slowest start (ties: the earlier version first). Not by median start: a
/// flood's first starts fetch the new chunks, and the starts seconds later find them in the AZ
/// cache; and not by slowest start alone, which a start's runtime initialisation can set.
fn costliest_floods(
    sc: &FleetScenario,
    pop: &Population,
    floods: &BTreeMap<u32, Flood>,
    from: SimTime,
) -> Vec<FloodRow> {
    let mut rows: Vec<FloodRow> = floods
        .iter()
        .filter(|(_, f)| f.durations.len() >= FLOOD_MIN_STARTS)
        .map(|(&version, f)| {
            let v = &pop.versions[version as usize];
            let mut d = f.durations.clone();
            d.sort_unstable();
            let ws = pop.full_working_set(version);
            let why: Vec<&str> =
                news::NAMES.iter().filter(|(b, _)| v.news & b != 0).map(|(_, n)| *n).collect();
            FloodRow {
                function: v.function,
                version,
                at_s: (v.created.as_nanos() as f64 - from.as_nanos() as f64) / 1e9,
                why: if why.is_empty() { "no new chunk".to_string() } else { why.join(", ") },
                large: pop.functions[v.function as usize].large,
                working_set_mib: ws.len() as f64 * sc.chunk_size.bytes() as f64 / (1u64 << 20) as f64,
                new_chunks: ws.iter().filter(|&&c| pop.origin(c) == version).count() as u32,
                starts: d.len(),
                s3_reads: f.s3_reads,
                p50_ms: d[(d.len() - 1) / 2].as_millis_f64(),
                max_ms: d[d.len() - 1].as_millis_f64(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.s3_reads.cmp(&a.s3_reads).then(b.max_ms.total_cmp(&a.max_ms)).then(a.version.cmp(&b.version))
    });
    rows.truncate(FLOODS_LISTED);
    rows
}

/// Agent read latency (figure 11): the shares at the paper's landmarks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentReads {
    pub quantiles: Quantiles,
    pub under_100us: f64,
    pub under_3_8ms: f64,
    pub under_5_25ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Histograms {
    pub agent_read: LogHistogram,
    pub cold_start: LogHistogram,
    pub stripe_fetch_ec: LogHistogram,
    pub stripe_fetch_no_parity: LogHistogram,
}

/// One eviction policy replayed on the AZ cache's sampled request stream (see `az_policies`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyWhatIf {
    pub policy: String,
    /// The scenario's own AZ policy.
    pub configured: bool,
    pub hit_ratio: f64,
    /// In the window's minutes with a burst of scheduled runs (more than four times the median
    /// minute's; `None` if there was none), and in the others.
    pub cron_spike_minutes: Option<f64>,
    pub other_minutes: Option<f64>,
    pub sampled_requests: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetReport {
    pub chunkload_version: &'static str,
    pub seed: u64,
    pub scenario: FleetScenario,
    pub population: PopulationSummary,
    pub workload: WorkloadSummary,
    pub sources: SourceMix,
    pub l2: L2Summary,
    pub s3: S3Summary,
    pub cold_start: Quantiles,
    /// Cold starts in the first minute of their version (new functions' and deploys' floods),
    /// and the others.
    pub cold_start_fresh: Quantiles,
    pub cold_start_rest: Quantiles,
    /// First-minute starts of large functions' versions (`[population.large]`).
    pub cold_start_fresh_large: Quantiles,
    /// The first floods of the window that went to S3 most ([`FLOODS_LISTED`]).
    pub floods: Vec<FloodRow>,
    pub agent_read: AgentReads,
    /// Figure 9: one AZ-cache read with the configured redundancy, and the same stripe draws read
    /// without parity (all k data stripes; erasure coding only).
    pub stripe_fetch_ec: Quantiles,
    pub stripe_fetch_no_parity: Quantiles,
    pub failures: Vec<FailureRecord>,
    pub steady: SteadySummary,
    pub bad_minutes: Vec<BadMinute>,
    /// The AZ cache sized the way the paper sizes it, from the reuse this run measured.
    pub sizing: Option<crate::sim::sizing::SizingReport>,
    /// Why sizing could not be done (no cold start in the window, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizing_error: Option<String>,
    /// The AZ cache at other capacities: `(multiple of the configured capacity, LRU hit ratio)`
    /// from the measured stack distances, and Belady's bound at the configured capacity.
    pub az_capacity_what_if: Vec<(f64, f64)>,
    pub az_belady_hit_ratio: Option<f64>,
    /// Every eviction policy on the AZ cache's sampled request stream at the configured capacity,
    /// in all minutes of the window, in its cron-spike minutes and in the others.
    pub az_policy_what_if: Vec<PolicyWhatIf>,
    /// The worker caches at other capacities and Belady's bound, from their measured reuse.
    pub worker_reuse: super::worker_reuse::WorkerReuse,
    /// Worker-cache hits that waited for a fetch in flight on the same worker.
    pub l1_joined: u64,
    pub minutes: Vec<MinuteRow>,
    pub histograms: Histograms,
}

impl FleetReport {
    pub fn build(
        sc: &FleetScenario,
        seed: u64,
        pop: &Population,
        workload: WorkloadSummary,
        worker_reuse: super::worker_reuse::WorkerReuse,
        mut m: Measured,
    ) -> Self {
        let from = SimTime::ZERO + m.warmup;
        let population = pop.summary(sc, from, from + sc.duration);
        let floods = costliest_floods(sc, pop, &m.latency.floods, from);
        let sample = std::mem::take(&mut m.l2_sample);
        let az_policy_what_if = az_policies(sc, &m, sample, seed);
        let (sizing, sizing_error, az_capacity_what_if, az_belady_hit_ratio) =
            az_sizing(sc, &workload, &mut m);
        let sum = |f: fn(&MinuteRow) -> u64| m.minutes.iter().map(f).sum::<u64>();
        let (l1m, l1d, l2h, s3r) =
            (sum(|r| r.l1_memory), sum(|r| r.l1_disk), sum(|r| r.l2_hits), sum(|r| r.s3_reads));
        let reads = l1m + l1d + l2h + s3r;
        let sources = SourceMix {
            reads,
            l1_memory: l1m,
            l1_disk: l1d,
            l2: l2h,
            s3: s3r,
            l1_share: share(l1m + l1d, reads),
            l2_share: share(l2h, reads),
            s3_share: share(s3r, reads),
        };
        let mut rates: Vec<f64> = m.minutes.iter().filter_map(MinuteRow::l2_hit_rate).collect();
        rates.sort_by(f64::total_cmp);
        let l2 = L2Summary {
            requests: l2h + s3r,
            hits: l2h,
            hit_rate: share(l2h, l2h + s3r),
            minutes: rates.len(),
            minute_hit_rate_p10: nearest_rank(&rates, 0.10),
            minute_hit_rate_median: nearest_rank(&rates, 0.5),
            minutes_below_99: share(rates.iter().filter(|&&r| r < 0.99).count() as u64, rates.len() as u64),
            degraded_hits: m.degraded_hits,
            repairs: m.repairs,
            belady_hit_rate: m.l2_belady_hit_rate,
            stored_bytes: m.l2_stored_bytes,
            used_bytes: m.l2_used_bytes,
            evictions: m.l2_evictions,
            memory_stripe_share: share(m.l2_memory_stripes, m.l2_stripes),
        };
        let window_hours: Vec<Interval> = m
            .minutes
            .chunks(60)
            .enumerate()
            .map(|(h, rows)| {
                let sum = |f: fn(&MinuteRow) -> u64| rows.iter().map(f).sum::<u64>();
                let (l1, l2, s3) =
                    (sum(|r| r.l1_memory + r.l1_disk), sum(|r| r.l2_hits), sum(|r| r.s3_reads));
                Interval {
                    end_s: m.warmup.as_secs_f64() + 3600.0 * (h + 1) as f64,
                    reads: l1 + l2 + s3,
                    l1,
                    l2_hits: l2,
                    s3,
                    ..Interval::default()
                }
            })
            .collect();
        let drift = |f: fn(&Interval) -> f64| {
            window_hours.windows(2).map(|w| (f(&w[1]) - f(&w[0])).abs()).fold(0.0, f64::max)
        };
        let steady = SteadySummary {
            warmup_s: m.warmup.as_secs_f64(),
            steady: m.steady,
            drift_l1_share: drift(Interval::l1_share),
            drift_az_hit_rate: drift(Interval::az_hit_rate),
            drift_s3_share: drift(Interval::s3_share),
            warmup_intervals: m.warmup_intervals.clone(),
            window_hours,
        };
        let bad_minutes = m
            .minutes
            .iter()
            .filter(|r| r.l2_hit_rate().is_some_and(|h| h < 0.99))
            .map(|r| {
                let mut causes: Vec<(&'static str, u64)> =
                    S3_CAUSES.iter().zip(r.s3_causes).filter(|(_, n)| *n > 0).map(|(c, n)| (*c, n)).collect();
                causes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                BadMinute {
                    minute: r.minute,
                    hit_rate: r.l2_hit_rate().unwrap_or(0.0),
                    s3_reads: r.s3_reads,
                    causes,
                    fresh_starts: r.fresh_starts,
                    cron_runs: r.cron_runs,
                }
            })
            .collect();
        let mut per_minute: Vec<u64> = m.minutes.iter().map(|r| r.s3_reads).collect();
        per_minute.sort_unstable();
        let peak = per_minute.last().copied().unwrap_or(0);
        let median = per_minute.get(per_minute.len().saturating_sub(1) / 2).copied().unwrap_or(0);
        let s3 = S3Summary {
            requests: s3r,
            bytes: sum(|r| r.s3_bytes),
            peak_minute_requests: peak,
            median_minute_requests: median,
            peak_over_median: peak as f64 / median.max(1) as f64,
            throttle_wait_p99_ms: m.throttle_wait.quantile(0.99).as_millis_f64(),
        };
        let agent_read = AgentReads {
            quantiles: Quantiles::of(&m.latency.agent_read),
            under_100us: m.latency.agent_read.share_below(SimDuration::from_micros(100)),
            under_3_8ms: m.latency.agent_read.share_below(SimDuration::from_micros(3_800)),
            under_5_25ms: m.latency.agent_read.share_below(SimDuration::from_micros(5_250)),
        };
        FleetReport {
            chunkload_version: env!("CARGO_PKG_VERSION"),
            seed,
            scenario: sc.clone(),
            population,
            workload,
            sources,
            l2,
            s3,
            cold_start: Quantiles::of(&m.latency.cold_start),
            cold_start_fresh: Quantiles::of(&m.latency.cold_start_fresh),
            cold_start_rest: Quantiles::of(&m.latency.cold_start_rest),
            cold_start_fresh_large: Quantiles::of(&m.latency.cold_start_fresh_large),
            floods,
            agent_read,
            stripe_fetch_ec: Quantiles::of(&m.latency.stripe_ec),
            stripe_fetch_no_parity: Quantiles::of(&m.latency.stripe_no_parity),
            failures: m.failures,
            steady,
            bad_minutes,
            sizing,
            sizing_error,
            az_capacity_what_if,
            az_belady_hit_ratio,
            az_policy_what_if,
            worker_reuse,
            l1_joined: sum(|r| r.l1_joined),
            minutes: m.minutes,
            histograms: Histograms {
                agent_read: m.latency.agent_read,
                cold_start: m.latency.cold_start,
                stripe_fetch_ec: m.latency.stripe_ec,
                stripe_fetch_no_parity: m.latency.stripe_no_parity,
            },
        }
    }

    /// Every scalar result as `name -> value`, for sweep rows.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: f64| {
            m.insert(k.to_string(), v);
        };
        put("cold_starts", self.workload.cold_starts as f64);
        put("rejected_starts", self.workload.rejected as f64);
        put("chunk_reads", self.sources.reads as f64);
        put("l1_share", self.sources.l1_share);
        put("l1_memory_share", share(self.sources.l1_memory, self.sources.reads));
        put("l2_share", self.sources.l2_share);
        put("s3_share", self.sources.s3_share);
        put("l2_hit_rate", self.l2.hit_rate);
        put("l2_minute_hit_rate_p10", self.l2.minute_hit_rate_p10);
        put("l2_minute_hit_rate_median", self.l2.minute_hit_rate_median);
        put("l2_minutes_below_99", self.l2.minutes_below_99);
        if let Some(b) = self.l2.belady_hit_rate {
            put("l2_belady_hit_rate", b);
        }
        put("s3_requests", self.s3.requests as f64);
        put("s3_bytes", self.s3.bytes as f64);
        put("s3_peak_over_median", self.s3.peak_over_median);
        for (name, q) in [
            ("cold_start", &self.cold_start),
            ("cold_start_fresh", &self.cold_start_fresh),
            ("cold_start_fresh_large", &self.cold_start_fresh_large),
            ("cold_start_rest", &self.cold_start_rest),
            ("agent_read", &self.agent_read.quantiles),
            ("stripe_fetch_ec", &self.stripe_fetch_ec),
            ("stripe_fetch_no_parity", &self.stripe_fetch_no_parity),
        ] {
            put(&format!("{name}_p50_ms"), q.p50_ms);
            put(&format!("{name}_p90_ms"), q.p90_ms);
            put(&format!("{name}_p99_ms"), q.p99_ms);
            put(&format!("{name}_p999_ms"), q.p999_ms);
        }
        put("agent_read_under_100us", self.agent_read.under_100us);
        // The names the sweep charts look for: hit ratio per tier (the L1's is its share of all
        // reads, the L2's its own hit rate), the bound beside it, and chunks per tier.
        put("hit_ratio.l1", self.sources.l1_share);
        put("hit_ratio.l2", self.l2.hit_rate);
        if let Some(b) = self.l2.belady_hit_rate {
            put("belady.hit_ratio.l2", b);
        }
        put("tier_chunks.l1", (self.sources.l1_memory + self.sources.l1_disk) as f64);
        put("tier_chunks.l2", self.sources.l2 as f64);
        put("tier_chunks.s3", self.sources.s3 as f64);
        put("failure_lost_share_max", self.failures.iter().map(|f| f.lost_share).fold(0.0, f64::max));
        for p in &self.az_policy_what_if {
            put(&format!("az_policy.{}.hit_ratio", p.policy), p.hit_ratio);
            if let Some(v) = p.cron_spike_minutes {
                put(&format!("az_policy.{}.cron_spike_hit_ratio", p.policy), v);
            }
        }
        m
    }

    /// The latency distributions (milliseconds) at quantile `levels` (each in 0..=1; 0 and 1 give
    /// the lowest and highest bucket), for sweep rows.
    pub fn distributions_ms(&self, levels: &[f64]) -> BTreeMap<String, Vec<f64>> {
        let h = &self.histograms;
        [
            ("agent_read_ms", &h.agent_read),
            ("cold_start_ms", &h.cold_start),
            ("stripe_fetch_ec_ms", &h.stripe_fetch_ec),
            ("stripe_fetch_no_parity_ms", &h.stripe_fetch_no_parity),
        ]
        .into_iter()
        .map(|(name, hist)| {
            let q = levels.iter().map(|&l| hist.quantile(l.clamp(1e-9, 1.0)).as_millis_f64()).collect();
            (name.to_string(), q)
        })
        .collect()
    }

    /// The per-minute series as CSV.
    pub fn minutes_csv(&self) -> String {
        let mut out = String::from(
            "minute,cold_starts,l1_memory,l1_disk,l2_hits,s3_reads,s3_bytes,l2_hit_rate,mean_cold_start_ms,live_sandboxes\n",
        );
        for r in &self.minutes {
            let rate = r.l2_hit_rate().map_or(String::new(), |v| format!("{v:.6}"));
            let mean =
                if r.cold_starts == 0 { 0.0 } else { r.cold_start_ns as f64 / r.cold_starts as f64 / 1e6 };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{:.3},{}",
                r.minute,
                r.cold_starts,
                r.l1_memory,
                r.l1_disk,
                r.l2_hits,
                r.s3_reads,
                r.s3_bytes,
                rate,
                mean,
                r.live_sandboxes
            );
        }
        out
    }

    /// The eCDFs as CSV: `series,upper_ms,share`.
    pub fn ecdf_csv(&self) -> String {
        let mut out = String::from("series,upper_ms,share\n");
        let h = &self.histograms;
        for (name, hist) in [
            ("agent_read", &h.agent_read),
            ("cold_start", &h.cold_start),
            ("stripe_fetch_ec", &h.stripe_fetch_ec),
            ("stripe_fetch_no_parity", &h.stripe_fetch_no_parity),
        ] {
            for (d, s) in hist.ecdf() {
                let _ = writeln!(out, "{name},{:.6},{s:.6}", d.as_millis_f64());
            }
        }
        let mut rates: Vec<f64> = self.minutes.iter().filter_map(MinuteRow::l2_hit_rate).collect();
        rates.sort_by(f64::total_cmp);
        for (i, r) in rates.iter().enumerate() {
            let _ = writeln!(out, "l2_minute_hit_rate,{r:.6},{:.6}", (i + 1) as f64 / rates.len() as f64);
        }
        out
    }

    /// `metrics()` as a two-column CSV.
    pub fn metrics_csv(&self) -> String {
        let mut out = String::from("metric,value\n");
        for (k, v) in self.metrics() {
            let _ = writeln!(out, "{k},{v}");
        }
        out
    }
}

/// LRU, LRU-K and S3-FIFO (and the scenario's own policy) as the AZ cache's policy, each replaying
/// the run's hash-sampled AZ request stream from its start through a cluster of the configured
/// shape with every node's capacity scaled by the sampling rate (SHARDS's scaling, applied to the
/// cluster): the what-if "LRU instead of LRU-K?", and whether LRU-K's scan resistance shows in
/// the window's minutes of hourly cron bursts. A miss is written back when it would land if every
/// read before it on its start's lanes had gone to S3 too (median GETs), so a flood's concurrent
/// misses of one chunk all miss, much as in the run. Sampled counts: every policy
/// sees the same sample, so their differences are the policies'. The configured policy's row
/// checks the scaling against the full run.
fn az_policies(
    sc: &FleetScenario,
    m: &Measured,
    mut sample: Vec<super::engine::SampledRead>,
    seed: u64,
) -> Vec<PolicyWhatIf> {
    use crate::cache::{ChunkId, PolicyKind};
    use crate::sim::AzCache;
    if sample.is_empty() {
        return Vec::new();
    }
    let mut kinds = vec![PolicyKind::Lru, PolicyKind::LruK { k: PolicyKind::DEFAULT_K }, PolicyKind::S3Fifo];
    if !kinds.contains(&sc.l2.policy) {
        kinds.push(sc.l2.policy);
    }
    // Dense ids for the sampled chunks, in place (a day's sample is gigabytes): the replays'
    // arrays are then the sample's size.
    let mut dense = rustc_hash::FxHashMap::default();
    for r in &mut sample {
        let next = dense.len() as u32;
        r.chunk = *dense.entry(r.chunk).or_insert(next);
    }
    drop(dense);
    let s3 = sc.latency.s3_get.quantile(0.5).as_nanos();
    let lanes = sc.start.read_parallelism.max(1) as u64;
    // When a miss of `r` lands.
    let lands = |r: &super::engine::SampledRead| r.start_ns + (u64::from(r.read) / lanes + 1) * s3;
    let mut runs: Vec<u64> = m.minutes.iter().map(|r| r.cron_runs).collect();
    runs.sort_unstable();
    let median = runs.get(runs.len() / 2).copied().unwrap_or(0).max(1);
    let spike: Vec<bool> = m.minutes.iter().map(|r| r.cron_runs > 4 * median).collect();
    let from = m.warmup.as_nanos();
    let chunk = sc.chunk_size;
    // The share of all chunks the sample holds (a sampled run samples its own 1/N more densely).
    let rate = super::engine::l2_sample_share(sc) / f64::from(sc.sampling.one_in.max(1));
    let replay = |kind: PolicyKind| {
        let mut c = sc.l2.az_config(seed);
        c.policy = kind;
        c.typical_chunk = chunk;
        c.node_capacity = crate::units::ByteSize((c.node_capacity.bytes() as f64 * rate) as u64);
        let stripes = c.redundancy.stripes();
        let mut az = AzCache::new(c);
        // The memory tiers decide only where a hit is read from, never whether it hits.
        az.track_memory(false);
        // (hits, requests): cron-spike minutes, other minutes.
        let mut counts = [(0u64, 0u64); 2];
        let mut pending = std::collections::BinaryHeap::new();
        for r in &sample {
            let (id, t) = (r.chunk, r.start_ns);
            while let Some(&std::cmp::Reverse((at, p))) = pending.peek() {
                if at > t {
                    break;
                }
                pending.pop();
                az.put(ChunkId(p), chunk);
            }
            let look = az.get(ChunkId(id), chunk);
            if !look.hit {
                pending.push(std::cmp::Reverse((lands(r), id)));
            } else if look.stripes_present < stripes && sc.l2_read_repair {
                az.put(ChunkId(id), chunk);
            }
            if t >= from
                && let Some(&s) = spike.get(((t - from) / 60_000_000_000) as usize)
            {
                let c = &mut counts[usize::from(!s)];
                c.0 += u64::from(look.hit);
                c.1 += 1;
            }
        }
        let ratio = |(h, n): (u64, u64)| (n > 0).then(|| h as f64 / n as f64);
        let all = (counts[0].0 + counts[1].0, counts[0].1 + counts[1].1);
        PolicyWhatIf {
            policy: kind.to_string(),
            configured: kind == sc.l2.policy,
            hit_ratio: ratio(all).unwrap_or(0.0),
            cron_spike_minutes: ratio(counts[0]),
            other_minutes: ratio(counts[1]),
            sampled_requests: all.1,
        }
    };
    // All at once, on plain threads rather than rayon's pool, which may be running this very
    // fleet (the demo's `rayon::join`). Two at a time left LRU-K, the slowest, running alone
    // after LRU, then S3-FIFO alone after it: on two cores, a second of a default run's report.
    std::thread::scope(|s| {
        let handles: Vec<_> = kinds.iter().map(|&k| s.spawn(move || replay(k))).collect();
        handles.into_iter().map(|h| h.join().expect("a policy replay does not panic")).collect()
    })
}

/// The paper's sizing of the AZ cache from the run's sampled AZ request stream, the hit ratio
/// at other capacities, and Belady's bound at the configured one.
#[allow(clippy::type_complexity)]
fn az_sizing(
    sc: &FleetScenario,
    workload: &WorkloadSummary,
    m: &mut Measured,
) -> (Option<crate::sim::sizing::SizingReport>, Option<String>, Vec<(f64, f64)>, Option<f64>) {
    use crate::sim::sizing::{ColdStartLoad, SizingInputs, SizingReport};
    use crate::units::ByteSize;
    let Some(reuse) = m.l2_reuse.take() else { return (None, None, Vec::new(), None) };
    let az = sc.l2.az_config(0);
    let stored = ByteSize(az.redundancy.stripe_size(sc.chunk_size).bytes() * az.redundancy.stripes() as u64);
    let configured = ByteSize(sc.l2.node_capacity.bytes() * sc.l2.nodes as u64);
    let chunks = configured.bytes() / stored.bytes().max(1);
    let what_if = [0.0625, 0.125, 0.25, 0.5, 1.0, 2.0]
        .iter()
        .map(|&f| (f, reuse.hit_ratio((chunks as f64 * f) as u64)))
        .collect();
    let belady = reuse.belady_hit_ratio(chunks);
    let hours = sc.duration.as_secs_f64() / 3600.0;
    let inputs = SizingInputs {
        chunk_bytes: sc.chunk_size,
        stored_bytes_per_chunk: stored,
        hit_rate_goal: sc.sizing.hit_rate_goal,
        configured_capacity: configured,
        load: ColdStartLoad {
            requests_per_cold_start: m.l2_requests as f64 / workload.cold_starts.max(1) as f64,
            cold_starts_per_hour: workload.cold_starts as f64 / hours,
            chunk_bytes: sc.chunk_size,
        },
        curve_points: 24,
    };
    match SizingReport::build(&reuse, &sc.sizing.pricing, &inputs) {
        Ok(r) => (Some(r), None, what_if, belady),
        Err(e) => (None, Some(e.to_string()), what_if, belady),
    }
}

fn pct(v: f64) -> String {
    format!("{:.3}%", v * 100.0)
}

impl fmt::Display for FleetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sc = &self.scenario;
        writeln!(
            f,
            "fleet simulation: scenario {}, seed {}, chunkload {}\n{} workers, {} L2 nodes ({}), {} functions; window {} after {} of warm-up ({})\n",
            sc.name,
            self.seed,
            self.chunkload_version,
            sc.placement.workers,
            sc.l2.nodes,
            match sc.l2.redundancy {
                crate::sim::RedundancyName::ErasureCoded => "4-of-5 erasure coded",
                crate::sim::RedundancyName::SingleCopy => "single copy",
            },
            sc.population.functions,
            sc.duration,
            SimDuration::from_secs_f64(self.steady.warmup_s),
            if self.steady.steady {
                "steady: the figures stopped drifting"
            } else {
                "NOT steady: the longest warm-up allowed ended it"
            }
        )?;
        let n = sc.sampling.one_in;
        if n > 1 {
            writeln!(
                f,
                "SAMPLED: one chunk id in {n} simulated (hash-based, as SHARDS), in caches 1/{n} of the sizes below; counts are the sample's times {n}, shares and rates estimates (docs/performance.md measures how close they come to a full run)\n"
            )?;
        }
        let mut t = Table::new([
            "steady state: interval ending",
            "worker cache",
            "AZ hit rate",
            "S3",
            "AZ used",
            "AZ evictions",
        ]);
        let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
        for (i, iv) in self.steady.warmup_intervals.iter().enumerate() {
            t.row([
                format!("warm-up {} ({:.1} h)", i + 1, iv.end_s / 3600.0),
                pct(iv.l1_share()),
                pct(iv.az_hit_rate()),
                pct(iv.s3_share()),
                gib(iv.l2_used_bytes),
                iv.l2_evictions.to_string(),
            ]);
        }
        for (i, iv) in self.steady.window_hours.iter().enumerate() {
            t.row([
                if self.scenario.duration < SimDuration::from_secs(3600) {
                    format!("window ({:.1} h)", iv.end_s / 3600.0)
                } else {
                    format!("window hour {} ({:.1} h)", i + 1, iv.end_s / 3600.0)
                },
                pct(iv.l1_share()),
                pct(iv.az_hit_rate()),
                pct(iv.s3_share()),
                String::new(),
                String::new(),
            ]);
        }
        writeln!(f, "{t}")?;
        let w = &self.workload;
        let mut t = Table::new(["workload", "value"]);
        t.row(["cold starts".to_string(), w.cold_starts.to_string()]);
        t.row(["busy sandbox-ticks (warm + cold)".to_string(), w.busy_sandbox_ticks.to_string()]);
        t.row(["rejected (no worker room)".to_string(), w.rejected.to_string()]);
        t.row(["cron runs".to_string(), w.cron_runs.to_string()]);
        t.row([
            "functions created / updates / scale-ups".to_string(),
            format!("{} / {} / {}", w.functions_created, w.updates, w.scale_ups),
        ]);
        t.row(["peak live sandboxes".to_string(), w.peak_live_sandboxes.to_string()]);
        let p = &self.population;
        t.row(["readable chunks (dense ids)".to_string(), p.readable_chunks.to_string()]);
        t.row([
            "mean image / working set, chunks".to_string(),
            format!("{:.0} / {:.0}", p.mean_image_chunks, p.mean_working_set_chunks),
        ]);
        if p.real_images > 0 {
            t.row([
                "real images / their functions / cold starts".to_string(),
                format!("{} / {} / {}", p.real_images, p.real_functions, w.real_cold_starts),
            ]);
            t.row([
                "real chunks: stored / distinct / read".to_string(),
                format!("{} / {} / {}", p.real_image_chunks, p.real_distinct_chunks, p.real_readable_chunks),
            ]);
        }
        t.row(["re-uploads (no unique chunk)".to_string(), pct(p.reupload_share)]);
        t.row([
            "unique share, others: mean / median".to_string(),
            format!("{} / {}", pct(p.unique_share_mean), pct(p.unique_share_median)),
        ]);
        writeln!(f, "{t}")?;

        let s = &self.sources;
        let mut t = Table::new(["chunks served by (fig. 7)", "chunks", "share", "paper"]);
        t.row([
            "worker cache (L1)".to_string(),
            (s.l1_memory + s.l1_disk).to_string(),
            pct(s.l1_share),
            "67%".into(),
        ]);
        t.row([
            "  of which memory".to_string(),
            s.l1_memory.to_string(),
            pct(share(s.l1_memory, s.reads)),
            String::new(),
        ]);
        t.row(["AZ cache (L2)".to_string(), s.l2.to_string(), pct(s.l2_share), "32%".into()]);
        t.row(["S3".to_string(), s.s3.to_string(), pct(s.s3_share), "0.06%".into()]);
        writeln!(f, "{t}")?;

        let l = &self.l2;
        let mut t = Table::new(["AZ cache hit rate (fig. 8)", "ours", "paper"]);
        t.row(["overall".to_string(), pct(l.hit_rate), "99.9% median, 99.4% weekly low".into()]);
        t.row(["per minute: median".to_string(), pct(l.minute_hit_rate_median), "~99.8%".into()]);
        t.row(["per minute: p10".to_string(), pct(l.minute_hit_rate_p10), String::new()]);
        t.row(["minutes below 99%".to_string(), pct(l.minutes_below_99), "~4%".into()]);
        t.row(["degraded (decoded around a gap)".to_string(), l.degraded_hits.to_string(), String::new()]);
        if let Some(b) = l.belady_hit_rate {
            t.row(["Belady bound, same capacity".to_string(), pct(b), String::new()]);
        }
        writeln!(f, "{t}")?;

        if let Some(z) = &self.sizing {
            let gib =
                |b: crate::units::ByteSize| format!("{:.1} GiB", b.bytes() as f64 / (1u64 << 30) as f64);
            let mut t = Table::new([
                "AZ cache sizing (the paper's rule)",
                "stored",
                "LRU hit ratio",
                "per 1M cold starts",
            ]);
            let usd = |c: &crate::sim::sizing::CostPerMillion| format!("${:.2}", c.total_usd);
            t.row([
                format!("break-even re-reference interval {}", z.break_even_interval),
                String::new(),
                String::new(),
                String::new(),
            ]);
            t.row([
                "keeps every chunk re-read within it".to_string(),
                gib(z.by_break_even.stored_bytes),
                pct(z.by_break_even.lru_hit_ratio),
                String::new(),
            ]);
            if let Some(g) = &z.for_goal {
                t.row([
                    format!("meets the {} goal", pct(z.inputs.hit_rate_goal)),
                    gib(g.stored_bytes),
                    pct(g.lru_hit_ratio),
                    String::new(),
                ]);
            }
            t.row([
                "recommended (the larger)".to_string(),
                gib(z.recommended.stored_bytes),
                pct(z.recommended.lru_hit_ratio),
                usd(&z.cost_at_recommended),
            ]);
            t.row([
                "configured".to_string(),
                gib(z.configured.stored_bytes),
                pct(z.configured.lru_hit_ratio),
                usd(&z.cost_at_configured),
            ]);
            writeln!(f, "{t}")?;
        }
        if !self.az_capacity_what_if.is_empty() {
            let mut t =
                Table::new(["capacity what-if (measured reuse)", "AZ cache, LRU", "worker caches, LRU"]);
            for &(fct, hit) in &self.az_capacity_what_if {
                let w = self
                    .worker_reuse
                    .lru_at
                    .iter()
                    .find(|(x, _)| *x == fct)
                    .map_or(String::new(), |(_, h)| pct(*h));
                t.row([format!("{fct}x configured"), pct(hit), w]);
            }
            for &(fct, hit) in self.worker_reuse.lru_at.iter().filter(|(x, _)| *x > 2.0) {
                t.row([format!("{fct}x configured"), String::new(), pct(hit)]);
            }
            t.row([
                "Belady's MIN at 1x".to_string(),
                self.az_belady_hit_ratio.map_or("-".into(), pct),
                pct(self.worker_reuse.belady_hit_ratio),
            ]);
            t.row([
                "first references (no size helps)".to_string(),
                String::new(),
                pct(self.worker_reuse.first_reference_share),
            ]);
            writeln!(f, "{t}")?;
        }
        if !self.az_policy_what_if.is_empty() {
            let mut t = Table::new([
                "AZ policy what-if (sampled, 1x)",
                "all minutes",
                "cron-spike minutes",
                "other minutes",
            ]);
            let opt = |v: Option<f64>| v.map_or("-".to_string(), pct);
            for p in &self.az_policy_what_if {
                let name = if p.configured { format!("{} (configured)", p.policy) } else { p.policy.clone() };
                t.row([name, pct(p.hit_ratio), opt(p.cron_spike_minutes), opt(p.other_minutes)]);
            }
            writeln!(f, "{t}")?;
        }
        let mut t = Table::new(["latency", "n", "p50", "p90", "p99", "p99.9"]);
        let ms = |v: f64| format!("{v:.3}ms");
        for (name, q) in [
            ("cold start", &self.cold_start),
            ("  first minute of a version", &self.cold_start_fresh),
            ("    of a large function", &self.cold_start_fresh_large),
            ("  other starts", &self.cold_start_rest),
            ("agent read (fig. 11)", &self.agent_read.quantiles),
            ("AZ read, configured (fig. 9)", &self.stripe_fetch_ec),
            ("AZ read, no parity (fig. 9)", &self.stripe_fetch_no_parity),
        ] {
            t.row([
                name.to_string(),
                q.count.to_string(),
                ms(q.p50_ms),
                ms(q.p90_ms),
                ms(q.p99_ms),
                ms(q.p999_ms),
            ]);
        }
        writeln!(f, "{t}")?;
        writeln!(
            f,
            "agent reads under 0.1 ms: {} (paper ~69%); under 3.8 ms: {} (~97.5%); under 5.25 ms: {} (~99.3%)\n",
            pct(self.agent_read.under_100us),
            pct(self.agent_read.under_3_8ms),
            pct(self.agent_read.under_5_25ms)
        )?;
        if !self.floods.is_empty() {
            let mut t = Table::new([
                "first floods (most S3 GETs)",
                "uploaded",
                "why",
                "working set",
                "new chunks",
                "starts",
                "S3 GETs",
                "p50",
                "max",
            ]);
            for r in &self.floods {
                let large = if r.large { " (large)" } else { "" };
                t.row([
                    format!("function {}{large}", r.function),
                    format!("{:.0}s", r.at_s),
                    r.why.clone(),
                    format!("{:.0} MiB", r.working_set_mib),
                    r.new_chunks.to_string(),
                    r.starts.to_string(),
                    r.s3_reads.to_string(),
                    ms(r.p50_ms),
                    ms(r.max_ms),
                ]);
            }
            writeln!(f, "{t}")?;
        }
        let s3 = &self.s3;
        writeln!(
            f,
            "S3: {} GETs, {:.1} MiB; per minute median {}, peak {} ({:.0}x); throttle wait p99 {:.3} ms\n",
            s3.requests,
            s3.bytes as f64 / (1u64 << 20) as f64,
            s3.median_minute_requests,
            s3.peak_minute_requests,
            s3.peak_over_median,
            s3.throttle_wait_p99_ms
        )?;
        if !self.bad_minutes.is_empty() {
            let mut t = Table::new([
                "minute below 99%",
                "AZ hit rate",
                "S3 reads",
                "for",
                "new-version starts",
                "cron runs",
            ]);
            for b in &self.bad_minutes {
                let causes: Vec<String> = b.causes.iter().take(3).map(|(c, n)| format!("{c} {n}")).collect();
                t.row([
                    b.minute.to_string(),
                    pct(b.hit_rate),
                    b.s3_reads.to_string(),
                    causes.join(", "),
                    b.fresh_starts.to_string(),
                    b.cron_runs.to_string(),
                ]);
            }
            writeln!(f, "{t}")?;
        }
        if !self.failures.is_empty() {
            let mut t = Table::new(["failure", "at", "node", "L2 chunks before", "after", "lost"]);
            for r in &self.failures {
                t.row([
                    r.kind.to_string(),
                    format!("{:.0}s", r.at_s),
                    r.node.map_or("all".into(), |n| n.to_string()),
                    r.l2_chunks_before.to_string(),
                    r.l2_chunks_after.to_string(),
                    pct(r.lost_share),
                ]);
            }
            writeln!(f, "{t}")?;
        }
        Ok(())
    }
}
