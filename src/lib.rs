//! chunkload models how AWS Lambda starts functions packaged as container images: it reads real OCI
//! images, flattens their layers, lays them out as a deterministic block image, cuts that into
//! convergently encrypted chunks, and replays file-access traces through a tiered cache model.
//!
//! See ARCHITECTURE.md for the pipeline and where each stage lives.

pub mod cache;
pub mod cachesim;
pub mod chunk;
pub mod crypto;
pub mod flatten;
pub mod fleet;
pub mod image;
pub mod ingest;
pub mod invocations;
pub mod layout;
pub mod mount;
pub mod overrides;
pub mod quantity;
pub mod replay;
pub mod report;
pub mod requests;
pub mod rootfs;
pub mod sim;
pub mod sniff;
pub mod stats;
pub mod store;
pub mod sweep;
pub mod teach;
pub mod trace;
pub mod units;
