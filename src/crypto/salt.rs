//! The convergent-encryption salt: a namespace that scopes deduplication.
//!
//! The paper varies the salt with time, placement (AZ) and the garbage-collection root, to bound the
//! blast radius of one popular chunk and to let old roots be deleted wholesale. Here the caller picks
//! a label (e.g. `gcroot-7/epoch-2025w03/use1-az2`); identical chunks under different labels get
//! different keys, ciphertexts and names, so they never deduplicate.
//!
//! The salt is not a secret: the manifest records its label in clear text so that readers can
//! re-derive it. Like all convergent encryption, anyone who knows the salt and can guess a chunk's
//! exact plaintext can confirm that the chunk exists; the store is assumed to be internal.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::error::Error;

/// Domain separator for deriving the 32 salt bytes from the label.
const SALT_DOMAIN: &[u8] = b"chunkload salt v1\0";

/// A salt: the label the user chose, and the 32 bytes derived from it that enter the key hash.
///
/// The key is SHA-256(salt bytes || plaintext). Fixing the salt at 32 bytes makes that concatenation
/// unambiguous: with a variable-length salt, salt "a" + chunk "bX" and salt "ab" + chunk "X" would
/// share a key, and two plaintexts under one CTR key and IV leak their XOR.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Salt {
    label: String,
    bytes: [u8; 32],
}

impl Salt {
    /// Longest label, so it fits the manifest's one-byte length field.
    pub const MAX_LABEL_LEN: usize = 255;

    /// A salt from a label of 1..=255 bytes of UTF-8 without control characters.
    pub fn new(label: impl Into<String>) -> Result<Self, Error> {
        let label = label.into();
        let reason = if label.is_empty() {
            Some("must not be empty")
        } else if label.len() > Self::MAX_LABEL_LEN {
            Some("longer than 255 bytes")
        } else if label.chars().any(char::is_control) {
            Some("contains control characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::InvalidSalt { label, reason });
        }
        let mut h = Sha256::new();
        h.update(SALT_DOMAIN);
        h.update(label.as_bytes());
        Ok(Salt { bytes: h.finalize().into(), label })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The 32 bytes hashed in front of each plaintext chunk.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl FromStr for Salt {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Salt::new(s)
    }
}

impl fmt::Display for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({:?})", self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_validated() {
        assert!(Salt::new("gcroot-1/az-a").is_ok());
        assert!(Salt::new("x".repeat(255)).is_ok());
        for (bad, why) in [("", "empty"), ("a\nb", "control"), (&"x".repeat(256)[..], "255")] {
            let e = Salt::new(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn different_labels_different_bytes() {
        let a = Salt::new("a").unwrap();
        let b = Salt::new("b").unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(a, "a".parse().unwrap());
        assert_eq!(a.to_string(), "a");
    }
}
