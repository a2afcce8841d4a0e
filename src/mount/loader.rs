//! The agent's chunk loader: a chunk comes from the in-memory recent-chunk tier, else the local
//! disk tier, else the store, in that order, and is checked against the manifest before any byte
//! is served. Concurrent readers of one chunk share one load (single flight). A file read
//! sequentially has its next chunks loaded ahead on a worker pool (prefetch.rs). Optional injected
//! latency lets a local store feel like the AZ cache or S3.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cache::{CacheStats, PolicyKind};
use crate::chunk::open_stored;
use crate::crypto::{ChunkName, Manifest};
use crate::sim::{LatencyDist, Redundancy, S3, SimDuration, SimTime, Tier, az_read, worker_hit};
use crate::store::ChunkStore;
use crate::units::ByteSize;

use super::MountError;
use super::disk_cache::DiskCache;
use super::memory::MemoryTier;
use super::prefetch::{LoadAhead, Prefetcher, Streams};

/// Marks a hole (an all-zero chunk the manifest leaves out) in `Loader::ids`.
const HOLE: u32 = u32::MAX;

/// Where chunks that miss both local tiers come from, as far as injected latency goes: one of the
/// kernel's remote tiers, [`Tier::AzCache`] or [`Tier::S3`], named as everywhere else (`az-cache`,
/// `s3`; `az` is accepted for `az-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RemoteTier(Tier);

impl RemoteTier {
    pub const AZ_CACHE: RemoteTier = RemoteTier(Tier::AzCache);
    pub const S3: RemoteTier = RemoteTier(Tier::S3);

    pub fn tier(self) -> Tier {
        self.0
    }
}

impl std::str::FromStr for RemoteTier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "az" => Ok(RemoteTier::AZ_CACHE),
            _ => match s.parse::<Tier>() {
                Ok(t) if t.is_remote() => Ok(RemoteTier(t)),
                _ => Err(format!("unknown remote tier {s:?}: expected az-cache (or az) or s3")),
            },
        }
    }
}

impl std::fmt::Display for RemoteTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Sleeps drawn from the latency model, per tier, priced by the kernel's read path
/// (`sim::tier`, `sim::S3`): what a real mount on a worker would wait.
pub struct InjectedLatency {
    pub disk_hit: LatencyDist,
    pub az_stripe: LatencyDist,
    pub s3_get: LatencyDist,
    pub remote: RemoteTier,
    rng: Mutex<ChaCha8Rng>,
}

impl InjectedLatency {
    pub fn new(
        disk_hit: LatencyDist,
        az_stripe: LatencyDist,
        s3_get: LatencyDist,
        remote: RemoteTier,
        seed: u64,
    ) -> Self {
        InjectedLatency {
            disk_hit,
            az_stripe,
            s3_get,
            remote,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// Sleeps as long as a read from `tier` takes: [`Tier::WorkerDisk`] for the disk cache, the
    /// remote tier for a store fetch (the AZ cache with every stripe of the paper's 4-of-5 present).
    fn wait(&self, tier: Tier) {
        let mut rng = self.rng.lock().expect("latency rng lock");
        let d = match tier {
            // The memory tier is never injected: only the disk tier's latency is at hand.
            Tier::WorkerDisk | Tier::WorkerMemory => {
                worker_hit(tier, &self.disk_hit, &self.disk_hit, &mut rng)
            }
            Tier::AzCache => {
                let ec = Redundancy::EC_4_OF_5;
                az_read(&self.az_stripe, ec, ec.stripes(), &mut rng).latency
            }
            Tier::S3 => S3::unlimited(self.s3_get).get(SimTime::ZERO, false, &mut rng).latency,
            Tier::Hole | Tier::LocalDisk => SimDuration::ZERO,
        };
        drop(rng);
        std::thread::sleep(Duration::from_nanos(d.as_nanos()));
    }
}

/// Why a chunk could not be served (the message names the chunk). Cloneable: every reader
/// waiting on one load gets it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct LoadError {
    pub index: u32,
    pub reason: String,
}

/// What the loader did since the mount.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoaderStats {
    /// Chunk requests (one per chunk a read needed).
    pub requests: u64,
    pub memory_hits: u64,
    pub disk_hits: u64,
    /// Chunks fetched from the store (cold).
    pub store_fetches: u64,
    pub store_bytes: ByteSize,
    /// Requests that waited for a load another reader had started.
    pub shared_loads: u64,
    /// Disk-cache files that failed verification (refetched from the store).
    pub disk_rejects: u64,
    /// Loads that failed (served as I/O errors).
    pub failures: u64,
    /// Chunks queued to load ahead of need (a sequential reader's next `read_ahead_chunks`).
    pub read_ahead: u64,
    pub memory: CacheStats,
    pub disk: CacheStats,
    pub disk_used: ByteSize,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    store_fetches: AtomicU64,
    store_bytes: AtomicU64,
    shared_loads: AtomicU64,
    disk_rejects: AtomicU64,
    failures: AtomicU64,
    read_ahead: AtomicU64,
}

