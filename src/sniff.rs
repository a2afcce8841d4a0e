//! Recognising a file's kind from its first bytes, before any parser sees it: an OCI image
//! (layout directory or tar archive), a sealed manifest, a customer key, a trace, strace output,
//! a replay or fleet scenario, a chunk store. Given the wrong kind, a command says what the file
//! looks like and which command or flag takes it, instead of passing a parser's complaint about
//! bytes it was never meant to read.
//!
//! A sniff reads at most [`SNIFF_BYTES`] of a file (and, for a directory, checks a few names),
//! so it is cheap on any input; it never decides that a file is valid, only what it is not.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::crypto::MANIFEST_MAGIC;

/// How much of a file a sniff reads.
pub const SNIFF_BYTES: usize = 64 << 10;

/// What a path looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory with `oci-layout` or `index.json`.
    OciLayout,
    /// A tar archive (an OCI or docker archive, or some other tar).
    Tar,
    /// gzip-compressed data (a `.tar.gz`, which images are not shipped as here).
    Gzip,
    /// A sealed chunkload manifest.
    Manifest,
    /// A customer key file.
    Key,
    /// A chunkload trace (JSON lines with a `chunkload_trace` header).
    Trace,
    /// zstd-compressed data (a `.zst` trace, usually).
    Zstd,
    /// Output of `strace -f -tt`.
    Strace,
    /// A replay scenario (TOML with replay-only keys).
    ReplayScenario,
    /// A fleet scenario (TOML with fleet-only keys).
    FleetScenario,
    /// TOML that is neither scenario kind.
    Toml,
    /// A chunk store directory (`manifests/` and `chunks/`).
    ChunkStore,
    /// Another directory.
    Directory,
    /// A file with no bytes.
    Empty,
    /// Other text (first line shown).
    Text(String),
    /// Other binary data.
    Binary,
    /// Not a regular file or directory (a device, a FIFO, a socket).
    Special,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::OciLayout => f.write_str("an OCI image layout directory"),
            Kind::Tar => f.write_str("a tar archive"),
            Kind::Gzip => f.write_str("gzip-compressed data"),
            Kind::Manifest => f.write_str("a sealed chunkload manifest"),
            Kind::Key => f.write_str("a chunkload customer key"),
            Kind::Trace => f.write_str("a chunkload trace"),
            Kind::Zstd => f.write_str("zstd-compressed data"),
            Kind::Strace => f.write_str("strace output"),
            Kind::ReplayScenario => f.write_str("a replay scenario"),
            Kind::FleetScenario => f.write_str("a fleet scenario"),
            Kind::Toml => f.write_str("a TOML file that is no chunkload scenario"),
            Kind::ChunkStore => f.write_str("a chunk store directory"),
            Kind::Directory => f.write_str("a directory"),
            Kind::Empty => f.write_str("an empty file"),
            Kind::Text(first) => write!(f, "a text file (first line {first:?})"),
            Kind::Binary => f.write_str("binary data of no kind chunkload reads"),
            Kind::Special => f.write_str("not a regular file"),
        }
    }
}

impl Kind {
    /// Where a file of this kind goes, for the error that names it.
    pub fn taken_by(&self) -> Option<&'static str> {
        Some(match self {
            Kind::OciLayout | Kind::Tar => {
                "commands take an image as IMAGE or --image (convert, inspect, explain)"
            }
            Kind::Manifest => {
                "commands take a manifest with --store and --key (replay, materialize, explain SUBJECT --key, extract --store --key, manifest show)"
            }
            Kind::Key => "commands take a customer key as --key",
            Kind::Trace | Kind::Zstd => {
                "commands take a trace as --trace (replay, explain) or TRACE (trace stats, trace map)"
            }
            Kind::Strace => "`chunkload trace import-strace` turns strace output into a trace",
            Kind::ReplayScenario => {
                "`replay`, `explain`, `demo` and `sweep` take a replay scenario as --scenario"
            }
            Kind::FleetScenario => {
                "`simulate --scenario`, `sweep --experiment fleet --scenario` and `demo --fleet-scenario` take a fleet scenario"
            }
            Kind::ChunkStore => "commands take a chunk store as --store",
            _ => return None,
        })
    }
}

/// What a path was expected to be, for [`expect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Image,
    Manifest,
    Key,
    Trace,
    Strace,
    ReplayScenario,
    FleetScenario,
    ChunkStore,
}

