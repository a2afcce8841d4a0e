//! Scenario files: every knob of a replay, in TOML with explicit units, unknown keys rejected.
//! Every default below says where it comes from; docs/latency-model.md covers the latencies.

use serde::{Deserialize, Serialize};

use super::latency::{LatencyDist, TierLatencies};
use super::time::SimDuration;
use crate::cache::{AzConfig, PolicyKind, Redundancy};
use crate::units::ByteSize;

/// The default seed, printed in every report with the effective configuration.
pub const DEFAULT_SEED: u64 = 0x00c0_ffee;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Seed of every random stream in the replay (ChaCha8, one stream per component).
    pub seed: u64,
    /// Multiplier on the CPU gaps between a thread's accesses: tracing (strace) inflates them, so
    /// a replay of a traced run usually wants less than 1. Default 1 (the trace as recorded).
    pub cpu_scale: f64,
    pub latency: TierLatencies,
    pub guest: GuestConfig,
    pub l1: L1Config,
    pub l2: L2Config,
    pub fetch: FetchConfig,
    pub baseline: BaselineConfig,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: DEFAULT_SEED,
            cpu_scale: 1.0,
            latency: TierLatencies::default(),
            guest: GuestConfig::default(),
            l1: L1Config::default(),
            l2: L2Config::default(),
            fetch: FetchConfig::default(),
            baseline: BaselineConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuestConfig {
    /// Pages the guest kernel reads ahead after a page-cache miss (Linux's default read-ahead
    /// window for block devices is 128 KiB = 32 pages).
    pub read_ahead_pages: u64,
}

impl Default for GuestConfig {
    fn default() -> Self {
        GuestConfig { read_ahead_pages: 32 }
    }
}

/// The worker cache: memory for very recent chunks, local disk for less recent ones (the paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct L1Config {
    /// Memory tier. The paper gives no size; 1 GiB is a modest slice of a worker's memory.
    pub memory_capacity: ByteSize,
    /// Local-disk tier. 10 GiB holds the largest allowed image, so one start never evicts its
    /// own chunks.
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
    pub nodes: usize,
    /// Bytes per node (memory + flash). Not in the paper; 64 GiB is an ordinary flash node slice.
    pub node_capacity: ByteSize,
    /// The paper: LRU-k (K not given; 2).
    pub policy: PolicyKind,
    /// `erasure-coded` (4-of-5, the paper's) or `single-copy`.
    pub redundancy: RedundancyName,
}

impl Default for L2Config {
    fn default() -> Self {
        L2Config {
            nodes: 20,
            node_capacity: ByteSize::gib(64),
            policy: PolicyKind::LruK { k: PolicyKind::DEFAULT_K },
            redundancy: RedundancyName::ErasureCoded,
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
    pub fn az_config(&self, seed: u64) -> AzConfig {
        let mut c = AzConfig::new(self.node_capacity, seed);
        c.nodes = self.nodes;
        c.policy = self.policy;
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
    pub concurrency: usize,
    /// Worker NIC bandwidth in bytes per second, shared by all fetches (25 Gbit/s).
    pub nic_bandwidth: ByteSize,
    /// After a miss, also fetch the next N chunks (what-if; 0 = off).
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

/// The two packagings a lazy load is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Download bandwidth of a full image pull or a zip package, bytes per second (1 Gbit/s, a
    /// typical per-host registry pull).
    pub download_bandwidth: ByteSize,
    /// Unpack (decompress + write) speed of layers and zips, uncompressed bytes per second
    /// (this project's extract runs at ~150 MB/s on the realistic image).
    pub unpack_speed: ByteSize,
    /// Lambda's limit on an unzipped function package.
    pub zip_limit: ByteSize,
    /// Layers a zip package carries: those from this index up (the base runtime is assumed
    /// present on the worker, as for zip functions).
    pub zip_from_layer: usize,
    /// A read served by local disk (page cache miss on an unpacked filesystem).
    pub local_read: LatencyDist,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            download_bandwidth: ByteSize(125_000_000),
            unpack_speed: ByteSize(150_000_000),
            zip_limit: ByteSize(250_000_000),
            zip_from_layer: 1,
            local_read: LatencyDist::LogNormal {
                median: SimDuration::from_micros(80),
                p999: SimDuration::from_micros(1_000),
            },
        }
    }
}

/// Why a scenario file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    pub fn from_toml(s: &str) -> Result<Self, ScenarioError> {
        let sc: Scenario = toml::from_str(s)?;
        sc.latency.validate().map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        sc.l1.disk_hit.validate("l1.disk_hit").map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        sc.baseline
            .local_read
            .validate("baseline.local_read")
            .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        if sc.fetch.concurrency == 0 {
            return Err(ScenarioError::Invalid("fetch.concurrency must be at least 1".into()));
        }
        if sc.fetch.nic_bandwidth.bytes() == 0 || sc.baseline.download_bandwidth.bytes() == 0 {
            return Err(ScenarioError::Invalid("bandwidths must be above zero".into()));
        }
        if !(sc.cpu_scale >= 0.0 && sc.cpu_scale.is_finite()) {
            return Err(ScenarioError::Invalid("cpu_scale must be a non-negative number".into()));
        }
        Ok(sc)
    }

    /// The effective configuration, as echoed in every report.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_keys_are_rejected() {
        let d = Scenario::default();
        assert_eq!(Scenario::from_toml(&d.to_toml()).unwrap(), d);
        let err = Scenario::from_toml("seed = 1\n[l1]\ndisk_capacity = \"1GiB\"\nsize = 3\n").unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
        let sc =
            Scenario::from_toml("cpu_scale = 0.5\n[l1]\ndisk_capacity = \"1GiB\"\npolicy = \"s3-fifo\"\n")
                .unwrap();
        assert_eq!(sc.l1.disk_capacity, ByteSize::gib(1));
        assert_eq!(sc.l1.policy, PolicyKind::S3Fifo);
        assert!(Scenario::from_toml("[fetch]\nconcurrency = 0\n").is_err());
    }
}
