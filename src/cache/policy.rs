//! The trait every eviction policy implements.

use super::ChunkId;

/// Tracks the eviction order of resident chunks; nothing more.
///
/// The caller (normally [`BoundedCache`](super::BoundedCache)) owns residency and byte accounting:
/// chunk sizes are nearly uniform, so policies think in entries and never evict on their own. The
/// caller evicts *before* inserting, so a policy never sees the id that is about to be inserted
/// when it picks a victim.
///
/// Breaking a documented caller guarantee is a bug in the caller: debug builds panic, release builds
/// leave the policy's order unspecified (but memory safe).
pub trait EvictionPolicy {
    /// A chunk became resident. The caller guarantees `id` is not resident (it may have been before
    /// and been evicted or removed; policies with history may remember that).
    fn on_insert(&mut self, id: ChunkId);

    /// A resident chunk was read. The caller guarantees `id` is resident.
    fn on_hit(&mut self, id: ChunkId);

    /// Chooses a victim among resident chunks and stops tracking it as resident (it may move to
    /// ghost/history state). `None` only when nothing is resident.
    fn evict(&mut self) -> Option<ChunkId>;

    /// A resident chunk was invalidated (not evicted by the policy): forget it, including any
    /// history. The caller guarantees `id` is resident.
    fn remove(&mut self, id: ChunkId);

    /// Number of resident chunks tracked (ghost/history entries excluded).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Short name for reports (the CLI name, e.g. `lru`, `lru-3`, `s3-fifo`).
    fn name(&self) -> &str;

    /// A hint that `id` is about to be looked up: start loading its per-id state into the CPU's
    /// caches. Changes nothing; a policy need not act on it. A simulation with more chunk ids than
    /// the CPU caches hold waits on memory for most references, and issuing those loads for several
    /// ids at once overlaps the waits.
    #[inline]
    fn prefetch(&self, id: ChunkId) {
        let _ = id;
    }
}