impl Want {
    fn accepts(self, k: &Kind) -> bool {
        match self {
            // A plain directory is left to the image reader, which says what an image layout lacks.
            Want::Image => matches!(k, Kind::OciLayout | Kind::Tar | Kind::Directory),
            Want::Manifest => matches!(k, Kind::Manifest),
            Want::Key => matches!(k, Kind::Key),
            Want::Trace => matches!(k, Kind::Trace | Kind::Zstd),
            Want::Strace => matches!(k, Kind::Strace),
            // A TOML file of neither kind (only shared keys, or a typo) is left to the parser,
            // whose error names the key.
            // Text that is not TOML is left to the parser too: its error points at the line.
            Want::ReplayScenario => matches!(k, Kind::ReplayScenario | Kind::Toml | Kind::Text(_)),
            Want::FleetScenario => matches!(k, Kind::FleetScenario | Kind::Toml | Kind::Text(_)),
            Want::ChunkStore => matches!(k, Kind::ChunkStore),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Want::Image => "an image (an OCI layout directory, OCI archive or docker archive)",
            Want::Manifest => "a sealed manifest (from `chunkload convert`)",
            Want::Key => "a customer key (from `chunkload keygen`)",
            Want::Trace => "a chunkload trace (docs/trace-format.md)",
            Want::Strace => "strace output (`strace -f -tt -y ...`)",
            Want::ReplayScenario => "a replay scenario",
            Want::FleetScenario => "a fleet scenario",
            Want::ChunkStore => "a chunk store directory",
        }
    }
}

/// The wrong kind of file, or one that cannot be looked at.
#[derive(Debug, thiserror::Error)]
pub enum SniffError {
    #[error("{} is not {}: it is {found}{}", path.display(), want.noun(), hint(found))]
    Wrong { path: PathBuf, want: Want, found: Kind },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn hint(found: &Kind) -> String {
    found.taken_by().map(|t| format!("; {t}")).unwrap_or_default()
}

/// What `path` looks like.
pub fn sniff(path: &Path) -> std::io::Result<Kind> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Ok(if path.join("manifests").is_dir() && path.join("chunks").is_dir() {
            Kind::ChunkStore
        } else if path.join("oci-layout").is_file() || path.join("index.json").is_file() {
            Kind::OciLayout
        } else {
            Kind::Directory
        });
    }
    if !meta.is_file() {
        return Ok(Kind::Special);
    }
    let mut head = Vec::with_capacity(SNIFF_BYTES.min(meta.len() as usize));
    std::fs::File::open(path)?.take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
    Ok(sniff_bytes(&head))
}

/// What a file starting with `head` looks like.
pub fn sniff_bytes(head: &[u8]) -> Kind {
    if head.is_empty() {
        return Kind::Empty;
    }
    if head.starts_with(&MANIFEST_MAGIC) {
        return Kind::Manifest;
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Kind::Tar;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Kind::Gzip;
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Kind::Zstd;
    }
    // Text kinds: judge by the (possibly cut) UTF-8 prefix.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.valid_up_to() > 0 && head.len() - e.valid_up_to() < 4 => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Kind::Binary,
    };
    if text.contains('\0') {
        return Kind::Binary;
    }
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else { return Kind::Text(String::new()) };
    if first.starts_with('{') && first.contains("\"chunkload_trace\"") {
        return Kind::Trace;
    }
    if looks_like_key(text) {
        return Kind::Key;
    }
    if is_strace_line(first) {
        return Kind::Strace;
    }
    if let Some(k) = scenario_kind(text) {
        return k;
    }
    let shown: String = first.chars().take(60).collect();
    Kind::Text(shown)
}

