//! `store gc`: removes what crashed writers left in `tmp/` and, on request, the chunks no manifest
//! of a live root references.
//!
//! Safety rests on the store lock (`ROOT/lock`, see [`DirStore::lock_exclusive`]): every writer
//! holds it shared from before it first looks for a chunk until its manifest is published, and gc
//! holds it exclusively for its whole run. So while gc runs no writer is running: every file in
//! `tmp/` belongs to a dead writer, and every chunk a finished manifest needs is named by a
//! manifest already in `manifests/`. A writer that starts after gc sees the store as gc left it
//! and uploads whatever it lacks.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use super::dir::io_err;
use super::roots::{RootTable, manifest_views};
use super::{DirStore, Result};
use crate::crypto::ChunkName;

#[derive(Clone, Copy, Debug, Default)]
pub struct GcOptions {
    /// Also remove chunks that no manifest of a live (not deleted) root references.
    pub unreferenced: bool,
    /// Report what would be removed; remove nothing.
    pub dry_run: bool,
}

/// What gc removed (or, dry, would remove).
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Temporary files (path, bytes).
    pub temp_files: Vec<(String, u64)>,
    /// Unreferenced chunks (name, bytes).
    pub chunks: Vec<(String, u64)>,
    /// Chunks kept because a live manifest references them.
    pub chunks_kept: u64,
}

impl GcReport {
    pub fn bytes_freed(&self) -> u64 {
        self.temp_files.iter().chain(&self.chunks).map(|(_, b)| b).sum()
    }
}

/// Runs gc. Waits for running writers to finish first.
pub fn gc(store: &DirStore, options: GcOptions) -> Result<GcReport> {
    let _lock = store.lock_exclusive()?;
    let mut report = GcReport { dry_run: options.dry_run, ..GcReport::default() };
    for (path, len) in store.temp_files()? {
        if !options.dry_run {
            let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            removed.map_err(io_err("remove temporary file", &path))?;
        }
        report.temp_files.push((path.display().to_string(), len));
    }
    if options.unreferenced {
        let table = RootTable::load(store)?;
        let mut live: BTreeSet<ChunkName> = BTreeSet::new();
        for (_, view) in manifest_views(store)? {
            // An unreadable manifest may reference anything: collecting around it could lose chunks.
            let m = view?;
            if table.state(m.header.salt.root()).is_some_and(|s| s.is_live()) {
                live.extend(m.chunks.iter().map(|c| c.name));
            }
        }
        // A chunk file gc cannot name (a stray file) is left alone: `verify` reports it.
        let mut emptied = BTreeSet::new();
        for f in store.chunk_files()? {
            let Some(name) = f.name else { continue };
            if live.contains(&name) {
                report.chunks_kept += 1;
                continue;
            }
            if !options.dry_run {
                fs::remove_file(&f.path).map_err(io_err("remove chunk", &f.path))?;
                emptied.extend(f.path.parent().map(PathBuf::from));
            }
            report.chunks.push((name.to_hex(), f.len));
        }
        // Make the removals durable; a crash before this only means some may come back, and a
        // later gc removes them again.
        for dir in emptied {
            fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", &dir))?;
        }
    }
    if !options.dry_run && !report.temp_files.is_empty() {
        let tmp = store.scratch_dir();
        fs::File::open(&tmp).and_then(|d| d.sync_all()).map_err(io_err("sync directory", &tmp))?;
    }
    Ok(report)
}
