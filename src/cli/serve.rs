//! Flags shared by the commands that serve a mount (`mount`, `trace record`): how the agent
//! serves it, and opening a manifest for mounting.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;

use chunkload::cache::PolicyKind;
use chunkload::mount::{self, CacheConfig, InjectedLatency, MountOptions, Mountable, RemoteTier};
use chunkload::replay::Scenario;
use chunkload::units::ByteSize;

use super::ManifestFlags;

/// How the agent serves a mount: its worker cache, threads and injected latency.
#[derive(Debug, Clone, Args)]
pub struct ServeFlags {
    /// Directory of the local-disk chunk cache (kept across mounts; default: a fresh directory
    /// under the temp dir, removed at unmount).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Bytes the disk cache may hold (default: the scenario's l1.disk_capacity).
    #[arg(long)]
    cache_size: Option<ByteSize>,
    /// Bytes of decrypted recent chunks kept in memory (default: the scenario's l1.memory_capacity).
    #[arg(long)]
    memory_size: Option<ByteSize>,
    /// Eviction policy of the disk cache (default: the scenario's l1.policy).
    #[arg(long)]
    policy: Option<PolicyKind>,
    /// While a file is read sequentially, keep its next N chunks loading on the prefetch workers
    /// (the model's fetch.read_ahead_chunks; 0 = off). Default `auto`: the scenario's value if it
    /// sets one, else 4 per prefetch worker.
    #[arg(long, value_name = "N|auto")]
    read_ahead_chunks: Option<ReadAhead>,
    /// Threads loading chunks ahead (default: two per core).
    #[arg(long, value_name = "N")]
    prefetch_workers: Option<u16>,
    /// Threads serving kernel requests.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Sleep like a worker would: a disk-cache hit waits l1.disk_hit, a store fetch waits an AZ
    /// cache stripe read (`az`) or an S3 GET (`s3`), drawn from the scenario's latency model.
    #[arg(long, value_name = "TIER")]
    inject_latency: Option<RemoteTier>,
    /// Scenario file (TOML) for cache defaults, latencies and the seed. Default: built-in.
    #[arg(long)]
    scenario: Option<PathBuf>,
}

/// `--read-ahead-chunks`: a number of chunks, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadAhead {
    Auto,
    Chunks(u32),
}

impl std::str::FromStr for ReadAhead {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ReadAhead::Auto),
            _ => s
                .parse()
                .map(ReadAhead::Chunks)
                .map_err(|_| format!("{s:?} is neither a number of chunks nor `auto`")),
        }
    }
}

impl ManifestFlags {
    /// Opens the manifest and reads the block image's metadata (checked against the superblock).
    pub fn open_for_mount(&self) -> Result<Mountable> {
        let store = self.open_store()?;
        let opened = self.opened(&store, None).context("reading the image's metadata")?;
        let label = opened.manifest.header().source.clone();
        Ok(opened.into_mountable(Arc::new(store), label))
    }
}

/// A cache directory made for one mount, removed when dropped.
pub struct TempCacheDir(PathBuf);

impl Drop for TempCacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl ServeFlags {
    /// The mount options these flags ask for, for the image `label`; the returned guard removes
    /// a default cache directory when dropped.
    pub fn options(
        &self,
        label: &str,
        allow_suid: bool,
        allow_devices: bool,
    ) -> Result<(MountOptions, Option<InjectedLatency>, Option<TempCacheDir>)> {
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        let sc = match &self.scenario {
            Some(p) => Scenario::from_toml(
                &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
            )?,
            None => Scenario::default(),
        };
        let (dir, temp) = match &self.cache_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!("chunkload-cache-{}", std::process::id()));
                (d.clone(), Some(TempCacheDir(d)))
            }
        };
        let workers = match self.prefetch_workers {
            Some(0) => bail!("--prefetch-workers must be at least 1"),
            Some(n) => usize::from(n),
            None => mount::default_workers(),
        };
        let cache = CacheConfig {
            dir,
            disk_capacity: self.cache_size.unwrap_or(sc.l1.disk_capacity),
            memory_capacity: self.memory_size.unwrap_or(sc.l1.memory_capacity),
            policy: self.policy.unwrap_or(sc.l1.policy),
            seed: sc.seed,
            read_ahead_chunks: match self.read_ahead_chunks.unwrap_or(ReadAhead::Auto) {
                ReadAhead::Chunks(n) => n,
                ReadAhead::Auto if sc.fetch.read_ahead_chunks > 0 => sc.fetch.read_ahead_chunks,
                ReadAhead::Auto => mount::auto_read_ahead_chunks(workers),
            },
            prefetch_workers: workers,
        };
        let latency = self.inject_latency.map(|remote| {
            InjectedLatency::new(sc.l1.disk_hit, sc.latency.az_stripe, sc.latency.s3_get, remote, sc.seed)
        });
        let options = MountOptions {
            cache,
            threads: self.threads,
            fs_name: format!("chunkload:{}", label.replace([',', ' '], "_")),
            allow_suid,
            allow_devices,
        };
        Ok((options, latency, temp))
    }
}
