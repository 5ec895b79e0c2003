//! `[[instance.route]]` and `[[instance.rule]]`: routes and policy rules a master holds with
//! its VIPs (keepalived's `virtual_routes` / `virtual_rules`).

use std::net::IpAddr;

use super::super::diag::{Reporter, did_you_mean};
use super::super::raw::{RawInstance, RawRoute, RawRule, S};
use super::super::types::*;
use super::{ifname_problem, ranged, shorten};

/// At most this many routes, and as many rules, per instance.
pub(super) const MAX_ROUTES: usize = 1024;

/// `"addr/len"`, a bare address (a host route) or `"default"` (`default_family`'s /0).
fn prefix(
    r: &mut Reporter<'_>,
    v: &S<String>,
    what: &str,
    default_family: Family,
) -> Option<(IpAddr, u8)> {
    let s = v.get_ref().trim();
    if s == "default" || s == "all" {
        let any = match default_family {
            Family::Ipv4 => IpAddr::from([0u8; 4]),
            Family::Ipv6 => IpAddr::from([0u16; 8]),
        };
        return Some((any, 0));
    }
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(addr) = a.parse::<IpAddr>() else {
        r.error_hint(
            v.span(),
            format!("{what} \"{}\" is not a prefix", shorten(s)),
            "write \"10.1.0.0/16\", \"2001:db8::/32\", an address, or \"default\"",
        );
        return None;
    };
    let max = Family::of(&addr).max_prefix_len();
    let len = match l {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                r.error(
                    v.span(),
                    format!("{what} \"{}\": bad prefix length (0..={max})", shorten(s)),
                );
                return None;
            }
        },
    };
    // The kernel refuses a prefix with host bits set ("Invalid prefix for given prefix length").
    let masked = mask(addr, len);
    if masked != addr {
        r.error_hint(
            v.span(),
            format!("{what} {addr}/{len} has host bits set"),
            format!("write \"{masked}/{len}\""),
        );
        return None;
    }
    Some((addr, len))
}

/// `addr` with the bits beyond `len` cleared.
fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::from((u32::from(a) & m).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::from((u128::from(a) & m).to_be_bytes())
        }
    }
}

fn address(r: &mut Reporter<'_>, v: &S<String>, what: &str) -> Option<IpAddr> {
    match v.get_ref().trim().parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            r.error(
                v.span(),
                format!("{what} \"{}\" is not an IP address", shorten(v.get_ref())),
            );
            None
        }
    }
}

fn device(r: &mut Reporter<'_>, v: &S<String>) -> Option<String> {
    match ifname_problem(v.get_ref()) {
        None => Some(v.get_ref().clone()),
        Some(msg) => {
            r.error(v.span(), msg);
            None
        }
    }
}

fn route_type(r: &mut Reporter<'_>, v: &S<String>, allowed: &[&'static str]) -> Option<RouteType> {
    let t = match v.get_ref().as_str() {
        "unicast" => RouteType::Unicast,
        "blackhole" => RouteType::Blackhole,
        "unreachable" => RouteType::Unreachable,
        "prohibit" => RouteType::Prohibit,
        "throw" => RouteType::Throw,
        _ => RouteType::Unicast,
    };
    if allowed.contains(&v.get_ref().as_str()) {
        return Some(t);
    }
    let hint = match did_you_mean(v.get_ref(), allowed.iter().copied()) {
        Some(m) => format!("did you mean \"{m}\"?"),
        None => format!("one of {}", allowed.join(", ")),
    };
    r.error_hint(
        v.span(),
        format!("unknown type \"{}\"", shorten(v.get_ref())),
        hint,
    );
    None
}

fn family_mismatch(r: &mut Reporter<'_>, v: &S<String>, what: &str, a: IpAddr, fam: Family) {
    r.error(
        v.span(),
        format!("{what} {a} is {} but the route is {fam}", Family::of(&a)),
    );
}

