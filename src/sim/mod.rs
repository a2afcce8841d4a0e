//! The simulation kernel: what every engine (the one-start replay, the fleet) and the FUSE loader's
//! injected latency share. Simulated time ([`time`]), latency distributions ([`latency`]), the one
//! way to get random numbers ([`rng`]), the tiers and the one read path that prices them ([`tier`]:
//! [`Tier`], [`worker_hit`], [`az_read`]; [`s3`]: the simulated S3), the tiers' state ([`worker`]:
//! the worker cache; [`az`]: the AZ cache), their configurations ([`config`]), chunk ids
//! ([`chunks`]) and the paper's cache sizing from measured reuse and public prices ([`sizing`]).
//! Below the line: ids, sizes and simulated time only, never bytes, manifests or keys.

pub mod az;
pub mod chunks;
pub mod config;
pub mod latency;
pub mod rng;
pub mod s3;
pub mod sizing;
pub mod tier;
pub mod time;
pub mod worker;

pub use az::{AzCache, AzConfig, AzLookup, AzStats, NodeStats, Redundancy};
pub use chunks::{ChunkTable, Interner};
pub use config::{FetchConfig, L1Config, L2Config, RedundancyName};
pub use latency::{LatencyDist, TierLatencies};
pub use s3::S3;
pub use sizing::{PricingConfig, SizingInputs, SizingReport};
pub use tier::{AzRead, Tier, az_read, worker_hit};
pub use time::{SimDuration, SimTime};
pub use worker::{WorkerCache, WorkerStats};
