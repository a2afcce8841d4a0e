//! AES-256-CTR (NIST SP 800-38A, 128-bit big-endian counter) applied to buffers in place.
//!
//! Why not the `ctr` crate: the crypto stage is one AES pass against SHA-256 passes, and `ctr` +
//! `aes` run CTR at about half of OpenSSL's speed on this hardware, because the counter blocks are
//! written to memory, encrypted, and XORed in separate passes. On CPUs with VAES and AVX-512 the
//! [`vaes`] kernel keeps 32 counter blocks in registers, encrypts them and XORs the data in one
//! pass (about 4x the `ctr` crate, 2x OpenSSL's AES-NI path). Elsewhere the portable path uses
//! the `aes` crate's block function (AES-NI or software). Both are checked against the `ctr`
//! crate and the NIST vectors in the tests below.

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use super::keys::ChunkKey;

/// Counter blocks encrypted per batch on the portable path.
const BATCH: usize = 64;

/// AES-256-CTR keystream state: the expanded key and the next counter block. Public for the
/// benches; chunks get theirs through [`encrypt_chunk`](super::encrypt_chunk) and the sealer.
pub struct Keystream {
    engine: Engine,
    counter: u128,
}

enum Engine {
    #[cfg(target_arch = "x86_64")]
    Vaes(Box<vaes::RoundKeys>),
    Portable(Box<Aes256>),
}

impl Keystream {
    /// A keystream under `key` whose first counter block is `iv` (chunks use an all-zero IV).
    pub fn new(key: &ChunkKey, iv: &[u8; 16]) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(keys) = vaes::RoundKeys::new(key.as_bytes()) {
            return Keystream { engine: Engine::Vaes(Box::new(keys)), counter: u128::from_be_bytes(*iv) };
        }
        Self::portable(key, iv)
    }

    /// A chunk's keystream: chunks use an all-zero IV (safe: a key is a hash of its one plaintext).
    pub fn for_chunk(key: &ChunkKey) -> Self {
        Self::new(key, &[0; 16])
    }

    /// The portable path, whatever the CPU has (tests compare it with the fast one).
    fn portable(key: &ChunkKey, iv: &[u8; 16]) -> Self {
        Keystream {
            engine: Engine::Portable(Box::new(Aes256::new(key.as_bytes().into()))),
            counter: u128::from_be_bytes(*iv),
        }
    }

    /// XORs the next `data.len()` keystream bytes into `data`. Every call but the last must cover
    /// whole 16-byte blocks (the keystream of a partial block is not kept for the next call).
    pub fn apply(&mut self, data: &mut [u8]) {
        let blocks = data.len().div_ceil(16) as u128;
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Vaes(keys) => vaes::apply(keys, self.counter, data),
            Engine::Portable(aes) => portable_apply(aes, self.counter, data),
        }
        self.counter = self.counter.wrapping_add(blocks);
    }
}

fn portable_apply(aes: &Aes256, mut counter: u128, data: &mut [u8]) {
    let mut ks = [aes::Block::default(); BATCH];
    for part in data.chunks_mut(BATCH * 16) {
        let n = part.len().div_ceil(16);
        for b in &mut ks[..n] {
            *b = counter.to_be_bytes().into();
            counter = counter.wrapping_add(1);
        }
        aes.encrypt_blocks(&mut ks[..n]);
        for (d, k) in part.iter_mut().zip(ks[..n].iter().flatten()) {
            *d ^= *k;
        }
    }
    for b in &mut ks {
        b.as_mut_slice().zeroize();
    }
}

#[cfg(target_arch = "x86_64")]
mod vaes {
    use core::arch::x86_64::*;
    use std::sync::OnceLock;

    use zeroize::Zeroize;

