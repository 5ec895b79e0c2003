//! docs/security.md's threat-model table names, for each adversary, the tests that show what
//! stops it: every test it names must exist (a renamed or deleted test fails here).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_test_the_threat_model_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let table: Vec<&str> = doc
        .split("## Threat model")
        .nth(1)
        .expect("a threat-model section")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect();
    assert_eq!(table.len(), 4, "four adversaries");
    let mut sources = String::new();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    for f in files {
        sources.push_str(&std::fs::read_to_string(f).unwrap());
    }
    let mut named = 0;
    for row in table {
        let tests = row.trim_end_matches('|').rsplit(" | ").next().unwrap();
        for name in tests.split('`').skip(1).step_by(2) {
            if name.contains('_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                named += 1;
                assert!(
                    sources.contains(&format!("fn {name}(")),
                    "docs/security.md names a test `{name}` that does not exist"
                );
            }
        }
    }
    assert!(named >= 10, "only {named} tests named");
}
