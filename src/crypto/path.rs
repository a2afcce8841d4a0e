//! Which AES-256-CTR kernel runs: the fastest this CPU supports, or the one the environment forces.
//!
//! Four kernels (crypto/keystream.rs), fastest first:
//! - `avx512`: VAES on 512-bit registers, 32 counter blocks in flight (AVX-512F/BW + VAES).
//! - `avx2-vaes`: VAES on 256-bit registers, 16 blocks in flight (AVX2 + VAES; the cloud
//!   generation before AVX-512, e.g. AMD Zen 3).
//! - `aesni`: 128-bit AES-NI, 8 blocks in flight (AES-NI without VAES).
//! - `portable`: the `aes` crate block by block (its own choice of backend: AES-NI, the ARMv8
//!   crypto extensions, or constant-time software). The only kernel off x86-64.
//!
//! Run-time detection picks the first the CPU can run. `CHUNKLOAD_CRYPTO_PATH` (one of the names
//! above) forces one, so that tests and measurements can run every kernel a machine supports; a
//! name the CPU cannot run is refused with [`Error::CryptoPath`], never attempted. SHA-256 is
//! not switched: its lanes use SHA-NI where the CPU has it, else `sha2`'s own backend.

use std::sync::OnceLock;

use super::error::{Error, Result};

/// The environment variable that forces a kernel.
pub const CRYPTO_PATH_ENV: &str = "CHUNKLOAD_CRYPTO_PATH";

/// One AES-256-CTR kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CryptoPath {
    /// VAES on 512-bit registers (AVX-512F, AVX-512BW, VAES, AES-NI).
    Avx512,
    /// VAES on 256-bit registers (AVX2, VAES, AES-NI).
    Avx2Vaes,
    /// 128-bit AES-NI, eight blocks in flight (AES-NI, SSSE3).
    AesNi,
    /// The `aes` crate, block by block.
    Portable,
}

impl CryptoPath {
    /// Every kernel, fastest first.
    pub const ALL: [CryptoPath; 4] =
        [CryptoPath::Avx512, CryptoPath::Avx2Vaes, CryptoPath::AesNi, CryptoPath::Portable];

    /// The name `CHUNKLOAD_CRYPTO_PATH` takes.
    pub fn name(self) -> &'static str {
        match self {
            CryptoPath::Avx512 => "avx512",
            CryptoPath::Avx2Vaes => "avx2-vaes",
            CryptoPath::AesNi => "aesni",
            CryptoPath::Portable => "portable",
        }
    }

    /// The CPU features this kernel needs that this CPU lacks (empty: it can run).
    pub fn missing_features(self) -> Vec<&'static str> {
        #[cfg(target_arch = "x86_64")]
        {
            let needs: &[&'static str] = match self {
                CryptoPath::Avx512 => &["aes", "avx512f", "avx512bw", "vaes"],
                CryptoPath::Avx2Vaes => &["aes", "avx2", "vaes"],
                CryptoPath::AesNi => &["aes", "ssse3"],
                CryptoPath::Portable => &[],
            };
            needs.iter().copied().filter(|f| !x86_feature(f)).collect()
        }
        #[cfg(not(target_arch = "x86_64"))]
        match self {
            CryptoPath::Portable => Vec::new(),
            _ => vec!["x86-64"],
        }
    }

    /// Whether this CPU (and OS) can run the kernel (detected once per process).
    pub fn supported(self) -> bool {
        static SUPPORTED: OnceLock<[bool; 4]> = OnceLock::new();
        SUPPORTED.get_or_init(|| Self::ALL.map(|p| p.missing_features().is_empty()))[self as usize]
    }

    /// Every kernel this CPU can run, fastest first.
    pub fn supported_paths() -> Vec<CryptoPath> {
        Self::ALL.into_iter().filter(|p| p.supported()).collect()
    }

    /// The fastest kernel this CPU can run.
    pub fn fastest() -> CryptoPath {
        Self::ALL.into_iter().find(|p| p.supported()).unwrap_or(CryptoPath::Portable)
    }

    /// The kernel `value` names, if this CPU can run it.
    pub fn from_env_value(value: &str) -> Result<CryptoPath> {
        let Some(path) = Self::ALL.into_iter().find(|p| p.name() == value) else {
            return Err(Error::CryptoPath {
                value: value.to_string(),
                reason: "unknown kernel: expected avx512, avx2-vaes, aesni or portable".to_string(),
            });
        };
        runnable(path, &path.missing_features())
    }

    /// The kernel this process uses: `CHUNKLOAD_CRYPTO_PATH` if set (and runnable), else the
    /// fastest. Read once per process.
    pub fn active() -> Result<CryptoPath> {
        static ACTIVE: OnceLock<Result<CryptoPath, String>> = OnceLock::new();
        ACTIVE
            .get_or_init(|| match std::env::var(CRYPTO_PATH_ENV) {
                Ok(v) if !v.is_empty() => Self::from_env_value(&v).map_err(|e| match e {
                    Error::CryptoPath { reason, .. } => reason,
                    other => other.to_string(),
                }),
                _ => Ok(Self::fastest()),
            })
            .clone()
            .map_err(|reason| Error::CryptoPath {
                value: std::env::var(CRYPTO_PATH_ENV).unwrap_or_default(),
                reason,
            })
    }
}

