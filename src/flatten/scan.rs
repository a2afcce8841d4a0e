//! One streaming pass over a layer's tar: records each entry's path, type, metadata and, for
//! regular files, where the data sits in the uncompressed stream. File data is skipped, not kept.

use std::io::Read;

use super::error::EntryProblem;
use super::path;
use super::tree::{Meta, Mtime, Name};
use std::path::Path;

use crate::image::{Image, LayerError, SizeBudget, SpooledLayer, StreamSizes};

/// OCI whiteout prefix: `.wh.NAME` deletes NAME from lower layers.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// OCI opaque whiteout: hides everything lower layers had in the directory.
pub const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";

#[derive(Debug, Clone)]
pub enum EntryKind {
    Dir,
    File { offset: u64, size: u64 },
    Symlink(Box<[u8]>),
    HardLink(Vec<Name>),
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Fifo,
    Whiteout(Name),
    Opaque,
}

#[derive(Debug, Clone)]
pub struct LayerEntry {
    /// The path as written in the tar, for messages.
    pub raw_path: Box<[u8]>,
    /// Cleaned components; for whiteouts, those of the directory they apply to.
    pub parts: Vec<Name>,
    pub kind: EntryKind,
    pub meta: Meta,
}

/// Everything one pass over a layer yields.
#[derive(Debug)]
pub struct LayerScan {
    pub entries: Vec<LayerEntry>,
    pub sizes: StreamSizes,
    /// The decoded stream, when the scan was asked to keep it.
    pub spooled: Option<SpooledLayer>,
}

/// Why reading entries stopped: the stream failed, or one entry is unacceptable.
#[derive(Debug)]
pub enum ScanError {
    Stream(std::io::Error),
    Entry { entry: String, problem: EntryProblem },
}

/// A scan failure, already attributed to the image where it is a stream problem.
#[derive(Debug)]
pub enum ScanFailure {
    Image(crate::image::Error),
    Entry { entry: String, problem: EntryProblem },
}

/// Streams layer `index` of `image` once and records its entries, keeping a copy of the decoded
/// stream in an anonymous file in `spool` if given.
pub fn scan_layer(
    image: &Image,
    index: usize,
    budget: &SizeBudget,
    spool: Option<&Path>,
) -> Result<LayerScan, ScanFailure> {
    let mut stream = image.open_layer(index, budget).map_err(ScanFailure::Image)?;
    if let Some(dir) = spool {
        let file = SpooledLayer::create_in(dir)
            .map_err(|e| ScanFailure::Image(image.layer_error(index, LayerError::Spool(e))))?;
        stream.spool_into(file);
    }
    let entries = match scan_entries(&mut stream) {
        Ok(e) => e,
        Err(ScanError::Stream(e)) => {
            return Err(ScanFailure::Image(image.layer_error(index, stream.fail(e))));
        }
        Err(ScanError::Entry { entry, problem }) => return Err(ScanFailure::Entry { entry, problem }),
    };
    let (sizes, spooled) =
        stream.finish_spooled().map_err(|e| ScanFailure::Image(image.layer_error(index, e)))?;
    Ok(LayerScan { entries, sizes, spooled })
}

/// Reads the tar entries of an uncompressed layer stream. Public so fuzzing can drive it directly.
pub fn scan_entries<R: Read>(stream: R) -> Result<Vec<LayerEntry>, ScanError> {
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(ScanError::Stream)? {
        let mut entry = entry.map_err(ScanError::Stream)?;
        match convert(&mut entry) {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {}
            Err(problem) => {
                let entry = path::display(&entry.path_bytes());
                return Err(ScanError::Entry { entry, problem });
            }
        }
    }
    Ok(entries)
}

