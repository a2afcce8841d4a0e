//! The tiers a chunk read can be served from, with one name each, and the one read path that
//! prices them: a worker-cache hit ([`worker_hit`]), an AZ-cache read ([`az_read`]: k-of-n
//! erasure-coded stripes) and an S3 GET ([`S3`](super::s3::S3)). The one-start replay, the fleet and
//! the FUSE loader's injected latency all call these; none prices a tier itself.

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::az::Redundancy;
use super::latency::{MAX_STRIPES, Sampler, kth_fastest};
use super::time::SimDuration;

/// Where a chunk read was served from. The name ([`Tier::name`], also `Display` and serde) is the
/// one every report, CSV and JSON uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// An all-zero chunk: not stored, nothing to fetch.
    Hole,
    /// The worker cache's memory tier (or a chunk this start already fetched).
    WorkerMemory,
    /// The worker cache's local-disk tier.
    WorkerDisk,
    /// The AZ cache (L2): an erasure-coded stripe read.
    AzCache,
    /// S3: one GET of the whole chunk.
    S3,
    /// Baselines: a local disk holding the unpacked image.
    LocalDisk,
}

impl Tier {
    /// Every tier, in hierarchy order (the order reports list them in).
    pub const ALL: [Tier; 6] =
        [Tier::Hole, Tier::WorkerMemory, Tier::WorkerDisk, Tier::AzCache, Tier::S3, Tier::LocalDisk];

