//! Object ids (any `u64`) to dense ids (0, 1, 2, ... in order of first sight), for the policies'
//! id-indexed state.
//!
//! Interning is the reader thread's main cost: with a million distinct objects the table is tens
//! of MiB, so nearly every lookup of a cold id is a cache miss. An open-addressing table (linear
//! probing, one 16-byte slot per entry, load at most 1/2) lets [`Interner::intern_many`] prefetch
//! the slot of the request a few places ahead while it resolves the current one, which hides most
//! of that latency; a general-purpose map offers no such hook.

/// Marks an empty slot (dense ids stop one short of it).
const EMPTY: u32 = u32::MAX;
/// How many requests ahead the slot is prefetched.
const AHEAD: usize = 16;

pub struct Interner {
    slots: Vec<(u64, u32)>,
    /// `64 - log2(slots.len())`: a hash's top bits pick the home slot.
    shift: u32,
    len: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Self::with_log2(16)
    }
}

impl Interner {
    fn with_log2(bits: u32) -> Self {
        Interner { slots: vec![(0, EMPTY); 1 << bits], shift: 64 - bits, len: 0 }
    }

    /// Distinct ids so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the multiply spreads any key (sequential ones too) over the top bits.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The dense id of `key`, assigning the next one if it is new. `None` when every dense id is
    /// taken (`u32::MAX - 1` distinct keys).
    #[inline]
    pub fn intern(&mut self, key: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let (k, v) = self.slots[i];
            if v == EMPTY {
                if self.len >= (EMPTY - 1) as usize {
                    return None;
                }
                let id = self.len as u32;
                self.slots[i] = (key, id);
                self.len += 1;
                if 2 * self.len > self.slots.len() {
                    self.grow();
                }
                return Some(id);
            }
            if k == key {
                return Some(v);
            }
            i = (i + 1) & mask;
        }
    }

    /// Interns `key(0)..key(n)` in order, calling `emit(i, id)` for each; stops at the first key
    /// that finds no dense id left and returns `false`.
    #[inline]
    pub fn intern_many(
        &mut self,
        n: usize,
        key: impl Fn(usize) -> u64,
        mut emit: impl FnMut(usize, u32),
    ) -> bool {
        for i in 0..n {
            if i + AHEAD < n {
                let at = self.home(key(i + AHEAD));
                crate::cache::prefetch(&self.slots, at);
            }
            match self.intern(key(i)) {
                Some(id) => emit(i, id),
                None => return false,
            }
        }
        true
    }

    #[cold]
    fn grow(&mut self) {
        let bits = 64 - self.shift + 1;
        let old = std::mem::replace(self, Self::with_log2(bits));
        self.len = old.len;
        let mask = self.slots.len() - 1;
        for (k, v) in old.slots {
            if v != EMPTY {
                let mut i = self.home(k);
                while self.slots[i].1 != EMPTY {
                    i = (i + 1) & mask;
                }
                self.slots[i] = (k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_in_order_of_first_sight_across_growth() {
        let mut t = Interner::default();
        let keys: Vec<u64> = (0..200_000u64).map(|i| i.wrapping_mul(0xDEAD_BEEF_1234_5677) ^ 5).collect();
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(t.intern(k), Some(i as u32));
        }
        let mut seen = Vec::new();
        assert!(t.intern_many(keys.len(), |i| keys[keys.len() - 1 - i], |_, id| seen.push(id)));
        assert_eq!(seen, (0..200_000u32).rev().collect::<Vec<_>>());
        assert_eq!(t.len(), 200_000);
        // Zero and sequential keys are ordinary keys.
        assert_eq!(t.intern(0), Some(200_000));
        assert_eq!(t.intern(1), Some(200_001));
        assert_eq!(t.intern(0), Some(200_000));
    }
}
