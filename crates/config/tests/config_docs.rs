//! One source per config key: the raw types (`vipd_config::json_schema()` is derived from them)
//! are the key list. docs/config.md's key tables and the shipped JSON schema must agree with
//! them; this test fails when a key is added, renamed or removed in one place only.
//!
//! `VIPD_BLESS=1 cargo test -p vipd-config --test config_docs` rewrites config/vipd.schema.json.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn resolve(v: &Value) -> &Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &vipd_config::json_schema()["$defs"][name]
        }
        None => v,
    }
}

/// The keys of the table at `path` ("global", "instance", "instance.vip", ...).
fn schema_keys(path: &str) -> BTreeSet<String> {
    let mut t = vipd_config::json_schema();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let p = &resolve(t)["properties"][part];
        t = match p.get("items") {
            Some(items) => resolve(items),
            None => resolve(p),
        };
    }
    resolve(t)["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{path} is not a table in the schema"))
        .keys()
        .cloned()
        .collect()
}

/// The rows of the first Markdown table after `heading`.
fn table_rows<'a>(doc: &'a str, heading: &str) -> Vec<&'a str> {
    let at = doc
        .find(heading)
        .unwrap_or_else(|| panic!("docs/config.md has no heading {heading}"));
    doc[at..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect()
}

/// Backticked `snake_case` names in a cell; `[[instance.vip]]` counts as `vip`.
fn keys_in(cell: &str) -> Vec<String> {
    if let Some(rest) = cell
        .strip_prefix(" `[[instance.")
        .or(cell.strip_prefix("`[[instance."))
        && let Some(table) = rest.split("]]`").next()
    {
        return vec![table.into()];
    }
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

fn doc_keys(doc: &str, headings: &[&str]) -> BTreeSet<String> {
    headings
        .iter()
        .flat_map(|h| table_rows(doc, h))
        .flat_map(|row| keys_in(row.trim_start_matches('|').split(" | ").next().unwrap()))
        .collect()
}

#[test]
fn docs_key_tables_list_exactly_the_keys_of_the_types() {
    let doc = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("global", &["## `[global]`"]),
        (
            "instance",
            &["## `[[instance]]`", "### Tracking and notification keys"],
        ),
        ("instance.vip", &["### `[[instance.vip]]`"]),
        (
            "instance.unicast_peer",
            &["### `[[instance.unicast_peer]]`"],
        ),
        ("instance.auth_hmac", &["### `[instance.auth_hmac]`"]),
        ("instance.route", &["### `[[instance.route]]`"]),
        ("instance.announce", &["### `[instance.announce]`"]),
        ("instance.rule", &["### `[[instance.rule]]`"]),
        ("sync_group", &["## `[[sync_group]]`"]),
    ];
    for (path, headings) in cases {
        assert_eq!(
            doc_keys(&doc, headings),
            schema_keys(path),
            "docs/config.md's table for `{path}` and the config types disagree"
        );
    }
    // The trackers' compact table: one row per `[[track_*]]`, its keys in the second column.
    for row in table_rows(&doc, "## Trackers:") {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        let table = cells[0].trim().trim_matches('`').trim_matches(['[', ']']);
        // Only the keys themselves, not the defaults in parentheses (`user` (`script_user`)).
        let mut keys_only = String::new();
        let mut depth = 0;
        for c in cells[1].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => keys_only.push(c),
                _ => {}
            }
        }
        let documented: BTreeSet<String> = keys_in(&keys_only).into_iter().collect();
        assert_eq!(
            documented,
            schema_keys(table),
            "docs/config.md's row for `[[{table}]]` and the config types disagree"
        );
    }
    // Every top-level table is documented.
    let top: BTreeSet<String> = schema_keys("")
        .into_iter()
        .filter(|k| !doc.contains(&format!("[{k}]")))
        .collect();
    assert!(top.is_empty(), "undocumented top-level tables: {top:?}");
}

#[test]
fn shipped_schema_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(vipd_config::json_schema()).unwrap() + "\n";
    let path = root().join("config/vipd.schema.json");
    if std::env::var_os("VIPD_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "config/vipd.schema.json is stale: VIPD_BLESS=1 cargo test -p vipd-config --test config_docs"
    );
}

#[test]
fn every_key_has_a_description() {
    fn walk(v: &Value, path: &str, missing: &mut Vec<String>) {
        let v = resolve(v);
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if p.get("description").is_none() && resolve(p).get("description").is_none() {
                    missing.push(sub.clone());
                }
                walk(p, &sub, missing);
                if let Some(items) = p.get("items") {
                    walk(items, &sub, missing);
                }
            }
        }
    }
    let mut missing = Vec::new();
    walk(vipd_config::json_schema(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "keys without a doc comment: {missing:?}"
    );
}