type Loaded = Result<Arc<Vec<u8>>, LoadError>;

/// One load in progress; later readers of the same chunk wait on it.
#[derive(Default)]
struct Flight {
    result: Mutex<Option<Loaded>>,
    done: Condvar,
}

pub struct Loader {
    manifest: Manifest,
    store: Arc<dyn ChunkStore>,
    /// Per chunk index: its content id (dense over distinct chunk names), or `HOLE`.
    ids: Vec<u32>,
    /// Per content id: its ciphertext size.
    sizes: Vec<u64>,
    memory: Mutex<MemoryTier>,
    disk: DiskCache,
    inflight: Mutex<HashMap<u32, Arc<Flight>>>,
    zeros: Arc<Vec<u8>>,
    latency: Option<InjectedLatency>,
    /// The read-ahead window in chunks, capped to half the memory tier (0 = off).
    read_ahead_chunks: u32,
    streams: Streams,
    prefetch: Prefetcher,
    counters: Counters,
}

/// Sizes and policy of the loader's two tiers.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub dir: std::path::PathBuf,
    pub disk_capacity: ByteSize,
    pub memory_capacity: ByteSize,
    pub policy: PolicyKind,
    pub seed: u64,
    /// While a file is read sequentially, keep its next N chunks loaded or loading on the
    /// prefetch workers (the model's `fetch.read_ahead_chunks`; 0 = off). Capped to half the
    /// memory tier, so that chunks loaded ahead are not evicted before they are read.
    pub read_ahead_chunks: u32,
    /// Threads loading chunks ahead (0: two per core).
    pub prefetch_workers: usize,
}

impl Loader {
    pub fn new(
        manifest: Manifest,
        store: Arc<dyn ChunkStore>,
        cache: &CacheConfig,
        latency: Option<InjectedLatency>,
    ) -> Result<Self, MountError> {
        let h = manifest.header();
        let total = h.total_chunks() as usize;
        let chunk_size = ByteSize(u64::from(h.chunk_size));
        let mut ids = vec![HOLE; total];
        let mut by_name: HashMap<ChunkName, u32> = HashMap::new();
        let (mut names, mut sizes) = (Vec::new(), Vec::new());
        for (entry, _) in manifest.chunks() {
            let id = *by_name.entry(entry.name).or_insert_with(|| {
                names.push(entry.name);
                sizes.push(h.chunk_len(entry.index));
                (names.len() - 1) as u32
            });
            ids[entry.index as usize] = id;
        }
        let disk = DiskCache::open(
            &cache.dir,
            names,
            &sizes,
            cache.disk_capacity,
            cache.policy,
            chunk_size,
            cache.seed,
        )?;
        let memory = MemoryTier::new(cache.memory_capacity);
        let fits = cache.memory_capacity.bytes() / chunk_size.bytes().max(1) / 2;
        let read_ahead_chunks = cache.read_ahead_chunks.min(u32::try_from(fits).unwrap_or(u32::MAX));
        let workers = if cache.prefetch_workers == 0 {
            super::prefetch::default_workers()
        } else {
            cache.prefetch_workers
        };
        Ok(Loader {
            zeros: Arc::new(vec![0u8; chunk_size.bytes() as usize]),
            manifest,
            store,
            ids,
            sizes,
            memory: Mutex::new(memory),
            disk,
            inflight: Mutex::new(HashMap::new()),
            latency,
            read_ahead_chunks,
            streams: Streams::default(),
            prefetch: Prefetcher::new(workers, read_ahead_chunks as usize),
            counters: Counters::default(),
        })
    }

