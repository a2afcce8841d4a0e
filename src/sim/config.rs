//! The tier configurations both engines share: the worker cache (L1), the AZ cache (L2) and how
//! an agent fetches (concurrency, NIC). The replay's scenario and the fleet's embed them, so a
//! knob has one name, one default and one source in both. Every default says where it comes from.

use serde::{Deserialize, Serialize};

use super::az::{AzConfig, Redundancy};
use super::latency::LatencyDist;
use super::time::SimDuration;
use crate::cache::PolicyKind;
use crate::units::ByteSize;

/// The worker cache: memory for very recent chunks, local disk for less recent ones (the paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct L1Config {
    /// Memory tier. The paper gives no size; 1 GiB is a modest slice of a worker's memory.
    #[serde(deserialize_with = "crate::quantity::de::capacity")]
    pub memory_capacity: ByteSize,
    /// Local-disk tier. 10 GiB holds the largest allowed image, so one start never evicts its
    /// own chunks.
    #[serde(deserialize_with = "crate::quantity::de::capacity")]
    pub disk_capacity: ByteSize,
    /// The paper does not state the worker cache's policy; LRU is the plain choice.
    pub policy: PolicyKind,
    /// A read served by the disk tier (local NVMe, a few pages of a chunk). Memory hits cost
    /// `latency.l1_hit`. Median 60 us, p99.9 500 us: still mostly under figure 11's 0.1 ms.
    pub disk_hit: LatencyDist,
}

impl Default for L1Config {
    fn default() -> Self {
        L1Config {
            memory_capacity: ByteSize::gib(1),
            disk_capacity: ByteSize::gib(10),
            policy: PolicyKind::Lru,
            disk_hit: LatencyDist::LogNormal {
                median: SimDuration::from_micros(60),
                p999: SimDuration::from_micros(500),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct L2Config {
    /// AZ cache nodes (the paper's single-copy example uses a 20-node ring).
    #[serde(deserialize_with = "crate::quantity::de::count_usize::<_, 1, 4096>")]
    pub nodes: usize,
    /// Bytes per node (memory + flash). Not in the paper; 64 GiB is an ordinary flash node slice.
    #[serde(deserialize_with = "crate::quantity::de::capacity")]
    pub node_capacity: ByteSize,
    /// The paper: LRU-k (K not given; 2).
    pub policy: PolicyKind,
    /// `erasure-coded` (4-of-5, the paper's) or `single-copy`.
    pub redundancy: RedundancyName,
    /// Share of each node's capacity that is memory, over flash (the paper: about 10%). Memory is
    /// inclusive: it holds copies of recently written or read pieces.
    pub memory_fraction: f64,
    /// Extra time of a piece read from a node's flash rather than its memory (an NVMe read of a
    /// 128 KiB stripe). `latency.az_stripe` is the memory-resident stripe as the worker sees it.
    /// Default median 100 us, p99.9 1 ms: NVMe random-read latency under load (not in the paper,
    /// which gives one worker-side figure for an AZ hit).
    pub flash_read: LatencyDist,
}

impl Default for L2Config {
    fn default() -> Self {
        L2Config {
            nodes: 20,
            node_capacity: ByteSize::gib(64),
            policy: PolicyKind::LruK { k: PolicyKind::DEFAULT_K },
            redundancy: RedundancyName::ErasureCoded,
            memory_fraction: 0.10,
            flash_read: LatencyDist::LogNormal {
                median: SimDuration::from_micros(100),
                p999: SimDuration::from_micros(1_000),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedundancyName {
    ErasureCoded,
    SingleCopy,
}

impl L2Config {
    /// The AZ cache of a run seeded with `seed` (its placement and node policies draw from the
    /// run's `"az-cache"` seed).
    pub fn az_config(&self, seed: u64) -> AzConfig {
        let mut c = AzConfig::new(self.node_capacity, super::rng::seed_for(seed, "az-cache"));
        c.nodes = self.nodes;
        c.policy = self.policy;
        c.memory_fraction = self.memory_fraction;
        c.redundancy = match self.redundancy {
            RedundancyName::ErasureCoded => Redundancy::EC_4_OF_5,
            RedundancyName::SingleCopy => Redundancy::SingleCopy,
        };
        c
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Chunk fetches one sandbox's agent keeps in flight (not in the paper; 16).
    #[serde(deserialize_with = "crate::quantity::de::count_usize::<_, 1, 4096>")]
    pub concurrency: usize,
    /// Worker NIC bandwidth in bytes per second, shared by all fetches (25 Gbit/s).
    #[serde(deserialize_with = "crate::quantity::de::bandwidth")]
    pub nic_bandwidth: ByteSize,
    /// After a miss, also fetch the next N chunks (what-if; 0 = off).
    #[serde(deserialize_with = "crate::quantity::de::count_u32::<_, 0, 4096>")]
    pub read_ahead_chunks: u32,
    /// Fetch the trace's whole working set at start, as the SnapStart description says Lambda
    /// does for recorded working sets (what-if; off).
    pub prefetch_working_set: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            concurrency: 16,
            nic_bandwidth: ByteSize(25_000_000_000 / 8),
            read_ahead_chunks: 0,
            prefetch_working_set: false,
        }
    }
}