    /// The tier's one name.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Hole => "hole",
            Tier::WorkerMemory => "worker-memory",
            Tier::WorkerDisk => "worker-disk",
            Tier::AzCache => "az-cache",
            Tier::S3 => "s3",
            Tier::LocalDisk => "local-disk",
        }
    }

    /// The tier as a short label for tables and chart legends (data files use [`Tier::name`]).
    pub const fn label(self) -> &'static str {
        match self {
            Tier::Hole => "zero",
            Tier::WorkerMemory => "worker mem",
            Tier::WorkerDisk => "worker disk",
            Tier::AzCache => "AZ cache",
            Tier::S3 => "S3",
            Tier::LocalDisk => "local disk",
        }
    }

    /// The tier as a sentence says it ("served by ..."), for the narrated reports.
    pub const fn phrase(self) -> &'static str {
        match self {
            Tier::Hole => "nothing to fetch (an all-zero chunk)",
            Tier::WorkerMemory => "the worker cache's memory (L1)",
            Tier::WorkerDisk => "the worker cache's local disk (L1)",
            Tier::AzCache => "the AZ cache (L2)",
            Tier::S3 => "S3",
            Tier::LocalDisk => "the local disk",
        }
    }

    /// Below the worker: a fetch over the network (AZ cache or S3).
    pub const fn is_remote(self) -> bool {
        matches!(self, Tier::AzCache | Tier::S3)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tier name that is none of [`Tier::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {given:?}: expected one of hole, worker-memory, worker-disk, az-cache, s3, local-disk")]
pub struct TierParseError {
    pub given: String,
}

impl FromStr for Tier {
    type Err = TierParseError;
    fn from_str(s: &str) -> Result<Self, TierParseError> {
        Tier::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| TierParseError { given: s.to_string() })
    }
}

/// A worker-cache hit from `tier`'s part of the cache: `memory` for [`Tier::WorkerMemory`], `disk`
/// for [`Tier::WorkerDisk`].
///
/// # Panics
/// When `tier` is not a worker-cache tier.
pub fn worker_hit(
    tier: Tier,
    memory: impl Into<Sampler>,
    disk: impl Into<Sampler>,
    rng: &mut ChaCha8Rng,
) -> SimDuration {
    match tier {
        Tier::WorkerMemory => memory.into().sample(rng),
        Tier::WorkerDisk => disk.into().sample(rng),
        other => panic!("{other} is not a worker-cache tier"),
    }
}

/// One AZ-cache read, priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AzRead {
    /// When the reader has the chunk: the `k`-th fastest of the stripes that answered.
    pub latency: SimDuration,
    /// Erasure coded with every stripe present: the same draws read without parity (the slowest
    /// of the `k` data stripes), the paper's figure 9 comparison. `None` otherwise.
    pub no_parity: Option<SimDuration>,
}

/// Reads a chunk stored with `redundancy` from the AZ cache, `present` of whose stripes are on live
/// nodes. As in the paper, the reader asks every stripe's node at once and decodes from the first
/// `k` to arrive; a stripe that is not present never answers, so a degraded read is the `k`-th
/// fastest of the stripes present (the lookup said at least `k` are). One draw per stripe of the
/// layout (`n`, present or not), so a read's draws do not depend on what was lost. A single copy
/// is one draw.
///
/// # Panics
/// When the layout has more than [`MAX_STRIPES`] stripes.
pub fn az_read(
    stripe: impl Into<Sampler>,
    redundancy: Redundancy,
    present: usize,
    rng: &mut ChaCha8Rng,
) -> AzRead {
    let stripe = stripe.into();
    let (n, k) = (redundancy.stripes(), redundancy.needed());
    assert!(n <= MAX_STRIPES, "{n} stripes, at most {MAX_STRIPES}");
    let mut draws = [SimDuration::ZERO; MAX_STRIPES];
    for x in &mut draws[..n] {
        *x = stripe.sample(rng);
    }
    let no_parity = match redundancy {
        Redundancy::ErasureCoded { .. } if present >= n => draws[..k].iter().copied().max(),
        _ => None,
    };
    let answered = present.clamp(k, n);
    AzRead { latency: kth_fastest(&mut draws[..answered], k), no_parity }
}

/// [`az_read`] with the node tier of every piece: a piece from a node's flash adds a `flash`
/// draw to its stripe time, one from memory does not. `lookup` is the [`AzCache::get`](super::az::AzCache::get)
/// that hit. Returns when the reader has the chunk: the `k`-th fastest of the stripes present.
pub fn az_read_tiered(
    stripe: impl Into<Sampler>,
    flash: impl Into<Sampler>,
    redundancy: Redundancy,
    lookup: &super::az::AzLookup,
    rng: &mut ChaCha8Rng,
) -> SimDuration {
    let (stripe, flash) = (stripe.into(), flash.into());
    let (n, k) = (redundancy.stripes(), redundancy.needed());
    assert!(n <= MAX_STRIPES, "{n} stripes, at most {MAX_STRIPES}");
    let mut answered = [SimDuration::ZERO; MAX_STRIPES];
    let mut m = 0;
    for slot in 0..n {
        if lookup.present_mask & (1 << slot) == 0 {
            continue;
        }
        let mut t = stripe.sample(rng);
        if lookup.memory_mask & (1 << slot) == 0 {
            t += flash.sample(rng);
        }
        answered[m] = t;
        m += 1;
    }
    let m = m.max(k.min(n));
    kth_fastest(&mut answered[..m], k.min(m))
}

/// The paper's figure 9 comparison for an erasure-coded read that found every stripe: the same
/// chunk read without parity, waiting for all `k` data stripes (each from memory or flash as the
/// lookup found them), drawn afresh, so that the two configurations are compared as two
/// measurements, not as two orderings of the same draws. `None` for a degraded read or a single
/// copy.
pub fn no_parity_read_tiered(
    stripe: impl Into<Sampler>,
    flash: impl Into<Sampler>,
    redundancy: Redundancy,
    lookup: &super::az::AzLookup,
    rng: &mut ChaCha8Rng,
) -> Option<SimDuration> {
    let (stripe, flash) = (stripe.into(), flash.into());
    let (n, k) = (redundancy.stripes(), redundancy.needed());
    if !matches!(redundancy, Redundancy::ErasureCoded { .. }) || lookup.stripes_present < n {
        return None;
    }
    let mut worst = SimDuration::ZERO;
    for slot in 0..k {
        let mut t = stripe.sample(rng);
        if lookup.memory_mask & (1 << slot) == 0 {
            t += flash.sample(rng);
        }
        worst = worst.max(t);
    }
    Some(worst)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::sim::LatencyDist;

    #[test]
    fn every_tier_has_distinct_names_labels_and_phrases() {
        for f in [Tier::name, Tier::label, Tier::phrase] {
            let all: std::collections::BTreeSet<&str> = Tier::ALL.iter().map(|t| f(*t)).collect();
            assert_eq!(all.len(), Tier::ALL.len());
        }
    }

    fn us(n: u64) -> SimDuration {
        SimDuration::from_micros(n)
    }

    #[test]
    fn one_name_per_tier_everywhere() {
        for t in Tier::ALL {
            assert_eq!(t.to_string(), t.name());
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::Value::from(t.name()));
            assert_eq!(t.name().parse::<Tier>(), Ok(t));
        }
        assert!("az".parse::<Tier>().unwrap_err().to_string().contains("\"az\""));
    }

    #[test]
    fn a_degraded_read_waits_for_the_kth_of_the_stripes_present() {
        let ec = Redundancy::ErasureCoded { k: 4, n: 5 };
        let dist = LatencyDist::LogNormal { median: us(500), p999: us(4_000) };
        let full = az_read(&dist, ec, 5, &mut ChaCha8Rng::seed_from_u64(3));
        let degraded = az_read(&dist, ec, 4, &mut ChaCha8Rng::seed_from_u64(3));
        // Same draws: with all five present the read is the 4th fastest of five; with four present
        // it is the slowest of the first four, which is the no-parity figure of the full read.
        assert_eq!(Some(degraded.latency), full.no_parity);
        assert!(full.latency <= degraded.latency);
        assert_eq!(degraded.no_parity, None);
        let single = az_read(&dist, Redundancy::SingleCopy, 1, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(single.latency, dist.sample(&mut ChaCha8Rng::seed_from_u64(3)));
        assert_eq!(single.no_parity, None);
    }

    #[test]
    fn worker_hits_draw_from_their_part() {
        let (m, d) = (LatencyDist::Fixed(us(10)), LatencyDist::Fixed(us(50)));
        let rng = &mut ChaCha8Rng::seed_from_u64(0);
        assert_eq!(worker_hit(Tier::WorkerMemory, &m, &d, rng), us(10));
        assert_eq!(worker_hit(Tier::WorkerDisk, &m, &d, rng), us(50));
    }
}
