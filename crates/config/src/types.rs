//! The validated, span-free configuration handed to the daemon.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::keys::Key;

/// Default for [`Global::control_socket`].
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vipd/vipd.sock";
/// Default [`Instance::priority`] (as in keepalived and RFC 9568).
pub const DEFAULT_PRIORITY: u8 = 100;
/// Default [`Instance::advert_interval`]: 1 s.
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);

/// Most `[[instance]]` tables in one file.
pub const MAX_INSTANCES: usize = 1024;
/// Most `[[sync_group]]` tables in one file.
pub const MAX_SYNC_GROUPS: usize = 1024;
/// Most VIPs per instance (the VRRP "Count IPvX Addr" field is one byte).
pub const MAX_VIPS: usize = vipd_wire::vrrp::MAX_ADDRS;
/// Most unicast peers per instance.
pub const MAX_PEERS: usize = 64;
/// Default receive buffer of a VRRP socket: 1 MiB, about 7,000 queued IPv4 adverts (the
/// kernel's default, ~208 KiB, is about 1,500: one burst of a thousand instances).
pub const DEFAULT_RECEIVE_BUFFER: usize = 1 << 20;
/// Largest configuration file accepted, in bytes.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Most trackers (`[[track_script]]`, `[[track_http]]`, `[[track_tcp]]`, `[[track_file]]`,
/// `[[track_process]]` together) in one file.
pub const MAX_TRACKERS: usize = 256;
/// Most tracker references (all `track_*` lists together) per instance.
pub const MAX_TRACK_REFS: usize = 64;
/// Largest tracker weight magnitude (keepalived: -254..=254).
pub const MAX_WEIGHT: i32 = 254;
/// Default [`Global::script_user`].
pub const DEFAULT_SCRIPT_USER: &str = "nobody";
/// Default [`Notify::timeout`].
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

// The protocol vocabulary exists once: the version in vipd-proto, the address family and the
// checksum form in vipd-wire. The configuration uses them as they are.
pub use vipd_proto::Version;
pub use vipd_wire::{ChecksumMode, Family};

/// Address scope of a VIP, as for `ip addr add ... scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// `global` (the default).
    #[default]
    Global,
    /// `site`.
    Site,
    /// `link`.
    Link,
    /// `host`.
    Host,
}

impl Scope {
    /// The configuration-file / iproute2 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Site => "site",
            Scope::Link => "link",
            Scope::Host => "host",
        }
    }

    /// The rtnetlink `RT_SCOPE_*` value (global 0, site 200, link 253, host 254).
    pub fn rt_scope(self) -> u8 {
        match self {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One virtual address of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (0..=32 for IPv4, 0..=128 for IPv6); `/32` or `/128` when omitted in the file.
    pub prefix_len: u8,
    /// Interface label (IPv4 only), e.g. `eth0:vip`.
    pub label: Option<String>,
    /// Address scope.
    pub scope: Scope,
    /// The device it is put on when not the instance's interface (keepalived's `dev`).
    pub interface: Option<String>,
    /// Held with the instance but not carried in adverts (keepalived's
    /// `virtual_ipaddress_excluded`).
    pub excluded: bool,
}

impl Vip {
    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

impl fmt::Display for Vip {
    /// `addr/prefix_len`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// What a route or rule does with the packets it matches (`ip route add TYPE ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteType {
    /// Forward (the default).
    #[default]
    Unicast,
    /// Drop silently.
    Blackhole,
    /// Drop with "host unreachable".
    Unreachable,
    /// Drop with "administratively prohibited".
    Prohibit,
    /// Continue the lookup with the next rule (routes only).
    Throw,
}

impl RouteType {
    /// The configuration-file / iproute2 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Throw => "throw",
        }
    }
}

/// The main routing table's number.
pub const MAIN_TABLE: u32 = 254;

/// A route a master adds (keepalived's `virtual_routes`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination prefix.
    pub to: (IpAddr, u8),
    /// Gateway.
    pub via: Option<IpAddr>,
    /// Output device.
    pub interface: Option<String>,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// Table number.
    pub table: u32,
    /// Metric (`None`: the kernel's default).
    pub metric: Option<u32>,
    /// Scope.
    pub scope: Scope,
    /// Type.
    pub kind: RouteType,
    /// Gateway on the link whatever the device's prefixes.
    pub onlink: bool,
    /// Put back when deleted while master.
    pub track: bool,
}

