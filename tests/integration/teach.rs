//! The teaching path: the committed images in images/ (they open, verify and have parseable start
//! traces), `chunkload demo` end to end, and `chunkload explain` in text, JSON and against a store.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chunkload::flatten;
use chunkload::image::{Image, OpenOptions};
use chunkload::teach::demo::layout_tags;
use chunkload::trace::{Access, Reader};
use serde_json::Value;

use crate::support::{chunkload, scratch};

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images")
}

fn oci(tag: &str) -> String {
    format!("{}:{tag}", images().join("oci").display())
}

fn trace(tag: &str) -> PathBuf {
    images().join("traces").join(format!("{tag}.trace"))
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() { dir_bytes(&e.path()) } else { m.len() }
        })
        .sum()
}

#[test]
fn committed_images_verify_share_layers_and_have_start_traces() {
    let tags = layout_tags(&images().join("oci")).unwrap();
    assert_eq!(
        tags,
        ["shell-tool", "hello-py", "hello-py-reupload", "hello-py-v2", "json-api", "sqlite-report"]
    );
    assert!(dir_bytes(&images().join("oci")) < 30_000_000, "the committed images stay under 30 MB");
    let readme = fs::read_to_string(images().join("README.md")).unwrap();
    let mut base = None;
    for tag in &tags {
        assert!(readme.contains(&format!("`{tag}`")), "images/README.md describes {tag}");
        // Opening verifies every document; flattening streams every layer and checks its digests.
        let image = Image::open(&oci(tag), &OpenOptions::default()).unwrap();
        let flat = flatten::flatten(&image).unwrap();
        assert!(flat.summary.files > 100, "{tag}: real package content");
        let first = image.layers[0].id();
        assert_eq!(*base.get_or_insert(first), first, "{tag} shares the base layer blob");
    }
    let sqlite =
        flatten::flatten(&Image::open(&oci("sqlite-report"), &OpenOptions::default()).unwrap()).unwrap();
    assert!(
        sqlite.layers.last().unwrap().whiteouts > 0 && sqlite.summary.hidden_bytes > 0,
        "the slimming whiteout"
    );
    for tag in ["shell-tool", "hello-py", "hello-py-v2", "json-api", "sqlite-report"] {
        let reader = Reader::open(&trace(tag)).unwrap();
        assert_eq!(reader.header().source, "strace", "{tag}");
        let records: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        let reads = records.iter().filter(|r| matches!(r.access, Access::Read { .. })).count();
        assert!(records.len() > 50 && reads > 10, "{tag}: {} records, {reads} reads", records.len());
    }
}

/// One demo run shared by the tests below and the browser tests (it converts six images: the
/// slowest step of the suite).
pub(crate) fn demo_run() -> &'static (PathBuf, String) {
    static RUN: OnceLock<(PathBuf, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("demo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let out = dir.join("out");
        let a = chunkload().arg("demo").arg("--out").arg(&out).assert().success();
        (out, String::from_utf8(a.get_output().stdout.clone()).unwrap())
    })
}