    pub fn chunk_size(&self) -> u64 {
        u64::from(self.manifest.header().chunk_size)
    }

    /// The verified plaintext of chunk `index` (a hole reads as zeros; the slice may be longer
    /// than the last chunk). Read-ahead may run up to the image's last chunk.
    pub fn chunk(self: &Arc<Self>, index: u32) -> Loaded {
        self.chunk_within(index, u32::MAX)
    }

    /// Chunk `index` of a file whose last chunk is `last`: if the request continues a sequential
    /// run, the next `read_ahead_chunks` chunks (not past `last`) are queued for the prefetch
    /// workers first, so they load while this one is served.
    pub fn chunk_within(self: &Arc<Self>, index: u32, last: u32) -> Loaded {
        if self.read_ahead_chunks > 0 && self.streams.observe(index) {
            self.read_ahead(index, last);
        }
        self.get(index, false).0
    }

    /// Queues the chunks after `index`, up to the window and `last`, that are neither holes nor
    /// in memory nor loading.
    fn read_ahead(self: &Arc<Self>, index: u32, last: u32) {
        let end =
            (index as usize + self.read_ahead_chunks as usize).min(self.ids.len() - 1).min(last as usize);
        for next in index as usize + 1..=end {
            let id = self.ids[next];
            if id == HOLE || self.is_present(id) {
                continue;
            }
            if self.prefetch.push(self, next as u32) {
                self.counters.read_ahead.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The read-ahead window in effect (chunks; 0 = off).
    pub fn read_ahead_chunks(&self) -> u32 {
        self.read_ahead_chunks
    }

    /// Whether content `id` is in memory or being loaded.
    fn is_present(&self, id: u32) -> bool {
        let inflight = self.inflight.lock().expect("inflight lock");
        inflight.contains_key(&id) || self.memory.lock().expect("memory tier lock").contains(id)
    }

    /// One chunk, and whether this call fetched it from the store. A read-ahead load is not
    /// counted as a request.
    fn get(&self, index: u32, read_ahead: bool) -> (Loaded, bool) {
        let id = match self.ids.get(index as usize) {
            None => {
                let reason = format!("chunk {index} is past the end of the image");
                return (Err(LoadError { index, reason }), false);
            }
            Some(&HOLE) => return (Ok(self.zeros.clone()), false),
            Some(&id) => id,
        };
        if !read_ahead {
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
        }
        let (flight, leader) = {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            if let Some(data) = self.memory_get(id) {
                if !read_ahead {
                    self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
                }
                return (Ok(data), false);
            }
            match inflight.get(&id) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Flight::default());
                    inflight.insert(id, f.clone());
                    (f, true)
                }
            }
        };
        if !leader {
            if read_ahead {
                return (Ok(Arc::new(Vec::new())), false); // someone is loading it already
            }
            self.counters.shared_loads.fetch_add(1, Ordering::Relaxed);
            let mut result = flight.result.lock().expect("flight lock");
            while result.is_none() {
                result = flight.done.wait(result).expect("flight lock");
            }
            return (result.clone().expect("loaded"), false);
        }
        let (loaded, from_store) = self.load(index, id);
        if let Ok(data) = &loaded {
            self.memory_put(id, data.clone());
        } else {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        // Publish, then retire the flight: a reader arriving after this finds the memory tier.
        *flight.result.lock().expect("flight lock") = Some(loaded.clone());
        flight.done.notify_all();
        self.inflight.lock().expect("inflight lock").remove(&id);
        (loaded, from_store)
    }

    /// Disk tier, then store; verified either way. Failures are never cached. Says whether the
    /// store was asked.
    fn load(&self, index: u32, id: u32) -> (Loaded, bool) {
        match self.load_from_disk(index, id) {
            Some(plain) => (Ok(plain), false),
            None => (self.load_from_store(index, id), true),
        }
    }

    fn load_from_disk(&self, index: u32, id: u32) -> Option<Arc<Vec<u8>>> {
        let size = self.sizes[id as usize];
        if let Some(ciphertext) = self.disk.get(id, size) {
            match open_stored(&self.manifest, index, ciphertext) {
                Ok(plain) => {
                    self.wait(Tier::WorkerDisk);
                    self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
                    return Some(Arc::new(plain));
                }
                Err(_) => {
                    self.counters.disk_rejects.fetch_add(1, Ordering::Relaxed);
                    self.disk.remove(id);
                }
            }
        }
        None
    }

    fn load_from_store(&self, index: u32, id: u32) -> Loaded {
        let fail = |reason: String| LoadError { index, reason };
        let entry = self.manifest.find(index).expect("not a hole").0;
        let ciphertext = self.store.get(&entry.name).map_err(|e| fail(format!("chunk {index}: {e}")))?;
        self.wait(self.latency.as_ref().map_or(Tier::S3, |l| l.remote.tier()));
        self.counters.store_fetches.fetch_add(1, Ordering::Relaxed);
        self.counters.store_bytes.fetch_add(ciphertext.len() as u64, Ordering::Relaxed);
        // Keep the ciphertext for the disk tier only once it has proved good.
        let copy = ciphertext.clone();
        let plain = open_stored(&self.manifest, index, ciphertext).map_err(|e| fail(e.to_string()))?;
        if let Err(e) = self.disk.put(id, &copy) {
            // The cache is an optimisation: a full or broken cache disk must not fail the read.
            eprintln!("chunkload mount: cannot write chunk {index} to the disk cache: {e}");
        }
        Ok(Arc::new(plain))
    }

    fn wait(&self, tier: Tier) {
        if let Some(l) = &self.latency {
            l.wait(tier);
        }
    }

    fn memory_get(&self, id: u32) -> Option<Arc<Vec<u8>>> {
        self.memory.lock().expect("memory tier lock").get(id)
    }

    fn memory_put(&self, id: u32, data: Arc<Vec<u8>>) {
        self.memory.lock().expect("memory tier lock").put(id, data);
    }

    pub fn stats(&self) -> LoaderStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LoaderStats {
            requests: get(&c.requests),
            memory_hits: get(&c.memory_hits),
            disk_hits: get(&c.disk_hits),
            store_fetches: get(&c.store_fetches),
            store_bytes: ByteSize(get(&c.store_bytes)),
            shared_loads: get(&c.shared_loads),
            disk_rejects: get(&c.disk_rejects),
            failures: get(&c.failures),
            read_ahead: get(&c.read_ahead),
            memory: self.memory.lock().expect("memory tier lock").stats(),
            disk: self.disk.stats(),
            disk_used: self.disk.used(),
        }
    }