impl Route {
    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(&self.to.0)
    }
}

impl fmt::Display for Route {
    /// As `ip route` would print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != RouteType::Unicast {
            write!(f, "{} ", self.kind.as_str())?;
        }
        if self.to.1 == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}/{}", self.to.0, self.to.1)?;
        }
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.interface {
            write!(f, " dev {d}")?;
        }
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        if self.table != MAIN_TABLE {
            write!(f, " table {}", self.table)?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// A policy routing rule a master adds (keepalived's `virtual_rules`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The family it applies to.
    pub family: Family,
    /// Source prefix.
    pub from: Option<(IpAddr, u8)>,
    /// Destination prefix.
    pub to: Option<(IpAddr, u8)>,
    /// Incoming device.
    pub iif: Option<String>,
    /// Outgoing device.
    pub oif: Option<String>,
    /// Firewall mark and mask.
    pub fwmark: Option<(u32, u32)>,
    /// Priority (`None`: the kernel picks).
    pub priority: Option<u32>,
    /// The table looked up (when `kind` is unicast).
    pub table: u32,
    /// Unicast (look up `table`), blackhole, unreachable or prohibit.
    pub kind: RouteType,
    /// Put back when deleted while master.
    pub track: bool,
}

impl fmt::Display for Rule {
    /// As `ip rule` would print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = self.priority {
            parts.push(format!("pref {p}"));
        }
        match self.from {
            Some((a, l)) => parts.push(format!("from {a}/{l}")),
            None => parts.push("from all".into()),
        }
        if let Some((a, l)) = self.to {
            parts.push(format!("to {a}/{l}"));
        }
        if let Some(i) = &self.iif {
            parts.push(format!("iif {i}"));
        }
        if let Some(o) = &self.oif {
            parts.push(format!("oif {o}"));
        }
        if let Some((m, mask)) = self.fwmark {
            parts.push(format!("fwmark {m:#x}/{mask:#x}"));
        }
        match self.kind {
            RouteType::Unicast => parts.push(format!("lookup {}", self.table)),
            k => parts.push(k.as_str().to_string()),
        }
        f.write_str(&parts.join(" "))
    }
}

/// VRRPv2 simple-text authentication data: 1..=8 ASCII bytes, zero-padded to 8 on the wire.
///
/// `Debug` does not print the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthPass {
    bytes: [u8; 8],
    len: u8,
}

impl AuthPass {
    /// Builds from 1..=8 printable ASCII bytes; `None` otherwise.
    pub fn new(s: &str) -> Option<AuthPass> {
        let raw = s.as_bytes();
        if raw.is_empty()
            || raw.len() > 8
            || !raw.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
        {
            return None;
        }
        let mut bytes = [0u8; 8];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(AuthPass {
            bytes,
            len: u8::try_from(raw.len()).ok()?,
        })
    }

    /// The 8 bytes of the VRRPv2 authentication data field (zero-padded).
    pub fn wire_bytes(&self) -> [u8; 8] {
        self.bytes
    }

    /// The password as written.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for AuthPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthPass(<redacted>)")
    }
}

/// Gratuitous ARP / unsolicited neighbour advertisement settings (keepalived semantics).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Garp {
    /// Delay after becoming master before the second burst (`garp_master_delay`, default 5 s; 0 = no second burst).
    pub master_delay: Duration,
    /// Frames per burst (`garp_master_repeat`, default 5).
    pub master_repeat: u8,
    /// Periodic re-announcement while master (`garp_master_refresh`); `None` = off (the default).
    pub master_refresh: Option<Duration>,
    /// Frames per periodic re-announcement (`garp_master_refresh_repeat`, default 1).
    pub master_refresh_repeat: u8,
    /// Gap between frames of one burst (`garp_interval`, default 0).
    pub interval: Duration,
    /// Frames per burst when a master hears a lower-priority advert
    /// (`garp_lower_prio_repeat`); `None`: `master_repeat`.
    pub lower_prio_repeat: Option<u8>,
    /// Delay of the second such burst (`garp_lower_prio_delay`; 0 = none); `None`:
    /// `master_delay`.
    pub lower_prio_delay: Option<Duration>,
}

