//! Raw (spanned) configuration → validated [`Config`], reporting every problem at its span.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

/// A unicast peer as written: its address, `min_ttl`, `max_ttl` and the entry's span.
type PeerEntry<'a> = (
    &'a S<String>,
    Option<u8>,
    Option<u8>,
    std::ops::Range<usize>,
);

use super::diag::{Reporter, did_you_mean};
use super::duration::format_duration;
use super::raw::{
    Count255, GarpDelay, GarpGap, RawAuthHmac, RawConfig, RawGlobal, RawInstance, RawSyncGroup,
    RawVip, S,
};
use super::types::*;

mod announce;
mod routes;
mod track;

pub(crate) use crate::field::*;

use crate::host::HostSites;
pub(crate) use track::resolve_program;
use track::{NotifyKeys, TrackerTable};
pub use track::{SCRIPT_PATH, insecure_path};

const MS: Duration = Duration::from_millis(1);
// Protocol limits are the state machine's (one definition, in vipd-proto).
use vipd_proto::{V3_MAX_INTERVAL, V3_MIN_INTERVAL};
const MAX_GARP_REFRESH: Duration = Duration::from_secs(86_400);

pub(crate) fn validate(
    raw: RawConfig,
    r: &mut Reporter<'_>,
) -> (Config, Vec<WeightSite>, Vec<KeySite>, HostSites) {
    let global = match &raw.global {
        Some(g) => global(g.get_ref(), r),
        None => Global::default(),
    };
    let mut v = Validator {
        r,
        global,
        names: HashMap::new(),
        vrids: HashMap::new(),
        vip_owner: HashMap::new(),
        vmac_names: HashMap::new(),
        anycast: HashSet::new(),
        trackers: TrackerTable::default(),
        weight_sites: Vec::new(),
        key_sites: Vec::new(),
        host: HostSites::default(),
    };
    let (track_scripts, track_http, track_tcp, track_files, track_processes) = v.trackers(&raw);
    if let Some(g) = &raw.global {
        v.notify_fifo(g.get_ref());
    }
    // Limits first, so the error is not lost among the per-instance ones (and work stays bounded).
    if let Some(extra) = raw.instance.get(MAX_INSTANCES) {
        v.r.error_hint(
            extra.span(),
            format!(
                "too many instances ({}): at most {MAX_INSTANCES} are supported",
                raw.instance.len()
            ),
            "split the configuration across hosts",
        );
    }
    if let Some(extra) = raw.sync_group.get(MAX_SYNC_GROUPS) {
        v.r.error(
            extra.span(),
            format!(
                "too many sync groups ({}): at most {MAX_SYNC_GROUPS}",
                raw.sync_group.len()
            ),
        );
    }
    let mut instances = Vec::new();
    for (i, inst) in raw.instance.iter().take(MAX_INSTANCES).enumerate() {
        if let Some(ok) = v.instance(inst, i) {
            instances.push(ok);
        }
    }
    let (sync_groups, group_spans) = v.sync_groups(&raw.sync_group);
    v.group_tracking(&mut instances, &sync_groups, &group_spans);
    v.unused_trackers();
    let config = Config {
        global: v.global,
        instances,
        sync_groups,
        track_scripts,
        track_http,
        track_tcp,
        track_files,
        track_processes,
    };
    (config, v.weight_sites, v.key_sites, v.host)
}

// ---------------------------------------------------------------------------------------------
// [global] and GARP

struct GarpKeys<'a> {
    delay: Option<&'a S<GarpDelay>>,
    repeat: Option<&'a S<Count255>>,
    refresh: Option<&'a S<String>>,
    refresh_repeat: Option<&'a S<Count255>>,
    interval: Option<&'a S<GarpGap>>,
    lower_prio_repeat: Option<&'a S<Count255>>,
    lower_prio_delay: Option<&'a S<GarpDelay>>,
}

fn garp(r: &mut Reporter<'_>, base: &Garp, k: GarpKeys<'_>) -> Garp {
    let mut g = base.clone();
    if let Some(v) = k.delay
        && let Some(d) = duration_in(r, v, "garp_master_delay")
    {
        g.master_delay = d;
    }
    if let Some(v) = k.repeat
        && let Some(n) = u8_in(r, v, "garp_master_repeat", None)
    {
        g.master_repeat = n;
    }
    if let Some(v) = k.refresh
        && let Some(d) = duration(r, v, "garp_master_refresh")
    {
        if d.is_zero() {
            g.master_refresh = None;
        } else if d < Duration::from_secs(1) || d > MAX_GARP_REFRESH {
            r.error_hint(
                v.span(),
                format!(
                    "garp_master_refresh {} is out of range (0s = off, or 1s..=24h)",
                    format_duration(d)
                ),
                "keepalived counts this in seconds; e.g. \"60s\"",
            );
        } else {
            g.master_refresh = Some(d);
        }
    }
    if let Some(v) = k.refresh_repeat
        && let Some(n) = u8_in(r, v, "garp_master_refresh_repeat", None)
    {
        g.master_refresh_repeat = n;
    }
    if let Some(v) = k.interval
        && let Some(d) = duration_in(r, v, "garp_interval")
    {
        g.interval = d;
    }
    if let Some(v) = k.lower_prio_repeat
        && let Some(n) = u8_in(r, v, "garp_lower_prio_repeat", None)
    {
        g.lower_prio_repeat = Some(n);
    }
    if let Some(v) = k.lower_prio_delay
        && let Some(d) = duration_in(r, v, "garp_lower_prio_delay")
    {
        g.lower_prio_delay = Some(d);
    }
    g
}

fn global(g: &RawGlobal, r: &mut Reporter<'_>) -> Global {
    let mut out = Global::default();
    if let Some(v) = &g.router_id {
        let s = v.get_ref();
        if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
            r.error_hint(
                v.span(),
                "router_id must be 1 to 255 printable characters",
                "omit router_id to use the host name",
            );
        } else {
            out.router_id = Some(s.clone());
        }
    }
    if let Some(v) = &g.control_socket {
        let s = v.get_ref();
        if !s.starts_with('/') {
            r.error_hint(
                v.span(),
                format!("control_socket \"{}\" must be an absolute path", shorten(s)),
                format!("the default is \"{DEFAULT_CONTROL_SOCKET}\""),
            );
        } else if s.len() > 107 || s.contains('\0') {
            r.error_hint(
                v.span(),
                format!(
                    "control_socket path is {} bytes; a Unix socket path holds at most 107",
                    s.len()
                ),
                "use a shorter path",
            );
        } else {
            out.control_socket = PathBuf::from(s);
        }
    }
    if let Some(v) = &g.control_group {
        let s = v.get_ref();
        if s.is_empty()
            || s.len() > 32
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            r.error_hint(
                v.span(),
                format!("control_group \"{}\" is not a valid group name", shorten(s)),
                "use an existing group such as \"vipd\" (members may run `vipctl status`)",
            );
        } else {
            out.control_group = Some(s.clone());
        }
    }
    if let Some(v) = &g.metrics_listen {
        let s = v.get_ref();
        match s.parse::<std::net::SocketAddr>() {
            Ok(a) => out.metrics_listen = Some(a),
            Err(_) => r.error_hint(
                v.span(),
                format!("metrics_listen \"{}\" is not an address:port", shorten(s)),
                "for example \"127.0.0.1:9488\" or \"[::1]:9488\"",
            ),
        }
    }
    if let Some(v) = &g.receive_buffer
        && let Some(n) = ranged(r, v, "receive_buffer", None)
    {
        out.receive_buffer = usize::try_from(n).unwrap_or(DEFAULT_RECEIVE_BUFFER);
    }
    if let Some(v) = &g.startup_delay
        && let Some(d) = duration_in(r, v, "startup_delay")
    {
        out.startup_delay = d;
    }
    if let Some(v) = &g.multicast_group_v4 {
        match multicast_group(r, v, "multicast_group_v4") {
            Some(IpAddr::V4(a)) => out.multicast_group_v4 = a,
            Some(_) => r.error(v.span(), "multicast_group_v4 is an IPv6 group"),
            None => {}
        }
    }
    if let Some(v) = &g.multicast_group_v6 {
        match multicast_group(r, v, "multicast_group_v6") {
            Some(IpAddr::V6(a)) => out.multicast_group_v6 = a,
            Some(_) => r.error(v.span(), "multicast_group_v6 is an IPv4 group"),
            None => {}
        }
    }
    if let Some(v) = &g.vrrp_version
        && let Some(ver) = version(r, v, "vrrp_version")
    {
        out.vrrp_version = ver;
    }
    if let Some(v) = &g.checksum
        && let Some(c) = checksum(r, v)
    {
        out.checksum = c;
    }
    track::global(g, r, &mut out);
    out.garp = garp(
        r,
        &out.garp,
        GarpKeys {
            delay: g.garp_master_delay.as_ref(),
            repeat: g.garp_master_repeat.as_ref(),
            refresh: g.garp_master_refresh.as_ref(),
            refresh_repeat: g.garp_master_refresh_repeat.as_ref(),
            interval: g.garp_interval.as_ref(),
            lower_prio_repeat: g.garp_lower_prio_repeat.as_ref(),
            lower_prio_delay: g.garp_lower_prio_delay.as_ref(),
        },
    );
    out.lower_prio_no_advert = g
        .lower_prio_no_advert
        .as_ref()
        .is_some_and(|v| *v.get_ref());
    out.fast_preempt = g.fast_preempt.as_ref().is_some_and(|v| *v.get_ref());
    out
}

