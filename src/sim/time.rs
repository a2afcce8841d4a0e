//! Simulated time: integer nanoseconds, never the wall clock.
//!
//! Integers rather than `f64` so that sums are exact and replays are bit-identical across
//! platforms; nanoseconds because the fastest modelled step (an AZ server GET, < 50 us) needs
//! sub-microsecond resolution once many are added up, and `u64` ns still spans 584 years.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

const NS_PER_US: u64 = 1_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;

/// A span of simulated time in nanoseconds.
///
/// Arithmetic saturates (at zero below, at [`SimDuration::MAX`] above): a negative duration is
/// always a modelling bug made harmless, and `MAX` doubles as "never".
///
/// Serialises as integer nanoseconds; deserialises from integer nanoseconds or from a string with
/// a unit (`"550us"`), so hand-written scenario files can say what they mean.
///
/// ```
/// use chunkload::sim::time::SimDuration;
/// let d: SimDuration = "3.7ms".parse().unwrap();
/// assert_eq!(d, SimDuration::from_micros(3_700));
/// assert_eq!(d.to_string(), "3.70ms");
/// assert_eq!(SimDuration::from_micros(550).to_string(), "550us");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct SimDuration(u64);

/// An instant of simulated time: nanoseconds since the start of the simulation.
///
/// `SimTime - SimTime` saturates at zero like `std::time::Instant::duration_since`;
/// `SimTime + SimDuration` saturates at [`SimTime::MAX`] ("never").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct SimTime(u64);

impl SimDuration {
    pub const ZERO: Self = SimDuration(0);
    pub const MAX: Self = SimDuration(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us.saturating_mul(NS_PER_US))
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms.saturating_mul(NS_PER_MS))
    }
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s.saturating_mul(NS_PER_S))
    }
    /// Rounds to the nearest nanosecond; negative or NaN gives zero, too large gives `MAX`
    /// (samples from a heavy-tailed distribution must not wrap).
    pub fn from_secs_f64(s: f64) -> Self {
        Self::from_nanos_f64(s * NS_PER_S as f64)
    }
    /// As [`from_secs_f64`](Self::from_secs_f64), from nanoseconds.
    pub fn from_nanos_f64(ns: f64) -> Self {
        // Rounds half away from zero, as `f64::round` does, without its library call (this runs
        // for every latency draw): `as` truncates, saturates and maps NaN to 0, and `ns - whole` is
        // exact for a non-negative `ns` below 2^64. Negative `ns` gives 0, as `round` then `as` does.
        // Branch-free: which way a latency draw rounds is a coin toss, and a mispredicted branch
        // per draw cost more than the rest of the conversion.
        let whole = ns as u64;
        SimDuration(whole.saturating_add(u64::from(ns - whole as f64 >= 0.5)))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_nanos_f64(self) -> f64 {
        self.0 as f64
    }
    pub fn as_micros_f64(self) -> f64 {
        self.0 as f64 / NS_PER_US as f64
    }
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / NS_PER_MS as f64
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub const fn saturating_add(self, rhs: Self) -> Self {
        SimDuration(self.0.saturating_add(rhs.0))
    }
    pub const fn saturating_sub(self, rhs: Self) -> Self {
        SimDuration(self.0.saturating_sub(rhs.0))
    }
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(ns) => Some(SimDuration(ns)),
            None => None,
        }
    }
}

