//! Shape check of the parsed TOML document before serde sees it.
//!
//! Serde stops at the first problem and its messages are generic; this pass walks the
//! spanned document against the known keys and value kinds of every table, so that every
//! unknown key (with a "did you mean" hint, including keepalived.conf spellings) and every
//! wrong value type is reported at once, at the offending key or value.

use std::sync::LazyLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Reporter, did_you_mean};
use super::raw::RawConfig;

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Int,
    Bool,
    Duration,
    StrArray,
    /// A program: a string (path, whitespace-separated arguments) or a list of strings.
    Command,
    /// An integer or a list of integers.
    IntOrIntArray,
    /// A list whose items are names or `{ name, weight }` tables.
    TrackList,
    Table(Fields),
    TableArray(Fields),
}

/// The keys of one table: the `properties` of its schema.
pub(crate) type Fields = &'static Map<String, Value>;

/// The JSON schema of the configuration file, derived from the raw types (draft 2020-12). It
/// is what `vipd --print-schema` prints, what the package ships for editors, and the key list
/// this shape check walks.
pub fn json_schema() -> &'static Value {
    static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
        let generator = SchemaSettings::draft2020_12().into_generator();
        let mut schema = generator.into_root_schema_for::<RawConfig>().to_value();
        strip_null(&mut schema);
        if let Some(obj) = schema.as_object_mut() {
            obj.insert("title".into(), Value::from("vipd.toml"));
            obj.insert(
                "description".into(),
                Value::from("vipd's configuration file (docs/config.md)."),
            );
        }
        schema
    });
    &SCHEMA
}

