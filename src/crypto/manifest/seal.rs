//! Sealing and opening: AES-256-GCM over the key table, the clear text as associated data.
//!
//! The nonce is synthetic (SIV-style), not random, so sealing is deterministic: the same manifest
//! under the same customer key always gives the same bytes. It is HMAC-SHA256 of the whole
//! plaintext document (clear part and key table) under a nonce subkey, cut to 96 bits. GCM breaks
//! only when one key seals two *different* messages under one nonce; here different documents get
//! independent pseudo-random nonces (a collision needs about 2^48 manifests per customer key), and
//! identical documents get identical nonces, which reveals only that they are identical.
//! Encryption and nonce subkeys are derived from the customer key by HMAC with distinct labels,
//! so no key is used by two algorithms.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::wire::{self, KEY_LEN, NONCE_LEN, TAG_LEN};
use super::{Manifest, ManifestPublic};
use crate::crypto::error::Error;
use crate::crypto::keys::{ChunkKey, CustomerKey};

const ENC_LABEL: &[u8] = b"chunkload manifest v1 encryption key";
const NONCE_LABEL: &[u8] = b"chunkload manifest v1 nonce key";

fn subkey(customer: &CustomerKey, label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(customer.as_bytes()).expect("HMAC takes any key length");
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

impl Manifest {
    /// Seals the manifest: clear-text header and chunk list, encrypted key table, one GCM tag.
    pub fn seal(&self, customer: &CustomerKey) -> Vec<u8> {
        let mut out = wire::encode_public(&self.header, &self.chunks);
        let aad_end = out.len() + NONCE_LEN;

        let mut keys = Zeroizing::new(Vec::with_capacity(self.keys.len() * KEY_LEN));
        for k in &self.keys {
            keys.extend_from_slice(k.as_bytes());
        }
        let nonce_key = subkey(customer, NONCE_LABEL);
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&nonce_key[..]).expect("HMAC takes any key length");
        mac.update(&out);
        mac.update(&keys);
        let nonce: [u8; NONCE_LEN] =
            mac.finalize().into_bytes()[..NONCE_LEN].try_into().expect("12 of 32 bytes");
        out.extend_from_slice(&nonce);

        let key_at = out.len();
        out.extend_from_slice(&keys);
        let gcm = Aes256Gcm::new((&*subkey(customer, ENC_LABEL)).into());
        let (aad, table) = out.split_at_mut(key_at);
        let tag = gcm
            .encrypt_inout_detached(&Nonce::from(nonce), &aad[..aad_end], table.into())
            .expect("key table is far below GCM's 64 GiB limit");
        out.extend_from_slice(&tag);
        out
    }

    /// Verifies a sealed manifest under `customer` and decrypts its key table.
    pub fn open(bytes: &[u8], customer: &CustomerKey) -> Result<Manifest, Error> {
        let parsed = wire::parse(bytes)?;
        let aad_end = parsed.nonce_at + NONCE_LEN;
        let tag_at = bytes.len() - TAG_LEN;
        let nonce: [u8; NONCE_LEN] =
            bytes[parsed.nonce_at..aad_end].try_into().expect("parse checked lengths");
        let tag: [u8; TAG_LEN] = bytes[tag_at..].try_into().expect("parse checked lengths");
        let mut table = Zeroizing::new(bytes[aad_end..tag_at].to_vec());
        let gcm = Aes256Gcm::new((&*subkey(customer, ENC_LABEL)).into());
        gcm.decrypt_inout_detached(
            &Nonce::from(nonce),
            &bytes[..aad_end],
            table.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .map_err(|_| Error::ManifestAuthentication)?;
        let keys = table
            .chunks_exact(KEY_LEN)
            .map(|k| ChunkKey::from_bytes(k.try_into().expect("chunks_exact yields 32 bytes")))
            .collect();
        Ok(Manifest { header: parsed.header, chunks: parsed.chunks, keys })
    }

    /// Seals and writes to `path` atomically: a temporary file in the same directory, synced,
    /// then renamed over `path`, so readers see the old manifest or the new one, never a part.
    /// Returns the sealed bytes written, for a caller that also stores them elsewhere.
    pub fn seal_to_file(&self, customer: &CustomerKey, path: &Path) -> Result<Vec<u8>, Error> {
        let sealed = self.seal(customer);
        write_atomic(path, &sealed).map_err(|source| Error::ManifestIo { path: path.into(), source })?;
        Ok(sealed)
    }
}

impl ManifestPublic {
    /// Reads and parses a sealed manifest file without keys.
    pub fn read_file(path: &Path) -> Result<Self, Error> {
        let bytes = fs::read(path).map_err(|source| Error::ManifestIo { path: path.into(), source })?;
        Self::parse(&bytes)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| std::io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