impl Garp {
    /// Frames per burst after a lower-priority advert, defaults applied.
    pub fn lower_prio_repeat(&self) -> u8 {
        self.lower_prio_repeat.unwrap_or(self.master_repeat)
    }
    /// Delay of the second burst after a lower-priority advert, defaults applied.
    pub fn lower_prio_delay(&self) -> Duration {
        self.lower_prio_delay.unwrap_or(self.master_delay)
    }
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
            lower_prio_repeat: None,
            lower_prio_delay: None,
        }
    }
}

/// The `[global]` table, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Name for logs; `None` means "use the host name" (see [`Global::effective_router_id`]).
    pub router_id: Option<String>,
    /// Path of the control socket `vipctl` talks to.
    pub control_socket: PathBuf,
    /// Group whose members may read status over the control socket (root may do anything).
    pub control_group: Option<String>,
    /// Local address serving Prometheus metrics at /metrics; `None` = off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Receive buffer of each VRRP socket, bytes (default [`DEFAULT_RECEIVE_BUFFER`]).
    pub receive_buffer: usize,
    /// Wait before the state machines start (keepalived `vrrp_startup_delay`; default 0).
    pub startup_delay: Duration,
    /// IPv4 multicast group of multicast instances (RFC 9568's 224.0.0.18 unless set).
    pub multicast_group_v4: std::net::Ipv4Addr,
    /// IPv6 multicast group of multicast instances (ff02::12 unless set).
    pub multicast_group_v6: std::net::Ipv6Addr,
    /// Default VRRP version of instances.
    pub vrrp_version: Version,
    /// Default VRRPv3/IPv4 checksum mode of instances.
    pub checksum: ChecksumMode,
    /// Default GARP/NA settings of instances.
    pub garp: Garp,
    /// Default `lower_prio_no_advert` of instances (false).
    pub lower_prio_no_advert: bool,
    /// Default `fast_preempt` of instances (false).
    pub fast_preempt: bool,
    /// User that track scripts and notify programs run as, unless a tracker sets `user`
    /// (keepalived `script_user`). Default `"nobody"`.
    pub script_user: String,
    /// Refuse scripts and notify programs whose file or any parent directory is writable by a
    /// non-root user (keepalived `enable_script_security`). Default true.
    pub enable_script_security: bool,
    /// Unix socket streaming JSON-lines events (`None`: off).
    pub events_socket: Option<PathBuf>,
    /// keepalived's notify FIFO (`None`: none).
    pub notify_fifo: Option<PathBuf>,
    /// Its reader program (argv; the FIFO's path is appended).
    pub notify_fifo_script: Option<Vec<String>>,
    /// Directory for state kept across restarts (`None`: `$STATE_DIRECTORY` when systemd
    /// sets it, else nothing is kept).
    pub state_directory: Option<PathBuf>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            router_id: None,
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            control_group: None,
            metrics_listen: None,
            receive_buffer: DEFAULT_RECEIVE_BUFFER,
            startup_delay: Duration::ZERO,
            multicast_group_v4: vipd_wire::vrrp::MCAST_V4,
            multicast_group_v6: vipd_wire::vrrp::MCAST_V6,
            vrrp_version: Version::V3,
            checksum: ChecksumMode::WithPseudoHeader,
            garp: Garp::default(),
            lower_prio_no_advert: false,
            fast_preempt: false,
            script_user: DEFAULT_SCRIPT_USER.to_string(),
            enable_script_security: true,
            events_socket: None,
            notify_fifo: None,
            notify_fifo_script: None,
            state_directory: None,
        }
    }
}

impl Global {
    /// `router_id`, or the host name (from `/proc/sys/kernel/hostname`), or `"vipd"`.
    pub fn effective_router_id(&self) -> String {
        if let Some(id) = &self.router_id {
            return id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "vipd".to_string())
    }
}

/// Who announces an `[instance.announce]` instance's VIPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncePolicy {
    /// The VRRP master announces; backups withdraw.
    ActiveStandby,
    /// No VRRP: every node whose trackers pass (effective priority at least
    /// `min_priority`, no FAULT, not in maintenance) announces.
    ActiveActive,
}

impl AnnouncePolicy {
    /// As written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnouncePolicy::ActiveStandby => "active-standby",
            AnnouncePolicy::ActiveActive => "active-active",
        }
    }
}

