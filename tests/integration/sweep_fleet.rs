//! `chunkload sweep --experiment fleet`: a small fleet swept over a 2x2 grid, whole and in two
//! shards merged, with byte-identical outputs; the knobs act through the model; bad input refused.

use std::fs;
use std::path::PathBuf;

use crate::support::{TINY_REGION, chunkload, dir_files, scratch};

const GRID: &str = "l2.node_capacity=100MiB,300MiB;chunk_size=256KiB,1MiB";

#[test]
fn fleet_sweep_shards_merge_byte_identical_and_refuse_bad_input() {
    let t = scratch();
    let scenario = t.path().join("tiny.toml");
    // The Belady bound on, so the miss-ratio chart has its bound line (top-level keys come first).
    fs::write(&scenario, format!("l2_belady = true\n{TINY_REGION}")).unwrap();
    let sweep = |out: &PathBuf, grid: &str, extra: &[&str]| {
        let mut c = chunkload();
        c.args(["sweep", "--experiment", "fleet", "--scenario"])
            .arg(&scenario)
            .args(["--grid", grid, "--quiet", "--out"])
            .arg(out)
            .args(extra);
        c.output().unwrap()
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };

    let whole = t.path().join("whole");
    let table = ok(sweep(&whole, GRID, &[]));
    assert!(table.contains("experiment fleet") && table.contains("cold_start_p99_ms"), "{table}");
    let got = dir_files(&whole);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "cdf_agent_read_ms.svg",
            "cdf_cold_start_ms.svg",
            "cdf_stripe_fetch_ec_ms.svg",
            "cdf_stripe_fetch_no_parity_ms.svg",
            "hit_ratio_l2.node_capacity.svg",
            "index.html",
            "results.csv",
            "results.json",
            "tier_mix.svg"
        ]
    );
    let v: serde_json::Value = serde_json::from_slice(&got["results.json"]).unwrap();
    assert_eq!(v["experiment"], "fleet");
    assert!(v["scenario"].as_str().unwrap().contains("name = \"tiny\""), "base scenario recorded");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let m = |i: usize, k: &str| rows[i]["metrics"][k].as_f64().unwrap_or_else(|| panic!("{k} in row {i}"));
    assert_eq!(rows[3]["label"], "l2.node_capacity=300MiB;chunk_size=1MiB");
    // The knobs act through the model: a bigger AZ cache hits more; bigger chunks mean fewer
    // chunks per layer and so fewer S3 GETs for the same images.
    assert!(m(2, "hit_ratio.l2") > m(0, "hit_ratio.l2"), "{} {}", m(2, "hit_ratio.l2"), m(0, "hit_ratio.l2"));
    assert!(
        m(0, "s3_requests") > 2.0 * m(1, "s3_requests"),
        "{} {}",
        m(0, "s3_requests"),
        m(1, "s3_requests")
    );
    for (i, row) in rows.iter().enumerate() {
        assert!(m(i, "belady.hit_ratio.l2") >= m(i, "hit_ratio.l2"), "the bound bounds, row {i}");
        assert!(m(i, "tier_chunks.l1") > 0.0 && m(i, "tier_chunks.s3") > 0.0);
        assert_eq!(row["distributions"]["cold_start_ms"].as_array().unwrap().len(), 102);
    }
    let svg = String::from_utf8(got["hit_ratio_l2.node_capacity.svg"].clone()).unwrap();
    assert!(svg.contains("seed 12648430") && svg.to_lowercase().contains("belady"), "bound drawn");

    // Same seed, same bytes; two shards merged are the whole run, byte for byte.
    let again = t.path().join("again");
    ok(sweep(&again, GRID, &[]));
    assert_eq!(dir_files(&again), got);
    let shards = t.path().join("shards");
    for s in ["1/2", "2/2"] {
        ok(sweep(&shards, GRID, &["--shard", s]));
    }
    let merged = t.path().join("merged");
    let o = chunkload()
        .arg("merge")
        .arg(shards.join("results-shard-2-of-2.json"))
        .arg(shards.join("results-shard-1-of-2.json"))
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    let merged_table = ok(o);
    assert!(merged_table.contains("cold_start_p99_ms"), "merge shows the fleet headline: {merged_table}");
    assert_eq!(dir_files(&merged), got, "merged shards = one run, byte for byte");

    // Bad input: refused with the reason, nothing written.
    let bad = t.path().join("bad");
    let fails = |o: std::process::Output, want: &[&str]| {
        assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
        let e = String::from_utf8_lossy(&o.stderr);
        for w in want {
            assert!(e.contains(w), "{w:?} not in {e}");
        }
    };

    // `--shard auto` reads the array task from the environment and writes the same shard file.
    let auto = t.path().join("auto");
    let sched_vars = [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_JOB_ID",
        "JOB_COMPLETION_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
    ];
    let auto_sweep = |out: &PathBuf, env: &[(&str, &str)], extra: &[&str]| {
        let mut c = chunkload();
        for v in sched_vars {
            c.env_remove(v);
        }
        c.envs(env.iter().copied())
            .args(["sweep", "--experiment", "fleet", "--scenario"])
            .arg(&scenario)
            .args(["--grid", GRID, "--shard", "auto", "--out"])
            .arg(out)
            .args(extra);
        c.output().unwrap()
    };
    let o = auto_sweep(&auto, &[("JOB_COMPLETION_INDEX", "1")], &["--shard-count", "2"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard 2/2 from JOB_COMPLETION_INDEX=1"), "{o:?}");
    ok(o);
    assert_eq!(
        dir_files(&auto)["results-shard-2-of-2.json"],
        dir_files(&shards)["results-shard-2-of-2.json"]
    );
    fails(
        auto_sweep(&bad, &[], &[]),
        &["--shard auto", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"],
    );
    fails(auto_sweep(&bad, &[("AWS_BATCH_JOB_ARRAY_INDEX", "0")], &[]), &["AWS Batch", "--shard-count"]);

    // --plan runs nothing into --out: it lists the points with estimates and sizes an array.
    let o = chunkload()
        .args(["sweep", "--experiment", "fleet", "--scenario"])
        .arg(&scenario)
        .args(["--grid", GRID, "--plan", "--target-wall", "1h"])
        .output()
        .unwrap();
    let plan = ok(o);
    for want in [
        "plan: fleet sweep, 4 points",
        "calibration: point 0 run at 0.125 and 0.250 of its 22min simulated time",
        "l2.node_capacity=300MiB;chunk_size=1MiB",
        "est. time",
        "est. memory",
        "target wall 1.0h: 1 array task (--array=1-1, --shard auto)",
    ] {
        assert!(plan.contains(want), "{want:?} not in {plan}");
    }
    let refused = |extra: &[&str], want: &str| {
        let o = chunkload()
            .args(["sweep", "--experiment", "fleet", "--grid", GRID])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(want), "{want:?}: {o:?}");
    };
    refused(&["--plan", "--shard", "1/2"], "--shard");
    refused(&["--target-wall", "1h", "--out", "x"], "--plan");
    refused(&["--shard-count", "2", "--out", "x"], "--shard");
    refused(&[], "--out");

    // Shards of another scenario or seed are refused by merge, naming the file and the difference.
    let other = t.path().join("other.toml");
    fs::write(&other, format!("l2_belady = false\n{TINY_REGION}")).unwrap();
    let foreign = t.path().join("foreign");
    let o = chunkload()
        .args(["sweep", "--experiment", "fleet", "--scenario"])
        .arg(&other)
        .args(["--grid", GRID, "--quiet", "--shard", "1/2", "--out"])
        .arg(&foreign)
        .output()
        .unwrap();
    ok(o);
    ok(sweep(&foreign.join("seeded"), GRID, &["--shard", "1/2", "--seed", "7"]));
    let merge = |first: PathBuf| {
        chunkload()
            .arg("merge")
            .arg(first)
            .arg(shards.join("results-shard-2-of-2.json"))
            .arg("--out")
            .arg(&bad)
            .output()
            .unwrap()
    };
    fails(
        merge(foreign.join("results-shard-1-of-2.json")),
        &["foreign/results-shard-1-of-2.json", "different base scenario", "l2_belady = false"],
    );
    fails(merge(foreign.join("seeded/results-shard-1-of-2.json")), &["different seed", "\"7\""]);
    fails(sweep(&bad, "l1.capacity=1GiB,4GiB", &[]), &["l1.capacity", "unknown key", "memory_capacity"]);
    fails(sweep(&bad, "chunk_size=0B", &[]), &["chunk_size"]);
    fails(sweep(&bad, "l2.policy=lru;placement.workers=0,10", &[]), &["workers"]);
    fails(sweep(&bad, GRID, &["--trace", "t.jsonl"]), &["--trace", "replay experiment"]);
    assert!(!bad.exists(), "nothing written for a refused sweep");
    let o = chunkload()
        .args(["sweep", "--experiment", "fleet", "--scenario", "/nonexistent/fleet.toml", "--grid", GRID])
        .arg("--out")
        .arg(&bad)
        .output()
        .unwrap();
    fails(o, &["/nonexistent/fleet.toml"]);
}
