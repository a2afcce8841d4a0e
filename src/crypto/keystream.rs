//! AES-256-CTR (NIST SP 800-38A, 128-bit big-endian counter) applied to buffers in place.
//!
//! Why not the `ctr` crate: the crypto stage is one AES pass against SHA-256 passes, and `ctr` +
//! `aes` run CTR at about half of OpenSSL's speed on this hardware, because the counter blocks are
//! written to memory, encrypted, and XORed in separate passes. The x86-64 kernels here keep the
//! counter blocks in registers, encrypt many at once (AES round latency is hidden only with
//! several blocks in flight) and XOR the data in the same pass:
//! - `avx512`: VAES on ZMM registers, 8 x 4 = 32 blocks per loop turn (about 4x the `ctr` crate,
//!   2x OpenSSL's AES-NI path on an AVX-512 EPYC);
//! - `avx2-vaes`: VAES on YMM registers, 8 x 2 = 16 blocks per turn, for CPUs with VAES but no
//!   AVX-512 (only 16 vector registers: the round keys are memory operands);
//! - `aesni`: 128-bit AES-NI, 8 blocks per turn, for CPUs without VAES.
//! - `portable`: the `aes` crate's block function (AES-NI, ARMv8 or software), in batches.
//!
//! [`CryptoPath`] picks one at run time (or `CHUNKLOAD_CRYPTO_PATH` forces it). Every kernel is
//! checked against the `ctr` crate and the NIST vectors in the tests below.

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use super::error::{Error, Result};
use super::keys::ChunkKey;
use super::path::CryptoPath;

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
    X86(Box<x86::RoundKeys>),
    Portable(Box<Aes256>),
}

