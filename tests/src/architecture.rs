//! The host's layers, as ARCHITECTURE.md states them, checked against its
//! sources: a module names (`crate::<module>`) only modules of lower
//! layers, so there is no cycle and the catalog model depends on nothing.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom first; a module may use the modules of the layers before its own.
const LAYERS: &[&[&str]] = &[
    &["catalog", "net", "metrics"],
    &["yaml"],
    &["config", "docs"],
    &["store", "oidc"],
    &["ingest", "auth", "campaigns", "insights"],
    &["plugins"],
    &["search", "scheduler"],
    &["service"],
    &["api"],
    // They compose a whole portal (`crate::Portal`).
    &["harness", "dev"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The other top-level modules `module`'s non-test code names.
fn uses(src: &Path, module: &str) -> Vec<String> {
    let dir = src.join(module);
    let files = if dir.is_dir() {
        sources(&dir)
    } else {
        vec![src.join(format!("{module}.rs"))]
    };
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        assert!(
            !code.contains("crate::{"),
            "{}: name modules one `crate::<module>` path at a time, so this check sees them",
            file.display()
        );
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if !name.is_empty() && name != module && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn every_host_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
    let mut modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lib.rs" && n != "main.rs")
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    modules.sort();
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for module in &modules {
        let own = layer(module).unwrap_or_else(|| {
            panic!("host/src/{module} is in no layer: add it to LAYERS and to ARCHITECTURE.md")
        });
        for used in uses(&src, module) {
            let ok = layer(&used).is_some_and(|l| l < own);
            if !ok {
                wrong.entry(module.clone()).or_default().push(used);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules reaching sideways or up the layers (module: what it uses): {wrong:?}"
    );
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Handlers parse, ask who acts, call one operation and answer: a longer
/// one holds rules that belong in `service` (or a helper beside it).
#[test]
fn no_http_handler_is_longer_than_50_lines() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src/api");
    let mut long = Vec::new();
    for file in sources(&api) {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let signature = line
                .strip_prefix("pub ")
                .or_else(|| line.strip_prefix("pub(crate) "))
                .unwrap_or(line);
            let Some(rest) = signature.strip_prefix("async fn ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let end = lines[i..].iter().position(|l| *l == "}").unwrap();
            if end + 1 > 50 {
                long.push(format!(
                    "{}: {name} ({} lines)",
                    file.file_name().unwrap().to_string_lossy(),
                    end + 1
                ));
            }
        }
    }
    assert!(long.is_empty(), "handlers over 50 lines: {long:?}");
}

/// Only `store` speaks to a database: everything else goes through the
/// store boundary, so a backend is replaced in one place.
#[test]
fn only_the_store_names_a_database_driver() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
    let store = src.join("store");
    let mut found = Vec::new();
    for file in sources(&src) {
        if file.starts_with(&store) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for driver in ["rusqlite", "postgres::"] {
            if code.contains(driver) {
                found.push(format!("{} names {driver}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}
