//! SHA-256 compressions of several streams run side by side: the crypto stage's hot loop.
//!
//! A chunk costs three SHA-256 passes when it is sealed (key, plaintext digest, name) and two when
//! it is opened (name, plaintext digest). One SHA-NI stream is bound by the latency of its round
//! instructions, so a single stream leaves the SHA unit idle most of the time. [`compress`] keeps
//! N independent states in registers and issues their rounds interleaved: on this project's
//! reference CPU (AMD EPYC, SHA-NI) three lanes cost about 1.8 single-stream passes, against about
//! 2.2 when three `sha2::compress256` calls alternate block by block (each call reloads and
//! reshuffles its state). Without SHA-NI it falls back to `compress256` (sha2's own choice of
//! backend), one block of each stream at a time. The tests check both paths against
//! `compress256`.

use sha2::block_api::compress256;

/// One 64-byte SHA-256 message block.
pub(super) type Block = [u8; 64];

/// Runs SHA-256's compression function over `blocks[i]` into `states[i]`, for N streams of the
/// same number of blocks, as `compress256` on each would.
pub(super) fn compress<const N: usize>(states: [&mut [u32; 8]; N], blocks: [&[Block]; N]) {
    let n = blocks.first().map_or(0, |b| b.len());
    assert!(blocks.iter().all(|b| b.len() == n), "lanes must be equally long");
    #[cfg(target_arch = "x86_64")]
    if shani::available() {
        // SAFETY: the CPU has the features the kernel is compiled for (checked just above).
        unsafe { shani::compress(states, blocks) };
        return;
    }
    portable(states, blocks);
}

/// The kernel [`compress`] runs on this CPU, for benchmarks and measurements to print.
pub(super) fn kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if shani::available() {
        return "sha-ni (interleaved lanes)";
    }
    "portable (sha2::compress256, lane by lane)"
}

