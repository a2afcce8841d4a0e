//! Secret keys: per-chunk convergent keys and per-customer manifest keys.
//!
//! Both are 32 bytes, zeroed on drop, and deliberately have no `Display` and no `Serialize`: the only
//! ways out are `as_bytes` (for the cipher) and the key file. `Debug` prints a redaction so a key in
//! a struct that derives `Debug` cannot leak into logs or panic messages.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::{Zeroize, Zeroizing};

use super::error::Error;

/// The key of one chunk: SHA-256(salt || plaintext). Anyone holding the plaintext and the salt can
/// derive it, which is what makes encryption convergent; it is stored only in the manifest's
/// encrypted key table.
#[derive(Clone)]
pub struct ChunkKey([u8; 32]);

impl ChunkKey {
    pub const LEN: usize = 32;

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ChunkKey(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Equality without an early exit, so comparing keys does not leak where they differ.
fn bytes_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl PartialEq for ChunkKey {
    fn eq(&self, other: &Self) -> bool {
        bytes_eq(&self.0, &other.0)
    }
}
impl Eq for ChunkKey {}

impl PartialEq for CustomerKey {
    fn eq(&self, other: &Self) -> bool {
        bytes_eq(&self.0, &other.0)
    }
}
impl Eq for CustomerKey {}

impl Drop for ChunkKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChunkKey(<redacted>)")
    }
}

/// A customer's manifest key (AES-256-GCM key table encryption). Random, never derived from data.
#[derive(Clone)]
pub struct CustomerKey([u8; 32]);

/// First line written to key files, so a stray file explains itself.
const KEY_FILE_HEADER: &str = "# chunkload customer key v1 (AES-256-GCM manifest key). Keep secret.";
/// Key files are tiny; refuse to read a large file into memory.
const KEY_FILE_MAX: u64 = 4096;

impl CustomerKey {
    pub const LEN: usize = 32;

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        CustomerKey(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, Error> {
        let mut k = CustomerKey([0; 32]);
        getrandom::fill(&mut k.0).map_err(|e| Error::Randomness(e.to_string()))?;
        Ok(k)
    }

    /// Generates a key and writes it to a new file with mode 0600. Never overwrites: an existing
    /// file is an error, because losing a customer key makes every manifest under it unreadable.
    pub fn generate_file(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::KeyFileIo { path: path.to_path_buf(), source };
        let key = Self::generate()?;
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
        let mut text = Zeroizing::new(String::with_capacity(160));
        text.push_str(KEY_FILE_HEADER);
        text.push('\n');
        text.push_str(&hex::encode(key.0));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key)
    }

    /// Loads a key file: `#` comment lines and blank lines are ignored, and exactly one line of 64
    /// hex digits must remain. A file that group or others may read is an error (as ssh does for
    /// private keys), not a warning: a library cannot be sure a warning reaches a person.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::KeyFileIo { path: path.to_path_buf(), source };
        let format = |reason: &str| Error::KeyFileFormat { path: path.to_path_buf(), reason: reason.into() };
        let file = fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(format("not a regular file"));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyFilePermissions { path: path.to_path_buf(), mode });
        }
        let mut text = Zeroizing::new(String::new());
        file.take(KEY_FILE_MAX + 1).read_to_string(&mut text).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => format("not UTF-8 text"),
            _ => io(e),
        })?;
        if text.len() as u64 > KEY_FILE_MAX {
            return Err(format("larger than 4096 bytes; not a key file"));
        }
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines.next().ok_or_else(|| format("no key line (expected 64 hex digits)"))?;
        if lines.next().is_some() {
            return Err(format("more than one key line"));
        }
        if line.len() != 64 {
            return Err(format(&std::format!(
                "key line has {} characters, expected 64 hex digits",
                line.len()
            )));
        }
        let mut key = CustomerKey([0; 32]);
        hex::decode_to_slice(line, &mut key.0).map_err(|_| format("key line is not hex"))?;
        Ok(key)
    }
}

impl Drop for CustomerKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_key_bytes() {
        let bytes = [0xab; 32];
        for shown in
            [format!("{:?}", ChunkKey::from_bytes(bytes)), format!("{:#?}", CustomerKey::from_bytes(bytes))]
        {
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.to_lowercase().contains("ab"), "{shown}");
            assert!(!shown.contains("171"), "{shown}");
        }
    }

    #[test]
    fn key_file_round_trip_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customer.key");
        let k = CustomerKey::generate_file(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(CustomerKey::load(&path).unwrap(), k);
        let e = CustomerKey::generate_file(&path).unwrap_err();
        assert!(
            matches!(&e, Error::KeyFileIo { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(CustomerKey::load(&path).unwrap(), k, "existing key must survive");
        assert_ne!(CustomerKey::generate().unwrap(), k);
    }

    fn write_key_file(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(format!("k{}", text.len()));
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn load_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = "11".repeat(32);
        let p = write_key_file(dir.path(), &format!("# c\n\n{good}\n"), 0o600);
        assert_eq!(CustomerKey::load(&p).unwrap(), CustomerKey::from_bytes([0x11; 32]));
        let cases = [
            (format!("{good}\n"), 0o644, "chmod 600"),
            (format!("{good}\n"), 0o640, "chmod 600"),
            (good[..62].to_string(), 0o600, "62 characters"),
            (format!("{}zz", &good[..62]), 0o600, "not hex"),
            (format!("{good}\n{good}\n"), 0o600, "more than one"),
            ("# only a comment\n".to_string(), 0o600, "no key line"),
        ];
        for (text, mode, want) in cases {
            let p = write_key_file(dir.path(), &text, mode);
            let e = CustomerKey::load(&p).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(&*p.to_string_lossy()), "{e}");
            fs::remove_file(p).unwrap();
        }
    }
}
