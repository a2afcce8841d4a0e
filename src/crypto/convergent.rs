//! Convergent encryption of one chunk, as the paper does it:
//!
//! - key = SHA-256(salt || plaintext)
//! - ciphertext = AES-256-CTR(key, IV = 0, 128-bit big-endian counter), in place
//! - name = SHA-256(ciphertext)
//! - plaintext digest = SHA-256(plaintext), recorded so readers can check what they decrypted
//!
//! An all-zero IV is safe because a key is only ever used for one plaintext (the key is a hash of
//! it). Chunks are not AEAD-sealed: integrity comes from the name, which anyone can check without
//! the key, and AEAD tags are not collision resistant against someone who knows the key.
//!
//! Speed: the stage is bound by SHA-256 (three hashes per chunk against one AES pass). For one
//! chunk alone the two plaintext hashes run as two lanes of one SHA-NI kernel (crypto/lanes.rs),
//! and the ciphertext is hashed tile by tile right after encryption while the tile is still in L1.
//! A stream of chunks goes through the [`Sealer`](super::Sealer), which runs all three hashes at
//! once. Opening runs its two hashes (name, plaintext digest) as two lanes, one tile apart.

use sha2::block_api::compress256;

use super::error::Error;
use super::ids::{ChunkName, PlainDigest};
use super::keys::ChunkKey;
use super::keystream::Keystream;
use super::lanes;
use super::salt::Salt;

/// Bytes encrypted before hashing them: small enough to stay in L1, large enough to amortize calls.
const CTR_TILE: usize = 16384;
/// Bytes decrypted per step when opening a chunk: the tile being decrypted and the one before it
/// stay in L1 while both are hashed.
const OPEN_TILE: usize = 4096;

/// What encrypting a chunk yields: everything the manifest records about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedChunk {
    /// SHA-256 of the ciphertext: the name to store it under.
    pub name: ChunkName,
    /// SHA-256(salt || plaintext): the key to decrypt it (secret; goes to the encrypted key table).
    pub key: ChunkKey,
    /// SHA-256 of the plaintext, checked after decryption.
    pub plain: PlainDigest,
}

/// Encrypts `buf` in place (plaintext in, ciphertext out) and returns its name, key and digest.
///
/// Deterministic: the same salt and plaintext always give the same ciphertext, name and key.
pub fn encrypt_chunk(salt: &Salt, buf: &mut [u8]) -> SealedChunk {
    let (key, plain) = key_and_digest(salt.as_bytes(), buf);
    let mut cipher = Keystream::for_chunk(&key);
    let name = ChunkName::from_bytes(keystream_and_hash(&mut cipher, buf));
    SealedChunk { name, key, plain }
}

/// Decrypts chunk `name` in place, checking that `buf` hashes to `name` and that the result
/// hashes to `plain`.
///
/// On `ChunkNameMismatch` the buffer is left as it came (the ciphertext); on `PlaintextMismatch`
/// it holds the bad decryption and must be discarded. Either way nothing decrypted from bytes
/// that fail a check is ever returned as a chunk.
pub fn open_chunk(
    name: &ChunkName,
    key: &ChunkKey,
    plain: &PlainDigest,
    buf: &mut [u8],
) -> Result<(), Error> {
    let (actual, decrypted) = name_decrypt_digest(&mut Keystream::for_chunk(key), buf);
    let actual = ChunkName::from_bytes(actual);
    if actual != *name {
        // CTR is its own inverse: applying the keystream again puts the ciphertext back.
        Keystream::for_chunk(key).apply(buf);
        return Err(Error::ChunkNameMismatch { expected: *name, actual });
    }
    if PlainDigest::from_bytes(decrypted) != *plain {
        return Err(Error::PlaintextMismatch { name: *name });
    }
    Ok(())
}

/// Hashes the ciphertext in `buf` (its name), decrypts it in place and hashes the plaintext (its
/// digest), a tile at a time: tile i's ciphertext and tile i-1's plaintext are hashed as two lanes,
/// then tile i is decrypted, so every tile is hashed as ciphertext before it is touched.
fn name_decrypt_digest(keystream: &mut Keystream, buf: &mut [u8]) -> ([u8; 32], [u8; 32]) {
    let whole = whole_blocks(buf.len());
    let (mut name, mut plain) = (Sha256Stream::new(), Sha256Stream::new());
    let mut decrypted = 0..0;
    loop {
        let next = decrypted.end..(decrypted.end + OPEN_TILE).min(whole);
        Sha256Stream::update_lanes([&mut name, &mut plain], [&buf[next.clone()], &buf[decrypted]]);
        if next.is_empty() {
            break;
        }
        keystream.apply(&mut buf[next.clone()]);
        decrypted = next;
    }
    let name = name.finish(&buf[whole..]);
    keystream.apply(&mut buf[whole..]);
    (name, plain.finish(&buf[whole..]))
}

