//! `store verify`: checks a store without materializing any image.
//!
//! - every file under `chunks/` hashes to the name its path spells (and sits where that name goes);
//! - every manifest parses, and every chunk it lists is present with the right length;
//! - with keys (`--deep`), every chunk of every manifest those keys open decrypts to the plaintext
//!   digest the manifest records;
//! - manifests of expired or deleted roots are reported.
//!
//! Files in `tmp/` are listed apart: they are what a crashed (or a running) writer leaves, not
//! damage, and `gc` removes them. Chunks run in parallel on rayon's pool.

use std::collections::BTreeMap;
use std::fs;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;

use super::roots::{RootState, RootTable, manifest_views};
use super::{ChunkStore, DirStore, Result};
use crate::crypto::{self, ChunkName, CustomerKey, Manifest};

/// One thing wrong with a store, named.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// A chunk file whose ciphertext hashes to another name.
    ChunkCorrupt { chunk: String, actual: String },
    /// A file under `chunks/` that is not a chunk where its name says.
    StrayFile { path: String },
    /// A chunk file that could not be read.
    ChunkUnreadable { chunk: String, reason: String },
    /// A manifest that does not parse.
    ManifestUnreadable { manifest: String, reason: String },
    /// A chunk a manifest lists that the store does not have.
    ChunkMissing { manifest: String, index: u32, chunk: String },
    /// A chunk a manifest lists whose file has the wrong length.
    ChunkWrongLength { manifest: String, index: u32, chunk: String, expected: u64, found: u64 },
    /// `--deep`: a chunk that does not decrypt to the recorded plaintext digest.
    PlaintextMismatch { manifest: String, index: u32, chunk: String },
    /// A manifest on a root that is expired (reads still work: an alarm) or deleted.
    ManifestOnDeadRoot { manifest: String, root: u32, state: RootState },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::ChunkCorrupt { chunk, actual } => {
                write!(f, "chunk {chunk}: ciphertext hashes to {actual} (corrupt)")
            }
            Problem::StrayFile { path } => write!(f, "{path}: not a chunk file where its name belongs"),
            Problem::ChunkUnreadable { chunk, reason } => write!(f, "chunk {chunk}: cannot read: {reason}"),
            Problem::ManifestUnreadable { manifest, reason } => write!(f, "manifest {manifest}: {reason}"),
            Problem::ChunkMissing { manifest, index, chunk } => {
                write!(f, "manifest {manifest}: chunk {index} ({chunk}) is missing")
            }
            Problem::ChunkWrongLength { manifest, index, chunk, expected, found } => write!(
                f,
                "manifest {manifest}: chunk {index} ({chunk}) is {found} bytes, expected {expected}"
            ),
            Problem::PlaintextMismatch { manifest, index, chunk } => write!(
                f,
                "manifest {manifest}: chunk {index} ({chunk}) does not decrypt to its recorded plaintext"
            ),
            Problem::ManifestOnDeadRoot { manifest, root, state } => {
                write!(f, "manifest {manifest}: belongs to root {root}, which is {state}")
            }
        }
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub chunks_checked: u64,
    pub chunk_bytes_checked: u64,
    pub manifests_checked: u64,
    pub chunk_refs_checked: u64,
    /// `--deep`: chunks decrypted and checked.
    pub chunks_opened: u64,
    /// `--deep`: manifests none of the given keys opens (not checked deeply; not an error).
    pub manifests_without_key: Vec<String>,
    /// Files in `tmp/` (path, bytes): left by crashed or running writers; `gc` removes them.
    pub temp_files: Vec<(String, u64)>,
    /// Everything wrong, sorted.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the store. `keys` non-empty makes the check deep. `progress` counts chunk files, then
