//! The chunk stage: cuts the block image into fixed-size chunks (512 KiB by default, as Lambda
//! does), drops all-zero chunks as holes, and runs each through convergent encryption into a store.

mod content;
mod convert;
mod reader;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use content::ChunkContent;
pub use convert::{ConvertOptions, ConvertStats, Converted, Error as ConvertError, convert};
pub use reader::{ChunkedImage, ReadError, open_stored, read_chunk};

use crate::units::ByteSize;

/// A chunk size: a power of two from 4 KiB to 16 MiB (whole blocks, and few enough chunks that
/// indices fit the manifest's u32).
///
/// ```
/// use chunkload::chunk::ChunkSize;
/// assert_eq!("512KiB".parse::<ChunkSize>().unwrap(), ChunkSize::DEFAULT);
/// assert!("100KiB".parse::<ChunkSize>().is_err(), "not a power of two");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "ByteSize", into = "ByteSize")]
pub struct ChunkSize(u32);

impl ChunkSize {
    pub const MIN: u64 = 4 << 10;
    pub const MAX: u64 = 16 << 20;
    /// Lambda's chunk size.
    pub const DEFAULT: ChunkSize = ChunkSize(512 << 10);

    pub fn new(bytes: u64) -> Result<Self, ChunkSizeError> {
        if !bytes.is_power_of_two() || !(Self::MIN..=Self::MAX).contains(&bytes) {
            return Err(ChunkSizeError(ByteSize(bytes)));
        }
        Ok(ChunkSize(bytes as u32))
    }

    pub fn bytes(self) -> u64 {
        u64::from(self.0)
    }
}

impl Default for ChunkSize {
    fn default() -> Self {
        ChunkSize::DEFAULT
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunk size {0}: must be a power of two from 4KiB to 16MiB")]
pub struct ChunkSizeError(ByteSize);

impl TryFrom<ByteSize> for ChunkSize {
    type Error = ChunkSizeError;
    fn try_from(b: ByteSize) -> Result<Self, Self::Error> {
        ChunkSize::new(b.bytes())
    }
}

impl From<ChunkSize> for ByteSize {
    fn from(c: ChunkSize) -> Self {
        ByteSize(c.bytes())
    }
}

impl FromStr for ChunkSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b: ByteSize = s.parse().map_err(|e: crate::units::ByteSizeError| e.to_string())?;
        ChunkSize::new(b.bytes()).map_err(|e| e.to_string())
    }
}

impl fmt::Display for ChunkSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ByteSize(self.bytes()).fmt(f)
    }
}

impl fmt::Debug for ChunkSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkSize({self})")
    }
}

/// Whether a chunk is all zeros (a hole: not stored, not fetched). Compares against a static
/// zero block, which `memcmp` does at memory speed.
pub fn is_zero(buf: &[u8]) -> bool {
    static ZERO: [u8; 64 << 10] = [0u8; 64 << 10];
    buf.chunks(ZERO.len()).all(|part| part == &ZERO[..part.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!("512KiB".parse::<ChunkSize>().unwrap(), ChunkSize::DEFAULT);
        assert_eq!("4KiB".parse::<ChunkSize>().unwrap().bytes(), 4096);
        assert_eq!("16MiB".parse::<ChunkSize>().unwrap().bytes(), 16 << 20);
        for bad in ["2KiB", "32MiB", "100KiB", "zero"] {
            assert!(bad.parse::<ChunkSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_detection() {
        let mut b = vec![0u8; 4099];
        assert!(is_zero(&b));
        b[4098] = 1;
        assert!(!is_zero(&b));
        b[4098] = 0;
        b[3] = 1;
        assert!(!is_zero(&b));
    }
}
