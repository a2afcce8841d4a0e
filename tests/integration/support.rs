//! Shared fixtures and helpers: images built once per test run with real tools (umoci, skopeo),
//! hand-made hostile layouts, and a snapshot of a directory tree for exact comparisons.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// A fleet scenario small enough for a debug build (tests/fixtures/tiny-region.toml).
pub const TINY_REGION: &str = include_str!("../fixtures/tiny-region.toml");

/// The chunkload binary under test.
pub fn chunkload() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("chunkload").expect("binary built")
}

/// Fails loudly when a required tool is missing: tests must never skip silently. CI installs them.
pub fn require_tool(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is required for this test (apt-get install -y {tool}); .ci/run installs it");
}

/// A fresh scratch directory under cargo's per-target temp dir, removed at drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("t-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

/// Builds a fixture with `tests/fixtures/NAME.sh DIR` (DIR under the target's temp dir, one per
/// test process), after checking the tools it needs; `env` is passed to the script. Callers keep
/// the result in a `OnceLock` so each fixture is built once per test process.
pub fn build_fixture(name: &str, tools: &[&str], env: &[(&str, &Path)]) -> PathBuf {
    for tool in tools {
        require_tool(tool);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.sh"));
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(&dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {name}.sh: {e}"));
    assert!(
        out.status.success(),
        "{name}.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The kitchen-sink image set (tests/fixtures/kitchen-sink.sh).
pub fn kitchen_sink() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_fixture("kitchen-sink", &["umoci", "skopeo"], &[]))
}

/// The image family (base, dep-a, dep-b, app-a1, app-a2; tests/fixtures/family.sh).
pub fn family() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_fixture("family", &["umoci"], &[]))
}

/// `umoci unpack` of an image reference into `bundle`; returns the rootfs path.
pub fn umoci_unpack(image: &str, bundle: &Path) -> PathBuf {
    let out = Command::new("umoci").args(["unpack", "--image", image]).arg(bundle).output().expect("umoci");
    assert!(out.status.success(), "umoci unpack failed: {}", String::from_utf8_lossy(&out.stderr));
    bundle.join("rootfs")
}

/// What is compared about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Content hash (files), link target (symlinks), device number (devices).
    pub detail: String,
    pub mtime: i64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Every path under a root with its metadata, plus the hard-link groups.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: BTreeMap<Vec<u8>, Entry>,
    pub link_groups: BTreeSet<Vec<Vec<u8>>>,
}

pub fn snapshot(root: &Path) -> Snapshot {
    let mut entries = BTreeMap::new();
    let mut by_inode: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let rel = p.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
        let ft = meta.file_type();
        let (kind, detail) = if ft.is_dir() {
            for child in fs::read_dir(&p).unwrap() {
                stack.push(child.unwrap().path());
            }
            ("dir", String::new())
        } else if ft.is_file() {
            ("file", hex::encode(Sha256::digest(fs::read(&p).unwrap())))
        } else if ft.is_symlink() {
            (
                "symlink",
                String::from_utf8_lossy(fs::read_link(&p).unwrap().as_os_str().as_bytes()).into_owned(),
            )
        } else if ft.is_char_device() {
            ("char", format!("{:x}", meta.rdev()))
        } else if ft.is_block_device() {
            ("block", format!("{:x}", meta.rdev()))
        } else if ft.is_fifo() {
            ("fifo", String::new())
        } else {
            ("other", String::new())
        };
        if ft.is_file() && meta.nlink() > 1 {
            by_inode.entry(meta.ino()).or_default().push(rel.clone());
        }
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&p)
            .map(|names| {
                names
                    .filter(|n| !n.as_bytes().starts_with(b"security."))
                    .filter_map(|n| xattr::get(&p, &n).ok().flatten().map(|v| (n.as_bytes().to_vec(), v)))
                    .collect()
            })
            .unwrap_or_default();
        xattrs.sort();
        let mode = if ft.is_symlink() { 0 } else { meta.mode() & 0o7777 };
        let mtime = meta.mtime();
        entries.insert(rel, Entry { kind, mode, uid: meta.uid(), gid: meta.gid(), detail, mtime, xattrs });
    }
    let link_groups = by_inode
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    Snapshot { entries, link_groups }
}

