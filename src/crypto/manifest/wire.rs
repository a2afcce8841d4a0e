//! Byte layout of a sealed manifest, version 1 (documented in `docs/manifest-format.md`).
//!
//! Parsing treats its input as hostile: every length is checked against the bytes that remain
//! before anything is allocated, and every error names the field and its byte offset.

use super::{ChunkEntry, ManifestHeader};
use crate::crypto::error::Error;
use crate::crypto::ids::{ChunkName, PlainDigest};
use crate::crypto::salt::Salt;

pub const MAGIC: [u8; 8] = *b"CLMANIF\0";
pub const FORMAT_VERSION: u16 = 1;
/// Chunk indices are u32, so an image has at most 2^32 chunk positions.
pub const MAX_TOTAL_CHUNKS: u64 = 1 << 32;
/// Clear-text bytes per stored chunk in the entry table: name and plaintext digest.
pub const ENTRY_LEN: usize = 64;
/// Encrypted bytes per stored chunk in the key table.
pub const KEY_LEN: usize = 32;
pub const RUN_LEN: usize = 8;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Largest chunk size accepted, to keep offsets and lengths far from overflow.
const MAX_CHUNK_SIZE: u32 = 1 << 30;

/// A parsed manifest plus where its sealed parts lie, for `open`.
pub struct Parsed {
    pub header: ManifestHeader,
    pub chunks: Vec<ChunkEntry>,
    /// Offset of the nonce; everything before `nonce_at + NONCE_LEN` is associated data.
    pub nonce_at: usize,
}

/// Encodes the clear-text part (everything before the nonce).
pub fn encode_public(header: &ManifestHeader, chunks: &[ChunkEntry]) -> Vec<u8> {
    let runs = runs_of(chunks);
    let salt = header.salt.label().as_bytes();
    let source = header.source.as_bytes();
    let len = 33 + salt.len() + 2 + source.len() + runs.len() * RUN_LEN + chunks.len() * ENTRY_LEN;
    let mut out = Vec::with_capacity(len + NONCE_LEN + chunks.len() * KEY_LEN + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&header.chunk_size.to_le_bytes());
    out.extend_from_slice(&header.image_size.to_le_bytes());
    // The builder guarantees fewer than 2^32 chunks and runs, and short salt and source.
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    out.push(salt.len() as u8);
    out.extend_from_slice(salt);
    out.extend_from_slice(&(source.len() as u16).to_le_bytes());
    out.extend_from_slice(source);
    for (first, n) in runs {
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
    }
    for c in chunks {
        out.extend_from_slice(c.name.as_bytes());
        out.extend_from_slice(c.plain.as_bytes());
    }
    debug_assert_eq!(out.len(), len);
    out
}

/// Maximal runs of consecutive stored indices, as (first index, count). Gaps between runs are holes.
fn runs_of(chunks: &[ChunkEntry]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for c in chunks {
        match runs.last_mut() {
            Some((first, n)) if u64::from(*first) + u64::from(*n) == u64::from(c.index) => *n += 1,
            _ => runs.push((c.index, 1)),
        }
    }
    runs
}

/// A cursor that turns every short read into an error naming the field.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(malformed(
                field,
                self.at,
                format!("needs {n} bytes, only {} remain (truncated?)", self.remaining()),
            ));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(field, N)?);
        Ok(a)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
}

fn malformed(field: &'static str, offset: usize, reason: impl Into<String>) -> Error {
    Error::ManifestMalformed { field, offset, reason: reason.into() }
}