/// `[instance.announce]`: route placement for a BGP daemon instead of gratuitous ARP/NA. The
/// VIPs without a device of their own go on `device`, the host routes (with `table`) are among
/// the instance's `routes`; both follow the announcement like a master's VIPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Who announces.
    pub policy: AnnouncePolicy,
    /// Where the VIPs go (default `lo`).
    pub device: String,
    /// The table of the host routes, if any.
    pub table: Option<u32>,
    /// Their metric.
    pub metric: Option<u32>,
    /// Active-active: the lowest effective priority that announces.
    pub min_priority: u8,
}

/// One `[[instance]]`: a virtual router, fully resolved (global defaults applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Unique name (`[A-Za-z0-9_.-]`, 1..=64 characters).
    pub name: String,
    /// Interface the virtual router lives on.
    pub interface: String,
    /// Virtual router ID, 1..=255.
    pub vrid: u8,
    /// Protocol version (instance `version`, else global `vrrp_version`).
    pub version: Version,
    /// Family of the VIPs (and of peers / source address).
    pub family: Family,
    /// Priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// Advertisement interval (v2: whole seconds 1..=255; v3: multiple of 10 ms, 10 ms..=40.95 s).
    pub advert_interval: Duration,
    /// Preempt lower-priority masters (keepalived `nopreempt` = false).
    pub preempt: bool,
    /// Delay before preempting, 0..=1000 s.
    pub preempt_delay: Duration,
    /// Preempt a lower master after Skew_Time rather than Master_Down_Interval.
    pub fast_preempt: bool,
    /// Accept_Mode: accept packets addressed to the VIPs while master (default: true, as
    /// keepalived outside strict mode; the owner always accepts).
    pub accept: bool,
    /// Routes held with the VIPs (keepalived's `virtual_routes`).
    pub routes: Vec<Route>,
    /// Policy rules held with the VIPs (keepalived's `virtual_rules`).
    pub rules: Vec<Rule>,
    /// Virtual addresses, in file order (short `vips` list, `[[instance.vip]]` tables, then
    /// `excluded_vips`); the advertised ones (not `excluded`) are at most 255 and of
    /// `family`. Empty only for VRRPv2 (warned) or with `no_vips`.
    pub vips: Vec<Vip>,
    /// Source address of adverts (keepalived `unicast_src_ip` / `mcast_src_ip`).
    pub source_address: Option<IpAddr>,
    /// Unicast peers; empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// The TTL / hop limit ranges unicast peers' adverts must arrive with (`unicast_min_ttl`
    /// and the peers' `min_ttl` / `max_ttl`); a peer not listed: any.
    pub peer_ttl: Vec<vipd_proto::rx::PeerTtl>,
    /// Multicast: the only sources adverts are accepted from (empty: any on the link).
    pub allowed_sources: Vec<IpAddr>,
    /// Multicast: the group adverts go to (the instance's, else [global]'s, else RFC 9568's).
    pub multicast_group: IpAddr,
    /// RFC 9568 virtual MAC: the VMAC device's name (`None`: no VMAC).
    pub vmac: Option<String>,
    /// With a VMAC: adverts go out of `interface` itself (keepalived's `vmac_xmit_base`).
    pub vmac_xmit_base: bool,
    /// VRRPv3: the longest Master_Adver_Interval adopted from a master (`None`: any).
    pub max_adopted_interval: Option<Duration>,
    /// VRRPv2 simple-text authentication (never set for v3).
    pub auth_pass: Option<AuthPass>,
    /// VRRPv2 IPsec-AH with this password (keepalived's `auth_type AH`; never set for v3).
    pub auth_ah: Option<AuthPass>,
    /// keepalived's `auth_hmac`: adverts signed and verified with HMAC-SHA256 (keys from
    /// files and credentials are read by the host pass; until then their secret is empty).
    pub auth_hmac: Option<vipd_proto::auth::AuthHmac>,
    /// Checksum mode (only meaningful for VRRPv3 over IPv4).
    pub checksum: ChecksumMode,
    /// GARP/NA settings (global defaults with per-instance overrides applied).
    pub garp: Garp,
    /// keepalived `lower_prio_no_advert`: as master, do not answer a lower-priority advert
    /// with an advert (the VIPs are still re-announced).
    pub lower_prio_no_advert: bool,
    /// FAULT while `interface` is down (default true; false = keepalived's
    /// `dont_track_primary`).
    pub fault_on_link_down: bool,
    /// Trackers this instance follows, with their effective weights (instance override
    /// applied), in file order: scripts, http, tcp, files, processes, interfaces.
    pub track: Vec<TrackRef>,
    /// Notification programs.
    pub notify: Notify,
    /// `[instance.announce]`: BGP route placement (no gratuitous ARP/NA).
    pub announce: Option<Announce>,
}

