//! `convert`: image -> block image stream -> fixed-size chunks -> convergent encryption -> store.
//!
//! Worker threads (one per core) take chunks in turn, check for zero chunks, encrypt and name
//! them, and publisher threads upload them, in any order. When flattening spooled the layers, each
//! worker reads its chunk straight from the spool ([`BlockReader`]); otherwise the block image's
//! segments (one per layer) are streamed in parallel and cut into chunk buffers for the workers.
//! Buffers circulate through a bounded pool, so memory is a few chunks per worker however large
//! the image.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use rayon::prelude::*;

use serde::Serialize;

use super::{ChunkSize, is_zero};
use crate::crypto::{self, Manifest, ManifestHeader, Salt, Sealed, Sealer};
use crate::flatten::Flattened;
use crate::image::Image;
use crate::layout::{self, BlockLayout, BlockReader};
use crate::store::{self, ChunkStore};

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub chunk_size: ChunkSize,
    pub salt: Salt,
}

impl ConvertOptions {
    /// What an image converted in memory for one command uses: 512 KiB chunks under root 0's salt
    /// (`default`, the salt of a store that has never rotated).
    pub fn in_memory() -> Self {
        ConvertOptions {
            chunk_size: ChunkSize::DEFAULT,
            salt: Salt::for_root(0, None, None).expect("root 0's salt"),
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConvertStats {
    pub image_bytes: u64,
    pub chunk_size: u64,
    pub chunks_total: u64,
    /// Non-zero chunks this conversion wrote to the store.
    pub chunks_new: u64,
    /// Non-zero chunks the store already had (deduplicated).
    pub chunks_present: u64,
    /// All-zero chunks, recorded as holes.
    pub chunks_zero: u64,
    pub bytes_written: u64,
    pub seconds: f64,
}

impl ConvertStats {
    /// Block-image bytes processed per second.
    pub fn throughput(&self) -> f64 {
        if self.seconds > 0.0 { self.image_bytes as f64 / self.seconds } else { 0.0 }
    }
}

pub struct Converted {
    pub manifest: Manifest,
    pub stats: ConvertStats,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Layout(#[from] layout::Error),
    #[error(transparent)]
    Crypto(#[from] crypto::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("block image of {size} bytes has more chunks of {chunk_size} than a manifest can index")]
    TooManyChunks { size: u64, chunk_size: ChunkSize },
}

/// Why a segment stopped feeding workers (a worker failed).
#[derive(Debug, thiserror::Error)]
#[error("conversion stopped")]
struct Stopped;

/// Converts a flattened image into encrypted chunks in `store` and returns its manifest.
///
/// The block image's segments (one per layer, plus metadata) are streamed in parallel; each is cut
/// into chunks at absolute offsets, and a chunk that straddles two segments is assembled from its
/// pieces before it is encrypted.
pub fn convert(
    image: &Image,
    flat: &Flattened,
    options: &ConvertOptions,
    store: &dyn ChunkStore,
) -> Result<Converted, Error> {
    convert_with_progress(image, flat, options, store, &|_| {})
}

/// [`convert`], calling `progress(total)` once with the number of chunks, then `progress`'s
/// `done` side with 1 for every chunk finished (stored, or found to be a hole), from any thread.
pub fn convert_with_progress(
    image: &Image,
    flat: &Flattened,
    options: &ConvertOptions,
    store: &dyn ChunkStore,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Converted, Error> {
    let start = Instant::now();
    // The store's counters run from when its handle was opened: count this conversion only.
    let before = store.stats();
    let layout = BlockLayout::new(flat);
    let size = layout.image_size();
    let chunk = options.chunk_size.bytes();
    if size.div_ceil(chunk) > u64::from(u32::MAX) {
        return Err(Error::TooManyChunks { size, chunk_size: options.chunk_size });
    }
    progress(Progress::Total(size.div_ceil(chunk)));
    let header = ManifestHeader {
        chunk_size: chunk as u32,
        image_size: size,
        salt: options.salt.clone(),
        // The image digest, not the path it was read from: the same image gives the same manifest.
        source: image.digest().to_string(),
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let reader = BlockReader::new(image, flat, &layout);
    let segments = match reader {
        Some(_) => Vec::new(),
        None => layout::segments(image, flat, &layout),
    };
    let (full_tx, full_rx) = sync_channel::<Job>(workers * 2);
    let (sealed_tx, sealed_rx) = sync_channel::<Sealed>(PUBLISHERS);
    // Each worker's sealer holds one chunk back.
    let buffers = workers * 4 + segments.len() + PUBLISHERS * 2;
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(buffers);
    for _ in 0..buffers {
        free_tx.send(Vec::with_capacity(chunk as usize)).expect("queue sized for it");
    }
    let pipe = Pipeline {
        chunk,
        size,
        full: Mutex::new(Some(full_tx)),
        free: Mutex::new(free_rx),
        recycle: free_tx,
        partial: Mutex::new(BTreeMap::new()),
        builder: Mutex::new(Manifest::builder(header)),
        zero_chunks: AtomicU64::new(0),
        failure: Mutex::new(None),
        progress,
    };
    let full_rx = Mutex::new(full_rx);
    let sealed_rx = Mutex::new(sealed_rx);
    // The next chunk a pulling worker takes.
    let next = AtomicU64::new(0);
    let streamed = std::thread::scope(|s| {
        for _ in 0..workers {
            let sealed_tx = sealed_tx.clone();
            match &reader {
                Some(reader) => s.spawn(|| pipe.pull(reader, &next, &options.salt, sealed_tx)),
                None => s.spawn(|| pipe.work(&full_rx, &options.salt, sealed_tx)),
            };
        }
        // The publishers stop once every worker has dropped its sender.
        drop(sealed_tx);
        for _ in 0..PUBLISHERS {
            s.spawn(|| pipe.publish(&sealed_rx, store));
        }
        // No segments when the workers pull their chunks from the reader themselves.
        let streamed = segments.par_iter().try_for_each(|seg| {
            let mut cut = SegmentCutter { pipe: &pipe, pos: seg.range.start, buf: Vec::new(), buf_start: 0 };
            layout::stream_segment(image, flat, &layout, seg, &mut |bytes: &[u8]| cut.push(bytes))?;
            cut.flush().map_err(|e| layout::Error::Sink(Box::new(e)))
        });
        // Closing the queue lets the workers finish what is queued and stop.
        pipe.full.lock().expect("lock").take();
        streamed
    });
    let Pipeline { builder, zero_chunks, failure, partial, .. } = pipe;
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }
    streamed?;
    // Names become durable before anyone can publish a manifest that refers to them.
    store.flush()?;
    debug_assert!(partial.into_inner().expect("lock").is_empty(), "every straddling chunk completed");
    let manifest = builder.into_inner().expect("lock").finish()?;
    let st = store.stats();
    let stats = ConvertStats {
        image_bytes: size,
        chunk_size: chunk,
        chunks_total: size.div_ceil(chunk),
        chunks_new: st.chunks_new - before.chunks_new,
        chunks_present: st.chunks_present - before.chunks_present,
        chunks_zero: zero_chunks.into_inner(),
        bytes_written: st.bytes_written - before.bytes_written,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok(Converted { manifest, stats })
}

/// A chunk's index and its plaintext, on its way to a worker.
type Job = (u32, Vec<u8>);

/// Threads that put chunks into the store. A put mostly waits for the disk (a durable store syncs
/// every chunk before publishing it), so several run at once, off the crypto workers' cores; the
/// disk and the journal batch their syncs.
const PUBLISHERS: usize = 32;

/// Shared state between the segment cutters and the crypto workers.
struct Pipeline<'a> {
    chunk: u64,
    size: u64,
    /// The workers' queue; taken (closed) once every segment has been streamed.
    full: Mutex<Option<SyncSender<Job>>>,
    free: Mutex<Receiver<Vec<u8>>>,
    recycle: SyncSender<Vec<u8>>,
    /// Chunks that straddle segments: bytes so far, and how many have arrived.
    partial: Mutex<BTreeMap<u32, (Vec<u8>, u64)>>,
    builder: Mutex<crypto::ManifestBuilder>,
    zero_chunks: AtomicU64,
    failure: Mutex<Option<Error>>,
    progress: &'a (dyn Fn(Progress) + Sync),
}

/// What [`convert_with_progress`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Chunks in the image, once at the start.
    Total(u64),
    /// This many more chunks done.
    Done(u64),
}

impl Pipeline<'_> {
    fn chunk_len(&self, index: u32) -> u64 {
        (self.size - u64::from(index) * self.chunk).min(self.chunk)
    }

    fn failed(&self) -> bool {
        self.failure.lock().expect("lock").is_some()
    }

    fn buffer(&self) -> Result<Vec<u8>, Stopped> {
        self.free.lock().expect("lock").recv().map_err(|_| Stopped)
    }

    fn send(&self, index: u32, buf: Vec<u8>) -> Result<(), Stopped> {
        let tx = self.full.lock().expect("lock").clone();
        match tx {
            Some(tx) if !self.failed() => tx.send((index, buf)).map_err(|_| Stopped),
            _ => Err(Stopped),
        }
    }

    /// Adds a piece of a chunk that straddles segments; sends the chunk once it is whole.
    fn deposit(&self, index: u32, at: usize, piece: Vec<u8>) -> Result<(), Stopped> {
        let len = self.chunk_len(index);
        let done = {
            let mut partial = self.partial.lock().expect("lock");
            let (buf, filled) = partial.entry(index).or_insert_with(|| (vec![0u8; len as usize], 0));
            buf[at..at + piece.len()].copy_from_slice(&piece);
            *filled += piece.len() as u64;
            if *filled == len { partial.remove(&index).map(|(b, _)| b) } else { None }
        };
        self.give_back(piece);
        match done {
            Some(buf) => self.send(index, buf),
            None => Ok(()),
        }
    }

    fn give_back(&self, buf: Vec<u8>) {
        // The pool is full only if straddle assembly added buffers; drop the extra.
        let _ = self.recycle.try_send(buf);
    }

    /// A crypto worker fed by the segment cutters.
    fn work(&self, full: &Mutex<Receiver<Job>>, salt: &Salt, sealed: SyncSender<Sealed>) {
        let mut sealer = Sealer::new(salt.clone());
        loop {
            let job = full.lock().expect("lock").recv();
            let Ok((index, buf)) = job else { break };
            if self.failed() {
                self.give_back(buf);
                continue;
            }
            self.seal(&mut sealer, index, buf, &sealed);
        }
        if let Some(done) = sealer.finish() {
            let _ = sealed.send(done);
        }
    }

    /// A crypto worker that reads its own chunks: takes the next chunk index from `next` and
    /// fills a buffer straight from the spooled layers.
    fn pull(&self, reader: &BlockReader, next: &AtomicU64, salt: &Salt, sealed: SyncSender<Sealed>) {
        let mut sealer = Sealer::new(salt.clone());
        let chunks = self.size.div_ceil(self.chunk);
        while !self.failed() {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= chunks {
                break;
            }
            let Ok(mut buf) = self.buffer() else { break };
            // Recycled buffers keep their length: only a fresh or shorter buffer is zero-filled
            // here before the read overwrites it.
            buf.resize(self.chunk_len(index as u32) as usize, 0);
            if let Err(e) = reader.read_exact_at(&mut buf, index * self.chunk) {
                self.failure.lock().expect("lock").get_or_insert(e.into());
                self.give_back(buf);
                break;
            }
            self.seal(&mut sealer, index as u32, buf, &sealed);
        }
        if let Some(done) = sealer.finish() {
            let _ = sealed.send(done);
        }
    }

    /// Zero check, then the [`Sealer`] (which hands back each chunk one push later, encrypted
    /// and named), then over to the publishers.
    fn seal(&self, sealer: &mut Sealer, index: u32, buf: Vec<u8>, sealed: &SyncSender<Sealed>) {
        if is_zero(&buf) {
            self.zero_chunks.fetch_add(1, Ordering::Relaxed);
            (self.progress)(Progress::Done(1));
            self.give_back(buf);
            return;
        }
        if let Some(done) = sealer.push(index, buf) {
            // Publishers only stop after every worker has; this cannot fail.
            let _ = sealed.send(done);
        }
    }

    /// A publisher: upload if absent, record in the manifest.
    fn publish(&self, sealed: &Mutex<Receiver<Sealed>>, store: &dyn ChunkStore) {
        loop {
            let next = sealed.lock().expect("lock").recv();
            let Ok(Sealed { index, chunk, ciphertext: buf }) = next else { return };
            if !self.failed() {
                match store.put_if_absent(&chunk.name, &buf) {
                    Ok(_) => {
                        self.builder.lock().expect("lock").push(index, chunk);
                        (self.progress)(Progress::Done(1));
                    }
                    // Keep draining (and returning buffers) so no cutter blocks; they see the
                    // failure and stop.
                    Err(e) => {
                        self.failure.lock().expect("lock").get_or_insert(e.into());
                    }
                }
            }
            self.give_back(buf);
        }
    }
}

/// Cuts one segment's bytes at absolute chunk boundaries.
struct SegmentCutter<'a> {
    pipe: &'a Pipeline<'a>,
    /// Absolute offset of the next byte.
    pos: u64,
    buf: Vec<u8>,
    /// Absolute offset of `buf[0]`.
    buf_start: u64,
}

impl SegmentCutter<'_> {
    fn push(&mut self, mut bytes: &[u8]) -> Result<(), Stopped> {
        let cs = self.pipe.chunk;
        while !bytes.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf = self.pipe.buffer()?;
                self.buf.clear();
                self.buf_start = self.pos;
            }
            let chunk_end = ((self.pos / cs + 1) * cs).min(self.pipe.size);
            let take = ((chunk_end - self.pos) as usize).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.pos += take as u64;
            if self.pos == chunk_end {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Hands over what is buffered: a whole chunk to the workers, a piece to the assembler.
    fn flush(&mut self) -> Result<(), Stopped> {
        let buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            if buf.capacity() > 0 {
                self.pipe.give_back(buf);
            }
            return Ok(());
        }
        let cs = self.pipe.chunk;
        let index = (self.buf_start / cs) as u32;
        let at = (self.buf_start - u64::from(index) * cs) as usize;
        if at == 0 && buf.len() as u64 == self.pipe.chunk_len(index) {
            self.pipe.send(index, buf)
        } else {
            self.pipe.deposit(index, at, buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten;
    use crate::store::MemStore;

    /// Workers pulling chunks from the spool and cutters streaming segments give the same
    /// manifest and the same stored chunks, at the smallest, default and largest chunk sizes.
    #[test]
    fn pulling_from_the_spool_equals_streaming_segments() {
        let spool = tempfile::tempdir().unwrap();
        for tag in ["shell-tool", "sqlite-report"] {
            let image = Image::committed(tag);
            let streamed = flatten::flatten(&image).unwrap();
            let spooled = flatten::flatten_spooled(&image, spool.path()).unwrap();
            assert!(BlockReader::new(&image, &streamed, &BlockLayout::new(&streamed)).is_none());
            for size in ["4KiB", "512KiB", "16MiB"] {
                let options =
                    ConvertOptions { chunk_size: size.parse().unwrap(), salt: Salt::new("t").unwrap() };
                let runs = [&streamed, &spooled].map(|flat| {
                    let store = MemStore::new();
                    let m = convert(&image, flat, &options, &store).unwrap().manifest;
                    let chunks: Vec<_> = m.chunks().map(|(e, k)| (*e, k.as_bytes().to_vec())).collect();
                    (chunks, store.chunk_count())
                });
                assert!(!runs[0].0.is_empty());
                assert!(runs[0] == runs[1], "{tag} at {size}");
            }
        }
    }
}
