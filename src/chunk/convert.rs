//! `convert`: image -> block image stream -> fixed-size chunks -> convergent encryption -> store.
//!
//! One thread streams the block image (decoding layers) and cuts it into chunk buffers; worker
//! threads (one per core) check for zero chunks, encrypt, name and upload, in any order. Buffers
//! circulate through a bounded queue, so memory is a few chunks per worker however large the image.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use serde::Serialize;

use super::{ChunkSize, is_zero};
use crate::crypto::{self, Manifest, ManifestHeader, Salt, encrypt_chunk};
use crate::flatten::Flattened;
use crate::image::Image;
use crate::layout::{self, BlockLayout};
use crate::store::{self, ChunkStore};

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub chunk_size: ChunkSize,
    pub salt: Salt,
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

/// Why the chunker stopped feeding workers (a worker failed).
#[derive(Debug, thiserror::Error)]
#[error("conversion stopped")]
struct Stopped;

/// Converts a flattened image into encrypted chunks in `store` and returns its manifest.
pub fn convert(
    image: &Image,
    flat: &Flattened,
    options: &ConvertOptions,
    store: &dyn ChunkStore,
) -> Result<Converted, Error> {
    let start = Instant::now();
    let layout = BlockLayout::new(flat);
    let size = layout.image_size();
    let chunk = options.chunk_size.bytes() as usize;
    if size.div_ceil(chunk as u64) > u64::from(u32::MAX) {
        return Err(Error::TooManyChunks { size, chunk_size: options.chunk_size });
    }
    let header = ManifestHeader {
        chunk_size: chunk as u32,
        image_size: size,
        salt: options.salt.clone(),
        source: format!("{} {}", image.reference, image.digest()),
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let builder = Mutex::new(Manifest::builder(header));
    let zero_chunks = Mutex::new(0u64);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let (full_tx, full_rx) = sync_channel::<(u32, Vec<u8>)>(workers * 2);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(workers * 3);
    for _ in 0..workers * 3 {
        free_tx.send(Vec::with_capacity(chunk)).expect("queue sized for it");
    }
    let full_rx = Mutex::new(full_rx);
    let streamed = std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                worker(&full_rx, &free_tx, &options.salt, store, &builder, &zero_chunks, &failure);
            });
        }
        let mut cut = Cutter { chunk, index: 0, buf: None, free: &free_rx, full: full_tx, failure: &failure };
        let streamed = layout::stream_image(image, flat, &layout, &mut |bytes: &[u8]| cut.push(bytes));
        let flushed = cut.finish();
        streamed.and(flushed.map_err(|e| layout::Error::Sink(Box::new(e))))
    });
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }
    streamed?;
    let manifest = builder.into_inner().expect("lock").finish()?;
    let chunks_zero = zero_chunks.into_inner().expect("lock");
    let st = store.stats();
    let stats = ConvertStats {
        image_bytes: size,
        chunk_size: chunk as u64,
        chunks_total: size.div_ceil(chunk as u64),
        chunks_new: st.chunks_new,
        chunks_present: st.chunks_present,
        chunks_zero,
        bytes_written: st.bytes_written,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok(Converted { manifest, stats })
}

fn worker(
    full: &Mutex<Receiver<(u32, Vec<u8>)>>,
    free: &std::sync::mpsc::SyncSender<Vec<u8>>,
    salt: &Salt,
    store: &dyn ChunkStore,
    builder: &Mutex<crypto::ManifestBuilder>,
    zero_chunks: &Mutex<u64>,
    failure: &Mutex<Option<Error>>,
) {
    loop {
        let job = full.lock().expect("lock").recv();
        let Ok((index, mut buf)) = job else { return };
        if is_zero(&buf) {
            *zero_chunks.lock().expect("lock") += 1;
        } else {
            let sealed = encrypt_chunk(salt, &mut buf);
            match store.put_if_absent(&sealed.name, &buf) {
                Ok(_) => {
                    builder.lock().expect("lock").push(index, sealed);
                }
                // Keep draining (and returning buffers) so the cutter never blocks; it sees the
                // failure and stops.
                Err(e) => {
                    failure.lock().expect("lock").get_or_insert(e.into());
                }
            }
        }
        buf.clear();
        let _ = free.send(buf);
    }
}

/// Cuts the byte stream into chunk-sized buffers and hands them to the workers.
struct Cutter<'a> {
    chunk: usize,
    index: u32,
    buf: Option<Vec<u8>>,
    free: &'a Receiver<Vec<u8>>,
    full: std::sync::mpsc::SyncSender<(u32, Vec<u8>)>,
    failure: &'a Mutex<Option<Error>>,
}

impl Cutter<'_> {
    fn push(&mut self, mut bytes: &[u8]) -> Result<(), Stopped> {
        while !bytes.is_empty() {
            let buf = match &mut self.buf {
                Some(b) => b,
                None => self.buf.insert(self.free.recv().map_err(|_| Stopped)?),
            };
            let take = (self.chunk - buf.len()).min(bytes.len());
            buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if buf.len() == self.chunk {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Stopped> {
        if self.failure.lock().expect("lock").is_some() {
            return Err(Stopped);
        }
        let buf = self.buf.take().expect("a buffer is being filled");
        self.full.send((self.index, buf)).map_err(|_| Stopped)?;
        self.index += 1;
        Ok(())
    }

    /// Sends the last, possibly short, chunk; dropping `self` closes the queue.
    fn finish(mut self) -> Result<(), Stopped> {
        if self.buf.as_ref().is_some_and(|b| !b.is_empty()) {
            self.send()?;
        }
        Ok(())
    }
}
