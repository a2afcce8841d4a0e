//! Deduplication across a set of images, computed from manifests alone (keyless, as garbage
//! collection reads them): the numbers behind the paper's "unique chunks" figures and figure 5.
//!
//! Two views, because the paper uses both and they answer different questions:
//!
//! - **Set view** ("unique"): a chunk position of image A is *unique* if no OTHER image in the set
//!   references its chunk name, whether that image came before or after A. It says how much of an
//!   image only it keeps alive; the eCDF of % unique per image is figure 5.
//! - **Upload view** ("new at upload"): images are taken in a given order and a position is *new*
//!   if no EARLIER image had its chunk name. It says what an upload adds to the store; the paper's
//!   "~80% of new uploads have zero unique chunks; mean 4.3%, median 2.5% in the rest" is this view.
//!
//! Both count chunk positions (stored, i.e. non-hole, entries of a manifest), so `unique + shared =
//! chunks`. A name that repeats inside one image is unique if no other image has it, at every
//! position. Chunks under different salts never share names, so they never deduplicate.
//! Images with no stored chunk (all holes) have no percentage and are left out of the
//! distributions; they are counted in [`SetTotals::empty_images`].
//!
//! The analysis (counting names, the distributions, the savings) is `analysis.rs`; printing it
//! (the text tables and the CSV files) is `output.rs`.

use serde::Serialize;

use crate::crypto;
use crate::store;

mod analysis;
mod output;
mod rotation;

pub use rotation::RotationCost;

/// Why a dedup report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error(transparent)]
    Store(#[from] store::Error),

    /// A manifest's clear-text part did not parse.
    #[error("manifest {name}: {source}")]
    Manifest { name: String, source: crypto::Error },

    /// The same image name given twice: counting it twice would make all its chunks "shared".
    #[error("image {0:?} is listed twice; each image may appear once in a dedup set")]
    DuplicateImage(String),
}

/// The paper's figure 5 read at the thresholds where its curves can be read by eye: (% unique,
/// share of images below it for the lower three size quartiles, same for the largest quartile).
const PAPER_FIG5: [(f64, Option<f64>, Option<f64>); 7] = [
    (0.5, None, Some(0.60)),
    (2.5, Some(0.22), None),
    (3.0, Some(0.84), None),
    (4.0, None, Some(0.75)),
    (12.0, Some(0.94), Some(0.88)),
    (25.0, Some(0.98), None),
    (50.0, None, Some(0.97)),
];

/// The paper's numbers about new uploads, to print next to ours (upload view).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PaperUploads {
    /// Share of new uploads with zero unique chunks (~80%).
    pub zero_new_share: f64,
    /// Mean % unique chunks among the other uploads.
    pub mean_pct_nonzero: f64,
    /// Median % unique chunks among the other uploads.
    pub median_pct_nonzero: f64,
}

pub const PAPER_UPLOADS: PaperUploads =
    PaperUploads { zero_new_share: 0.80, mean_pct_nonzero: 4.3, median_pct_nonzero: 2.5 };

/// The whole report. Images are sorted by name; the upload view keeps the order it was given.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DedupReport {
    pub images: Vec<ImageDedup>,
    pub totals: SetTotals,
    /// Distribution of [`ImageDedup::pct_unique`] (set view; figure 5).
    pub unique: Distribution,
    pub upload: UploadView,
    pub paper: PaperUploads,
    /// What a root rotation would cost (a directory store only; `dedup` fills it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationCost>,
}

/// One image in the set view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageDedup {
    pub name: String,
    /// What the image was built from (manifest header; free text).
    pub source: String,
    pub salt: String,
    pub chunk_size: u32,
    /// Size of the block image, holes included.
    pub image_bytes: u64,
    /// Stored (non-hole) chunk positions.
    pub chunks: u64,
    /// Plaintext bytes of the stored positions (the last chunk may be short).
    pub bytes: u64,
    /// Distinct chunk names among the stored positions.
    pub distinct_chunks: u64,
    /// Positions whose chunk no other image of the set references.
    pub unique_chunks: u64,
    pub unique_bytes: u64,
    /// Positions whose chunk at least one other image references: `chunks - unique_chunks`.
    pub shared_chunks: u64,
    pub shared_bytes: u64,
    /// `100 * unique_chunks / chunks`; `None` when the image stores no chunk.
    pub pct_unique: Option<f64>,
    /// All-zero positions: not stored, no entry in the manifest.
    pub zero_chunks: u64,
    pub zero_bytes: u64,
}