#[test]
fn demo_tells_the_story_and_writes_its_data() {
    let (out, stdout) = demo_run();
    for section in [
        "1. The images",
        "2. Flatten, cut",
        "3. One start of hello-py-v2",
        "4. A region: 1000 functions on 100 workers",
        "seed 12648430",
        "full pull",
        "where the chunks came from (paper fig. 7)",
    ] {
        assert!(stdout.contains(section), "missing {section:?} in:\n{stdout}");
    }
    let mut files: Vec<String> =
        fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "chunk-sources.svg",
            "dedup-images.csv",
            "fleet-cold-start.svg",
            "fleet-ecdf.csv",
            "fleet-fig11-agent-read.svg",
            "fleet-fig7-sources.svg",
            "fleet-fig8-l2-minute-hit-rate.svg",
            "fleet-fig9-stripe-fetch.svg",
            "fleet-metrics.csv",
            "fleet-minutes-single-copy.csv",
            "fleet-minutes.csv",
            "fleet-minutes.svg",
            "fleet-node-loss.svg",
            "fleet-scenario.toml",
            "images.csv",
            "index.html",
            "read-latency-cdf.svg",
            "reads.csv",
            "report.json",
            "report.txt",
            "start-times.svg",
            "starts.csv",
            "uploads.csv",
            "uploads.svg"
        ]
    );
    assert!(stdout.starts_with(&fs::read_to_string(out.join("report.txt")).unwrap()));
    let r: Value = serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    let upload = |tag: &str| {
        r["store"]["uploads"].as_array().unwrap().iter().find(|u| u["tag"] == tag).unwrap().clone()
    };
    let re = upload("hello-py-reupload");
    assert_eq!((re["new"].as_u64(), re["present"].as_u64()), (Some(0), re["chunks"].as_u64()), "{re}");
    let v2 = upload("hello-py-v2");
    assert!(v2["new"].as_u64().unwrap() <= 2, "an app-only change adds a chunk or two: {v2}");
    assert!(
        upload("hello-py")["present"].as_u64().unwrap() > 10,
        "hello-py reuses the shell-tool's base chunks"
    );
    assert_eq!(r["store"]["dedup"]["upload"]["identical_reuploads"], 1);
    // Colder caches, slower starts; only a cold AZ cache sends reads to S3.
    let cases = r["starts"]["cases"].as_array().unwrap();
    let t: Vec<u64> = cases.iter().map(|c| c["result"]["start_time"].as_u64().unwrap()).collect();
    assert!(t[0] > t[1] && t[1] > t[2] && t[2] > t[3], "{t:?}");
    let s3 = |c: &Value| c["result"]["by_tier"]["s3"]["chunks"].as_u64().unwrap_or(0);
    assert!(s3(&cases[0]) > 10 && s3(&cases[1]) >= 1 && s3(&cases[2]) == 0 && s3(&cases[3]) == 0);
    let pull = r["starts"]["baselines"]["full_pull"]["total"].as_u64().unwrap();
    assert!(pull > t[2], "a full pull is slower than a usual lazy cold start");
    let reads = fs::read_to_string(out.join("reads.csv")).unwrap();
    assert!(reads.lines().count() > 4 * 50, "per-read rows for every case");
    // The region: the paper's tier mix, a midnight cron minute, and a node loss that erasure
    // coding hides and a single copy pays for.
    let region = &r["fleet"]["region"];
    let share = |k: &str| region["sources"][k].as_f64().unwrap();
    assert!((0.55..0.80).contains(&share("l1_share")), "L1 {}", share("l1_share"));
    assert!((0.20..0.45).contains(&share("l2_share")) && share("s3_share") < 0.02, "{}", region["sources"]);
    assert!(region["workload"]["cold_starts"].as_u64().unwrap() > 5_000);
    let single = &r["fleet"]["single_copy"];
    assert_eq!(region["failures"][0]["lost_share"].as_f64(), Some(0.0));
    let lost = single["failures"][0]["lost_share"].as_f64().unwrap();
    assert!((0.02..0.10).contains(&lost), "single copy lost {lost}");
    assert!(region["l2"]["degraded_hits"].as_u64().unwrap() > 0);
    assert!(single["s3"]["requests"].as_u64() > region["s3"]["requests"].as_u64());
    let minutes = fs::read_to_string(out.join("fleet-minutes.csv")).unwrap();
    assert_eq!(minutes.lines().count(), 1 + 5, "a header and five minutes:\n{minutes}");
    // The saved scenario is the one run: `simulate` takes it back unchanged.
    let saved = out.join("fleet-scenario.toml");
    let a =
        chunkload().arg("simulate").arg("--scenario").arg(&saved).arg("--print-scenario").assert().success();
    let printed = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(printed.contains("name = \"demo-region\""), "{printed}");
    assert!(fs::read_to_string(&saved).unwrap().ends_with(&printed), "round trip");
}

