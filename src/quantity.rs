//! Validated quantities: one type per kind of knob, each knowing its unit and its bounds, so a
//! value is checked where it is parsed, the same way for a command-line flag, a scenario file,
//! `simulate --set` and `sweep --grid` (all of which go through serde or `FromStr`).
//!
//! | type | unit | bounds |
//! |---|---|---|
//! | [`ChunkSize`] | bytes | a power of two, 4KiB ..= 16MiB |
//! | [`Capacity`] | bytes | 0 ..= 1PiB |
//! | [`Bandwidth`] | bytes per second | 1KB/s ..= 1TiB/s |
//! | [`Fraction`] | share | 0 ..= 1 |
//! | [`Scale`] | multiplier | 0 ..= 1000 |
//! | [`Rate`] | events per hour | 0 ..= 1e9 |
//! | [`Count<MIN, MAX>`] | count | MIN ..= MAX |
//! | [`Seed`] | seed | any 64-bit number; read as decimal or 0x-hex, printed in decimal |
//!
//! An error names the value, the bound and the unit (`chunk size 1B is below the minimum 4KiB`);
//! the caller (a scenario file's parser, `overrides`) adds the key. Types whose existing fields
//! are plain numbers can validate through [`de`]'s `deserialize_with` adapters, which keep the
//! field's type.
//!
//! [`memory`] refuses a what-if up front when its estimated memory exceeds the machine's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::ByteSize;

/// Why a quantity was refused: the quantity, the value as written and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value} {reason}")]
pub struct QuantityError {
    pub what: &'static str,
    pub value: String,
    pub reason: String,
}

fn refuse(what: &'static str, value: impl fmt::Display, reason: impl Into<String>) -> QuantityError {
    QuantityError { what, value: value.to_string(), reason: reason.into() }
}

/// Reads a number of bytes from serde: an integer or a string with a unit (`"4GiB"`).
fn bytes_from<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
    ByteSize::deserialize(d)
}

/// Writes `b` as a string with the largest unit (binary or decimal) that is exact, so the
/// dump reads back to the same number: `"512KiB"`, `"125MB"`, `"4099B"`.
pub fn exact_bytes(b: u64) -> String {
    if b == 0 {
        return "0B".into();
    }
    const UNITS: [(u64, &str); 8] = [
        (ByteSize::TIB, "TiB"),
        (1_000_000_000_000, "TB"),
        (ByteSize::GIB, "GiB"),
        (1_000_000_000, "GB"),
        (ByteSize::MIB, "MiB"),
        (1_000_000, "MB"),
        (ByteSize::KIB, "KiB"),
        (1_000, "KB"),
    ];
    for (size, name) in UNITS {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{name}", b / size);
        }
    }
    format!("{b}B")
}

// ---------------------------------------------------------------------------------------------
// Chunk size

/// A chunk size: a power of two from 4 KiB to 16 MiB (whole blocks, and few enough chunks that
/// indices fit the manifest's u32). The same bound everywhere: `convert`, `explain`, `trace map`,
/// scenario files and `--set`.
///
/// ```
/// use chunkload::quantity::ChunkSize;
/// assert_eq!("512KiB".parse::<ChunkSize>().unwrap(), ChunkSize::DEFAULT);
/// assert!("100KiB".parse::<ChunkSize>().is_err(), "not a power of two");
/// let e = "1".parse::<ChunkSize>().unwrap_err().to_string();
/// assert!(e.contains("1B") && e.contains("4KiB"), "{e}");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "ByteSize", into = "ByteSize")]
pub struct ChunkSize(u32);

impl ChunkSize {
    pub const MIN: u64 = 4 << 10;
    pub const MAX: u64 = 16 << 20;
    /// Lambda's chunk size.
    pub const DEFAULT: ChunkSize = ChunkSize(512 << 10);

    pub fn new(bytes: u64) -> Result<Self, ChunkSizeError> {
        if !bytes.is_power_of_two() || !(Self::MIN..=Self::MAX).contains(&bytes) {
            return Err(ChunkSizeError(ByteSize(bytes)));
        }
        Ok(ChunkSize(bytes as u32))
    }

    pub fn bytes(self) -> u64 {
        u64::from(self.0)
    }
}

impl Default for ChunkSize {
    fn default() -> Self {
        ChunkSize::DEFAULT
    }
}