// ---------------------------------------------------------------------------------------------
// Instances

struct Validator<'r, 'a> {
    r: &'r mut Reporter<'a>,
    global: Global,
    /// instance name → line of its definition
    names: HashMap<String, usize>,
    /// (interface, family, vrid) → (instance name, line)
    vrids: HashMap<(String, Family, u8), (String, usize)>,
    /// VIP address → (instance name, line)
    vip_owner: HashMap<IpAddr, (String, usize)>,
    /// VMAC device name → instance name
    vmac_names: HashMap<String, String>,
    /// Active-active instances (no sync group may hold them).
    anycast: HashSet<String>,
    /// Tracker definitions, by name.
    trackers: TrackerTable,
    /// Where each instance's tracker weights are written.
    weight_sites: Vec<WeightSite>,
    /// Where each instance's keys are written.
    key_sites: Vec<KeySite>,
    /// What the host pass checks (programs, users).
    host: HostSites,
}

/// A VIP before family checks, with the span to blame.
struct VipAt {
    vip: Vip,
    span: Range<usize>,
}

/// A multicast group address: VRRP's must stay on the link (224.0.0.0/24, ff02::/16), since
/// adverts go out with TTL / hop limit 255 and receivers require it.
fn multicast_group(r: &mut Reporter<'_>, v: &S<String>, what: &str) -> Option<IpAddr> {
    let Ok(a) = v.get_ref().trim().parse::<IpAddr>() else {
        r.error(
            v.span(),
            format!("{what} \"{}\" is not an IP address", shorten(v.get_ref())),
        );
        return None;
    };
    let link_local = match a {
        IpAddr::V4(g) => g.octets()[..3] == [224, 0, 0],
        IpAddr::V6(g) => g.segments()[0] & 0xff0f == 0xff02,
    };
    if !a.is_multicast() {
        r.error_hint(
            v.span(),
            format!("{what} {a} is not a multicast address"),
            "224.0.0.18 and ff02::12 are VRRP's; use unicast_peers to send to addresses",
        );
        return None;
    }
    if !link_local {
        r.warn(
            v.span(),
            format!("{what} {a} is not a link-local group (224.0.0.0/24, ff02::/16)"),
            Some(
                "switches with IGMP/MLD snooping may not flood it; keepalived accepts it too"
                    .into(),
            ),
        );
    }
    Some(a)
}

/// The family of a virtual router that advertises no address: that of its source address,
/// else of its first unicast peer, else IPv4 (as keepalived).
fn vipless_family(raw: &RawInstance) -> Family {
    let parse = |s: &str| s.split('/').next().and_then(|a| a.parse::<IpAddr>().ok());
    raw.source_address
        .as_ref()
        .and_then(|v| parse(v.get_ref()))
        .or_else(|| {
            raw.unicast_peers
                .as_ref()
                .and_then(|l| l.get_ref().first())
                .and_then(|v| parse(v.get_ref()))
        })
        .or_else(|| {
            raw.unicast_peer
                .first()
                .and_then(|p| p.get_ref().address.as_ref())
                .and_then(|v| parse(v.get_ref()))
        })
        .map_or(Family::Ipv4, |a| Family::of(&a))
}

impl Validator<'_, '_> {
    /// Where `span` is, for a diagnostic in another file that points here.
    fn site(&self, span: Range<usize>) -> Site {
        let d = self
            .r
            .make(crate::diag::Severity::Warning, span, String::new(), None);
        Site {
            line: d.line,
            column: d.column,
            width: d.width,
            source_line: d.source_line,
        }
    }

