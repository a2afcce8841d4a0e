//! Verified streaming of one layer: the blob's bytes are hashed and counted on the way in, the
//! decompressed bytes are hashed (against `rootfs.diff_ids`) and charged to the image's
//! uncompressed-size budget on the way out. Nothing is trusted until `finish` has drained both ends
//! and compared the digests.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::background::{Append, Background, Hash};
use super::spool::SpooledLayer;
use super::{Compression, Digest, LayerError};
use crate::units::ByteSize;

/// The cap on total uncompressed bytes across all layers of an image, shared by layers decoded in
/// parallel and enforced while streaming (a decompression bomb is stopped at the limit, not after).
#[derive(Debug, Clone)]
pub struct SizeBudget {
    limit: ByteSize,
    used: Arc<AtomicU64>,
}

impl SizeBudget {
    pub fn new(limit: ByteSize) -> Self {
        SizeBudget { limit, used: Arc::new(AtomicU64::new(0)) }
    }

    fn charge(&self, n: u64) -> bool {
        self.used.fetch_add(n, Ordering::Relaxed) + n <= self.limit.bytes()
    }

    pub fn limit(&self) -> ByteSize {
        self.limit
    }
}

/// A reader that hashes and counts what passes through, optionally charging a budget.
struct Meter<R> {
    inner: R,
    /// Where a copy of what passes through goes, off this thread: a hash, a spool file, or both
    /// from one batch (the bytes are copied once).
    sink: Option<Sink>,
    count: u64,
    budget: Option<SizeBudget>,
    upstream_failed: bool,
    over_budget: bool,
}

enum Sink {
    Hash(Background<Hash>),
    Spool(Background<Append>),
    Both(Background<(Hash, Append)>),
}

impl<R: Read> Meter<R> {
    fn new(inner: R, hash: bool, budget: Option<SizeBudget>) -> Self {
        Meter {
            inner,
            sink: hash.then(|| Sink::Hash(Background::new(Hash::new()))),
            count: 0,
            budget,
            upstream_failed: false,
            over_budget: false,
        }
    }

    fn digest(&mut self) -> Option<Digest> {
        self.finalize().0
    }

    /// Waits for the background work and returns the digest and the spool file, as configured.
    fn finalize(&mut self) -> (Option<Digest>, Option<io::Result<File>>) {
        match self.sink.take() {
            None => (None, None),
            Some(Sink::Hash(h)) => (Some(h.finalize()), None),
            Some(Sink::Spool(a)) => (None, Some(a.finalize())),
            Some(Sink::Both(b)) => {
                let (d, f) = b.finalize();
                (Some(d), Some(f))
            }
        }
    }

    fn add_spool(&mut self, file: File) {
        self.sink = Some(match self.sink.take() {
            // Nothing has been read yet, so the hasher being replaced has seen nothing.
            Some(Sink::Hash(_)) => Sink::Both(Background::new((Hash::new(), Append::new(file)))),
            _ => Sink::Spool(Background::new(Append::new(file))),
        });
    }
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.upstream_failed = true;
                return Err(e);
            }
        };
        if let Some(budget) = &self.budget
            && !budget.charge(n as u64)
        {
            self.over_budget = true;
            return Err(io::Error::other("uncompressed size limit exceeded"));
        }
        match &mut self.sink {
            Some(Sink::Hash(h)) => h.update(&buf[..n]),
            Some(Sink::Spool(a)) => a.update(&buf[..n]),
            Some(Sink::Both(b)) => b.update(&buf[..n]),
            None => {}
        }
        self.count += n as u64;
        Ok(n)
    }
}

type Blob = Meter<Box<dyn Read + Send>>;

enum Decoder {
    Plain(BufReader<Blob>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<Blob>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Blob>>),
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

impl Decoder {
    fn into_blob(self) -> BufReader<Blob> {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => r.finish(),
        }
    }
}

/// What a layer's content was checked against.
#[derive(Debug, Clone)]
pub struct Expected {
    pub blob_digest: Option<Digest>,
    pub blob_size: Option<u64>,
    pub diff_id: Digest,
    pub compression: Compression,
    /// Whether to hash the decoded stream against `diff_id` even when the blob digest is checked.
    /// A second pass over a layer already verified skips it: the blob digest pins the decoded
    /// bytes just as well, at a fraction of the hashing.
    pub check_diff_id: bool,
}

/// The decompressed tar stream of one layer. Read it, then call [`LayerStream::finish`].
pub struct LayerStream {
    decoded: Meter<Decoder>,
    expected: Expected,
    /// Where skipped bytes land; allocated on the first skip and reused.
    scratch: Vec<u8>,
}

/// Sizes measured while streaming a layer.
#[derive(Debug, Clone, Copy)]
pub struct StreamSizes {
    pub compressed: u64,
    pub uncompressed: u64,
}

const READ_BUFFER: usize = 256 << 10;

