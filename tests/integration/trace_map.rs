//! Mapping traces onto a real block image: path lookups cost metadata pages, reads cost the pages
//! of the file's extent, symlinks are followed inside the image, missing paths still cost the
//! lookups they made.

use chunkload::flatten;
use chunkload::image::{Image, OpenOptions};
use chunkload::ingest::map_trace;
use chunkload::layout::{BLOCK_SIZE, BlockLayout, BlockMeta};
use chunkload::trace::Region;
use chunkload::trace::{Access, MmapRule, Record, TracePath};

use crate::support::kitchen_sink;

fn rec(t_us: u64, path: &str, access: Access) -> Record {
    Record { t_us, done_us: None, thread: 0, path: TracePath::new(path.as_bytes().to_vec()).unwrap(), access }
}

#[test]
fn trace_accesses_land_on_the_right_pages_and_chunks() {
    let ks = kitchen_sink();
    let image = Image::open(&format!("{}:ks", ks.join("oci").display()), &OpenOptions::default()).unwrap();
    let flat = flatten::flatten(&image).unwrap();
    let layout = BlockLayout::new(&flat);
    let meta = BlockMeta::new(layout.superblock, layout.meta.clone()).unwrap();
    let extent = |p: &str| {
        BlockLayout::extents(&flat)
            .into_iter()
            .find(|e| e.path == p.as_bytes())
            .unwrap_or_else(|| panic!("{p}"))
    };
    let big = extent("/opt/big.bin");
    let owned = extent("/data/owned");
    let records = vec![
        rec(0, "/usr/bin/tool", Access::Open),
        rec(10, "/opt/big.bin", Access::Read { offset: 5000, len: 10_000 }),
        rec(20, "/opt/big.bin", Access::Mmap { offset: 0, len: big.len + 100_000 }),
        // /srv is a symlink to /data in the image: followed inside the image.
        rec(30, "/srv/owned", Access::Read { offset: 0, len: 4096 }),
        rec(40, "/no/such/file", Access::Stat),
        rec(50, "/usr/bin", Access::Read { offset: 0, len: 1 }),
    ];
    let map = map_trace(&meta, records.clone(), MmapRule::Whole);
    let meta_start = layout.superblock.meta_offset;
    let meta_end = meta_start + layout.superblock.meta_len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;

    let of = |i: usize| map.accesses.iter().filter(move |a| a.record == i);
    // The open reads only metadata pages.
    assert!(of(0).count() >= 1);
    assert!(
        of(0).all(|a| a.region == Region::Metadata && a.bytes.start >= meta_start && a.bytes.end <= meta_end)
    );
    // The read covers the pages of bytes 5000..15000 of the file's extent.
    let read: Vec<_> = of(1).collect();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].region, Region::Data);
    assert_eq!(read[0].bytes, big.offset + 4096..big.offset + 16384);
    // The mapping is clipped to the file and charged whole under the `whole` rule.
    let mapped: Vec<_> = of(2).collect();
    assert_eq!(mapped[0].bytes, big.offset..big.offset + big.len.div_ceil(4096) * 4096);
    // Past the end of files: the mapping's extra 100 000 bytes and the 4096-byte read of a 10-byte file.
    assert_eq!(map.clipped_bytes, 100_000 + 4096 - owned.len);
    // Through the symlink to the real file.
    assert_eq!(of(3).next().unwrap().bytes.start, owned.offset);
    // A missing path costs its lookups, and is counted; a directory read is not a file read.
    assert!(of(4).count() >= 1);
    assert_eq!(map.missing, 1);
    assert_eq!(map.not_files, 1);
    // Chunks: big.bin spans several 512 KiB chunks.
    let chunks = mapped[0].chunks(512 << 10);
    assert_eq!(*chunks.start() as u64, big.offset / (512 << 10));
    assert!(chunks.end() > chunks.start());
    assert!(map.pages() > big.len / 4096);

    // Under the `ignore` rule the mapping costs nothing.
    let ignored = map_trace(&meta, records, MmapRule::Ignore);
    assert_eq!(ignored.accesses.iter().filter(|a| a.record == 2).count(), 0);
}

#[test]
fn trace_map_command_reports_pages_and_chunks() {
    use chunkload::trace::{Header, Writer};
    let ks = kitchen_sink();
    let t = crate::support::scratch();
    let trace = t.path().join("t.jsonl");
    let mut w = Writer::create(&trace, &Header::new("test", "cat /opt/big.bin")).unwrap();
    w.write(&rec(0, "/opt/big.bin", Access::Open)).unwrap();
    w.write(&rec(5, "/opt/big.bin", Access::Read { offset: 0, len: 1 << 20 })).unwrap();
    w.finish().unwrap();
    let out = crate::support::chunkload()
        .args(["trace", "map", "--json", "--image"])
        .arg(format!("{}:ks", ks.join("oci").display()))
        .arg(&trace)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 1 MiB of data: 256 pages, plus the metadata pages of one lookup.
    let pages = v["pages_touched"].as_u64().unwrap();
    assert!((257..270).contains(&pages), "{v}");
    assert!(v["chunks_touched"].as_u64().unwrap() >= 3, "1 MiB of data and metadata: {v}");
    assert_eq!(v["missing_paths"], 0);
}

#[test]
fn synthetic_traces_are_seeded_and_read_the_asked_share() {
    let ks = kitchen_sink();
    let t = crate::support::scratch();
    let image = format!("{}:ks", ks.join("oci").display());
    let synth = |seed: &str, out: &str, share: &str| {
        let path = t.path().join(out);
        crate::support::chunkload()
            .args([
                "trace",
                "synth",
                "--image",
                &image,
                "--seed",
                seed,
                "--read-share",
                share,
                "--threads",
                "2",
                "-o",
            ])
            .arg(&path)
            .assert()
            .success();
        path
    };
    let a = synth("1", "a.jsonl", "0.5");
    let b = synth("1", "b.jsonl", "0.5");
    let c = synth("2", "c.jsonl", "0.5");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed, same trace");
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap(), "another seed, another trace");
    // It parses, and reads half of the live bytes (the last read is cut to the budget).
    let stats = crate::support::chunkload().args(["trace", "stats", "--json"]).arg(&a).output().unwrap();
    assert!(stats.status.success(), "{}", String::from_utf8_lossy(&stats.stderr));
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let inspect = crate::support::chunkload().args(["inspect", "--json", &image]).output().unwrap();
    let live =
        serde_json::from_slice::<serde_json::Value>(&inspect.stdout).unwrap()["flattened"]["total_bytes"]
            .as_u64()
            .unwrap();
    let read = v["bytes_read"].as_u64().unwrap_or_else(|| panic!("no bytes_read in {v}"));
    assert_eq!(read, live / 2, "{v}");
    let bad = crate::support::chunkload()
        .args(["trace", "synth", "--image", &image, "--read-share", "1.5", "-o"])
        .arg(t.path().join("x.jsonl"))
        .output()
        .unwrap();
    // Refused by the argument parser (the share is a validated fraction).
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("fraction 1.5 is outside 0 ..= 1"));
}