    pub fn disk_policy(&self) -> String {
        self.disk.policy_name()
    }
}

impl LoadAhead for Loader {
    fn load_ahead(&self, index: u32) {
        // A failure is not cached: the reader that gets there retries and reports it.
        let _ = self.get(index, true);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::crypto::{ManifestHeader, Salt, encrypt_chunk};
    use crate::store::{self, ManifestName, MemStore, StoreStats};

    const CHUNK: usize = 4096;

    /// A store that counts and slows down `get`, so that concurrent loads overlap.
    struct SlowStore {
        inner: MemStore,
        gets: AtomicUsize,
    }

    impl ChunkStore for SlowStore {
        fn contains(&self, name: &ChunkName) -> store::Result<bool> {
            self.inner.contains(name)
        }
        fn put_if_absent(&self, name: &ChunkName, ciphertext: &[u8]) -> store::Result<bool> {
            self.inner.put_if_absent(name, ciphertext)
        }
        fn get(&self, name: &ChunkName) -> store::Result<Vec<u8>> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            self.inner.get(name)
        }
        fn put_manifest(&self, name: &ManifestName, sealed: &[u8]) -> store::Result<()> {
            self.inner.put_manifest(name, sealed)
        }
        fn get_manifest(&self, name: &ManifestName) -> store::Result<Vec<u8>> {
            self.inner.get_manifest(name)
        }
        fn list_manifests(&self) -> store::Result<Vec<ManifestName>> {
            self.inner.list_manifests()
        }
        fn stats(&self) -> StoreStats {
            self.inner.stats()
        }
    }

