//! Real mode: a converted image mounted with FUSE, its chunks loaded on demand the way Lambda's
//! local agent loads them (memory tier -> local-disk worker cache -> store, every chunk checked
//! against the manifest), optionally recording every request the kernel sends as a trace.
//!
//! - [`fs`]: the read-only FUSE filesystem over the block image's metadata.
//! - [`loader`]: chunk loads with single flight, verification and injected tier latency.
//! - `memory`: the memory tier of decrypted chunks, an `lru::LruCache` bounded in bytes.
//! - [`disk_cache`]: the bounded on-disk chunk cache, driven by a [`crate::cache::PolicyKind`].
//! - [`record`]: the trace recorder (trace format versions 1 and 2).
//! - [`sandbox`]: the isolated root a recorded program runs in (namespaces, pivot_root, limits).
//! - [`run`]: `trace record`: mount, resolve what the image runs, run it sandboxed, keep the trace.
//!
//! Above the model's line: this stage touches real bytes and real time. docs/real-mode.md.

pub mod disk_cache;
pub mod fs;
pub mod loader;
mod memory;
mod prefetch;
pub mod record;
pub mod run;
pub mod sandbox;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::crypto::Manifest;
use crate::layout::BlockMeta;
use crate::store::ChunkStore;
use crate::units::ByteSize;

pub use loader::{CacheConfig, InjectedLatency, LoadError, Loader, LoaderStats, RemoteTier};
pub use prefetch::{AUTO_CHUNKS_PER_WORKER, auto_read_ahead_chunks, default_workers};
pub use record::Recorder;
pub use run::{Mountable, OutputGuard, Signals, trace_header};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("cache directory: cannot {op} {}: {source}", path.display())]
    CacheIo {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cache directory {} is in use by another mount (one mount per cache directory)", path.display())]
    CacheBusy { path: PathBuf },
    #[error("cannot mount at {}: {source}", path.display())]
    Mount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unmounting {}: {source}", path.display())]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount point {}: {reason}", path.display())]
    MountPoint { path: PathBuf, reason: String },
    #[error(transparent)]
    Layout(#[from] crate::layout::Error),
    #[error("recording: {0}")]
    Record(#[from] crate::trace::Error),
}

/// How to serve a mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub cache: CacheConfig,
    /// Threads serving kernel requests (concurrent reads of different chunks proceed in parallel).
    pub threads: usize,
    /// `fsname` shown in /proc/mounts.
    pub fs_name: String,
    /// Honour the image's set-uid and set-gid bits (`suid`); default `nosuid`.
    pub allow_suid: bool,
    /// Honour the image's device nodes (`dev`); default `nodev`.
    pub allow_devices: bool,
}

/// A live mount. Dropping it unmounts too, but [`Mounted::unmount`] reports errors and counters.
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    /// The FUSE connection's number (the mount's device minor), to abort it if it stays busy.
    connection: Option<u32>,
    options: MountOptions,
    injected: Option<RemoteTier>,
    loader: Arc<Loader>,
    recorder: Option<Arc<Recorder>>,
}

/// What a mount did, for the report printed at unmount, with the configuration it ran under.
#[derive(Debug, Clone, Serialize)]
pub struct MountReport {
    pub mountpoint: PathBuf,
    pub cache_dir: PathBuf,
    pub disk_capacity: ByteSize,
    pub memory_capacity: ByteSize,
    pub disk_policy: String,
    pub threads: usize,
    /// The read-ahead window in effect (the one asked for, capped to half the memory tier).
    pub read_ahead_chunks: u32,
    /// Threads loading chunks ahead.
    pub prefetch_workers: usize,
    /// The tier store fetches were made to feel like (`az`, `s3`), if latency was injected.
    pub injected_latency: Option<RemoteTier>,
    pub seed: u64,
    pub loader: LoaderStats,
    /// Records written to the trace, if recording.
    pub recorded: Option<u64>,
}

