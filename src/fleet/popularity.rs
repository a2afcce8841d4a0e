//! Zipf-skewed picks over ranks `0..n`, by inverse CDF over a cumulative table (exact for any
//! exponent, deterministic, one uniform draw and a binary search per pick).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Rank `i` has weight `1 / (i + 1)^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// # Panics
    /// If `n` is 0 or `s` is not finite.
    pub fn new(n: usize, s: f64) -> Self {
        assert!(n > 0 && s.is_finite(), "Zipf needs ranks and a finite exponent");
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|i| {
                total += Self::weight(i, s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    /// Unnormalised weight of rank `i`.
    pub fn weight(i: usize, s: f64) -> f64 {
        ((i + 1) as f64).powf(-s)
    }

    /// Sum of all weights.
    pub fn total(&self) -> f64 {
        *self.cumulative.last().expect("at least one rank")
    }

    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// A rank, rank 0 the most likely.
    pub fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let u = rng.random::<f64>() * self.total();
        self.cumulative.partition_point(|&c| c <= u).min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn picks_follow_the_weights() {
        let z = Zipf::new(100, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0u32; 100];
        for _ in 0..200_000 {
            counts[z.pick(&mut rng)] += 1;
        }
        // Rank 0 against rank 9: weight ratio 10.
        let ratio = f64::from(counts[0]) / f64::from(counts[9]);
        assert!((8.5..11.5).contains(&ratio), "{ratio}");
        let share0 = f64::from(counts[0]) / 200_000.0;
        assert!((share0 - 1.0 / z.total()).abs() < 0.01, "{share0}");
    }
}
