//! The chunk stage: cuts the block image into fixed-size chunks (512 KiB by default, as Lambda
//! does), drops all-zero chunks as holes, and runs each through convergent encryption into a store.

mod content;
mod convert;
mod reader;

pub use content::ChunkContent;
pub use convert::{
    ConvertOptions, ConvertStats, Converted, Error as ConvertError, Progress as ConvertProgress, convert,
    convert_with_progress,
};
pub use reader::{ChunkedImage, ReadError, open_stored, read_chunk};

/// The chunk size type lives with the other validated quantities.
pub use crate::quantity::{ChunkSize, ChunkSizeError};

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
