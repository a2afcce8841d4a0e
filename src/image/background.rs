//! Work on a stream's bytes off the decoding thread. Verifying a layer hashes both the blob and the
//! decoded stream (a quarter of the CPU a layer costs), and `convert` also spools the decoded
//! stream to a file; handing full buffers to a thread per consumer lets decoding go on meanwhile
//! (and uses a core that would otherwise idle once the smaller layers are done).

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use super::Digest;

const BATCH: usize = 256 << 10;
/// Buffers in flight per consumer: bounds memory to `DEPTH * BATCH`.
const DEPTH: usize = 4;

/// What a background thread does with the bytes it is handed.
pub(crate) trait Consumer: Send + 'static {
    type Output: Send + 'static;
    fn consume(&mut self, bytes: &[u8]);
    fn finish(self) -> Self::Output;
}

/// Batches bytes and feeds them, in order, to a [`Consumer`] on its own thread.
pub(crate) struct Background<C: Consumer> {
    batch: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<C::Output>>,
}

impl<C: Consumer> Background<C> {
    pub fn new(mut consumer: C) -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let thread = std::thread::spawn(move || {
            for mut buf in rx {
                consumer.consume(&buf);
                buf.clear();
                let _ = spare_tx.try_send(buf);
            }
            consumer.finish()
        });
        Background { batch: Vec::with_capacity(BATCH), tx: Some(tx), spare, thread: Some(thread) }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = (BATCH - self.batch.len()).min(bytes.len());
            self.batch.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.batch.len() == BATCH {
                self.ship();
            }
        }
    }

    fn ship(&mut self) {
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        if let Some(tx) = &self.tx {
            // The thread only stops when we drop the sender, so this cannot fail.
            let _ = tx.send(full);
        }
    }

    /// Hands over what is batched, waits for the consumer and returns its output.
    pub fn finalize(mut self) -> C::Output {
        if !self.batch.is_empty() {
            self.ship();
        }
        self.tx.take();
        self.thread.take().expect("finalized once").join().expect("consumer thread does not panic")
    }
}

impl<C: Consumer> Drop for Background<C> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.tx.take();
            let _ = self.thread.take().map(JoinHandle::join);
        }
    }
}

/// Two consumers fed from one batch: the bytes are copied once and handled on one thread.
impl<A: Consumer, B: Consumer> Consumer for (A, B) {
    type Output = (A::Output, B::Output);
    fn consume(&mut self, bytes: &[u8]) {
        self.0.consume(bytes);
        self.1.consume(bytes);
    }
    fn finish(self) -> Self::Output {
        (self.0.finish(), self.1.finish())
    }
}

/// SHA-256 of everything consumed.
pub(crate) struct Hash(Sha256);

impl Hash {
    pub fn new() -> Self {
        Hash(Sha256::new())
    }
}

impl Consumer for Hash {
    type Output = Digest;
    fn consume(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(self) -> Digest {
        Digest::from_bytes(self.0.finalize().into())
    }
}

/// Appends everything consumed to a file; the first write error ends writing and is kept.
pub(crate) struct Append {
    file: File,
    error: Option<io::Error>,
}

impl Append {
    pub fn new(file: File) -> Self {
        Append { file, error: None }
    }
}

impl Consumer for Append {
    type Output = io::Result<File>;
    fn consume(&mut self, bytes: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.file.write_all(bytes)
        {
            self.error = Some(e);
        }
    }
    fn finish(self) -> io::Result<File> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.file),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};

    use super::*;

    #[test]
    fn same_digest_as_inline_hashing() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut h = Background::new(Hash::new());
        for part in data.chunks(777) {
            h.update(part);
        }
        assert_eq!(h.finalize(), Digest::of(&data));
        assert_eq!(Background::new(Hash::new()).finalize(), Digest::of(b""));
    }

    #[test]
    fn a_pair_hashes_and_appends_the_same_bytes() {
        let data: Vec<u8> = (0..600_007u32).map(|i| (i * 11 % 241) as u8).collect();
        let mut both = Background::new((Hash::new(), Append::new(tempfile::tempfile().unwrap())));
        for part in data.chunks(4099) {
            both.update(part);
        }
        let (digest, file) = both.finalize();
        assert_eq!(digest, Digest::of(&data));
        let mut f = file.unwrap();
        let mut back = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[test]
    fn appends_in_order() {
        let data: Vec<u8> = (0..700_001u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut w = Background::new(Append::new(tempfile::tempfile().unwrap()));
        for part in data.chunks(1000) {
            w.update(part);
        }
        let mut f = w.finalize().unwrap();
        let mut back = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut back).unwrap();
        assert!(back == data);
    }
}
