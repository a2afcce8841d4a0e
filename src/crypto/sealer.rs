//! Convergent encryption of a stream of chunks on one core, pipelined one chunk deep.
//!
//! A chunk costs three SHA-256 passes (its key, its plaintext digest, its name) and one AES pass,
//! and the name can only be hashed after the AES pass, which needs the key, which needs the whole
//! plaintext. One chunk alone therefore runs two hash streams, then AES, then one stream. On a
//! stream of chunks the [`Sealer`] instead hashes chunk n's plaintext (two streams) in lock step
//! with chunk n-1's ciphertext (a third stream), encrypting n-1 a tile ahead of its hash: the
//! three hashes run as the three lanes of [`compress`](super::lanes::compress), and each tile
//! is still in L1 when it is hashed.
//!
//! Results are exactly those of [`encrypt_chunk`](super::encrypt_chunk), one chunk later.

use super::SealedChunk;
use super::convergent::{Sha256Stream, key_and_digest, keystream_and_hash, whole_blocks};
use super::ids::{ChunkName, PlainDigest};
use super::keys::ChunkKey;
use super::keystream::Keystream;
use super::salt::Salt;

/// Bytes encrypted ahead of the ciphertext hash: a multiple of 64, small enough to stay in L1.
const TILE: usize = 4096;

/// One chunk's encryption: its index, what the manifest records, and its ciphertext.
pub struct Sealed {
    pub index: u32,
    pub chunk: SealedChunk,
    pub ciphertext: Vec<u8>,
}

/// Encrypts chunks in the order pushed, returning each one push later (and the last on `finish`).
pub struct Sealer {
    salt: Salt,
    pending: Option<Pending>,
}

/// A chunk whose plaintext is hashed (key and digest known) but not yet encrypted.
struct Pending {
    index: u32,
    buf: Vec<u8>,
    key: ChunkKey,
    plain: PlainDigest,
}

impl Sealer {
    pub fn new(salt: Salt) -> Self {
        Sealer { salt, pending: None }
    }

    /// Takes chunk `index`'s plaintext; returns the previously pushed chunk, encrypted.
    pub fn push(&mut self, index: u32, plaintext: Vec<u8>) -> Option<Sealed> {
        let Some(mut prev) = self.pending.take() else {
            let (key, plain) = key_and_digest(self.salt.as_bytes(), &plaintext);
            self.pending = Some(Pending { index, buf: plaintext, key, plain });
            return None;
        };
        let (key, plain, name) = overlapped(self.salt.as_bytes(), &plaintext, &prev.key, &mut prev.buf);
        self.pending = Some(Pending { index, buf: plaintext, key, plain });
        Some(prev.sealed(name))
    }

    /// Encrypts the chunk still held, if any.
    pub fn finish(&mut self) -> Option<Sealed> {
        let mut p = self.pending.take()?;
        let mut cipher = Keystream::for_chunk(&p.key);
        let name = ChunkName::from_bytes(keystream_and_hash(&mut cipher, &mut p.buf));
        Some(p.sealed(name))
    }
}

impl Pending {
    fn sealed(self, name: ChunkName) -> Sealed {
        Sealed {
            index: self.index,
            chunk: SealedChunk { name, key: self.key, plain: self.plain },
            ciphertext: self.buf,
        }
    }
}

/// Hashes `next`'s plaintext (key and digest) while encrypting `prev` in place under `prev_key`
/// and hashing its ciphertext (name), block by block across the three streams.
fn overlapped(
    salt: &[u8; 32],
    next: &[u8],
    prev_key: &ChunkKey,
    prev: &mut [u8],
) -> (ChunkKey, PlainDigest, ChunkName) {
    let Some((mut k, body)) = Sha256Stream::keyed(salt, next) else {
        let (key, plain) = key_and_digest(salt, next);
        let mut cipher = Keystream::for_chunk(prev_key);
        return (key, plain, ChunkName::from_bytes(keystream_and_hash(&mut cipher, prev)));
    };
    let k_whole = whole_blocks(body.len());
    let p_whole = whole_blocks(next.len());
    let n_whole = whole_blocks(prev.len());
    let (mut p, mut n) = (Sha256Stream::new(), Sha256Stream::new());
    let mut keystream = Keystream::for_chunk(prev_key);
    let end = k_whole.max(p_whole).max(prev.len());
    let mut at = 0;
    while at < end {
        let stop = (at + TILE).min(end);
        let prev_len = prev.len();
        if at < prev_len {
            keystream.apply(&mut prev[at..stop.min(prev_len)]);
        }
        let span = |whole: usize| at.min(whole)..stop.min(whole);
        Sha256Stream::update_lanes(
            [&mut p, &mut k, &mut n],
            [&next[span(p_whole)], &body[span(k_whole)], &prev[span(n_whole)]],
        );
        at = stop;
    }
    (
        ChunkKey::from_bytes(k.finish(&body[k_whole..])),
        PlainDigest::from_bytes(p.finish(&next[p_whole..])),
        ChunkName::from_bytes(n.finish(&prev[n_whole..])),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crypto::encrypt_chunk;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 9) as u8).collect()
    }

    /// Pushes every length through a sealer and checks each result against `encrypt_chunk`.
    fn check(lens: &[usize]) {
        let salt = Salt::new("sealer").unwrap();
        let mut sealer = Sealer::new(salt.clone());
        let mut out = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            out.extend(sealer.push(i as u32, pattern(len, i as u8)));
        }
        out.extend(sealer.finish());
        assert!(sealer.finish().is_none());
        assert_eq!(out.len(), lens.len());
        for (i, s) in out.iter().enumerate() {
            let mut want = pattern(lens[i], i as u8);
            let sealed = encrypt_chunk(&salt, &mut want);
            assert_eq!(s.index, i as u32);
            assert_eq!(s.chunk, sealed, "chunk {i} of {} bytes", lens[i]);
            assert!(s.ciphertext == want, "ciphertext of chunk {i} ({} bytes)", lens[i]);
        }
    }

    #[test]
    fn same_results_as_one_chunk_at_a_time() {
        check(&[512 << 10, 512 << 10, 512 << 10]);
        check(&[0, 1, 31, 32, 33, 63, 64, 65, 4095, 4096, 4097, 100_000, 7, 512 << 10, 12]);
        check(&[4096 * 3 + 17]);
        check(&[]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_lengths(lens in proptest::collection::vec(0usize..20_000, 0..6)) {
            check(&lens);
        }
    }
}