/// docs/guide.md shows the demo's figures from docs/figures/ and links the whole report in
/// docs/figures/demo/: they must be what the demo draws (charts are deterministic, so byte for
/// byte; the images folder's path is written as `images`). Refresh with `CHUNKLOAD_BLESS=1 cargo test --test
/// integration guide_figures`.
#[test]
fn guide_figures_are_the_demos() {
    let (out, _) = demo_run();
    let figures = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/figures");
    for name in [
        "uploads.svg",
        "chunk-sources.svg",
        "read-latency-cdf.svg",
        "start-times.svg",
        "fleet-fig7-sources.svg",
        "fleet-fig8-l2-minute-hit-rate.svg",
        "fleet-fig9-stripe-fetch.svg",
        "fleet-fig11-agent-read.svg",
        "fleet-node-loss.svg",
    ] {
        let drawn = fs::read_to_string(out.join(name)).unwrap();
        assert!(drawn.starts_with("<svg"), "{name}");
        if std::env::var_os("CHUNKLOAD_BLESS").is_some() {
            fs::write(figures.join(name), &drawn).unwrap();
        }
        let committed = fs::read_to_string(figures.join(name)).unwrap_or_default();
        assert!(
            committed == drawn,
            "docs/figures/{name} differs from what `chunkload demo` draws; refresh it with CHUNKLOAD_BLESS=1"
        );
    }
    // The whole demo output the guide links (docs/figures/demo/index.html and its data files),
    // as `chunkload demo --images images` writes it from the checkout.
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("images").display().to_string();
    let committed_dir = figures.join("demo");
    if std::env::var_os("CHUNKLOAD_BLESS").is_some() {
        let _ = fs::remove_dir_all(&committed_dir);
        fs::create_dir_all(&committed_dir).unwrap();
    }
    let mut names: Vec<String> =
        fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in &names {
        // The images folder and the binary as this checkout spells them: the committed copy is
        // the same from any checkout.
        let drawn = fs::read_to_string(out.join(name))
            .unwrap()
            .replace(&images, "images")
            .replace(env!("CARGO_BIN_EXE_chunkload"), "chunkload");
        if std::env::var_os("CHUNKLOAD_BLESS").is_some() {
            fs::write(committed_dir.join(name), &drawn).unwrap();
        }
        let committed = fs::read_to_string(committed_dir.join(name)).unwrap_or_default();
        assert!(
            committed == drawn,
            "docs/figures/demo/{name} differs from what `chunkload demo` writes; refresh it with CHUNKLOAD_BLESS=1"
        );
    }
    let mut kept: Vec<String> = fs::read_dir(&committed_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, names, "docs/figures/demo/ holds exactly the demo's files");
}

#[test]
fn demo_rejects_bad_folders_and_keeps_foreign_output() {
    let t = scratch();
    let foreign = t.path().join("mine");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    let err = chunkload().arg("demo").arg("--out").arg(&foreign).assert().failure();
    let msg = String::from_utf8_lossy(&err.get_output().stderr).into_owned();
    assert!(msg.contains("does not hold an earlier demo's output"), "{msg}");
    assert_eq!(fs::read_to_string(foreign.join("notes.txt")).unwrap(), "keep me");
    let out = t.path().join("out");
    let err = chunkload().arg("demo").arg("--out").arg(&out).arg("--images").arg(t.path()).assert().failure();
    let msg = String::from_utf8_lossy(&err.get_output().stderr).into_owned();
    assert!(msg.contains("no OCI layout here") && msg.contains("oci/index.json"), "{msg}");
    assert!(!out.exists(), "nothing written on failure");
    let missing = t.path().join("nope.toml");
    let err = chunkload()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .arg("--fleet-scenario")
        .arg(&missing)
        .assert()
        .failure();
    let msg = String::from_utf8_lossy(&err.get_output().stderr).into_owned();
    assert!(msg.contains("cannot read fleet scenario file") && msg.contains("nope.toml"), "{msg}");
    let bad = t.path().join("bad.toml");
    fs::write(&bad, "[placement]\nworkerz = 3\n").unwrap();
    let err =
        chunkload().arg("demo").arg("--out").arg(&out).arg("--fleet-scenario").arg(&bad).assert().failure();
    let msg = String::from_utf8_lossy(&err.get_output().stderr).into_owned();
    assert!(msg.contains("workerz"), "{msg}");
    assert!(!out.exists(), "nothing written on failure");
}