/// One `[[instance.route]]`.
fn route(r: &mut Reporter<'_>, t: &S<RawRoute>) -> Option<Route> {
    let raw = t.get_ref();
    let before = r.diags.errors().count();
    let via = raw.via.as_ref().and_then(|v| address(r, v, "via"));
    let src = raw.src.as_ref().and_then(|v| address(r, v, "src"));
    let fam_hint = via.or(src).map_or(Family::Ipv4, |a| Family::of(&a));
    let to = match &raw.to {
        Some(v) => prefix(r, v, "to", fam_hint),
        None => {
            r.error_hint(
                t.span(),
                "[[instance.route]] has no destination",
                "add to = \"10.1.0.0/16\" (or \"default\")",
            );
            None
        }
    };
    let kind = match &raw.r#type {
        Some(v) => route_type(
            r,
            v,
            &["unicast", "blackhole", "unreachable", "prohibit", "throw"],
        ),
        None => Some(RouteType::Unicast),
    };
    let interface = raw.interface.as_ref().and_then(|v| device(r, v));
    let table = match &raw.table {
        Some(v) => ranged(r, v, "table", None).and_then(|n| u32::try_from(n).ok()),
        None => Some(MAIN_TABLE),
    };
    if let (Some(0), Some(v)) = (table, &raw.table) {
        r.error(v.span(), "table 0 is not a routing table");
    }
    let metric = raw
        .metric
        .as_ref()
        .and_then(|v| ranged(r, v, "metric", None).and_then(|n| u32::try_from(n).ok()));
    let scope = raw.scope.as_ref().map(|v| super::scope(r, v));
    let (to, kind) = (to?, kind?);
    let fam = Family::of(&to.0);
    for (a, v, what) in [(via, &raw.via, "via"), (src, &raw.src, "src")] {
        if let (Some(a), Some(v)) = (a, v)
            && Family::of(&a) != fam
        {
            family_mismatch(r, v, what, a, fam);
        }
    }
    if kind == RouteType::Unicast && via.is_none() && raw.interface.is_none() {
        r.error_hint(
            t.span(),
            format!("route to {}/{} has neither via nor interface", to.0, to.1),
            "add via = \"<gateway>\" or interface = \"<device>\" (or type = \"blackhole\")",
        );
    }
    if kind != RouteType::Unicast && (raw.via.is_some() || raw.interface.is_some()) {
        r.error(
            t.span(),
            format!("a {} route has no via or interface", kind.as_str()),
        );
    }
    let scope = match scope {
        Some(s) => s?,
        // As `ip route add`: a direct unicast route is on the link, the rest global.
        None if kind == RouteType::Unicast && via.is_none() => Scope::Link,
        None => Scope::Global,
    };
    if r.diags.errors().count() != before {
        return None;
    }
    Some(Route {
        to,
        via,
        interface,
        src,
        table: table?,
        metric,
        scope,
        kind,
        onlink: raw.onlink.as_ref().is_some_and(|v| *v.get_ref()),
        track: raw.track.as_ref().is_none_or(|v| *v.get_ref()),
    })
}