impl Instance {
    /// The RFC 9568 virtual MAC of this virtual router: 00:00:5e:00:01:{vrid} (IPv4) or
    /// 00:00:5e:00:02:{vrid} (IPv6).
    pub fn virtual_mac(&self) -> [u8; 6] {
        let fam = if self.family == Family::Ipv6 { 2 } else { 1 };
        [0x00, 0x00, 0x5e, 0x00, fam, self.vrid]
    }

    /// The VIPs its adverts carry (all but the excluded ones), in order.
    pub fn advertised_vips(&self) -> impl Iterator<Item = &Vip> {
        self.vips.iter().filter(|v| !v.excluded)
    }

    /// True when priority is 255 (the instance claims to own the VIPs).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Active-active announcement: no VRRP runs (no socket, no adverts, no VRID).
    pub fn is_anycast(&self) -> bool {
        self.announce
            .as_ref()
            .is_some_and(|a| a.policy == AnnouncePolicy::ActiveActive)
    }

    /// True when adverts go to unicast peers rather than the VRRP multicast group.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }

    /// The keys whose values differ between this instance and `new` (a reload's plan and
    /// log name them). Unicast peers are compared as a set (their order means nothing);
    /// a change of the VIPs' address family is reported as `vips`.
    pub fn changed_keys(&self, new: &Instance) -> Vec<Key> {
        use crate::keys::instance as k;
        // Destructured so that a new field is a compile error here until it is mapped.
        let Instance {
            name,
            interface,
            vrid,
            version,
            family,
            priority,
            advert_interval,
            preempt,
            preempt_delay,
            fast_preempt,
            accept,
            routes,
            rules,
            vips,
            source_address,
            unicast_peers,
            peer_ttl,
            allowed_sources,
            multicast_group,
            vmac,
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
            announce,
        } = self;
        let mut keys = Vec::new();
        let mut differs = |changed: bool, key: Key| {
            if changed && !keys.contains(&key) {
                keys.push(key);
            }
        };
        differs(*name != new.name, k::name);
        differs(*interface != new.interface, k::interface);
        differs(*vrid != new.vrid, k::vrid);
        differs(*version != new.version, k::version);
        differs(*family != new.family || *vips != new.vips, k::vips);
        differs(*routes != new.routes, k::route);
        differs(*multicast_group != new.multicast_group, k::multicast_group);
        differs(*vmac != new.vmac, k::vmac);
        differs(*auth_ah != new.auth_ah, k::auth_ah);
        differs(*vmac_xmit_base != new.vmac_xmit_base, k::vmac_xmit_base);
        differs(*rules != new.rules, k::rule);
        differs(*announce != new.announce, k::announce);
        differs(*priority != new.priority, k::priority);
        differs(*advert_interval != new.advert_interval, k::advert_interval);
        differs(*preempt != new.preempt, k::preempt);
        differs(*preempt_delay != new.preempt_delay, k::preempt_delay);
        differs(*fast_preempt != new.fast_preempt, k::fast_preempt);
        differs(*accept != new.accept, k::accept);
        differs(*source_address != new.source_address, k::source_address);
        let as_set = |p: &[IpAddr]| {
            let mut v = p.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        };
        differs(
            as_set(unicast_peers) != as_set(&new.unicast_peers),
            k::unicast_peers,
        );
        let ttl_set = |p: &[vipd_proto::rx::PeerTtl]| {
            let mut v = p.to_vec();
            v.sort_unstable();
            v
        };
        differs(ttl_set(peer_ttl) != ttl_set(&new.peer_ttl), k::unicast_peer);
        differs(
            as_set(allowed_sources) != as_set(&new.allowed_sources),
            k::allowed_sources,
        );
        differs(
            *max_adopted_interval != new.max_adopted_interval,
            k::max_adopted_interval,
        );
        differs(*auth_pass != new.auth_pass, k::auth_pass);
        differs(*auth_hmac != new.auth_hmac, k::auth_hmac);
        differs(*checksum != new.checksum, k::checksum);
        differs(
            *lower_prio_no_advert != new.lower_prio_no_advert,
            k::lower_prio_no_advert,
        );
        differs(
            *fault_on_link_down != new.fault_on_link_down,
            k::fault_on_link_down,
        );
        let Garp {
            master_delay,
            master_repeat,
            master_refresh,
            master_refresh_repeat,
            interval,
            lower_prio_repeat,
            lower_prio_delay,
        } = garp;
        differs(
            *lower_prio_repeat != new.garp.lower_prio_repeat,
            k::garp_lower_prio_repeat,
        );
        differs(
            *lower_prio_delay != new.garp.lower_prio_delay,
            k::garp_lower_prio_delay,
        );
        differs(*master_delay != new.garp.master_delay, k::garp_master_delay);
        differs(
            *master_repeat != new.garp.master_repeat,
            k::garp_master_repeat,
        );
        differs(
            *master_refresh != new.garp.master_refresh,
            k::garp_master_refresh,
        );
        differs(
            *master_refresh_repeat != new.garp.master_refresh_repeat,
            k::garp_master_refresh_repeat,
        );
        differs(*interval != new.garp.interval, k::garp_interval);
        for kind in [
            TrackKind::Script,
            TrackKind::Http,
            TrackKind::Tcp,
            TrackKind::File,
            TrackKind::Process,
            TrackKind::Interface,
        ] {
            let of = |t: &[TrackRef]| -> Vec<TrackRef> {
                t.iter().filter(|r| r.kind == kind).cloned().collect()
            };
            differs(of(track) != of(&new.track), kind.instance_key());
        }
        let Notify {
            master,
            backup,
            fault,
            stop,
            any,
            timeout,
        } = notify;
        differs(*master != new.notify.master, k::notify_master);
        differs(*backup != new.notify.backup, k::notify_backup);
        differs(*fault != new.notify.fault, k::notify_fault);
        differs(*stop != new.notify.stop, k::notify_stop);
        differs(*any != new.notify.any, k::notify);
        differs(*timeout != new.notify.timeout, k::notify_timeout);
        keys
    }

