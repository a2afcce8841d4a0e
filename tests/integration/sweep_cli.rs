//! `chunkload sweep` and `chunkload merge` on a real converted image: a replay swept over an
//! AZ-cache grid, whole and in shards, with byte-identical merged outputs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::support::{ReplayInputs, chunkload, dir_files, replay_inputs, scratch};

const GRID: &str = "l2.node_capacity=128KiB,64GiB;l2.policy=lru,s3-fifo;fetch.concurrency=1,16";

/// Converts the kitchen sink and writes a two-thread trace; returns the replay-input flags.
fn replay_flags(dir: &Path) -> Vec<OsString> {
    let ReplayInputs { key, store, manifest, trace } = replay_inputs(dir);
    vec![
        "--manifest".into(),
        manifest.into(),
        "--store".into(),
        store.into(),
        "--key".into(),
        key.into(),
        "--trace".into(),
        trace.into(),
    ]
}

#[test]
fn sweep_shards_merge_byte_identical_and_refuse_bad_input() {
    let t = scratch();
    let inputs = replay_flags(t.path());
    let sweep = |out: &PathBuf, extra: &[&str]| {
        let mut c = chunkload();
        c.arg("sweep").args(&inputs).args(["--grid", GRID, "--quiet", "--out"]).arg(out).args(extra);
        c.output().unwrap()
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };

    let whole = t.path().join("whole");
    let table = ok(sweep(&whole, &[]));
    assert!(
        table.contains("seed 12648430") && table.contains("l2.node_capacity=64GiB;l2.policy=s3-fifo"),
        "{table}"
    );
    let got = dir_files(&whole);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "cdf_fetch_ms.svg",
            "hit_ratio_l2.node_capacity.svg",
            "index.html",
            "results.csv",
            "results.json",
            "tier_mix.svg"
        ]
    );
    let v: serde_json::Value = serde_json::from_slice(&got["results.json"]).unwrap();
    assert_eq!(v["seed"], 0x00c0_ffee);
    assert_eq!(v["experiment"], "replay");
    assert_eq!(v["chunkload_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["scenario"].as_str().unwrap().contains("[l2]"), "effective scenario recorded");
    assert_eq!(v["inputs"]["l2_start"], "warm");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    // The knobs act through the model: a warm AZ cache of 20 x 64 GiB serves everything, one of
    // 20 x 128 KiB cannot hold the image; one fetch in flight is slower than sixteen.
    let m = |i: usize, k: &str| rows[i]["metrics"][k].as_f64().unwrap_or_else(|| panic!("{k} in row {i}"));
    assert_eq!(rows[4]["label"], "l2.node_capacity=64GiB;l2.policy=lru;fetch.concurrency=1");
    assert_eq!(m(4, "hit_ratio.l2"), 1.0);
    assert!(m(0, "hit_ratio.l2") < 1.0, "{}", m(0, "hit_ratio.l2"));
    assert!(m(0, "tier_chunks.s3") > 0.0);
    assert!(m(4, "start_time_ms") > m(5, "start_time_ms"));
    assert!(rows[0]["distributions"]["fetch_ms"].as_array().unwrap().len() > 100);
    let csv = String::from_utf8(got["results.csv"].clone()).unwrap();
    assert!(csv.starts_with("# chunkload ") && csv.contains("seed 12648430"), "{csv}");
    let svg = String::from_utf8(got["hit_ratio_l2.node_capacity.svg"].clone()).unwrap();
    assert!(svg.contains("seed 12648430") && svg.contains("l2.policy=s3-fifo"));

    // Same seed: the same bytes, every file.
    let again = t.path().join("again");
    ok(sweep(&again, &[]));
    assert_eq!(dir_files(&again), got);
    // Another seed draws other latencies.
    let other = t.path().join("other");
    ok(sweep(&other, &["--seed", "5"]));
    assert_ne!(dir_files(&other)["results.json"], got["results.json"]);
    // A new set in the same directory replaces the old one: no stale chart stays behind.
    ok(sweep_grid(&inputs, &other, "l2.policy=lru,fifo"));
    assert_eq!(
        dir_files(&other).keys().collect::<Vec<_>>(),
        ["cdf_fetch_ms.svg", "index.html", "results.csv", "results.json", "tier_mix.svg"]
    );

    // Three shards (one directory is enough: the files are named by shard), merged in any order.
    let shards = t.path().join("shards");
    for s in ["1/3", "2/3", "3/3"] {
        ok(sweep(&shards, &["--shard", s]));
    }
    let shard = |i: usize| shards.join(format!("results-shard-{i}-of-3.json"));
    assert_eq!(dir_files(&shards).len(), 3, "a shard writes its shard file only");
    let merged = t.path().join("merged");
    let merge = |out: &Path, parts: &[PathBuf]| {
        chunkload().arg("merge").args(parts).arg("--out").arg(out).output().unwrap()
    };
    ok(merge(&merged, &[shard(3), shard(1), shard(2)]));
    assert_eq!(dir_files(&merged), got, "merged shards = one run, byte for byte");

    // A missing shard, a shard of another grid, a duplicate: refused, nothing written.
    let bad = t.path().join("bad");
    let fails = |o: std::process::Output, want: &str| {
        // 1: refused by chunkload; 2: refused by the argument parser.
        assert!(
            matches!(o.status.code(), Some(1 | 2)),
            "{:?} {}",
            o.status,
            String::from_utf8_lossy(&o.stdout)
        );
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(want), "{want:?} not in {e}");
    };
    fails(merge(&bad, &[shard(3), shard(1)]), "merge: missing shard 2 of 3");
    fails(
        merge(&bad, &[shard(2), shard(1), shard(2)]),
        "missing shard 3 of 3; shard given more than once: 2 (",
    );
    let foreign = t.path().join("foreign");
    let o = chunkload()
        .arg("sweep")
        .args(&inputs)
        .args(["--grid", "l2.policy=lru,s3-fifo,fifo", "--quiet", "--shard", "3/3", "--out"])
        .arg(&foreign)
        .output()
        .unwrap();
    ok(o);
    fails(merge(&bad, &[shard(1), shard(2), foreign.join("results-shard-3-of-3.json")]), "different grid");
    fails(merge(&bad, &[whole.join("results.json")]), "not a shard");
    assert!(!bad.join("results.json").exists());

    // Bad grids and inputs: a clear error naming the culprit, and no results.
    let fresh = t.path().join("fresh");
    fails(sweep_grid(&inputs, &fresh, "l1.capacity=1GiB,4GiB"), "l1.capacity=1GiB: unknown key");
    fails(sweep_grid(&inputs, &fresh, "l1.memory_capacity=1GiB,12XB"), "l1.memory_capacity=12XB");
    fails(sweep_grid(&inputs, &fresh, "l2.policy=lru;l2.policy=fifo"), "given twice");
    fails(
        sweep_grid(&inputs, &fresh, "fetch.concurrency=0,4"),
        "fetch.concurrency=0: count 0 is below the minimum 1",
    );
    assert!(!fresh.join("results.json").exists());
    let o = chunkload().args(["sweep", "--grid", "l2.policy=lru", "--out"]).arg(&fresh).output().unwrap();
    fails(o, "the replay experiment needs --manifest, --store, --key, --trace");
    fails(sweep(&fresh, &["--shard", "4/3"]), "--shard 4/3");
}

fn sweep_grid(inputs: &[OsString], out: &Path, grid: &str) -> std::process::Output {
    chunkload()
        .arg("sweep")
        .args(inputs)
        .args(["--grid", grid, "--quiet", "--out"])
        .arg(out)
        .output()
        .unwrap()
}
