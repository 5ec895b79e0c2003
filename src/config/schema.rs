//! Shape check of the parsed TOML document before serde sees it.
//!
//! Serde stops at the first problem and its messages are generic; this pass walks the
//! spanned document against the known keys and value kinds of every table, so that every
//! unknown key (with a "did you mean" hint, including keepalived.conf spellings) and every
//! wrong value type is reported at once, at the offending key or value.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Reporter, did_you_mean};

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
    Table(&'static [Field]),
    TableArray(&'static [Field]),
}

pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

const fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

pub(crate) const GLOBAL: &[Field] = &[
    f("router_id", Kind::Str),
    f("control_socket", Kind::Str),
    f("control_group", Kind::Str),
    f("metrics_listen", Kind::Str),
    f("vrrp_version", Kind::Int),
    f("checksum", Kind::Str),
    f("garp_master_delay", Kind::Duration),
    f("garp_master_repeat", Kind::Int),
    f("garp_master_refresh", Kind::Duration),
    f("garp_master_refresh_repeat", Kind::Int),
    f("garp_interval", Kind::Duration),
    f("script_user", Kind::Str),
    f("enable_script_security", Kind::Bool),
    f("events_socket", Kind::Str),
];

pub(crate) const VIP: &[Field] = &[
    f("address", Kind::Str),
    f("label", Kind::Str),
    f("scope", Kind::Str),
];

pub(crate) const INSTANCE: &[Field] = &[
    f("name", Kind::Str),
    f("interface", Kind::Str),
    f("vrid", Kind::Int),
    f("version", Kind::Int),
    f("priority", Kind::Int),
    f("advert_interval", Kind::Duration),
    f("preempt", Kind::Bool),
    f("preempt_delay", Kind::Duration),
    f("accept", Kind::Bool),
    f("vips", Kind::StrArray),
    f("vip", Kind::TableArray(VIP)),
    f("source_address", Kind::Str),
    f("unicast_peers", Kind::StrArray),
    f("auth_pass", Kind::Str),
    f("checksum", Kind::Str),
    f("garp_master_delay", Kind::Duration),
    f("garp_master_repeat", Kind::Int),
    f("garp_master_refresh", Kind::Duration),
    f("garp_master_refresh_repeat", Kind::Int),
    f("garp_interval", Kind::Duration),
    f("track_scripts", Kind::TrackList),
    f("track_http", Kind::TrackList),
    f("track_tcp", Kind::TrackList),
    f("track_files", Kind::TrackList),
    f("track_processes", Kind::TrackList),
    f("track_interfaces", Kind::TrackList),
    f("notify_master", Kind::Command),
    f("notify_backup", Kind::Command),
    f("notify_fault", Kind::Command),
    f("notify_stop", Kind::Command),
    f("notify", Kind::Command),
    f("notify_timeout", Kind::Duration),
];

pub(crate) const SYNC_GROUP: &[Field] = &[
    f("name", Kind::Str),
    f("instances", Kind::StrArray),
    f("notify_master", Kind::Command),
    f("notify_backup", Kind::Command),
    f("notify_fault", Kind::Command),
    f("notify_stop", Kind::Command),
    f("notify", Kind::Command),
    f("notify_timeout", Kind::Duration),
];

/// Keys of a `{ name = ..., weight = ... }` entry of a `track_*` list.
pub(crate) const TRACK_REF: &[Field] = &[f("name", Kind::Str), f("weight", Kind::Int)];

pub(crate) const TRACK_SCRIPT: &[Field] = &[
    f("name", Kind::Str),
    f("command", Kind::StrArray),
    f("shell", Kind::Str),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
    f("rise", Kind::Int),
    f("fall", Kind::Int),
    f("weight", Kind::Int),
    f("user", Kind::Str),
];

pub(crate) const TRACK_HTTP: &[Field] = &[
    f("name", Kind::Str),
    f("url", Kind::Str),
    f("expect_status", Kind::IntOrIntArray),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
    f("rise", Kind::Int),
    f("fall", Kind::Int),
    f("weight", Kind::Int),
];

pub(crate) const TRACK_TCP: &[Field] = &[
    f("name", Kind::Str),
    f("address", Kind::Str),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
    f("rise", Kind::Int),
    f("fall", Kind::Int),
    f("weight", Kind::Int),
];

pub(crate) const TRACK_FILE: &[Field] = &[
    f("name", Kind::Str),
    f("path", Kind::Str),
    f("weight", Kind::Int),
];

pub(crate) const TRACK_PROCESS: &[Field] = &[
    f("name", Kind::Str),
    f("process", Kind::Str),
    f("min", Kind::Int),
    f("weight", Kind::Int),
];

pub(crate) const ROOT: &[Field] = &[
    f("global", Kind::Table(GLOBAL)),
    f("instance", Kind::TableArray(INSTANCE)),
    f("sync_group", Kind::TableArray(SYNC_GROUP)),
    f("track_script", Kind::TableArray(TRACK_SCRIPT)),
    f("track_http", Kind::TableArray(TRACK_HTTP)),
    f("track_tcp", Kind::TableArray(TRACK_TCP)),
    f("track_file", Kind::TableArray(TRACK_FILE)),
    f("track_process", Kind::TableArray(TRACK_PROCESS)),
];

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

fn unknown_key_hint(key: &str, table: &'static [Field]) -> Option<String> {
    if let Some((_, hint)) = KEEPALIVED.iter().find(|(k, _)| *k == key) {
        return Some((*hint).to_string());
    }
    let names = table.iter().map(|f| f.name);
    if let Some(best) = did_you_mean(key, names.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    if let Some(rest) = key.strip_prefix("vrrp_") {
        if let Some(known) = table.iter().find(|f| f.name == rest) {
            return Some(format!("did you mean `{}`?", known.name));
        }
    }
    let mut list: Vec<&str> = names.collect();
    list.sort_unstable();
    Some(format!("known keys here: {}", list.join(", ")))
}

/// Reports every unknown key and wrongly-typed value in `root`. Returns true if the shape is sound.
pub(crate) fn check(root: &Spanned<DeTable<'_>>, r: &mut Reporter<'_>) -> bool {
    let before = r.diags.errors().count();
    check_table(root.get_ref(), ROOT, "", r);
    r.diags.errors().count() == before
}

fn check_table(table: &DeTable<'_>, fields: &'static [Field], path: &str, r: &mut Reporter<'_>) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let Some(field) = fields.iter().find(|f| f.name == name) else {
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
        check_value(name, value, field.kind, path, r);
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
        (Kind::StrArray, DeValue::String(s)) => r.error_hint(
            span,
            format!("`{name}` must be a list of strings"),
            format!("write {name} = [\"{}\"]", s.escape_default()),
        ),
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
                    DeValue::Table(t) => check_table(t, TRACK_REF, &sub, r),
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