    /// The advertisement interval in wire units: seconds for VRRPv2 (8 bits),
    /// centiseconds for VRRPv3 (12 bits). Validation guarantees it fits.
    pub fn advert_interval_wire(&self) -> u16 {
        let units: u128 = match self.version {
            Version::V2 => u128::from(self.advert_interval.as_secs()),
            Version::V3 => self.advert_interval.as_millis() / 10,
        };
        u16::try_from(units).unwrap_or(u16::MAX)
    }
}

/// One `[[sync_group]]`: instances that change state together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Unique group name.
    pub name: String,
    /// Member instance names (at least 2; each instance is in at most one group).
    pub instances: Vec<String>,
    /// Members keep their tracker weights (keepalived's `sync_group_tracking_weight`);
    /// otherwise every member tracker acts as weight 0 (FAULT of the group while down).
    pub tracking_weight: bool,
    /// Trackers of the group itself: every member follows them (already merged into each
    /// member's [`Instance::track`]).
    pub track: Vec<TrackRef>,
    /// Notification programs of the group.
    pub notify: Notify,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `[global]`, defaults applied.
    pub global: Global,
    /// `[[instance]]` tables, in file order.
    pub instances: Vec<Instance>,
    /// `[[sync_group]]` tables, in file order.
    pub sync_groups: Vec<SyncGroup>,
    /// `[[track_script]]` tables.
    pub track_scripts: Vec<TrackScript>,
    /// `[[track_http]]` tables.
    pub track_http: Vec<TrackHttp>,
    /// `[[track_tcp]]` tables.
    pub track_tcp: Vec<TrackTcp>,
    /// `[[track_file]]` tables.
    pub track_files: Vec<TrackFile>,
    /// `[[track_process]]` tables.
    pub track_processes: Vec<TrackProcess>,
}

impl Config {
    /// Calls `f` on the argv of every program the configuration runs: track scripts, and
    /// the notify programs of instances and sync groups.
    pub fn for_each_program(&mut self, mut f: impl FnMut(&mut Vec<String>)) {
        for t in &mut self.track_scripts {
            f(&mut t.argv);
        }
        let notifies = self
            .instances
            .iter_mut()
            .map(|i| &mut i.notify)
            .chain(self.sync_groups.iter_mut().map(|g| &mut g.notify));
        for n in notifies {
            for argv in [
                &mut n.master,
                &mut n.backup,
                &mut n.fault,
                &mut n.stop,
                &mut n.any,
            ]
            .into_iter()
            .flatten()
            {
                f(argv);
            }
        }
    }

