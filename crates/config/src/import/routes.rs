//! keepalived's `virtual_routes` and `virtual_rules` lines into `[[instance.route]]` and
//! `[[instance.rule]]` tables. A line with an option vipd does not carry is not converted as a
//! whole (a route without its `mtu` or `nexthop`s would be another route), with a note.

use std::net::IpAddr;

use super::NoteSeverity::NotConverted;
use super::convert::{Table, Val};
use super::lex::{Node, Token};
use crate::keys;

/// A table name or number as `ip` takes it: the names iproute2 always knows, else a number.
fn table_number(s: &str) -> Option<i64> {
    match s {
        "main" => Some(254),
        "local" => Some(255),
        "default" => Some(253),
        n => n.parse::<u32>().ok().filter(|n| *n > 0).map(i64::from),
    }
}

/// `addr[/len]`, `default` or `all`, as it should be written in vipd.toml (`None`: not one).
fn prefix(s: &str) -> Option<String> {
    if s == "default" || s == "all" {
        return Some("default".into());
    }
    let a = s.split('/').next().unwrap_or(s);
    a.parse::<IpAddr>().ok().map(|_| s.to_string())
}

/// What went wrong with one line: the token to point at and the reason.
pub(super) type Refusal = (Token, String);

/// One `virtual_routes` line.
pub(super) fn route(n: &Node) -> Result<Table, Refusal> {
    let tokens: Vec<&Token> = std::iter::once(&n.key).chain(n.args.iter()).collect();
    let mut t = Table::default();
    let mut i = 0;
    let mut to_seen = false;
    let refuse = |tok: &Token, why: String| Err((tok.clone(), why));
    while let Some(tok) = tokens.get(i) {
        let word = tok.text.as_str();
        let value = tokens.get(i + 1).map(|v| v.text.as_str());
        let mut take = |key: keys::Key, v: Val| {
            t.set(key, v);
            i += 2;
        };
        match (word, value) {
            ("blackhole" | "unreachable" | "prohibit" | "throw", _) if !to_seen => {
                t.set(keys::route::r#type, Val::Str(word.into()));
                i += 1;
            }
            ("unicast", _) if !to_seen => i += 1,
            ("src", Some(v)) if v.parse::<IpAddr>().is_ok() => {
                take(keys::route::src, Val::Str(v.into()))
            }
            ("to", Some(v)) => match prefix(v) {
                Some(p) => {
                    to_seen = true;
                    take(keys::route::to, Val::Str(p));
                }
                None => return refuse(tok, format!("`to {v}` is not a prefix")),
            },
            ("via" | "gw", Some(v)) => {
                // `via inet6 ADDR` (an IPv4 route via an IPv6 gateway) has no vipd form.
                if v.parse::<IpAddr>().is_err() {
                    return refuse(
                        tok,
                        format!("`{word} {v}`: only a plain gateway address converts"),
                    );
                }
                take(keys::route::via, Val::Str(v.into()));
            }
            ("dev" | "oif", Some(v)) => take(keys::route::interface, Val::Str(v.into())),
            ("scope", Some(v)) if matches!(v, "global" | "site" | "link" | "host") => {
                take(keys::route::scope, Val::Str(v.into()));
            }
            ("table", Some(v)) => match table_number(v) {
                Some(n) => take(keys::route::table, Val::Int(n)),
                None => {
                    return refuse(
                        tok,
                        format!(
                            "table `{v}`: write its number (names from rt_tables are not read)"
                        ),
                    );
                }
            },
            ("metric" | "priority" | "preference", Some(v)) => match v.parse::<u32>() {
                Ok(m) => take(keys::route::metric, Val::Int(i64::from(m))),
                Err(_) => return refuse(tok, format!("`{word} {v}` is not a number")),
            },
            ("onlink", _) => {
                t.set(keys::route::onlink, Val::Bool(true));
                i += 1;
            }
            ("no_track", _) => {
                t.set(keys::route::track, Val::Bool(false));
                i += 1;
            }
            (w, _) if !to_seen && prefix(w).is_some() => {
                to_seen = true;
                t.set(keys::route::to, Val::Str(prefix(w).unwrap_or_default()));
                i += 1;
            }
            _ => {
                return refuse(
                    tok,
                    format!(
                        "route option `{word}` has no vipd equivalent (vipd: to, via, dev, src, table, metric, scope, onlink, no_track, blackhole/unreachable/prohibit/throw)"
                    ),
                );
            }
        }
    }
    if !to_seen {
        return refuse(&n.key, "no destination".into());
    }
    Ok(t)
}

/// One `virtual_rules` line.
pub(super) fn rule(n: &Node) -> Result<Table, Refusal> {
    let tokens: Vec<&Token> = std::iter::once(&n.key).chain(n.args.iter()).collect();
    let mut t = Table::default();
    let mut i = 0;
    let mut action = false;
    let refuse = |tok: &Token, why: String| Err((tok.clone(), why));
    while let Some(tok) = tokens.get(i) {
        let word = tok.text.as_str();
        let value = tokens.get(i + 1).map(|v| v.text.as_str());
        match (word, value) {
            ("from" | "to", Some("all")) => i += 2,
            ("from", Some(v)) | ("to", Some(v)) => {
                let Some(p) = prefix(v) else {
                    return refuse(tok, format!("`{word} {v}` is not a prefix"));
                };
                let key = if word == "from" {
                    keys::rule::from
                } else {
                    keys::rule::to
                };
                t.set(key, Val::Str(p));
                i += 2;
            }
            ("table" | "lookup", Some(v)) => match table_number(v) {
                Some(n) => {
                    t.set(keys::rule::table, Val::Int(n));
                    action = true;
                    i += 2;
                }
                None => {
                    return refuse(
                        tok,
                        format!(
                            "table `{v}`: write its number (names from rt_tables are not read)"
                        ),
                    );
                }
            },
            ("priority" | "preference" | "pref" | "prio", Some(v)) => match v.parse::<u32>() {
                Ok(p) => {
                    t.set(keys::rule::priority, Val::Int(i64::from(p)));
                    i += 2;
                }
                Err(_) => return refuse(tok, format!("`{word} {v}` is not a number")),
            },
            ("iif" | "dev", Some(v)) => {
                t.set(keys::rule::iif, Val::Str(v.into()));
                i += 2;
            }
            ("oif", Some(v)) => {
                t.set(keys::rule::oif, Val::Str(v.into()));
                i += 2;
            }
            ("fwmark", Some(v)) => {
                let (m, mask) = match v.split_once('/') {
                    Some((m, k)) => (m, Some(k)),
                    None => (v, None),
                };
                let num = |s: &str| match s.strip_prefix("0x") {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => s.parse::<u32>().ok(),
                };
                let Some(m) = num(m) else {
                    return refuse(tok, format!("`fwmark {v}` is not a number"));
                };
                t.set(keys::rule::fwmark, Val::Int(i64::from(m)));
                if let Some(k) = mask {
                    match num(k) {
                        Some(k) => t.set(keys::rule::fwmask, Val::Int(i64::from(k))),
                        None => return refuse(tok, format!("`fwmark {v}`: bad mask")),
                    }
                }
                i += 2;
            }
            ("blackhole" | "unreachable" | "prohibit", _) => {
                t.set(keys::rule::r#type, Val::Str(word.into()));
                action = true;
                i += 1;
            }
            ("no_track", _) => {
                t.set(keys::rule::track, Val::Bool(false));
                i += 1;
            }
            _ => {
                return refuse(
                    tok,
                    format!(
                        "rule option `{word}` has no vipd equivalent (vipd: from, to, iif, oif, fwmark, priority, table, blackhole/unreachable/prohibit, no_track)"
                    ),
                );
            }
        }
    }
    if !action {
        return refuse(
            &n.key,
            "no table and no blackhole/unreachable/prohibit".into(),
        );
    }
    Ok(t)
}

/// The lines of a `virtual_routes` / `virtual_rules` block: tables, and a note per line left
/// out.
pub(super) fn block(
    lines: &[Node],
    parse: fn(&Node) -> Result<Table, Refusal>,
    notes: &mut Vec<super::RawNote>,
    keyword: &str,
) -> Vec<Table> {
    let mut out = Vec::new();
    for n in lines {
        match parse(n) {
            Ok(t) => out.push(t),
            Err((at, why)) => notes.push(super::RawNote::at(
                NotConverted,
                &at,
                keyword,
                format!("{why}; this line is not converted"),
            )),
        }
    }
    out
}
