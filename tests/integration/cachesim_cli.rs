//! `chunkload cachesim` on small traces whose results are worked out by hand, in both input
//! formats; and the request streams `replay --requests-out` writes, run through it.

use std::fs;
use std::path::Path;

use crate::support::{ReplayInputs, chunkload, replay_inputs, scratch};

/// `a b a c b a` with sizes a = 100, b = 200, c = 300 bytes, as oracleGeneral records; next
/// accesses (1-based request numbers) written by hand: a -> 3 -> 6, b -> 5.
fn write_oracle(path: &Path) {
    let reqs: [(u64, u32, i64); 6] =
        [(1, 100, 3), (2, 200, 5), (1, 100, 6), (3, 300, -1), (2, 200, -1), (1, 100, -1)];
    let mut bytes = Vec::new();
    for (i, (id, size, next)) in reqs.iter().enumerate() {
        bytes.extend_from_slice(&(i as u32).to_le_bytes());
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&next.to_le_bytes());
    }
    fs::write(path, bytes).unwrap();
}

fn run(args: &[&str]) -> serde_json::Value {
    let out = chunkload().arg("cachesim").args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (misses, requests, miss bytes, request bytes) of each point, in order.
fn counts(v: &serde_json::Value) -> Vec<(String, u64, u64, u64, u64)> {
    v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap();
            (
                p["algorithm"].as_str().unwrap().to_string(),
                n("misses"),
                n("requests"),
                n("miss_bytes"),
                n("request_bytes"),
            )
        })
        .collect()
}