    /// Whether this CPU (and OS) can run the kernel; detected once.
    pub(super) fn available() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            is_x86_feature_detected!("aes")
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("vaes")
        })
    }

    /// The 15 AES-256 round keys, each broadcast to the four 128-bit lanes of a ZMM register.
    pub(super) struct RoundKeys([__m512i; 15]);

    impl RoundKeys {
        /// The expanded key, or `None` if this CPU cannot run the kernel.
        pub(super) fn new(key: &[u8; 32]) -> Option<Self> {
            // SAFETY: `available()` confirmed the features `expand` is compiled for.
            available().then(|| unsafe { expand(key) })
        }
    }

    impl Drop for RoundKeys {
        fn drop(&mut self) {
            self.0.zeroize();
        }
    }

    /// AES-256 key expansion (FIPS 197 section 5.2) with AESKEYGENASSIST, as in Intel's AES-NI
    /// white paper: the odd round keys take RotWord+SubWord+Rcon, the even ones SubWord only.
    #[target_feature(enable = "aes,avx512f")]
    fn expand(key: &[u8; 32]) -> RoundKeys {
        /// w[i..i+4] from w[i-8..i-4] (`prev`) and the assisted word broadcast in `assist`.
        #[target_feature(enable = "aes")]
        fn step(prev: __m128i, assist: __m128i) -> __m128i {
            let mut t = prev;
            let mut s = _mm_slli_si128::<4>(prev);
            t = _mm_xor_si128(t, s);
            s = _mm_slli_si128::<4>(s);
            t = _mm_xor_si128(t, s);
            s = _mm_slli_si128::<4>(s);
            t = _mm_xor_si128(t, s);
            _mm_xor_si128(t, assist)
        }
        // SAFETY: 32 readable bytes, unaligned loads.
        let (mut a, mut b) =
            unsafe { (_mm_loadu_si128(key.as_ptr().cast()), _mm_loadu_si128(key.as_ptr().add(16).cast())) };
        let mut k = [_mm_setzero_si128(); 15];
        k[0] = a;
        k[1] = b;
        macro_rules! rounds {
            ($i:expr, $rcon:expr) => {
                a = step(a, _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(b)));
                k[$i] = a;
                b = step(b, _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(a)));
                k[$i + 1] = b;
            };
        }
        rounds!(2, 0x01);
        rounds!(4, 0x02);
        rounds!(6, 0x04);
        rounds!(8, 0x08);
        rounds!(10, 0x10);
        rounds!(12, 0x20);
        k[14] = step(a, _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<0x40>(b)));
        let wide = RoundKeys(k.map(|x| _mm512_broadcast_i32x4(x)));
        k.zeroize();
        wide
    }

    /// XORs the keystream from counter block `counter` into `data`.
    pub(super) fn apply(keys: &RoundKeys, counter: u128, data: &mut [u8]) {
        // SAFETY: `RoundKeys::new` builds keys only when `available()` said the features are there.
        unsafe { apply_inner(keys, counter, data) }
    }

    /// Registers of four blocks per loop turn: 8 x 4 = 32 blocks in flight hide VAESENC latency,
    /// and with the 15 round keys fit in the 32 ZMM registers.
    const WIDE: usize = 8;

    #[target_feature(enable = "aes,avx512f,avx512bw,vaes")]
    fn apply_inner(keys: &RoundKeys, counter: u128, data: &mut [u8]) {
        let rk = &keys.0;
        // Counters live in each 128-bit lane as a little-endian u128 (low qword first) and are
        // byte-reversed into the big-endian block. Only the low qword is incremented in vector
        // form, so a call whose low 64 bits would wrap takes the scalar route below (never the
        // case for chunks, whose counters start at zero).
        let reverse = _mm512_set_epi8(
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
            10, 11, 12, 13, 14, 15,
        );
        let blocks = data.len().div_ceil(16) as u64;
        let (hi, lo) = ((counter >> 64) as u64, counter as u64);
        let mut at = 0;
        if lo.checked_add(blocks).is_some() {
            let (hi, lo) = (hi as i64, lo as i64);
            let mut ctr = _mm512_set_epi64(
                hi,
                lo.wrapping_add(3),
                hi,
                lo.wrapping_add(2),
                hi,
                lo.wrapping_add(1),
                hi,
                lo,
            );
            let four = _mm512_set_epi64(0, 4, 0, 4, 0, 4, 0, 4);
            while data.len() - at >= 64 * WIDE {
                let mut b = [_mm512_setzero_si512(); WIDE];
                for x in &mut b {
                    *x = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, reverse), rk[0]);
                    ctr = _mm512_add_epi64(ctr, four);
                }
                for key in &rk[1..14] {
                    for x in &mut b {
                        *x = _mm512_aesenc_epi128(*x, *key);
                    }
                }
                for (j, x) in b.iter().enumerate() {
                    let last = _mm512_aesenclast_epi128(*x, rk[14]);
                    // SAFETY: `at + 64 * WIDE <= data.len()`; unaligned load and store.
                    unsafe {
                        let p = data.as_mut_ptr().add(at + 64 * j).cast::<__m512i>();
                        _mm512_storeu_si512(p, _mm512_xor_si512(_mm512_loadu_si512(p), last));
                    }
                }
                at += 64 * WIDE;
            }
        }
        // The rest, four blocks at a time, counters built in scalar (128-bit carries included).
        let mut next = counter.wrapping_add((at / 16) as u128);
        while at < data.len() {
            let mut ks = [0u8; 64];
            for lane in ks.chunks_exact_mut(16) {
                lane.copy_from_slice(&next.to_be_bytes());
                next = next.wrapping_add(1);
            }
            // SAFETY: 64 readable and writable bytes, unaligned.
            unsafe {
                let mut x = _mm512_xor_si512(_mm512_loadu_si512(ks.as_ptr().cast()), rk[0]);
                for key in &rk[1..14] {
                    x = _mm512_aesenc_epi128(x, *key);
                }
                x = _mm512_aesenclast_epi128(x, rk[14]);
                _mm512_storeu_si512(ks.as_mut_ptr().cast(), x);
            }
            let n = (data.len() - at).min(64);
            for (d, k) in data[at..at + n].iter_mut().zip(&ks) {
                *d ^= *k;
            }
            ks.zeroize();
            at += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use ctr::Ctr128BE;
    use ctr::cipher::{KeyIvInit, StreamCipher};
    use proptest::prelude::*;

    use super::*;

    fn reference(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
        Ctr128BE::<Aes256>::new(key.into(), iv.into()).apply_keystream(data);
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(13) ^ (i >> 7) as u8).collect()
    }

    /// Applies both engines in pieces of the given sizes and checks them against `ctr`.
    fn check(key: [u8; 32], iv: [u8; 16], pieces: &[usize]) {
        let total: usize = pieces.iter().sum();
        let mut want = pattern(total);
        reference(&key, &iv, &mut want);
        let chunk_key = ChunkKey::from_bytes(key);
        for (what, mut ks) in
            [("chosen", Keystream::new(&chunk_key, &iv)), ("portable", Keystream::portable(&chunk_key, &iv))]
        {
            let mut got = pattern(total);
            let mut at = 0;
            for &p in pieces {
                ks.apply(&mut got[at..at + p]);
                at += p;
            }
            assert!(got == want, "{what} engine, iv {iv:02x?}, pieces {pieces:?}");
        }
    }

    #[test]
    fn nist_sp800_38a_f55_ctr_aes256_encrypt() {
        let key: [u8; 32] = hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
            .unwrap()
            .try_into()
            .unwrap();
        let iv: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").unwrap().try_into().unwrap();
        let plain = hex::decode(concat!(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
        ))
        .unwrap();
        let want = concat!(
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5",
            "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
        );
        let key = ChunkKey::from_bytes(key);
        for mut ks in [Keystream::new(&key, &iv), Keystream::portable(&key, &iv)] {
            let mut buf = plain.clone();
            ks.apply(&mut buf);
            assert_eq!(hex::encode(&buf), want);
        }
    }

    #[test]
    fn whole_chunks_and_awkward_lengths() {
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 511, 512, 513, 4096, 4096 + 48, 512 << 10] {
            check([3; 32], [0; 16], &[len]);
        }
        check([4; 32], [0; 16], &[4096; 128]);
        check([5; 32], [0; 16], &[512, 16, 48, 1024, 7]);
    }

    #[test]
    fn counter_carries_across_64_and_128_bits() {
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&(u64::MAX - 5).to_be_bytes());
        check([6; 32], iv, &[16 * 40, 16 * 3, 100]);
        check([7; 32], [0xff; 16], &[16 * 40, 33]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_split_into_whole_blocks(
            key in any::<[u8; 32]>(),
            low in any::<u64>(),
            blocks in proptest::collection::vec(0usize..80, 0..6),
            tail in 0usize..40,
        ) {
            let mut iv = [0u8; 16];
            iv[8..].copy_from_slice(&low.to_be_bytes());
            let mut pieces: Vec<usize> = blocks.iter().map(|b| b * 16).collect();
            pieces.push(tail);
            check(key, iv, &pieces);
        }
    }
}
