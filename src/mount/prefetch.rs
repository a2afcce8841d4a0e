//! Read-ahead for the mount: a file read sequentially gets its next chunks loaded (fetched,
//! verified, decrypted) on a small pool of worker threads, two per core, while the reader is
//! served the chunk it asked for. This is what lets a cold sequential read use every core: the
//! kernel asks for one 128 KiB piece at a time, so without it one chunk at a time is opened.
//!
//! - [`Streams`] tells a sequential reader from a random one: a request for chunk `i` when `i - 1`
//!   and `i - 2` are among the last few distinct chunks requested continues a sequential run.
//!   Two chunks before, not one: a random read of a few KiB becomes a kernel read-ahead of up to
//!   128 KiB, which often crosses one chunk boundary, never two. Random reads never trigger
//!   read-ahead, so they do not compete with loads nobody asked for.
//! - [`Prefetcher`] is the worker pool and its queue. The queue is bounded (the read-ahead
//!   window): when a reader moves on faster than the workers, the oldest queued chunks are
//!   dropped rather than loaded late. A chunk already queued is not queued twice.
//!
//! The loads themselves are the loader's: single flight with readers, verified before they reach
//! the memory tier, which stays bounded (the window is capped to half of it).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

/// Distinct chunk indices remembered to recognise a sequential reader (several files may be read
/// at once, and the kernel's request threads may deliver pieces slightly out of order).
const STREAMS: usize = 16;

/// Chunks kept loading ahead per core when the user does not say (`--read-ahead-chunks auto`):
/// enough that every worker has the next chunk ready when it finishes one.
pub const AUTO_CHUNKS_PER_WORKER: u32 = 4;

/// Prefetch workers per core by default. A disk-cold load spends most of its time waiting for
/// the store's read (a 512 KiB chunk file: ~2 ms from this VM's disk, ~0.5 ms to open), so two
/// loads per core keep more reads in flight while every core still has a chunk to open: on the
/// 2-vCPU reference VM under load, 4 workers read cold at a median 472 MB/s against 366 MB/s for 2
/// (docs/performance.md, "The disk's own bound").
pub const WORKERS_PER_CORE: usize = 2;

/// The number of prefetch workers by default: two per core this process may run on.
pub fn default_workers() -> usize {
    WORKERS_PER_CORE * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The read-ahead window `--read-ahead-chunks auto` means on this machine.
pub fn auto_read_ahead_chunks(workers: usize) -> u32 {
    AUTO_CHUNKS_PER_WORKER * workers.max(1) as u32
}

/// The last distinct chunk indices requested, to tell sequential reads from random ones.
#[derive(Default)]
pub(super) struct Streams {
    recent: Mutex<VecDeque<u32>>,
}

impl Streams {
    /// Notes a request for chunk `index`; says whether it continues a sequential run (the two
    /// chunks before it were among the last distinct chunks requested).
    pub(super) fn observe(&self, index: u32) -> bool {
        let mut recent = self.recent.lock().expect("streams lock");
        let sequential = index >= 2 && recent.contains(&(index - 1)) && recent.contains(&(index - 2));
        if recent.back() == Some(&index) {
            return sequential;
        }
        if let Some(at) = recent.iter().position(|&i| i == index) {
            recent.remove(at);
        } else if recent.len() == STREAMS {
            recent.pop_front();
        }
        recent.push_back(index);
        sequential
    }
}

/// What a worker does with a queued chunk index; returns false once its owner is gone.
type Job = Box<dyn Fn(u32) -> bool + Send + Sync>;

struct Queue {
    pending: VecDeque<u32>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// A pool of worker threads loading queued chunk indices, started on first use.
pub(super) struct Prefetcher {
    shared: Arc<Shared>,
    workers: usize,
    capacity: usize,
    started: OnceLock<()>,
}

impl Prefetcher {
    /// A pool of `workers` threads (at least one) and a queue of at most `capacity` chunks.
    pub(super) fn new(workers: usize, capacity: usize) -> Self {
        Prefetcher {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue { pending: VecDeque::new(), closed: false }),
                ready: Condvar::new(),
            }),
            workers: workers.max(1),
            capacity: capacity.max(1),
            started: OnceLock::new(),
        }
    }

    /// Queues chunk `index` for `owner.load_ahead(index)`; false if it was queued already. The
    /// workers hold `owner` weakly: they stop once it is dropped.
    pub(super) fn push<T: LoadAhead>(&self, owner: &Arc<T>, index: u32) -> bool {
        self.started.get_or_init(|| {
            for n in 0..self.workers {
                let weak: Weak<T> = Arc::downgrade(owner);
                let job: Job = Box::new(move |i| match weak.upgrade() {
                    Some(owner) => {
                        owner.load_ahead(i);
                        true
                    }
                    None => false,
                });
                let shared = Arc::clone(&self.shared);
                let spawned = std::thread::Builder::new()
                    .name(format!("chunkload-prefetch-{n}"))
                    .spawn(move || work(&shared, &job));
                if let Err(e) = spawned {
                    // Read-ahead is an optimisation: without workers, readers load their own.
                    eprintln!("chunkload mount: cannot start a prefetch worker: {e}");
                }
            }
        });
        let mut q = self.shared.queue.lock().expect("prefetch queue lock");
        if q.pending.contains(&index) {
            return false;
        }
        if q.pending.len() == self.capacity {
            q.pending.pop_front(); // the reader has moved past it
        }
        q.pending.push_back(index);
        drop(q);
        self.shared.ready.notify_one();
        true
    }

    /// Chunks queued and not yet taken by a worker.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.shared.queue.lock().expect("prefetch queue lock").pending.len()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.shared.queue.lock().expect("prefetch queue lock").closed = true;
        self.shared.ready.notify_all();
    }
}