/// Store-wide totals over the set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetTotals {
    pub images: u64,
    /// Images with no stored chunk, left out of the distributions.
    pub empty_images: u64,
    /// Distinct salts: chunks deduplicate only within one.
    pub salts: u64,
    /// Sum of block image sizes, holes included.
    pub image_bytes: u64,
    pub zero_chunks: u64,
    /// Sum over images of stored positions and their bytes: the store without dedup.
    pub logical_chunks: u64,
    pub logical_bytes: u64,
    /// Distinct chunk names and their sizes: what the store holds.
    pub distinct_chunks: u64,
    pub physical_bytes: u64,
    /// `logical_bytes / physical_bytes`; `None` when nothing is stored.
    pub savings_factor: Option<f64>,
}

/// A distribution of per-image percentages (% unique, or % new at upload).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Distribution {
    /// Images counted (those storing at least one chunk).
    pub images: u64,
    /// Share of those images at exactly 0%.
    pub zero_share: Option<f64>,
    pub mean_pct: Option<f64>,
    /// Median; the mean of the two middle values for an even count.
    pub median_pct: Option<f64>,
    /// Mean and median over the images above 0% only (the paper's "in the rest").
    pub mean_pct_nonzero: Option<f64>,
    pub median_pct_nonzero: Option<f64>,
    /// Empirical CDF: one point per distinct percentage, ascending, `fraction` = share of images
    /// at or below `pct`.
    pub ecdf: Vec<EcdfPoint>,
    /// Share of images strictly below each figure-5 threshold, with the paper's values.
    pub thresholds: Vec<ThresholdShare>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EcdfPoint {
    pub pct: f64,
    pub fraction: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ThresholdShare {
    pub below_pct: f64,
    /// Share of images with a percentage strictly below `below_pct`; `None` with no images.
    pub share: Option<f64>,
    /// Figure 5, lower three size quartiles, where readable.
    pub paper_lower_quartiles: Option<f64>,
    /// Figure 5, largest size quartile, where readable.
    pub paper_largest_quartile: Option<f64>,
}

/// The upload view: images in upload order, each compared with the images before it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UploadView {
    pub order: Vec<UploadStep>,
    /// Distribution of [`UploadStep::pct_new`]: compare with [`PAPER_UPLOADS`].
    pub new: Distribution,
    /// Uploads whose chunk list equals an earlier image's (the paper's "trivial re-uploads").
    pub identical_reuploads: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UploadStep {
    /// 1-based position in the upload order.
    pub position: u64,
    pub name: String,
    pub chunks: u64,
    /// Positions whose chunk no earlier image had.
    pub new_chunks: u64,
    pub new_bytes: u64,
    /// `100 * new_chunks / chunks`; `None` when the image stores no chunk.
    pub pct_new: Option<f64>,
    /// Distinct chunks this upload wrote to the store (a chunk repeated inside the image is written
    /// once). Summed over the order this is the store's physical size.
    pub uploaded_chunks: u64,
    pub uploaded_bytes: u64,
    /// The first earlier image with exactly the same image size, chunk size and chunk list.
    pub identical_to: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ManifestPublic;
    use crate::crypto::{CustomerKey, Manifest, ManifestHeader, Salt, encrypt_chunk};
    use crate::store::{ChunkStore, DirStore, ManifestName, MemStore};

    /// Small chunks keep the tests fast; nothing in the report depends on 512 KiB.
    const C: u64 = 4096;

    /// Deterministic bytes, distinct per seed.
    fn filler(len: u64, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// A manifest whose position `i` holds `filler(chunk_len(i), seeds[i])`, or a hole for `None`.
    fn manifest(salt: &str, image_size: u64, seeds: &[Option<u64>], source: &str) -> Manifest {
        let header = ManifestHeader {
            chunk_size: C as u32,
            image_size,
            salt: Salt::new(salt).unwrap(),
            source: source.into(),
        };
        assert_eq!(header.total_chunks(), seeds.len() as u64);
        let mut b = Manifest::builder(header.clone());
        for (i, seed) in seeds.iter().enumerate() {
            if let Some(seed) = seed {
                let mut buf = filler(header.chunk_len(i as u32), *seed);
                b.push(i as u32, encrypt_chunk(&header.salt, &mut buf));
            }
        }
        b.finish().unwrap()
    }

    /// The image family, in upload order: a base; two variants sharing its first two chunks (v2
    /// repeats one inside itself); an identical re-upload of the base; v1's content under another
    /// salt, which shares nothing.
    fn family() -> Vec<(String, Manifest)> {
        let (b0, b1, t, x1, x2, y1) = (Some(1), Some(2), Some(9), Some(11), Some(12), Some(21));
        let v1 = [b0, b1, None, x1, x2];
        [
            ("base", manifest("s1", 3 * C + 500, &[b0, b1, None, t], "base, \"v1\"")),
            ("v1", manifest("s1", 5 * C, &v1, "v1")),
            ("v2", manifest("s1", 4 * C, &[b0, b1, y1, b0], "v2")),
            ("base-again", manifest("s1", 3 * C + 500, &[b0, b1, None, t], "base, \"v1\"")),
            ("other-salt", manifest("s2", 5 * C, &v1, "v1")),
        ]
        .into_iter()
        .map(|(n, m)| (n.to_string(), m))
        .collect()
    }

    fn public(set: &[(String, Manifest)]) -> Vec<(String, ManifestPublic)> {
        set.iter().map(|(n, m)| (n.clone(), m.public())).collect()
    }

    fn report() -> DedupReport {
        DedupReport::build(public(&family())).unwrap()
    }

    fn assert_close(got: Option<f64>, want: f64) {
        let got = got.expect("a value");
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn per_image_counts_in_the_set_view() {
        let r = report();
        let names: Vec<&str> = r.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["base", "base-again", "other-salt", "v1", "v2"], "sorted by name");
        // (chunks, bytes, distinct, unique, unique bytes, shared, shared bytes, holes, zero bytes)
        let want = [
            (3, 2 * C + 500, 3, 0, 0, 3, 2 * C + 500, 1, C), // everything also in base-again
            (3, 2 * C + 500, 3, 0, 0, 3, 2 * C + 500, 1, C),
            (4, 4 * C, 4, 4, 4 * C, 0, 0, 1, C), // another salt: nothing shared
            (4, 4 * C, 4, 2, 2 * C, 2, 2 * C, 1, C),
            (4, 4 * C, 3, 1, C, 3, 3 * C, 0, 0), // b0 twice, y1 its own
        ];
        for (i, w) in r.images.iter().zip(want) {
            let got = (
                i.chunks,
                i.bytes,
                i.distinct_chunks,
                i.unique_chunks,
                i.unique_bytes,
                i.shared_chunks,
                i.shared_bytes,
                i.zero_chunks,
                i.zero_bytes,
            );
            assert_eq!(got, w, "{}", i.name);
        }
        let pcts: Vec<Option<f64>> = r.images.iter().map(|i| i.pct_unique).collect();
        assert_eq!(pcts, [Some(0.0), Some(0.0), Some(100.0), Some(50.0), Some(25.0)]);
        assert_eq!(r.images[0].salt, "s1");
        assert_eq!(r.images[2].salt, "s2");
    }

    #[test]
    fn store_totals_and_savings_factor() {
        let t = report().totals;
        assert_eq!((t.images, t.empty_images, t.salts), (5, 0, 2));
        assert_eq!(t.image_bytes, 2 * (3 * C + 500) + 5 * C + 4 * C + 5 * C);
        assert_eq!(t.zero_chunks, 4);
        assert_eq!(t.logical_chunks, 18);
        assert_eq!(t.logical_bytes, 2 * (2 * C + 500) + 3 * 4 * C);
        // s1: b0, b1, x1, x2, y1 (full) and t (500 bytes); s2: four full chunks.
        assert_eq!(t.distinct_chunks, 10);
        assert_eq!(t.physical_bytes, 9 * C + 500);
        assert_close(t.savings_factor, (4 * C + 1000 + 12 * C) as f64 / (9 * C + 500) as f64);
    }

    #[test]
    fn unique_distribution_and_ecdf() {
        let d = report().unique;
        assert_eq!(d.images, 5);
        let points: Vec<(f64, f64)> = d.ecdf.iter().map(|p| (p.pct, p.fraction)).collect();
        assert_eq!(points, [(0.0, 0.4), (25.0, 0.6), (50.0, 0.8), (100.0, 1.0)]);
        assert_close(d.zero_share, 0.4);
        assert_close(d.mean_pct, 35.0);
        assert_close(d.median_pct, 25.0);
        assert_close(d.mean_pct_nonzero, 175.0 / 3.0);
        assert_close(d.median_pct_nonzero, 50.0);
        let below: Vec<(f64, Option<f64>)> = d.thresholds.iter().map(|t| (t.below_pct, t.share)).collect();
        // Strictly below: the 25% image is not below 25%.
        let want = [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.6].map(Some);
        assert_eq!(below, [0.5, 2.5, 3.0, 4.0, 12.0, 25.0, 50.0].into_iter().zip(want).collect::<Vec<_>>());
        assert_eq!(d.thresholds[2].paper_lower_quartiles, Some(0.84));
        assert_eq!(d.thresholds[0].paper_largest_quartile, Some(0.60));
    }

    #[test]
    fn upload_view_counts_against_earlier_images_only() {
        let r = report();
        let u = &r.upload;
        type Row<'a> = (&'a str, u64, u64, u64, u64, Option<&'a str>);
        let got: Vec<Row> = u
            .order
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.new_chunks,
                    s.new_bytes,
                    s.uploaded_chunks,
                    s.uploaded_bytes,
                    s.identical_to.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("base", 3, 2 * C + 500, 3, 2 * C + 500, None),
                ("v1", 2, 2 * C, 2, 2 * C, None),
                ("v2", 1, C, 1, C, None),
                ("base-again", 0, 0, 0, 0, Some("base")),
                ("other-salt", 4, 4 * C, 4, 4 * C, None),
            ]
        );
        assert_eq!(u.order.iter().map(|s| s.position).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_eq!(u.order.iter().map(|s| s.uploaded_bytes).sum::<u64>(), r.totals.physical_bytes);
        assert_eq!(u.identical_reuploads, 1);
        // The base is 100% new at upload but 0% unique in the set: the two views differ.
        assert_eq!(u.order[0].pct_new, Some(100.0));
        let points: Vec<(f64, f64)> = u.new.ecdf.iter().map(|p| (p.pct, p.fraction)).collect();
        assert_eq!(points, [(0.0, 0.2), (25.0, 0.4), (50.0, 0.6), (100.0, 1.0)]);
        assert_close(u.new.zero_share, 0.2);
        assert_close(u.new.mean_pct, 55.0);
        assert_close(u.new.median_pct, 50.0);
        assert_close(u.new.mean_pct_nonzero, 68.75);
        assert_close(u.new.median_pct_nonzero, 75.0);
    }

    #[test]
    fn a_chunk_repeated_inside_a_new_image_is_new_twice_but_uploaded_once() {
        let z = Some(5);
        let set = vec![
            ("rep".to_string(), manifest("s", 2 * C, &[z, z], "")),
            ("empty".into(), manifest("s", C, &[None], "")),
        ];
        let r = DedupReport::build(public(&set)).unwrap();
        let rep = &r.images[1];
        assert_eq!((rep.name.as_str(), rep.unique_chunks, rep.distinct_chunks), ("rep", 2, 1));
        let s = &r.upload.order[0];
        assert_eq!((s.new_chunks, s.uploaded_chunks, s.uploaded_bytes), (2, 1, C));
        assert_eq!(r.totals.physical_bytes, C);
        assert_close(r.totals.savings_factor, 2.0);
        // The all-hole image has no percentage and is left out of the distributions.
        assert_eq!((r.images[0].pct_unique, r.totals.empty_images, r.unique.images), (None, 1, 1));
        assert_eq!(r.upload.order[1].identical_to, None);
    }

    #[test]
    fn empty_set_and_duplicate_names() {
        let r = DedupReport::build(Vec::new()).unwrap();
        assert_eq!((r.totals.images, r.totals.savings_factor, r.unique.zero_share), (0, None, None));
        assert!(r.unique.ecdf.is_empty() && r.unique.thresholds.iter().all(|t| t.share.is_none()));
        let mut set = public(&family());
        set.push(set[1].clone());
        let e = DedupReport::build(set).unwrap_err();
        assert!(matches!(&e, DedupError::DuplicateImage(n) if n == "v1"), "{e}");
    }

    #[test]
    fn csv_files() {
        let r = report();
        let mut ecdf = Vec::new();
        r.write_ecdf_csv(&mut ecdf).unwrap();
        assert_eq!(
            String::from_utf8(ecdf).unwrap(),
            "view,pct,fraction_at_or_below\n\
             unique,0.000000,0.400000\nunique,25.000000,0.600000\nunique,50.000000,0.800000\n\
             unique,100.000000,1.000000\n\
             new-at-upload,0.000000,0.200000\nnew-at-upload,25.000000,0.400000\n\
             new-at-upload,50.000000,0.600000\nnew-at-upload,100.000000,1.000000\n"
        );
        let mut images = Vec::new();
        r.write_images_csv(&mut images).unwrap();
        let text = String::from_utf8(images).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].starts_with("name,source,salt,chunk_size,"), "{}", lines[0]);
        assert_eq!(lines[0].split(',').count(), 22);
        assert_eq!(
            lines[2],
            "base-again,\"base, \"\"v1\"\"\",s1,4096,12788,3,8692,3,0,0,3,8692,0.000000,1,4096,\
             4,0,0,0.000000,0,0,base"
        );
        assert_eq!(
            lines[5],
            "v2,v2,s1,4096,16384,4,16384,3,1,4096,3,12288,25.000000,0,0,3,1,4096,25.000000,1,4096,"
        );
    }

    #[test]
    fn display_names_both_views_and_the_paper() {
        let text = report().to_string();
        for want in [
            "dedup over 5 images (2 salts",
            "unique = referenced by no OTHER image",
            "savings   1.78x",
            "new = in no EARLIER image",
            "paper: ~80%",
            "base-again",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
    }

    #[test]
    fn from_store_reads_keyless_and_orders_uploads_by_the_names_given() {
        let set = family();
        let key = CustomerKey::from_bytes([7; 32]);
        let dir = tempfile::tempdir().unwrap();
        let disk = DirStore::open(dir.path()).unwrap().with_sync(false);
        let mem = MemStore::new();
        for (name, m) in &set {
            let name = ManifestName::new(name.as_str()).unwrap();
            disk.put_manifest(&name, &m.seal(&key)).unwrap();
            mem.put_manifest(&name, &m.seal(&key)).unwrap();
        }
        let built = report();
        let all = DedupReport::from_store(&disk, &[]).unwrap();
        assert_eq!((&all.images, &all.totals, &all.unique), (&built.images, &built.totals, &built.unique));
        let order: Vec<&str> = all.upload.order.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["base", "base-again", "other-salt", "v1", "v2"], "no names: by name");

        let names: Vec<ManifestName> =
            set.iter().map(|(n, _)| ManifestName::new(n.as_str()).unwrap()).collect();
        assert_eq!(DedupReport::from_store(&mem, &names).unwrap(), built);
        let two = DedupReport::from_store(&mem, &names[1..3]).unwrap();
        assert_eq!(two.images.iter().map(|i| i.unique_chunks).collect::<Vec<_>>(), [2, 1]);

        mem.put_manifest(&ManifestName::new("junk").unwrap(), b"not a manifest").unwrap();
        let e = DedupReport::from_store(&mem, &[]).unwrap_err().to_string();
        assert!(e.starts_with("manifest junk: manifest malformed"), "{e}");
    }
}