impl Keystream {
    /// A keystream under `key` whose first counter block is `iv` (chunks use an all-zero IV), on
    /// this process's kernel ([`CryptoPath::active`]).
    ///
    /// # Panics
    /// If `CHUNKLOAD_CRYPTO_PATH` names a kernel that does not exist or that this CPU cannot run
    /// (the CLI checks it at start and reports it as an error instead).
    pub fn new(key: &ChunkKey, iv: &[u8; 16]) -> Self {
        let path = CryptoPath::active().unwrap_or_else(|e| panic!("{e}"));
        Self::with_path(key, iv, path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A keystream on the given kernel; refused if this CPU cannot run it. For tests and benches
    /// that compare kernels on one machine.
    pub fn with_path(key: &ChunkKey, iv: &[u8; 16], path: CryptoPath) -> Result<Self> {
        let counter = u128::from_be_bytes(*iv);
        if !path.supported() {
            return Err(Error::CryptoPath {
                value: path.name().to_string(),
                reason: format!("this CPU cannot run it (lacks {})", path.missing_features().join(", ")),
            });
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(keys) = x86::RoundKeys::new(key.as_bytes(), path) {
            return Ok(Keystream { engine: Engine::X86(Box::new(keys)), counter });
        }
        Ok(Keystream { engine: Engine::Portable(Box::new(Aes256::new(key.as_bytes().into()))), counter })
    }

    /// A chunk's keystream: chunks use an all-zero IV (safe: a key is a hash of its one plaintext).
    pub fn for_chunk(key: &ChunkKey) -> Self {
        Self::new(key, &[0; 16])
    }

    /// The kernel this keystream runs on.
    pub fn path(&self) -> CryptoPath {
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::X86(keys) => keys.path(),
            Engine::Portable(_) => CryptoPath::Portable,
        }
    }

    /// XORs the next `data.len()` keystream bytes into `data`. Every call but the last must cover
    /// whole 16-byte blocks (the keystream of a partial block is not kept for the next call).
    pub fn apply(&mut self, data: &mut [u8]) {
        let blocks = data.len().div_ceil(16) as u128;
        match &self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::X86(keys) => keys.apply(self.counter, data),
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
mod x86 {
    use core::arch::x86_64::*;

    use zeroize::Zeroize;

    use super::CryptoPath;

    /// The 15 AES-256 round keys, and for the VAES kernels each broadcast to every 128-bit lane.
    pub(super) struct RoundKeys {
        narrow: [__m128i; 15],
        wide: Wide,
    }

    #[expect(clippy::large_enum_variant, reason = "boxed as a whole in `Engine`; one per keystream")]
    enum Wide {
        Avx512([__m512i; 15]),
        Avx2Vaes([__m256i; 15]),
        AesNi,
    }

    impl RoundKeys {
        /// The expanded key for `path`, or `None` for the portable path. `path` must be one this
        /// CPU runs (checked again here: the kernels are only ever entered with their features).
        pub(super) fn new(key: &[u8; 32], path: CryptoPath) -> Option<Self> {
            if path == CryptoPath::Portable || !path.supported() {
                return None;
            }
            // SAFETY: every path but the portable one needs AES-NI and SSSE3, confirmed above;
            // each broadcast below runs only for the path whose features were confirmed.
            unsafe {
                let narrow = expand(key);
                let wide = match path {
                    CryptoPath::Avx512 => Wide::Avx512(broadcast512(&narrow)),
                    CryptoPath::Avx2Vaes => Wide::Avx2Vaes(broadcast256(&narrow)),
                    _ => Wide::AesNi,
                };
                Some(RoundKeys { narrow, wide })
            }
        }

        pub(super) fn path(&self) -> CryptoPath {
            match self.wide {
                Wide::Avx512(_) => CryptoPath::Avx512,
                Wide::Avx2Vaes(_) => CryptoPath::Avx2Vaes,
                Wide::AesNi => CryptoPath::AesNi,
            }
        }

        /// XORs the keystream from counter block `counter` into `data`.
        pub(super) fn apply(&self, counter: u128, data: &mut [u8]) {
            // SAFETY: `new` built these keys only after confirming the path's features.
            let done = unsafe {
                match &self.wide {
                    Wide::Avx512(rk) => apply_avx512(rk, counter, data),
                    Wide::Avx2Vaes(rk) => apply_avx2_vaes(rk, counter, data),
                    Wide::AesNi => apply_aesni(&self.narrow, counter, data),
                }
            };
            // SAFETY: as above (AES-NI and SSSE3 are part of every x86 path).
            unsafe { apply_tail(&self.narrow, counter, done, data) }
        }
    }

    impl Drop for RoundKeys {
        fn drop(&mut self) {
            self.narrow.zeroize();
            match &mut self.wide {
                Wide::Avx512(k) => k.zeroize(),
                Wide::Avx2Vaes(k) => k.zeroize(),
                Wide::AesNi => {}
            }
        }
    }

    /// AES-256 key expansion (FIPS 197 section 5.2) with AESKEYGENASSIST, as in Intel's AES-NI
    /// white paper: the odd round keys take RotWord+SubWord+Rcon, the even ones SubWord only.
    #[target_feature(enable = "aes,sse2")]
    fn expand(key: &[u8; 32]) -> [__m128i; 15] {
        /// w[i..i+4] from w[i-8..i-4] (`prev`) and the assisted word broadcast in `assist`.
        #[target_feature(enable = "aes,sse2")]
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
        k
    }

    #[target_feature(enable = "avx512f")]
    fn broadcast512(k: &[__m128i; 15]) -> [__m512i; 15] {
        k.map(|x| _mm512_broadcast_i32x4(x))
    }

    #[target_feature(enable = "avx2")]
    fn broadcast256(k: &[__m128i; 15]) -> [__m256i; 15] {
        k.map(|x| _mm256_broadcastsi128_si256(x))
    }

    /// Whether the low 64 bits of the counter stay clear of a wrap for `data`: the vector loops
    /// increment only the low qword of each lane's counter, so a call that would carry into the
    /// high qword leaves everything to [`apply_tail`] (never the case for chunks, whose counters
    /// start at zero).
    fn low_qword_suffices(counter: u128, data: &[u8]) -> bool {
        (counter as u64).checked_add(data.len().div_ceil(16) as u64).is_some()
    }

    /// Registers of four blocks per loop turn: 8 x 4 = 32 blocks in flight hide VAESENC latency,
    /// and with the 15 round keys fit in the 32 ZMM registers.
    const WIDE_512: usize = 8;

    /// The AVX-512 kernel over whole 512-byte runs; returns the bytes it did.
    #[target_feature(enable = "aes,avx512f,avx512bw,vaes")]
    fn apply_avx512(rk: &[__m512i; 15], counter: u128, data: &mut [u8]) -> usize {
        // Counters live in each 128-bit lane as a little-endian u128 (low qword first) and are
        // byte-reversed into the big-endian block.
        let reverse = _mm512_set_epi8(
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
            10, 11, 12, 13, 14, 15,
        );
        if !low_qword_suffices(counter, data) {
            return 0;
        }
        let (hi, lo) = ((counter >> 64) as i64, counter as u64 as i64);
        let mut ctr =
            _mm512_set_epi64(hi, lo.wrapping_add(3), hi, lo.wrapping_add(2), hi, lo.wrapping_add(1), hi, lo);
        let four = _mm512_set_epi64(0, 4, 0, 4, 0, 4, 0, 4);
        let mut at = 0;
        while data.len() - at >= 64 * WIDE_512 {
            let mut b = [_mm512_setzero_si512(); WIDE_512];
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
                // SAFETY: `at + 64 * WIDE_512 <= data.len()`; unaligned load and store.
                unsafe {
                    let p = data.as_mut_ptr().add(at + 64 * j).cast::<__m512i>();
                    _mm512_storeu_si512(p, _mm512_xor_si512(_mm512_loadu_si512(p), last));
                }
            }
            at += 64 * WIDE_512;
        }
        at
    }

    /// Registers of two blocks per loop turn: 8 x 2 = 16 blocks in flight. Without AVX-512 there
    /// are 16 YMM registers, so the round keys are read from memory (L1) as VAESENC operands.
    const WIDE_256: usize = 8;

    /// The AVX2 + VAES kernel over whole 256-byte runs; returns the bytes it did.
    #[target_feature(enable = "aes,avx2,vaes")]
    fn apply_avx2_vaes(rk: &[__m256i; 15], counter: u128, data: &mut [u8]) -> usize {
        let reverse = _mm256_set_epi8(
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            13, 14, 15,
        );
        if !low_qword_suffices(counter, data) {
            return 0;
        }
        let (hi, lo) = ((counter >> 64) as i64, counter as u64 as i64);
        let mut ctr = _mm256_set_epi64x(hi, lo.wrapping_add(1), hi, lo);
        let two = _mm256_set_epi64x(0, 2, 0, 2);
        let mut at = 0;
        while data.len() - at >= 32 * WIDE_256 {
            let mut b = [_mm256_setzero_si256(); WIDE_256];
            for x in &mut b {
                *x = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, reverse), rk[0]);
                ctr = _mm256_add_epi64(ctr, two);
            }
            // Round by round over all the blocks (`map` over the array keeps them in registers and
            // the rounds of different blocks interleaved; nested loops let LLVM chain each block's
            // rounds one after the other, a latency-bound serial chain).
            for key in &rk[1..14] {
                b = b.map(|x| _mm256_aesenc_epi128(x, *key));
            }
            for (j, x) in b.iter().enumerate() {
                let last = _mm256_aesenclast_epi128(*x, rk[14]);
                // SAFETY: `at + 32 * WIDE_256 <= data.len()`; unaligned load and store.
                unsafe {
                    let p = data.as_mut_ptr().add(at + 32 * j).cast::<__m256i>();
                    _mm256_storeu_si256(p, _mm256_xor_si256(_mm256_loadu_si256(p), last));
                }
            }
            at += 32 * WIDE_256;
        }
        at
    }

    /// Blocks per loop turn of the AES-NI kernel: AESENC has a latency of 4 cycles and a
    /// throughput of one or two per cycle, so 8 independent blocks keep the unit busy.
    const WIDE_128: usize = 8;

    /// The 128-bit AES-NI kernel over whole 128-byte runs; returns the bytes it did.
    #[target_feature(enable = "aes,sse2,ssse3")]
    fn apply_aesni(rk: &[__m128i; 15], counter: u128, data: &mut [u8]) -> usize {
        let reverse = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        if !low_qword_suffices(counter, data) {
            return 0;
        }
        let (hi, lo) = ((counter >> 64) as i64, counter as u64 as i64);
        let mut ctr = _mm_set_epi64x(hi, lo);
        let one = _mm_set_epi64x(0, 1);
        let mut at = 0;
        while data.len() - at >= 16 * WIDE_128 {
            let mut b = [_mm_setzero_si128(); WIDE_128];
            for x in &mut b {
                *x = _mm_xor_si128(_mm_shuffle_epi8(ctr, reverse), rk[0]);
                ctr = _mm_add_epi64(ctr, one);
            }
            // Round by round over all the blocks (see the AVX2 kernel).
            for key in &rk[1..14] {
                b = b.map(|x| _mm_aesenc_si128(x, *key));
            }
            for (j, x) in b.iter().enumerate() {
                let last = _mm_aesenclast_si128(*x, rk[14]);
                // SAFETY: `at + 16 * WIDE_128 <= data.len()`; unaligned load and store.
                unsafe {
                    let p = data.as_mut_ptr().add(at + 16 * j).cast::<__m128i>();
                    _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), last));
                }
            }
            at += 16 * WIDE_128;
        }
        at
    }

    /// Whatever the vector loop left from byte `at` on, four blocks at a time with AES-NI,
    /// counters built in scalar (128-bit carries included).
    #[target_feature(enable = "aes,sse2")]
    fn apply_tail(rk: &[__m128i; 15], counter: u128, mut at: usize, data: &mut [u8]) {
        let mut next = counter.wrapping_add((at / 16) as u128);
        while at < data.len() {
            let mut ks = [0u8; 64];
            for lane in ks.chunks_exact_mut(16) {
                lane.copy_from_slice(&next.to_be_bytes());
                next = next.wrapping_add(1);
            }
            // SAFETY: 64 readable and writable bytes, unaligned.
            unsafe {
                let p = ks.as_mut_ptr().cast::<__m128i>();
                let mut x: [__m128i; 4] =
                    std::array::from_fn(|i| _mm_xor_si128(_mm_loadu_si128(p.add(i)), rk[0]));
                for key in &rk[1..14] {
                    for y in &mut x {
                        *y = _mm_aesenc_si128(*y, *key);
                    }
                }
                for (i, y) in x.iter_mut().enumerate() {
                    _mm_storeu_si128(p.add(i), _mm_aesenclast_si128(*y, rk[14]));
                }
                x.zeroize();
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

    /// The process's chosen kernel and every kernel this CPU runs, forced, each named.
    fn every_path(key: &ChunkKey, iv: &[u8; 16]) -> Vec<(String, Keystream)> {
        let mut all = vec![("chosen".to_string(), Keystream::new(key, iv))];
        for p in CryptoPath::supported_paths() {
            let ks = Keystream::with_path(key, iv, p).unwrap();
            assert_eq!(ks.path(), p);
            all.push((p.to_string(), ks));
        }
        all
    }

    #[test]
    fn every_kernel_this_cpu_runs_is_tested_and_the_others_are_refused() {
        let key = ChunkKey::from_bytes([1; 32]);
        let paths = CryptoPath::supported_paths();
        assert!(paths.contains(&CryptoPath::Portable));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("aes") {
            assert!(paths.contains(&CryptoPath::AesNi), "an AES-NI CPU runs the pipelined AES-NI kernel");
        }
        for p in CryptoPath::ALL {
            match Keystream::with_path(&key, &[0; 16], p) {
                Ok(ks) => assert!(paths.contains(&p) && ks.path() == p, "{p}"),
                Err(e) => {
                    assert!(!paths.contains(&p), "{p}: {e}");
                    assert!(e.to_string().contains("cannot run it"), "{e}");
                }
            }
        }
        eprintln!("keystream kernels tested here: {paths:?}");
    }

    /// Applies every kernel in pieces of the given sizes and checks them against `ctr`.
    fn check(key: [u8; 32], iv: [u8; 16], pieces: &[usize]) {
        let total: usize = pieces.iter().sum();
        let mut want = pattern(total);
        reference(&key, &iv, &mut want);
        let chunk_key = ChunkKey::from_bytes(key);
        for (what, mut ks) in every_path(&chunk_key, &iv) {
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
        for (what, mut ks) in every_path(&key, &iv) {
            let mut buf = plain.clone();
            ks.apply(&mut buf);
            assert_eq!(hex::encode(&buf), want, "{what}");
        }
    }

    #[test]
    fn whole_chunks_and_awkward_lengths() {
        for len in [
            0,
            1,
            15,
            16,
            17,
            63,
            64,
            65,
            127,
            128,
            129,
            255,
            256,
            257,
            511,
            512,
            513,
            4096,
            4096 + 48,
            512 << 10,
        ] {
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
