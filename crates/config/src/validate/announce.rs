//! `[instance.announce]`: route placement for a BGP daemon (docs/bgp.md). It is sugar over
//! what an instance already holds: the VIPs go on the announce device, their host routes
//! (with `table`) join the instance's routes, and no gratuitous ARP/NA is sent. The
//! active-active policy runs no VRRP, so the keys of the protocol are refused there.

use std::ops::Range;

use super::super::diag::{Reporter, did_you_mean};
use super::super::raw::{RawAnnounce, RawInstance, S};
use super::super::types::*;
use super::{VipAt, ifname_problem, ranged, shorten, u8_in};

/// The announce table of `raw`, checked (`None`: an error was reported; `Some(None)`: no
/// table).
pub(super) fn announce(r: &mut Reporter<'_>, raw: &RawInstance) -> Option<Option<Announce>> {
    let Some(t) = &raw.announce else {
        return Some(None);
    };
    let a: &RawAnnounce = t.get_ref();
    let before = r.diags.errors().count();
    let policy = match &a.policy {
        None => AnnouncePolicy::ActiveStandby,
        Some(v) => match v.get_ref().as_str() {
            "active-standby" => AnnouncePolicy::ActiveStandby,
            "active-active" => AnnouncePolicy::ActiveActive,
            other => {
                let all = ["active-standby", "active-active"];
                let hint = match did_you_mean(other, all.iter().copied()) {
                    Some(m) => format!("did you mean \"{m}\"?"),
                    None => "\"active-standby\" or \"active-active\"".into(),
                };
                r.error_hint(
                    v.span(),
                    format!("unknown announce policy \"{}\"", shorten(other)),
                    hint,
                );
                AnnouncePolicy::ActiveStandby
            }
        },
    };
    let device = match &a.device {
        None => "lo".to_owned(),
        Some(v) => match ifname_problem(v.get_ref()) {
            None => v.get_ref().clone(),
            Some(msg) => {
                r.error(v.span(), msg);
                String::new()
            }
        },
    };
    let table = a
        .table
        .as_ref()
        .and_then(|v| ranged(r, v, "table", None))
        .and_then(|n| u32::try_from(n).ok());
    if let Some(v) = &a.table
        && matches!(table, Some(0 | 253 | 255))
    {
        r.error_hint(
            v.span(),
            "table 0, 253 (default) and 255 (local) are the kernel's own",
            "use a table of its own for the BGP daemon, e.g. table = 100",
        );
    }
    let metric = a
        .metric
        .as_ref()
        .and_then(|v| ranged(r, v, "metric", None))
        .and_then(|n| u32::try_from(n).ok());
    if let (Some(v), None) = (&a.metric, &a.table) {
        r.warn(
            v.span(),
            "announce.metric has no effect without announce.table (an address has no metric)",
            Some("set table = 100, or remove metric".into()),
        );
    }
    let min_priority = match &a.min_priority {
        None => 1,
        Some(v) => {
            if policy == AnnouncePolicy::ActiveStandby {
                r.warn(
                    v.span(),
                    "min_priority has no effect with policy \"active-standby\" (the VRRP election decides)",
                    Some("remove it, or set policy = \"active-active\"".into()),
                );
            }
            u8_in(r, v, "min_priority", None).unwrap_or(1)
        }
    };
    (r.diags.errors().count() == before).then_some(Some(Announce {
        policy,
        device,
        table,
        metric,
        min_priority,
    }))
}

