//! Where every random number of a simulation comes from: one seed per run, and from it one
//! ChaCha8 stream per component, derived by name. A component never seeds a generator itself, so
//! adding a component (or a draw in one) leaves every other component's draws unchanged.
//!
//! One derivation, [`derive()`]: the run's seed mixed with a 64-bit tag (SplitMix64's finaliser,
//! [`mix64`]). A named stream's tag is its name's FNV-1a hash ([`stream`], [`seed_for`]); a family
//! of streams (one per worker, per node) uses a tag built from the family's tag and the member's
//! index ([`derive()`] directly).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use crate::cache::ring::mix64;

/// The default seed of a run, printed in every report with the effective configuration.
pub const DEFAULT_SEED: u64 = 0x00c0_ffee;

/// The tag of a named component: the FNV-1a hash of its name.
pub fn name_tag(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The seed of the component `tag` in a run seeded with `seed`.
pub fn derive(seed: u64, tag: u64) -> u64 {
    mix64(seed ^ mix64(tag))
}

/// The seed of the component called `name` (for a component that takes a seed, not a stream).
pub fn seed_for(seed: u64, name: &str) -> u64 {
    derive(seed, name_tag(name))
}

/// The random stream of the component called `name` in a run seeded with `seed`.
pub fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed_for(seed, name))
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn streams_differ_by_name_and_seed_and_repeat() {
        let draw = |seed, name| stream(seed, name).next_u64();
        assert_eq!(draw(1, "latency"), draw(1, "latency"));
        assert_ne!(draw(1, "latency"), draw(1, "workload"));
        assert_ne!(draw(1, "latency"), draw(2, "latency"));
        assert_ne!(derive(1, 1), derive(1, 2));
        assert_eq!(seed_for(9, "x"), derive(9, name_tag("x")));
    }
}