/// Computes SHA-256(salt || plaintext) and SHA-256(plaintext) in one pass over the plaintext.
/// (A stream of chunks does better with [`Sealer`](super::Sealer), which hashes this chunk's
/// plaintext together with the previous chunk's ciphertext.)
pub(super) fn key_and_digest(salt: &[u8; 32], plain: &[u8]) -> (ChunkKey, PlainDigest) {
    let Some((mut k, body)) = Sha256Stream::keyed(salt, plain) else {
        let mut all = [0u8; 64];
        all[..32].copy_from_slice(salt);
        all[32..32 + plain.len()].copy_from_slice(plain);
        let key = Sha256Stream::new().finish(&all[..32 + plain.len()]);
        return (ChunkKey::from_bytes(key), PlainDigest::from_bytes(Sha256Stream::new().finish(plain)));
    };
    let (k_rest, k_tail) = body.split_at(whole_blocks(body.len()));
    let mut p = Sha256Stream::new();
    let p_whole = whole_blocks(plain.len());
    let (p_rest, p_tail) = plain.split_at(p_whole);
    // Two lanes over the common length; the plain stream has at most one block more.
    Sha256Stream::update_lanes([&mut p, &mut k], [p_rest, k_rest]);
    (ChunkKey::from_bytes(k.finish(k_tail)), PlainDigest::from_bytes(p.finish(p_tail)))
}

/// Applies the keystream to `buf` in place and hashes the result, each tile while it is in L1:
/// encryption hashes the ciphertext (the chunk's name), decryption the plaintext (its check).
pub(super) fn keystream_and_hash(cipher: &mut Keystream, buf: &mut [u8]) -> [u8; 32] {
    let mut h = Sha256Stream::new();
    let mut tiles = buf.chunks_exact_mut(CTR_TILE);
    for tile in &mut tiles {
        cipher.apply(tile);
        h.update_blocks(tile);
    }
    let rest = tiles.into_remainder();
    cipher.apply(rest);
    h.finish(rest)
}

/// SHA-256 over whole 64-byte blocks, driven directly through sha2's compression function so that
/// two streams can be interleaved without the buffering of the `Digest` API.
pub(super) struct Sha256Stream {
    state: [u32; 8],
    len: u64,
}

impl Sha256Stream {
    const IV: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    pub(super) fn new() -> Self {
        Sha256Stream { state: Self::IV, len: 0 }
    }

    /// `data.len()` must be a multiple of 64.
    pub(super) fn update_blocks(&mut self, data: &[u8]) {
        debug_assert_eq!(data.len() % 64, 0);
        compress256(&mut self.state, as_blocks(data));
        self.len += data.len() as u64;
    }

