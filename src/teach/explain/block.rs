//! Story 2: the block image, its chunks, and what a store of other images already holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::StoredImage;
use crate::crypto::{ChunkName, ManifestPublic, PlainDigest};
use crate::stats::percent as pct;
use crate::units::ByteSize;

#[derive(Debug, Clone, Serialize)]
pub struct BlockStory {
    pub image_bytes: u64,
    pub data_bytes: u64,
    pub metadata_bytes: u64,
    pub chunk_size: u64,
    pub salt: String,
    pub chunks: u64,
    pub zero_chunks: u64,
    pub stored_chunks: u64,
    /// Distinct chunk names among the stored ones (a chunk repeated in the image is one object).
    pub distinct_chunks: u64,
    /// Positions whose chunk (same name) another image of the store already has.
    pub in_store: u64,
    /// Positions whose content another image has, but under another salt (so another name).
    pub other_salt: u64,
    /// Positions only this image has.
    pub new: u64,
    /// Per other image: positions of this one it shares (same name).
    pub shared_with: BTreeMap<String, u64>,
    /// Other images of the store compared with (0: no store given, or only this image in it).
    pub compared_with: u64,
}

impl BlockStory {
    /// The story of the image `m` (its data region ending at `meta_offset`) against the other
    /// images of a store: which positions dedup against them, which only another salt has, which
    /// are new.
    pub fn build(m: &ManifestPublic, meta_offset: u64, store: &[StoredImage]) -> Self {
        let salt = m.header.salt.label();
        let mut names: BTreeMap<ChunkName, Vec<&str>> = BTreeMap::new();
        let mut other_salt: BTreeSet<PlainDigest> = BTreeSet::new();
        for s in store {
            if s.manifest.header.salt.label() == salt {
                for c in &s.manifest.chunks {
                    let owners = names.entry(c.name).or_default();
                    if owners.last() != Some(&s.name.as_str()) {
                        owners.push(&s.name);
                    }
                }
            } else {
                other_salt.extend(s.manifest.chunks.iter().map(|c| c.plain));
            }
        }
        let (mut in_store, mut in_other_salt, mut new) = (0, 0, 0);
        let mut shared_with: BTreeMap<String, u64> = BTreeMap::new();
        for c in &m.chunks {
            if let Some(owners) = names.get(&c.name) {
                in_store += 1;
                for o in owners {
                    *shared_with.entry(o.to_string()).or_default() += 1;
                }
            } else if other_salt.contains(&c.plain) {
                in_other_salt += 1;
            } else {
                new += 1;
            }
        }
        let total = m.header.total_chunks();
        let distinct: BTreeSet<ChunkName> = m.chunks.iter().map(|c| c.name).collect();
        BlockStory {
            image_bytes: m.header.image_size,
            data_bytes: meta_offset,
            metadata_bytes: m.header.image_size - meta_offset,
            chunk_size: u64::from(m.header.chunk_size),
            salt: salt.to_string(),
            chunks: total,
            zero_chunks: total - m.chunks.len() as u64,
            stored_chunks: m.chunks.len() as u64,
            distinct_chunks: distinct.len() as u64,
            in_store,
            other_salt: in_other_salt,
            new,
            shared_with,
            compared_with: store.len() as u64,
        }
    }
}

impl fmt::Display for BlockStory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self;
        writeln!(f, "2. The block image and its chunks")?;
        writeln!(
            f,
            "   Lambda does not ship files: it writes the flattened tree into one filesystem image, the same\n   \
         way every time, so that unchanged files land on identical blocks in every image that has them.\n   \
         This one is {} ({} of file data, then {} of metadata: inodes, directories, superblock).",
            ByteSize(b.image_bytes),
            ByteSize(b.data_bytes),
            ByteSize(b.metadata_bytes)
        )?;
        writeln!(
            f,
            "   Cut into {} chunks of {}: {} are all zeros (never stored or fetched), {} are stored, {} distinct.",
            b.chunks,
            ByteSize(b.chunk_size),
            b.zero_chunks,
            b.stored_chunks,
            b.distinct_chunks
        )?;
        writeln!(
            f,
            "   Each chunk is encrypted with a key derived from its own content and the salt {:?}, and named by\n   \
         the hash of the result: equal content under the same salt gives the same name, so it is stored\n   \
         once (convergent encryption).",
            b.salt
        )?;
        if b.compared_with == 0 {
            writeln!(
                f,
                "   No other image to compare with (pass --store DIR): uploading it would store all {} chunks.",
                b.distinct_chunks
            )?;
        } else {
            writeln!(
                f,
                "   Against the store's {}: {} of {} stored chunks ({:.1}%) are already there, {} have\n   \
             the same content under another salt (a different name: no dedup), {} new.",
                crate::units::plural(b.compared_with, "other image", "other images"),
                b.in_store,
                b.stored_chunks,
                pct(b.in_store, b.stored_chunks),
                b.other_salt,
                crate::units::plural(b.new, "is", "are")
            )?;
        }
        for (name, n) in &b.shared_with {
            writeln!(f, "     shared with {name}: {n} chunks")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Manifest, ManifestHeader, Salt, encrypt_chunk};

    /// 4 KiB chunks under `salt`, chunk `i` filled with `fills[i]` (0: a hole).
    fn manifest(salt: &str, fills: &[u8]) -> ManifestPublic {
        let header = ManifestHeader {
            chunk_size: 4096,
            image_size: 4096 * fills.len() as u64,
            salt: Salt::new(salt).unwrap(),
            source: String::new(),
        };
        let mut b = Manifest::builder(header.clone());
        for (i, &fill) in fills.iter().enumerate().filter(|p| *p.1 != 0) {
            b.push(i as u32, encrypt_chunk(&header.salt, &mut vec![fill; 4096]));
        }
        b.finish().unwrap().public()
    }

    #[test]
    fn positions_split_into_in_store_other_salt_and_new() {
        let m = manifest("a", &[1, 2, 3, 4, 0, 1]);
        let store = [
            StoredImage { name: "base".into(), manifest: manifest("a", &[1, 2, 1]) },
            StoredImage { name: "other-salt".into(), manifest: manifest("b", &[3]) },
        ];
        let b = BlockStory::build(&m, 3 * 4096, &store);
        assert_eq!((b.chunks, b.zero_chunks, b.stored_chunks, b.distinct_chunks), (6, 1, 5, 4));
        assert_eq!((b.in_store, b.other_salt, b.new), (3, 1, 1));
        assert_eq!(b.shared_with, BTreeMap::from([("base".to_string(), 3)]));
        assert_eq!((b.data_bytes, b.metadata_bytes), (3 * 4096, 3 * 4096));
        assert_eq!(b.compared_with, 2);
        let alone = BlockStory::build(&m, 0, &[]);
        assert_eq!((alone.in_store, alone.new, alone.compared_with), (0, 5, 0));
    }
}