/// A chunk size out of bounds: names the value, the bounds and the unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunk size {0}: must be a power of two from 4KiB to 16MiB")]
pub struct ChunkSizeError(ByteSize);

impl TryFrom<ByteSize> for ChunkSize {
    type Error = ChunkSizeError;
    fn try_from(b: ByteSize) -> Result<Self, Self::Error> {
        ChunkSize::new(b.bytes())
    }
}

impl From<ChunkSize> for ByteSize {
    fn from(c: ChunkSize) -> Self {
        ByteSize(c.bytes())
    }
}

impl FromStr for ChunkSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b: ByteSize = s.parse().map_err(|e: crate::units::ByteSizeError| e.to_string())?;
        ChunkSize::new(b.bytes()).map_err(|e| e.to_string())
    }
}

impl fmt::Display for ChunkSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ByteSize(self.bytes()).fmt(f)
    }
}

impl fmt::Debug for ChunkSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkSize({self})")
    }
}

// ---------------------------------------------------------------------------------------------
// Byte quantities with bounds

macro_rules! byte_quantity {
    ($(#[$doc:meta])* $name:ident, $what:literal, $suffix:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(ByteSize);

        impl $name {
            /// The smallest and largest values accepted, in bytes.
            pub const MIN: u64 = $min;
            pub const MAX: u64 = $max;

            pub fn new(b: ByteSize) -> Result<Self, QuantityError> {
                let shown = format!("{}{}", exact_bytes(b.bytes()), $suffix);
                if b.bytes() < Self::MIN {
                    return Err(refuse($what, shown, format!(
                        "is below the minimum {}{}", exact_bytes(Self::MIN), $suffix)));
                }
                if b.bytes() > Self::MAX {
                    return Err(refuse($what, shown, format!(
                        "is above the maximum {}{}", exact_bytes(Self::MAX), $suffix)));
                }
                Ok($name(b))
            }
            pub fn bytes(self) -> u64 {
                self.0.bytes()
            }
            pub fn size(self) -> ByteSize {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = QuantityError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                let t = t.strip_suffix($suffix).filter(|_| !$suffix.is_empty()).unwrap_or(t);
                let b: ByteSize = t.parse().map_err(|e: crate::units::ByteSizeError| {
                    refuse($what, format!("{s:?}"), format!("is not a size: {e}"))
                })?;
                Self::new(b)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", exact_bytes(self.bytes()), $suffix)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        /// Serialises as the exact string with its unit (`"64GiB"`), which reads back the same.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        /// Reads an integer (bytes) or a string with a unit; refuses values out of bounds.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Bytes(u64),
                    Text(String),
                }
                match Raw::deserialize(d)? {
                    Raw::Bytes(b) => Self::new(ByteSize(b)),
                    Raw::Text(s) => s.parse(),
                }
                .map_err(serde::de::Error::custom)
            }
        }
    };
}

byte_quantity!(
    /// A cache capacity in bytes (a worker's memory or disk tier, an AZ cache node): 0 (the tier is
    /// off) to 1 PiB.
    Capacity,
    "capacity",
    "",
    0,
    1 << 50
);

byte_quantity!(
    /// A bandwidth in bytes per second: 1 KB/s to 1 TiB/s. Reads `125MB`, `125MB/s` or `125000000`.
    Bandwidth,
    "bandwidth",
    "/s",
    1_000,
    1 << 40
);

// ---------------------------------------------------------------------------------------------
// Real-valued quantities

