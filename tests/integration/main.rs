//! All integration tests in one binary (one link, shared fixtures): run with `cargo test`.

mod battery;
mod browser;
mod cachesim_cli;
mod chunks;
mod cli;
mod docs;
mod exact;
mod fleet_real;
mod hostile;
mod manifest_cli;
mod mount;
mod replay_cli;
mod sandbox;
mod simulate_cli;
mod slurm;
mod store_cli;
mod support;
mod sweep_cli;
mod sweep_fleet;
mod teach;
mod trace_cli;
mod trace_map;