    /// The instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The sync group `instance` belongs to, if any.
    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|m| m == instance))
    }

    /// The sync group called `name`.
    pub fn sync_group(&self, name: &str) -> Option<&SyncGroup> {
        self.sync_groups.iter().find(|g| g.name == name)
    }
}

/// The result of a successful [`load`](super::load) / [`parse_str`](super::parse_str).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Warnings (never errors), in source order.
    pub warnings: Vec<super::Diagnostic>,
    /// Where each instance's effective tracker weight is written (for `vipd --check` across
    /// files, see [`cross_check`](super::cross_check)).
    pub weight_sites: Vec<WeightSite>,
    /// Where each instance's keys are written (the pair linter points at both files).
    pub key_sites: Vec<KeySite>,
}

/// Where something is written in a file: what a diagnostic about another file can point at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Characters to underline.
    pub width: usize,
    /// The source line.
    pub source_line: Option<String>,
}

/// Where an instance's key is written (`key` = `name` for the instance itself: its header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySite {
    /// Instance name.
    pub instance: String,
    /// The key.
    pub key: Key,
    /// Where.
    pub site: Site,
}

/// The kind of a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackKind {
    /// `[[track_script]]`.
    Script,
    /// `[[track_http]]`.
    Http,
    /// `[[track_tcp]]`.
    Tcp,
    /// `[[track_file]]`.
    File,
    /// `[[track_process]]`.
    Process,
    /// An interface named in `track_interfaces`.
    Interface,
}

impl TrackKind {
    /// The instance key that lists trackers of this kind (`track_scripts`...).
    pub fn instance_key(self) -> Key {
        use crate::keys::instance as k;
        match self {
            TrackKind::Script => k::track_scripts,
            TrackKind::Http => k::track_http,
            TrackKind::Tcp => k::track_tcp,
            TrackKind::File => k::track_files,
            TrackKind::Process => k::track_processes,
            TrackKind::Interface => k::track_interfaces,
        }
    }

    /// Lower-case name for logs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Script => "script",
            TrackKind::Http => "http",
            TrackKind::Tcp => "tcp",
            TrackKind::File => "file",
            TrackKind::Process => "process",
            TrackKind::Interface => "interface",
        }
    }
}

impl fmt::Display for TrackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often and how strictly a polled tracker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Probe {
    /// Time between the starts of two runs (default 1 s).
    pub interval: Duration,
    /// A run taking longer fails (default: the interval, at most 5 s).
    pub timeout: Duration,
    /// Consecutive successes needed to go up (default 1).
    pub rise: u32,
    /// Consecutive failures needed to go down (default 1).
    pub fall: u32,
}

/// `[[track_script]]`: a program run periodically; exit status 0 = healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    /// Unique tracker name.
    pub name: String,
    /// argv; for `shell = "..."` it is `["/bin/sh", "-c", "..."]`. `argv[0]` is absolute.
    pub argv: Vec<String>,
    /// True when written as `shell = "..."`.
    pub shell: bool,
    /// Schedule.
    pub probe: Probe,
    /// Default weight (instances may override).
    pub weight: i32,
    /// User to run as (default [`Global::script_user`]).
    pub user: Option<String>,
}

/// A parsed `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpUrl {
    /// Host as written (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    /// TCP port (default 80).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "http://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// `[[track_http]]`: an HTTP/1.1 GET; healthy when the status is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackHttp {
    /// Unique tracker name.
    pub name: String,
    /// Where to connect.
    pub url: HttpUrl,
    /// Healthy statuses (default `[200]`).
    pub expect_status: Vec<u16>,
    /// Schedule.
    pub probe: Probe,
    /// Default weight.
    pub weight: i32,
}

/// `[[track_tcp]]`: a TCP connect; healthy when it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackTcp {
    /// Unique tracker name.
    pub name: String,
    /// `host:port` as written (`[v6]:port` for IPv6).
    pub address: String,
    /// Schedule.
    pub probe: Probe,
    /// Default weight.
    pub weight: i32,
}