macro_rules! real_quantity {
    ($(#[$doc:meta])* $name:ident, $what:literal, $unit:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, PartialOrd, Default, Serialize)]
        #[serde(transparent)]
        pub struct $name(f64);

        impl $name {
            pub const MIN: f64 = $min;
            pub const MAX: f64 = $max;

            pub fn new(v: f64) -> Result<Self, QuantityError> {
                if !v.is_finite() {
                    return Err(refuse($what, v, format!("is not a finite number ({})", $unit)));
                }
                if !(Self::MIN..=Self::MAX).contains(&v) {
                    return Err(refuse(
                        $what,
                        v,
                        format!("is outside {} ..= {} ({})", Self::MIN, Self::MAX, $unit),
                    ));
                }
                Ok($name(v))
            }
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = QuantityError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let v: f64 = s.trim().parse().map_err(|_| {
                    refuse($what, format!("{s:?}"), format!("is not a number ({})", $unit))
                })?;
                Self::new(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

real_quantity!(
    /// A share of a whole, 0 to 1.
    Fraction,
    "fraction",
    "a share of 1",
    0.0,
    1.0
);

real_quantity!(
    /// A multiplier such as `cpu_scale`: 0 to 1000.
    Scale,
    "scale",
    "a multiplier",
    0.0,
    1000.0
);

real_quantity!(
    /// A rate of events per hour: 0 to a billion.
    Rate,
    "rate",
    "per hour",
    0.0,
    1e9
);

// ---------------------------------------------------------------------------------------------
// Counts

/// A whole count within `MIN..=MAX`; the aliases below name the knobs' counts.
///
/// ```
/// use chunkload::quantity::Concurrency;
/// assert_eq!("16".parse::<Concurrency>().unwrap().get(), 16);
/// let e = "0".parse::<Concurrency>().unwrap_err().to_string();
/// assert!(e.contains("below the minimum 1"), "{e}");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Count<const MIN: u64, const MAX: u64>(u64);

/// Fetches an agent keeps in flight.
pub type Concurrency = Count<1, 4096>;
/// AZ cache nodes.
pub type Nodes = Count<1, 4096>;
/// Pages of guest read-ahead after a miss (up to 256 MiB of 4 KiB pages).
pub type ReadAheadPages = Count<0, 65_536>;
/// Chunks fetched ahead after a miss.
pub type ReadAheadChunks = Count<0, 4096>;

impl<const MIN: u64, const MAX: u64> Count<MIN, MAX> {
    pub fn new(n: u64) -> Result<Self, QuantityError> {
        if n < MIN {
            return Err(refuse("count", n, format!("is below the minimum {MIN}")));
        }
        if n > MAX {
            return Err(refuse("count", n, format!("is above the maximum {MAX}")));
        }
        Ok(Count(n))
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<const MIN: u64, const MAX: u64> FromStr for Count<MIN, MAX> {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: u64 =
            s.trim().parse().map_err(|_| refuse("count", format!("{s:?}"), "is not a whole number"))?;
        Self::new(n)
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Display for Count<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Debug for Count<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Count({})", self.0)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A negative number is out of bounds, not a type error.
        let n = i128::from(i64::deserialize(d)?);
        if n < 0 {
            return Err(serde::de::Error::custom(refuse("count", n, format!("is below the minimum {MIN}"))));
        }
        Self::new(n as u64).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Seed

/// A seed: read as decimal or `0x`-hex, printed in decimal everywhere (reports, scenario dumps,
/// JSON), so one run's seed has one spelling.
///
/// ```
/// use chunkload::quantity::Seed;
/// assert_eq!("0xc0ffee".parse::<Seed>().unwrap(), Seed(12648430));
/// assert_eq!(Seed(12648430).to_string(), "12648430");
/// assert!("coffee".parse::<Seed>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seed(pub u64);

impl FromStr for Seed {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse(),
        };
        r.map(Seed).map_err(|_| refuse("seed", format!("{s:?}"), "is not a decimal or 0x-hex 64-bit number"))
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({})", self.0)
    }
}

impl From<Seed> for u64 {
    fn from(s: Seed) -> u64 {
        s.0
    }
}

// ---------------------------------------------------------------------------------------------
// serde adapters for fields that keep their plain types

/// `deserialize_with` adapters: validate a field through its quantity type while the field keeps
/// its plain type (`usize`, `u32`, `f64`, `ByteSize`), for structs shared with code that reads
/// them as numbers.
pub mod de {
    use super::*;

    /// A [`Capacity`] into a `ByteSize` field.
    pub fn capacity<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        Capacity::deserialize(d).map(Capacity::size)
    }

    /// A [`Bandwidth`] into a `ByteSize` (bytes per second) field.
    pub fn bandwidth<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        Bandwidth::deserialize(d).map(Bandwidth::size)
    }

    /// A [`Bandwidth`] into a `u64` (bytes per second) field.
    pub fn bandwidth_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Bandwidth::deserialize(d).map(Bandwidth::bytes)
    }

    /// A [`Scale`] into an `f64` field.
    pub fn scale<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Scale::deserialize(d).map(Scale::get)
    }

    /// A [`Fraction`] into an `f64` field.
    pub fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Fraction::deserialize(d).map(Fraction::get)
    }

    /// A [`Count`] into a `usize` field.
    pub fn count_usize<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
        d: D,
    ) -> Result<usize, D::Error> {
        Count::<MIN, MAX>::deserialize(d).map(|c| c.get() as usize)
    }

    /// A [`Count`] into a `u32` field.
    pub fn count_u32<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
        d: D,
    ) -> Result<u32, D::Error> {
        const { assert!(MAX <= u32::MAX as u64) };
        Count::<MIN, MAX>::deserialize(d).map(|c| c.get() as u32)
    }

    /// A [`Count`] into a `u64` field.
    pub fn count_u64<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
        d: D,
    ) -> Result<u64, D::Error> {
        Count::<MIN, MAX>::deserialize(d).map(Count::get)
    }

    /// Reads any byte size (for a field whose bounds are checked elsewhere).
    pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        bytes_from(d)
    }

    /// A chunk size ([`ChunkSize`]'s bounds) into a plain byte size field.
    pub fn chunk_size<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        let size = ChunkSize::deserialize(d)?;
        Ok(ByteSize(size.bytes()))
    }
}