    fn instance(&mut self, inst: &S<RawInstance>, index: usize) -> Option<Instance> {
        let header = inst.span();
        let raw = inst.get_ref();
        let before = self.r.diags.errors().count();

        let name = match &raw.name {
            Some(n) => check_name(self.r, n, "instance").then(|| n.get_ref().clone()),
            None => {
                self.r.error_hint(
                    header.clone(),
                    format!("instance #{} has no name", index + 1),
                    "add name = \"VI_1\" (unique, letters, digits, '_', '.', '-')",
                );
                None
            }
        };
        let label = name.clone().map_or_else(
            || format!("instance #{}", index + 1),
            |n| format!("instance `{n}`"),
        );
        if let (Some(n), Some(v)) = (&name, &raw.name) {
            let line = self.r.line_of(v.span().start);
            if let Some(first) = self.names.get(n) {
                self.r.error_hint(
                    v.span(),
                    format!("duplicate instance name `{n}` (first defined at line {first})"),
                    "instance names must be unique",
                );
            } else {
                self.names.insert(n.clone(), line);
            }
        }

        let interface = match &raw.interface {
            Some(v) => match ifname_problem(v.get_ref()) {
                None => Some(v.get_ref().clone()),
                Some(msg) => {
                    self.r.error(v.span(), msg);
                    None
                }
            },
            None => {
                self.r.error_hint(
                    header.clone(),
                    format!("{label} has no interface"),
                    "add interface = \"eth0\"",
                );
                None
            }
        };

        let announce = announce::announce(self.r, raw);
        let anycast =
            matches!(&announce, Some(Some(a)) if a.policy == AnnouncePolicy::ActiveActive);
        if let (true, Some(n)) = (anycast, &name) {
            self.anycast.insert(n.clone());
        }
        let vrid = match &raw.vrid {
            // Refused by announce::check_instance; no VRRP runs.
            _ if anycast => Some(0),
            Some(v) => u8_in(
                self.r,
                v,
                "vrid",
                Some("a VRID is 1..=255 and must be unique per interface and family".into()),
            ),
            None => {
                self.r.error_hint(
                    header.clone(),
                    format!("{label} has no vrid"),
                    "add vrid = 51 (1..=255, same on every router of this virtual router; keepalived's virtual_router_id)",
                );
                None
            }
        };

        let version = match &raw.version {
            Some(v) => version(self.r, v, "version"),
            None => Some(self.global.vrrp_version),
        };

        let priority = match &raw.priority {
            Some(v) if v.get_ref().0 == 0 => {
                self.r.error_hint(
                    v.span(),
                    "priority 0 is reserved: a master sends it when it resigns",
                    "use 1..=254 (255 = address owner)",
                );
                None
            }
            Some(v) => u8_in(
                self.r,
                v,
                "priority",
                Some("use 1..=254 (255 = address owner)".into()),
            ),
            None => Some(DEFAULT_PRIORITY),
        };
        if let Some(v) = &raw.priority
            && v.get_ref().0 == 255
        {
            self.r.warn(
                    v.span(),
                    "priority 255 claims address ownership; keepalived users usually mean 254",
                    Some(
                        "255 makes this router the owner (it always wins, never waits, and accepts VIP traffic); keep it only if the VIPs are real addresses of this host".into(),
                    ),
                );
        }

        // VIPs, every form, file order: the short list, the tables, then `excluded_vips`.
        let mut vips: Vec<VipAt> = Vec::new();
        let mut seen_vip: HashMap<IpAddr, usize> = HashMap::new();
        let short = raw
            .vips
            .as_ref()
            .map_or(&[][..], |v| v.get_ref().as_slice());
        let excluded_short = raw
            .excluded_vips
            .as_ref()
            .map_or(&[][..], |v| v.get_ref().as_slice());
        let plain = |addr, prefix_len, excluded| Vip {
            addr,
            prefix_len,
            label: None,
            scope: Scope::Global,
            interface: None,
            excluded,
        };
        for v in short {
            if let Some((addr, prefix_len)) = vip_addr(self.r, v) {
                vips.push(VipAt {
                    vip: plain(addr, prefix_len, false),
                    span: v.span(),
                });
            }
        }
        for t in &raw.vip {
            if let Some(v) = self.long_vip(t, interface.as_deref()) {
                vips.push(v);
            }
        }
        for v in excluded_short {
            if let Some((addr, prefix_len)) = vip_addr(self.r, v) {
                vips.push(VipAt {
                    vip: plain(addr, prefix_len, true),
                    span: v.span(),
                });
            }
        }
        let advertised: Vec<&VipAt> = vips.iter().filter(|v| !v.vip.excluded).collect();
        if let Some(v) = advertised.get(MAX_VIPS) {
            self.r.error_hint(
                v.span.clone(),
                format!(
                    "too many advertised VIPs in {label}: at most {MAX_VIPS} (VRRP's address count is one byte)"
                ),
                "mark the others excluded (excluded_vips, or excluded = true): they are held with the instance but not advertised, as keepalived's virtual_ipaddress_excluded",
            );
        }
        let no_vips = raw.no_vips.as_ref().is_some_and(|v| *v.get_ref());
        let any_written = !short.is_empty() || !raw.vip.is_empty();
        if no_vips {
            if let (true, Some(v)) = (any_written, raw.no_vips.as_ref()) {
                self.r.warn(
                    v.span(),
                    format!("{label} has no_vips = true and VIPs"),
                    Some("the VIPs are held as usual; remove no_vips, or the VIPs".into()),
                );
            }
        } else if !any_written && raw.excluded_vips.is_none() && raw.vip.is_empty() {
            if version == Some(Version::V2) {
                self.r.warn(
                    header.clone(),
                    format!("{label} has no virtual addresses (adverts carry none; keepalived accepts this for VRRPv2)"),
                    Some("add vips = [\"10.0.0.100/24\"], or no_vips = true if something else moves the address".into()),
                );
            } else {
                self.r.error_hint(
                    header.clone(),
                    format!("{label} has no virtual addresses"),
                    "add vips = [\"10.0.0.100/24\"] (keepalived's virtual_ipaddress), or no_vips = true if something else moves the address (a cloud API from a notify program)",
                );
            }
        } else if advertised.is_empty() && version != Some(Version::V2) {
            self.r.error_hint(
                header.clone(),
                format!("{label} has only excluded VIPs: VRRPv3 adverts must carry at least one"),
                "advertise one of them (vips), or set no_vips = true",
            );
        }
        for (i, v) in vips.iter().enumerate() {
            if let Some(&first) = seen_vip.get(&v.vip.addr) {
                let line = self.r.line_of(vips[first].span.start);
                self.r.error(
                    v.span.clone(),
                    format!(
                        "VIP {} is listed twice in {label} (also at line {line})",
                        v.vip.addr
                    ),
                );
            } else {
                seen_vip.insert(v.vip.addr, i);
            }
        }

        // One family per virtual router, that of its advertised VIPs (excluded VIPs may be
        // of either); without any, that of the source address or the first peer, else IPv4.
        let family = match advertised.first() {
            Some(v) => Some(v.vip.family()),
            None => Some(vipless_family(raw)),
        };
        // Active-active runs no VRRP: its VIPs may be of both families.
        if let (Some(fam), Some(first), false) = (family, advertised.first(), anycast) {
            let first_line = self.r.line_of(first.span.start);
            let first_vip = first.vip.to_string();
            for v in advertised.iter().skip(1) {
                if v.vip.family() != fam {
                    self.r.error_hint(
                        v.span.clone(),
                        format!(
                            "VIP {} is {} but {label} is {fam} (first VIP {first_vip} at line {first_line})",
                            v.vip,
                            v.vip.family()
                        ),
                        "a virtual router advertises one address family: put the other family in its own [[instance]] (it may reuse the vrid), or mark it excluded (held, not advertised)",
                    );
                }
            }
        }

        // RFC 9568 §5.2.9: the first IPv6 address of an advert is the virtual router's
        // link-local address. keepalived sends what it is given; so do we, but say so.
        if let (Some(Family::Ipv6), Some(first), false) = (family, advertised.first(), anycast) {
            let link_local =
                matches!(first.vip.addr, std::net::IpAddr::V6(a) if a.is_unicast_link_local());
            if !link_local {
                self.r.warn(
                    first.span.clone(),
                    format!(
                        "the first IPv6 VIP of {label} is {}, not a link-local address (RFC 9568 wants the virtual router's link-local address first)",
                        first.vip
                    ),
                    Some("put a link-local VIP such as fe80::<vrid>/64 first; routers that follow the RFC strictly may otherwise ignore the adverts".into()),
                );
            }
        }

        // Version-dependent checks.
        if let (Some(Version::V2), Some(Family::Ipv6), false) = (version, family, anycast) {
            let (span, hint) = match &raw.version {
                Some(v) => (v.span(), "use version = 3 for IPv6"),
                None => (
                    advertised
                        .first()
                        .map_or(header.clone(), |v| v.span.clone()),
                    "set version = 3 in this instance (global vrrp_version is 2)",
                ),
            };
            self.r.error_hint(
                span,
                format!("VRRPv2 supports IPv4 only, but {label} has IPv6 VIPs"),
                hint,
            );
        }

        let advert_interval = match (&raw.advert_interval, version) {
            (Some(v), Some(ver)) => self.advert_interval(v, ver),
            (Some(v), None) => duration(self.r, v, "advert_interval"),
            (None, _) => Some(DEFAULT_ADVERT_INTERVAL),
        };

        let preempt = raw.preempt.as_ref().is_none_or(|v| *v.get_ref());
        let preempt_delay = match &raw.preempt_delay {
            Some(v) => {
                let d = duration_in(self.r, v, "preempt_delay");
                if d.is_some_and(|d| !d.is_zero()) && !preempt {
                    self.r.warn(
                        v.span(),
                        "preempt_delay has no effect with preempt = false",
                        Some("remove preempt_delay, or set preempt = true".into()),
                    );
                }
                d
            }
            None => Some(Duration::ZERO),
        };
        // keepalived's default outside strict mode: a load balancer must receive the
        // traffic for its VIP (RFC 9568 Accept_Mode).
        let accept = raw.accept.as_ref().is_none_or(|v| *v.get_ref());
        let fast_preempt = match &raw.fast_preempt {
            Some(v) => {
                if *v.get_ref() && !preempt {
                    self.r.warn(
                        v.span(),
                        "fast_preempt has no effect with preempt = false",
                        Some("remove fast_preempt, or set preempt = true".into()),
                    );
                }
                *v.get_ref()
            }
            None => self.global.fast_preempt,
        };

        // Source address and peers.
        let source_address = raw.source_address.as_ref().and_then(|v| {
            let a = plain_addr(self.r, v, "source_address")?;
            if let Some(fam) = family
                && Family::of(&a) != fam
            {
                self.r.error(
                    v.span(),
                    format!(
                        "source_address {a} is {} but {label}'s VIPs are {fam}",
                        Family::of(&a)
                    ),
                );
                return None;
            }
            if seen_vip.contains_key(&a) {
                self.r.error_hint(
                    v.span(),
                    format!("source_address {a} is one of {label}'s VIPs"),
                    "use this host's own (primary) address on the interface",
                );
                return None;
            }
            Some(a)
        });
        let default_min_ttl = raw
            .unicast_min_ttl
            .as_ref()
            .and_then(|v| u8_in(self.r, v, "unicast_min_ttl", None));
        // Short entries, then `[[instance.unicast_peer]]` tables: (address, min, max).
        let mut entries: Vec<PeerEntry<'_>> = Vec::new();
        if let Some(list) = &raw.unicast_peers {
            entries.extend(list.get_ref().iter().map(|v| (v, None, None, v.span())));
        }
        for t in &raw.unicast_peer {
            let p = t.get_ref();
            let Some(addr) = &p.address else {
                self.r.error_hint(
                    t.span(),
                    "[[instance.unicast_peer]] has no address",
                    "add address = \"10.0.0.12\"",
                );
                continue;
            };
            let min = p
                .min_ttl
                .as_ref()
                .and_then(|v| u8_in(self.r, v, "min_ttl", None));
            let max = p
                .max_ttl
                .as_ref()
                .and_then(|v| u8_in(self.r, v, "max_ttl", None));
            if let (Some(lo), Some(hi)) = (min.or(default_min_ttl), max)
                && lo > hi
            {
                self.r.error(
                    t.span(),
                    format!(
                        "unicast peer {}: min_ttl {lo} is above max_ttl {hi}",
                        addr.get_ref()
                    ),
                );
                continue;
            }
            entries.push((addr, min, max, t.span()));
        }
        let mut unicast_peers = Vec::new();
        let mut peer_ttl = Vec::new();
        let mut seen: HashMap<IpAddr, usize> = HashMap::new();
        for (i, (v, min, max, span)) in entries.into_iter().enumerate() {
            if i == MAX_PEERS {
                self.r.error(
                    span.clone(),
                    format!("too many unicast_peers in {label}: at most {MAX_PEERS}"),
                );
            }
            let Some(a) = plain_addr(self.r, v, "unicast peer") else {
                continue;
            };
            if let Some(fam) = family
                && Family::of(&a) != fam
            {
                self.r.error_hint(
                    v.span(),
                    format!(
                        "unicast peer {a} is {} but {label}'s VIPs are {fam}",
                        Family::of(&a)
                    ),
                    "peers must be reachable in the VIPs' family",
                );
                continue;
            }
            if Some(a) == source_address {
                self.r.error_hint(
                    v.span(),
                    format!("unicast peer {a} is this router's own source_address"),
                    "list only the other routers",
                );
                continue;
            }
            if let Some(&line) = seen.get(&a) {
                self.r.error(
                    v.span(),
                    format!("unicast peer {a} is listed twice (also at line {line})"),
                );
                continue;
            }
            seen.insert(a, self.r.line_of(v.span().start));
            unicast_peers.push(a);
            let lo = min.or(default_min_ttl).unwrap_or(1);
            let hi = max.unwrap_or(255);
            if (lo, hi) != (1, 255) {
                peer_ttl.push(vipd_proto::rx::PeerTtl {
                    peer: a,
                    min: lo,
                    max: hi,
                });
            }
        }
        if let Some(v) = &raw.unicast_min_ttl
            && unicast_peers.is_empty()
        {
            self.r.error_hint(
                v.span(),
                format!("unicast_min_ttl in {label}, which has no unicast peers"),
                "multicast adverts must always arrive with TTL 255; remove it",
            );
        }
        let mut allowed_sources = Vec::new();
        if let Some(list) = &raw.allowed_sources {
            if !unicast_peers.is_empty() {
                self.r.error_hint(
                    list.span(),
                    format!("allowed_sources in {label}, which has unicast peers"),
                    "with unicast, adverts are accepted from the unicast peers only; remove allowed_sources",
                );
            }
            for (i, v) in list.get_ref().iter().enumerate() {
                if i == MAX_PEERS {
                    self.r.error(
                        v.span(),
                        format!("too many allowed_sources in {label}: at most {MAX_PEERS}"),
                    );
                }
                let Some(a) = plain_addr(self.r, v, "allowed source") else {
                    continue;
                };
                if let Some(fam) = family
                    && Family::of(&a) != fam
                {
                    self.r.error(
                        v.span(),
                        format!(
                            "allowed source {a} is {} but {label}'s VIPs are {fam}",
                            Family::of(&a)
                        ),
                    );
                    continue;
                }
                if allowed_sources.contains(&a) {
                    self.r
                        .error(v.span(), format!("allowed source {a} is listed twice"));
                    continue;
                }
                allowed_sources.push(a);
            }
            if list.get_ref().is_empty() {
                self.r.error_hint(
                    list.span(),
                    format!("allowed_sources in {label} is empty: no advert would be accepted"),
                    "list the other routers' addresses, or remove the key",
                );
            }
        }
        let default_group = match family {
            Some(Family::Ipv6) => IpAddr::V6(self.global.multicast_group_v6),
            _ => IpAddr::V4(self.global.multicast_group_v4),
        };
        let multicast_group = match &raw.multicast_group {
            None => Some(default_group),
            Some(v) => {
                let g = multicast_group(self.r, v, "multicast_group");
                if !unicast_peers.is_empty() {
                    self.r.warn(
                        v.span(),
                        format!("multicast_group in {label}, which has unicast peers: not used"),
                        Some("remove it, or the unicast peers".into()),
                    );
                }
                match (g, family) {
                    (Some(a), Some(fam)) if Family::of(&a) != fam => {
                        self.r.error(
                            v.span(),
                            format!(
                                "multicast_group {a} is {} but {label} is {fam}",
                                Family::of(&a)
                            ),
                        );
                        None
                    }
                    (g, _) => g,
                }
            }
        };
        let vmac_on = raw.vmac.as_ref().is_some_and(|v| *v.get_ref());
        let vmac = match (&raw.vmac_interface, vmac_on) {
            (Some(v), true) => match ifname_problem(v.get_ref()) {
                None if Some(v.get_ref()) == interface.as_ref() => {
                    self.r.error(
                        v.span(),
                        "vmac_interface is the instance's interface itself",
                    );
                    None
                }
                None => Some(Some(v.get_ref().clone())),
                Some(msg) => {
                    self.r.error(v.span(), msg);
                    None
                }
            },
            (Some(v), false) => {
                self.r.warn(
                    v.span(),
                    "vmac_interface without vmac = true: no VMAC is made",
                    Some("add vmac = true".into()),
                );
                Some(None)
            }
            (None, true) => Some(vrid.map(|id| match family {
                Some(Family::Ipv6) => format!("vrrp6.{id}"),
                _ => format!("vrrp.{id}"),
            })),
            (None, false) => Some(None),
        };
        if let (Some(Some(dev)), Some(n)) = (&vmac, &name) {
            if let Some(other) = self.vmac_names.get(dev) {
                let span = raw
                    .vmac_interface
                    .as_ref()
                    .map(S::span)
                    .or(raw.vmac.as_ref().map(S::span))
                    .unwrap_or(header.clone());
                self.r.error_hint(
                    span,
                    format!("VMAC device {dev} is also instance `{other}`'s"),
                    "give one of them another vmac_interface",
                );
            } else {
                self.vmac_names.insert(dev.clone(), n.clone());
            }
        }
        let vmac_xmit_base = raw.vmac_xmit_base.as_ref().is_some_and(|v| *v.get_ref());
        if let (false, Some(v)) = (vmac_on, &raw.vmac_xmit_base)
            && *v.get_ref()
        {
            self.r.warn(
                v.span(),
                "vmac_xmit_base without vmac = true has no effect",
                None,
            );
        }
        let max_adopted_interval = match &raw.max_adopted_interval {
            None => None,
            Some(v) => {
                let d = duration_in(self.r, v, "max_adopted_interval");
                if version == Some(Version::V2) {
                    self.r.error_hint(
                        v.span(),
                        "max_adopted_interval is VRRPv3-only: a VRRPv2 backup never adopts its master's interval (it drops adverts with another interval)",
                        "remove it, or set version = 3",
                    );
                }
                if let (Some(d), Some(ours)) = (d, advert_interval)
                    && d < ours
                {
                    self.r.error_hint(
                        v.span(),
                        format!(
                            "max_adopted_interval {} is below {label}'s own advert_interval {}",
                            format_duration(d),
                            format_duration(ours)
                        ),
                        "the cap must allow at least the interval this virtual router is configured with",
                    );
                }
                d
            }
        };

        let auth_pass = match (&raw.auth_pass, version) {
            (Some(v), Some(Version::V3)) => {
                self.r.error_hint(
                    v.span(),
                    "auth_pass is VRRPv2-only: VRRPv3 (RFC 9568) has no authentication",
                    "remove auth_pass, or set version = 2",
                );
                None
            }
            (Some(v), Some(Version::V2)) => self.password(
                v,
                "auth_pass",
                "auth_pass travels in clear text in every advertisement: it prevents accidents, not attacks",
                "VRRPv2 carries exactly 8 bytes of authentication data; keepalived silently truncates longer ones",
            ),
            _ => None,
        };

        let auth_ah = match (&raw.auth_ah, version) {
            (Some(v), Some(Version::V3)) => {
                self.r.error_hint(
                    v.span(),
                    "auth_ah is VRRPv2-only: VRRPv3 (RFC 9568) has no authentication",
                    "use auth_hmac, or set version = 2",
                );
                None
            }
            (Some(v), _) if family == Some(Family::Ipv6) => {
                self.r.error_hint(
                    v.span(),
                    "auth_ah is IPv4-only (as keepalived's AH)",
                    "use auth_hmac for IPv6",
                );
                None
            }
            (Some(v), _) if raw.auth_pass.is_some() || raw.auth_hmac.is_some() => {
                self.r.error_hint(
                    v.span(),
                    "auth_ah excludes auth_pass and auth_hmac",
                    "keep one authentication",
                );
                None
            }
            (Some(v), Some(Version::V2)) => self.password(
                v,
                "auth_ah",
                "auth_ah is legacy (RFC 2338's IPsec AH with HMAC-MD5-96): keep it only while keepalived peers use it, then move the pair to auth_hmac",
                "keepalived keys AH with the first 8 bytes of auth_pass",
            ),
            _ => None,
        };
        let auth_hmac = match (&raw.auth_hmac, &raw.auth_pass) {
            (Some(_), Some(p)) => {
                self.r.error_hint(
                    p.span(),
                    "auth_pass and auth_hmac exclude each other",
                    "keep auth_hmac (auth_pass is clear text on the wire)",
                );
                None
            }
            (Some(a), None) => self.auth_hmac(
                a,
                name.as_deref().unwrap_or(""),
                advert_interval.unwrap_or(Duration::from_secs(1)),
            ),
            (None, _) => None,
        };

        let checksum = match &raw.checksum {
            Some(v) => {
                let c = checksum(self.r, v);
                if version == Some(Version::V2) {
                    self.r.error_hint(
                        v.span(),
                        "checksum applies to VRRPv3 over IPv4 only; VRRPv2 checksums never include a pseudo-header",
                        "remove checksum from this instance",
                    );
                } else if family == Some(Family::Ipv6) {
                    self.r.error_hint(
                        v.span(),
                        "checksum applies to VRRPv3 over IPv4 only; over IPv6 the pseudo-header is always included",
                        "remove checksum from this instance",
                    );
                }
                c.unwrap_or(self.global.checksum)
            }
            None => self.global.checksum,
        };

        let mut garp = garp(
            self.r,
            &self.global.garp,
            GarpKeys {
                delay: raw.garp_master_delay.as_ref(),
                repeat: raw.garp_master_repeat.as_ref(),
                refresh: raw.garp_master_refresh.as_ref(),
                refresh_repeat: raw.garp_master_refresh_repeat.as_ref(),
                interval: raw.garp_interval.as_ref(),
                lower_prio_repeat: raw.garp_lower_prio_repeat.as_ref(),
                lower_prio_delay: raw.garp_lower_prio_delay.as_ref(),
            },
        );
        let lower_prio_no_advert = raw
            .lower_prio_no_advert
            .as_ref()
            .map_or(self.global.lower_prio_no_advert, |v| *v.get_ref());
        let fault_on_link_down = raw.fault_on_link_down.as_ref().is_none_or(|v| *v.get_ref());

        // VRID unique per (interface, family).
        if let (Some(n), Some(ifname), Some(id), Some(fam), Some(v)) =
            (&name, &interface, vrid, family, &raw.vrid)
        {
            let key = (ifname.clone(), fam, id);
            if let Some((other, line)) = self.vrids.get(&key) {
                let free = (1..=255u8)
                    .map(|c| c.wrapping_add(id.wrapping_sub(1)))
                    .find(|&c| c != 0 && !self.vrids.contains_key(&(ifname.clone(), fam, c)));
                let hint = match free {
                    Some(c) => format!(
                        "each virtual router on a link needs its own vrid; {c} is free on {ifname} ({fam})"
                    ),
                    None => "each virtual router on a link needs its own vrid".to_string(),
                };
                self.r.error_hint(
                    v.span(),
                    format!("vrid {id} is already used on {ifname} ({fam}) by instance `{other}` (line {line})"),
                    hint,
                );
            } else {
                let line = self.r.line_of(v.span().start);
                self.vrids.insert(key, (n.clone(), line));
            }
        }

        // The same VIP in two instances makes them fight over it.
        if let Some(n) = &name {
            for v in &vips {
                if let Some((other, line)) = self.vip_owner.get(&v.vip.addr) {
                    if other != n {
                        self.r.warn(
                            v.span.clone(),
                            format!(
                                "VIP {} is also a VIP of instance `{other}` (line {line})",
                                v.vip.addr
                            ),
                            Some(
                                "two virtual routers holding one address will fight over it".into(),
                            ),
                        );
                    }
                } else {
                    let line = self.r.line_of(v.span.start);
                    self.vip_owner.insert(v.vip.addr, (n.clone(), line));
                }
            }
        }

        if let Some(n) = &name {
            use crate::keys::instance as k;
            let spans = [
                (k::name, Some(header.clone())),
                (k::interface, raw.interface.as_ref().map(S::span)),
                (k::vrid, raw.vrid.as_ref().map(S::span)),
                (k::version, raw.version.as_ref().map(S::span)),
                (k::priority, raw.priority.as_ref().map(S::span)),
                (
                    k::advert_interval,
                    raw.advert_interval.as_ref().map(S::span),
                ),
                (k::preempt, raw.preempt.as_ref().map(S::span)),
                (
                    k::vips,
                    raw.vips
                        .as_ref()
                        .map(S::span)
                        .or_else(|| raw.vip.first().map(S::span)),
                ),
                (k::source_address, raw.source_address.as_ref().map(S::span)),
                (
                    k::unicast_peers,
                    raw.unicast_peers
                        .as_ref()
                        .map(S::span)
                        .or_else(|| raw.unicast_peer.first().map(S::span)),
                ),
                (k::auth_pass, raw.auth_pass.as_ref().map(S::span)),
                (k::auth_ah, raw.auth_ah.as_ref().map(S::span)),
                (k::auth_hmac, raw.auth_hmac.as_ref().map(S::span)),
                (
                    k::multicast_group,
                    raw.multicast_group.as_ref().map(S::span),
                ),
                (k::vmac, raw.vmac.as_ref().map(S::span)),
                (k::announce, raw.announce.as_ref().map(S::span)),
                (k::checksum, raw.checksum.as_ref().map(S::span)),
            ];
            for (key, span) in spans {
                if let Some(span) = span {
                    let site = self.site(span);
                    self.key_sites.push(KeySite {
                        instance: n.clone(),
                        key,
                        site,
                    });
                }
            }
        }

        let track = self.track_refs(
            track::instance_lists(raw),
            name.as_deref(),
            priority,
            &label,
        );
        let notify = self.notify(&NotifyKeys::of_instance(raw));
        let mut held = routes::routes_and_rules(self.r, raw, &label);
        if let Some(Some(a)) = &announce {
            announce::check_instance(self.r, raw, a, &label);
            // The VIPs are checked even when a route is wrong (the instance fails either way).
            let mut unused = Vec::new();
            let routes = held.as_mut().map_or(&mut unused, |h| &mut h.0);
            announce::place(self.r, a, &mut vips, routes, &label);
            // Nobody on the link needs to learn a MAC: the route moves the traffic.
            garp.master_repeat = 0;
            garp.master_refresh = None;
            garp.master_refresh_repeat = 0;
            garp.lower_prio_repeat = Some(0);
        }

        if self.r.diags.errors().count() != before {
            return None;
        }
        Some(Instance {
            name: name?,
            interface: interface?,
            vrid: vrid?,
            version: version?,
            family: family?,
            priority: priority?,
            advert_interval: advert_interval?,
            preempt,
            preempt_delay: preempt_delay?,
            fast_preempt,
            accept,
            routes: held.as_ref().map(|h| h.0.clone())?,
            rules: held.map(|h| h.1)?,
            vips: vips.into_iter().map(|v| v.vip).collect(),
            source_address,
            unicast_peers,
            peer_ttl,
            allowed_sources,
            multicast_group: multicast_group?,
            vmac: vmac?,
            vmac_xmit_base,
            max_adopted_interval,
            auth_pass,
            auth_ah,
            auth_hmac,
            checksum,
            garp,
            lower_prio_no_advert,
            fault_on_link_down,
            track,
            notify,
            announce: announce?,
        })
    }

