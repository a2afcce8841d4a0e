//! The layering rule of ARCHITECTURE.md, checked on the source: every `crate::module` path in
//! `src/` (outside the binary's `cli/`) may name only a module of a lower layer. Below the line
//! (ids, sizes and simulated time) no module names one above it; above it, the byte stages are
//! ordered too, so no two modules can import each other (the cycles flatten <-> layout,
//! flatten <-> rootfs and sim <-> trace stay broken). The one exception is the text table, the
//! chart module and the HTML page of `report`, presentation leaves that import nothing of the crate.

use std::path::{Path, PathBuf};

/// Every library module, lowest layer first. `BELOW` are below the line.
const BELOW: &[&str] = &[
    "units",
    "quantity",
    "stats",
    "overrides",
    "cache",
    "sim",
    "requests",
    "cachesim",
    "trace",
    "replay",
    "invocations",
    "fleet",
    "sweep",
];
const ABOVE: &[&str] = &[
    "image", "flatten", "layout", "rootfs", "crypto", "store", "chunk", "report", "mount", "ingest", "sniff",
    "teach",
];

/// `report`'s presentation leaves: any module may use them; they import nothing of the crate. A
/// path ending in `/` is a folder: every file in it.
const LEAVES: &[(&str, &str)] = &[
    ("report::Table", "src/report/table.rs"),
    ("report::plot", "src/report/plot.rs"),
    ("report::html", "src/report/html/"),
];

fn rank(module: &str) -> Option<usize> {
    BELOW.iter().chain(ABOVE).position(|m| *m == module)
}

fn is_below(module: &str) -> bool {
    BELOW.contains(&module)
}

/// One `crate::` path: the module it names and the text after `crate::` (for the leaf check).
struct Import {
    line: usize,
    module: String,
    path: String,
}

/// The `crate::...` paths of a source file, comments and the trailing unit tests left out. A group (`crate::{a::X, b}`)
/// yields each of its top-level modules.
fn imports(source: &str) -> Vec<Import> {
    let mut out = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    for (i, raw) in lines.iter().enumerate() {
        // A unit-test module (by convention the file's last item) may build fixtures from any layer.
        if raw.trim() == "#[cfg(test)]"
            && lines.get(i + 1).is_some_and(|l| l.trim_start().starts_with("mod tests"))
        {
            break;
        }
        let code = match raw.find("//") {
            Some(at) => &raw[..at],
            None => raw,
        };
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 1;
                let mut item = String::new();
                let mut items = Vec::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    if c != ',' || depth > 1 {
                        item.push(c);
                    }
                }
                items.push(item);
                for it in items {
                    let it = it.trim().to_string();
                    let module: String =
                        it.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !module.is_empty() {
                        out.push(Import { line: i + 1, module, path: it });
                    }
                }
            } else {
                let path: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let module: String = path.chars().take_while(|c| *c != ':').collect();
                out.push(Import { line: i + 1, module, path });
            }
            rest = after;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("src/ is readable").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The violations of the rule in the crate's source, one line each: file:line, the import, why.
fn violations(root: &Path) -> Vec<String> {
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let inside = file.strip_prefix(&src).unwrap();
        let first = inside.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "cli" | "main" | "lib") {
            continue;
        }
        let Some(own) = rank(&module) else {
            found.push(format!("{rel}: module `{module}` is in no layer of tests/layering.rs"));
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap();
        let leaf = LEAVES.iter().any(|(_, f)| *f == rel || (f.ends_with('/') && rel.starts_with(f)));
        for imp in imports(&source) {
            if imp.module == module {
                continue;
            }
            let what = format!("{rel}:{}: `crate::{}`", imp.line, imp.path);
            if leaf {
                found.push(format!("{what}: a presentation leaf imports nothing of the crate"));
                continue;
            }
            if LEAVES.iter().any(|(p, _)| imp.path.starts_with(p)) {
                continue;
            }
            let Some(theirs) = rank(&imp.module) else { continue };
            if is_below(&module) && !is_below(&imp.module) {
                found.push(format!("{what}: `{module}` is below the line and `{}` above it", imp.module));
            } else if theirs >= own {
                found.push(format!(
                    "{what}: `{module}` may import only lower layers, and `{}` is not below it (a cycle waiting to happen)",
                    imp.module
                ));
            }
        }
    }
    found
}

#[test]
fn below_the_line_imports_nothing_above_and_no_module_imports_upward() {
    let found = violations(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(found.is_empty(), "layering violations (ARCHITECTURE.md, \"Layers\"):\n{}", found.join("\n"));
}

#[test]
fn the_checker_names_file_line_and_import() {
    let dir = std::env::temp_dir().join(format!("chunkload-layering-{}", std::process::id()));
    let write = |path: &str, body: &str| {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    write("src/lib.rs", "pub mod sim;\n");
    write(
        "src/sim/replay.rs",
        "use crate::units::ByteSize; // fine\nuse crate::{cache::ChunkId, crypto::ChunkName};\nfn f() { crate::report::Table::new([\"a\"]); }\n",
    );
    write(
        "src/flatten/apply.rs",
        "// crate::layout in a comment is fine\nconst B: u64 = crate::layout::BLOCK_SIZE;\n",
    );
    write("src/sim/time.rs", "use crate::trace::Record;\n");
    write("src/report/table.rs", "use crate::units::ByteSize;\n");
    let mut found = violations(&dir);
    found.sort();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found,
        [
            "src/flatten/apply.rs:2: `crate::layout::BLOCK_SIZE`: `flatten` may import only lower layers, and `layout` is not below it (a cycle waiting to happen)",
            "src/report/table.rs:1: `crate::units::ByteSize`: a presentation leaf imports nothing of the crate",
            "src/sim/replay.rs:2: `crate::crypto::ChunkName`: `sim` is below the line and `crypto` above it",
            "src/sim/time.rs:1: `crate::trace::Record`: `sim` may import only lower layers, and `trace` is not below it (a cycle waiting to happen)",
        ]
    );
}
