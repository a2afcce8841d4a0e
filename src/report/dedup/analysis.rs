//! The dedup analysis: which chunk names each image shares, the set and upload views, their
//! distributions and the store's savings. Printing is `output.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    DedupError, DedupReport, Distribution, EcdfPoint, ImageDedup, PAPER_FIG5, PAPER_UPLOADS, SetTotals,
    ThresholdShare, UploadStep, UploadView,
};
use crate::crypto::{ChunkName, ManifestPublic};
use crate::stats::{mean, median, percent_of as pct};
use crate::store::{ChunkStore, ManifestName};

/// Per chunk name, across the set.
struct NameInfo {
    /// Number of distinct images referencing it.
    images: u32,
    last_image: usize,
    /// Plaintext length. Equal names have equal lengths (the name hashes the ciphertext, which is
    /// as long as the plaintext); if unauthenticated manifests disagree, the largest is counted.
    len: u64,
}

impl DedupReport {
    /// Reads the named manifests (all of them if `names` is empty) from `store` without keys.
    /// Given names set the upload order; with none, the order is by name.
    pub fn from_store<S: ChunkStore + ?Sized>(store: &S, names: &[ManifestName]) -> Result<Self, DedupError> {
        let names = if names.is_empty() { store.list_manifests()? } else { names.to_vec() };
        let mut images = Vec::with_capacity(names.len());
        for name in names {
            let bytes = store.get_manifest(&name)?;
            let manifest = ManifestPublic::parse(&bytes)
                .map_err(|source| DedupError::Manifest { name: name.to_string(), source })?;
            images.push((name.to_string(), manifest));
        }
        Self::build(images)
    }

    /// Builds the report from `(name, manifest)` pairs given in upload order.
    pub fn build(upload_order: Vec<(String, ManifestPublic)>) -> Result<Self, DedupError> {
        let mut seen_names = BTreeSet::new();
        for (name, _) in &upload_order {
            if !seen_names.insert(name.as_str()) {
                return Err(DedupError::DuplicateImage(name.clone()));
            }
        }
        let upload = upload_view(&upload_order);
        let mut sorted: Vec<&(String, ManifestPublic)> = upload_order.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));

        let mut by_name: BTreeMap<ChunkName, NameInfo> = BTreeMap::new();
        for (i, (_, m)) in sorted.iter().enumerate() {
            for c in &m.chunks {
                let len = m.header.chunk_len(c.index);
                let info =
                    by_name.entry(c.name).or_insert(NameInfo { images: 0, last_image: usize::MAX, len });
                if info.last_image != i {
                    info.images += 1;
                    info.last_image = i;
                }
                info.len = info.len.max(len);
            }
        }

        let mut images = Vec::with_capacity(sorted.len());
        for (name, m) in sorted.iter().map(|p| (&p.0, &p.1)) {
            let h = &m.header;
            let (mut bytes, mut unique_chunks, mut unique_bytes) = (0, 0, 0);
            let mut distinct = BTreeSet::new();
            for c in &m.chunks {
                let len = h.chunk_len(c.index);
                bytes += len;
                distinct.insert(c.name);
                if by_name[&c.name].images == 1 {
                    unique_chunks += 1;
                    unique_bytes += len;
                }
            }
            let chunks = m.chunks.len() as u64;
            images.push(ImageDedup {
                name: name.clone(),
                source: h.source.clone(),
                salt: h.salt.label().to_string(),
                chunk_size: h.chunk_size,
                image_bytes: h.image_size,
                chunks,
                bytes,
                distinct_chunks: distinct.len() as u64,
                unique_chunks,
                unique_bytes,
                shared_chunks: chunks - unique_chunks,
                shared_bytes: bytes - unique_bytes,
                pct_unique: pct(unique_chunks, chunks),
                // Counted, not enumerated: a hostile header may claim 2^32 positions.
                zero_chunks: h.total_chunks().saturating_sub(chunks),
                zero_bytes: h.image_size.saturating_sub(bytes),
            });
        }

        let logical_bytes: u64 = images.iter().map(|i| i.bytes).sum();
        let physical_bytes: u64 = by_name.values().map(|n| n.len).sum();
        let totals = SetTotals {
            images: images.len() as u64,
            empty_images: images.iter().filter(|i| i.chunks == 0).count() as u64,
            salts: images.iter().map(|i| i.salt.as_str()).collect::<BTreeSet<_>>().len() as u64,
            image_bytes: images.iter().map(|i| i.image_bytes).sum(),
            zero_chunks: images.iter().map(|i| i.zero_chunks).sum(),
            logical_chunks: images.iter().map(|i| i.chunks).sum(),
            logical_bytes,
            distinct_chunks: by_name.len() as u64,
            physical_bytes,
            savings_factor: (physical_bytes > 0).then(|| logical_bytes as f64 / physical_bytes as f64),
        };
        let unique = Distribution::of(images.iter().filter_map(|i| i.pct_unique).collect());
        Ok(DedupReport { images, totals, unique, upload, paper: PAPER_UPLOADS, rotation: None })
    }
}