/// Asserts two trees are the same, printing the first differences readably.
pub fn assert_same_tree(ours: &Path, theirs: &Path) {
    let a = snapshot(ours);
    let b = snapshot(theirs);
    let mut diffs = Vec::new();
    for (path, ea) in &a.entries {
        match b.entries.get(path) {
            None => diffs.push(format!("only in ours: {}", String::from_utf8_lossy(path))),
            Some(eb) if eb != ea => diffs.push(format!(
                "differs: {}\n  ours:   {ea:?}\n  theirs: {eb:?}",
                String::from_utf8_lossy(path)
            )),
            _ => {}
        }
    }
    for path in b.entries.keys().filter(|p| !a.entries.contains_key(*p)) {
        diffs.push(format!("only in theirs: {}", String::from_utf8_lossy(path)));
    }
    if a.link_groups != b.link_groups {
        diffs.push(format!(
            "hard-link groups differ:\n  ours:   {:?}\n  theirs: {:?}",
            a.link_groups, b.link_groups
        ));
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
    assert!(a.entries.len() > 1, "compared an empty tree");
}

/// Writes tar streams entry by entry with full control over every header field, so tests can make
/// the hostile archives that well-behaved writers refuse to produce.
#[derive(Default)]
pub struct TarBuilder {
    out: Vec<u8>,
}

pub const REG: u8 = b'0';
pub const HARDLINK: u8 = b'1';
pub const SYMLINK: u8 = b'2';
pub const DIR: u8 = b'5';

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder::default()
    }

    /// Appends one entry; names longer than a ustar header holds go in a PAX record first.
    pub fn entry(&mut self, kind: u8, name: &[u8], link: &[u8], data: &[u8], mode: u32) -> &mut Self {
        if name.len() > 100 || link.len() > 100 {
            let mut pax = Vec::new();
            for (key, value) in [(&b"path"[..], name), (&b"linkpath"[..], link)] {
                if value.is_empty() {
                    continue;
                }
                let body_len = key.len() + value.len() + 3;
                let mut len = body_len + body_len.to_string().len();
                if len.to_string().len() != body_len.to_string().len() {
                    len += 1;
                }
                pax.extend_from_slice(format!("{len} ").as_bytes());
                pax.extend_from_slice(key);
                pax.push(b'=');
                pax.extend_from_slice(value);
                pax.push(b'\n');
            }
            self.header(b'x', b"pax", b"", pax.len() as u64, 0o644);
            self.data(&pax);
        }
        let short = |b: &[u8]| b[..b.len().min(100)].to_vec();
        self.header(kind, &short(name), &short(link), data.len() as u64, mode);
        self.data(data);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(REG, name.as_bytes(), b"", data, 0o644)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(DIR, name.as_bytes(), b"", b"", 0o755)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(SYMLINK, name.as_bytes(), target.as_bytes(), b"", 0o777)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(HARDLINK, name.as_bytes(), target.as_bytes(), b"", 0o644)
    }

    fn header(&mut self, kind: u8, name: &[u8], link: &[u8], size: u64, mode: u32) {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, u64::from(mode));
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, size);
        octal(&mut h, 136, 12, 1_700_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.out.extend_from_slice(&h);
    }

    fn data(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// How a hand-made layout compresses its layers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(tar: &[u8], comp: Comp) -> Vec<u8> {
    use std::io::Write;
    match comp {
        Comp::None => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => {
            // Like the zstd CLI, with a content checksum, so corruption is detectable.
            let mut e = zstd::Encoder::new(Vec::new(), 1).unwrap();
            e.include_checksum(true).unwrap();
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
    }
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes an OCI layout by hand, consistently hashed, with hooks that tamper with one document
/// (the rest of the chain is re-hashed around the tampering, so only that one thing is wrong).
pub struct LayoutBuilder {
    pub layers: Vec<(Vec<u8>, Comp)>,
    pub tag: String,
    pub config_hook: Box<dyn Fn(&mut serde_json::Value)>,
    pub manifest_hook: Box<dyn Fn(&mut serde_json::Value)>,
    /// Replaces a layer's blob after its digests were computed: (layer, new blob bytes).
    pub blob_swap: Option<(usize, Vec<u8>)>,
}

impl LayoutBuilder {
    pub fn new(tars: Vec<Vec<u8>>, comp: Comp) -> Self {
        LayoutBuilder {
            layers: tars.into_iter().map(|t| (t, comp)).collect(),
            tag: "t".into(),
            config_hook: Box::new(|_| {}),
            manifest_hook: Box::new(|_| {}),
            blob_swap: None,
        }
    }

    /// Writes the layout into `dir` and returns the image reference `DIR:TAG`.
    pub fn write(&self, dir: &Path) -> String {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            let d = sha(bytes);
            fs::write(blobs.join(&d[7..]), bytes).unwrap();
            d
        };
        let mut diff_ids = Vec::new();
        let mut descs = Vec::new();
        for (i, (tar, comp)) in self.layers.iter().enumerate() {
            diff_ids.push(sha(tar));
            let blob = compress(tar, *comp);
            let digest = put(&blob);
            if let Some((j, swap)) = &self.blob_swap
                && *j == i
            {
                fs::write(blobs.join(&digest[7..]), swap).unwrap();
            }
            let media = match comp {
                Comp::None => "application/vnd.oci.image.layer.v1.tar",
                Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            descs.push(serde_json::json!({"mediaType": media, "digest": digest, "size": blob.len()}));
        }
        let mut config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        (self.config_hook)(&mut config);
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = put(&config);
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": descs,
        });
        (self.manifest_hook)(&mut manifest);
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let manifest_digest = put(&manifest);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": self.tag},
            }],
        });
        fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        format!("{}:{}", dir.display(), self.tag)
    }
}