impl SimTime {
    /// The start of the simulation.
    pub const ZERO: Self = SimTime(0);
    /// "Never": later than any event that can happen.
    pub const MAX: Self = SimTime(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Time since the start of the simulation.
    pub const fn since_start(self) -> SimDuration {
        SimDuration(self.0)
    }
    /// Zero if `earlier` is in fact later.
    pub const fn saturating_duration_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
    pub const fn checked_add(self, d: SimDuration) -> Option<Self> {
        match self.0.checked_add(d.0) {
            Some(ns) => Some(SimTime(ns)),
            None => None,
        }
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, rhs: SimDuration) -> SimDuration {
        self.saturating_add(rhs)
    }
}
impl AddAssign for SimDuration {
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}
impl Sub for SimDuration {
    type Output = SimDuration;
    fn sub(self, rhs: SimDuration) -> SimDuration {
        self.saturating_sub(rhs)
    }
}
impl SubAssign for SimDuration {
    fn sub_assign(&mut self, rhs: SimDuration) {
        *self = *self - rhs;
    }
}
impl Mul<u64> for SimDuration {
    type Output = SimDuration;
    fn mul(self, rhs: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(rhs))
    }
}
impl Div<u64> for SimDuration {
    type Output = SimDuration;
    /// Panics on division by zero, like integer division.
    fn div(self, rhs: u64) -> SimDuration {
        SimDuration(self.0 / rhs)
    }
}
impl Sum for SimDuration {
    fn sum<I: Iterator<Item = SimDuration>>(iter: I) -> SimDuration {
        iter.fold(SimDuration::ZERO, Add::add)
    }
}
impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}
impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}
impl Sub<SimDuration> for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimDuration) -> SimTime {
        SimTime(self.0.saturating_sub(rhs.0))
    }
}
impl Sub for SimTime {
    type Output = SimDuration;
    fn sub(self, rhs: SimTime) -> SimDuration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for SimDuration {
    /// Human units at about three significant figures (`250ns`, `550us`, `3.70ms`, `36.0ms`,
    /// `1.500s`): for reports, not a lossless format (serde is).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns < NS_PER_US {
            write!(f, "{ns}ns")
        } else if ns < NS_PER_MS {
            if ns.is_multiple_of(NS_PER_US) {
                write!(f, "{}us", ns / NS_PER_US)
            } else {
                write!(f, "{:.1}us", self.as_micros_f64())
            }
        } else if ns < 10 * NS_PER_MS {
            write!(f, "{:.2}ms", self.as_millis_f64())
        } else if ns < NS_PER_S {
            write!(f, "{:.1}ms", self.as_millis_f64())
        } else if ns >= 60 * NS_PER_S && ns.is_multiple_of(60 * NS_PER_S) {
            // Whole minutes, hours or days read as such (a scenario's windows and intervals).
            let min = ns / (60 * NS_PER_S);
            if min.is_multiple_of(24 * 60) {
                write!(f, "{}d", min / (24 * 60))
            } else if min.is_multiple_of(60) {
                write!(f, "{}h", min / 60)
            } else {
                write!(f, "{min}min")
            }
        } else {
            write!(f, "{:.3}s", self.as_secs_f64())
        }
    }
}
impl fmt::Debug for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimDuration({self})")
    }
}
impl fmt::Display for SimTime {
    /// Time since the start, in the units of [`SimDuration`]'s `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.since_start(), f)
    }
}
impl fmt::Debug for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimTime({self})")
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (examples: 250ns, 550us, 3.7ms, 1s)")]
pub struct SimDurationError {
    input: String,
    reason: &'static str,
}

impl FromStr for SimDuration {
    type Err = SimDurationError;

    /// A decimal number and a unit (`ns`, `us` or `µs`, `ms`, `s`, `min`, `h`, `d`: fleet scenarios
    /// span days). The unit is required: a bare
    /// number in a scenario file is too easy to misread. Exact in integer arithmetic; a fraction
    /// finer than a nanosecond is truncated.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| SimDurationError { input: s.to_string(), reason };
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(err("no number"));
        }
        let mult = match unit.trim() {
            "ns" => 1,
            "us" | "µs" => NS_PER_US,
            "ms" => NS_PER_MS,
            "s" => NS_PER_S,
            "min" => 60 * NS_PER_S,
            "h" => 3_600 * NS_PER_S,
            "d" => 86_400 * NS_PER_S,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if num.contains('.') && (frac.is_empty() || frac.contains('.')) || frac.len() > 18 {
            return Err(err("bad fraction"));
        }
        let int: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| err("bad number"))? };
        let whole = int.checked_mul(mult).ok_or_else(|| err("too large"))?;
        let part = if frac.is_empty() {
            0
        } else {
            let frac_val: u128 = frac.parse().map_err(|_| err("bad number"))?;
            (frac_val * u128::from(mult) / 10u128.pow(frac.len() as u32)) as u64
        };
        whole.checked_add(part).map(SimDuration).ok_or_else(|| err("too large"))
    }
}

impl FromStr for SimTime {
    type Err = SimDurationError;
    /// A time since the start of the simulation, written as a duration (`5s`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<SimDuration>().map(|d| SimTime(d.0))
    }
}

