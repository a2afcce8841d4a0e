//! docs/commands.md is the command reference; it must match `--help` exactly. Regenerate it with
//! `CHUNKLOAD_BLESS=1 cargo test --test integration command_reference`.

use std::fs;
use std::path::Path;

use crate::support::chunkload;

/// Every command and subcommand, in the order the reference lists them.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["demo"],
    &["inspect"],
    &["extract"],
    &["keygen"],
    &["convert"],
    &["manifest", "show"],
    &["materialize"],
    &["dedup"],
    &["store", "roots"],
    &["store", "rotate"],
    &["store", "copy-forward"],
    &["store", "expire"],
    &["store", "delete"],
    &["store", "verify"],
    &["store", "gc"],
    &["trace", "import-strace"],
    &["trace", "stats"],
    &["trace", "map"],
    &["trace", "synth"],
    &["trace", "record"],
    &["replay"],
    &["sweep"],
    &["merge"],
    &["mount"],
    &["explain"],
    &["simulate"],
    &["cachesim"],
];

fn reference() -> String {
    let mut out = String::from(
        "# Command reference\n\nGenerated from `--help`; a test (tests/integration/docs.rs) fails when this file and\nthe binary disagree. Regenerate with `CHUNKLOAD_BLESS=1 cargo test --test integration command_reference`.\n",
    );
    for cmd in COMMANDS {
        let help = chunkload().args(*cmd).arg("--help").output().unwrap();
        assert!(help.status.success(), "{cmd:?} --help failed");
        let title =
            if cmd.is_empty() { "chunkload".to_string() } else { format!("chunkload {}", cmd.join(" ")) };
        out.push_str(&format!("\n## {title}\n\n```text\n{}```\n", String::from_utf8(help.stdout).unwrap()));
    }
    out
}

#[test]
fn command_reference_matches_help() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands.md");
    let want = reference();
    if std::env::var_os("CHUNKLOAD_BLESS").is_some() {
        fs::write(&path, &want).unwrap();
    }
    let have = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/commands.md is out of date with --help; regenerate it (see the file's header)"
    );
}

#[test]
fn command_reference_lists_every_command() {
    let help = String::from_utf8(chunkload().arg("--help").output().unwrap().stdout).unwrap();
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(listed.len() >= 8, "{help}");
    for c in listed {
        assert!(
            COMMANDS.iter().any(|cmd| cmd.first() == Some(&c)),
            "command {c} missing from docs/commands.md"
        );
    }
}
