//! `store copy-forward`: re-encrypts the manifests of old roots under the active root.
//!
//! For each manifest on a retired or expired root that one of the given customer keys opens:
//! every chunk is read, checked against its name and length, decrypted and checked against the
//! plaintext digest, encrypted under the active root's salt (the manifest's placement and class
//! kept) and uploaded if absent; the chunk names are flushed; only then is the new manifest,
//! sealed under the same customer key, renamed over the old one. A manifest in the store thus
//! always names chunks that are durable, whenever the process stops; the manifest itself is the
//! progress mark (once it names the active root it is skipped), so a rerun resumes where an
//! interrupted run stopped. Runs under the store lock, shared, like `convert`.

use rayon::prelude::*;
use serde::Serialize;

use super::crash::crash_point;
use super::roots::{RootState, RootTable, manifest_views};
use super::{ChunkStore, DirStore, Error, ManifestName, Result};
use crate::crypto::{self, CustomerKey, Manifest};

/// One manifest copy-forward moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub manifest: String,
    pub from_root: u32,
    pub salt: String,
    pub chunks: u64,
    /// Chunks this run uploaded (the rest were already under the active root).
    pub chunks_new: u64,
    /// Ciphertext bytes uploaded.
    pub bytes_written: u64,
}

/// What copy-forward did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyForwardReport {
    pub to_root: u32,
    pub moved: Vec<Moved>,
    /// Manifests on old roots that none of the given keys opens: left where they are.
    pub skipped_no_key: Vec<String>,
    /// Manifests left where they are because a chunk of theirs is missing or damaged, with why.
    pub failed: Vec<(String, String)>,
    /// Manifests already on the active root.
    pub already_current: u64,
}

impl CopyForwardReport {
    pub fn bytes_written(&self) -> u64 {
        self.moved.iter().map(|m| m.bytes_written).sum()
    }

    /// Whether every manifest of an old root was moved.
    pub fn complete(&self) -> bool {
        self.skipped_no_key.is_empty() && self.failed.is_empty()
    }
}

/// Moves every manifest of a retired or expired root (or only of `from`) to the active root.
pub fn copy_forward(store: &DirStore, keys: &[CustomerKey], from: Option<u32>) -> Result<CopyForwardReport> {
    let _lock = store.lock_shared()?;
    let table = RootTable::load(store)?;
    let to = table.active();
    if let Some(root) = from {
        match table.state(root) {
            None => return Err(Error::UnknownRoot(root)),
            Some(RootState::Retired | RootState::Expired) => {}
            Some(s) => {
                return Err(Error::RootState {
                    root,
                    state: s.as_str(),
                    op: "copy forward from",
                    hint: "only retired and expired roots are copied forward",
                });
            }
        }
    }
    let mut report = CopyForwardReport { to_root: to, ..CopyForwardReport::default() };
    for (name, view) in manifest_views(store)? {
        // Unreadable manifests are `verify`'s to report; nothing here can move them.
        let Ok(public) = view else { continue };
        let root = public.header.salt.root();
        if root == to {
            report.already_current += 1;
            continue;
        }
        let movable = matches!(table.state(root), Some(RootState::Retired | RootState::Expired));
        if !movable || from.is_some_and(|f| f != root) {
            continue;
        }
        let sealed = store.get_manifest(&name)?;
        let Some((key, manifest)) = keys.iter().find_map(|k| Manifest::open(&sealed, k).ok().map(|m| (k, m)))
        else {
            report.skipped_no_key.push(name.to_string());
            continue;
        };
        match move_one(store, &name, key, &manifest, to)? {
            Ok(moved) => report.moved.push(moved),
            Err(why) => report.failed.push((name.to_string(), why)),
        }
    }
    Ok(report)
}

/// One chunk re-encrypted under the new salt and put into the store.
struct Recrypted {
    index: u32,
    sealed: crypto::SealedChunk,
    /// Whether this put uploaded it.
    new: bool,
    len: u64,
}

/// Re-encrypts one manifest. The outer error is the store failing (stop); the inner one a chunk
/// of this manifest that cannot be moved (skip it, report it).
fn move_one(
    store: &DirStore,
    name: &ManifestName,
    key: &CustomerKey,
    manifest: &Manifest,
    to: u32,
) -> Result<Result<Moved, String>> {
    let header = manifest.header();
    let salt = header.salt.moved_to_root(to).map_err(Error::Salt)?;
    let entries: Vec<_> = manifest.chunks().collect();
    let results: Vec<Result<Result<Recrypted, String>>> = entries
        .par_iter()
        .map(|(entry, chunk_key)| {
            let mut buf = match store.get(&entry.name) {
                Ok(b) => b,
                Err(Error::ChunkNotFound(n)) => {
                    return Ok(Err(format!("chunk {} ({n}) is missing", entry.index)));
                }
                Err(e) => return Err(e),
            };
            let want = header.chunk_len(entry.index);
            if buf.len() as u64 != want {
                return Ok(Err(format!(
                    "chunk {} ({}) is {} bytes, expected {want}",
                    entry.index,
                    entry.name,
                    buf.len()
                )));
            }
            if let Err(e) = crypto::open_chunk(&entry.name, chunk_key, &entry.plain, &mut buf) {
                return Ok(Err(format!("chunk {}: {e}", entry.index)));
            }
            let sealed = crypto::encrypt_chunk(&salt, &mut buf);
            let new = store.put_if_absent(&sealed.name, &buf)?;
            Ok(Ok(Recrypted { index: entry.index, sealed, new, len: buf.len() as u64 }))
        })
        .collect();
    let mut builder = Manifest::builder(crypto::ManifestHeader { salt: salt.clone(), ..header.clone() });
    let (mut chunks_new, mut bytes_written) = (0, 0);
    for r in results {
        match r? {
            Ok(Recrypted { index, sealed, new, len }) => {
                if new {
                    chunks_new += 1;
                    bytes_written += len;
                }
                builder.push(index, sealed);
            }
            Err(why) => return Ok(Err(why)),
        }
    }
    let moved = builder.finish().map_err(|source| Error::Manifest { name: name.to_string(), source })?;
    // The chunks' names are durable before the manifest that names them replaces the old one.
    store.flush()?;
    store.put_manifest(name, &moved.seal(key))?;
    crash_point("copy-forward-manifest");
    Ok(Ok(Moved {
        manifest: name.to_string(),
        from_root: header.salt.root(),
        salt: salt.label().to_string(),
        chunks: entries.len() as u64,
        chunks_new,
        bytes_written,
    }))
}