/// `path`, or the refusal naming the features it needs and the CPU lacks.
fn runnable(path: CryptoPath, missing: &[&str]) -> Result<CryptoPath> {
    if missing.is_empty() {
        return Ok(path);
    }
    Err(Error::CryptoPath {
        value: path.name().to_string(),
        reason: format!("this CPU cannot run it (lacks {})", missing.join(", ")),
    })
}

impl std::fmt::Display for CryptoPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Run-time detection of one x86 feature, by the name `is_x86_feature_detected!` takes.
#[cfg(target_arch = "x86_64")]
fn x86_feature(name: &str) -> bool {
    match name {
        "aes" => is_x86_feature_detected!("aes"),
        "sha" => is_x86_feature_detected!("sha"),
        "ssse3" => is_x86_feature_detected!("ssse3"),
        "sse4.1" => is_x86_feature_detected!("sse4.1"),
        "avx2" => is_x86_feature_detected!("avx2"),
        "avx512f" => is_x86_feature_detected!("avx512f"),
        "avx512bw" => is_x86_feature_detected!("avx512bw"),
        "vaes" => is_x86_feature_detected!("vaes"),
        "vpclmulqdq" => is_x86_feature_detected!("vpclmulqdq"),
        _ => false,
    }
}

/// The CPU features the crypto kernels care about, and which of them this CPU has, for a
/// benchmark or measurement to print beside its figures (e.g. `aes+ sha+ avx2+ avx512f- ...`).
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        ["aes", "sha", "ssse3", "sse4.1", "avx2", "avx512f", "avx512bw", "vaes", "vpclmulqdq"]
            .iter()
            .map(|f| format!("{f}{}", if x86_feature(f) { '+' } else { '-' }))
            .collect::<Vec<_>>()
            .join(" ")
    }
    #[cfg(target_arch = "aarch64")]
    {
        let aes = std::arch::is_aarch64_feature_detected!("aes");
        let sha2 = std::arch::is_aarch64_feature_detected!("sha2");
        format!("aarch64 aes{} sha2{}", if aes { '+' } else { '-' }, if sha2 { '+' } else { '-' })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// One line naming what the crypto stage runs on this CPU: the features, the AES-256-CTR kernel
/// (and whether it was forced) and the SHA-256 lane kernel.
pub fn describe() -> String {
    let aes = match CryptoPath::active() {
        Ok(p) if std::env::var(CRYPTO_PATH_ENV).is_ok_and(|v| !v.is_empty()) => {
            format!("{p} (forced by {CRYPTO_PATH_ENV})")
        }
        Ok(p) => format!("{p} (fastest detected)"),
        Err(e) => format!("none: {e}"),
    };
    format!(
        "cpu features: {}; aes-256-ctr kernel: {aes}; sha-256 lanes: {}",
        cpu_features(),
        super::lanes::kernel()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for p in CryptoPath::supported_paths() {
            assert_eq!(CryptoPath::from_env_value(p.name()).unwrap(), p);
        }
        let e = CryptoPath::from_env_value("avx1024").unwrap_err().to_string();
        assert!(e.contains("avx1024") && e.contains("expected avx512"), "{e}");
        assert!(CryptoPath::Portable.supported());
        assert_eq!(CryptoPath::supported_paths().first(), Some(&CryptoPath::fastest()));
    }

    #[test]
    fn a_path_the_cpu_cannot_run_is_refused_with_what_it_lacks() {
        let e = runnable(CryptoPath::Avx512, &["avx512f", "avx512bw"]).unwrap_err().to_string();
        assert_eq!(e, "CHUNKLOAD_CRYPTO_PATH=avx512: this CPU cannot run it (lacks avx512f, avx512bw)");
        assert_eq!(runnable(CryptoPath::AesNi, &[]).unwrap(), CryptoPath::AesNi);
        for p in CryptoPath::ALL.into_iter().filter(|p| !p.supported()) {
            let e = CryptoPath::from_env_value(p.name()).unwrap_err().to_string();
            assert!(e.contains("cannot run it (lacks"), "{e}");
        }
    }
}
