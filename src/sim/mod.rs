//! Simulated time and the latency model of the tiers below the agent: everything a replay needs
//! to price a chunk read, without touching bytes or the wall clock.

pub mod baseline;
pub mod latency;
pub mod replay;
pub mod scenario;
pub mod time;

pub use latency::{LatencyDist, TierLatencies};
pub use scenario::Scenario;
pub use time::{SimDuration, SimTime};