    /// The key's stream, SHA-256(salt || plaintext), with its first block (the salt and the
    /// plaintext's first 32 bytes) absorbed, and the rest of the plaintext it reads next: from
    /// there on it consumes whole blocks at offset 32. `None` for a plaintext under 32 bytes,
    /// whose key fits one final block.
    pub(super) fn keyed<'p>(salt: &[u8; 32], plain: &'p [u8]) -> Option<(Sha256Stream, &'p [u8])> {
        let (head, body) = plain.split_first_chunk::<32>()?;
        let mut first = [0u8; 64];
        first[..32].copy_from_slice(salt);
        first[32..].copy_from_slice(head);
        let mut k = Sha256Stream::new();
        k.update_blocks(&first);
        Some((k, body))
    }

    /// Feeds `data[i]` (whole blocks) to `streams[i]`, running them as lanes of one kernel for as
    /// long as all have blocks, and the rest of each on its own.
    pub(super) fn update_lanes<const N: usize>(mut streams: [&mut Sha256Stream; N], data: [&[u8]; N]) {
        let common = data.iter().map(|d| d.len()).min().unwrap_or(0);
        lanes::compress(streams.each_mut().map(|s| &mut s.state), data.map(|d| as_blocks(&d[..common])));
        for (s, d) in streams.into_iter().zip(data) {
            s.len += common as u64;
            s.update_blocks(&d[common..]);
        }
    }

    /// Hashes `tail` (any length) and pads (FIPS 180-4 section 5.1.1).
    pub(super) fn finish(mut self, tail: &[u8]) -> [u8; 32] {
        let whole = whole_blocks(tail.len());
        self.update_blocks(&tail[..whole]);
        let tail = &tail[whole..];
        let bits = (self.len + tail.len() as u64) * 8;
        let mut last = [0u8; 128];
        last[..tail.len()].copy_from_slice(tail);
        last[tail.len()] = 0x80;
        let n = if tail.len() < 56 { 64 } else { 128 };
        last[n - 8..n].copy_from_slice(&bits.to_be_bytes());
        compress256(&mut self.state, as_blocks(&last[..n]));
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// The length of the whole 64-byte blocks in `len` bytes.
pub(super) fn whole_blocks(len: usize) -> usize {
    len - len % 64
}

/// The whole 64-byte blocks of `data`, as arrays.
fn as_blocks(data: &[u8]) -> &[[u8; 64]] {
    data.as_chunks::<64>().0
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn salted_key(salt: &Salt, plain: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update(plain);
        h.finalize().into()
    }

    /// Deterministic filler; no RNG needed for coverage of lengths.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
    }

    #[test]
    fn streams_match_reference_sha256_for_every_length_boundary() {
        let salt = Salt::new("t").unwrap();
        let mut lens: Vec<usize> = (0..300).collect();
        lens.extend([4095, 4096, 4097, 8192 + 33, 65536 - 1, 65536 + 96, 512 * 1024]);
        for len in lens {
            let plain = pattern(len, 7);
            let (key, digest) = key_and_digest(salt.as_bytes(), &plain);
            assert_eq!(key.as_bytes(), &salted_key(&salt, &plain), "key, len {len}");
            assert_eq!(digest, PlainDigest::of_plaintext(&plain), "digest, len {len}");
            let mut buf = plain.clone();
            let sealed = encrypt_chunk(&salt, &mut buf);
            assert_eq!(sealed.name, ChunkName::of_ciphertext(&buf), "name, len {len}");
            open_chunk(&sealed.name, &sealed.key, &sealed.plain, &mut buf).unwrap();
            assert_eq!(buf, plain, "round trip, len {len}");
        }
    }

    #[test]
    fn aes256_ctr_nist_sp800_38a_f55() {
        let key = ChunkKey::from_bytes(
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let iv: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").unwrap().try_into().unwrap();
        let mut buf = hex::decode(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710"
        ))
        .unwrap();
        let want = hex::decode(concat!(
            "601ec313775789a5b7a7f504bbf3d228",
            "f443e3ca4d62b59aca84e990cacaf5c5",
            "2b0930daa23de94ce87017ba2d84988d",
            "dfc9c58db67aada613c2dd08457941a6"
        ))
        .unwrap();
        let name = ChunkName::from_bytes(keystream_and_hash(&mut Keystream::new(&key, &iv), &mut buf));
        assert_eq!(hex::encode(&buf), hex::encode(&want));
        assert_eq!(name, ChunkName::of_ciphertext(&want));
    }

    #[test]
    fn zero_iv_counter_is_big_endian_from_zero() {
        // Block i of the keystream must be AES(key, i as u128 big-endian).
        use aes::Aes256;
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let key = ChunkKey::from_bytes([9; 32]);
        let mut buf = vec![0u8; 16 * 300];
        keystream_and_hash(&mut Keystream::for_chunk(&key), &mut buf);
        let aes = Aes256::new(key.as_bytes().into());
        for i in [0u128, 1, 255, 256, 299] {
            let mut block = i.to_be_bytes().into();
            aes.encrypt_block(&mut block);
            assert_eq!(&buf[i as usize * 16..][..16], &block[..], "block {i}");
        }
    }

    #[test]
    fn tampering_is_reported_by_kind() {
        let salt = Salt::new("s").unwrap();
        let mut buf = pattern(10_000, 1);
        let sealed = encrypt_chunk(&salt, &mut buf);
        let mut flipped = buf.clone();
        flipped[1234] ^= 0x10;
        let before = flipped.clone();
        match open_chunk(&sealed.name, &sealed.key, &sealed.plain, &mut flipped) {
            Err(e @ Error::ChunkNameMismatch { .. }) => {
                assert!(e.to_string().contains(&sealed.name.to_string()))
            }
            other => panic!("expected ChunkNameMismatch, got {other:?}"),
        }
        assert_eq!(flipped, before, "a rejected chunk is not decrypted");
        let wrong_key = ChunkKey::from_bytes([1; 32]);
        match open_chunk(&sealed.name, &wrong_key, &sealed.plain, &mut buf) {
            Err(e @ Error::PlaintextMismatch { .. }) => {
                assert!(e.to_string().contains(&sealed.name.to_string()))
            }
            other => panic!("expected PlaintextMismatch, got {other:?}"),
        }
    }
}
