//! A layer's decoded tar stream kept in an unnamed temporary file by the first pass over it, so a
//! second pass (`convert` cutting the block image) reads it back instead of decoding the blob a
//! second time: a gzip decode costs several times what writing and re-reading the page cache does,
//! and one big layer's decode is the longest serial step of a conversion.
//!
//! The file is created with `O_TMPFILE` where the filesystem supports it (else created and
//! unlinked at once), so it has no name: nothing is left behind whatever happens to the process,
//! and its pages are usually dropped before the kernel ever writes them out.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A verified copy of one layer's decoded stream.
#[derive(Debug)]
pub struct SpooledLayer {
    pub(super) file: File,
    pub(super) len: u64,
}

impl SpooledLayer {
    /// An anonymous file in `dir` to pass to [`LayerStream::spool_into`](super::LayerStream::spool_into).
    pub fn create_in(dir: &Path) -> io::Result<File> {
        tempfile::tempfile_in(dir)
    }

    /// Bytes of decoded stream held.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the stream from the start; any number of readers can be open at once.
    /// Fills `buf` from `offset` of the decoded stream (which must hold that many bytes).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= self.len => self.file.read_exact_at(buf, offset),
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the spooled layer")),
        }
    }

    /// Cuts the file short, as a full disk or someone else's hand might (tests of the read paths).
    #[cfg(test)]
    pub(crate) fn truncate_file(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    pub fn reader(&self) -> SpoolReader<'_> {
        SpoolReader { file: &self.file, pos: 0, end: self.len }
    }
}

/// A positioned reader over a [`SpooledLayer`] (`pread`, so readers share the file).
pub struct SpoolReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl SpoolReader<'_> {
    /// Moves past `n` bytes; past the end of the stream is an `UnexpectedEof`.
    pub fn skip(&mut self, n: u64) -> io::Result<()> {
        match self.pos.checked_add(n) {
            Some(p) if p <= self.end => {
                self.pos = p;
                Ok(())
            }
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "skip past the end of the spooled layer")),
        }
    }
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "spooled layer file shrank"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_at_offsets_and_refuses_past_the_end_or_a_shrunk_file() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let spool = SpooledLayer { file, len: 10 };
        let mut buf = [0u8; 4];
        spool.read_exact_at(&mut buf, 6).unwrap();
        assert_eq!(&buf, b"6789");
        assert_eq!(spool.read_exact_at(&mut buf, 7).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(spool.read_exact_at(&mut buf, u64::MAX - 1).is_err());
        // Someone truncated the file behind our back: an error, never short or stale bytes.
        spool.truncate_file(8).unwrap();
        assert_eq!(spool.read_exact_at(&mut buf, 6).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
