//! Generational roots: the garbage-collection unit of the store, as in the paper.
//!
//! Every manifest belongs to the root its salt names ([`Salt::root`]); chunks under two roots
//! never deduplicate, so a root's chunks can be reclaimed without looking at any other root's. A
//! root moves through four states, each recorded in `ROOT/roots/N` (one line: the state),
//! written atomically (temporary file, sync, rename, directory sync):
//!
//! - **active**: new conversions use it. Exactly one; with no `roots/` files at all, root 0 is
//!   active (a store from before roots existed: its salts, e.g. `default`, belong to root 0).
//! - **retired**: read-only; `copy-forward` moves its manifests to the active root.
//! - **expired**: reads still work but `verify` and `roots` report every manifest left on it.
//! - **deleted**: refused while any manifest still belongs to it; its chunks are then referenced
//!   by nothing and `gc --unreferenced` reclaims them.
//!
//! `rotate` writes the new active root's file before it retires the old one. If it is interrupted
//! between the two, two files say "active"; [`RootTable::load`] takes the highest as active and the
//! other as retired, and the next state change writes that down.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::dir::io_err;
use super::{ChunkStore, DirStore, Error, ManifestName, Result};
use crate::crypto::{ChunkName, ManifestPublic, PlainDigest, Salt};

/// Where a root is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootState {
    Active,
    Retired,
    Expired,
    Deleted,
}

impl RootState {
    pub fn as_str(self) -> &'static str {
        match self {
            RootState::Active => "active",
            RootState::Retired => "retired",
            RootState::Expired => "expired",
            RootState::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => RootState::Active,
            "retired" => RootState::Retired,
            "expired" => RootState::Expired,
            "deleted" => RootState::Deleted,
            _ => return None,
        })
    }

    /// Whether manifests of a root in this state keep their chunks alive.
    pub fn is_live(self) -> bool {
        self != RootState::Deleted
    }
}

impl fmt::Display for RootState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roots of a store and their states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootTable {
    states: BTreeMap<u32, RootState>,
}

fn roots_dir(store: &DirStore) -> PathBuf {
    store.root().join("roots")
}

impl RootTable {
    /// Reads `ROOT/roots/`. No directory or no files: root 0, active.
    pub fn load(store: &DirStore) -> Result<Self> {
        let dir = roots_dir(store);
        let mut states = BTreeMap::new();
        if dir.is_dir() {
            for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
                let path = entry.map_err(io_err("list", &dir))?.path();
                let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok())
                else {
                    continue; // not a root file (e.g. an editor's backup): ignored, as documented
                };
                let text = fs::read_to_string(&path).map_err(io_err("read root file", &path))?;
                let state = RootState::parse(text.trim()).ok_or_else(|| Error::RootFile {
                    path: path.clone(),
                    reason: format!("{:?} is not one of active, retired, expired, deleted", text.trim()),
                })?;
                states.insert(id, state);
            }
        }
        if states.is_empty() {
            states.insert(0, RootState::Active);
        }
        // An interrupted rotate leaves two active roots: the newest is the active one.
        let newest_active = states.iter().rev().find(|(_, s)| **s == RootState::Active).map(|(id, _)| *id);
        for (id, state) in states.iter_mut() {
            if *state == RootState::Active && Some(*id) != newest_active {
                *state = RootState::Retired;
            }
        }
        Ok(RootTable { states })
    }

    /// The active root: the one new manifests go to.
    pub fn active(&self) -> u32 {
        self.states.iter().rev().find(|(_, s)| **s == RootState::Active).map_or(0, |(id, _)| *id)
    }

    pub fn state(&self, root: u32) -> Option<RootState> {
        self.states.get(&root).copied()
    }

    /// All roots, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u32, RootState)> + '_ {
        self.states.iter().map(|(id, s)| (*id, *s))
    }

    /// The salt a new conversion gets: the active root's, with optional placement and class.
    pub fn salt_for_new(&self, placement: Option<&str>, class: Option<&str>) -> Result<Salt> {
        Salt::for_root(self.active(), placement, class).map_err(Error::Salt)
    }

    /// Refuses a salt for a new manifest unless it belongs to the active root.
    pub fn check_writable(&self, salt: &Salt) -> Result<()> {
        let root = salt.root();
        match self.state(root) {
            Some(RootState::Active) => Ok(()),
            Some(state) => Err(Error::NotActive {
                label: salt.label().to_string(),
                root,
                state: state.as_str(),
                active: self.active(),
            }),
            None => Err(Error::UnknownRoot(root)),
        }
    }
}

/// Writes `roots/N` atomically: a synced temporary file in `tmp/`, renamed, then the directory
/// synced.
fn write_root(store: &DirStore, root: u32, state: RootState) -> Result<()> {
    let dir = roots_dir(store);
    fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
    let path = dir.join(root.to_string());
    let tmp = store.scratch_dir().join(format!("root-{root}.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{state}")?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("write root file", &path)(e)
    })
}