/// What makes two uploads the same image: chunk size, image size and every (index, name) pair.
type ImageIdentity = (u32, u64, Vec<(u32, ChunkName)>);

fn upload_view(order: &[(String, ManifestPublic)]) -> UploadView {
    let mut stored: BTreeSet<ChunkName> = BTreeSet::new();
    let mut lists: BTreeMap<ImageIdentity, &str> = BTreeMap::new();
    let mut steps = Vec::with_capacity(order.len());
    for (i, (name, m)) in order.iter().enumerate() {
        let h = &m.header;
        let (mut new_chunks, mut new_bytes) = (0, 0);
        for c in m.chunks.iter().filter(|c| !stored.contains(&c.name)) {
            new_chunks += 1;
            new_bytes += h.chunk_len(c.index);
        }
        let (mut uploaded_chunks, mut uploaded_bytes) = (0, 0);
        for c in &m.chunks {
            if stored.insert(c.name) {
                uploaded_chunks += 1;
                uploaded_bytes += h.chunk_len(c.index);
            }
        }
        let list = m.chunks.iter().map(|c| (c.index, c.name)).collect();
        let identical_to = match lists.entry((h.chunk_size, h.image_size, list)) {
            std::collections::btree_map::Entry::Occupied(e) => Some(e.get().to_string()),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(name);
                None
            }
        };
        let chunks = m.chunks.len() as u64;
        steps.push(UploadStep {
            position: i as u64 + 1,
            name: name.clone(),
            chunks,
            new_chunks,
            new_bytes,
            pct_new: pct(new_chunks, chunks),
            uploaded_chunks,
            uploaded_bytes,
            identical_to,
        });
    }
    let new = Distribution::of(steps.iter().filter_map(|s| s.pct_new).collect());
    let identical_reuploads = steps.iter().filter(|s| s.identical_to.is_some()).count() as u64;
    UploadView { order: steps, new, identical_reuploads }
}

impl Distribution {
    /// The distribution of `pcts` (any order).
    pub fn of(mut pcts: Vec<f64>) -> Self {
        pcts.sort_by(f64::total_cmp);
        let n = pcts.len();
        let share = |k: usize| (n > 0).then(|| k as f64 / n as f64);
        let mut ecdf: Vec<EcdfPoint> = Vec::new();
        for (i, &p) in pcts.iter().enumerate() {
            let fraction = (i + 1) as f64 / n as f64;
            match ecdf.last_mut() {
                Some(last) if last.pct == p => last.fraction = fraction,
                _ => ecdf.push(EcdfPoint { pct: p, fraction }),
            }
        }
        let thresholds = PAPER_FIG5
            .iter()
            .map(|&(t, lower, largest)| ThresholdShare {
                below_pct: t,
                share: share(pcts.partition_point(|&p| p < t)),
                paper_lower_quartiles: lower,
                paper_largest_quartile: largest,
            })
            .collect();
        let first_nonzero = pcts.partition_point(|&p| p <= 0.0);
        let nonzero = &pcts[first_nonzero..];
        Distribution {
            images: n as u64,
            zero_share: share(first_nonzero),
            mean_pct: mean(&pcts),
            median_pct: median(&pcts),
            mean_pct_nonzero: mean(nonzero),
            median_pct_nonzero: median(nonzero),
            ecdf,
            thresholds,
        }
    }
}
