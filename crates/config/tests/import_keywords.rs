//! The keyword table: every keyword of keepalived.conf(5) outside LVS and BFD
//! (tests/data/keepalived/keywords.tsv) is converted on its own, and what the importer does
//! with it (converted, converted with a note or a warning, not converted, and why) is the
//! table in docs/keepalived-keywords.md. The test fails when the table is stale
//! (`VIPD_BLESS=1 cargo test -p vipd-config --test import_keywords` rewrites it), when a
//! keyword is not converted without a reason of its own, and when the importer meets a
//! keyword in the corpus (tests/data/keepalived) that the list does not have.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use vipd_config::import::{NoteSeverity, convert};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (context, keyword, sample argument).
fn keywords() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(root().join("tests/data/keepalived/keywords.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let c = f.next().unwrap_or_default().to_string();
            let k = f.next().unwrap_or_default().to_string();
            let s = f.next().unwrap_or_default().to_string();
            (c, k, s)
        })
        .collect()
}

const INSTANCE_BASE: &[(&str, &str)] = &[
    ("interface", "eth0"),
    ("virtual_router_id", "51"),
    ("priority", "100"),
    ("virtual_ipaddress", "{ 10.0.0.100/24 }"),
];

/// A configuration with `kw arg` in `context`, and the line it is on.
fn config_with(context: &str, kw: &str, arg: &str) -> (String, usize) {
    let stmt = format!("{kw} {}", arg.replace("\\n", "\n"));
    let instance = |extra: &str| {
        let mut s = String::from("vrrp_instance VI_1 {\n");
        for (k, v) in INSTANCE_BASE {
            if *k != kw {
                s.push_str(&format!("    {k} {v}\n"));
            }
        }
        s.push_str(extra);
        s.push_str("}\n");
        s
    };
    let (text, marker) = match context {
        "global_defs" => (
            format!("global_defs {{\n    {stmt}\n}}\n{}", instance("")),
            2,
        ),
        "vrrp_instance" => (instance(&format!("    {stmt}\n")), 0),
        "vrrp_instance/authentication" => {
            let other = if kw == "auth_type" {
                "auth_pass 1234"
            } else {
                "auth_type PASS"
            };
            (
                format!(
                    "global_defs {{\n    vrrp_version 2\n}}\n{}",
                    instance(&format!(
                        "    authentication {{\n        {stmt}\n        {other}\n    }}\n"
                    ))
                ),
                0,
            )
        }
        "vrrp_instance/auth_hmac" => {
            let key = if kw == "key" {
                String::new()
            } else {
                "        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n".into()
            };
            (
                instance(&format!("    auth_hmac {{\n        {stmt}\n{key}    }}\n")),
                0,
            )
        }
        "vrrp_script" => {
            let base = if kw == "script" {
                ""
            } else {
                "    script /usr/local/bin/chk.sh\n"
            };
            (
                format!(
                    "vrrp_script chk_x {{\n    {stmt}\n{base}}}\n{}",
                    instance("    track_script { chk_x }\n")
                ),
                2,
            )
        }
        "vrrp_track_file" => {
            let base = if kw == "file" {
                ""
            } else {
                "    file /run/f\n"
            };
            (
                format!(
                    "vrrp_track_file f_x {{\n    {stmt}\n{base}}}\n{}",
                    instance("    track_file { f_x }\n")
                ),
                2,
            )
        }
        "vrrp_track_process" => {
            let base = if kw == "process" {
                ""
            } else {
                "    process haproxy\n"
            };
            (
                format!(
                    "vrrp_track_process p_x {{\n    {stmt}\n{base}}}\n{}",
                    instance("    track_process { p_x }\n")
                ),
                2,
            )
        }
        "vrrp_sync_group" => {
            let base = if kw == "group" {
                ""
            } else {
                "    group { VI_1 }\n"
            };
            (
                format!(
                    "vrrp_sync_group G {{\n    {stmt}\n{base}}}\n{}",
                    instance("")
                ),
                2,
            )
        }
        "garp_group" => (
            format!("garp_group {{\n    {stmt}\n}}\n{}", instance("")),
            2,
        ),
        _ => (format!("{stmt}\n{}", instance("")), 1),
    };
    let line = if marker > 0 {
        marker
    } else {
        text.lines()
            .position(|l| {
                l.trim_start()
                    .starts_with(stmt.lines().next().unwrap_or_default())
            })
            .map_or(0, |i| i + 1)
    };
    (text, line)
}

