//! Where an image's files live: an OCI layout directory, or members of a tar file (an OCI layout
//! packed as tar, or a `docker save` archive). Tar members are indexed once by header scan and then
//! read in place, so nothing is unpacked to disk and several layers can be read at once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Largest JSON document (index, manifest, config) we agree to load into memory.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

#[derive(Debug)]
pub enum Container {
    Dir(PathBuf),
    Tar { path: PathBuf, members: BTreeMap<String, Member> },
}

#[derive(Debug, Clone, Copy)]
pub struct Member {
    offset: u64,
    size: u64,
}

/// A failure to read a member, told apart so callers can say "missing" rather than "I/O error".
#[derive(Debug)]
pub enum ReadError {
    Missing,
    TooLarge(u64),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound { ReadError::Missing } else { ReadError::Io(e) }
    }
}

impl Container {
    /// Indexes the regular-file members of an (uncompressed) tar file. Symlinked members (legacy
    /// `docker save` shares identical layers that way) resolve to their target within the archive.
    pub fn index_tar(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 16, file));
        let mut members = BTreeMap::new();
        let mut links = Vec::new();
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            let name = normalize_member(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(name, Member { offset: entry.raw_file_position(), size: entry.size() });
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target).into_owned();
                        let is_symlink = entry.header().entry_type() == tar::EntryType::Symlink;
                        links.push((name, target, is_symlink));
                    }
                }
                _ => {}
            }
        }
        for (name, target, is_symlink) in links {
            let resolved = if is_symlink {
                let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                normalize_member(&format!("{dir}/{target}"))
            } else {
                normalize_member(&target)
            };
            if let Some(m) = members.get(&resolved).copied() {
                members.insert(name, m);
            }
        }
        Ok(Container::Tar { path: path.to_path_buf(), members })
    }

    pub fn has(&self, name: &str) -> bool {
        match self {
            Container::Dir(dir) => dir.join(name).is_file(),
            Container::Tar { members, .. } => members.contains_key(&normalize_member(name)),
        }
    }

    /// Names of members directly in the container's top level (for error messages).
    pub fn describe(&self) -> String {
        match self {
            Container::Dir(d) => format!("directory {}", d.display()),
            Container::Tar { path, members } => {
                format!("tar file {} ({} members)", path.display(), members.len())
            }
        }
    }

    /// Opens a member for streaming; returns the reader and the member's size in bytes.
    pub fn open(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64), ReadError> {
        match self {
            Container::Dir(dir) => {
                let file = File::open(dir.join(name))?;
                let meta = file.metadata()?;
                if !meta.is_file() {
                    return Err(ReadError::Missing);
                }
                Ok((Box::new(file), meta.len()))
            }
            Container::Tar { path, members } => {
                let m = members.get(&normalize_member(name)).ok_or(ReadError::Missing)?;
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(m.offset))?;
                Ok((Box::new(file.take(m.size)), m.size))
            }
        }
    }

    /// Reads a small member (a JSON document) whole, refusing anything over `MAX_DOCUMENT_BYTES`.
    pub fn read_document(&self, name: &str) -> Result<Vec<u8>, ReadError> {
        let (reader, size) = self.open(name)?;
        if size > MAX_DOCUMENT_BYTES {
            return Err(ReadError::TooLarge(size));
        }
        let mut buf = Vec::with_capacity(size as usize);
        reader.take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

/// `./a//b/` -> `a/b`; `..` is resolved lexically and never climbs above the archive root.
fn normalize_member(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::normalize_member;

    #[test]
    fn member_names_normalize() {
        assert_eq!(normalize_member("./blobs//sha256/ab/"), "blobs/sha256/ab");
        assert_eq!(normalize_member("a/../../b"), "b");
        assert_eq!(normalize_member("/index.json"), "index.json");
    }
}