/// (deep) chunks opened; its length is set here.
pub fn verify(store: &DirStore, keys: &[CustomerKey], progress: &ProgressBar) -> Result<VerifyReport> {
    // Shared, like a writer: a gc cannot remove chunks under the check (writers may still run,
    // and what they have not finished is a temporary file or a chunk no manifest names yet).
    let _lock = store.lock_shared()?;
    let mut report = VerifyReport::default();
    let files = store.chunk_files()?;
    let views = manifest_views(store)?;
    let table = RootTable::load(store)?;

    // Deep: open each manifest with whichever key authenticates it.
    let mut opened: Vec<(String, Manifest)> = Vec::new();
    if !keys.is_empty() {
        for (name, view) in &views {
            if view.is_err() {
                continue;
            }
            let bytes = store.get_manifest(name)?;
            match keys.iter().find_map(|k| Manifest::open(&bytes, k).ok()) {
                Some(m) => opened.push((name.to_string(), m)),
                None => report.manifests_without_key.push(name.to_string()),
            }
        }
    }
    let deep_total: u64 = opened.iter().map(|(_, m)| m.len() as u64).sum();
    progress.set_length(files.len() as u64 + deep_total);

    let mut problems: Vec<Problem> = files
        .par_iter()
        .filter_map(|f| {
            let out = match f.name {
                None => Some(Problem::StrayFile { path: f.path.display().to_string() }),
                Some(name) => match fs::read(&f.path) {
                    Ok(bytes) => {
                        let actual = ChunkName::of_ciphertext(&bytes);
                        (actual != name)
                            .then(|| Problem::ChunkCorrupt { chunk: name.to_hex(), actual: actual.to_hex() })
                    }
                    Err(e) => Some(Problem::ChunkUnreadable { chunk: name.to_hex(), reason: e.to_string() }),
                },
            };
            progress.inc(1);
            out
        })
        .collect();
    report.chunks_checked = files.len() as u64;
    report.chunk_bytes_checked = files.iter().map(|f| f.len).sum();

    let lengths: BTreeMap<ChunkName, u64> = files.iter().filter_map(|f| Some((f.name?, f.len))).collect();
    for (name, view) in &views {
        report.manifests_checked += 1;
        let m = match view {
            Ok(m) => m,
            Err(e) => {
                problems
                    .push(Problem::ManifestUnreadable { manifest: name.to_string(), reason: e.to_string() });
                continue;
            }
        };
        let root = m.header.salt.root();
        match table.state(root) {
            Some(RootState::Active | RootState::Retired) => {}
            state => problems.push(Problem::ManifestOnDeadRoot {
                manifest: name.to_string(),
                root,
                state: state.unwrap_or(RootState::Deleted),
            }),
        }
        for c in &m.chunks {
            report.chunk_refs_checked += 1;
            let expected = m.header.chunk_len(c.index);
            match lengths.get(&c.name) {
                None => problems.push(Problem::ChunkMissing {
                    manifest: name.to_string(),
                    index: c.index,
                    chunk: c.name.to_hex(),
                }),
                Some(&found) if found != expected => problems.push(Problem::ChunkWrongLength {
                    manifest: name.to_string(),
                    index: c.index,
                    chunk: c.name.to_hex(),
                    expected,
                    found,
                }),
                Some(_) => {}
            }
        }
    }

    for (name, m) in &opened {
        let deep: Vec<Problem> = m
            .chunks()
            .collect::<Vec<_>>()
            .par_iter()
            .filter_map(|(entry, key)| {
                progress.inc(1);
                // Missing and short chunks are reported above; only present, whole ones are opened.
                let mut buf = store.get(&entry.name).ok()?;
                match crypto::open_chunk(&entry.name, key, &entry.plain, &mut buf) {
                    Err(crypto::Error::PlaintextMismatch { .. }) => Some(Problem::PlaintextMismatch {
                        manifest: name.clone(),
                        index: entry.index,
                        chunk: entry.name.to_hex(),
                    }),
                    // A name mismatch is the corrupt chunk file, reported above.
                    _ => None,
                }
            })
            .collect();
        report.chunks_opened += m.len() as u64;
        problems.extend(deep);
    }

    report.temp_files =
        store.temp_files()?.into_iter().map(|(p, len)| (p.display().to_string(), len)).collect();
    problems.sort();
    problems.dedup();
    report.problems = problems;
    progress.finish_and_clear();
    Ok(report)
}