// ---------------------------------------------------------------------------------------------
// Units in dumps

/// Writes `ns` nanoseconds with the largest unit that is exact (`"20us"`, `"36ms"`, `"10min"`), as
/// `SimDuration` reads it back.
pub fn exact_nanos(ns: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "min"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    for (size, name) in UNITS {
        if ns >= size && ns.is_multiple_of(size) {
            return format!("{}{name}", ns / size);
        }
    }
    format!("{ns}ns")
}

/// Which leaf keys of a scenario dump carry which unit (matched by the key's own name, at any
/// depth). A scenario type's readers must accept the unit strings for these keys (`ByteSize`,
/// the quantities here and `SimDuration` do).
#[derive(Debug, Clone, Copy)]
pub struct DumpUnits<'a> {
    /// Integers in bytes, written as `"64GiB"`.
    pub bytes: &'a [&'a str],
    /// Integers in bytes per second, written as `"125MB/s"`.
    pub per_second: &'a [&'a str],
    /// Integers in nanoseconds, written as `"36ms"`.
    pub nanos: &'a [&'a str],
}

impl DumpUnits<'_> {
    /// Rewrites the integer values of `toml_text` (as `toml::to_string` writes it: one `key =
    /// value` per line) whose keys are named in `self` as exact strings with units, so a dump
    /// shows `36ms` and `64GiB` rather than `36000000` and `68719476736`, keeps its order, and
    /// still reads back to the same scenario.
    pub fn apply(&self, toml_text: &str) -> String {
        let mut out = String::with_capacity(toml_text.len() + 256);
        for line in toml_text.lines() {
            out.push_str(&self.line(line).unwrap_or_else(|| line.to_string()));
            out.push('\n');
        }
        out
    }

    fn line(&self, line: &str) -> Option<String> {
        let (key, value) = line.split_once(" = ")?;
        let n: u64 = value.trim().parse().ok()?;
        let k = key.trim();
        let shown = if self.bytes.contains(&k) {
            exact_bytes(n)
        } else if self.per_second.contains(&k) {
            format!("{}/s", exact_bytes(n))
        } else if self.nanos.contains(&k) {
            exact_nanos(n)
        } else {
            return None;
        };
        Some(format!("{key} = \"{shown}\""))
    }
}

// ---------------------------------------------------------------------------------------------
// Memory budget

/// Refusing a run up front when its estimated memory exceeds what the machine has.
pub mod memory {
    use super::*;