/// Every manifest in the store with its keyless view (or why it cannot be read).
pub type ManifestViews = Vec<(ManifestName, Result<ManifestPublic>)>;

/// Reads every manifest of the store without keys.
pub fn manifest_views(store: &DirStore) -> Result<ManifestViews> {
    let mut out = Vec::new();
    for name in store.list_manifests()? {
        let view = store.get_manifest(&name).and_then(|bytes| {
            ManifestPublic::parse(&bytes).map_err(|source| Error::Manifest { name: name.to_string(), source })
        });
        out.push((name, view));
    }
    Ok(out)
}

/// A root in `store roots`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RootSummary {
    pub root: u32,
    pub state: RootState,
    pub manifests: usize,
    /// Distinct chunks its manifests reference.
    pub chunks: u64,
    /// Ciphertext bytes of those chunks (what the root costs in storage).
    pub bytes: u64,
    /// Manifests still on this root while it is expired or deleted (an alarm).
    pub alarms: Vec<String>,
}

/// What `store roots` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RootsReport {
    pub active: u32,
    pub roots: Vec<RootSummary>,
    /// Manifests that could not be parsed, by name, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Chunk files on disk and their bytes.
    pub chunk_files: u64,
    pub chunk_bytes: u64,
    /// What rotating now would cost: copy-forward re-encrypts and uploads every distinct
    /// plaintext chunk (per placement and class) of every live root's manifests, and until the
    /// old roots are deleted the store holds both copies.
    pub rotation_reupload_chunks: u64,
    pub rotation_reupload_bytes: u64,
}

/// Lists the roots with their manifests, chunks and bytes (from the manifests, keyless).
pub fn summarize(store: &DirStore) -> Result<RootsReport> {
    let table = RootTable::load(store)?;
    /// Per root: manifests, distinct chunks with their lengths, manifests on a dead root.
    type Tally = (usize, BTreeMap<ChunkName, u64>, Vec<String>);
    let mut per_root: BTreeMap<u32, Tally> = table.iter().map(|(id, _)| (id, Default::default())).collect();
    let mut unreadable = Vec::new();
    // What the next root would hold: the same plaintext under the same placement and class is one
    // chunk there, whichever root it comes from (the plaintext digests are in clear text).
    let mut next_root: BTreeMap<(String, PlainDigest), u64> = BTreeMap::new();
    for (name, view) in manifest_views(store)? {
        let m = match view {
            Ok(m) => m,
            Err(e) => {
                unreadable.push((name.to_string(), e.to_string()));
                continue;
            }
        };
        let root = m.header.salt.root();
        let entry = per_root.entry(root).or_default();
        entry.0 += 1;
        for c in &m.chunks {
            entry.1.insert(c.name, m.header.chunk_len(c.index));
        }
        if !matches!(table.state(root), Some(RootState::Active | RootState::Retired)) {
            entry.2.push(name.to_string());
        }
        if table.state(root).is_some_and(RootState::is_live) {
            let scope = m.header.salt.moved_to_root(0).map_err(Error::Salt)?.label().to_string();
            for c in &m.chunks {
                next_root.insert((scope.clone(), c.plain), m.header.chunk_len(c.index));
            }
        }
    }
    let roots = per_root
        .into_iter()
        .map(|(root, (manifests, chunks, alarms))| RootSummary {
            root,
            // A manifest naming a root with no file: reported as deleted (nothing keeps it alive).
            state: table.state(root).unwrap_or(RootState::Deleted),
            manifests,
            chunks: chunks.len() as u64,
            bytes: chunks.values().sum(),
            alarms,
        })
        .collect();
    let files = store.chunk_files()?;
    Ok(RootsReport {
        active: table.active(),
        roots,
        unreadable,
        chunk_files: files.len() as u64,
        chunk_bytes: files.iter().map(|f| f.len).sum(),
        rotation_reupload_chunks: next_root.len() as u64,
        rotation_reupload_bytes: next_root.values().sum(),
    })
}

/// Starts a new active root and retires the old one. Returns (old, new).
pub fn rotate(store: &DirStore) -> Result<(u32, u32)> {
    let _lock = store.lock_exclusive()?;
    let table = RootTable::load(store)?;
    let old = table.active();
    let new = table.iter().map(|(id, _)| id).max().unwrap_or(0) + 1;
    write_root(store, new, RootState::Active)?;
    write_root(store, old, RootState::Retired)?;
    Ok((old, new))
}

/// Moves a retired root to expired (idempotent for an expired one).
pub fn expire(store: &DirStore, root: u32) -> Result<()> {
    let _lock = store.lock_exclusive()?;
    let table = RootTable::load(store)?;
    match table.state(root) {
        None => Err(Error::UnknownRoot(root)),
        Some(RootState::Retired) => write_root(store, root, RootState::Expired),
        Some(RootState::Expired) => Ok(()),
        Some(s @ RootState::Active) => {
            Err(Error::RootState { root, state: s.as_str(), op: "expire", hint: "rotate first" })
        }
        Some(s @ RootState::Deleted) => {
            Err(Error::RootState { root, state: s.as_str(), op: "expire", hint: "it is gone" })
        }
    }
}

