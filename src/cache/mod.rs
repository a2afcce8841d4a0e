//! Eviction policies for the cache tiers, and the byte-bounded cache that drives them.
//!
//! A policy ([`EvictionPolicy`]) only tracks the order of resident chunk ids; [`BoundedCache`] owns
//! residency and byte accounting and asks the policy for victims. Chunk ids are interned to dense
//! integers before a simulation starts, so every policy keeps its per-chunk state in `Vec`s indexed
//! by id instead of hash maps: that is what makes replaying tens of millions of requests cheap.
//!
//! [`belady()`] computes the offline optimum for a recorded request stream, the bound every policy is
//! measured against.
//!
//! [`Ring`] is the bounded-load consistent hashing the AZ cache (`sim::az`) places chunks with.
//! This module knows nothing of tiers or time: the simulated tiers built from these caches (the
//! worker cache, the AZ cache) live in the simulation kernel, `crate::sim`.

mod arc;
pub mod belady;
mod bounded;
mod fifo;
mod lfu;
mod list;
mod lru;
mod lru_k;
mod policy;
mod random;
pub mod reuse;
pub mod ring;
mod s3_fifo;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use arc::Arc;
pub use belady::{Belady, belady};
pub use bounded::{BoundedCache, CacheStats};
pub use fifo::Fifo;
pub use lfu::Lfu;
pub use lru::Lru;
pub use lru_k::LruK;
pub use policy::EvictionPolicy;
pub use random::Random;
pub use reuse::{Mrc, MrcPoint, ReuseConfig, ReuseError, ReuseIntervals, ReuseSampler};
pub use ring::{NodeId, Ring, RingConfig};
pub use s3_fifo::S3Fifo;

/// Starts loading `items[i]` into the CPU's caches (a no-op past the end or off x86-64); see
/// [`EvictionPolicy::prefetch`].
#[inline(always)]
pub fn prefetch<T>(items: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = items.get(i) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch of a valid address; it reads nothing into the program and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(item).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (items, i);
}

/// A chunk, interned to a dense integer before simulation (0, 1, 2, ... in order of first sight).
///
/// Dense ids let policies index `Vec`s directly. `u32::MAX` is reserved as the "no id" marker of the
/// intrusive lists, so at most `u32::MAX` distinct chunks (2 EiB of 512 KiB chunks) can be modelled.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChunkId(pub u32);

impl ChunkId {
    /// The id as a `Vec` index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chunk#{}", self.0)
    }
}

/// Which eviction policy a cache tier uses; chosen at run time (CLI, config files).
///
/// Text form (CLI values, serde): `lru`, `fifo`, `lfu`, `lru-k` (K = 2), `lru-<K>` for another K
/// (`lru-3`; K in `1..=16`, where LRU-1 is plain LRU), `arc`, `s3-fifo`, `random`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PolicyKind {
    Lru,
    Fifo,
    Lfu,
    /// O'Neil's LRU-K with `k` references of history per chunk.
    LruK {
        k: u8,
    },
    Arc,
    S3Fifo,
    Random,
}

impl PolicyKind {
    /// K used by `lru-k` when none is given: the paper does not say which K the AZ cache uses, and 2
    /// is the value O'Neil et al. recommend.
    pub const DEFAULT_K: u8 = 2;
    /// Largest accepted K: history costs `8 * K` bytes per chunk id.
    pub const MAX_K: u8 = 16;