    /// Memory the kernel says is available now (`MemAvailable` of /proc/meminfo), if it says.
    pub fn available() -> Option<ByteSize> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        parse_meminfo(&text)
    }

    fn parse_meminfo(text: &str) -> Option<ByteSize> {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(ByteSize(kib.saturating_mul(1024)))
    }

    /// Why a run was refused: what it is, its estimate and what the machine has.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error(
        "{what} would need about {estimate} of memory ({detail}), more than the {available} this \
         machine has available; refusing before starting"
    )]
    pub struct TooBig {
        pub what: String,
        pub estimate: ByteSize,
        pub detail: String,
        pub available: ByteSize,
    }

    /// Refuses `estimate` when it exceeds `available` (when that is known).
    pub fn check(
        what: &str,
        estimate: ByteSize,
        detail: &str,
        available: Option<ByteSize>,
    ) -> Result<(), TooBig> {
        match available {
            Some(avail) if estimate > avail => {
                Err(TooBig { what: what.to_string(), estimate, detail: detail.to_string(), available: avail })
            }
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn meminfo_and_refusal() {
            let text = "MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable:   2048 kB\n";
            assert_eq!(parse_meminfo(text), Some(ByteSize::mib(2)));
            assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
            assert!(check("x", ByteSize::mib(1), "", Some(ByteSize::mib(2))).is_ok());
            assert!(check("x", ByteSize::mib(3), "", None).is_ok());
            let e = check("a sweep point", ByteSize::gib(23), "1 chunk per byte", Some(ByteSize::gib(8)))
                .unwrap_err()
                .to_string();
            assert!(e.contains("23GiB") && e.contains("8GiB") && e.contains("a sweep point"), "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_bounded_everywhere() {
        assert_eq!("4KiB".parse::<ChunkSize>().unwrap().bytes(), 4096);
        assert_eq!("16MiB".parse::<ChunkSize>().unwrap().bytes(), 16 << 20);
        for bad in ["1", "512", "300KiB", "2KiB", "32MiB", "zero"] {
            assert!(bad.parse::<ChunkSize>().is_err(), "{bad}");
        }
        let e = toml::from_str::<toml::Table>("c = 1")
            .unwrap()
            .get("c")
            .cloned()
            .unwrap()
            .try_into::<ChunkSize>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("1B") && e.contains("4KiB to 16MiB"), "{e}");
    }

    #[test]
    fn byte_quantities_name_value_bound_and_unit() {
        assert_eq!("64GiB".parse::<Capacity>().unwrap().bytes(), 64 << 30);
        let e = "2PiB".parse::<Capacity>().unwrap_err().to_string();
        assert!(e.contains("capacity") && e.contains("is not a size"), "{e}");
        let e = "2048TiB".parse::<Capacity>().unwrap_err().to_string();
        assert_eq!(e, "capacity 2048TiB is above the maximum 1024TiB");
        assert_eq!("125MB/s".parse::<Bandwidth>().unwrap().bytes(), 125_000_000);
        assert_eq!("125MB".parse::<Bandwidth>().unwrap().bytes(), 125_000_000);
        let e = "0".parse::<Bandwidth>().unwrap_err().to_string();
        assert_eq!(e, "bandwidth 0B/s is below the minimum 1KB/s");
        // Dumps are exact and read back.
        for b in [125_000_000u64, 3_125_000_000, 1 << 30, 4099, 1_000] {
            let bw = Bandwidth::new(ByteSize(b)).unwrap();
            assert_eq!(bw.to_string().parse::<Bandwidth>().unwrap(), bw);
            let json = serde_json::to_string(&bw).unwrap();
            assert_eq!(serde_json::from_str::<Bandwidth>(&json).unwrap(), bw);
        }
        assert_eq!(Bandwidth::new(ByteSize(125_000_000)).unwrap().to_string(), "125MB/s");
        assert_eq!(exact_bytes(1 << 30), "1GiB");
        assert_eq!(exact_bytes(4099), "4099B");
    }

    #[test]
    fn reals_and_counts_are_bounded() {
        assert_eq!("0.5".parse::<Fraction>().unwrap().get(), 0.5);
        for bad in ["1.5", "-0.1", "NaN", "inf", "half"] {
            assert!(bad.parse::<Fraction>().is_err(), "{bad}");
        }
        let e = serde_json::from_str::<Fraction>("2").unwrap_err().to_string();
        assert!(e.contains("fraction 2 is outside 0 ..= 1"), "{e}");
        assert!("-1".parse::<Scale>().is_err() && "0".parse::<Scale>().is_ok());
        assert!(serde_json::from_str::<Concurrency>("-3").unwrap_err().to_string().contains("minimum 1"));
        assert!(
            serde_json::from_str::<Concurrency>("5000").unwrap_err().to_string().contains("maximum 4096")
        );
        assert_eq!(serde_json::from_str::<ReadAheadPages>("0").unwrap().get(), 0);
        assert_eq!("0X10".parse::<Seed>().unwrap(), Seed(16));
    }
}
