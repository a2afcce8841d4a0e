//! Seeded latency distributions for the tiers a chunk read can touch, with defaults taken from the
//! Lambda container-loading paper (see docs/latency-model.md for every number and its source).
//!
//! Draws are independent: no queueing, no load dependence, no correlation between the stripes of
//! one read. That is the paper's own level of description (per-tier percentiles), and it keeps a
//! replay a pure function of the trace, the configuration and the seed.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::time::SimDuration;

/// z of the 99.9th percentile of the standard normal: a log-normal's p99.9 is `median * e^(sigma * Z_999)`.
pub const Z_999: f64 = 3.090_232_306_167_813;

/// The most stripes [`az_read`](super::tier::az_read) draws (a fixed buffer keeps the hot path allocation-free).
pub const MAX_STRIPES: usize = 32;

/// The latency of one operation.
///
/// In TOML: `{ fixed = "20us" }` or `{ log_normal = { median = "500us", p999 = "4ms" } }`
/// (durations as unit strings or integer nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LatencyDist {
    /// Always the same: for ablations ("what if S3 were 10 ms flat") and tests.
    Fixed(SimDuration),
    /// Log-normal given by its median and 99.9th percentile, the two numbers the paper reports
    /// per tier; latencies are positive and right-skewed, which this captures with two parameters.
    LogNormal { median: SimDuration, p999: SimDuration },
}

/// Why a distribution or a tier configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LatencyError {
    #[error("{field}: a log-normal median must be above zero")]
    ZeroMedian { field: &'static str },
    #[error("{field}: p999 {p999} is below the median {median}")]
    TailBelowMedian { field: &'static str, median: SimDuration, p999: SimDuration },
    #[error("decrypt_bytes_per_sec must be above zero")]
    ZeroDecryptRate,
}

/// Why a TOML tier configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum LatencyConfigError {
    #[error("latency configuration: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("latency configuration: {0}")]
    Invalid(#[from] LatencyError),
}

impl LatencyDist {
    /// A log-normal through `median` whose quantile `q` is `at`, re-expressed by its p99.9: for
    /// tiers where the paper gives another percentile than the p99.9.
    ///
    /// Panics unless `0.5 < q < 1` (`q` must be on the tail side for the tail to be defined).
    pub fn log_normal_through(median: SimDuration, q: f64, at: SimDuration) -> Self {
        assert!(q > 0.5 && q < 1.0, "quantile {q} must be in (0.5, 1)");
        let sigma = (at.as_nanos_f64() / median.as_nanos_f64()).ln() / probit(q);
        let p999 = SimDuration::from_nanos_f64(median.as_nanos_f64() * (sigma * Z_999).exp());
        LatencyDist::LogNormal { median, p999 }
    }

    /// One draw. Deterministic given the generator's state.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> SimDuration {
        self.sampler().sample(rng)
    }

    /// The distribution ready to draw from many times: its parameters worked out once.
    pub fn sampler(&self) -> Sampler {
        match *self {
            LatencyDist::Fixed(d) => Sampler::Fixed(d),
            LatencyDist::LogNormal { median, p999 } => {
                Sampler::LogNormal { median_ns: median.as_nanos_f64(), sigma: sigma(median, p999) }
            }
        }
    }

    /// The exact `q`-quantile of the distribution (not of a sample), for documentation and tests.
    ///
    /// Panics unless `0 < q < 1`.
    pub fn quantile(&self, q: f64) -> SimDuration {
        assert!(q > 0.0 && q < 1.0, "quantile {q} must be in (0, 1)");
        match *self {
            LatencyDist::Fixed(d) => d,
            LatencyDist::LogNormal { median, p999 } => {
                SimDuration::from_nanos_f64(median.as_nanos_f64() * (sigma(median, p999) * probit(q)).exp())
            }
        }
    }

    /// Checks the parameters; `field` names the tier in the error.
    pub fn validate(&self, field: &'static str) -> Result<(), LatencyError> {
        match *self {
            LatencyDist::Fixed(_) => Ok(()),
            LatencyDist::LogNormal { median, .. } if median.is_zero() => {
                Err(LatencyError::ZeroMedian { field })
            }
            LatencyDist::LogNormal { median, p999 } if p999 < median => {
                Err(LatencyError::TailBelowMedian { field, median, p999 })
            }
            LatencyDist::LogNormal { .. } => Ok(()),
        }
    }
}

