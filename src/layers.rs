//! The crate's layers and the test that keeps them: a module may name (`crate::x`) only the
//! modules below it, so every dependency points down the stack and none closes a circle.
//! docs/DESIGN.md states the same order; the test checks that it does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top to bottom.
const LAYERS: &[&str] = &[
    "session", "share", "multi", "easy", "pool", "sink", "response", "options", "checks", "error",
    "ffi",
];

/// Not layers: the root (it only registers what the layers define), the `cargo fuzz` entry
/// points (callers of the input checks, like the root) and this check.
const OUTSIDE: &[&str] = &["lib", "fuzzing", "layers"];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file with the top-level module it belongs to (`src/x.rs` and `src/x/**` are `x`).
fn source_files() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, module: Option<&str>, out: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(&path, Some(module.unwrap_or(&stem)), out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((module.unwrap_or(&stem).to_string(), path));
            }
        }
    }
    let mut out = Vec::new();
    walk(&src_dir(), None, &mut out);
    out.sort();
    out
}

/// The top-level modules a file names through `crate::` paths (`use` lines and inline paths,
/// grouped `use crate::{a, b::c}` included), comments left out.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let ident = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            };
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if c.is_whitespace() => {}
                        _ if item_start => {
                            found.insert(ident(&group[i..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                found.insert(ident(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

#[test]
fn every_module_is_a_layer() {
    for (module, path) in source_files() {
        assert!(
            rank(&module).is_some() || OUTSIDE.contains(&module.as_str()),
            "{} belongs to module {module:?}, which is not in src/layers.rs LAYERS",
            path.display()
        );
    }
}

#[test]
fn every_crate_path_points_down() {
    let mut upward = Vec::new();
    for (module, path) in source_files() {
        let Some(own) = rank(&module) else { continue };
        let text = std::fs::read_to_string(&path).expect("read source");
        for target in crate_references(&text) {
            match rank(&target) {
                Some(r) if r > own => {}
                Some(_) if target == module => {} // its own submodules
                _ => upward.push(format!("{} uses crate::{target}", path.display())),
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down the layers {LAYERS:?}:\n{}",
        upward.join("\n")
    );
}

#[test]
fn design_states_the_same_layers() {
    let design = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DESIGN.md");
    let text = std::fs::read_to_string(design).expect("read docs/DESIGN.md");
    let chain = LAYERS.join(" -> ");
    assert!(
        text.contains(&chain),
        "docs/DESIGN.md should state the layers as `{chain}`"
    );
}

#[test]
fn references_are_parsed() {
    let text = "use crate::error::{Error, X};\nuse crate::{ffi::{A, B}, options::C};\n\
                // crate::session in a comment\nlet x = crate::easy::spare(e);";
    let found: Vec<String> = crate_references(text).into_iter().collect();
    assert_eq!(found, ["easy", "error", "ffi", "options"]);
}