    /// Chunks 0 and 2 hold distinct bytes, chunk 1 is a hole, chunk 3 repeats chunk 0.
    fn image(store: &dyn ChunkStore) -> (Manifest, Vec<Vec<u8>>) {
        image_of(store, &[1, 0, 2, 1])
    }

    /// One chunk per byte value, filled with it (0: a hole).
    fn image_of(store: &dyn ChunkStore, fill: &[u8]) -> (Manifest, Vec<Vec<u8>>) {
        let salt = Salt::new("test").unwrap();
        let header = ManifestHeader {
            chunk_size: CHUNK as u32,
            image_size: (fill.len() * CHUNK) as u64,
            salt: salt.clone(),
            source: "t".into(),
        };
        let plain: Vec<Vec<u8>> = fill.iter().map(|&b| vec![b; CHUNK]).collect();
        let mut b = Manifest::builder(header);
        for (i, p) in plain.iter().enumerate() {
            if p[0] == 0 {
                continue;
            }
            let mut buf = p.clone();
            let sealed = encrypt_chunk(&salt, &mut buf);
            store.put_if_absent(&sealed.name, &buf).unwrap();
            b.push(i as u32, sealed);
        }
        (b.finish().unwrap(), plain)
    }

    fn loader(dir: &std::path::Path, store: Arc<dyn ChunkStore>, manifest: Manifest) -> Arc<Loader> {
        loader_with(dir, store, manifest, 0)
    }

    fn loader_with(
        dir: &std::path::Path,
        store: Arc<dyn ChunkStore>,
        manifest: Manifest,
        ahead: u32,
    ) -> Arc<Loader> {
        let cache = CacheConfig {
            dir: dir.to_path_buf(),
            disk_capacity: ByteSize::mib(1),
            memory_capacity: ByteSize::mib(1),
            policy: PolicyKind::Lru,
            seed: 1,
            read_ahead_chunks: ahead,
            prefetch_workers: 2,
        };
        Arc::new(Loader::new(manifest, store, &cache, None).unwrap())
    }