/// One line of 64 hex digits, everything else comments or blank.
fn looks_like_key(text: &str) -> bool {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    matches!((lines.next(), lines.next()), (Some(l), None) if l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `PID  HH:MM:SS.micros syscall(...` (or without the pid).
fn is_strace_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let mut w = words.next().unwrap_or_default();
    if w.bytes().all(|b| b.is_ascii_digit()) {
        w = words.next().unwrap_or_default();
    }
    let is_time = w.len() >= 8 && w.as_bytes()[2] == b':' && w.as_bytes()[5] == b':';
    let call = words.next().unwrap_or_default();
    is_time
        && (call.contains('(')
            || call.starts_with("<...")
            || call.starts_with("---")
            || call.starts_with("+++"))
}

/// Keys only a replay scenario has at its top level.
pub const REPLAY_ONLY_KEYS: &[&str] = &["cpu_scale", "guest", "fetch", "baseline"];
/// Keys only a fleet scenario has at its top level.
pub const FLEET_ONLY_KEYS: &[&str] = &[
    "name",
    "duration",
    "warmup",
    "tick",
    "start_hour_of_week",
    "chunk_size",
    "population",
    "workload",
    "placement",
    "uploads",
    "bursts",
    "cron",
    "s3",
    "start",
    "failures",
    "l2_belady",
    "l2_read_repair",
    "steady",
    "world",
    "sizing",
];

/// Which engine a TOML text is for, judged by its top-level keys; `None` when it is not TOML.
fn scenario_kind(text: &str) -> Option<Kind> {
    let table: toml::Table = text.parse().ok()?;
    if table.is_empty() {
        return None; // only comments: some other text
    }
    let has = |keys: &[&str]| table.keys().any(|k| keys.contains(&k.as_str()));
    Some(match (has(REPLAY_ONLY_KEYS), has(FLEET_ONLY_KEYS)) {
        (true, false) => Kind::ReplayScenario,
        (false, true) => Kind::FleetScenario,
        _ => Kind::Toml,
    })
}

/// Checks that `path` is what `want` says, when it exists; a missing path is left to the reader
/// (whose error names it). Returns what it found.
pub fn expect(path: &Path, want: Want) -> Result<Option<Kind>, SniffError> {
    let found = match sniff(path) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SniffError::Io { path: path.to_path_buf(), source }),
    };
    if want.accepts(&found) {
        Ok(Some(found))
    } else {
        Err(SniffError::Wrong { path: path.to_path_buf(), want, found })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_first_bytes() {
        let mut manifest = MANIFEST_MAGIC.to_vec();
        manifest.extend_from_slice(b"rest");
        assert_eq!(sniff_bytes(&manifest), Kind::Manifest);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        tar[0] = b'a';
        assert_eq!(sniff_bytes(&tar), Kind::Tar);
        assert_eq!(sniff_bytes(b""), Kind::Empty);
        assert_eq!(sniff_bytes(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(sniff_bytes(&[0x28, 0xb5, 0x2f, 0xfd, 1]), Kind::Zstd);
        assert_eq!(sniff_bytes(b"{\"chunkload_trace\":1,\"source\":\"strace\"}\n"), Kind::Trace);
        let key = format!("# chunkload customer key v1\n{}\n", "ab".repeat(32));
        assert_eq!(sniff_bytes(key.as_bytes()), Kind::Key);
        let strace = "6661  01:16:34.486930 mmap(NULL, 8192, PROT_READ) = 0x7f\n6661  01:16:34.487157 openat(AT_FDCWD, \"/x\", O_RDONLY) = 3\n";
        assert_eq!(sniff_bytes(strace.as_bytes()), Kind::Strace);
        assert_eq!(sniff_bytes(b"seed = 1\ncpu_scale = 0.5\n"), Kind::ReplayScenario);
        assert_eq!(sniff_bytes(b"duration = \"10min\"\n[l1]\n"), Kind::FleetScenario);
        assert_eq!(sniff_bytes(b"[l1]\npolicy = \"lru\"\n"), Kind::Toml);
        assert_eq!(sniff_bytes(b"# chunkload\n\nHow to use it\n"), Kind::Text("# chunkload".into()));
        assert_eq!(sniff_bytes(&[0xff, 0xfe, 0, 1, 2]), Kind::Binary);
    }

    #[test]
    fn the_wrong_kind_names_what_it_is_and_who_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let readme = dir.path().join("README.md");
        std::fs::write(&readme, "# chunkload\nModel how AWS Lambda loads images.\n").unwrap();
        let e = expect(&readme, Want::Key).unwrap_err().to_string();
        assert!(e.contains("is not a customer key") && e.contains("a text file"), "{e}");
        let m = dir.path().join("m");
        std::fs::write(&m, [MANIFEST_MAGIC.as_slice(), b"xx"].concat()).unwrap();
        let e = expect(&m, Want::Image).unwrap_err().to_string();
        assert!(e.contains("a sealed chunkload manifest") && e.contains("--store and --key"), "{e}");
        let fleet = dir.path().join("f.toml");
        std::fs::write(&fleet, "duration = \"10min\"\n").unwrap();
        let e = expect(&fleet, Want::ReplayScenario).unwrap_err().to_string();
        assert!(e.contains("a fleet scenario") && e.contains("simulate --scenario"), "{e}");
        assert_eq!(expect(&dir.path().join("nope"), Want::Key).unwrap(), None);
        let e = expect(dir.path(), Want::Trace).unwrap_err().to_string();
        assert!(e.contains("it is a directory"), "{e}");
    }
}