/// What the pool's owner does with a chunk taken from the queue.
pub(super) trait LoadAhead: Send + Sync + 'static {
    fn load_ahead(&self, index: u32);
}

fn work(shared: &Shared, job: &Job) {
    loop {
        let index = {
            let mut q = shared.queue.lock().expect("prefetch queue lock");
            loop {
                if q.closed {
                    return;
                }
                if let Some(i) = q.pending.pop_front() {
                    break i;
                }
                q = shared.ready.wait(q).expect("prefetch queue lock");
            }
        };
        if !job(index) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn sequential_runs_are_told_from_random_reads() {
        let s = Streams::default();
        assert!(!s.observe(10), "a first read is not a run yet");
        assert!(!s.observe(10), "nor is a second piece of the same chunk");
        assert!(!s.observe(11), "nor is crossing one chunk boundary (a kernel read-ahead does)");
        assert!(s.observe(12));
        assert!(s.observe(12), "every piece of a chunk that continues a run");
        assert!(!s.observe(500), "a jump");
        assert!(!s.observe(501));
        assert!(s.observe(13), "the first run goes on beside the other reader");
        assert!(!s.observe(0));
        for i in [7, 300, 42, 99, 1000, 5] {
            assert!(!s.observe(i), "{i}");
        }
        // After STREAMS other chunks the run is forgotten.
        for i in 0..STREAMS as u32 {
            s.observe(2000 + 2 * i);
        }
        assert!(!s.observe(14));
    }

    struct Counter {
        loads: AtomicUsize,
        gate: Mutex<bool>,
        open: Condvar,
    }

    impl LoadAhead for Counter {
        fn load_ahead(&self, _index: u32) {
            let mut g = self.gate.lock().unwrap();
            while !*g {
                g = self.open.wait(g).unwrap();
            }
            self.loads.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_queue_is_bounded_deduplicated_and_drained_by_the_workers() {
        let owner =
            Arc::new(Counter { loads: AtomicUsize::new(0), gate: Mutex::new(false), open: Condvar::new() });
        let p = Prefetcher::new(1, 3);
        // The one worker takes the first chunk and blocks on the gate; 3 more fill the queue.
        assert!(p.push(&owner, 1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.queued() > 0 {
            assert!(Instant::now() < deadline, "the worker never took a job");
            std::thread::sleep(Duration::from_millis(2));
        }
        for i in 2..=4 {
            assert!(p.push(&owner, i));
        }
        assert!(!p.push(&owner, 3), "already queued");
        assert!(p.push(&owner, 5), "queued, dropping the oldest (2)");
        assert_eq!(p.queued(), 3);
        *owner.gate.lock().unwrap() = true;
        owner.open.notify_all();
        while owner.loads.load(Ordering::SeqCst) < 4 {
            assert!(Instant::now() < deadline, "the workers never drained the queue");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(owner.loads.load(Ordering::SeqCst), 4, "1, 3, 4, 5: chunk 2 was dropped");
    }
}