/// Lists a directory's entry names (to prove nothing was written beside DEST).
pub fn names_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// A converted kitchen sink and a two-reader trace of it: what a replay (or a sweep of replays)
/// needs.
pub struct ReplayInputs {
    pub key: PathBuf,
    pub store: PathBuf,
    pub manifest: PathBuf,
    pub trace: PathBuf,
}

/// Converts the kitchen sink into a store under `dir` and writes a trace in which two threads
/// read a small tool and a 2 MB file.
pub fn replay_inputs(dir: &Path) -> ReplayInputs {
    use chunkload::trace::{Access, Header, Record, TracePath, Writer};
    let rec = |t_us: u64, thread: u32, path: &str, access: Access| Record {
        t_us,
        done_us: None,
        thread,
        path: TracePath::new(path.as_bytes().to_vec()).unwrap(),
        access,
    };
    let image = format!("{}:ks", kitchen_sink().join("oci").display());
    let key = dir.join("key");
    let store = dir.join("store");
    let manifest = dir.join("ks.manifest");
    chunkload().arg("keygen").arg(&key).assert().success();
    chunkload()
        .args(["convert", &image])
        .arg("--store")
        .arg(&store)
        .arg("--key")
        .arg(&key)
        .arg("-o")
        .arg(&manifest)
        .assert()
        .success();
    let trace = dir.join("t.jsonl");
    let mut w = Writer::create(&trace, &Header::new("test", "two readers")).unwrap();
    w.write(&rec(0, 0, "/usr/bin/tool", Access::Open)).unwrap();
    w.write(&rec(0, 1, "/opt/big.bin", Access::Open)).unwrap();
    w.write(&rec(100, 0, "/usr/bin/tool", Access::Read { offset: 0, len: 100 })).unwrap();
    w.write(&rec(150, 1, "/opt/big.bin", Access::Read { offset: 0, len: 2_000_000 })).unwrap();
    w.finish().unwrap();
    ReplayInputs { key, store, manifest, trace }
}

/// Every file directly in `dir`, by name, with its bytes: for byte-for-byte output comparisons.
pub fn dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap())
        })
        .collect()
}
