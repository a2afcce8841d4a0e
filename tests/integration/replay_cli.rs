//! `chunkload replay`: one start through L1, L2 and S3 in simulated time, end to end on a real
//! converted image.

use std::fs;

use crate::support::{ReplayInputs, chunkload, kitchen_sink, replay_inputs, scratch};

#[test]
fn replay_orders_cold_and_warm_starts_and_is_reproducible() {
    let t = scratch();
    let ReplayInputs { key, store, manifest, trace } = replay_inputs(t.path());
    let image = format!("{}:ks", kitchen_sink().join("oci").display());

    let replay = || {
        let mut c = chunkload();
        c.arg("replay")
            .arg(&manifest)
            .arg("--store")
            .arg(&store)
            .arg("--key")
            .arg(&key)
            .arg("--trace")
            .arg(&trace);
        c
    };
    let run = |l1: &str, l2: &str, extra: &[&str]| -> serde_json::Value {
        let out = replay().args(["--json", "--l1", l1, "--l2", l2]).args(extra).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let start = |v: &serde_json::Value| v["lazy"]["start_time"].as_u64().unwrap();
    let cold = run("cold", "cold", &[]);
    let az = run("cold", "warm", &[]);
    let warm = run("warm", "warm", &[]);
    assert!(
        start(&cold) > start(&az) && start(&az) > start(&warm),
        "{} {} {}",
        start(&cold),
        start(&az),
        start(&warm)
    );
    assert!(cold["lazy"]["by_tier"]["s3"]["chunks"].as_u64().unwrap() >= 4, "{}", cold["lazy"]);
    assert!(az["lazy"]["by_tier"].get("s3").is_none(), "a warm AZ cache serves everything: {}", az["lazy"]);
    assert_eq!(warm["lazy"]["bytes_fetched"], 0);
    // The tiers' own counters cover this start only, not the warm-up.
    assert_eq!(warm["lazy"]["l1"]["memory"]["misses"], 0, "{}", warm["lazy"]["l1"]);
    assert!(warm["lazy"]["l1"]["memory"]["hits"].as_u64().unwrap() >= 4);
    assert!(warm["lazy"]["by_tier"]["worker-memory"]["chunks"].as_u64().unwrap() >= 4, "{}", warm["lazy"]);
    assert_eq!(az["lazy"]["l2"]["misses"], 0);
    assert_eq!(cold["lazy"]["l2"]["misses"], cold["lazy"]["by_tier"]["s3"]["chunks"]);
    assert_eq!(cold["seed"], 0x00c0_ffee, "the default seed is printed");
    // Same inputs and seed: the same output, byte for byte; another seed draws other latencies.
    assert_eq!(run("cold", "cold", &[]), cold);
    assert_ne!(start(&run("cold", "cold", &["--seed", "5"])), start(&cold));
    // Without the trace's CPU gaps, only the loading is left.
    assert!(start(&run("warm", "warm", &["--cpu-scale", "0"])) < start(&warm));

    // The chunk stream other simulators can replay, and the baselines.
    let stream = t.path().join("stream.csv");
    let timeline = t.path().join("timeline.json");
    let v = run(
        "cold",
        "cold",
        &[
            "--chunk-stream",
            stream.to_str().unwrap(),
            "--timeline",
            timeline.to_str().unwrap(),
            "--image",
            &image,
        ],
    );
    let fetches: Vec<serde_json::Value> = serde_json::from_slice(&fs::read(&timeline).unwrap()).unwrap();
    assert_eq!(fetches.len() as u64, v["lazy"]["by_tier"]["s3"]["chunks"].as_u64().unwrap());
    assert!(fetches.iter().all(|f| f["done"].as_u64() > f["issued"].as_u64() && f["tier"] == "s3"));
    let csv = fs::read_to_string(&stream).unwrap();
    // With an empty worker cache every request misses it: one row per chunk fetched from S3.
    assert!(csv.starts_with("time_ns,chunk_id,chunk_index,size,tier,done_ns\n"));
    assert_eq!(csv.lines().count() as u64 - 1, v["lazy"]["by_tier"]["s3"]["chunks"].as_u64().unwrap());
    // Each baseline is an object with named fields, as in `explain` and the demo.
    let b = &v["baselines"];
    for (key, name) in [("full_pull", "full pull"), ("zip", "zip")] {
        assert_eq!(b[key]["name"], name);
        let (total, setup) = (b[key]["total"].as_u64().unwrap(), b[key]["setup"].as_u64().unwrap());
        assert_eq!(total, setup + b[key]["run"]["start_time"].as_u64().unwrap());
        assert!(
            b[key]["download_bytes"].as_u64().unwrap() > 0 && b[key]["unpack_bytes"].as_u64().unwrap() > 0
        );
    }
    assert!(b["zip_over_limit"].is_boolean());

    // A scenario with an unknown key is refused with its name.
    let bad = t.path().join("bad.toml");
    fs::write(&bad, "[l1]\ncapacty = \"1GiB\"\n").unwrap();
    let out = replay().arg("--scenario").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("capacty"));
}
