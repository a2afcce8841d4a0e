//! The simulated S3: every GET of a chunk drawn from one latency distribution, behind an optional
//! request-rate limit (throttling: at most `rate` GETs per second, admitted in 10 ms slots).
//!
//! A throttled request takes the first slot at or after its issue time with room, whatever order
//! requests are simulated in, so a burst drains at the rate however the engine interleaves starts.

use rand_chacha::ChaCha8Rng;

use super::latency::{LatencyDist, Sampler};
use super::time::{SimDuration, SimTime};

/// S3 as a worker sees it: a GET's latency and, if set, the region's request-rate limit.
pub struct S3 {
    get: Sampler,
    throttle: Option<Throttle>,
}

/// One GET, priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Get {
    /// Time the request queued behind the rate limit before it went out.
    pub throttled: SimDuration,
    /// The GET itself, once sent.
    pub latency: SimDuration,
}

impl S3Get {
    /// From issuing the request to having the chunk.
    pub fn total(&self) -> SimDuration {
        self.throttled + self.latency
    }
}

impl S3 {
    /// S3 with no request-rate limit (one start's replay: a handful of GETs).
    pub fn unlimited(get: LatencyDist) -> Self {
        S3 { get: get.sampler(), throttle: None }
    }

    /// S3 admitting at most `rate` GETs per second.
    ///
    /// # Panics
    /// Unless `rate` is positive and finite (scenarios validate it).
    pub fn limited(get: LatencyDist, rate: f64) -> Self {
        S3 { get: get.sampler(), throttle: Some(Throttle::new(rate)) }
    }

    /// A GET issued at `at`. `throttled: false` bypasses the rate limit (the fleet's warm-up fills
    /// empty caches, which a limit would turn into a start in overload).
    pub fn get(&mut self, at: SimTime, throttled: bool, rng: &mut ChaCha8Rng) -> S3Get {
        let waited = match (&mut self.throttle, throttled) {
            (Some(t), true) => SimDuration::from_nanos(t.admit(at.as_nanos()) - at.as_nanos()),
            _ => SimDuration::ZERO,
        };
        S3Get { throttled: waited, latency: self.get.sample(rng) }
    }
}

/// Width of a slot.
const SLOT_NS: u64 = 10_000_000;

/// The request-rate limit: slots of `slot_ns` holding `per_slot` requests each.
pub struct Throttle {
    slot_ns: u64,
    per_slot: u32,
    used: Vec<u32>,
    /// Union-find towards the next slot that may have room (path-halving).
    next: Vec<u32>,
}

impl Throttle {
    /// # Panics
    /// Unless `rate` is positive and finite.
    pub fn new(rate: f64) -> Self {
        assert!(rate.is_finite() && rate > 0.0, "a throttle needs a positive rate");
        // At least one request per slot: below 100 requests/s the slot widens.
        let (slot_ns, per_slot) = if rate * SLOT_NS as f64 / 1e9 >= 1.0 {
            (SLOT_NS, (rate * SLOT_NS as f64 / 1e9).floor() as u32)
        } else {
            ((1e9 / rate).ceil() as u64, 1)
        };
        Throttle { slot_ns, per_slot, used: Vec::new(), next: Vec::new() }
    }

    fn grow(&mut self, slot: usize) {
        if slot >= self.used.len() {
            let from = self.next.len() as u32;
            let to = (slot + 1).max(self.used.len() * 2);
            self.used.resize(to, 0);
            self.next.extend(from..to as u32);
        }
    }

    fn find(&mut self, mut s: usize) -> usize {
        loop {
            self.grow(s);
            let n = self.next[s] as usize;
            if n == s {
                return s;
            }
            self.grow(n);
            let nn = self.next[n] as usize;
            self.next[s] = nn as u32;
            s = n;
        }
    }

    /// Admits a request issued at `at_ns`; returns when it may go.
    pub fn admit(&mut self, at_ns: u64) -> u64 {
        let want = (at_ns / self.slot_ns) as usize;
        let s = self.find(want);
        self.used[s] += 1;
        if self.used[s] >= self.per_slot {
            self.grow(s + 1);
            self.next[s] = (s + 1) as u32;
        }
        if s == want { at_ns } else { s as u64 * self.slot_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_drain_at_the_rate_in_any_order() {
        let mut t = Throttle::new(1000.0); // 10 per 10 ms slot
        let mut last = 0;
        for _ in 0..1000 {
            last = last.max(t.admit(5_000_000_000));
        }
        // 1000 requests at 1000/s: the last goes about a second later.
        assert!((5_980_000_000..=6_000_000_000).contains(&last), "{last}");
        // A request issued earlier than the burst still finds its own slot free.
        assert_eq!(t.admit(1_000_000_000), 1_000_000_000);
        let mut slow = Throttle::new(10.0);
        assert_eq!(slow.admit(0), 0);
        assert_eq!(slow.admit(0), 100_000_000);
    }
}