/// `[[track_file]]`: a file holding an integer; contribution = value x weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    /// Unique tracker name.
    pub name: String,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Default weight (0: a non-zero value means FAULT).
    pub weight: i32,
    /// Create it with this value when missing at start (`None`: never).
    pub init: Option<i64>,
    /// With `init`: write it at every start.
    pub init_overwrite: bool,
}

/// `[[track_process]]`: at least `min` processes called `process` must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackProcess {
    /// Unique tracker name.
    pub name: String,
    /// Matched against `/proc/PID/comm` and the base name of `argv[0]`.
    pub process: String,
    /// Fewest processes for "up" (default 1).
    pub min: u32,
    /// Most processes for "up" (`None`: no limit).
    pub max: Option<u32>,
    /// Arguments to match too (`None`: any; `Some([])` with `args_match`: none at all).
    pub args: Option<Vec<String>>,
    /// How `args` match.
    pub args_match: ArgsMatch,
    /// `process` is the whole command line.
    pub full_command: bool,
    /// Good this long before "up", bad this long before "down".
    pub up_delay: Duration,
    /// See `up_delay`.
    pub down_delay: Duration,
    /// Default weight.
    pub weight: i32,
}

/// How a tracked process's arguments match (keepalived's `param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ArgsMatch {
    /// Exactly these arguments.
    #[default]
    Exact,
    /// These first, possibly more after.
    Partial,
    /// As partial, and the last one given may be a prefix of the process's.
    Initial,
}

impl TrackProcess {
    /// Whether a process with `comm` and command line `argv` is one of these.
    pub fn matches(&self, comm: &str, argv: &[String]) -> bool {
        if self.full_command {
            return argv.join(" ") == self.process;
        }
        let base = argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or("");
        let Some(want) = &self.args else {
            // The kernel cuts comm to 15 bytes.
            let cut: String = self.process.chars().take(15).collect();
            return comm == self.process || comm == cut || base == self.process;
        };
        let first = argv.first().map(String::as_str).unwrap_or("");
        if first != self.process && base != self.process {
            return false;
        }
        let got = argv.get(1..).unwrap_or(&[]);
        match self.args_match {
            ArgsMatch::Exact => got == want.as_slice(),
            ArgsMatch::Partial => got.len() >= want.len() && got[..want.len()] == want[..],
            ArgsMatch::Initial => {
                let Some((last, head)) = want.split_last() else {
                    return got.is_empty();
                };
                got.len() >= want.len()
                    && got[..head.len()] == head[..]
                    && got[head.len()].starts_with(last.as_str())
            }
        }
    }

    /// Whether `n` matching processes is "up".
    pub fn good(&self, n: u32) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }
}

/// One tracker an instance follows, with the effective weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackRef {
    /// The kind (names are unique across kinds, except interfaces).
    pub kind: TrackKind,
    /// Tracker name (for interfaces: the interface name).
    pub name: String,
    /// Effective weight: > 0 added while up, < 0 added while down, 0 = FAULT while down
    /// (files: value x weight; weight 0 = FAULT on a non-zero value).
    pub weight: i32,
}

/// Notification programs of an instance or sync group (keepalived names).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notify {
    /// `notify_master`: argv run on entering MASTER.
    pub master: Option<Vec<String>>,
    /// `notify_backup`.
    pub backup: Option<Vec<String>>,
    /// `notify_fault`.
    pub fault: Option<Vec<String>>,
    /// `notify_stop`: run when vipd stops the instance.
    pub stop: Option<Vec<String>>,
    /// `notify`: run after the specific one with `INSTANCE|GROUP NAME STATE PRIORITY` appended.
    pub any: Option<Vec<String>>,
    /// Each program is killed (with its process group) after this long.
    pub timeout: Duration,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            master: None,
            backup: None,
            fault: None,
            stop: None,
            any: None,
            timeout: DEFAULT_NOTIFY_TIMEOUT,
        }
    }
}

impl Notify {
    /// True when no program is configured.
    pub fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.any.is_none()
    }
}

/// Where a tracker weight that applies to an instance is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightSite {
    /// Instance name.
    pub instance: String,
    /// Tracker kind.
    pub kind: TrackKind,
    /// Tracker name.
    pub tracker: String,
    /// The effective weight.
    pub weight: i32,
    /// 1-based line (0: not written; the default weight 0).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Characters to underline.
    pub width: usize,
    /// The source line.
    pub source_line: Option<String>,
}