/// Parses and validates the whole document (clear-text part and the sizes of the sealed part).
pub fn parse(bytes: &[u8]) -> Result<Parsed, Error> {
    let mut r = Reader { bytes, at: 0 };
    if r.array::<8>("magic")? != MAGIC {
        return Err(malformed("magic", 0, "not a chunkload manifest (bad magic)"));
    }
    let version = r.u16("version")?;
    if version != FORMAT_VERSION {
        return Err(Error::ManifestVersion { found: version, supported: FORMAT_VERSION });
    }
    if r.u16("reserved")? != 0 {
        return Err(malformed("reserved", 10, "must be zero"));
    }
    let chunk_size = r.u32("chunk_size")?;
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(malformed("chunk_size", 12, format!("{chunk_size} is outside 1..=2^30")));
    }
    let image_size = r.u64("image_size")?;
    let total = image_size.div_ceil(u64::from(chunk_size));
    if total > MAX_TOTAL_CHUNKS {
        return Err(malformed("image_size", 16, format!("{total} chunks of {chunk_size} bytes exceed 2^32")));
    }
    let chunk_count = r.u32("chunk_count")?;
    if u64::from(chunk_count) > total {
        return Err(malformed("chunk_count", 24, format!("{chunk_count} chunks in an image of {total}")));
    }
    let run_count = r.u32("run_count")?;
    if run_count > chunk_count || (chunk_count > 0 && run_count == 0) {
        return Err(malformed("run_count", 28, format!("{run_count} runs for {chunk_count} chunks")));
    }
    let salt_at = r.at;
    let salt_len = r.u8("salt_len")?;
    let salt_text = r.take("salt", usize::from(salt_len))?;
    let salt = std::str::from_utf8(salt_text)
        .map_err(|_| malformed("salt", salt_at + 1, "not UTF-8"))
        .and_then(|s| Salt::new(s).map_err(|e| malformed("salt", salt_at + 1, e.to_string())))?;
    let source_len = r.u16("source_len")?;
    let source_at = r.at;
    let source = std::str::from_utf8(r.take("source", usize::from(source_len))?)
        .map_err(|_| malformed("source", source_at, "not UTF-8"))?
        .to_string();

    // Everything left has a size fixed by the counts: check it before allocating anything.
    let (chunks_n, runs_n) = (chunk_count as usize, run_count as usize);
    let need = runs_n as u64 * RUN_LEN as u64
        + chunks_n as u64 * (ENTRY_LEN + KEY_LEN) as u64
        + (NONCE_LEN + TAG_LEN) as u64;
    if need != r.remaining() as u64 {
        return Err(malformed(
            "chunk_count",
            24,
            format!(
                "{chunk_count} chunks in {run_count} runs need {need} more bytes after byte {}, found {}",
                r.at,
                r.remaining()
            ),
        ));
    }

    let mut indices = Vec::with_capacity(chunks_n);
    let mut next_free: u64 = 0;
    for i in 0..runs_n {
        let at = r.at;
        let first = r.u32("run.first_index")?;
        let n = r.u32("run.count")?;
        let end = u64::from(first) + u64::from(n);
        if n == 0 {
            return Err(malformed("run.count", at + 4, format!("run {i} is empty")));
        }
        if i > 0 && u64::from(first) <= next_free {
            return Err(malformed(
                "run.first_index",
                at,
                format!("run {i} overlaps or touches the run before"),
            ));
        }
        if end > total {
            return Err(malformed("run.count", at + 4, format!("run {i} ends at chunk {end}, past {total}")));
        }
        if indices.len() + n as usize > chunks_n {
            return Err(malformed("run.count", at + 4, format!("runs cover more than {chunk_count} chunks")));
        }
        indices.extend(first..first + (n - 1)); // `first + n` may not fit u32: add the last separately.
        indices.push(first + (n - 1));
        next_free = end;
    }
    if indices.len() != chunks_n {
        return Err(malformed(
            "run_count",
            28,
            format!("runs cover {} chunks, not {chunk_count}", indices.len()),
        ));
    }

    let mut chunks = Vec::with_capacity(chunks_n);
    for index in indices {
        let name = ChunkName::from_bytes(r.array("entry.name")?);
        let plain = PlainDigest::from_bytes(r.array("entry.plain_sha256")?);
        chunks.push(ChunkEntry { index, name, plain });
    }
    let nonce_at = r.at;
    let header = ManifestHeader { chunk_size, image_size, salt, source };
    Ok(Parsed { header, chunks, nonce_at })
}