/// The keys that only VRRP gives a meaning to, with their spans in `raw`: refused in an
/// active-active instance.
fn vrrp_only_keys(raw: &RawInstance) -> Vec<(&'static str, Range<usize>)> {
    use crate::keys::instance as k;
    let span = |v: Option<Range<usize>>, key: crate::keys::Key| v.map(|s| (key.as_str(), s));
    [
        span(raw.vrid.as_ref().map(S::span), k::vrid),
        span(raw.version.as_ref().map(S::span), k::version),
        span(
            raw.advert_interval.as_ref().map(S::span),
            k::advert_interval,
        ),
        span(raw.preempt.as_ref().map(S::span), k::preempt),
        span(raw.preempt_delay.as_ref().map(S::span), k::preempt_delay),
        span(raw.fast_preempt.as_ref().map(S::span), k::fast_preempt),
        span(raw.source_address.as_ref().map(S::span), k::source_address),
        span(raw.unicast_peers.as_ref().map(S::span), k::unicast_peers),
        span(raw.unicast_peer.first().map(S::span), k::unicast_peer),
        span(
            raw.unicast_min_ttl.as_ref().map(S::span),
            k::unicast_min_ttl,
        ),
        span(
            raw.allowed_sources.as_ref().map(S::span),
            k::allowed_sources,
        ),
        span(
            raw.multicast_group.as_ref().map(S::span),
            k::multicast_group,
        ),
        span(
            raw.max_adopted_interval.as_ref().map(S::span),
            k::max_adopted_interval,
        ),
        span(raw.auth_pass.as_ref().map(S::span), k::auth_pass),
        span(raw.auth_ah.as_ref().map(S::span), k::auth_ah),
        span(raw.auth_hmac.as_ref().map(S::span), k::auth_hmac),
        span(raw.checksum.as_ref().map(S::span), k::checksum),
        span(
            raw.lower_prio_no_advert.as_ref().map(S::span),
            k::lower_prio_no_advert,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The checks between `[instance.announce]` and the rest of the instance.
pub(super) fn check_instance(r: &mut Reporter<'_>, raw: &RawInstance, a: &Announce, label: &str) {
    use crate::keys::instance as k;
    if a.policy == AnnouncePolicy::ActiveActive {
        for (key, span) in vrrp_only_keys(raw) {
            r.error_hint(
                span,
                format!("{key} has no meaning in {label}: active-active instances run no VRRP"),
                "remove it (every node whose trackers pass announces), or use policy = \"active-standby\"",
            );
        }
        if let Some(v) = &raw.priority
            && v.get_ref().0 == 255
        {
            r.error_hint(
                v.span(),
                format!("priority 255 (address owner) has no meaning in {label}: it runs no VRRP"),
                "use 1..=254 with min_priority",
            );
        }
    }
    for (key, span) in [
        (k::vmac, raw.vmac.as_ref().map(S::span)),
        (k::vmac_interface, raw.vmac_interface.as_ref().map(S::span)),
        (k::vmac_xmit_base, raw.vmac_xmit_base.as_ref().map(S::span)),
        (k::no_vips, raw.no_vips.as_ref().map(S::span)),
    ] {
        if let Some(span) = span {
            r.error_hint(
                span,
                format!("{key} cannot be combined with [instance.announce] in {label}"),
                "an announced instance puts its VIPs on the announce device, not on the link",
            );
        }
    }
    for (key, span) in [
        (
            k::garp_master_delay,
            raw.garp_master_delay.as_ref().map(S::span),
        ),
        (
            k::garp_master_repeat,
            raw.garp_master_repeat.as_ref().map(S::span),
        ),
        (
            k::garp_master_refresh,
            raw.garp_master_refresh.as_ref().map(S::span),
        ),
        (
            k::garp_master_refresh_repeat,
            raw.garp_master_refresh_repeat.as_ref().map(S::span),
        ),
        (
            k::garp_lower_prio_repeat,
            raw.garp_lower_prio_repeat.as_ref().map(S::span),
        ),
    ] {
        if let Some(span) = span {
            r.warn(
                span,
                format!("{key} has no effect in {label}: announced VIPs send no gratuitous ARP/NA"),
                Some("remove it".into()),
            );
        }
    }
}

/// Applies `a` to the instance's VIPs and routes: VIPs without a device of their own go on
/// the announce device (host addresses only), and with a table each VIP gets its host route
/// there. Errors are reported at the VIPs' spans.
pub(super) fn place(
    r: &mut Reporter<'_>,
    a: &Announce,
    vips: &mut [VipAt],
    routes: &mut Vec<Route>,
    label: &str,
) {
    for VipAt { vip: v, span } in vips.iter_mut() {
        if v.interface.is_none() {
            v.interface = Some(a.device.clone());
        }
        let full = v.family().max_prefix_len();
        if v.prefix_len != full {
            r.error_hint(
                span.clone(),
                format!(
                    "VIP {v} of {label} is announced as a host route: it must be a host address (/{full})"
                ),
                format!("write \"{}\"", v.addr),
            );
            continue;
        }
        if let Some(table) = a.table {
            let route = Route {
                to: (v.addr, full),
                via: None,
                interface: v.interface.clone(),
                src: None,
                table,
                metric: a.metric,
                scope: Scope::Link,
                kind: RouteType::Unicast,
                onlink: false,
                track: true,
            };
            if routes.contains(&route) {
                r.error(
                    span.clone(),
                    format!("VIP {v}'s host route is also listed as a route of {label}"),
                );
            } else {
                routes.push(route);
            }
        }
    }
}
