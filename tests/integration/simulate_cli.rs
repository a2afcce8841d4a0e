//! `chunkload simulate`: the fleet model from the command line, on a scenario small enough for a
//! debug build.

use std::fs;

use crate::support::{TINY_REGION as TINY, chunkload, scratch};

fn tiny_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("tiny.toml");
    fs::write(&p, TINY).unwrap();
    p
}

#[test]
fn json_echoes_seed_and_scenario_and_is_byte_identical() {
    let dir = scratch();
    let f = tiny_file(dir.path());
    let run = || {
        let out = chunkload()
            .args(["simulate", "--scenario"])
            .arg(&f)
            .args(["--seed", "0x2a", "--json", "--set", "l2.policy=lru"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let a = run();
    assert_eq!(a, run(), "same seed, same bytes");
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(v["seed"], 42);
    assert_eq!(v["scenario"]["name"], "tiny");
    assert_eq!(v["scenario"]["l2"]["policy"], "lru");
    assert_eq!(v["scenario"]["placement"]["workers"], 10);
    assert!(v["workload"]["cold_starts"].as_u64().unwrap() > 100);
    let share = v["sources"]["l1_share"].as_f64().unwrap()
        + v["sources"]["l2_share"].as_f64().unwrap()
        + v["sources"]["s3_share"].as_f64().unwrap();
    assert!((share - 1.0).abs() < 1e-9, "{share}");
}

#[test]
fn tables_on_the_terminal_and_files_with_out() {
    let dir = scratch();
    let f = tiny_file(dir.path());
    let out_dir = dir.path().join("results");
    let out =
        chunkload().args(["simulate", "--scenario"]).arg(&f).arg("--out").arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("seed 12648430") && text.contains("chunks served by (fig. 7)"), "{text}");
    for file in [
        "report.json",
        "metrics.csv",
        "minutes.csv",
        "ecdf.csv",
        "scenario.toml",
        "fig7-sources.svg",
        "fig8-l2-minute-hit-rate.svg",
        "fig9-stripe-fetch.svg",
        "fig11-agent-read.svg",
        "cold-start.svg",
        "minutes.svg",
        "index.html",
    ] {
        let body = fs::read_to_string(out_dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!body.is_empty(), "{file} is empty");
        if file.ends_with(".svg") {
            assert!(body.contains("<svg") && body.contains("</svg>"), "{file}");
        }
    }
    let minutes = fs::read_to_string(out_dir.join("minutes.csv")).unwrap();
    assert_eq!(minutes.lines().count(), 3, "header + two minutes");
    // The page inlines every chart beside its reading and links every data file.
    let page = fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert_eq!(page.matches("<figure class=\"chart\"").count(), 6, "one figure per chart");
    for file in ["report.json", "metrics.csv", "fig7-sources.svg", "scenario.toml"] {
        assert!(page.contains(&format!("<a href=\"{file}\">")), "{file} linked");
    }
    assert!(
        page.contains("Paper, figure 7") && page.contains("<details"),
        "paper figures and folded scenario"
    );
    // The effective scenario written out parses back as a scenario.
    let again = chunkload()
        .args(["simulate", "--print-scenario", "--scenario"])
        .arg(out_dir.join("scenario.toml"))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    // A second run refuses to mix into the same directory.
    let out =
        chunkload().args(["simulate", "--scenario"]).arg(&f).arg("--out").arg(&out_dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

/// A sampled run says so on the terminal, on the page and in the scenario it writes back.
#[test]
fn a_sampled_run_says_it_is_sampled_everywhere() {
    let dir = scratch();
    let f = tiny_file(dir.path());
    let out_dir = dir.path().join("sampled");
    let out = chunkload()
        .args(["simulate", "--set", "sampling.one_in=2", "--scenario"])
        .arg(&f)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("SAMPLED: one chunk id in 2 simulated"), "{text}");
    let page = fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert!(page.contains("Sampled: one chunk id in 2 simulated"), "the page's lead says so");
    let scenario = fs::read_to_string(out_dir.join("scenario.toml")).unwrap();
    assert!(scenario.contains("[sampling]\none_in = 2"), "{scenario}");
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(v["scenario"]["sampling"]["one_in"], 2);
}

#[test]
fn bad_scenarios_are_rejected_with_the_reason() {
    let dir = scratch();
    let cases: &[(&str, &str)] = &[
        ("[l2]\nnode_capcity = \"1GiB\"\n", "node_capcity"),
        ("duration = \"10\"\n", "missing unit"),
        ("duration = \"10 fortnights\"\n", "unknown unit"),
        ("[l1]\nmemory_capacity = \"2XB\"\n", "invalid byte size"),
        ("[uploads]\nreupload_share = 1.5\n", "reupload_share"),
        ("[[failures]]\nkind = \"meteor\"\nat = \"1min\"\n", "meteor"),
        ("duration = [\n", "not valid TOML"),
        ("[sampling]\none_in = 0\n", "sampling.one_in = 0 must be in 1..=1024"),
        (
            "[sampling]\none_in = 8\n[l1]\nmemory_capacity = \"2MiB\"\n",
            "leaves l1.memory_capacity (2MiB) below one chunk",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("bad{i}.toml"));
        fs::write(&f, text).unwrap();
        let out = chunkload().args(["simulate", "--scenario"]).arg(&f).output().unwrap();
        assert!(!out.status.success(), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = chunkload().args(["simulate", "--set", "l2.nodez=3"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("l2.nodez"));
    let out = chunkload().args(["simulate", "--scenario", "/nonexistent/s.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/s.toml"));
    let out = chunkload().args(["simulate", "--seed", "0xzz"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed \"0xzz\" is not a decimal or 0x-hex"));
}

#[test]
fn print_scenario_shows_the_built_in_template() {
    let out = chunkload().args(["simulate", "--print-scenario"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("name = \"paper-region\"") && text.contains("[l2]"), "{text}");
}
