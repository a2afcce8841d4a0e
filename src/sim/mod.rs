//! Simulated time: everything a replay needs to order and price events without the wall clock.

pub mod time;

pub use time::{SimDuration, SimTime};
