//! Single values: the validating parsers of one key's value each (ranges come from the
//! key's type, [`Int`] / [`Dur`]; names, interfaces, addresses, enumerations here). The
//! walk over tables and the rules between keys are `validate.rs`'s.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use super::diag::{Reporter, did_you_mean};
use super::duration::{format_duration, parse_duration};
use super::raw::{Dur, Int, S};
use super::types::*;

// ---------------------------------------------------------------------------------------------
// Scalars

/// The range check of an [`Int`] key: its range is its type's.
pub(crate) fn ranged<const LO: i64, const HI: i64>(
    r: &mut Reporter<'_>,
    v: &S<Int<LO, HI>>,
    name: &str,
    hint: Option<String>,
) -> Option<i64> {
    let n = v.get_ref().0;
    let range = Int::<LO, HI>::RANGE;
    if range.contains(&n) {
        Some(n)
    } else {
        r.error_opt(
            v.span(),
            format!(
                "{name} {n} is out of range ({}..={})",
                range.start(),
                range.end()
            ),
            hint,
        );
        None
    }
}

pub(crate) fn u8_in<const LO: i64, const HI: i64>(
    r: &mut Reporter<'_>,
    v: &S<Int<LO, HI>>,
    name: &str,
    hint: Option<String>,
) -> Option<u8> {
    ranged(r, v, name, hint).and_then(|n| u8::try_from(n).ok())
}

pub(crate) fn duration(r: &mut Reporter<'_>, v: &S<String>, name: &str) -> Option<Duration> {
    match parse_duration(v.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            r.error_hint(v.span(), format!("{name}: {e}"), e.hint());
            None
        }
    }
}

/// A [`Dur`] key: parsed, then checked against its type's range.
pub(crate) fn duration_in<const LO: u64, const HI: u64>(
    r: &mut Reporter<'_>,
    v: &S<Dur<LO, HI>>,
    name: &str,
) -> Option<Duration> {
    let (lo, hi) = (Dur::<LO, HI>::MIN, Dur::<LO, HI>::MAX);
    let d = match parse_duration(&v.get_ref().0) {
        Ok(d) => d,
        Err(e) => {
            r.error_hint(v.span(), format!("{name}: {e}"), e.hint());
            return None;
        }
    };
    if d < lo || d > hi {
        r.error(
            v.span(),
            format!(
                "{name} {} is out of range ({}..={})",
                format_duration(d),
                format_duration(lo),
                format_duration(hi)
            ),
        );
        return None;
    }
    Some(d)
}

pub(crate) fn version(r: &mut Reporter<'_>, v: &S<i64>, name: &str) -> Option<Version> {
    match *v.get_ref() {
        2 => Some(Version::V2),
        3 => Some(Version::V3),
        n => {
            r.error_hint(
                v.span(),
                format!("{name} must be 2 or 3, found {n}"),
                "3 is VRRPv3 (RFC 9568, IPv4 and IPv6); 2 is VRRPv2 (RFC 3768, IPv4 only)",
            );
            None
        }
    }
}

pub(crate) fn checksum(r: &mut Reporter<'_>, v: &S<String>) -> Option<ChecksumMode> {
    const NAMES: [&str; 2] = ["with-pseudo-header", "without-pseudo-header"];
    match v.get_ref().as_str() {
        "with-pseudo-header" => Some(ChecksumMode::WithPseudoHeader),
        "without-pseudo-header" => Some(ChecksumMode::WithoutPseudoHeader),
        other => {
            let hint = match did_you_mean(other, NAMES) {
                Some(m) => format!("did you mean \"{m}\"?"),
                None => "\"with-pseudo-header\" (keepalived) or \"without-pseudo-header\" (RFC 9568, FRR, Cisco)".to_string(),
            };
            r.error_hint(
                v.span(),
                format!("unknown checksum mode \"{}\"", shorten(other)),
                hint,
            );
            None
        }
    }
}

pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// Offsets of `range` inside the string literal at `span`, when the literal is written without escapes.
pub(crate) fn inner_span(
    r: &Reporter<'_>,
    span: Range<usize>,
    content: &str,
    range: Range<usize>,
) -> Range<usize> {
    let src = r.text().get(span.clone()).unwrap_or("");
    let plain = src.len() == content.len() + 2
        && (src.starts_with('"') || src.starts_with('\''))
        && src.get(1..src.len() - 1) == Some(content);
    if plain {
        span.start + 1 + range.start..span.start + 1 + range.end
    } else {
        span
    }
}

// ---------------------------------------------------------------------------------------------
// Names

pub(crate) fn check_name(r: &mut Reporter<'_>, v: &S<String>, what: &str) -> bool {
    let s = v.get_ref();
    let len = s.chars().count();
    if len == 0 || len > 64 {
        r.error_hint(
            v.span(),
            format!("{what} name must be 1 to 64 characters long (found {len})"),
            "use letters, digits, '_', '.' and '-'",
        );
        return false;
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        r.error_hint(
            v.span(),
            format!("{what} name \"{}\" contains {bad:?}", shorten(s)),
            "use letters, digits, '_', '.' and '-' only",
        );
        return false;
    }
    true
}

