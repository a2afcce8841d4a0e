//! The `--grid` spec: `key=v1,v2;key2=w1,w2`. Keys are dotted paths into a scenario
//! (`l1.memory_capacity`), values are what a scenario file would hold (`4GiB`, `lru-k`, `16`).
//!
//! Points are the cartesian product in odometer order: the first axis changes slowest and the
//! last fastest, like nested loops written in spec order. Point `i`'s values are the digits of
//! `i` in the mixed radix of the axes' lengths, so an index names the same point on every
//! machine and in every shard.

use std::fmt;

use super::SweepError;

/// One swept key and the values it takes, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// A parsed, validated grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    axes: Vec<Axis>,
    len: usize,
}

/// One point of the grid: its index and the `key = value` overrides, in axis order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub index: usize,
    pub overrides: Vec<(String, String)>,
}

impl Point {
    /// `key=value;key=value`: the point as a one-point grid spec, usable with `--grid`.
    pub fn label(&self) -> String {
        self.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
    }
}

fn grid_err(part: &str, reason: impl Into<String>) -> SweepError {
    SweepError::Grid { part: part.to_string(), reason: reason.into() }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('.').all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

impl Grid {
    /// Parses `key=v1,v2;key2=...`. Whitespace around keys and values is ignored; one trailing
    /// `;` is allowed. Rejected: an empty spec, a part without `=`, a malformed key, an empty value,
    /// a value listed twice for one key, a key given twice, and the reserved key `seed` (every
    /// point shares the sweep's seed; see [`super::run()`]).
    pub fn parse(spec: &str) -> Result<Grid, SweepError> {
        let trimmed = spec.trim();
        let body = trimmed.strip_suffix(';').unwrap_or(trimmed);
        if body.trim().is_empty() {
            return Err(grid_err(spec, "empty grid: expected key=v1,v2;key2=w1,w2"));
        }
        let mut axes: Vec<Axis> = Vec::new();
        for part in body.split(';') {
            let Some((key, values)) = part.split_once('=') else {
                return Err(grid_err(part, "expected key=v1,v2,... (no '=')"));
            };
            let key = key.trim();
            if !valid_key(key) {
                return Err(grid_err(
                    part,
                    format!(
                        "invalid key {key:?}: dotted path of letters, digits, '_' and '-' (e.g. l1.memory_capacity)"
                    ),
                ));
            }
            if key == "seed" {
                return Err(grid_err(
                    part,
                    "the seed is not a grid key: every point shares --seed so that points differ only in \
                     their knobs; run one sweep per seed to replicate",
                ));
            }
            if axes.iter().any(|a| a.key == key) {
                return Err(grid_err(part, format!("key {key} is given twice")));
            }
            let mut vals: Vec<String> = Vec::new();
            for v in values.split(',') {
                let v = v.trim();
                if v.is_empty() {
                    return Err(grid_err(part, format!("empty value for {key}")));
                }
                if vals.iter().any(|x| x == v) {
                    return Err(grid_err(part, format!("value {v} is listed twice for {key}")));
                }
                vals.push(v.to_string());
            }
            axes.push(Axis { key: key.to_string(), values: vals });
        }
        let len = axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
            .ok_or_else(|| grid_err(spec, "too many points"))?;
        Ok(Grid { axes, len })
    }

    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// Number of points (the product of the axes' lengths).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Point `index` (0-based, `index < len()`).
    pub fn point(&self, index: usize) -> Point {
        assert!(index < self.len, "point {index} of a {}-point grid", self.len);
        let mut rest = index;
        let mut overrides = vec![(String::new(), String::new()); self.axes.len()];
        for (slot, axis) in overrides.iter_mut().zip(&self.axes).rev() {
            let n = axis.values.len();
            *slot = (axis.key.clone(), axis.values[rest % n].clone());
            rest /= n;
        }
        Point { index, overrides }
    }

    /// Every point, in index order.
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        (0..self.len).map(|i| self.point(i))
    }
}

/// The canonical spec (whitespace removed): what results files record and merge compares.
impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            self.axes.iter().map(|a| format!("{}={}", a.key, a.values.join(","))).collect();
        f.write_str(&parts.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_is_in_odometer_order_with_stable_indices() {
        let g = Grid::parse(" l1.memory_capacity = 1GiB, 4GiB ; l2.policy=lru,lru-k,s3-fifo;").unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(g.to_string(), "l1.memory_capacity=1GiB,4GiB;l2.policy=lru,lru-k,s3-fifo");
        let labels: Vec<String> = g.points().map(|p| p.label()).collect();
        assert_eq!(
            labels,
            [
                "l1.memory_capacity=1GiB;l2.policy=lru",
                "l1.memory_capacity=1GiB;l2.policy=lru-k",
                "l1.memory_capacity=1GiB;l2.policy=s3-fifo",
                "l1.memory_capacity=4GiB;l2.policy=lru",
                "l1.memory_capacity=4GiB;l2.policy=lru-k",
                "l1.memory_capacity=4GiB;l2.policy=s3-fifo",
            ]
        );
        assert_eq!(g.point(4).index, 4);
        // The canonical spec parses to the same grid.
        assert_eq!(Grid::parse(&g.to_string()).unwrap(), g);
        // A label is a one-point grid.
        assert_eq!(Grid::parse(&g.point(5).label()).unwrap().len(), 1);
    }

    #[test]
    fn malformed_specs_are_rejected_naming_the_part() {
        let err = |s: &str| Grid::parse(s).unwrap_err().to_string();
        assert!(err("").contains("empty grid"));
        assert!(err(" ; ").contains("empty grid") || err(" ; ").contains("no '='"));
        let e = err("l1.policy=lru;l2.policy");
        assert!(e.contains("\"l2.policy\"") && e.contains("no '='"), "{e}");
        let e = err("l1.policy=lru,,fifo");
        assert!(e.contains("empty value for l1.policy"), "{e}");
        assert!(err("l1.policy=").contains("empty value"));
        let e = err("a=1;b=2;a=3");
        assert!(e.contains("\"a=3\"") && e.contains("twice"), "{e}");
        assert!(err("a=1,1").contains("value 1 is listed twice"));
        assert!(err("l1..policy=lru").contains("invalid key"));
        assert!(err("=lru").contains("invalid key"));
        assert!(err("l1 policy=lru").contains("invalid key"));
        assert!(err("seed=1,2").contains("not a grid key"));
        assert!(err("a=1;;b=2").contains("no '='"));
    }

    #[test]
    fn single_axis_and_value_with_equals_sign() {
        let g = Grid::parse("latency.s3=lognormal=x").unwrap();
        assert_eq!(g.point(0).overrides, vec![("latency.s3".to_string(), "lognormal=x".to_string())]);
    }
}
