//! The corpus (tests/data/keepalived/corpus, described in its MANIFEST.md): keepalived
//! configurations modelled on what public projects and guides deploy. Each is converted; a
//! VRRP configuration counts as migrated when the result loads (the checks of
//! `vipd --check --no-host-checks`: the scripts and key files are not on this machine) and no VRRP behaviour was
//! lost (`Note::loses_vrrp_behaviour`). LVS-only configurations are counted apart.
//! docs/migration.md states the result, and this test keeps it true.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use vipd_config::import::{Options, convert_file_with};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (file, migrated, why not).
fn results() -> (Vec<(String, bool, String)>, Vec<String>) {
    let dir = root().join("tests/data/keepalived/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    let (mut vrrp, mut lvs_only) = (Vec::new(), Vec::new());
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        if !text.contains("vrrp_instance") {
            lvs_only.push(name);
            continue;
        }
        // A template names the host it is converted for: "(converted with --host NAME)".
        let host = text
            .split("--host ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_alphanumeric()).next())
            .map(str::to_owned);
        let opts = Options {
            host: Some(host.unwrap_or_else(|| "lb1".into())),
            env: None,
        };
        let c = match convert_file_with(&p, &opts) {
            Ok(c) => c,
            Err(e) => {
                vrrp.push((name, false, format!("conversion failed: {e}")));
                continue;
            }
        };
        let lost: Vec<String> = c
            .notes
            .iter()
            .filter(|n| n.loses_vrrp_behaviour())
            .map(|n| format!("{} (line {})", n.keyword, n.line))
            .collect();
        // What `vipd --check --no-host-checks` checks: the scripts are not on this machine.
        let loads = vipd_config::parse_str_with(
            &c.toml,
            Path::new("converted.toml"),
            vipd_config::HostChecks::Skip,
        );
        let why = match (&loads, lost.is_empty()) {
            (Ok(_), true) => String::new(),
            (Ok(_), false) => format!("not converted: {}", lost.join(", ")),
            (Err(d), _) => format!(
                "does not load: {}",
                d.to_string().lines().next().unwrap_or("")
            ),
        };
        vrrp.push((name, why.is_empty(), why));
    }
    (vrrp, lvs_only)
}

#[test]
fn the_corpus_rate_is_the_one_docs_state() {
    let (vrrp, lvs_only) = results();
    let migrated = vrrp.iter().filter(|r| r.1).count();
    let pct = migrated * 1000 / vrrp.len().max(1);
    let line = format!(
        "{migrated} of {} VRRP configurations ({}.{} %) convert with nothing VRRP-relevant lost and load",
        vrrp.len(),
        pct / 10,
        pct % 10
    );
    let doc = std::fs::read_to_string(root().join("docs/migration.md")).unwrap();
    let failures: Vec<String> = vrrp
        .iter()
        .filter(|r| !r.1)
        .map(|r| format!("- `{}`: {}", r.0, r.2))
        .collect();
    eprintln!("{line}\n{}\nLVS only: {lvs_only:?}", failures.join("\n"));
    assert!(doc.contains(&line), "docs/migration.md must say: {line}");
    for f in &failures {
        let file = f.split('`').nth(1).unwrap_or_default();
        assert!(
            doc.contains(&format!("`{file}`")),
            "docs/migration.md must explain {f}"
        );
    }
    assert!(
        doc.contains(&format!("{} LVS-only", lvs_only.len())),
        "docs/migration.md must count the LVS-only ones apart ({})",
        lvs_only.len()
    );
}

/// Every corpus file is described in the MANIFEST (what it is modelled on, what was filled).
#[test]
fn every_corpus_file_is_in_the_manifest() {
    let dir = root().join("tests/data/keepalived/corpus");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.md")).unwrap();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".conf") {
            assert!(
                manifest.contains(&format!("`{name}`")),
                "{name} is not in MANIFEST.md"
            );
        }
    }
}
