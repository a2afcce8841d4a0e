//! Content ids: typed wrappers around a SHA-256 value, so a chunk name cannot be passed where a
//! plaintext digest is expected (both are 32 bytes and would otherwise be interchangeable).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::error::Error;

macro_rules! sha256_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            pub const LEN: usize = 32;

            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Lower-case hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; 64];
                // Cannot fail: the buffer is exactly twice the input length.
                hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
                f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                let err = |reason| Error::InvalidId { what: $what, input: s.to_string(), reason };
                if s.len() != 64 {
                    return Err(err("expected 64 hex digits"));
                }
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).map_err(|_| err("not hex"))?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

sha256_id!(
    /// A chunk's name in the store: SHA-256 of its ciphertext. Anyone can check a chunk against its
    /// name without a key, which is what lets flatteners upload "if absent" with no coordination.
    ChunkName,
    "chunk name"
);

sha256_id!(
    /// SHA-256 of a chunk's plaintext, checked after decryption.
    PlainDigest,
    "plaintext digest"
);

impl ChunkName {
    /// The name that `ciphertext` must be stored under.
    pub fn of_ciphertext(ciphertext: &[u8]) -> Self {
        Self(Sha256::digest(ciphertext).into())
    }
}

impl PlainDigest {
    pub fn of_plaintext(plaintext: &[u8]) -> Self {
        Self(Sha256::digest(plaintext).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answers() {
        // FIPS 180-2 examples.
        assert_eq!(
            PlainDigest::of_plaintext(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            ChunkName::of_ciphertext(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").to_string(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            PlainDigest::of_plaintext(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let n = ChunkName::of_ciphertext(b"x");
        let s = n.to_string();
        assert_eq!(s.parse::<ChunkName>().unwrap(), n);
        assert_eq!(s.to_uppercase().parse::<ChunkName>().unwrap(), n);
        assert_eq!(format!("{n:?}"), format!("ChunkName({s})"));
        let e = s[..63].parse::<ChunkName>().unwrap_err().to_string();
        assert!(e.contains("chunk name") && e.contains("64 hex"), "{e}");
        let bad = format!("{}g", &s[..63]);
        assert!(bad.parse::<PlainDigest>().unwrap_err().to_string().contains("not hex"));
    }

    #[test]
    fn serde_as_hex_string() {
        let n = ChunkName::of_ciphertext(b"y");
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, format!("\"{n}\""));
        assert_eq!(serde_json::from_str::<ChunkName>(&json).unwrap(), n);
        assert!(serde_json::from_str::<ChunkName>("\"00\"").is_err());
    }
}