    /// A VRRPv2 password (`auth_pass`, `auth_ah`): 1 to 8 printable ASCII characters; said
    /// `warning` when it is one, an error with `hint` when not.
    fn password(
        &mut self,
        v: &S<String>,
        key: &str,
        warning: &str,
        hint: &str,
    ) -> Option<AuthPass> {
        match AuthPass::new(v.get_ref()) {
            Some(p) => {
                self.r.warn(v.span(), warning, None);
                Some(p)
            }
            None => {
                self.r.error_hint(
                    v.span(),
                    format!(
                        "{key} must be 1 to 8 printable ASCII characters (found {} bytes)",
                        v.get_ref().len()
                    ),
                    hint,
                );
                None
            }
        }
    }

    fn long_vip(&mut self, t: &S<RawVip>, interface: Option<&str>) -> Option<VipAt> {
        let raw = t.get_ref();
        let Some(addr_v) = &raw.address else {
            self.r.error_hint(
                t.span(),
                "[[instance.vip]] has no address",
                "add address = \"10.0.0.100/24\"",
            );
            return None;
        };
        let parsed = vip_addr(self.r, addr_v);
        let scope = match &raw.scope {
            Some(v) => scope(self.r, v),
            None => Some(Scope::Global),
        };
        let label = match &raw.label {
            None => Some(None),
            Some(v) => self.label(v, parsed.map(|(a, _)| a), interface).map(Some),
        };
        let device = match &raw.interface {
            None => Some(None),
            Some(v) => match ifname_problem(v.get_ref()) {
                // The instance's own interface is the default, not another device.
                None => {
                    Some((interface != Some(v.get_ref().as_str())).then(|| v.get_ref().clone()))
                }
                Some(msg) => {
                    self.r.error(v.span(), msg);
                    None
                }
            },
        };
        let excluded = raw.excluded.as_ref().is_some_and(|v| *v.get_ref());
        let ((addr, prefix_len), scope, label, device) = (parsed?, scope?, label?, device?);
        Some(VipAt {
            vip: Vip {
                addr,
                prefix_len,
                label,
                scope,
                interface: device,
                excluded,
            },
            span: addr_v.span(),
        })
    }

