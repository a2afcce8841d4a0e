//! The convergent-encryption salt: a namespace that scopes deduplication.
//!
//! The paper varies the salt with time, placement (AZ) and the garbage-collection root, to bound the
//! blast radius of one popular chunk and to let old roots be deleted wholesale. Here the caller picks
//! a label (e.g. `gcroot-7/epoch-2025w03/use1-az2`); identical chunks under different labels get
//! different keys, ciphertexts and names, so they never deduplicate.
//!
//! Salts of a chunk store's generational roots (`docs/store-format.md`) have the form
//! `root-N[/at-PLACEMENT][/pop-CLASS]` ([`Salt::for_root`]); root 0, the store's first root, keeps
//! the historical base `default`, and any label whose first segment is not `root-N` (N >= 1)
//! belongs to root 0, so stores and manifests written before roots existed still read the same.
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

/// Base label of root 0, the store's first root (and of every salt that names no root).
pub const ROOT_ZERO_BASE: &str = "default";

/// Checks a placement or popularity-class label: 1..=64 bytes of `[A-Za-z0-9._-]`.
fn check_part(what: &'static str, part: &str) -> Result<(), Error> {
    let reason = if part.is_empty() {
        Some("must not be empty")
    } else if part.len() > 64 {
        Some("longer than 64 bytes")
    } else if !part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidSalt { label: format!("{what} {part}"), reason }),
        None => Ok(()),
    }
}

impl Salt {
    /// The salt of root generation `root`, optionally scoped to a placement (e.g. an AZ) and a
    /// popularity class: `root-N[/at-PLACEMENT][/pop-CLASS]`, or `default[...]` for root 0.
    pub fn for_root(root: u32, placement: Option<&str>, class: Option<&str>) -> Result<Self, Error> {
        let mut label = if root == 0 { ROOT_ZERO_BASE.to_string() } else { format!("root-{root}") };
        if let Some(p) = placement {
            check_part("placement", p)?;
            label.push_str("/at-");
            label.push_str(p);
        }
        if let Some(c) = class {
            check_part("popularity class", c)?;
            label.push_str("/pop-");
            label.push_str(c);
        }
        Salt::new(label)
    }

    /// The root generation this salt belongs to: N for a label starting `root-N` (N >= 1, no
    /// leading zeros), 0 for every other label.
    pub fn root(&self) -> u32 {
        let first = self.label.split('/').next().unwrap_or_default();
        first
            .strip_prefix("root-")
            .filter(|n| !n.starts_with('0'))
            .and_then(|n| if n.bytes().all(|b| b.is_ascii_digit()) { n.parse().ok() } else { None })
            .unwrap_or(0)
    }

    /// The same salt moved to root `root`: the placement and class segments are kept, anything
    /// else (a free-form root-0 label) is dropped.
    pub fn moved_to_root(&self, root: u32) -> Result<Self, Error> {
        let mut placement = None;
        let mut class = None;
        for seg in self.label.split('/').skip(1) {
            if let Some(p) = seg.strip_prefix("at-") {
                placement = Some(p);
            } else if let Some(c) = seg.strip_prefix("pop-") {
                class = Some(c);
            }
        }
        let placement = placement.filter(|p| check_part("placement", p).is_ok());
        let class = class.filter(|c| check_part("popularity class", c).is_ok());
        Salt::for_root(root, placement, class)
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
    fn root_salts_name_their_root_and_move() {
        let s = Salt::for_root(7, Some("use1-az2"), Some("hot")).unwrap();
        assert_eq!(s.label(), "root-7/at-use1-az2/pop-hot");
        assert_eq!(s.root(), 7);
        assert_eq!(Salt::for_root(0, None, None).unwrap().label(), "default");
        for (label, root) in
            [("default", 0), ("epoch-2", 0), ("root-0", 0), ("root-07", 0), ("root-x", 0), ("root-12/a", 12)]
        {
            assert_eq!(Salt::new(label).unwrap().root(), root, "{label}");
        }
        assert_eq!(s.moved_to_root(8).unwrap().label(), "root-8/at-use1-az2/pop-hot");
        assert_eq!(Salt::new("epoch-2").unwrap().moved_to_root(1).unwrap().label(), "root-1");
        assert_eq!(
            Salt::new("default/pop-cold").unwrap().moved_to_root(3).unwrap().label(),
            "root-3/pop-cold"
        );
        let e = Salt::for_root(1, Some("a/b"), None).unwrap_err().to_string();
        assert!(e.contains("placement a/b"), "{e}");
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
