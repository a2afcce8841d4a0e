//! Counters a store keeps so the caller can report what a conversion uploaded.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a store's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Chunks this handle wrote (they were absent).
    pub chunks_new: u64,
    /// Chunks offered to `put_if_absent` that were already present: deduplicated.
    pub chunks_present: u64,
    /// Ciphertext bytes of the new chunks.
    pub bytes_written: u64,
}

/// Live counters, updated from many threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    chunks_new: AtomicU64,
    chunks_present: AtomicU64,
    bytes_written: AtomicU64,
}

impl Counters {
    pub(crate) fn record_put(&self, new: bool, len: usize) {
        if new {
            self.chunks_new.fetch_add(1, Ordering::Relaxed);
            self.bytes_written.fetch_add(len as u64, Ordering::Relaxed);
        } else {
            self.chunks_present.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            chunks_new: self.chunks_new.load(Ordering::Relaxed),
            chunks_present: self.chunks_present.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }
}