/// Integer nanoseconds or a string with a unit.
fn deserialize_nanos<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Nanos;
    impl serde::de::Visitor<'_> for Nanos {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("integer nanoseconds or a duration string such as \"550us\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("negative duration {v}")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse::<SimDuration>().map(|d| d.0).map_err(E::custom)
        }
    }
    d.deserialize_any(Nanos)
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_nanos(d).map(SimDuration)
    }
}
impl<'de> Deserialize<'de> for SimTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_nanos(d).map(SimTime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_exactly() {
        let p = |s: &str| s.parse::<SimDuration>().unwrap();
        assert_eq!(p("250ns"), SimDuration::from_nanos(250));
        assert_eq!(p("550us"), SimDuration::from_micros(550));
        assert_eq!(p("550µs"), SimDuration::from_micros(550));
        assert_eq!(p("3.7ms"), SimDuration::from_nanos(3_700_000));
        assert_eq!(p("1s"), SimDuration::from_secs(1));
        assert_eq!(p("0.5s"), SimDuration::from_millis(500));
        assert_eq!(p(".25ms"), SimDuration::from_micros(250));
        assert_eq!(p(" 36 ms "), SimDuration::from_millis(36));
        assert_eq!(p("1.0000000001s"), SimDuration::from_nanos(1_000_000_000));
        assert_eq!(p("10min"), SimDuration::from_secs(600));
        assert_eq!(p("1.5h"), SimDuration::from_secs(5_400));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "ms", "550", "12mins", "2hours", "1..5ms", "1.ms", "-3ms", "99999999999s", "1e3us"] {
            assert!(s.parse::<SimDuration>().is_err(), "{s} should not parse");
        }
        let e = "550".parse::<SimDuration>().unwrap_err().to_string();
        assert!(e.contains("missing unit") && e.contains("\"550\""), "{e}");
    }

    #[test]
    fn displays_in_human_units() {
        let cases = [
            (SimDuration::from_nanos(250), "250ns"),
            (SimDuration::from_micros(550), "550us"),
            (SimDuration::from_nanos(20_500), "20.5us"),
            (SimDuration::from_micros(3_700), "3.70ms"),
            (SimDuration::from_millis(36), "36.0ms"),
            (SimDuration::from_millis(175), "175.0ms"),
            (SimDuration::from_millis(1_500), "1.500s"),
        ];
        for (d, s) in cases {
            assert_eq!(d.to_string(), s);
        }
        assert_eq!(SimTime::from_nanos(36_000_000).to_string(), "36.0ms");
    }

    #[test]
    fn arithmetic_saturates() {
        let t = SimTime::ZERO + SimDuration::from_millis(5);
        assert_eq!(t - SimTime::ZERO, SimDuration::from_millis(5));
        assert_eq!(SimTime::ZERO - t, SimDuration::ZERO);
        assert_eq!(SimTime::MAX + SimDuration::from_secs(1), SimTime::MAX);
        assert_eq!(SimDuration::from_micros(1) - SimDuration::from_micros(2), SimDuration::ZERO);
        assert_eq!(SimDuration::MAX + SimDuration::from_nanos(1), SimDuration::MAX);
        assert_eq!(SimDuration::from_micros(3) * 4 / 2, SimDuration::from_micros(6));
        let total: SimDuration = [1, 2, 3].into_iter().map(SimDuration::from_millis).sum();
        assert_eq!(total, SimDuration::from_millis(6));
        assert_eq!(SimDuration::MAX.checked_add(SimDuration::from_nanos(1)), None);
    }

    #[test]
    fn float_conversions_round_and_clamp() {
        assert_eq!(SimDuration::from_secs_f64(0.036), SimDuration::from_millis(36));
        assert_eq!(SimDuration::from_secs_f64(-1.0), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_f64(f64::NAN), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_f64(1e30), SimDuration::MAX);
        assert_eq!(SimDuration::from_micros(550).as_micros_f64(), 550.0);
        assert_eq!(SimDuration::from_micros(3_700).as_millis_f64(), 3.7);
    }

    mod rounding {
        use proptest::prelude::*;

        use super::SimDuration;

        proptest! {
            /// The library-call-free rounding is `f64::round` then `as`, value for value.
            #[test]
            fn nanos_round_as_f64_round_does(
                x in prop_oneof![
                    proptest::num::f64::ANY,
                    0.0..1e7f64,
                    (0u64..1 << 40).prop_map(|n| n as f64 + 0.5),
                    (0u64..1 << 40).prop_map(|n| n as f64 - 0.5),
                ]
            ) {
                prop_assert_eq!(SimDuration::from_nanos_f64(x).as_nanos(), x.round() as u64, "{}", x);
            }
        }
    }

    #[test]
    fn nanos_round_half_away_at_the_edges() {
        let edges = [
            0.5,
            1.5,
            2.5,
            0.49999999999999994,
            -0.5,
            -0.4,
            4.5e15 + 0.5,
            9.007199254740993e15,
            1.8446744073709552e19,
            3e19,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            -0.0,
        ];
        for x in edges {
            assert_eq!(SimDuration::from_nanos_f64(x).as_nanos(), x.round() as u64, "{x}");
        }
    }

    #[test]
    fn serde_is_integer_nanos_and_accepts_unit_strings() {
        let d = SimDuration::from_micros(550);
        assert_eq!(serde_json::to_string(&d).unwrap(), "550000");
        assert_eq!(serde_json::from_str::<SimDuration>("550000").unwrap(), d);
        assert_eq!(serde_json::from_str::<SimDuration>("\"550us\"").unwrap(), d);
        assert_eq!(serde_json::from_str::<SimTime>("\"1s\"").unwrap(), SimTime::from_nanos(NS_PER_S));
        assert!(serde_json::from_str::<SimDuration>("-5").is_err());
        let e = serde_json::from_str::<SimDuration>("\"5 parsecs\"").unwrap_err().to_string();
        assert!(e.contains("unknown unit"), "{e}");
    }
}
