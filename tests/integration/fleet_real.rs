//! Real converted images mixed into the fleet (`[[population.real]]`): two committed images that
//! share most chunks, their real traces as working sets, through `chunkload simulate` and `sweep`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{TINY_REGION, chunkload, scratch};

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images")
}

/// Converts hello-py and hello-py-v2 into `dir/store` with `dir/key`.
fn convert_two(dir: &Path) {
    chunkload().arg("keygen").arg(dir.join("key")).assert().success();
    for tag in ["hello-py", "hello-py-v2"] {
        chunkload()
            .args(["convert", &format!("{}:{tag}", images().join("oci").display()), "--name", tag])
            .arg("--store")
            .arg(dir.join("store"))
            .arg("--key")
            .arg(dir.join("key"))
            .arg("-o")
            .arg(dir.join(format!("{tag}.manifest")))
            .assert()
            .success();
    }
}

/// A tiny fleet (as simulate_cli's) with `real` (`[[population.real]]` entries), in a file of
/// its own.
fn scenario(dir: &Path, real: &str) -> PathBuf {
    // `[[population.real]]` tables may follow the others.
    let text = format!("{TINY_REGION}\n{real}");
    let p = dir.join(format!("real-{:016x}.toml", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        real.hash(&mut h);
        h.finish()
    }));
    fs::write(&p, text).unwrap();
    p
}

fn entry(dir: &Path, manifest: &str, tag: &str, functions: usize) -> String {
    let q = |p: PathBuf| format!("{:?}", p.display().to_string());
    format!(
        "[[population.real]]\nmanifest = {manifest:?}\nstore = {}\nkey = {}\ntrace = {}\nfunctions = {functions}\n",
        q(dir.join("store")),
        q(dir.join("key")),
        q(images().join("traces").join(format!("{tag}.trace")))
    )
}

#[test]
fn real_images_join_the_fleet_and_share_their_chunks() {
    let t = scratch();
    let d = t.path();
    convert_two(d);
    // One by name in the store, one by manifest file.
    let v2_file = d.join("hello-py-v2.manifest").display().to_string();
    let real = [entry(d, "hello-py", "hello-py", 4), entry(d, &v2_file, "hello-py-v2", 4)].concat();
    let sc = scenario(d, &real);
    let run = |sc: &Path| {
        let o = chunkload().args(["simulate", "--json", "--scenario"]).arg(sc).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let out = run(&sc);
    assert_eq!(out, run(&sc), "same inputs, same bytes");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let p = &v["population"];
    assert_eq!(p["real_images"], 2);
    assert_eq!(p["real_functions"], 8);
    assert_eq!(p["initial_functions"], 200, "real functions are extra");
    let (stored, distinct) =
        (p["real_image_chunks"].as_u64().unwrap(), p["real_distinct_chunks"].as_u64().unwrap());
    // hello-py-v2 changes only the app layer: nearly every chunk is hello-py's too.
    assert!(distinct < stored && distinct * 10 < stored * 6, "stored {stored}, distinct {distinct}");
    assert!(p["real_readable_chunks"].as_u64().unwrap() > 10);
    assert!(v["workload"]["real_cold_starts"].as_u64().unwrap() > 0, "real functions started");
    assert_eq!(v["scenario"]["population"]["real"][1]["manifest"], v2_file.as_str());

    // Without the real images the synthetic part is untouched: the same readable synthetic ids.
    let plain = run(&scenario(d, ""));
    let w: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(
        w["population"]["readable_chunks"].as_u64().unwrap() + p["real_readable_chunks"].as_u64().unwrap(),
        p["readable_chunks"].as_u64().unwrap()
    );

    // The sweep records the images by content and runs them at every point.
    let o = chunkload()
        .args(["sweep", "--experiment", "fleet", "--quiet", "--json", "--grid", "l2.policy=lru,s3-fifo"])
        .arg("--scenario")
        .arg(&sc)
        .arg("--out")
        .arg(d.join("sweep"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["inputs"]["real.1.image_sha256"].as_str().map(str::len), Some(64), "{}", s["inputs"]);
    let o = chunkload()
        .args(["sweep", "--experiment", "fleet", "--quiet", "--grid", "chunk_size=256KiB,512KiB"])
        .arg("--scenario")
        .arg(&sc)
        .arg("--out")
        .arg(d.join("sweep-cs"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("chunk_size 256KiB differs"), "{o:?}");

    // Bad entries: refused, naming the entry, the key and the file.
    let fails = |real: &str, want: &[&str]| {
        let o = chunkload().args(["simulate", "--scenario"]).arg(scenario(d, real)).output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        let e = String::from_utf8_lossy(&o.stderr);
        for w in want {
            assert!(e.contains(w), "{w:?} not in {e}");
        }
    };
    let missing = d.join("nope.manifest").display().to_string();
    fails(&entry(d, &missing, "hello-py", 1), &["population.real[0]", "manifest", "nope.manifest"]);
    fails(&entry(d, "hello-py", "no-such-trace", 1), &["population.real[0]", "trace", "no-such-trace.trace"]);
    fails(&entry(d, "hello-py", "hello-py", 0), &["population.real[0]", "functions"]);
    let no_key = entry(d, "hello-py", "hello-py", 1)
        .lines()
        .filter(|l| !l.starts_with("key"))
        .collect::<Vec<_>>()
        .join("\n");
    fails(&no_key, &["population.real[0]", "key"]);
    fails(
        &format!("{}\nchunk_size = \"1MiB\"", entry(d, "hello-py", "hello-py", 1)),
        &["unknown field `chunk_size`", "population.real"],
    );
    // A fleet has one chunk size: an image cut otherwise is refused, not silently rescaled.
    let o = chunkload()
        .args(["simulate", "--set", "chunk_size=\"1MiB\"", "--scenario"])
        .arg(scenario(d, &entry(d, "hello-py", "hello-py", 1)))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("population.real[0]") && e.contains("chunk_size"), "{e}");
}