/// One `[[instance.rule]]`.
fn rule(r: &mut Reporter<'_>, t: &S<RawRule>) -> Option<Rule> {
    let raw = t.get_ref();
    let before = r.diags.errors().count();
    let family = match &raw.family {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            "ipv4" => Some(Family::Ipv4),
            "ipv6" => Some(Family::Ipv6),
            other => {
                r.error_hint(
                    v.span(),
                    format!("unknown family \"{}\"", shorten(other)),
                    "\"ipv4\" or \"ipv6\"",
                );
                None
            }
        },
    };
    let hint = family.unwrap_or(Family::Ipv4);
    let from = raw.from.as_ref().and_then(|v| prefix(r, v, "from", hint));
    let to = raw.to.as_ref().and_then(|v| prefix(r, v, "to", hint));
    let fam = family
        .or(from.map(|p| Family::of(&p.0)))
        .or(to.map(|p| Family::of(&p.0)))
        .unwrap_or(Family::Ipv4);
    for (p, v, what) in [(from, &raw.from, "from"), (to, &raw.to, "to")] {
        if let (Some((a, _)), Some(v)) = (p, v)
            && Family::of(&a) != fam
        {
            r.error(
                v.span(),
                format!("{what} {a} is {} but the rule is {fam}", Family::of(&a)),
            );
        }
    }
    let iif = raw.iif.as_ref().and_then(|v| device(r, v));
    let oif = raw.oif.as_ref().and_then(|v| device(r, v));
    let num = |r: &mut Reporter<'_>, v: &S<super::super::raw::RouteTable>, what: &str| {
        ranged(r, v, what, None).and_then(|n| u32::try_from(n).ok())
    };
    let mark = raw.fwmark.as_ref().and_then(|v| num(r, v, "fwmark"));
    let mask = raw.fwmask.as_ref().and_then(|v| num(r, v, "fwmask"));
    if let (None, Some(v)) = (&raw.fwmark, &raw.fwmask) {
        r.error(v.span(), "fwmask without fwmark");
    }
    let priority = raw
        .priority
        .as_ref()
        .and_then(|v| ranged(r, v, "priority", None).and_then(|n| u32::try_from(n).ok()));
    let table = raw.table.as_ref().and_then(|v| num(r, v, "table"));
    let kind = match &raw.r#type {
        Some(v) => route_type(r, v, &["blackhole", "unreachable", "prohibit"]),
        None => Some(RouteType::Unicast),
    };
    match (&raw.table, &raw.r#type) {
        (Some(_), Some(v)) => r.error(v.span(), "a rule has either a table or a type"),
        (None, None) => r.error_hint(
            t.span(),
            "[[instance.rule]] has neither table nor type",
            "add table = 100 (the table it looks up)",
        ),
        _ => {}
    }
    if raw.from.is_none()
        && raw.to.is_none()
        && raw.iif.is_none()
        && raw.oif.is_none()
        && raw.fwmark.is_none()
    {
        r.warn(
            t.span(),
            "[[instance.rule]] matches every packet (no from, to, iif, oif or fwmark)",
            Some("this is rarely meant: it sends all traffic to its table".into()),
        );
    }
    if r.diags.errors().count() != before {
        return None;
    }
    Some(Rule {
        family: fam,
        from,
        to,
        iif,
        oif,
        fwmark: mark.map(|m| (m, mask.unwrap_or(u32::MAX))),
        priority,
        table: table.unwrap_or(MAIN_TABLE),
        kind: kind?,
        track: raw.track.as_ref().is_none_or(|v| *v.get_ref()),
    })
}

/// The routes and rules of an instance (`None` if one of them is wrong).
pub(super) fn routes_and_rules(
    r: &mut Reporter<'_>,
    raw: &RawInstance,
    label: &str,
) -> Option<(Vec<Route>, Vec<Rule>)> {
    let before = r.diags.errors().count();
    for (n, span) in [
        (raw.route.len(), raw.route.get(MAX_ROUTES).map(S::span)),
        (raw.rule.len(), raw.rule.get(MAX_ROUTES).map(S::span)),
    ] {
        if let Some(span) = span {
            r.error(
                span,
                format!("too many routes or rules in {label} ({n}): at most {MAX_ROUTES} of each"),
            );
        }
    }
    let routes: Vec<Route> = raw
        .route
        .iter()
        .take(MAX_ROUTES)
        .filter_map(|t| route(r, t))
        .collect();
    let rules: Vec<Rule> = raw
        .rule
        .iter()
        .take(MAX_ROUTES)
        .filter_map(|t| rule(r, t))
        .collect();
    for (i, a) in routes.iter().enumerate() {
        if let Some(t) = routes[..i]
            .iter()
            .position(|b| b == a)
            .and(raw.route.get(i))
        {
            r.error(t.span(), format!("route {a} is listed twice in {label}"));
        }
    }
    (r.diags.errors().count() == before).then_some((routes, rules))
}