impl LayerStream {
    pub(crate) fn new(
        blob: Box<dyn Read + Send>,
        expected: Expected,
        budget: SizeBudget,
    ) -> Result<Self, LayerError> {
        let plain = expected.compression == Compression::None;
        // Hash the blob only when it can differ from the uncompressed stream (or has its own digest).
        let hash_blob = !plain || expected.blob_digest.is_some_and(|d| d != expected.diff_id);
        let hash_decoded = expected.check_diff_id || !hash_blob || expected.blob_digest.is_none();
        let blob = BufReader::with_capacity(READ_BUFFER, Meter::new(blob, hash_blob, None));
        let decoder = match expected.compression {
            Compression::None => Decoder::Plain(blob),
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(blob))),
            Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(blob) {
                Ok(d) => Decoder::Zstd(d),
                Err(source) => return Err(LayerError::Decompress { compression: Compression::Zstd, source }),
            },
        };
        Ok(LayerStream {
            decoded: Meter::new(decoder, hash_decoded, Some(budget)),
            expected,
            scratch: Vec::new(),
        })
    }

    /// Turns an I/O error seen while reading this stream (directly or through the tar reader)
    /// into what actually failed: the budget, the decompressor, or the tar structure. The rest of
    /// the blob is read first, so tampering is reported as a digest mismatch (the cause) rather than
    /// as whatever garbage it made the decompressor or the tar reader see.
    pub fn fail(self, e: io::Error) -> LayerError {
        if self.decoded.over_budget {
            let limit = self.decoded.budget.as_ref().map(SizeBudget::limit).unwrap_or_default();
            return LayerError::TooLarge { limit };
        }
        let stream_failed = self.decoded.upstream_failed;
        if !stream_failed {
            // A tar-level error: finish the stream; a digest mismatch explains it better.
            return match self.finish() {
                Ok(_) => LayerError::Tar(e),
                Err(mismatch) => mismatch,
            };
        }
        let compression = self.expected.compression;
        if let Some(mismatch) = self.check_blob_only() {
            return mismatch;
        }
        if compression == Compression::None {
            LayerError::Open(e)
        } else {
            LayerError::Decompress { compression, source: e }
        }
    }

    /// After the decoder failed: reads the raw blob to its end and checks its declared digest.
    fn check_blob_only(self) -> Option<LayerError> {
        let expected = self.expected.blob_digest?;
        if self.expected.compression == Compression::None {
            return None;
        }
        let mut blob = self.decoded.inner.into_blob();
        let leftover = blob.buffer().len();
        blob.consume(leftover);
        let mut blob = blob.into_inner();
        io::copy(&mut blob, &mut io::sink()).ok()?;
        let actual = blob.digest()?;
        (actual != expected).then_some(LayerError::BlobDigest { expected, actual })
    }

    /// Keeps a copy of the decoded stream in `file` (from the start: call before reading), so a
    /// second pass can read it back with [`SpooledLayer::reader`] instead of decoding again.
    pub fn spool_into(&mut self, file: File) {
        debug_assert_eq!(self.decoded.count, 0, "spooling starts with the stream");
        self.decoded.add_spool(file);
    }

    /// Drains what is left (tar padding, trailing blocks), then checks sizes and digests.
    pub fn finish(self) -> Result<StreamSizes, LayerError> {
        self.finish_spooled().map(|(sizes, _)| sizes)
    }

    /// [`finish`](Self::finish), returning the spooled copy if [`spool_into`](Self::spool_into)
    /// asked for one. The copy is returned only when every check passed.
    pub fn finish_spooled(mut self) -> Result<(StreamSizes, Option<SpooledLayer>), LayerError> {
        if let Err(e) = io::copy(&mut self.decoded, &mut io::sink()) {
            return Err(self.fail(e));
        }
        let (diff, spool) = self.decoded.finalize();
        let uncompressed = self.decoded.count;
        let mut blob = self.decoded.inner.into_blob();
        // Bytes after the end of the compressed stream still belong to the blob and its digest.
        let leftover = blob.buffer().len() as u64;
        blob.consume(leftover as usize);
        let mut blob = blob.into_inner();
        if let Err(e) = io::copy(&mut blob, &mut io::sink()) {
            return Err(LayerError::Open(e));
        }
        let compressed =
            if self.expected.compression == Compression::None { uncompressed } else { blob.count };
        if let Some(expected) = self.expected.blob_size
            && expected != compressed
        {
            return Err(LayerError::BlobSize { expected, actual: compressed });
        }
        if let Some(expected) = self.expected.blob_digest
            && let Some(actual) = blob.digest().or(diff)
            && actual != expected
        {
            return Err(LayerError::BlobDigest { expected, actual });
        }
        if let Some(diff) = diff
            && diff != self.expected.diff_id
        {
            return Err(LayerError::DiffId { expected: self.expected.diff_id, actual: diff });
        }
        let spool = match spool {
            Some(Ok(file)) => Some(SpooledLayer { file, len: uncompressed }),
            Some(Err(e)) => return Err(LayerError::Spool(e)),
            None => None,
        };
        Ok((StreamSizes { compressed, uncompressed }, spool))
    }
}

impl LayerStream {
    /// Reads past `n` bytes of the decoded stream (the data of entries nobody wants), still
    /// hashing and counting them; a stream that ends first is an `UnexpectedEof`.
    pub fn skip(&mut self, mut n: u64) -> io::Result<()> {
        if self.scratch.is_empty() {
            self.scratch = vec![0u8; READ_BUFFER];
        }
        while n > 0 {
            let want = n.min(self.scratch.len() as u64) as usize;
            self.decoded.read_exact(&mut self.scratch[..want])?;
            n -= want as u64;
        }
        Ok(())
    }
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoded.read(buf)
    }
}