/// TOML has no null: an optional key is just not `required`, so the `null` alternatives
/// schemars gives `Option` fields are removed (editors would otherwise offer `null`).
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(obj) => {
            if let Some(Value::Array(types)) = obj.get_mut("type") {
                types.retain(|t| t != "null");
                if let [one] = types.as_slice() {
                    let one = one.clone();
                    obj.insert("type".into(), one);
                }
            }
            let is_null = |b: &Value| b.get("type").and_then(Value::as_str) == Some("null");
            let single = match obj.get("anyOf") {
                Some(Value::Array(branches))
                    if branches.len() == 2 && branches.iter().any(is_null) =>
                {
                    branches.iter().find(|b| !is_null(b)).cloned()
                }
                _ => None,
            };
            if let Some(Value::Object(inner)) = single {
                obj.remove("anyOf");
                for (k, val) in inner {
                    obj.entry(k).or_insert(val);
                }
            }
            obj.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// Follows a local `$ref` ("#/$defs/Name") to its definition.
fn resolve(v: &'static Value) -> &'static Value {
    let Some(r) = v.get("$ref").and_then(Value::as_str) else {
        return v;
    };
    let name = r.rsplit('/').next().unwrap_or(r);
    json_schema()
        .get("$defs")
        .and_then(|d| d.get(name))
        .unwrap_or(v)
}

fn type_of(v: &Value) -> Option<&str> {
    match v.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn properties(v: &'static Value) -> Option<Fields> {
    resolve(v).get("properties").and_then(Value::as_object)
}

/// The kind of value a key takes, from its schema.
pub(crate) fn kind_of(v: &'static Value) -> Kind {
    let v = resolve(v);
    match v.get("x-vipd-kind").and_then(Value::as_str) {
        Some("command") => return Kind::Command,
        Some("int-or-int-array") => return Kind::IntOrIntArray,
        Some("track-ref") => return Kind::TrackList,
        _ => {}
    }
    match type_of(v) {
        Some("integer") => Kind::Int,
        Some("boolean") => Kind::Bool,
        Some("string") if v.get("format").and_then(Value::as_str) == Some("duration") => {
            Kind::Duration
        }
        Some("object") => properties(v).map_or(Kind::Str, Kind::Table),
        Some("array") => {
            let items = v.get("items").map(resolve);
            match items {
                Some(i) if i.get("x-vipd-kind").and_then(Value::as_str) == Some("track-ref") => {
                    Kind::TrackList
                }
                Some(i) => match properties(i) {
                    Some(p) => Kind::TableArray(p),
                    None => Kind::StrArray,
                },
                None => Kind::StrArray,
            }
        }
        _ => Kind::Str,
    }
}

/// No keys (a schema without the expected shape; never the case for the generated one).
static NO_FIELDS: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// The keys of the top level of the file.
pub(crate) fn root() -> Fields {
    json_schema()
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&NO_FIELDS)
}

/// Keys of a `{ name = ..., weight = ... }` entry of a `track_*` list.
fn track_ref() -> Fields {
    json_schema()
        .get("$defs")
        .and_then(|d| d.get("TrackRef"))
        .and_then(|t| t.get("anyOf"))
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find_map(|v| v.get("properties")))
        .and_then(Value::as_object)
        .unwrap_or(&NO_FIELDS)
}

/// keepalived.conf keywords operators will reach for, and what to write instead.
const KEEPALIVED: &[(&str, &str)] = &[
    (
        "global_defs",
        "vipd spells keepalived's `global_defs` as `[global]`",
    ),
    (
        "vrrp_instance",
        "vipd spells keepalived's `vrrp_instance` as `[[instance]]` with `name = \"...\"`",
    ),
    (
        "vrrp_sync_group",
        "vipd spells keepalived's `vrrp_sync_group` as `[[sync_group]]`",
    ),
    ("virtual_router_id", "vipd calls this `vrid`"),
    (
        "advert_int",
        "vipd calls this `advert_interval` and takes a duration, e.g. `advert_interval = \"1s\"`",
    ),
    ("nopreempt", "write `preempt = false`"),
    (
        "virtual_ipaddress",
        "write `vips = [\"10.0.0.100/24\"]` or use `[[instance.vip]]` tables",
    ),
    (
        "virtual_ipaddress_excluded",
        "vipd has no excluded VIPs; list every address in `vips`",
    ),
    ("unicast_peer", "write `unicast_peers = [\"10.0.0.12\"]`"),
    ("unicast_src_ip", "vipd calls this `source_address`"),
    ("mcast_src_ip", "vipd calls this `source_address`"),
    (
        "state",
        "vipd has no initial state: the highest priority becomes master; remove `state` and set `priority`",
    ),
    (
        "authentication",
        "write `auth_pass = \"secret\"` (VRRPv2 only)",
    ),
    (
        "auth_type",
        "only PASS exists in vipd: write `auth_pass = \"secret\"` (VRRPv2 only)",
    ),
    ("group", "write `instances = [\"VI_1\", \"VI_2\"]`"),
    ("dev", "vipd calls this `interface`"),
    (
        "preempt_delay",
        "`preempt_delay` belongs in an `[[instance]]`",
    ),
    (
        "vrrp_script",
        "vipd spells keepalived's `vrrp_script` as `[[track_script]]` with `name = \"...\"`",
    ),
    (
        "script",
        "write `command = [\"/path/prog\", \"arg\"]` (no shell), or `shell = \"...\"` to run it with /bin/sh -c",
    ),
    (
        "track_interface",
        "write `track_interfaces = [\"eth1\"]` in the `[[instance]]`",
    ),
    (
        "track_script",
        "write `track_scripts = [\"chk_name\"]` in the `[[instance]]`; define each with `[[track_script]]`",
    ),
    (
        "track_file",
        "write `track_files = [\"name\"]` in the `[[instance]]`; define each with `[[track_file]]`",
    ),
    (
        "track_process",
        "write `track_processes = [\"name\"]` in the `[[instance]]`; define each with `[[track_process]]`",
    ),
    (
        "enable_script_security",
        "`enable_script_security` belongs in `[global]` (and is on by default)",
    ),
    (
        "script_user",
        "`script_user` belongs in `[global]`; a tracker can set `user`",
    ),
];

fn unknown_key_hint(key: &str, table: Fields) -> Option<String> {
    if let Some((_, hint)) = KEEPALIVED.iter().find(|(k, _)| *k == key) {
        return Some((*hint).to_string());
    }
    let names = table.keys().map(String::as_str);
    if let Some(best) = did_you_mean(key, names.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    if let Some(rest) = key.strip_prefix("vrrp_")
        && table.contains_key(rest)
    {
        return Some(format!("did you mean `{rest}`?"));
    }
    let mut list: Vec<&str> = names.collect();
    list.sort_unstable();
    Some(format!("known keys here: {}", list.join(", ")))
}

/// Reports every unknown key and wrongly-typed value in `root`. Returns true if the shape is sound.
pub(crate) fn check(root: &Spanned<DeTable<'_>>, r: &mut Reporter<'_>) -> bool {
    let before = r.diags.errors().count();
    check_table(root.get_ref(), self::root(), "", r);
    r.diags.errors().count() == before
}

fn check_table(table: &DeTable<'_>, fields: Fields, path: &str, r: &mut Reporter<'_>) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let Some(field) = fields.get(name) else {
            let msg = if path.is_empty() {
                format!("unknown top-level key `{name}`")
            } else {
                format!("unknown key `{name}` in `{path}`")
            };
            let hint = if r.is_full() {
                None
            } else {
                unknown_key_hint(name, fields)
            };
            r.error_opt(key.span(), msg, hint);
            continue;
        };
        check_value(name, value, kind_of(field), path, r);
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn check_value(
    name: &str,
    value: &Spanned<DeValue<'_>>,
    kind: Kind,
    path: &str,
    r: &mut Reporter<'_>,
) {
    let span = value.span();
    let v = value.get_ref();
    let found = type_name(v);
    match (kind, v) {
        (Kind::Str, DeValue::String(_))
        | (Kind::Int, DeValue::Integer(_))
        | (Kind::Bool, DeValue::Boolean(_))
        | (Kind::Duration, DeValue::String(_)) => {}
        (Kind::Str, _) => {
            let hint = match v {
                DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                    Some(format!("quote it: {name} = \"{}\"", raw(r, span.clone())))
                }
                _ => None,
            };
            r.error_opt(
                span,
                format!("`{name}` must be a string, found {found}"),
                hint,
            );
        }
        (Kind::Int, DeValue::String(s)) if s.trim().parse::<i64>().is_ok() => {
            r.error_hint(
                span,
                format!("`{name}` must be an integer, found a string"),
                format!("remove the quotes: {name} = {}", s.trim()),
            );
        }
        (Kind::Int, _) => r.error(span, format!("`{name}` must be an integer, found {found}")),
        (Kind::Bool, DeValue::String(s)) => {
            let hint = match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Some(format!("write {name} = true (no quotes)")),
                "false" | "no" | "off" => Some(format!("write {name} = false (no quotes)")),
                _ => None,
            };
            r.error_opt(
                span,
                format!("`{name}` must be true or false, found a string"),
                hint,
            );
        }
        (Kind::Bool, _) => r.error_hint(
            span,
            format!("`{name}` must be true or false, found {found}"),
            format!("write {name} = true or {name} = false"),
        ),
        (Kind::Duration, DeValue::Integer(_) | DeValue::Float(_)) => {
            let n = raw(r, span.clone());
            r.error_hint(
                span,
                format!("`{name}` must be a duration string, found a bare number"),
                format!("durations need a unit: {name} = \"{n}s\" (or \"{n}ms\")"),
            );
        }
        (Kind::Duration, _) => r.error_hint(
            span,
            format!("`{name}` must be a duration string, found {found}"),
            format!("e.g. {name} = \"1s\""),
        ),
        (Kind::StrArray, DeValue::Array(items)) => {
            for item in items.iter() {
                if !matches!(item.get_ref(), DeValue::String(_)) {
                    let found = type_name(item.get_ref());
                    r.error(
                        item.span(),
                        format!("`{name}` must be a list of strings, found {found} in it"),
                    );
                }
            }
        }
        (Kind::StrArray, DeValue::String(s)) => {
            // A program line: one string per argument (no shell splits it), or `shell`.
            let words: Vec<String> = s
                .split_whitespace()
                .map(|w| format!("\"{}\"", w.escape_default()))
                .collect();
            let hint = if name == "command" && words.len() > 1 {
                format!(
                    "write {name} = [{}] (one string per argument), or shell = \"{}\" to run it with /bin/sh -c",
                    words.join(", "),
                    s.escape_default()
                )
            } else if words.len() > 1 {
                format!("write {name} = [{}]", words.join(", "))
            } else {
                format!("write {name} = [\"{}\"]", s.escape_default())
            };
            r.error_hint(span, format!("`{name}` must be a list of strings"), hint);
        }
        (Kind::StrArray, _) => r.error_hint(
            span,
            format!("`{name}` must be a list of strings, found {found}"),
            format!("write {name} = [\"...\"]"),
        ),
        (Kind::Command, DeValue::String(_)) => {}
        (Kind::Command, DeValue::Array(items)) => {
            if items.iter().next().is_none() {
                r.error_hint(
                    span,
                    format!("`{name}` is an empty list"),
                    format!("write {name} = [\"/path/to/program\", \"arg\"]"),
                );
            }
            for item in items.iter() {
                if !matches!(item.get_ref(), DeValue::String(_)) {
                    let found = type_name(item.get_ref());
                    r.error(
                        item.span(),
                        format!("`{name}` must be a list of strings, found {found} in it"),
                    );
                }
            }
        }
        (Kind::Command, _) => r.error_hint(
            span,
            format!("`{name}` must be a program path or a list of strings, found {found}"),
            format!("write {name} = [\"/path/to/program\", \"arg\"]"),
        ),
        (Kind::IntOrIntArray, DeValue::Integer(_)) => {}
        (Kind::IntOrIntArray, DeValue::Array(items)) => {
            for item in items.iter() {
                if !matches!(item.get_ref(), DeValue::Integer(_)) {
                    let found = type_name(item.get_ref());
                    r.error(
                        item.span(),
                        format!("`{name}` must be a list of integers, found {found} in it"),
                    );
                }
            }
        }
        (Kind::IntOrIntArray, _) => r.error_hint(
            span,
            format!("`{name}` must be an integer or a list of integers, found {found}"),
            format!("e.g. {name} = [200, 204]"),
        ),
        (Kind::TrackList, DeValue::Array(items)) => {
            let sub = join(path, name);
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(_) => {}
                    DeValue::Table(t) => check_table(t, track_ref(), &sub, r),
                    other => r.error_hint(
                        item.span(),
                        format!(
                            "`{name}` entries must be names or {{ name, weight }} tables, found {}",
                            type_name(other)
                        ),
                        format!("e.g. {name} = [\"chk_a\", {{ name = \"chk_b\", weight = -30 }}]"),
                    ),
                }
            }
        }
        (Kind::TrackList, DeValue::String(s)) => r.error_hint(
            span,
            format!("`{name}` must be a list"),
            format!("write {name} = [\"{}\"]", s.escape_default()),
        ),
        (Kind::TrackList, _) => r.error_hint(
            span,
            format!("`{name}` must be a list, found {found}"),
            format!("e.g. {name} = [\"chk_a\", {{ name = \"chk_b\", weight = -30 }}]"),
        ),
        (Kind::Table(fields), DeValue::Table(t)) => check_table(t, fields, &join(path, name), r),
        (Kind::Table(_), DeValue::Array(_)) => r.error_hint(
            span,
            format!("`{name}` must be a single table"),
            format!("write [{}] (single brackets), once", join(path, name)),
        ),
        (Kind::Table(_), _) => r.error_hint(
            span,
            format!("`{name}` must be a table, found {found}"),
            format!(
                "write [{}] on its own line, then its keys",
                join(path, name)
            ),
        ),
        (Kind::TableArray(fields), DeValue::Array(items)) => {
            let sub = join(path, name);
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::Table(t) => check_table(t, fields, &sub, r),
                    other => r.error_hint(
                        item.span(),
                        format!(
                            "`{name}` must be a list of tables, found {} in it",
                            type_name(other)
                        ),
                        format!("write each one as a [[{sub}]] section"),
                    ),
                }
            }
        }
        (Kind::TableArray(_), DeValue::Table(_)) => {
            let sub = join(path, name);
            r.error_hint(
                span,
                format!("`{name}` must be an array of tables"),
                format!("write [[{sub}]] (double brackets), once per entry"),
            );
        }
        (Kind::TableArray(_), _) => {
            let sub = join(path, name);
            let hint = if name == "vip" {
                "for a plain list of addresses use `vips = [\"10.0.0.100/24\"]`; `vip` is for [[instance.vip]] tables".to_string()
            } else {
                format!("write a [[{sub}]] section per entry")
            };
            r.error_hint(
                span,
                format!("`{name}` must be an array of tables, found {found}"),
                hint,
            );
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn raw(r: &Reporter<'_>, span: std::ops::Range<usize>) -> String {
    r.text().get(span).unwrap_or("").chars().take(40).collect()
}