    /// Every policy once (LRU-K with the default K). Drives CLI help, conformance tests and benches.
    pub const ALL: &'static [PolicyKind] = &[
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::Lfu,
        PolicyKind::LruK { k: Self::DEFAULT_K },
        PolicyKind::Arc,
        PolicyKind::S3Fifo,
        PolicyKind::Random,
    ];

    /// A fresh, empty policy. `capacity_entries` is how many chunks the tier above is expected to
    /// hold: it sizes the ghost/history state and the internal splits (ARC's target, S3-FIFO's small
    /// queue); a policy never evicts on its own. `seed` is used only by [`PolicyKind::Random`].
    ///
    /// # Panics
    /// If an `LruK` value was built by hand with `k` outside `1..=MAX_K`.
    pub fn build(&self, capacity_entries: usize, seed: u64) -> Box<dyn EvictionPolicy + Send> {
        match *self {
            PolicyKind::Lru => Box::new(Lru::new()),
            PolicyKind::Fifo => Box::new(Fifo::new()),
            PolicyKind::Lfu => Box::new(Lfu::new()),
            PolicyKind::LruK { k } => Box::new(LruK::new(k, capacity_entries)),
            PolicyKind::Arc => Box::new(Arc::new(capacity_entries)),
            PolicyKind::S3Fifo => Box::new(S3Fifo::new(capacity_entries)),
            PolicyKind::Random => Box::new(Random::new(seed)),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that width and alignment work in tables.
        match self {
            PolicyKind::Lru => f.pad("lru"),
            PolicyKind::Fifo => f.pad("fifo"),
            PolicyKind::Lfu => f.pad("lfu"),
            PolicyKind::LruK { k } if *k == Self::DEFAULT_K => f.pad("lru-k"),
            PolicyKind::LruK { k } => f.pad(&format!("lru-{k}")),
            PolicyKind::Arc => f.pad("arc"),
            PolicyKind::S3Fifo => f.pad("s3-fifo"),
            PolicyKind::Random => f.pad("random"),
        }
    }
}

/// A policy name that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown eviction policy {input:?} (valid: lru, fifo, lfu, lru-k, lru-<K> with K in 1..={max_k}, \
     arc, s3-fifo, random)",
    max_k = PolicyKind::MAX_K
)]
pub struct PolicyParseError {
    input: String,
}

impl FromStr for PolicyKind {
    type Err = PolicyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kind = match s {
            "lru" => PolicyKind::Lru,
            "fifo" => PolicyKind::Fifo,
            "lfu" => PolicyKind::Lfu,
            "lru-k" => PolicyKind::LruK { k: Self::DEFAULT_K },
            "arc" => PolicyKind::Arc,
            "s3-fifo" => PolicyKind::S3Fifo,
            "random" => PolicyKind::Random,
            _ => s
                .strip_prefix("lru-")
                // Only plain decimal digits: u8::from_str would also take "+3".
                .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|k| k.parse::<u8>().ok())
                .filter(|k| (1..=Self::MAX_K).contains(k))
                .map(|k| PolicyKind::LruK { k })
                .ok_or_else(|| PolicyParseError { input: s.to_string() })?,
        };
        Ok(kind)
    }
}

impl TryFrom<String> for PolicyKind {
    type Error = PolicyParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PolicyKind> for String {
    fn from(kind: PolicyKind) -> String {
        kind.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_serde() {
        let mut kinds = PolicyKind::ALL.to_vec();
        kinds.push(PolicyKind::LruK { k: 3 });
        kinds.push(PolicyKind::LruK { k: 1 });
        for kind in kinds {
            let name = kind.to_string();
            assert_eq!(name.parse::<PolicyKind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<PolicyKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn lru_k_forms() {
        assert_eq!("lru-k".parse::<PolicyKind>().unwrap(), PolicyKind::LruK { k: 2 });
        assert_eq!("lru-2".parse::<PolicyKind>().unwrap(), PolicyKind::LruK { k: 2 });
        assert_eq!("lru-3".parse::<PolicyKind>().unwrap(), PolicyKind::LruK { k: 3 });
        assert_eq!(PolicyKind::LruK { k: 3 }.to_string(), "lru-3");
        assert_eq!(PolicyKind::LruK { k: 2 }.to_string(), "lru-k");
        assert_eq!(format!("{:>7}|{:<6}|", PolicyKind::LruK { k: 3 }, PolicyKind::Lru), "  lru-3|lru   |");
    }

    #[test]
    fn rejects_unknown_names_and_lists_valid_ones() {
        for bad in ["", "LRU", "lru-0", "lru-17", "lru-+3", "lru-", "lru-k:3", "s3fifo", "2q"] {
            let err = bad.parse::<PolicyKind>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(msg.contains("s3-fifo") && msg.contains("lru-k"), "{msg}");
        }
        assert!(serde_json::from_str::<PolicyKind>("\"mru\"").is_err());
    }
}