/// Moves an expired root to deleted, refusing while any manifest belongs to it (idempotent for a
/// deleted one). Its chunks are then reclaimed by `gc --unreferenced`.
pub fn delete(store: &DirStore, root: u32) -> Result<()> {
    let _lock = store.lock_exclusive()?;
    let table = RootTable::load(store)?;
    match table.state(root) {
        None => return Err(Error::UnknownRoot(root)),
        Some(RootState::Expired) => {}
        Some(RootState::Deleted) => return Ok(()),
        Some(s) => {
            return Err(Error::RootState {
                root,
                state: s.as_str(),
                op: "delete",
                hint: "only an expired root can be deleted",
            });
        }
    }
    let alarm = alarm_file(store.root(), root);
    if alarm.exists() {
        return Err(Error::RootAlarm { root, alarm });
    }
    let mut using = Vec::new();
    for (name, view) in manifest_views(store)? {
        // A manifest that cannot be read might belong to this root: refuse rather than guess.
        match view {
            Ok(m) if m.header.salt.root() != root => {}
            _ => using.push(name.to_string()),
        }
    }
    if let Some(example) = using.first() {
        return Err(Error::RootInUse { root, count: using.len(), example: example.clone() });
    }
    write_root(store, root, RootState::Deleted)
}

/// A read of a manifest whose root has expired: it works, and raises the alarm (the paper: reads of
/// an expired root still work but raise an alarm and stop its deletion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredRead {
    pub root: u32,
    /// `ROOT/roots/N.alarm`: while it exists, `delete` refuses the root.
    pub alarm: PathBuf,
    /// Whether the alarm file could be written (a read-only store cannot record it).
    pub recorded: bool,
}

impl fmt::Display for ExpiredRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this manifest belongs to root {}, which has expired: its chunks are still read, but ",
            self.root
        )?;
        if self.recorded {
            write!(
                f,
                "the read is recorded in {} and stops `store delete {}`",
                self.alarm.display(),
                self.root
            )
        } else {
            write!(f, "the alarm could not be recorded in {} (read-only store?)", self.alarm.display())
        }
    }
}

/// Checks the root of a manifest about to be read from `store`: for an expired root, records the
/// alarm (once; later reads find it there) and says so. Reads of any other root return `None`.
pub fn note_read(store: &DirStore, salt: &Salt) -> Result<Option<ExpiredRead>> {
    let root = salt.root();
    if RootTable::load(store)?.state(root) != Some(RootState::Expired) {
        return Ok(None);
    }
    let alarm = alarm_file(store.root(), root);
    let recorded = alarm.exists()
        || fs::write(&alarm, format!("a manifest of root {root} was read after the root expired\n")).is_ok();
    Ok(Some(ExpiredRead { root, alarm, recorded }))
}

/// Path of a root's alarm file: present once a manifest of the expired root was read.
pub fn alarm_file(store_root: &Path, root: u32) -> PathBuf {
    store_root.join("roots").join(format!("{root}.alarm"))
}

/// Path of a root's state file, for documentation and tests.
pub fn root_file(store_root: &Path, root: u32) -> PathBuf {
    store_root.join("roots").join(root.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_moves_in_order_and_an_interrupted_rotate_reads_as_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).unwrap().with_sync(false);
        assert_eq!(RootTable::load(&store).unwrap().active(), 0);
        assert_eq!(rotate(&store).unwrap(), (0, 1));
        let t = RootTable::load(&store).unwrap();
        assert_eq!(t.iter().collect::<Vec<_>>(), [(0, RootState::Retired), (1, RootState::Active)]);
        assert!(matches!(delete(&store, 0), Err(Error::RootState { op: "delete", .. })));
        assert!(matches!(expire(&store, 1), Err(Error::RootState { state: "active", .. })));
        assert!(matches!(expire(&store, 9), Err(Error::UnknownRoot(9))));
        expire(&store, 0).unwrap();
        expire(&store, 0).unwrap();
        delete(&store, 0).unwrap();
        delete(&store, 0).unwrap();
        assert_eq!(RootTable::load(&store).unwrap().state(0), Some(RootState::Deleted));
        // Rotate stopped after writing the new root: both files say active.
        write_root(&store, 2, RootState::Active).unwrap();
        let t = RootTable::load(&store).unwrap();
        assert_eq!((t.active(), t.state(1)), (2, Some(RootState::Retired)));
        assert!(t.check_writable(&Salt::new("root-2/at-x").unwrap()).is_ok());
        let e = t.check_writable(&Salt::new("root-1").unwrap()).unwrap_err().to_string();
        assert!(e.contains("root 1, which is retired"), "{e}");
        fs::write(root_file(dir.path(), 3), "sleeping\n").unwrap();
        assert!(RootTable::load(&store).unwrap_err().to_string().contains("\"sleeping\""));
    }
}
