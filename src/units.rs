//! Quantities that are easy to confuse as bare integers: byte sizes. Simulated time is in `sim::time`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The block size of the block image: file extents start on these boundaries (the allocator in
/// `flatten`, the layout in `layout`), and it is the guest's page size in a replay. Here, below
/// every stage that counts blocks, so none of them imports another for it.
pub const BLOCK_SIZE: u64 = 4096;

/// A size in bytes. Parses and prints with binary suffixes (`512KiB`, `10GiB`); plain numbers are bytes.
///
/// ```
/// use chunkload::units::ByteSize;
/// let s: ByteSize = "1.5GiB".parse().unwrap();
/// assert_eq!(s.bytes(), 3 << 29);
/// assert_eq!(ByteSize::kib(512).to_string(), "512KiB");
/// assert!("12XB".parse::<ByteSize>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

/// Reads a plain number of bytes or a string with a unit (`"4GiB"`), as scenario files write them.
impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(ByteSize(b)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl ByteSize {
    pub const KIB: u64 = 1 << 10;
    pub const MIB: u64 = 1 << 20;
    pub const GIB: u64 = 1 << 30;
    pub const TIB: u64 = 1 << 40;

    pub const fn bytes(self) -> u64 {
        self.0
    }
    pub const fn kib(n: u64) -> Self {
        ByteSize(n * Self::KIB)
    }
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * Self::MIB)
    }
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * Self::GIB)
    }
}

/// Why a byte size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid byte size {input:?}: {reason} (examples: 4096, 512KiB, 1.5GiB, 10GB)")]
pub struct ByteSizeError {
    input: String,
    reason: &'static str,
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ByteSizeError { input: s.to_string(), reason };
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(err("no number"));
        }
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => Self::KIB,
            "m" | "mib" => Self::MIB,
            "g" | "gib" => Self::GIB,
            "t" | "tib" => Self::TIB,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(err("unknown unit")),
        };
        if let Some((int, frac)) = num.split_once('.') {
            let int: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| err("bad number"))? };
            if frac.is_empty() || frac.len() > 9 || frac.contains('.') {
                return Err(err("bad fraction"));
            }
            let frac_val: u64 = frac.parse().map_err(|_| err("bad number"))?;
            let scale = 10u64.pow(frac.len() as u32);
            let whole = int.checked_mul(mult).ok_or_else(|| err("too large"))?;
            let part = (u128::from(frac_val) * u128::from(mult) / u128::from(scale)) as u64;
            whole.checked_add(part).map(ByteSize).ok_or_else(|| err("too large"))
        } else {
            let n: u64 = num.parse().map_err(|_| err("bad number"))?;
            n.checked_mul(mult).map(ByteSize).ok_or_else(|| err("too large"))
        }
    }
}

impl fmt::Display for ByteSize {
    /// Exact when the size is a whole number of a binary unit (`512KiB`), else rounded to 2 places.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        const UNITS: [(u64, &str); 4] =
            [(ByteSize::TIB, "TiB"), (ByteSize::GIB, "GiB"), (ByteSize::MIB, "MiB"), (ByteSize::KIB, "KiB")];
        for (size, name) in UNITS {
            if b >= size {
                return if b.is_multiple_of(size) {
                    write!(f, "{}{name}", b / size)
                } else {
                    write!(f, "{:.2}{name}", b as f64 / size as f64)
                };
            }
        }
        write!(f, "{b}B")
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteSize({self})")
    }
}

/// `n` and the noun in the right number: `plural(1, "file", "files")` is `1 file`.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!("4096".parse::<ByteSize>().unwrap(), ByteSize(4096));
        assert_eq!("512KiB".parse::<ByteSize>().unwrap(), ByteSize::kib(512));
        assert_eq!("1.5GiB".parse::<ByteSize>().unwrap(), ByteSize(3 * ByteSize::GIB / 2));
        assert_eq!("10GB".parse::<ByteSize>().unwrap(), ByteSize(10_000_000_000));
        assert_eq!(" 4 k ".parse::<ByteSize>().unwrap(), ByteSize(4096));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "KiB", "12XB", "1..5M", "99999999999999999999", "18446744073709551615GiB"] {
            assert!(s.parse::<ByteSize>().is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1u32, "file", "files"), "1 file");
        assert_eq!(plural(0u32, "file", "files"), "0 files");
        assert_eq!(plural(2u64, "is", "are"), "2 are");
    }

    #[test]
    fn displays_round_trip_for_whole_units() {
        for s in ["512KiB", "1MiB", "10GiB", "100B"] {
            assert_eq!(s.parse::<ByteSize>().unwrap().to_string(), s);
        }
    }
}