/// A [`LatencyDist`] with its log-normal's sigma computed once: the fleet draws hundreds of millions
/// of latencies an hour, and a logarithm per draw was a fifth of the cost of one. Draws exactly as
/// [`LatencyDist::sample`] does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    Fixed(SimDuration),
    LogNormal { median_ns: f64, sigma: f64 },
}

impl Sampler {
    /// One draw. Deterministic given the generator's state.
    #[inline]
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> SimDuration {
        match *self {
            Sampler::Fixed(d) => d,
            Sampler::LogNormal { median_ns, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                SimDuration::from_nanos_f64(median_ns * (sigma * z).exp())
            }
        }
    }
}

impl From<&LatencyDist> for Sampler {
    fn from(d: &LatencyDist) -> Self {
        d.sampler()
    }
}

/// The log-normal's sigma from its median and p99.9 (`mu` is `ln(median)`).
fn sigma(median: SimDuration, p999: SimDuration) -> f64 {
    (p999.as_nanos_f64() / median.as_nanos_f64()).ln() / Z_999
}

/// Latency of every tier a chunk read can touch. Each default is documented with its source; all
/// are overridable from a scenario file (`deny_unknown_fields`, so a misspelt tier is an error,
/// not a silent default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLatencies {
    /// A worker-cache (L1) hit: reading a resident chunk from the worker's memory or disk tier.
    /// Default median 20 us, p99.9 90 us: the paper's figure 11 puts ~69% of agent reads under
    /// 0.1 ms and the worker-cache hit share is ~67%, so essentially every L1 hit, agent overhead
    /// included, must finish under 100 us.
    pub l1_hit: LatencyDist,
    /// One AZ-cache (L2) stripe GET as the worker sees it (network + server). Default median
    /// 500 us, p99.9 4 ms: the paper's "AZ-cache hit, seen by the worker" for the second
    /// deployment it reports (the first: 550 us, 3.7 ms). A chunk read is [`az_read`](super::tier::az_read) over it.
    pub az_stripe: LatencyDist,
    /// One S3 GET of a whole chunk as the worker sees it. Default median 36 ms, p99.9 175 ms
    /// (the paper's "S3, seen by the worker").
    pub s3_get: LatencyDist,
    /// Per-read cost of the guest -> Firecracker -> FUSE -> agent round trip, paid by every read
    /// that misses the guest page cache. Default median 15 us, p99.9 100 us: four thread hand-offs
    /// of a few us each, with a scheduling tail (the paper's "FUSE regret"); small enough that
    /// agent + L1 hit stays under figure 11's 0.1 ms worker-cache mode.
    pub agent_overhead: LatencyDist,
    /// Decryption plus hash check of a fetched chunk, priced from throughput (see
    /// [`decrypt_time`](Self::decrypt_time)). Default 1.10 GB/s: this project's own bench,
    /// `cargo bench --bench crypto -- convergent/open_chunk` (the read side: name and plaintext
    /// digest as two SHA-NI lanes, AES-256-CTR on the avx512 kernel), one core pinned,
    /// 1.02-1.05 GiB/s on 2026-12-03 (docs/performance.md, "Bench figures the model's defaults
    /// cite").
    #[serde(deserialize_with = "crate::quantity::de::bandwidth_u64")]
    pub decrypt_bytes_per_sec: u64,
}

