//! `--shard i/n`: one slice of a grid, so a large sweep spreads over machines through any batch
//! scheduler (a shell loop, a SLURM array, a CI matrix). `i` is 1-based (`1/3`, `2/3`, `3/3`),
//! as array task ids usually are. Shard `i` holds the points whose index `p` has
//! `p % n == i - 1` (round robin): neighbouring points often cost alike (the last axis varies
//! fastest), so dealing them out balances the shards better than contiguous slices.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::SweepError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, SweepError> {
        let err = |reason: String| SweepError::Shard { spec: format!("{index}/{count}"), reason };
        if count == 0 {
            return Err(err("the shard count must be at least 1".into()));
        }
        if index == 0 || index > count {
            return Err(err(format!("the shard index is 1-based: 1 to {count}")));
        }
        Ok(Shard { index, count })
    }

    /// Whether point `p` (0-based grid index) belongs to this shard.
    pub fn contains(&self, p: usize) -> bool {
        p % self.count == self.index - 1
    }

    /// This shard's point indices of a `total`-point grid, ascending.
    pub fn points(&self, total: usize) -> impl Iterator<Item = usize> {
        (self.index - 1..total).step_by(self.count)
    }
}

impl FromStr for Shard {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| SweepError::Shard { spec: s.to_string(), reason: reason.to_string() };
        let (i, n) = s.split_once('/').ok_or_else(|| err("expected i/n, e.g. 2/8"))?;
        let i: usize = i.trim().parse().map_err(|_| err("the shard index is not a number"))?;
        let n: usize = n.trim().parse().map_err(|_| err("the shard count is not a number"))?;
        Shard::new(i, n).map_err(|e| match e {
            SweepError::Shard { reason, .. } => SweepError::Shard { spec: s.to_string(), reason },
            other => other,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for (bad, why) in [
            ("0/3", "1-based"),
            ("4/3", "1-based"),
            ("1/0", "at least 1"),
            ("x/3", "not a number"),
            ("1/", "not a number"),
            ("3", "expected i/n"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn shards_are_disjoint_and_cover_every_point(total in 0usize..200, count in 1usize..20) {
            let mut seen = vec![0u32; total];
            for i in 1..=count {
                let s = Shard::new(i, count).unwrap();
                for p in s.points(total) {
                    prop_assert!(s.contains(p));
                    seen[p] += 1;
                }
                // `points` and `contains` agree.
                prop_assert_eq!(s.points(total).count(), (0..total).filter(|p| s.contains(*p)).count());
            }
            prop_assert!(seen.iter().all(|&n| n == 1));
        }
    }
}