/// How the importer handled one keyword, and what it said.
fn handling(context: &str, kw: &str, arg: &str) -> (String, String) {
    let (text, line) = config_with(context, kw, arg);
    let c = convert(&text, Path::new("k.conf"))
        .unwrap_or_else(|e| panic!("{context} {kw}: {e}\n{text}"));
    // Its own line, or the whole block it is in (a block that is not converted at all).
    let notes: Vec<_> = c
        .notes
        .iter()
        .filter(|n| n.line == line || (n.line == 1 && n.keyword == context))
        .collect();
    let worst = notes.iter().map(|n| n.severity).max();
    let word = match worst {
        None => "converted",
        Some(NoteSeverity::Info) => "converted (note)",
        Some(NoteSeverity::Warning) => "converted, changed (warning)",
        Some(NoteSeverity::NotConverted) => "not converted",
        Some(NoteSeverity::SecurityLost) => "not converted (security)",
    };
    let why: Vec<String> = notes
        .iter()
        .filter(|n| Some(n.severity) == worst)
        .map(|n| n.message.replace('|', "\\|").replace('\n', " "))
        .collect();
    (word.to_string(), why.join(" / "))
}

fn render() -> (String, Vec<String>) {
    let mut out = String::from(
        "# keepalived keywords in vipd\n\n\
         Every keyword of keepalived.conf(5) outside the LVS and BFD sections, and what\n\
         `vipctl import-keepalived` does with it, as the importer itself says it (generated by\n\
         `crates/config/tests/import_keywords.rs` from `tests/data/keepalived/keywords.tsv`:\n\
         `VIPD_BLESS=1 cargo test -p vipd-config --test import_keywords`). *converted (note)*\n\
         means converted with something worth knowing; *converted, changed* means vipd behaves\n\
         differently and says how; *not converted* says why. See docs/migration.md.\n",
    );
    let mut generic = Vec::new();
    let mut context = String::new();
    let (mut converted, mut total) = (0, 0);
    // Grouped by block, in the order the blocks first appear.
    let list = keywords();
    let mut order: Vec<&str> = Vec::new();
    for (c, _, _) in &list {
        if !order.contains(&c.as_str()) {
            order.push(c);
        }
    }
    let mut sorted: Vec<&(String, String, String)> = list.iter().collect();
    sorted.sort_by_key(|(c, _, _)| order.iter().position(|o| o == c));
    for (c, k, s) in sorted.into_iter().cloned() {
        if c != context {
            out.push_str(&format!(
                "\n## `{c}`\n\n| keyword | handling | what the importer says |\n|---|---|---|\n"
            ));
            context = c.clone();
        }
        let (word, why) = handling(&c, &k, &s);
        total += 1;
        if word.starts_with("converted") {
            converted += 1;
        }
        if word.starts_with("not converted")
            && (why.is_empty()
                || why.contains("not a keepalived keyword vipd knows")
                || why.contains(": no vipd equivalent"))
        {
            generic.push(format!("{c} {k}: {why:?}"));
        }
        out.push_str(&format!("| `{k}` | {word} | {why} |\n"));
    }
    out.push_str(&format!(
        "\n{converted} of {total} keywords are converted.\n"
    ));
    (out, generic)
}

#[test]
fn the_keyword_table_is_current_and_says_why() {
    let (doc, generic) = render();
    let path = root().join("docs/keepalived-keywords.md");
    if std::env::var_os("VIPD_BLESS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == doc,
        "docs/keepalived-keywords.md is stale: VIPD_BLESS=1 cargo test -p vipd-config --test import_keywords"
    );
    assert!(
        generic.is_empty(),
        "not converted without a reason of its own:\n{}",
        generic.join("\n")
    );
}

/// Every keepalived configuration under tests/data/keepalived (the corpus included).
fn corpus_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("tests/data/keepalived")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "conf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_keyword_of_the_corpus_is_in_the_table() {
    let mut unknown = Vec::new();
    for p in corpus_files() {
        let Ok(c) = vipd_config::import::convert_file(&p) else {
            continue;
        };
        for n in &c.notes {
            if n.message.contains("not a keepalived keyword vipd knows") {
                unknown.push(format!("{}:{} {}", p.display(), n.line, n.keyword));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "keywords met in the corpus that keepalived.conf(5) as vipd knows it does not have (add them to tests/data/keepalived/keywords.tsv and crates/config/src/import/keywords.rs, or fix the file):\n{}",
        unknown.join("\n")
    );
}