fn explain(args: &[&str]) -> String {
    let a = chunkload().arg("explain").args(args).assert().success();
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

#[test]
fn explain_narrates_a_start_and_is_reproducible() {
    let image = oci("sqlite-report");
    let tr = trace("sqlite-report");
    let args = [image.as_str(), "--trace", tr.to_str().unwrap(), "--reads", "5", "--l2", "cold"];
    let text = explain(&args);
    for needle in [
        "1. The layers",
        "whiteouts hide",
        "2. The block image and its chunks",
        "3. The start, read by read",
        "served by S3",
        "cold: this worker never fetched it",
        "never seen",
        "4. The whole start",
        "full pull",
        "seed 12648430",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(text, explain(&args), "same inputs, same seed: same story");
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v: Value = serde_json::from_str(&explain(&json_args)).unwrap();
    let reads = v["trace"]["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 5);
    for r in reads {
        assert!(r["latency"].as_u64().unwrap() > 0 && !r["chunks"].as_array().unwrap().is_empty(), "{r}");
        assert!(r["path"].as_str().unwrap().starts_with('/'));
    }
    assert!(v["total"]["baselines"]["zip"]["total"].as_u64().is_some());
    assert_ne!(text, explain(&[args.as_slice(), &["--seed", "7"]].concat()), "another seed, other draws");
}

#[test]
fn explain_compares_with_a_store_and_names_salt_misses() {
    let t = scratch();
    let store = t.path().join("store");
    let key = t.path().join("key");
    chunkload().arg("keygen").arg(&key).assert().success();
    for (tag, salt) in [("hello-py", "default"), ("shell-tool", "other")] {
        chunkload()
            .args(["convert", &oci(tag), "--salt", salt, "--name", tag])
            .arg("--store")
            .arg(&store)
            .arg("--key")
            .arg(&key)
            .arg("-o")
            .arg(t.path().join(format!("{tag}.manifest")))
            .assert()
            .success();
    }
    let tr = trace("hello-py-v2");
    let (image, st) = (oci("hello-py-v2"), store.to_str().unwrap().to_string());
    let base = [image.as_str(), "--trace", tr.to_str().unwrap(), "--store", &st, "--reads", "1000", "--json"];
    let run =
        |extra: &[&str]| -> Value { serde_json::from_str(&explain(&[&base[..], extra].concat())).unwrap() };
    let v = run(&["--l2", "store"]);
    let b = &v["block"];
    assert!(
        b["in_store"].as_u64().unwrap() >= 95,
        "hello-py-v2 shares all but its app chunk with hello-py: {b}"
    );
    assert!(b["shared_with"]["hello-py"].as_u64().unwrap() >= 95);
    // Under the other salt, only shell-tool's base is in the store, and hello-py's copy is no help.
    let v = run(&["--l2", "store", "--salt", "other"]);
    assert!(v["block"]["other_salt"].as_u64().unwrap() > 50, "{}", v["block"]);
    let misses: Vec<&str> = v["trace"]["reads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["chunks"].as_array().unwrap().iter().filter_map(|c| c["az_miss"].as_str()))
        .collect();
    assert!(misses.contains(&"different-salt"), "{misses:?}");
    // A worker cache too small for the image: it held every chunk once, and evicted most.
    let small = t.path().join("small-l1.toml");
    fs::write(&small, "[l1]\nmemory_capacity = \"512KiB\"\ndisk_capacity = \"1MiB\"\n").unwrap();
    let v = run(&["--l1", "warm", "--scenario", small.to_str().unwrap()]);
    let worker: Vec<&str> = v["trace"]["reads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["chunks"].as_array().unwrap().iter().filter_map(|c| c["worker_miss"].as_str()))
        .collect();
    assert!(worker.contains(&"evicted") && !worker.contains(&"cold"), "{worker:?}");
    // The same start from the sealed manifest in the store; it is not compared with itself.
    let m = explain(&[
        "hello-py",
        "--key",
        key.to_str().unwrap(),
        "--store",
        &st,
        "--trace",
        tr.to_str().unwrap(),
    ]);
    assert!(m.contains("2. The block image") && !m.contains("1. The layers"), "{m}");
    assert!(m.contains("shared with shell-tool") || !m.contains("shared with hello-py"), "{m}");
    // With the image it came from, the layers and baselines; with another image, a clear refusal.
    let k = key.to_str().unwrap();
    let m = explain(&[
        "hello-py",
        "--key",
        k,
        "--store",
        &st,
        "--trace",
        tr.to_str().unwrap(),
        "--image",
        &oci("hello-py"),
    ]);
    assert!(m.contains("1. The layers") && m.contains("full pull"), "{m}");
    let wrong = chunkload()
        .args(["explain", "hello-py", "--key", k, "--store", &st, "--image", &oci("json-api"), "--trace"])
        .arg(&tr)
        .assert()
        .failure();
    let msg = String::from_utf8_lossy(&wrong.get_output().stderr).into_owned();
    assert!(msg.contains("was converted from") && msg.contains("json-api"), "{msg}");
}

#[test]
fn explain_rejects_bad_input() {
    let tr = trace("hello-py");
    let cases: [(&[&str], &str); 3] = [
        (&["hello-py", "--key", "/nonexistent/key", "--trace"], "needs --store"),
        (&[&oci("hello-py"), "--trace", "/nonexistent/t.trace"], "/nonexistent/t.trace"),
        (&[&oci("no-such-tag"), "--trace"], "no-such-tag"),
    ];
    for (args, needle) in cases {
        let mut c = chunkload();
        c.arg("explain").args(args);
        if args.last() == Some(&"--trace") {
            c.arg(&tr);
        }
        let out = c.assert().failure();
        let msg = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(msg.contains(needle), "{args:?}: {msg}");
    }
}