    #[test]
    fn a_sequential_reader_gets_the_next_chunks_loaded_ahead() {
        let store = Arc::new(MemStore::new());
        // 0 and 1: distinct; 2: a hole; 3: chunk 0's content; 4, 5, 6: distinct.
        let (manifest, plain) = image_of(store.as_ref(), &[1, 2, 0, 1, 4, 5, 6]);
        let dir = tempfile::tempdir().unwrap();
        let l = loader_with(dir.path(), store, manifest, 3);
        for i in 0..2 {
            assert_eq!(*l.chunk(i).unwrap(), plain[i as usize]);
        }
        assert_eq!(l.stats().read_ahead, 0, "two chunks are not a sequential run yet");
        assert_eq!(*l.chunk(2).unwrap(), plain[2]);
        // The hole at 2 continues 0, 1: of 3, 4, 5, only 4 and 5 load ahead (3 is chunk 0's
        // content, in memory); 6 is past the window.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while l.stats().store_fetches < 4 {
            assert!(std::time::Instant::now() < deadline, "read-ahead never fetched chunks 4 and 5");
            std::thread::sleep(Duration::from_millis(5));
        }
        while !l.inflight.lock().unwrap().is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = l.stats();
        assert_eq!((s.store_fetches, s.read_ahead, s.requests), (4, 2, 2));
        assert_eq!(*l.chunk(4).unwrap(), plain[4]);
        assert_eq!(l.stats().memory_hits, 1, "chunk 4 was waiting in memory");
    }

    #[test]
    fn random_reads_and_the_end_of_a_file_stop_read_ahead() {
        let store = Arc::new(MemStore::new());
        let (manifest, plain) = image(store.as_ref());
        let dir = tempfile::tempdir().unwrap();
        let l = loader_with(dir.path(), store, manifest, 3);
        for i in [3, 0, 2] {
            assert_eq!(*l.chunk(i).unwrap(), plain[i as usize]);
        }
        assert_eq!(l.stats().read_ahead, 0, "3, 0, 2 is no sequential run");
        // 0, 1, 2 is a run, but chunk 2 is the last of its file: nothing past it is loaded.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::new());
        let (manifest, _) = image_of(store.as_ref(), &[1, 2, 3, 4, 5]);
        let l = loader_with(dir.path(), store, manifest, 3);
        for i in 0..3 {
            l.chunk_within(i, 2).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let s = l.stats();
        assert_eq!((s.read_ahead, s.store_fetches), (0, 3));
    }

    #[test]
    fn concurrent_readers_of_one_chunk_share_one_fetch() {
        let store = Arc::new(SlowStore { inner: MemStore::new(), gets: AtomicUsize::new(0) });
        let (manifest, plain) = image(store.as_ref());
        let dir = tempfile::tempdir().unwrap();
        let l = loader(dir.path(), store.clone(), manifest);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| assert_eq!(*l.chunk(0).unwrap(), plain[0]));
            }
        });
        assert_eq!(store.gets.load(Ordering::SeqCst), 1);
        // Chunk 3 has chunk 0's content: same chunk name, served without another fetch.
        assert_eq!(*l.chunk(3).unwrap(), plain[3]);
        assert_eq!(store.gets.load(Ordering::SeqCst), 1);
        let s = l.stats();
        assert_eq!((s.store_fetches, s.shared_loads + s.memory_hits), (1, 8));
    }

    #[test]
    fn holes_read_as_zeros_without_a_fetch_and_bad_indices_fail() {
        let store = Arc::new(MemStore::new());
        let (manifest, _) = image(store.as_ref());
        let dir = tempfile::tempdir().unwrap();
        let l = loader(dir.path(), store, manifest);
        assert!(l.chunk(1).unwrap()[..CHUNK].iter().all(|&b| b == 0));
        assert_eq!(l.stats().requests, 0);
        assert!(l.chunk(9).unwrap_err().to_string().contains("past the end"));
    }

    #[test]
    fn a_bad_store_chunk_fails_every_time_and_is_never_cached() {
        let good = MemStore::new();
        let (manifest, _) = image(&good);
        // A store whose chunk 2 has one flipped byte.
        let bad = Arc::new(MemStore::new());
        for (entry, _) in manifest.chunks() {
            let mut bytes = good.get(&entry.name).unwrap();
            if entry.index == 2 {
                bytes[7] ^= 1;
            }
            bad.put_if_absent(&entry.name, &bytes).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let l = loader(dir.path(), bad, manifest);
        for _ in 0..2 {
            let e = l.chunk(2).unwrap_err();
            assert!(e.to_string().contains("chunk 2"), "{e}");
        }
        assert_eq!((l.stats().failures, l.stats().store_fetches), (2, 2));
        assert_eq!(l.stats().disk.insertions, 0, "nothing unverified reaches the disk cache");
    }

    #[test]
    fn a_damaged_disk_cache_file_is_refetched_not_served() {
        let store = Arc::new(MemStore::new());
        let (manifest, plain) = image(store.as_ref());
        let dir = tempfile::tempdir().unwrap();
        let name = manifest.find(2).unwrap().0.name.to_hex();
        let manifest2 = manifest.clone();
        drop(loader(dir.path(), store.clone(), manifest).chunk(2).unwrap());
        let file = dir.path().join(&name);
        let mut bytes = fs_read(&file);
        bytes[0] ^= 0xff;
        std::fs::write(&file, bytes).unwrap();
        // A new mount on the same directory admits the file, finds it bad, and goes to the store.
        let l = loader(dir.path(), store, manifest2);
        assert_eq!(*l.chunk(2).unwrap(), plain[2]);
        let s = l.stats();
        assert_eq!((s.disk_rejects, s.store_fetches, s.disk_hits), (1, 1, 0));
    }

    fn fs_read(p: &std::path::Path) -> Vec<u8> {
        std::fs::read(p).unwrap()
    }
}
