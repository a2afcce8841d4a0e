//! The one-start replay engine, on the simulation kernel (`crate::sim`): one sandbox start's
//! trace replayed through the guest page cache, the agent, the worker cache, the AZ cache and S3
//! ([`engine`]), what it did ([`result`]), the caches' state before it ([`start`]), the scenario
//! it runs under ([`scenario`]), a run's report ([`report`]) and the two packagings it is compared with ([`baseline`]).
//! docs/replay-model.md describes the model.

pub mod baseline;
pub mod engine;
pub mod report;
pub mod result;
pub mod scenario;
pub mod start;

pub use baseline::{Baseline, Baselines, LayerSize, baselines};
pub use engine::{Source, replay};
pub use report::{MappingCounts, ReplayReport};
pub use result::{
    ChunkRead, Fetch, Percentiles, ReadEvent, ReplayResult, RequestStreams, TierCount, Via,
    write_chunk_stream, write_request_streams,
};
pub use scenario::{Scenario, ScenarioError};
pub use start::CacheState;