/// Mounts the image `manifest` describes (its metadata already read into `meta`) at
/// `mountpoint`, read-only, and serves it from a background thread pool.
pub fn mount(
    meta: BlockMeta,
    manifest: Manifest,
    store: Arc<dyn ChunkStore>,
    mountpoint: &Path,
    options: &MountOptions,
    latency: Option<InjectedLatency>,
    recorder: Option<Arc<Recorder>>,
) -> Result<Mounted, MountError> {
    if !mountpoint.is_dir() {
        return Err(MountError::MountPoint {
            path: mountpoint.to_path_buf(),
            reason: "not an existing directory".into(),
        });
    }
    let injected = latency.as_ref().map(|l| l.remote);
    let loader = Arc::new(Loader::new(manifest, store, &options.cache, latency)?);
    let fs = fs::ImageFs::new(meta, loader.clone(), recorder.clone())?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::FSName(options.fs_name.clone()),
        fuser::MountOption::Subtype("chunkload".into()),
        // An untrusted image's set-uid binaries and device nodes mean nothing on the host
        // unless asked for (`chunkload mount --suid / --dev`).
        if options.allow_devices { fuser::MountOption::Dev } else { fuser::MountOption::NoDev },
        if options.allow_suid { fuser::MountOption::Suid } else { fuser::MountOption::NoSuid },
    ];
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = options.threads > 1;
    let session = fuser::spawn_mount(fs, mountpoint, &config)
        .map_err(|source| MountError::Mount { path: mountpoint.to_path_buf(), source })?;
    let connection = std::fs::metadata(mountpoint).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        libc::minor(m.dev())
    });
    Ok(Mounted {
        session: Some(session),
        mountpoint: mountpoint.to_path_buf(),
        connection,
        options: options.clone(),
        injected,
        loader,
        recorder,
    })
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Whether the session ended on its own (someone ran `fusermount3 -u`, or the kernel aborted).
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    pub fn stats(&self) -> LoaderStats {
        self.loader.stats()
    }

    /// Unmounts, waits for the request threads, and finishes the trace.
    pub fn unmount(mut self) -> Result<MountReport, MountError> {
        let session = self.session.take().expect("mounted");
        let unmounted = if session.guard.is_finished() { session.join() } else { session.umount_and_join() };
        match unmounted {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.detach(),
            Err(source) => return Err(MountError::Unmount { path: self.mountpoint.clone(), source }),
        }
        let recorded = match &self.recorder {
            Some(r) => Some(r.finish()?),
            None => None,
        };
        let c = &self.options.cache;
        Ok(MountReport {
            mountpoint: self.mountpoint.clone(),
            cache_dir: c.dir.clone(),
            disk_capacity: c.disk_capacity,
            memory_capacity: c.memory_capacity,
            disk_policy: self.loader.disk_policy(),
            threads: self.options.threads,
            read_ahead_chunks: self.loader.read_ahead_chunks(),
            prefetch_workers: if c.prefetch_workers == 0 { default_workers() } else { c.prefetch_workers },
            injected_latency: self.injected,
            seed: c.seed,
            loader: self.loader.stats(),
            recorded,
        })
    }
}

impl Mounted {
    /// A busy mount (a process still has a file open or its working directory under it) cannot
    /// be unmounted; since the agent is going away, detach it and abort the FUSE connection, so
    /// that later reads get ENOTCONN instead of hanging.
    fn detach(&self) {
        eprintln!(
            "chunkload mount: {} is busy (files open under it): detaching it and aborting the connection",
            self.mountpoint.display()
        );
        let _ = rustix::mount::unmount(&self.mountpoint, rustix::mount::UnmountFlags::DETACH);
        if let Some(n) = self.connection {
            let _ = std::fs::write(format!("/sys/fs/fuse/connections/{n}/abort"), b"1");
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
        if let Some(r) = &self.recorder {
            let _ = r.finish();
        }
    }
}

impl fmt::Display for MountReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.loader;
        writeln!(f, "unmounted {}", self.mountpoint.display())?;
        let latency = self.injected_latency.map_or("none".to_string(), |t| t.to_string());
        writeln!(
            f,
            "  configuration   cache {} ({} disk, {} memory, {}), {} threads, read-ahead {} chunks on {} workers, injected latency {latency}, seed {}",
            self.cache_dir.display(),
            self.disk_capacity,
            self.memory_capacity,
            self.disk_policy,
            self.threads,
            self.read_ahead_chunks,
            self.prefetch_workers,
            self.seed
        )?;
        writeln!(
            f,
            "  chunk requests  {} ({} memory hits, {} disk hits, {} shared loads)",
            l.requests, l.memory_hits, l.disk_hits, l.shared_loads
        )?;
        writeln!(
            f,
            "  store fetches   {} ({}), {} read ahead",
            l.store_fetches, l.store_bytes, l.read_ahead
        )?;
        writeln!(
            f,
            "  disk cache      {} used, {} evictions, {} rejected files",
            l.disk_used, l.disk.evictions, l.disk_rejects
        )?;
        writeln!(f, "  failed loads    {}", l.failures)?;
        if let Some(n) = self.recorded {
            writeln!(f, "  trace records   {n}")?;
        }
        Ok(())
    }
}