/// Linux `dev_valid_name()`: 1..=15 bytes, not "." / "..", no '/', ':' or whitespace.
pub(crate) fn ifname_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("interface name is empty".into());
    }
    if s.len() > 15 {
        return Some(format!(
            "interface name \"{}\" is {} bytes long; Linux allows at most 15",
            shorten(s),
            s.len()
        ));
    }
    if s == "." || s == ".." {
        return Some(format!("\"{s}\" is not a valid interface name"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Some(format!(
            "interface name \"{}\" contains {bad:?}, which Linux forbids",
            shorten(s)
        ));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Addresses

pub(crate) fn bad_kind(addr: &IpAddr) -> Option<&'static str> {
    if addr.is_unspecified() {
        Some("the unspecified address")
    } else if addr.is_loopback() {
        Some("a loopback address")
    } else if addr.is_multicast() {
        Some("a multicast address")
    } else if matches!(addr, IpAddr::V4(a) if a.is_broadcast()) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// Parses a bare address; on failure reports and returns `None`.
pub(crate) fn plain_addr(r: &mut Reporter<'_>, v: &S<String>, what: &str) -> Option<IpAddr> {
    let s = v.get_ref().as_str();
    if s.contains('/') {
        r.error_hint(
            v.span(),
            format!("{what} must be a plain address, found \"{}\"", shorten(s)),
            format!(
                "remove the prefix length: \"{}\"",
                shorten(s.split('/').next().unwrap_or(s))
            ),
        );
        return None;
    }
    let addr = match s.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) => {
            let hint = s.contains('%').then(|| {
                "zone indices are not needed: the instance's interface is used".to_string()
            });
            r.error_opt(
                v.span(),
                format!("{what} \"{}\" is not an IP address", shorten(s)),
                hint,
            );
            return None;
        }
    };
    if let Some(kind) = bad_kind(&addr) {
        r.error(v.span(), format!("{what} {addr} is {kind}"));
        return None;
    }
    Some(addr)
}

/// Parses `addr[/prefix]` for a VIP; on failure reports and returns `None`.
pub(crate) fn vip_addr(r: &mut Reporter<'_>, v: &S<String>) -> Option<(IpAddr, u8)> {
    let s = v.get_ref().as_str();
    if s.trim().contains(char::is_whitespace) {
        r.error_hint(
            v.span(),
            format!("VIP \"{}\" is not an address", shorten(s)),
            "a VIP is just \"address/prefix\"; use an [[instance.vip]] table for label and scope",
        );
        return None;
    }
    let (addr_s, prefix_s) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let Ok(addr) = addr_s.parse::<IpAddr>() else {
        let hint = addr_s
            .contains('%')
            .then(|| "zone indices are not needed: the instance's interface is used".to_string());
        let sub = inner_span(r, v.span(), s, 0..addr_s.len());
        r.error_opt(
            sub,
            format!("VIP \"{}\" is not an IP address", shorten(addr_s)),
            hint,
        );
        return None;
    };
    let max = Family::of(&addr).max_prefix_len();
    let prefix_len = match prefix_s {
        None => max,
        Some(p) => {
            let sub = inner_span(r, v.span(), s, addr_s.len()..s.len());
            let n = if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse::<u16>().ok()
            } else {
                None
            };
            match n {
                Some(n) if n <= u16::from(max) => u8::try_from(n).unwrap_or(max),
                Some(n) => {
                    r.error_hint(
                        sub,
                        format!(
                            "prefix length /{n} is out of range for {} (0..={max})",
                            Family::of(&addr)
                        ),
                        format!("e.g. \"{addr}/{}\"", if max == 32 { 24 } else { 64 }),
                    );
                    return None;
                }
                None => {
                    r.error_hint(
                        sub,
                        format!("\"/{}\" is not a prefix length", shorten(p)),
                        format!("write \"{addr}/{}\"", if max == 32 { 24 } else { 64 }),
                    );
                    return None;
                }
            }
        }
    };
    if let Some(kind) = bad_kind(&addr) {
        let sub = inner_span(r, v.span(), s, 0..addr_s.len());
        r.error(sub, format!("VIP {addr} is {kind}"));
        return None;
    }
    Some((addr, prefix_len))
}

pub(crate) fn scope(r: &mut Reporter<'_>, v: &S<String>) -> Option<Scope> {
    match v.get_ref().as_str() {
        "global" => Some(Scope::Global),
        "site" => Some(Scope::Site),
        "link" => Some(Scope::Link),
        "host" => Some(Scope::Host),
        other => {
            let hint = match did_you_mean(other, ["global", "site", "link", "host"]) {
                Some(m) => format!("did you mean \"{m}\"?"),
                None => "one of \"global\", \"site\", \"link\", \"host\"".to_string(),
            };
            r.error_hint(
                v.span(),
                format!("unknown scope \"{}\"", shorten(other)),
                hint,
            );
            None
        }
    }
}