    fn label(
        &mut self,
        v: &S<String>,
        addr: Option<IpAddr>,
        interface: Option<&str>,
    ) -> Option<String> {
        let l = v.get_ref();
        if addr.is_some_and(|a| a.is_ipv6()) {
            self.r.error_hint(
                v.span(),
                "labels exist for IPv4 addresses only",
                "remove label from this IPv6 VIP",
            );
            return None;
        }
        // Any label of up to 15 bytes, as keepalived (OpenShift's `label vip`): the kernel
        // takes it; only iproute2 insists on the "<dev>:" prefix (`ip addr add ... label`).
        let _ = interface;
        if l.is_empty()
            || l.len() > 15
            || l.chars()
                .any(|c| c.is_whitespace() || c == '/' || c.is_control())
        {
            self.r.error_hint(
                v.span(),
                format!("label \"{}\" is not a valid interface label", shorten(l)),
                "at most 15 bytes, no whitespace or '/'",
            );
            return None;
        }
        Some(l.clone())
    }

    fn advert_interval(&mut self, v: &S<String>, ver: Version) -> Option<Duration> {
        let d = duration(self.r, v, "advert_interval")?;
        let shown = format_duration(d);
        match ver {
            Version::V2 => {
                let secs = d.as_secs();
                if d < Duration::from_secs(1) {
                    self.r.error_hint(
                        v.span(),
                        format!("advert_interval {shown} is below VRRPv2's minimum of 1s"),
                        "VRRPv2 counts whole seconds; use version = 3 for sub-second adverts",
                    );
                    None
                } else if d.subsec_nanos() != 0 {
                    self.r.error_hint(
                        v.span(),
                        format!("advert_interval {shown} is not a whole number of seconds (VRRPv2 counts seconds)"),
                        format!("use {secs}s or {}s, or version = 3", secs + 1),
                    );
                    None
                } else if secs > 255 {
                    self.r.error(
                        v.span(),
                        format!("advert_interval {shown} is out of range for VRRPv2 (1s..=255s)"),
                    );
                    None
                } else {
                    Some(d)
                }
            }
            Version::V3 => {
                if d < V3_MIN_INTERVAL || d > V3_MAX_INTERVAL {
                    self.r.error_hint(
                        v.span(),
                        format!(
                            "advert_interval {shown} is out of range for VRRPv3 (10ms..=40.95s)"
                        ),
                        "the interval is a 12-bit count of centiseconds",
                    );
                    return None;
                }
                let step = 10 * MS;
                let nanos = d.as_nanos();
                let step_n = step.as_nanos();
                if nanos % step_n != 0 {
                    let lo =
                        Duration::from_nanos(u64::try_from(nanos / step_n * step_n).unwrap_or(0));
                    let hi = lo + step;
                    let hint = if lo < V3_MIN_INTERVAL {
                        format!("use {}", format_duration(hi))
                    } else {
                        format!("use {} or {}", format_duration(lo), format_duration(hi))
                    };
                    self.r.error_hint(
                        v.span(),
                        format!("advert_interval {shown} is not a multiple of 10ms (VRRPv3 counts centiseconds)"),
                        hint,
                    );
                    return None;
                }
                if d < 100 * MS {
                    self.r.warn(
                        v.span(),
                        format!("advert_interval {shown} is very short: a backup takes over after ~3 missed adverts ({})", format_duration(d * 3)),
                        Some("scheduling or network jitter can then cause spurious failovers; 100ms or more is safer".into()),
                    );
                }
                Some(d)
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sync groups

    /// The sync groups, with the span of each one's name (for [`Validator::group_tracking`]).
    fn sync_groups(&mut self, groups: &[S<RawSyncGroup>]) -> (Vec<SyncGroup>, Vec<Range<usize>>) {
        let mut out = Vec::new();
        let mut spans = Vec::new();
        let mut group_names: HashMap<String, usize> = HashMap::new();
        // instance → (group, line)
        let mut member_of: HashMap<String, (String, usize)> = HashMap::new();
        // File order, so that ties in "did you mean" resolve the same way every time.
        let mut known: Vec<(&str, usize)> =
            self.names.iter().map(|(k, &l)| (k.as_str(), l)).collect();
        known.sort_by_key(|&(k, l)| (l, k));
        let known: Vec<String> = known.into_iter().map(|(k, _)| k.to_string()).collect();
        for (i, g) in groups.iter().take(MAX_SYNC_GROUPS).enumerate() {
            let raw = g.get_ref();
            let before = self.r.diags.errors().count();
            let name = match &raw.name {
                Some(n) if check_name(self.r, n, "sync_group") => {
                    let s = n.get_ref().clone();
                    if let Some(line) = group_names.get(&s) {
                        self.r.error(
                            n.span(),
                            format!(
                                "duplicate sync_group name `{s}` (first defined at line {line})"
                            ),
                        );
                    } else {
                        group_names.insert(s.clone(), self.r.line_of(n.span().start));
                    }
                    Some(s)
                }
                Some(_) => None,
                None => {
                    self.r.error_hint(
                        g.span(),
                        format!("sync_group #{} has no name", i + 1),
                        "add name = \"G1\"",
                    );
                    None
                }
            };
            let gl = name.clone().map_or_else(
                || format!("sync_group #{}", i + 1),
                |n| format!("sync_group `{n}`"),
            );
            let mut members = Vec::new();
            match &raw.instances {
                None => {} // warned below, as keepalived: the group is removed

                Some(list) if list.get_ref().len() > MAX_INSTANCES => self.r.error(
                    list.span(),
                    format!("{gl} lists more than {MAX_INSTANCES} instances"),
                ),
                Some(list) => {
                    let mut seen = HashSet::new();
                    for m in list.get_ref() {
                        let s = m.get_ref();
                        if !self.names.contains_key(s) {
                            // Hints cost an edit distance per known name: only while they are shown.
                            let hint = (!self.r.is_full())
                                .then(|| did_you_mean(s, known.iter().map(String::as_str)))
                                .flatten()
                                .map(|k| format!("did you mean `{k}`?"));
                            // keepalived ignores such a member (with a warning); so does vipd.
                            self.r.warn(
                                m.span(),
                                format!(
                                    "{gl} refers to unknown instance `{}`: ignored",
                                    shorten(s)
                                ),
                                hint,
                            );
                            continue;
                        }
                        if !seen.insert(s.clone()) {
                            self.r
                                .error(m.span(), format!("instance `{s}` is listed twice in {gl}"));
                            continue;
                        }
                        if self.anycast.contains(s) {
                            self.r.error_hint(
                                m.span(),
                                format!("instance `{s}` announces active-active and cannot be in {gl}"),
                                "a sync group moves VRRP masters together; an active-active instance has none",
                            );
                            continue;
                        }
                        if let Some((other, line)) = member_of.get(s) {
                            self.r.error_hint(
                                m.span(),
                                format!("instance `{s}` is already in sync_group `{other}` (line {line})"),
                                "an instance can belong to one sync group only",
                            );
                            continue;
                        }
                        if let Some(n) = &name {
                            member_of
                                .insert(s.clone(), (n.clone(), self.r.line_of(m.span().start)));
                        }
                        members.push(s.clone());
                    }
                }
            }
            // keepalived's rules: a group without (known) members is removed, a group of one
            // is kept; both with a warning.
            let at = raw.instances.as_ref().map_or(g.span(), S::span);
            match members.len() {
                0 => self.r.warn(
                    at,
                    format!("{gl} has no instances: ignored"),
                    Some("add instances = [\"VI_1\", \"VI_2\"], or remove the sync_group".into()),
                ),
                1 => self.r.warn(
                    at,
                    format!("{gl} has only one instance: this probably isn't what you want"),
                    Some(
                        "a group of one is just the instance (plus the group's notify programs)"
                            .into(),
                    ),
                ),
                _ => {}
            }
            let notify = self.notify(&NotifyKeys::of_group(raw));
            let track = self.track_refs(track::group_lists(raw), None, None, &gl);
            let tracking_weight = raw.tracking_weight.as_ref().is_some_and(|v| *v.get_ref());
            if self.r.diags.errors().count() == before
                && !members.is_empty()
                && let Some(name) = name
            {
                spans.push(raw.name.as_ref().map_or(g.span(), |n| n.span()));
                out.push(SyncGroup {
                    name,
                    instances: members,
                    tracking_weight,
                    track,
                    notify,
                });
            }
        }
        (out, spans)
    }

    /// keepalived's tracking rules for sync groups: every member follows the group's own
    /// trackers, and unless the group sets `tracking_weight = true` every member tracker
    /// acts as weight 0 (its failure is a FAULT of the whole group): a weight on one member
    /// cannot move the group (the group moves only when every member wants to), so keepalived
    /// ignores it, and so does vipd, saying so.
    fn group_tracking(
        &mut self,
        instances: &mut [Instance],
        groups: &[SyncGroup],
        spans: &[Range<usize>],
    ) {
        for (g, span) in groups.iter().zip(spans) {
            let mut ignored: Vec<String> = Vec::new();
            for inst in instances
                .iter_mut()
                .filter(|i| g.instances.contains(&i.name))
            {
                for t in &g.track {
                    if !inst
                        .track
                        .iter()
                        .any(|m| m.kind == t.kind && m.name == t.name)
                    {
                        inst.track.push(t.clone());
                    }
                }
                if g.tracking_weight {
                    continue;
                }
                for t in inst.track.iter_mut().filter(|t| t.weight != 0) {
                    ignored.push(format!("{}: {} {}", inst.name, t.name, t.weight));
                    t.weight = 0;
                    for site in self.weight_sites.iter_mut().filter(|s| {
                        s.instance == inst.name && s.kind == t.kind && s.tracker == t.name
                    }) {
                        site.weight = 0;
                    }
                }
            }
            if !ignored.is_empty() {
                self.r.warn(
                    span.clone(),
                    format!(
                        "sync_group `{}`: tracker weights of its members are ignored, as keepalived does ({}): a failing tracker puts the whole group in FAULT",
                        g.name,
                        ignored.join(", ")
                    ),
                    Some("set tracking_weight = true in the sync_group to keep the weights (keepalived's sync_group_tracking_weight); a weight on one member only moves the group when every member's priority moves".into()),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// auth_hmac

/// Most keys per instance.
const MAX_HMAC_KEYS: usize = 16;
/// Longest key value or key file, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// A key value as written (`hex:...` or a passphrase) as bytes, or why not.
pub(crate) fn key_bytes(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_end_matches(['\n', '\r']);
    let bytes = match text.strip_prefix("hex:") {
        Some(h) => {
            if h.len() % 2 != 0 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err("`hex:` needs an even number of hex digits".into());
            }
            (0..h.len() / 2)
                .filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
                .collect()
        }
        None => text.as_bytes().to_vec(),
    };
    if bytes.len() < vipd_proto::auth::MIN_KEY_LEN {
        return Err(format!(
            "a key must be at least {} bytes (found {})",
            vipd_proto::auth::MIN_KEY_LEN,
            bytes.len()
        ));
    }
    if bytes.len() > MAX_KEY_BYTES {
        return Err(format!("a key is at most {MAX_KEY_BYTES} bytes"));
    }
    Ok(bytes)
}

impl Validator<'_, '_> {
    fn auth_hmac(
        &mut self,
        t: &S<RawAuthHmac>,
        inst: &str,
        interval: Duration,
    ) -> Option<vipd_proto::auth::AuthHmac> {
        use vipd_proto::auth::{AntiReplay, AuthHmac, Key, Mode};
        let raw = t.get_ref();
        let before = self.r.diags.errors().count();
        let mode = match raw.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
            None | Some((_, "enforce")) => Mode::Enforce,
            Some((_, "permissive")) => Mode::Permissive,
            Some((_, "receive-only")) => Mode::ReceiveOnly,
            Some((m, other)) => {
                self.r.error_hint(
                    m.span(),
                    format!(
                        "auth_hmac mode `{}` is not one of enforce, permissive, receive-only",
                        shorten(other)
                    ),
                    "roll out with receive-only on every node, then permissive, then enforce",
                );
                Mode::Enforce
            }
        };
        let window = match &raw.time_window {
            Some(w) => duration_in(self.r, w, "time_window").unwrap_or(Duration::from_secs(5)),
            None => (interval * 3)
                .max(Duration::from_secs(5))
                .min(Duration::from_secs(300)),
        };
        let anti_replay = match raw.anti_replay.as_ref().map(|m| (m, m.get_ref().as_str())) {
            None | Some((_, "time")) => AntiReplay::Time { window },
            Some((_, "monotonic")) => AntiReplay::Monotonic,
            Some((m, other)) => {
                self.r.error(
                    m.span(),
                    format!(
                        "anti_replay `{}` is not one of time, monotonic",
                        shorten(other)
                    ),
                );
                AntiReplay::Time { window }
            }
        };
        let mut keys: Vec<Key> = Vec::new();
        match &raw.keys {
            None => self.r.error_hint(
                t.span(),
                "auth_hmac has no keys",
                "add keys = [{ id = 1, file = \"/etc/vipd/hmac.key\" }] (32 bytes or more)",
            ),
            Some(list) if list.get_ref().is_empty() || list.get_ref().len() > MAX_HMAC_KEYS => {
                self.r.error(
                    list.span(),
                    format!("auth_hmac needs 1 to {MAX_HMAC_KEYS} keys"),
                );
            }
            Some(list) => {
                for k in list.get_ref() {
                    let kr = k.get_ref();
                    let Some(id) = kr
                        .id
                        .as_ref()
                        .and_then(|i| ranged(self.r, i, "key id", None))
                    else {
                        if kr.id.is_none() {
                            self.r
                                .error_hint(k.span(), "auth_hmac key has no id", "add id = 1");
                        }
                        continue;
                    };
                    let id = u8::try_from(id).unwrap_or(1);
                    if keys.iter().any(|x| x.id == id) {
                        self.r
                            .error(k.span(), format!("auth_hmac key id {id} is given twice"));
                        continue;
                    }
                    let secret = match (&kr.value, &kr.file, &kr.credential) {
                        (Some(v), None, None) => match key_bytes(v.get_ref()) {
                            Ok(b) => {
                                self.r.warn(
                                    v.span(),
                                    "the key is written in the configuration file: anyone who can read it can sign adverts",
                                    Some("keep it in a file readable by root only (file = \"...\") or a systemd credential".into()),
                                );
                                b
                            }
                            Err(e) => {
                                self.r.error(v.span(), format!("auth_hmac key {id}: {e}"));
                                continue;
                            }
                        },
                        (None, Some(f), None) => {
                            self.host.keys.push(crate::host::KeySite {
                                span: f.span(),
                                instance: inst.to_string(),
                                id,
                                source: crate::host::KeySource::File(f.get_ref().into()),
                            });
                            Vec::new()
                        }
                        (None, None, Some(c)) => {
                            self.host.keys.push(crate::host::KeySite {
                                span: c.span(),
                                instance: inst.to_string(),
                                id,
                                source: crate::host::KeySource::Credential(c.get_ref().clone()),
                            });
                            Vec::new()
                        }
                        _ => {
                            self.r.error_hint(
                                k.span(),
                                format!("auth_hmac key {id} needs exactly one of value, file, credential"),
                                "file = \"/etc/vipd/hmac.key\" (mode 0600)",
                            );
                            continue;
                        }
                    };
                    keys.push(Key { id, secret });
                }
            }
        }
        let active = match &raw.active_key {
            Some(a) => ranged(self.r, a, "active_key", None).map(|a| u8::try_from(a).unwrap_or(1)),
            None if keys.len() == 1 => keys.first().map(|k| k.id),
            None => {
                if keys.len() > 1 {
                    self.r.error_hint(
                        t.span(),
                        "auth_hmac has several keys: say which one signs",
                        "add active_key = <id> (rotation: add the new key everywhere, then switch active_key, then remove the old one)",
                    );
                }
                None
            }
        };
        if let (Some(a), Some(span)) = (active, raw.active_key.as_ref().map(S::span))
            && !keys.iter().any(|k| k.id == a)
        {
            self.r
                .error(span, format!("active_key {a} is not among the keys"));
        }
        if self.r.diags.errors().count() != before {
            return None;
        }
        Some(AuthHmac {
            mode,
            keys,
            active: active?,
            anti_replay,
        })
    }
}
