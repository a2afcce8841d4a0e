//! SHA-256 off the decoding thread. Verifying a layer hashes both the blob and the decoded stream,
//! a quarter of the CPU a layer costs; handing full buffers to a hashing thread lets decoding go on
//! meanwhile (and uses a core that would otherwise idle once the smaller layers are done).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use super::Digest;

const BATCH: usize = 256 << 10;
/// Buffers in flight per hasher: bounds memory to `DEPTH * BATCH`.
const DEPTH: usize = 4;

pub struct BackgroundHasher {
    batch: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Digest>>,
}

impl BackgroundHasher {
    pub fn new() -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let thread = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for mut buf in rx {
                h.update(&buf);
                buf.clear();
                let _ = spare_tx.try_send(buf);
            }
            Digest::from_bytes(h.finalize().into())
        });
        BackgroundHasher { batch: Vec::with_capacity(BATCH), tx: Some(tx), spare, thread: Some(thread) }
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

    pub fn finalize(mut self) -> Digest {
        self.finish()
    }

    fn finish(&mut self) -> Digest {
        if !self.batch.is_empty() {
            self.ship();
        }
        self.tx.take();
        self.thread.take().expect("finalized once").join().expect("hasher thread does not panic")
    }
}

impl Drop for BackgroundHasher {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.tx.take();
            let _ = self.thread.take().map(JoinHandle::join);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_digest_as_inline_hashing() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut h = BackgroundHasher::new();
        for part in data.chunks(777) {
            h.update(part);
        }
        assert_eq!(h.finalize(), Digest::of(&data));
        assert_eq!(BackgroundHasher::new().finalize(), Digest::of(b""));
    }
}
