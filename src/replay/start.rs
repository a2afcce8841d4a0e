//! The caches' state before a start: what the worker cache (L1) and the AZ cache (L2) hold when
//! the first read arrives. One type for every command and experiment that sets it up (`replay`,
//! `sweep`, `explain`, the demo).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cache::ChunkId;

/// What one cache holds before a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheState {
    /// Empty.
    Cold,
    /// Every chunk of this image.
    Warm,
    /// The chunks of the other images in the store (same salt): what their starts left behind.
    Store,
}

impl CacheState {
    pub const ALL: [CacheState; 3] = [CacheState::Cold, CacheState::Warm, CacheState::Store];

    /// The state's one name (also `Display`, `FromStr` and serde).
    pub const fn name(self) -> &'static str {
        match self {
            CacheState::Cold => "cold",
            CacheState::Warm => "warm",
            CacheState::Store => "store",
        }
    }

    /// Whether a cache in this state holds `id`, one of the image's stored chunks; `in_store`
    /// says whether another image of the store holds it too.
    pub fn holds(self, id: ChunkId, in_store: impl Fn(ChunkId) -> bool) -> bool {
        match self {
            CacheState::Cold => false,
            CacheState::Warm => true,
            CacheState::Store => in_store(id),
        }
    }
}

impl fmt::Display for CacheState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cache state name that is none of [`CacheState::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cache state {given:?}: expected cold, warm or store")]
pub struct CacheStateParseError {
    pub given: String,
}

impl FromStr for CacheState {
    type Err = CacheStateParseError;
    fn from_str(s: &str) -> Result<Self, CacheStateParseError> {
        CacheState::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| CacheStateParseError { given: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_store_asks() {
        for c in CacheState::ALL {
            assert_eq!(c.name().parse::<CacheState>(), Ok(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::Value::from(c.name()));
        }
        assert!("hot".parse::<CacheState>().unwrap_err().to_string().contains("\"hot\""));
        let odd = |id: ChunkId| id.0 % 2 == 1;
        assert!(!CacheState::Cold.holds(ChunkId(1), odd));
        assert!(CacheState::Warm.holds(ChunkId(0), odd));
        assert!(CacheState::Store.holds(ChunkId(1), odd) && !CacheState::Store.holds(ChunkId(2), odd));
    }
}
