//! The replay's scenario file: every knob of one start, in TOML with explicit units, unknown keys rejected.
//! Every default below says where it comes from; docs/latency-model.md covers the latencies.

use serde::{Deserialize, Serialize};

use crate::quantity::DumpUnits;
pub use crate::sim::config::{FetchConfig, L1Config, L2Config, RedundancyName};
use crate::sim::latency::{LatencyDist, TierLatencies};
pub use crate::sim::rng::DEFAULT_SEED;
use crate::sim::time::SimDuration;
use crate::trace::Header;
use crate::units::ByteSize;

/// The keys of a replay scenario that carry units, for [`Scenario::to_toml`].
pub const DUMP_UNITS: DumpUnits<'static> = DumpUnits {
    bytes: &["memory_capacity", "disk_capacity", "node_capacity", "zip_limit"],
    per_second: &["nic_bandwidth", "download_bandwidth", "unpack_speed", "decrypt_bytes_per_sec"],
    nanos: &["median", "p999", "fixed"],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Seed of every random stream in the replay (ChaCha8, one stream per component).
    pub seed: u64,
    /// Multiplier on the CPU gaps between a thread's accesses: tracing (strace) inflates them, so
    /// a replay of a traced run usually wants less than 1. Default 1 (the trace as recorded).
    #[serde(deserialize_with = "crate::quantity::de::scale")]
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
    /// window for block devices is 128 KiB = 32 pages). A trace recorded through the FUSE mount
    /// replays with 0 whatever this says: its reads already include the kernel's read-ahead
    /// ([`Scenario::fit_to_trace`]).
    #[serde(deserialize_with = "crate::quantity::de::count_u64::<_, 0, 65536>")]
    pub read_ahead_pages: u64,
}

impl Default for GuestConfig {
    fn default() -> Self {
        GuestConfig { read_ahead_pages: 32 }
    }
}

/// The two packagings a lazy load is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Download bandwidth of a full image pull or a zip package, bytes per second (1 Gbit/s, a
    /// typical per-host registry pull).
    #[serde(deserialize_with = "crate::quantity::de::bandwidth")]
    pub download_bandwidth: ByteSize,
    /// Unpack (decompress + write) speed of layers and zips, uncompressed bytes per second.
    /// Default 385 MB/s: this project's own bench, `cargo bench --bench pipeline --
    /// flatten/unpack` (open, flatten and extract a three-layer image into the page cache, as an
    /// unpack on a worker writes before any write-back), 367 MiB/s on 2026-12-03
    /// (docs/performance.md, "Bench figures the model's defaults cite").
    #[serde(deserialize_with = "crate::quantity::de::bandwidth")]
    pub unpack_speed: ByteSize,
    /// Lambda's limit on an unzipped function package.
    #[serde(deserialize_with = "crate::quantity::de::capacity")]
    pub zip_limit: ByteSize,
    /// Layers a zip package carries: those from this index up (the base runtime is assumed
    /// present on the worker, as for zip functions).
    #[serde(deserialize_with = "crate::quantity::de::count_usize::<_, 0, 127>")]
    pub zip_from_layer: usize,
    /// A read served by local disk (page cache miss on an unpacked filesystem).
    pub local_read: LatencyDist,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            download_bandwidth: ByteSize(125_000_000),
            // flatten/unpack, docs/performance.md (see the field).
            unpack_speed: ByteSize(385_000_000),
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

    /// Fits the scenario to the trace it replays: a trace recorded through the FUSE mount already
    /// holds the kernel's read-ahead (every page the kernel asked the mount for is a `read`), so
    /// the guest read-ahead is turned off rather than added on top. Says whether it changed
    /// anything. Traces from strace keep `guest.read_ahead_pages` as configured.
    pub fn fit_to_trace(&mut self, header: &Header) -> bool {
        if header.recorded_through_fuse() && self.guest.read_ahead_pages != 0 {
            self.guest.read_ahead_pages = 0;
            return true;
        }
        false
    }

    /// The effective configuration, as echoed in every report.
    /// Sizes, bandwidths and latencies carry their units (`"64GiB"`, `"125MB/s"`, `"36ms"`); the
    /// text reads back to the same scenario.
    pub fn to_toml(&self) -> String {
        DUMP_UNITS.apply(&toml::to_string(self).expect("a scenario always serialises"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::PolicyKind;

    #[test]
    fn a_fuse_recording_gets_no_guest_read_ahead_on_top_of_the_kernels() {
        let mut sc = Scenario::default();
        assert!(!sc.fit_to_trace(&Header::new("strace", "x")));
        assert_eq!(sc.guest.read_ahead_pages, 32, "strace traces keep the knob");
        assert!(sc.fit_to_trace(&Header::new("fuse", "x").with_answer_times()));
        assert_eq!(sc.guest.read_ahead_pages, 0);
        assert!(!sc.fit_to_trace(&Header::new("fuse", "x")), "already off");
    }

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

    #[test]
    fn dumps_carry_units_and_read_back() {
        let d = Scenario::default();
        let text = d.to_toml();
        for want in [
            "node_capacity = \"64GiB\"",
            "nic_bandwidth = \"3125MB/s\"",
            "median = \"36ms\"",
            "p999 = \"175ms\"",
            "decrypt_bytes_per_sec = \"1100MB/s\"",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        let mut odd = d.clone();
        odd.fetch.nic_bandwidth = ByteSize(1_234_567);
        odd.latency.l1_hit = crate::sim::latency::LatencyDist::Fixed(SimDuration::from_nanos(1_500));
        assert_eq!(Scenario::from_toml(&odd.to_toml()).unwrap(), odd);
    }

    #[test]
    fn knobs_are_bounded_with_the_value_and_the_bound_in_the_error() {
        for (text, want) in [
            ("[fetch]\nconcurrency = 100000\n", "maximum 4096"),
            ("[fetch]\nnic_bandwidth = 0\n", "below the minimum 1KB/s"),
            ("[guest]\nread_ahead_pages = -1\n", "below the minimum 0"),
            ("cpu_scale = -1.0\n", "outside 0 ..= 1000"),
            ("[l2]\nnodes = 0\n", "below the minimum 1"),
            ("[l1]\nmemory_capacity = \"2048TiB\"\n", "above the maximum 1024TiB"),
        ] {
            let e = Scenario::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
