//! What a mapped file range costs. strace sees `mmap` calls but not the page faults that follow, so a
//! trace keeps mappings as `mmap` records and the replay decides, by one documented rule, which bytes
//! of a mapping count as read. The rule lives here so the importer, stats and replay agree on it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::format::{Access, Record};

/// Page granularity of the fraction rule: faults bring in whole pages.
const PAGE: u64 = 4096;

/// Which bytes of an `mmap` record count as read, at the time of the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MmapRule {
    /// The whole mapping is read (an upper bound: the loader also maps segments it never touches).
    /// The default: it errs towards loading too much, like a cold start that faults everything in.
    #[default]
    Whole,
    /// The first `f` (0 < f <= 1) of the mapping, rounded up to whole pages.
    Fraction(f64),
    /// Mappings read nothing (a lower bound: only explicit reads count).
    Ignore,
}

impl MmapRule {
    /// The read that stands for a mapping of `len` bytes at `offset`, if any.
    pub fn read_for(self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let n = match self {
            MmapRule::Whole => len,
            MmapRule::Ignore => 0,
            MmapRule::Fraction(f) => {
                let pages = len.div_ceil(PAGE);
                let want = (pages as f64 * f).ceil() as u64;
                (want * PAGE).min(len)
            }
        };
        (n > 0).then_some((offset, n))
    }
}

impl fmt::Display for MmapRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmapRule::Whole => f.write_str("whole"),
            MmapRule::Ignore => f.write_str("ignore"),
            MmapRule::Fraction(x) => write!(f, "fraction:{x}"),
        }
    }
}

impl FromStr for MmapRule {
    type Err = String;

    /// `whole`, `ignore` or `fraction:F` with 0 < F <= 1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "whole" => Ok(MmapRule::Whole),
            "ignore" => Ok(MmapRule::Ignore),
            _ => {
                let f: f64 = s.strip_prefix("fraction:").and_then(|x| x.parse().ok()).ok_or_else(|| {
                    format!("invalid mmap rule {s:?}: expected whole, ignore or fraction:F")
                })?;
                if f > 0.0 && f <= 1.0 {
                    Ok(MmapRule::Fraction(f))
                } else {
                    Err(format!("invalid mmap rule {s:?}: the fraction must be in (0, 1]"))
                }
            }
        }
    }
}

/// Replaces every `mmap` record by the read `rule` gives it (or drops it); other records pass through.
pub fn mmaps_to_reads<I: IntoIterator<Item = Record>>(
    records: I,
    rule: MmapRule,
) -> impl Iterator<Item = Record> {
    records.into_iter().filter_map(move |r| match r.access {
        Access::Mmap { offset, len } => rule
            .read_for(offset, len)
            .map(|(offset, len)| Record { access: Access::Read { offset, len }, ..r }),
        _ => Some(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TracePath;

    #[test]
    fn rules_give_the_documented_ranges() {
        assert_eq!(MmapRule::Whole.read_for(8192, 10_000), Some((8192, 10_000)));
        assert_eq!(MmapRule::Ignore.read_for(0, 10_000), None);
        // 10 000 bytes = 3 pages; a quarter is 0.75 page -> 1 page.
        assert_eq!(MmapRule::Fraction(0.25).read_for(0, 10_000), Some((0, 4096)));
        // Half of 3 pages is 1.5 -> 2 pages.
        assert_eq!(MmapRule::Fraction(0.5).read_for(0, 10_000), Some((0, 8192)));
        // Never beyond the mapping.
        assert_eq!(MmapRule::Fraction(1.0).read_for(0, 10_000), Some((0, 10_000)));
    }

    #[test]
    fn rules_parse_and_print() {
        for s in ["whole", "ignore", "fraction:0.25"] {
            assert_eq!(s.parse::<MmapRule>().unwrap().to_string(), s);
        }
        assert!("fraction:0".parse::<MmapRule>().is_err());
        assert!("fraction:1.5".parse::<MmapRule>().is_err());
        assert!("half".parse::<MmapRule>().is_err());
        assert_eq!(MmapRule::default(), MmapRule::Whole);
    }

    #[test]
    fn conversion_replaces_mmaps_only() {
        let path = TracePath::new(b"/lib/x.so".to_vec()).unwrap();
        let rec = |access| Record { t_us: 1, done_us: None, thread: 0, path: path.clone(), access };
        let input = vec![
            rec(Access::Open),
            rec(Access::Mmap { offset: 4096, len: 100 }),
            rec(Access::Read { offset: 0, len: 5 }),
        ];
        let out: Vec<Access> = mmaps_to_reads(input.clone(), MmapRule::Whole).map(|r| r.access).collect();
        assert_eq!(
            out,
            [Access::Open, Access::Read { offset: 4096, len: 100 }, Access::Read { offset: 0, len: 5 }]
        );
        let out: Vec<Access> = mmaps_to_reads(input, MmapRule::Ignore).map(|r| r.access).collect();
        assert_eq!(out, [Access::Open, Access::Read { offset: 0, len: 5 }]);
    }
}