impl Default for TierLatencies {
    fn default() -> Self {
        let ln = |median_us, p999_us| LatencyDist::LogNormal {
            median: SimDuration::from_micros(median_us),
            p999: SimDuration::from_micros(p999_us),
        };
        TierLatencies {
            l1_hit: ln(20, 90),
            az_stripe: ln(500, 4_000),
            s3_get: ln(36_000, 175_000),
            agent_overhead: ln(15, 100),
            // convergent/open_chunk, docs/performance.md (see the field).
            decrypt_bytes_per_sec: 1_100_000_000,
        }
    }
}

impl TierLatencies {
    /// Every distribution with its field name, for reports and validation.
    pub fn named(&self) -> [(&'static str, &LatencyDist); 4] {
        [
            ("l1_hit", &self.l1_hit),
            ("az_stripe", &self.az_stripe),
            ("s3_get", &self.s3_get),
            ("agent_overhead", &self.agent_overhead),
        ]
    }

    /// Time to decrypt and hash-check `bytes` on one core, rounded up to the nanosecond.
    pub fn decrypt_time(&self, bytes: u64) -> SimDuration {
        let rate = u128::from(self.decrypt_bytes_per_sec.max(1));
        let ns = (u128::from(bytes) * 1_000_000_000).div_ceil(rate);
        SimDuration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    pub fn validate(&self) -> Result<(), LatencyError> {
        for (name, dist) in self.named() {
            dist.validate(name)?;
        }
        if self.decrypt_bytes_per_sec == 0 {
            return Err(LatencyError::ZeroDecryptRate);
        }
        Ok(())
    }

    /// Parses and validates a TOML table of tiers; every field is required.
    pub fn from_toml(s: &str) -> Result<Self, LatencyConfigError> {
        let t: TierLatencies = toml::from_str(s)?;
        t.validate()?;
        Ok(t)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("tier latencies are plain integers and tables")
    }
}

/// The `k`-th fastest of `samples` (`k = 1` is the fastest). Reorders `samples`.
///
/// Panics unless `1 <= k <= samples.len()`.
pub fn kth_fastest(samples: &mut [SimDuration], k: usize) -> SimDuration {
    assert!(k >= 1 && k <= samples.len(), "k = {k} out of 1..={}", samples.len());
    *samples.select_nth_unstable(k - 1).1
}

/// The exact `q`-quantile of an erasure-coded read's latency ([`az_read`](super::tier::az_read) with every stripe present) (the `k`-th order statistic of `n`
/// independent draws): the per-stripe quantile `p` at which `P(at least k of n <= x) = q`.
pub fn stripe_read_quantile(dist: &LatencyDist, n: usize, k: usize, q: f64) -> SimDuration {
    assert!(k >= 1 && k <= n, "k = {k} out of 1..={n}");
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if at_least_k_of_n(mid, n, k) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    dist.quantile(0.5 * (lo + hi))
}

/// P(Binomial(n, p) >= k).
fn at_least_k_of_n(p: f64, n: usize, k: usize) -> f64 {
    let mut choose = 1.0_f64;
    let mut total = 0.0;
    for j in 0..=n {
        if j > 0 {
            choose = choose * (n + 1 - j) as f64 / j as f64;
        }
        if j >= k {
            total += choose * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32);
        }
    }
    total
}

/// The standard normal quantile function: P. J. Acklam's rational approximation (relative error
/// below 1.2e-9, far below anything a nanosecond clock resolves).
pub fn probit(q: f64) -> f64 {
    assert!(q > 0.0 && q < 1.0, "probit of {q}");
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    const P_LOW: f64 = 0.02425;
    let tail = |p: f64| {
        let r = (-2.0 * p.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    if q < P_LOW {
        tail(q)
    } else if q > 1.0 - P_LOW {
        -tail(1.0 - q)
    } else {
        let s = q - 0.5;
        let r = s * s;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * s
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::az::Redundancy;
    use super::super::tier::az_read;
    use std::fmt::Write as _;

    use rand::SeedableRng;

    use super::*;

    const DRAWS: usize = 1_000_000;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// Sorted draws.
    fn draws(n: usize, mut f: impl FnMut() -> SimDuration) -> Vec<SimDuration> {
        let mut v: Vec<SimDuration> = (0..n).map(|_| f()).collect();
        v.sort_unstable();
        v
    }

    fn at(sorted: &[SimDuration], q: f64) -> SimDuration {
        sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
    }

    fn rel_err(got: SimDuration, want: SimDuration) -> f64 {
        (got.as_nanos_f64() / want.as_nanos_f64() - 1.0).abs()
    }

    #[test]
    fn probit_matches_reference_values() {
        // Reference: Python's statistics.NormalDist().inv_cdf.
        for (q, z) in [
            (0.5, 0.0),
            (0.999, Z_999),
            (0.001, -Z_999),
            (0.975, 1.959_963_984_540_053_6),
            (0.99, 2.326_347_874_040_840_8),
            (0.02425, -1.972_961_051_311_884_5),
            (1e-9, -5.997_807_015_007_686_5),
        ] {
            assert!((probit(q) - z).abs() <= 1e-8 * z.abs().max(1.0), "probit({q}) = {} want {z}", probit(q));
        }
    }

    #[test]
    fn quantile_hits_the_configured_points() {
        for (name, d) in TierLatencies::default().named() {
            let LatencyDist::LogNormal { median, p999 } = *d else { panic!("{name} is not log-normal") };
            assert_eq!(d.quantile(0.5), median, "{name}");
            assert!(d.quantile(0.999).as_nanos().abs_diff(p999.as_nanos()) <= 1, "{name}");
            // Symmetric in log space: p0.1 * p99.9 = median^2 (up to rounding to the nanosecond).
            let lo = d.quantile(0.001).as_nanos_f64();
            assert!((lo * p999.as_nanos_f64() / median.as_nanos_f64().powi(2) - 1.0).abs() < 1e-3, "{name}");
        }
        let put = LatencyDist::log_normal_through(
            SimDuration::from_micros(125),
            0.99,
            SimDuration::from_micros(300),
        );
        assert!(put.quantile(0.99).as_nanos().abs_diff(300_000) <= 1, "{:?}", put.quantile(0.99));
        assert_eq!(
            LatencyDist::Fixed(SimDuration::from_millis(10)).quantile(0.999),
            SimDuration::from_millis(10)
        );
    }

    #[test]
    fn sampled_defaults_match_their_quantiles() {
        let tiers = TierLatencies::default();
        for (i, (name, d)) in tiers.named().into_iter().enumerate() {
            let mut r = rng(i as u64);
            let s = draws(DRAWS, || d.sample(&mut r));
            for q in [0.5, 0.999] {
                let (got, want) = (at(&s, q), d.quantile(q));
                assert!(rel_err(got, want) < 0.03, "{name} q{q}: sampled {got}, exact {want}");
            }
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let d = TierLatencies::default().az_stripe;
        let seq = |seed| {
            let mut r = rng(seed);
            (0..1000).map(|_| d.sample(&mut r)).collect::<Vec<_>>()
        };
        assert_eq!(seq(7), seq(7));
        assert_ne!(seq(7), seq(8));
        let (mut a, mut b) = (rng(3), rng(3));
        for _ in 0..100 {
            assert_eq!(
                az_read(&d, Redundancy::ErasureCoded { k: 4, n: 5 }, 5, &mut a).latency,
                az_read(&d, Redundancy::ErasureCoded { k: 4, n: 5 }, 5, &mut b).latency
            );
        }
    }

    #[test]
    fn kth_fastest_is_an_order_statistic() {
        let mut v: Vec<_> = [5, 1, 4, 2, 3].into_iter().map(SimDuration::from_micros).collect();
        assert_eq!(kth_fastest(&mut v, 1), SimDuration::from_micros(1));
        assert_eq!(kth_fastest(&mut v, 4), SimDuration::from_micros(4));
        assert_eq!(kth_fastest(&mut v, 5), SimDuration::from_micros(5));
        let fixed = LatencyDist::Fixed(SimDuration::from_micros(700));
        assert_eq!(
            az_read(&fixed, Redundancy::ErasureCoded { k: 4, n: 5 }, 5, &mut rng(0)).latency,
            SimDuration::from_micros(700)
        );
    }

    #[test]
    #[should_panic(expected = "out of 1..=4")]
    fn kth_fastest_rejects_k_beyond_the_samples() {
        kth_fastest(&mut [SimDuration::ZERO; 4], 5);
    }

    /// Figure 9: reading 4 of 5 stripes beats waiting for all of 4. Prints the model's figures
    /// (`cargo test --lib stripe_read_ -- --nocapture`).
    #[test]
    fn stripe_read_4_of_5_beats_4_of_4() {
        const READS: usize = 200_000;
        let d = TierLatencies::default().az_stripe;
        let mut r = rng(42);
        let ec = draws(READS, || az_read(&d, Redundancy::ErasureCoded { k: 4, n: 5 }, 5, &mut r).latency);
        let all = draws(READS, || az_read(&d, Redundancy::ErasureCoded { k: 4, n: 4 }, 4, &mut r).latency);
        for (name, s, n) in [("4-of-5", &ec, 5), ("4-of-4", &all, 4)] {
            for q in [0.5, 0.99, 0.999] {
                let (got, want) = (at(s, q), stripe_read_quantile(&d, n, 4, q));
                assert!(rel_err(got, want) < 0.04, "{name} q{q}: sampled {got}, exact {want}");
            }
            println!("{name}: median {} p99 {} p99.9 {}", at(s, 0.5), at(s, 0.99), at(s, 0.999));
        }
        let median_ratio = at(&ec, 0.5).as_nanos_f64() / at(&all, 0.5).as_nanos_f64();
        let p99_ratio = at(&ec, 0.99).as_nanos_f64() / at(&all, 0.99).as_nanos_f64();
        println!("4-of-5 / 4-of-4: median {median_ratio:.3}, p99 {p99_ratio:.3}");
        assert!(median_ratio < 0.9, "median ratio {median_ratio}");
        assert!(p99_ratio < 0.7, "p99 ratio {p99_ratio}");
    }

    /// The read an agent serves from an AZ hit, composed from independent draws: agent overhead,
    /// a 4-of-5 stripe read and decrypting one 512 KiB chunk. Compared in docs/latency-model.md
    /// with figure 11's AZ-hit mode (~2.75 ms).
    #[test]
    fn composed_reads_for_the_docs() {
        let t = TierLatencies::default();
        let chunk = t.decrypt_time(512 * 1024);
        let mut r = rng(11);
        let l1 = draws(DRAWS / 4, || t.agent_overhead.sample(&mut r) + t.l1_hit.sample(&mut r));
        let az = draws(DRAWS / 4, || {
            t.agent_overhead.sample(&mut r)
                + az_read(&t.az_stripe, Redundancy::ErasureCoded { k: 4, n: 5 }, 5, &mut r).latency
                + chunk
        });
        let under_100us = l1.partition_point(|d| *d < SimDuration::from_micros(100)) as f64 / l1.len() as f64;
        println!(
            "L1 hit read: median {} p99.9 {}, {:.2}% under 100us",
            at(&l1, 0.5),
            at(&l1, 0.999),
            under_100us * 100.0
        );
        println!("AZ hit read: median {} p99 {} p99.9 {}", at(&az, 0.5), at(&az, 0.99), at(&az, 0.999));
        assert!(under_100us > 0.97, "{under_100us}");
    }

    #[test]
    fn decrypt_time_prices_throughput() {
        let t = TierLatencies::default();
        assert_eq!(t.decrypt_time(1_100_000_000), SimDuration::from_secs(1));
        assert_eq!(t.decrypt_time(512 * 1024), SimDuration::from_nanos(476_626));
        assert_eq!(t.decrypt_time(0), SimDuration::ZERO);
    }

    #[test]
    fn toml_round_trip() {
        let t = TierLatencies::default();
        let text = t.to_toml();
        assert_eq!(TierLatencies::from_toml(&text).unwrap(), t, "{text}");
        let mut other = t;
        other.s3_get = LatencyDist::Fixed(SimDuration::from_millis(10));
        assert_eq!(TierLatencies::from_toml(&other.to_toml()).unwrap(), other);
    }

    const SCENARIO: &str = r#"
        l1_hit = { log_normal = { median = "20us", p999 = "90us" } }
        az_stripe = { log_normal = { median = "550us", p999 = "3.7ms" } }
        s3_get = { fixed = "36ms" }
        agent_overhead = { fixed = 15000 }
        decrypt_bytes_per_sec = 768000000
    "#;

    #[test]
    fn toml_accepts_unit_strings() {
        let t = TierLatencies::from_toml(SCENARIO).unwrap();
        assert_eq!(t.s3_get, LatencyDist::Fixed(SimDuration::from_millis(36)));
        assert_eq!(t.agent_overhead, LatencyDist::Fixed(SimDuration::from_micros(15)));
        assert_eq!(t.az_stripe.quantile(0.5), SimDuration::from_micros(550));
    }

    #[test]
    fn toml_rejects_unknown_keys_by_name() {
        let top = format!("{SCENARIO}\ns3_put = {{ fixed = \"1ms\" }}\n");
        let e = TierLatencies::from_toml(&top).unwrap_err().to_string();
        assert!(e.contains("s3_put"), "{e}");
        let nested = SCENARIO.replace(r#"p999 = "90us""#, r#"p999 = "90us", p99 = "50us""#);
        let e = TierLatencies::from_toml(&nested).unwrap_err().to_string();
        assert!(e.contains("p99"), "{e}");
        let missing = SCENARIO.replace("decrypt_bytes_per_sec = 768000000", "");
        let e = TierLatencies::from_toml(&missing).unwrap_err().to_string();
        assert!(e.contains("decrypt_bytes_per_sec"), "{e}");
    }

    #[test]
    fn validation_names_the_tier() {
        let bad =
            SCENARIO.replace(r#"median = "550us", p999 = "3.7ms""#, r#"median = "5ms", p999 = "3.7ms""#);
        let e = TierLatencies::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("az_stripe") && e.contains("below the median"), "{e}");
        let zero = SCENARIO.replace(r#"median = "20us""#, r#"median = "0ns""#);
        let e = TierLatencies::from_toml(&zero).unwrap_err().to_string();
        assert!(e.contains("l1_hit"), "{e}");
    }

    /// The exact figures of the default model, as docs/latency-model.md must show them.
    fn figures_table() -> String {
        let t = TierLatencies::default();
        let mut s = String::from("| quantity | median | p99 | p99.9 |\n|---|---|---|---|\n");
        for (name, d) in t.named() {
            let q = |q| d.quantile(q);
            writeln!(s, "| `{name}` | {} | {} | {} |", q(0.5), q(0.99), q(0.999)).unwrap();
        }
        for (name, n) in [("AZ read 4-of-5", 5), ("AZ read 4-of-4", 4)] {
            let q = |q| stripe_read_quantile(&t.az_stripe, n, 4, q);
            writeln!(s, "| {name} | {} | {} | {} |", q(0.5), q(0.99), q(0.999)).unwrap();
        }
        s
    }

    #[test]
    fn docs_show_the_models_figures() {
        let doc = include_str!("../../docs/latency-model.md");
        let table = figures_table();
        assert!(doc.contains(&table), "docs/latency-model.md is out of date; the table is now:\n{table}");
        let example = doc.split("```toml\n").nth(1).and_then(|s| s.split("```").next()).unwrap();
        assert!(TierLatencies::from_toml(example).is_ok(), "the docs' TOML example must parse");
    }
}