fn convert<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<LayerEntry>, EntryProblem> {
    use tar::EntryType as T;
    let header = entry.header();
    let ty = header.entry_type();
    if matches!(ty, T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink) {
        return Ok(None);
    }
    let raw_path: Box<[u8]> = entry.path_bytes().into_owned().into_boxed_slice();
    let mut parts = path::clean(&raw_path)?;
    let bad = |what: &str, e: std::io::Error| EntryProblem::BadHeader(format!("{what}: {e}"));
    // Like Go's archive/tar (what umoci and containerd use), an empty numeric field reads as 0.
    let old = header.as_old();
    let num = |what: &str, r: std::io::Result<u64>, raw: &[u8]| match r {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        Err(e) => Err(bad(what, e)),
    };
    let mut meta = Meta {
        mode: num("mode", header.mode().map(u64::from), &old.mode)? as u32 & 0o7777,
        uid: num("uid", header.uid(), &old.uid)?,
        gid: num("gid", header.gid(), &old.gid)?,
        mtime: Mtime { secs: num("mtime", header.mtime(), &old.mtime)? as i64, nanos: 0 },
        xattrs: Vec::new(),
    };
    let device = |h: &tar::Header| -> Result<(u32, u32), EntryProblem> {
        let major = h.device_major().map_err(|e| bad("devmajor", e))?.unwrap_or(0);
        let minor = h.device_minor().map_err(|e| bad("devminor", e))?.unwrap_or(0);
        Ok((major, minor))
    };
    let kind = match ty {
        T::Regular | T::Continuous => {
            EntryKind::File { offset: entry.raw_file_position(), size: entry.size() }
        }
        T::Directory => EntryKind::Dir,
        T::Symlink => EntryKind::Symlink(entry.link_name_bytes().unwrap_or_default().into_owned().into()),
        T::Link => EntryKind::HardLink(path::clean(&entry.link_name_bytes().unwrap_or_default())?),
        T::Char => {
            let (major, minor) = device(header)?;
            EntryKind::CharDevice { major, minor }
        }
        T::Block => {
            let (major, minor) = device(header)?;
            EntryKind::BlockDevice { major, minor }
        }
        T::Fifo => EntryKind::Fifo,
        T::GNUSparse => return Err(EntryProblem::Sparse),
        other => return Err(EntryProblem::UnsupportedType(other.as_byte() as char)),
    };
    if let Some(pax) = entry.pax_extensions().map_err(|e| bad("pax", e))? {
        for ext in pax {
            let ext = ext.map_err(|e| bad("pax", e))?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            let number = || std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<u64>().ok());
            match key {
                b"uid" => meta.uid = number().ok_or_else(|| EntryProblem::BadHeader("pax uid".into()))?,
                b"gid" => meta.gid = number().ok_or_else(|| EntryProblem::BadHeader("pax gid".into()))?,
                b"mtime" => {
                    meta.mtime =
                        parse_pax_time(value).ok_or_else(|| EntryProblem::BadHeader("pax mtime".into()))?
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        meta.xattrs.push((name.into(), value.into()));
                    }
                }
            }
        }
        meta.xattrs.sort();
        meta.xattrs.dedup_by(|a, b| a.0 == b.0);
    }
    // Whiteouts are recognised by their base name, wherever they are.
    let kind = match parts.last() {
        Some(base) if base.starts_with(WHITEOUT_PREFIX) => {
            let base = parts.pop().expect("non-empty");
            if &*base == OPAQUE_WHITEOUT {
                EntryKind::Opaque
            } else if base.starts_with(b".wh..wh.") {
                // aufs bookkeeping (.wh..wh.plnk etc.): not part of the filesystem.
                return Ok(None);
            } else {
                let name = &base[WHITEOUT_PREFIX.len()..];
                if name.is_empty() || name == b"." || name == b".." {
                    return Err(EntryProblem::BadWhiteout { name: path::display(&base) });
                }
                EntryKind::Whiteout(name.into())
            }
        }
        _ => kind,
    };
    Ok(Some(LayerEntry { raw_path, parts, kind, meta }))
}

/// PAX times are decimal seconds with an optional fraction (`1700000000.123456789`).
fn parse_pax_time(value: &[u8]) -> Option<Mtime> {
    let s = std::str::from_utf8(value).ok()?.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = digits.parse().ok()?;
        n * 10u32.pow(9 - digits.len() as u32)
    };
    Some(Mtime { secs, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000.5"), Some(Mtime { secs: 1700000000, nanos: 500_000_000 }));
        assert_eq!(parse_pax_time(b"12"), Some(Mtime { secs: 12, nanos: 0 }));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