#[test]
fn cachesim_matches_hand_worked_results_in_both_formats() {
    let t = scratch();
    let bin = t.path().join("abacba.oracleGeneral.bin");
    write_oracle(&bin);
    let csv = t.path().join("abacba.csv");
    fs::write(&csv, "time,obj_id,obj_size\n0,1,100\n1,2,200\n2,1,100\n3,3,300\n4,2,200\n5,1,100\n").unwrap();

    // Two objects, sizes ignored. LRU: a b hit(a) c(evicts b) b(evicts a) a(evicts c): 5 misses.
    // FIFO: a b hit(a) c(evicts a) hit(b) a(evicts b): 4. LFU: c evicts b (one access against a's
    // two), b evicts c (the only chunk with one access), a hits: 4. Belady: c evicts a (next use 6
    // is later than b's 5), b hits, a misses: 4.
    let expect = vec![
        ("lru".to_string(), 5, 6, 5, 6),
        ("fifo".to_string(), 4, 6, 4, 6),
        ("lfu".to_string(), 4, 6, 4, 6),
        ("belady".to_string(), 4, 6, 4, 6),
    ];
    for trace in [&bin, &csv] {
        let v = run(&[
            trace.to_str().unwrap(),
            "--algorithms",
            "lru,fifo,lfu,belady",
            "--sizes",
            "2",
            "--ignore-obj-size",
        ]);
        assert_eq!(counts(&v), expect, "{}", trace.display());
        assert_eq!(v["size_unit"], "objects");
    }

    // 350 bytes, LRU with sizes: a(100) b(200) hit(a); c(300) evicts b, then a; b evicts c; a fits
    // beside b. Misses a b c b a: 900 of 1000 bytes.
    let v = run(&[bin.to_str().unwrap(), "--algorithms", "lru", "--sizes", "350"]);
    assert_eq!(counts(&v), vec![("lru".to_string(), 5, 6, 900, 1000)]);
    assert!((v["points"][0]["byte_miss_ratio"].as_f64().unwrap() - 0.9).abs() < 1e-12);
    // A share of the working set (a + b + c = 600 bytes): 50% is 300 bytes, where c alone fits.
    let v = run(&[bin.to_str().unwrap(), "--algorithms", "lru", "--sizes", "50%"]);
    assert_eq!(v["points"][0]["cache_size"], 300);
    assert_eq!(v["working_set"]["bytes"], 600);

    // Warm-up: the first three requests only fill the cache; LRU then misses c, b and a.
    let v = run(&[
        bin.to_str().unwrap(),
        "--algorithms",
        "lru",
        "--sizes",
        "2",
        "--ignore-obj-size",
        "--warmup",
        "3",
    ]);
    assert_eq!(counts(&v), vec![("lru".to_string(), 3, 3, 3, 3)]);
    assert_eq!(v["warmup_requests"], 3);

    // Files with named fields, and the chart.
    let out = t.path().join("out");
    let o = chunkload()
        .args([
            "cachesim",
            bin.to_str().unwrap(),
            "--algorithms",
            "lru,fifo",
            "--sizes",
            "1,2",
            "--ignore-obj-size",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = fs::read_to_string(out.join("cachesim.csv")).unwrap();
    assert!(
        table.starts_with("algorithm,size,cache_size,simulated_size,requests,misses,miss_ratio,"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 5);
    assert!(fs::read_to_string(out.join("mrc.svg")).unwrap().contains("<svg"));
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("cachesim.json")).unwrap()).unwrap();
    assert_eq!(json["points"].as_array().unwrap().len(), 4);
}

#[test]
fn cachesim_rejects_bad_traces_and_flags_with_names() {
    let t = scratch();
    let cut = t.path().join("cut.bin");
    fs::write(&cut, [0u8; 30]).unwrap();
    let o = chunkload().args(["cachesim", cut.to_str().unwrap(), "--sizes", "10"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("cut.bin") && err.contains("6 trailing bytes"), "{err}");

    let csv = t.path().join("bad.csv");
    fs::write(&csv, "obj_id,obj_size\n1,10\n2,ten\n").unwrap();
    let o = chunkload().args(["cachesim", csv.to_str().unwrap(), "--sizes", "10"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.csv") && err.contains("line 3") && err.contains("\"size\""), "{err}");

    let o = chunkload().args(["cachesim", csv.to_str().unwrap(), "--sizes", "0"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("cache size \"0\""));
    let o = chunkload().args(["cachesim", csv.to_str().unwrap(), "--algorithms", "mru"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"mru\""));
    let o = chunkload().args(["cachesim", csv.to_str().unwrap(), "--warmup", "time=5"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("time column"));
}

#[test]
fn replay_request_streams_run_through_cachesim() {
    let t = scratch();
    let ReplayInputs { key, store, manifest, trace } = replay_inputs(t.path());
    let dir = t.path().join("streams");
    let stream = t.path().join("chunks.csv");
    let out = chunkload()
        .arg("replay")
        .arg(&manifest)
        .arg("--store")
        .arg(&store)
        .arg("--key")
        .arg(&key)
        .arg("--trace")
        .arg(&trace)
        .args(["--l1", "cold", "--l2", "cold", "--requests-out"])
        .arg(&dir)
        .arg("--chunk-stream")
        .arg(&stream)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The worker cache saw every chunk request of the chunk stream, in order.
    let chunks: Vec<u64> = fs::read_to_string(&stream)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(!chunks.is_empty());
    let worker_csv = fs::read_to_string(dir.join("worker-cache.csv")).unwrap();
    assert!(worker_csv.starts_with("time_ns,obj_id,obj_size\n"));
    let ids: Vec<u64> =
        worker_csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(ids, chunks);
    let bin = fs::read(dir.join("worker-cache.oracleGeneral.bin")).unwrap();
    assert_eq!(bin.len(), 24 * chunks.len());
    for (i, rec) in bin.chunks(24).enumerate() {
        let id = u64::from_le_bytes(rec[4..12].try_into().unwrap());
        let next = i64::from_le_bytes(rec[16..24].try_into().unwrap());
        let want = chunks[i + 1..].iter().position(|&c| c == id).map_or(-1, |j| (i + 1 + j + 1) as i64);
        assert_eq!((id, next), (chunks[i], want), "record {i}");
    }
    // Cold caches: every worker-cache request went on to the AZ cache.
    assert_eq!(fs::read(dir.join("az-cache.oracleGeneral.bin")).unwrap().len(), bin.len());

    // A cache larger than the image misses each distinct chunk once.
    let mut distinct = chunks.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let v = run(&[
        dir.join("worker-cache.oracleGeneral.bin").to_str().unwrap(),
        "--algorithms",
        "lru,belady",
        "--sizes",
        "1GiB",
    ]);
    for p in v["points"].as_array().unwrap() {
        assert_eq!(p["misses"].as_u64().unwrap(), distinct.len() as u64, "{p}");
        assert_eq!(p["requests"].as_u64().unwrap(), chunks.len() as u64);
    }
}