fn portable<const N: usize>(mut states: [&mut [u32; 8]; N], blocks: [&[Block]; N]) {
    for i in 0..blocks.first().map_or(0, |b| b.len()) {
        for (s, b) in states.iter_mut().zip(&blocks) {
            compress256(s, &b[i..i + 1]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use core::arch::x86_64::*;
    use std::sync::OnceLock;

    use super::Block;

    pub(super) fn available() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            is_x86_feature_detected!("sha")
                && is_x86_feature_detected!("sse2")
                && is_x86_feature_detected!("ssse3")
                && is_x86_feature_detected!("sse4.1")
        })
    }

    /// The SHA-256 round constants (FIPS 180-4 section 4.2.2).
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    /// A state in the register layout SHA256RNDS2 wants: (ABEF, CDGH).
    #[derive(Clone, Copy)]
    struct Lane {
        abef: __m128i,
        cdgh: __m128i,
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn load_state(s: &[u32; 8]) -> Lane {
        // SAFETY: 32 readable bytes, unaligned loads.
        let (dcba, hgfe) = unsafe {
            let p = s.as_ptr().cast::<__m128i>();
            (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
        };
        let cdab = _mm_shuffle_epi32::<0xB1>(dcba);
        let efgh = _mm_shuffle_epi32::<0x1B>(hgfe);
        Lane { abef: _mm_alignr_epi8::<8>(cdab, efgh), cdgh: _mm_blend_epi16::<0xF0>(efgh, cdab) }
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn store_state(l: Lane, s: &mut [u32; 8]) {
        let feba = _mm_shuffle_epi32::<0x1B>(l.abef);
        let dchg = _mm_shuffle_epi32::<0xB1>(l.cdgh);
        // SAFETY: 32 writable bytes, unaligned stores.
        unsafe {
            let p = s.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(p, _mm_blend_epi16::<0xF0>(feba, dchg));
            _mm_storeu_si128(p.add(1), _mm_alignr_epi8::<8>(dchg, feba));
        }
    }

    /// The block's 16 message words, big-endian, four to a register.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn load_message(block: &Block) -> [__m128i; 4] {
        let swap = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        let p = block.as_ptr().cast::<__m128i>();
        // SAFETY: 64 readable bytes, unaligned loads.
        unsafe {
            [
                _mm_shuffle_epi8(_mm_loadu_si128(p), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), swap),
            ]
        }
    }

    /// Message words 4g..4g+4 (g >= 4) from the ring `w` holding words 4(g-4)..4g, stored back
    /// into the slot they replace.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn schedule(w: &mut [__m128i; 4], g: usize) -> __m128i {
        let (v0, v1, v2, v3) = (w[g % 4], w[(g + 1) % 4], w[(g + 2) % 4], w[(g + 3) % 4]);
        let t = _mm_add_epi32(_mm_sha256msg1_epu32(v0, v1), _mm_alignr_epi8::<4>(v3, v2));
        let next = _mm_sha256msg2_epu32(t, v3);
        w[g % 4] = next;
        next
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) fn compress<const N: usize>(states: [&mut [u32; 8]; N], blocks: [&[Block]; N]) {
        let mut lanes: [Lane; N] = std::array::from_fn(|l| load_state(states[l]));
        #[expect(clippy::needless_range_loop, reason = "block i of every lane, not of one slice")]
        for i in 0..blocks.first().map_or(0, |b| b.len()) {
            let saved = lanes;
            let mut w: [[__m128i; 4]; N] = std::array::from_fn(|l| load_message(&blocks[l][i]));
            for g in 0..16 {
                // SAFETY: K has 64 words; g < 16.
                let k = unsafe { _mm_loadu_si128(K.as_ptr().add(4 * g).cast()) };
                let wk: [__m128i; N] = std::array::from_fn(|l| {
                    let words = if g < 4 { w[l][g] } else { schedule(&mut w[l], g) };
                    _mm_add_epi32(words, k)
                });
                // Two rounds per instruction; the lanes' chains are independent.
                for (lane, x) in lanes.iter_mut().zip(&wk) {
                    lane.cdgh = _mm_sha256rnds2_epu32(lane.cdgh, lane.abef, *x);
                }
                for (lane, x) in lanes.iter_mut().zip(&wk) {
                    lane.abef = _mm_sha256rnds2_epu32(lane.abef, lane.cdgh, _mm_shuffle_epi32::<0x0E>(*x));
                }
            }
            for (lane, s) in lanes.iter_mut().zip(&saved) {
                lane.abef = _mm_add_epi32(lane.abef, s.abef);
                lane.cdgh = _mm_add_epi32(lane.cdgh, s.cdgh);
            }
        }
        for (lane, s) in lanes.into_iter().zip(states) {
            store_state(lane, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const IV: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    fn blocks(data: &[u8]) -> &[Block] {
        data.as_chunks::<64>().0
    }

    fn check<const N: usize>(data: [&[u8]; N], start: [[u32; 8]; N]) {
        let mut want = start;
        for (s, d) in want.iter_mut().zip(data) {
            compress256(s, blocks(d));
        }
        let mut fast = start;
        compress(fast.each_mut(), data.map(blocks));
        assert_eq!(fast, want, "compress, {N} lanes");
        let mut slow = start;
        portable(slow.each_mut(), data.map(blocks));
        assert_eq!(slow, want, "portable, {N} lanes");
    }

    #[test]
    fn matches_compress256_on_a_chunk() {
        let a: Vec<u8> = (0..512 * 1024).map(|i| (i * 7) as u8).collect();
        let b: Vec<u8> = (0..512 * 1024).map(|i| (i * 13 + (i >> 11)) as u8).collect();
        let mut other = IV;
        other[3] ^= 0xdead_beef;
        check([&a, &b, &a], [IV, IV, other]);
        check([&b, &a], [other, IV]);
        check([&a], [IV]);
        check([&[], &[], &[]], [IV, other, IV]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_compress256(
            n in 0usize..5,
            seed in any::<[u8; 3]>(),
            start in any::<[[u32; 8]; 3]>(),
        ) {
            let data: Vec<Vec<u8>> = seed
                .iter()
                .map(|&s| (0..n * 64).map(|i| (i as u8).wrapping_mul(s | 1).wrapping_add(s)).collect())
                .collect();
            check([&data[0], &data[1], &data[2]], start);
            check([&data[2], &data[0]], [start[1], start[2]]);
        }
    }
}
