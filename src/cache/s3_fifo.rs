//! S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023).

use super::list::{Links, List};
use super::{ChunkId, EvictionPolicy};

/// Which queue an id is on: the low two bits of its metadata byte.
const NOWHERE: u8 = 0;
const SMALL: u8 = 1;
const MAIN: u8 = 2;
const GHOST: u8 = 3;
const QUEUE_MASK: u8 = 0b11;
/// The access counter lives in bits 2..4 and saturates at 3.
const FREQ_SHIFT: u8 = 2;
const FREQ_MAX: u8 = 3;

/// Three FIFO queues: new chunks enter a small probation queue (10% of `capacity_entries`, at
/// least 1); a chunk read while there moves to the main queue when it reaches the small queue's
/// tail, otherwise it leaves and only its id is kept in a ghost queue. Inserting a ghosted id goes
/// straight to main. Main is a CLOCK with a 2-bit counter: a tail chunk with a non-zero count is
/// reinserted at the head with the count decremented. One-hit wonders (a scan) pass through the
/// small queue and never displace main.
///
/// Choices where descriptions differ or our interface forces one:
/// - promotion threshold: at least one hit while in the small queue; the counter is cleared on
///   promotion;
/// - the ghost queue holds as many ids as main's share (`capacity_entries` minus the small share),
///   dropped oldest first;
/// - one `evict` returns exactly one victim: chunks promoted from small to main on the way do not
///   trigger an extra main eviction (the paper's "if M is full, evictM"); the total stays the same
///   and the next call rebalances by evicting from main.
///
/// O(1) per operation, amortised: each `evict` may reinsert main chunks, but every reinsertion
/// consumes a count that a hit paid for.
pub struct S3Fifo {
    links: Links,
    /// Indexed by queue tag; slot `NOWHERE` is unused.
    queues: [List; 4],
    meta: Vec<u8>,
    small_target: usize,
    ghost_cap: usize,
}

impl S3Fifo {
    pub fn new(capacity_entries: usize) -> Self {
        let small_target = (capacity_entries / 10).max(1);
        S3Fifo {
            links: Links::default(),
            queues: [List::default(); 4],
            meta: Vec::new(),
            small_target,
            ghost_cap: capacity_entries.saturating_sub(small_target),
        }
    }

    #[inline]
    fn queue(&self, id: ChunkId) -> u8 {
        self.meta.get(id.index()).map_or(NOWHERE, |m| m & QUEUE_MASK)
    }

    #[inline]
    fn freq(&self, id: ChunkId) -> u8 {
        self.meta[id.index()] >> FREQ_SHIFT
    }

    /// Moves `id` from its queue to the head of `to` with the given counter.
    fn relink(&mut self, id: ChunkId, to: u8, freq: u8) {
        let from = self.queue(id);
        if from != NOWHERE {
            self.links.unlink(&mut self.queues[usize::from(from)], id);
        }
        if to != NOWHERE {
            self.links.push_front(&mut self.queues[usize::from(to)], id);
        }
        self.meta[id.index()] = to | (freq << FREQ_SHIFT);
    }

    fn len_of(&self, q: u8) -> usize {
        self.queues[usize::from(q)].len()
    }

    fn back(&self, q: u8) -> Option<ChunkId> {
        self.queues[usize::from(q)].back()
    }

    fn evict_main(&mut self) -> Option<ChunkId> {
        while let Some(tail) = self.back(MAIN) {
            let freq = self.freq(tail);
            if freq == 0 {
                self.relink(tail, NOWHERE, 0);
                return Some(tail);
            }
            self.relink(tail, MAIN, freq - 1);
        }
        None
    }
}

impl EvictionPolicy for S3Fifo {
    fn on_insert(&mut self, id: ChunkId) {
        if id.index() >= self.meta.len() {
            self.meta.resize(id.index() + 1, NOWHERE);
        }
        match self.queue(id) {
            NOWHERE => self.relink(id, SMALL, 0),
            GHOST => self.relink(id, MAIN, 0),
            _ => panic!("insert of resident {id}"),
        }
    }

    #[inline]
    fn on_hit(&mut self, id: ChunkId) {
        let m = &mut self.meta[id.index()];
        debug_assert!(matches!(*m & QUEUE_MASK, SMALL | MAIN), "hit on non-resident {id}");
        if *m >> FREQ_SHIFT < FREQ_MAX {
            *m += 1 << FREQ_SHIFT;
        }
    }

    fn evict(&mut self) -> Option<ChunkId> {
        let small = self.len_of(SMALL);
        if small > 0 && (small >= self.small_target || self.len_of(MAIN) == 0) {
            while let Some(tail) = self.back(SMALL) {
                if self.freq(tail) > 0 {
                    self.relink(tail, MAIN, 0);
                    continue;
                }
                if self.ghost_cap == 0 {
                    self.relink(tail, NOWHERE, 0);
                    return Some(tail);
                }
                self.relink(tail, GHOST, 0);
                if self.len_of(GHOST) > self.ghost_cap {
                    let oldest = self.back(GHOST).expect("ghost queue is non-empty");
                    self.relink(oldest, NOWHERE, 0);
                }
                return Some(tail);
            }
        }
        self.evict_main()
    }

    fn remove(&mut self, id: ChunkId) {
        match self.queue(id) {
            SMALL | MAIN => self.relink(id, NOWHERE, 0),
            _ => panic!("remove of non-resident {id}"),
        }
    }

    fn len(&self) -> usize {
        self.len_of(SMALL) + self.len_of(MAIN)
    }

    fn name(&self) -> &str {
        "s3-fifo"
    }
}
