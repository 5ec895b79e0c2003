//! Serde mirror of the file: every value keeps its span; nothing is validated yet.
//!
//! **These types are the list of configuration keys.** The shape check (unknown keys, value
//! kinds, "did you mean"), the JSON schema `vipd --print-schema` prints and the package ships,
//! and the key tables of docs/config.md (checked by a test) all derive from them; there is no
//! second key table. A new key is a field here (its doc comment is its description) plus its
//! validation into the span-free types.
//!
//! Every field is optional so that missing keys are reported by validation (pointing at the
//! table header) rather than by serde; numbers are `i64` so range errors get our own wording.
//! Durations are strings marked `format: duration` in the schema.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use toml::Spanned;

/// A configuration key: made only by [`table!`] from a field of a table's type, so code that
/// writes vipd.toml (the importer, the lab, the drill) names keys through the constants in
/// [`crate::keys`], and renaming a field is a compile error there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(&'static str);

impl Key {
    /// The key as written in the file.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<str> for Key {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A field name as written in the file: `r#type` is `type`.
pub(crate) const fn unraw(name: &'static str) -> &'static str {
    match name.as_bytes() {
        [b'r', b'#', ..] => name.split_at(2).1,
        _ => name,
    }
}

/// Declares one table of the file: its struct (serde, schema, docs) and, in module `$keys`,
/// one [`Key`] constant per field, named and spelled as the field.
macro_rules! table {
    (
        keys $keys:ident;
        $(#[$meta:meta])*
        pub(crate) struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub(crate) $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        pub(crate) struct $name {
            $(
                $(#[$fmeta])*
                pub(crate) $field: $ty,
            )*
        }

        #[doc = concat!("The keys of [`", stringify!($name), "`]'s table.")]
        #[allow(non_upper_case_globals)]
        pub mod $keys {
            $(
                #[doc = concat!("`", stringify!($field), "`")]
                pub const $field: super::Key = super::Key(super::unraw(stringify!($field)));
            )*
        }
    };
}

/// An integer key whose range is part of its type (`Int<1, 255>`): the schema carries it as
/// `minimum`/`maximum` and validation checks it from here, so the range is written once.
/// Any integer deserializes, so an out-of-range value gets vipd's own message at its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int<const LO: i64, const HI: i64>(pub(crate) i64);

impl<const LO: i64, const HI: i64> Int<LO, HI> {
    /// The accepted values.
    pub(crate) const RANGE: std::ops::RangeInclusive<i64> = LO..=HI;
}

impl<'de, const LO: i64, const HI: i64> Deserialize<'de> for Int<LO, HI> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(Int)
    }
}

impl<const LO: i64, const HI: i64> JsonSchema for Int<LO, HI> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Int{LO}To{HI}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": LO, "maximum": HI })
    }
}

/// A duration key whose range is part of its type (`Dur<0, 3_600_000>`: 0s..=1h, in ms):
/// written as a string (`"1.5s"`), marked `format: duration` in the schema with the range
/// in `x-vipd-range-ms`, checked from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dur<const LO_MS: u64, const HI_MS: u64>(pub(crate) String);

impl<const LO_MS: u64, const HI_MS: u64> Dur<LO_MS, HI_MS> {
    /// The shortest accepted value.
    pub(crate) const MIN: std::time::Duration = std::time::Duration::from_millis(LO_MS);
    /// The longest accepted value.
    pub(crate) const MAX: std::time::Duration = std::time::Duration::from_millis(HI_MS);
}

impl<'de, const LO_MS: u64, const HI_MS: u64> Deserialize<'de> for Dur<LO_MS, HI_MS> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Dur)
    }
}

impl<const LO_MS: u64, const HI_MS: u64> JsonSchema for Dur<LO_MS, HI_MS> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Duration{LO_MS}To{HI_MS}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "duration", "x-vipd-range-ms": [LO_MS, HI_MS] })
    }
}

/// Delay of the second gratuitous burst: 0s..=1h.
pub(crate) type GarpDelay = Dur<0, 3_600_000>;
/// Gap between the frames of one gratuitous burst: 0s..=10s.
pub(crate) type GarpGap = Dur<0, 10_000>;
/// `preempt_delay`: 0s..=1000s (keepalived's limit, the state machine's constant).
pub(crate) type PreemptDelay = Dur<0, { vipd_proto::MAX_PREEMPT_DELAY.as_millis() as u64 }>;
/// `notify_timeout`: 100ms..=1h.
pub(crate) type NotifyTimeout = Dur<100, 3_600_000>;
/// A tracker's `interval` / `timeout`: 10ms..=1h.
pub(crate) type ProbeTime = Dur<10, 3_600_000>;

/// `vrid`: 1..=255.
pub(crate) type Vrid = Int<1, 255>;
/// `priority`: 1..=255 (255: the address owner).
pub(crate) type Priority = Int<1, 255>;
/// Frames per gratuitous burst: 1..=255.
pub(crate) type Count255 = Int<1, 255>;
/// A socket receive buffer in bytes: 64 KiB..=64 MiB.
pub(crate) type RcvBuf = Int<65_536, 67_108_864>;
/// `startup_delay`: 0s..=60s.
pub(crate) type StartupDelay = Dur<0, 60_000>;
/// A TTL / hop limit.
pub(crate) type Ttl = Int<1, 255>;
/// A routing table number, firewall mark or mask (32 bits).
pub(crate) type RouteTable = Int<0, 4_294_967_295>;
/// A route metric or rule priority (32 bits).
pub(crate) type RouteMetric = Int<0, 4_294_967_295>;
/// A VRRPv3 interval, 10ms..=40.95s.
pub(crate) type V3Interval = Dur<10, 40_950>;
/// A tracker weight: -254..=254 (keepalived's range).
pub(crate) type Weight =
    Int<{ -(crate::types::MAX_WEIGHT as i64) }, { crate::types::MAX_WEIGHT as i64 }>;
/// `rise` / `fall`: 1..=1000.
pub(crate) type RiseFall = Int<1, 1000>;
/// `min` of a process tracker: 1..=65535.
pub(crate) type ProcessCount = Int<0, 65_535>;
/// track_process `up_delay` / `down_delay` (keepalived's `fork_delay` / `terminate_delay`).
pub(crate) type ProcessDelay = Dur<0, 60_000>;

/// A value with its place in the file. Transparent for serde and for the schema.
#[derive(Debug)]
pub(crate) struct S<T>(Spanned<T>);

impl<T> S<T> {
    pub(crate) fn span(&self) -> std::ops::Range<usize> {
        self.0.span()
    }
    pub(crate) fn get_ref(&self) -> &T {
        self.0.get_ref()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for S<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::<T>::deserialize(d).map(S)
    }
}

impl<T: JsonSchema> JsonSchema for S<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

table! {
    keys file_keys;
    #[derive(Debug, Default, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Config")]
    pub(crate) struct RawConfig {
        /// Settings of the whole agent (keepalived: `global_defs`).
        pub(crate) global: Option<S<RawGlobal>>,
        /// A virtual router: one VRID on one interface (keepalived: `vrrp_instance`).
        #[serde(default)]
        pub(crate) instance: Vec<S<RawInstance>>,
        /// Instances that change state together (keepalived: `vrrp_sync_group`).
        #[serde(default)]
        pub(crate) sync_group: Vec<S<RawSyncGroup>>,
        /// A health-check program.
        #[serde(default)]
        pub(crate) track_script: Vec<S<RawTrackScript>>,
        /// A built-in HTTP health check.
        #[serde(default)]
        pub(crate) track_http: Vec<S<RawTrackHttp>>,
        /// A built-in TCP connect check.
        #[serde(default)]
        pub(crate) track_tcp: Vec<S<RawTrackTcp>>,
        /// A file whose number adjusts the priority (keepalived: `track_file`).
        #[serde(default)]
        pub(crate) track_file: Vec<S<RawTrackFile>>,
        /// A process that must be running (keepalived: `track_process`).
        #[serde(default)]
        pub(crate) track_process: Vec<S<RawTrackProcess>>,
    }
}

table! {
    keys global_keys;
    #[derive(Debug, Default, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Global")]
    pub(crate) struct RawGlobal {
        /// Name of this router in logs.
        pub(crate) router_id: Option<S<String>>,
        /// Unix socket `vipctl` talks to.
        pub(crate) control_socket: Option<S<String>>,
        /// Members of this group may read status (`vipctl status`); changes stay root-only.
        pub(crate) control_group: Option<S<String>>,
        /// Serve Prometheus metrics at `http://ADDR/metrics` (keep it on a local or management
        /// address).
        pub(crate) metrics_listen: Option<S<String>>,
        /// Bytes of kernel receive buffer for each VRRP socket (one per interface and
        /// family). Adverts the kernel drops because it is full are counted
        /// (`rcvbuf_overflow`).
        pub(crate) receive_buffer: Option<S<RcvBuf>>,
        /// Wait this long after vipd starts before the state machines start (keepalived's
        /// `vrrp_startup_delay`: for links that come up late at boot). Not applied after
        /// `vipctl upgrade`.
        pub(crate) startup_delay: Option<S<StartupDelay>>,
        /// The IPv4 multicast group of multicast instances (keepalived's
        /// `vrrp_mcast_group4`). Default 224.0.0.18, RFC 9568's.
        pub(crate) multicast_group_v4: Option<S<String>>,
        /// The IPv6 multicast group (keepalived's `vrrp_mcast_group6`). Default ff02::12.
        pub(crate) multicast_group_v6: Option<S<String>>,
        /// Default `version` of instances.
        pub(crate) vrrp_version: Option<S<i64>>,
        /// Default VRRPv3-over-IPv4 checksum mode of instances: `"with-pseudo-header"` (keepalived,
        /// FRR) or `"without-pseudo-header"`.
        #[schemars(extend("enum" = ["with-pseudo-header", "without-pseudo-header"]))]
        pub(crate) checksum: Option<S<String>>,
        /// After becoming master, send a second GARP/NA burst this much later; `"0s"` = no
        /// second burst.
        pub(crate) garp_master_delay: Option<S<GarpDelay>>,
        /// Frames per burst (one per VIP each).
        pub(crate) garp_master_repeat: Option<S<Count255>>,
        /// While master, re-announce the VIPs this often.
        #[schemars(extend("format" = "duration"))]
        pub(crate) garp_master_refresh: Option<S<String>>,
        /// Frames per periodic re-announcement.
        pub(crate) garp_master_refresh_repeat: Option<S<Count255>>,
        /// Gap between the frames of one burst.
        pub(crate) garp_interval: Option<S<GarpGap>>,
        /// A master that hears a lower-priority advert (another router believes it is
        /// master) re-announces its VIPs with this many frames (default: garp_master_repeat).
        pub(crate) garp_lower_prio_repeat: Option<S<Count255>>,
        /// ... and again this much later; `"0s"` = once (default: garp_master_delay).
        pub(crate) garp_lower_prio_delay: Option<S<GarpDelay>>,
        /// A master that hears a lower-priority advert does not answer it with its own advert
        /// (it still re-announces its VIPs); default false.
        pub(crate) lower_prio_no_advert: Option<S<bool>>,
        /// Default `fast_preempt` of instances (false).
        pub(crate) fast_preempt: Option<S<bool>>,
        /// User track scripts and notify programs run as (must exist).
        pub(crate) script_user: Option<S<String>>,
        /// Refuse scripts/notify programs that a non-root user could modify (error at load,
        /// naming the path).
        pub(crate) enable_script_security: Option<S<bool>>,
        /// Unix socket streaming JSON-lines events (tracking.md).
        pub(crate) events_socket: Option<S<String>>,
        /// keepalived's notify FIFO: a line per transition in keepalived's format
        /// (`INSTANCE "VI_1" MASTER 150`), in order; created (0600) if missing. keepalived's
        /// `notify_fifo` / `vrrp_notify_fifo`.
        pub(crate) notify_fifo: Option<S<String>>,
        /// A program started with the FIFO's path as its last argument, as `script_user`,
        /// reading the lines (keepalived's `notify_fifo_script`).
        pub(crate) notify_fifo_script: Option<S<RawCommand>>,
        /// Directory for state kept across restarts and reboots (maintenance). Default: the
        /// unit's `StateDirectory=` (`$STATE_DIRECTORY`, /var/lib/vipd); none outside systemd.
        pub(crate) state_directory: Option<S<String>>,
    }
}

table! {
    keys vip_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Vip")]
    pub(crate) struct RawVip {
        /// The address; prefix 0..=32 (IPv4) / 0..=128 (IPv6), default full length.
        pub(crate) address: Option<S<String>>,
        /// IPv4 address label (`ip addr add ... label eth0:vip`); IPv4 only.
        pub(crate) label: Option<S<String>>,
        /// Address scope: `"global"` (default), `"site"`, `"link"` or `"host"`.
        #[schemars(extend("enum" = ["global", "site", "link", "host"]))]
        pub(crate) scope: Option<S<String>>,
        /// Put this address on another device than the instance's interface (keepalived's
        /// `dev`); gratuitous ARP/NA for it go out on that device.
        pub(crate) interface: Option<S<String>>,
        /// Held and released with the instance but not carried in adverts (keepalived's
        /// `virtual_ipaddress_excluded`); may be of the other family. Default false.
        pub(crate) excluded: Option<S<bool>>,
    }
}

table! {
    keys route_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Route")]
    pub(crate) struct RawRoute {
        /// Destination prefix (`"10.1.0.0/16"`, `"default"`); a bare address is a host route.
        pub(crate) to: Option<S<String>>,
        /// Gateway (keepalived's `via` / `gw`).
        pub(crate) via: Option<S<String>>,
        /// Output device (`dev`); need not exist at start: the route is added when it appears.
        pub(crate) interface: Option<S<String>>,
        /// Preferred source address (`src`).
        pub(crate) src: Option<S<String>>,
        /// Routing table number (`main` is 254, `local` 255). Default 254.
        pub(crate) table: Option<S<RouteTable>>,
        /// Route metric (`metric` / `preference`). Default: the kernel's (0 IPv4, 1024 IPv6).
        pub(crate) metric: Option<S<RouteMetric>>,
        /// `"global"`, `"site"`, `"link"` or `"host"`. Default as `ip route`: link for a
        /// unicast route without gateway, else global.
        #[schemars(extend("enum" = ["global", "site", "link", "host"]))]
        pub(crate) scope: Option<S<String>>,
        /// Route type: `"unicast"` (default), `"blackhole"`, `"unreachable"`, `"prohibit"`
        /// or `"throw"`.
        #[schemars(extend("enum" = ["unicast", "blackhole", "unreachable", "prohibit", "throw"]))]
        pub(crate) r#type: Option<S<String>>,
        /// The gateway is on the link even if no prefix of the device covers it. Default false.
        pub(crate) onlink: Option<S<bool>>,
        /// Put back when deleted while master (default true; false = keepalived's
        /// `no_track`: back at the next takeover).
        pub(crate) track: Option<S<bool>>,
    }
}

table! {
    keys rule_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Rule")]
    pub(crate) struct RawRule {
        /// Source prefix (`from`).
        pub(crate) from: Option<S<String>>,
        /// Destination prefix (`to`).
        pub(crate) to: Option<S<String>>,
        /// Incoming device (`iif`).
        pub(crate) iif: Option<S<String>>,
        /// Outgoing device (`oif`).
        pub(crate) oif: Option<S<String>>,
        /// Firewall mark (`fwmark`).
        pub(crate) fwmark: Option<S<RouteTable>>,
        /// Mask of the firewall mark. Default: all bits.
        pub(crate) fwmask: Option<S<RouteTable>>,
        /// Rule priority (`priority` / `preference` / `pref`). Default: the kernel picks one
        /// below the last rule.
        pub(crate) priority: Option<S<RouteMetric>>,
        /// Look up this table (`table`/`lookup`). Exactly one of table and type.
        pub(crate) table: Option<S<RouteTable>>,
        /// Instead of a table: `"blackhole"`, `"unreachable"` or `"prohibit"`.
        #[schemars(extend("enum" = ["blackhole", "unreachable", "prohibit"]))]
        pub(crate) r#type: Option<S<String>>,
        /// `"ipv4"` or `"ipv6"`; needed only without from/to. Default: theirs, else ipv4.
        #[schemars(extend("enum" = ["ipv4", "ipv6"]))]
        pub(crate) family: Option<S<String>>,
        /// Put back when deleted while master (default true; false = `no_track`).
        pub(crate) track: Option<S<bool>>,
    }
}

table! {
    keys announce_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Announce")]
    pub(crate) struct RawAnnounce {
        /// `"active-standby"` (default): the VRRP master announces, backups withdraw.
        /// `"active-active"`: no VRRP election; every node whose trackers pass announces.
        #[schemars(extend("enum" = ["active-standby", "active-active"]))]
        pub(crate) policy: Option<S<String>>,
        /// The device the VIPs are put on while announced (where the local load balancer
        /// accepts their traffic): `lo` or a dummy device. Default `"lo"`.
        pub(crate) device: Option<S<String>>,
        /// Also install each VIP's host route (/32, /128) in this routing table while
        /// announced, for a BGP daemon that learns a kernel table (BIRD's kernel protocol,
        /// FRR's `redistribute table-direct`). Default: no route, the address only.
        pub(crate) table: Option<S<RouteTable>>,
        /// The host routes' metric (with `table`; BIRD exports it as `krt_metric`).
        pub(crate) metric: Option<S<RouteMetric>>,
        /// Active-active: announce while the effective priority (priority plus tracker
        /// weights) is at least this. Default 1: only FAULT and maintenance withdraw.
        pub(crate) min_priority: Option<S<Priority>>,
    }
}

table! {
    keys peer_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Peer")]
    pub(crate) struct RawPeer {
        /// The peer's address (not a prefix).
        pub(crate) address: Option<S<String>>,
        /// Lowest TTL / hop limit accepted from this peer (keepalived's `min_ttl`); 255 for
        /// a peer on the link. Default: the instance's `unicast_min_ttl`, else any.
        pub(crate) min_ttl: Option<S<Ttl>>,
        /// Highest TTL / hop limit accepted from this peer (keepalived's `max_ttl`).
        /// Default 255.
        pub(crate) max_ttl: Option<S<Ttl>>,
    }
}

table! {
    keys instance_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "Instance")]
    pub(crate) struct RawInstance {
        /// Unique name (logs, `vipctl`, sync groups).
        pub(crate) name: Option<S<String>>,
        /// Link the virtual router lives on.
        pub(crate) interface: Option<S<String>>,
        /// Virtual router ID; same on all routers of this virtual router; unique per
        /// (interface, family) on this host. Not with `announce.policy = "active-active"`.
        pub(crate) vrid: Option<S<Vrid>>,
        /// VRRP version.
        pub(crate) version: Option<S<i64>>,
        /// Higher wins; 255 = address owner (see warnings).
        pub(crate) priority: Option<S<Priority>>,
        /// Advertisement interval. VRRPv3: 10ms..=40.95s in steps of 10ms; VRRPv2: whole
        /// seconds 1s..=255s.
        #[schemars(extend("format" = "duration"))]
        pub(crate) advert_interval: Option<S<String>>,
        /// Take over from a lower-priority master.
        pub(crate) preempt: Option<S<bool>>,
        /// Wait this long before preempting (only with `preempt = true`).
        pub(crate) preempt_delay: Option<S<PreemptDelay>>,
        /// Preempt a lower master after Skew_Time instead of Master_Down_Interval (beyond
        /// RFC 9568 and keepalived; see docs/failure-model.md for when it is safe).
        pub(crate) fast_preempt: Option<S<bool>>,
        /// RFC 9568 Accept_Mode: as master, accept packets addressed to the VIPs.
        pub(crate) accept: Option<S<bool>>,
        /// Virtual addresses, short form.
        pub(crate) vips: Option<S<Vec<S<String>>>>,
        /// Virtual addresses, long form; may be combined with `vips`.
        #[serde(default)]
        pub(crate) vip: Vec<S<RawVip>>,
        /// Addresses held and released with the instance but not carried in adverts
        /// (keepalived's `virtual_ipaddress_excluded`): any number, either family.
        pub(crate) excluded_vips: Option<S<Vec<S<String>>>>,
        /// Routes added while master and removed otherwise (keepalived's `virtual_routes`).
        #[serde(default)]
        pub(crate) route: Vec<S<RawRoute>>,
        /// Policy rules added while master and removed otherwise (keepalived's
        /// `virtual_rules`).
        #[serde(default)]
        pub(crate) rule: Vec<S<RawRule>>,
        /// Route placement (BGP through the operator's routing daemon) instead of gratuitous
        /// ARP/NA on the link: see docs/bgp.md.
        pub(crate) announce: Option<S<RawAnnounce>>,
        /// The instance has no VIPs on purpose: it elects a master and runs its notify
        /// programs, and something else moves the address (a cloud API). keepalived's
        /// `no_virtual_ipaddress`. Default false.
        pub(crate) no_vips: Option<S<bool>>,
        /// Source of advertisements; must be a real address of this host, not a VIP.
        pub(crate) source_address: Option<S<String>>,
        /// Send advertisements to these routers instead of 224.0.0.18 / ff02::12; list the
        /// *other* routers only. Adverts are then accepted from these addresses only, at any
        /// TTL / hop limit unless `unicast_min_ttl` or a peer's `min_ttl` says otherwise
        /// (peers may be routed; keepalived does the same).
        pub(crate) unicast_peers: Option<S<Vec<S<String>>>>,
        /// Unicast peers, long form (with per-peer `min_ttl` / `max_ttl`); may be combined
        /// with `unicast_peers`.
        #[serde(default)]
        pub(crate) unicast_peer: Vec<S<RawPeer>>,
        /// Lowest TTL / hop limit accepted from every unicast peer that sets no `min_ttl`
        /// of its own; 255 proves the peer is on the link (a routed spoofer's packets
        /// arrive lower). Default: any.
        pub(crate) unicast_min_ttl: Option<S<Ttl>>,
        /// Multicast only: accept adverts from these addresses only (the other routers of
        /// this virtual router); default any host on the link.
        pub(crate) allowed_sources: Option<S<Vec<S<String>>>>,
        /// RFC 9568 virtual MAC (keepalived's `use_vmac`): the VIPs live on a macvlan device
        /// with MAC 00:00:5e:00:01:{vrid} (IPv6: 00:00:5e:00:02:{vrid}), created on the
        /// interface, and adverts are sent from it. Default false.
        pub(crate) vmac: Option<S<bool>>,
        /// The VMAC device's name (default `vrrp.{vrid}`, IPv6 `vrrp6.{vrid}`).
        pub(crate) vmac_interface: Option<S<String>>,
        /// Send adverts from the interface itself, not the VMAC device (keepalived's
        /// `vmac_xmit_base`). Default false.
        pub(crate) vmac_xmit_base: Option<S<bool>>,
        /// Multicast only: the group adverts go to and come from (keepalived's
        /// `mcast_dst_ip`). Default: [global] multicast_group_v4 / multicast_group_v6.
        pub(crate) multicast_group: Option<S<String>>,
        /// VRRPv3: the longest advert interval a backup adopts from its master (default:
        /// whatever the master advertises, up to 40.95s, as RFC 9568). Never below our own
        /// `advert_interval`.
        pub(crate) max_adopted_interval: Option<S<V3Interval>>,
        /// VRRPv2 simple-text authentication; an error with VRRPv3.
        pub(crate) auth_pass: Option<S<String>>,
        /// VRRPv2 IPsec Authentication Header (HMAC-MD5-96) with this password, as keepalived's
        /// `auth_type AH`: legacy, for pairs migrating from it (prefer `auth_hmac`). IPv4 only.
        pub(crate) auth_ah: Option<S<String>>,
        /// Authenticated adverts, keepalived's `auth_hmac` (HMAC-SHA256 trailer, v2 and v3).
        pub(crate) auth_hmac: Option<S<RawAuthHmac>>,
        /// Checksum mode override, VRRPv3 over IPv4 only (an error elsewhere).
        #[schemars(extend("enum" = ["with-pseudo-header", "without-pseudo-header"]))]
        pub(crate) checksum: Option<S<String>>,
        /// Per-instance overrides.
        pub(crate) garp_master_delay: Option<S<GarpDelay>>,
        /// Per-instance overrides.
        pub(crate) garp_master_repeat: Option<S<Count255>>,
        /// Per-instance overrides.
        #[schemars(extend("format" = "duration"))]
        pub(crate) garp_master_refresh: Option<S<String>>,
        /// Per-instance overrides.
        pub(crate) garp_master_refresh_repeat: Option<S<Count255>>,
        /// Per-instance overrides.
        pub(crate) garp_interval: Option<S<GarpGap>>,
        /// Per-instance overrides.
        pub(crate) garp_lower_prio_repeat: Option<S<Count255>>,
        /// Per-instance overrides.
        pub(crate) garp_lower_prio_delay: Option<S<GarpDelay>>,
        /// Per-instance override.
        pub(crate) lower_prio_no_advert: Option<S<bool>>,
        /// FAULT while `interface` is down or has no carrier (default). `false` is
        /// keepalived's `dont_track_primary` (cross-connected pairs): link state is ignored; a
        /// missing interface still means FAULT.
        pub(crate) fault_on_link_down: Option<S<bool>>,
        /// `[[track_script]]`s followed; `weight` here overrides the tracker's.
        pub(crate) track_scripts: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_http]]`s followed.
        pub(crate) track_http: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_tcp]]`s followed.
        pub(crate) track_tcp: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_file]]`s followed.
        pub(crate) track_files: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_process]]`s followed.
        pub(crate) track_processes: Option<S<Vec<S<RawTrackRef>>>>,
        /// Interfaces followed (default weight 0 = FAULT while down).
        pub(crate) track_interfaces: Option<S<Vec<S<RawTrackRef>>>>,
        // Notification keys (also in sync groups).
        /// Run on entering the state.
        pub(crate) notify_master: Option<S<RawCommand>>,
        /// Run on entering the state.
        pub(crate) notify_backup: Option<S<RawCommand>>,
        /// Run on entering the state.
        pub(crate) notify_fault: Option<S<RawCommand>>,
        /// Run on entering the state.
        pub(crate) notify_stop: Option<S<RawCommand>>,
        /// Run on every transition with `INSTANCE NAME STATE PRIORITY` appended.
        pub(crate) notify: Option<S<RawCommand>>,
        /// Kill a notify program (and its process group) after this long.
        pub(crate) notify_timeout: Option<S<NotifyTimeout>>,
    }
}

table! {
    keys sync_group_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "SyncGroup")]
    pub(crate) struct RawSyncGroup {
        /// Unique group name.
        pub(crate) name: Option<S<String>>,
        /// The members; an instance belongs to at most one group (as keepalived: unknown
        /// names are ignored, a group of one is kept, an empty group removed; all warned).
        pub(crate) instances: Option<S<Vec<S<String>>>>,
        /// Keep the members' tracker weights (keepalived's `sync_group_tracking_weight`). By
        /// default, as keepalived, a member's tracker acts as weight 0: its failure puts the
        /// whole group in FAULT.
        pub(crate) tracking_weight: Option<S<bool>>,
        /// `[[track_script]]`s every member follows (as if listed in each member).
        pub(crate) track_scripts: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_http]]`s every member follows.
        pub(crate) track_http: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_tcp]]`s every member follows.
        pub(crate) track_tcp: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_file]]`s every member follows.
        pub(crate) track_files: Option<S<Vec<S<RawTrackRef>>>>,
        /// `[[track_process]]`s every member follows.
        pub(crate) track_processes: Option<S<Vec<S<RawTrackRef>>>>,
        /// Interfaces every member follows (weight 0 = FAULT while down).
        pub(crate) track_interfaces: Option<S<Vec<S<RawTrackRef>>>>,
        // Notification keys (as in instances).
        /// Run when all members reached the state; `notify` gets `GROUP NAME STATE 0`.
        pub(crate) notify_master: Option<S<RawCommand>>,
        /// Run when all members reached the state; `notify` gets `GROUP NAME STATE 0`.
        pub(crate) notify_backup: Option<S<RawCommand>>,
        /// Run when all members reached the state; `notify` gets `GROUP NAME STATE 0`.
        pub(crate) notify_fault: Option<S<RawCommand>>,
        /// Run when all members reached the state; `notify` gets `GROUP NAME STATE 0`.
        pub(crate) notify_stop: Option<S<RawCommand>>,
        /// Run when all members reached the state; `notify` gets `GROUP NAME STATE 0`.
        pub(crate) notify: Option<S<RawCommand>>,
        /// Run when all members reached the state; `notify` gets `GROUP NAME STATE 0`.
        pub(crate) notify_timeout: Option<S<NotifyTimeout>>,
    }
}

table! {
    keys track_script_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "TrackScript")]
    pub(crate) struct RawTrackScript {
        /// Unique tracker name.
        pub(crate) name: Option<S<String>>,
        /// The program and its arguments (argv list, no shell).
        pub(crate) command: Option<S<Vec<S<String>>>>,
        /// A command line run with /bin/sh -c (instead of `command`).
        pub(crate) shell: Option<S<String>>,
        /// How often it runs (default 1s).
        pub(crate) interval: Option<S<ProbeTime>>,
        /// Kill it after this long (default: interval, at most 5s).
        pub(crate) timeout: Option<S<ProbeTime>>,
        /// Successes in a row before it counts as up (default 1).
        pub(crate) rise: Option<S<RiseFall>>,
        /// Failures in a row before it counts as down (default 1).
        pub(crate) fall: Option<S<RiseFall>>,
        /// Priority change while down (negative) or up (positive); 0 = FAULT while down.
        pub(crate) weight: Option<S<Weight>>,
        /// User it runs as (default `[global] script_user`).
        pub(crate) user: Option<S<String>>,
    }
}

table! {
    keys track_http_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "TrackHttp")]
    pub(crate) struct RawTrackHttp {
        /// Unique tracker name.
        pub(crate) name: Option<S<String>>,
        /// `http://host[:port]/path` to GET.
        pub(crate) url: Option<S<String>>,
        /// Status codes that count as up (default 200).
        pub(crate) expect_status: Option<S<RawStatuses>>,
        /// How often it probes (default 1s).
        pub(crate) interval: Option<S<ProbeTime>>,
        /// How long a probe may take.
        pub(crate) timeout: Option<S<ProbeTime>>,
        /// Successes in a row before it counts as up.
        pub(crate) rise: Option<S<RiseFall>>,
        /// Failures in a row before it counts as down.
        pub(crate) fall: Option<S<RiseFall>>,
        /// Priority change while down (negative) or up (positive); 0 = FAULT while down.
        pub(crate) weight: Option<S<Weight>>,
    }
}

table! {
    keys track_tcp_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "TrackTcp")]
    pub(crate) struct RawTrackTcp {
        /// Unique tracker name.
        pub(crate) name: Option<S<String>>,
        /// `IP:port` to connect to.
        pub(crate) address: Option<S<String>>,
        /// How often it probes (default 1s).
        pub(crate) interval: Option<S<ProbeTime>>,
        /// How long a connect may take.
        pub(crate) timeout: Option<S<ProbeTime>>,
        /// Successes in a row before it counts as up.
        pub(crate) rise: Option<S<RiseFall>>,
        /// Failures in a row before it counts as down.
        pub(crate) fall: Option<S<RiseFall>>,
        /// Priority change while down (negative) or up (positive); 0 = FAULT while down.
        pub(crate) weight: Option<S<Weight>>,
    }
}

table! {
    keys track_file_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "TrackFile")]
    pub(crate) struct RawTrackFile {
        /// Unique tracker name.
        pub(crate) name: Option<S<String>>,
        /// Absolute path of a file holding an integer (multiplied by the weight).
        pub(crate) path: Option<S<String>>,
        /// Multiplier of the number in the file; 0 = FAULT while it is not 0.
        pub(crate) weight: Option<S<Weight>>,
        /// Create the file holding this number when vipd starts and it is missing
        /// (keepalived's `init_file`). Default: not created.
        pub(crate) init: Option<S<i64>>,
        /// With `init`: write it at every start, even over an existing file (keepalived's
        /// `init_file VALUE overwrite`). Default false.
        pub(crate) init_overwrite: Option<S<bool>>,
    }
}

table! {
    keys track_process_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "TrackProcess")]
    pub(crate) struct RawTrackProcess {
        /// Unique tracker name.
        pub(crate) name: Option<S<String>>,
        /// Process name (comm or argv[0] base name).
        pub(crate) process: Option<S<String>>,
        /// How many must run to count as up (default 1).
        pub(crate) min: Option<S<ProcessCount>>,
        /// At most this many may run to count as up (keepalived's `quorum_max`; 0: up only
        /// while none runs). Default: no limit.
        pub(crate) max: Option<S<ProcessCount>>,
        /// Also match the command line's arguments (keepalived's `process NAME ARGS...`):
        /// `process` is then argv[0] (or its base name).
        pub(crate) args: Option<S<Vec<S<String>>>>,
        /// How `args` match: `"exact"` (default), `"partial"` (the first ones match, more may
        /// follow) or `"initial"` (as partial, the last one given may be a prefix):
        /// keepalived's `param_match`.
        #[schemars(extend("enum" = ["exact", "partial", "initial"]))]
        pub(crate) args_match: Option<S<String>>,
        /// `process` is the whole command line, arguments joined by spaces (keepalived's
        /// `full_command`, `pgrep -f` without patterns). Default false.
        pub(crate) full_command: Option<S<bool>>,
        /// After the count becomes good, wait this long (still good) before reporting up
        /// (keepalived's `fork_delay`). Default 0s.
        #[schemars(extend("format" = "duration"))]
        pub(crate) up_delay: Option<S<ProcessDelay>>,
        /// After the count becomes bad, wait this long (still bad) before reporting down
        /// (keepalived's `terminate_delay`: a restart of the process is not a failure).
        /// Default 0s.
        #[schemars(extend("format" = "duration"))]
        pub(crate) down_delay: Option<S<ProcessDelay>>,
        /// Priority change while down (negative) or up (positive); 0 = FAULT while down.
        pub(crate) weight: Option<S<Weight>>,
    }
}

/// `auth_hmac`'s `time_window`.
pub(crate) type TimeWindow = Dur<1000, 300_000>;
/// A key id (1..=255).
pub(crate) type KeyId = Int<1, 255>;

table! {
    keys auth_hmac_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "AuthHmac")]
    pub(crate) struct RawAuthHmac {
        /// `enforce` (default), `permissive` (also accept unsigned adverts) or `receive-only`
        /// (sign nothing, verify what is signed): keepalived's rollout steps.
        #[schemars(extend("enum" = ["enforce", "permissive", "receive-only"]))]
        pub(crate) mode: Option<S<String>>,
        /// The keys adverts may be signed with (1 to 16).
        pub(crate) keys: Option<S<Vec<S<RawHmacKey>>>>,
        /// The id of the key this host signs with (default: the only key).
        pub(crate) active_key: Option<S<KeyId>>,
        /// `time` (default: a sequence within `time_window` of our UTC clock, growing per sender)
        /// or `monotonic` (growing per sender).
        #[schemars(extend("enum" = ["time", "monotonic"]))]
        pub(crate) anti_replay: Option<S<String>>,
        /// Largest clock difference accepted with anti_replay = "time" (1s..=300s; default
        /// max(3 x advert_interval, 5s)).
        pub(crate) time_window: Option<S<TimeWindow>>,
    }
}

table! {
    keys hmac_key_keys;
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "HmacKey")]
    pub(crate) struct RawHmacKey {
        /// 1..=255, sent in each signed advert.
        pub(crate) id: Option<S<KeyId>>,
        /// The secret: `hex:...` or a passphrase, 32 bytes or more (one of value, file,
        /// credential).
        pub(crate) value: Option<S<String>>,
        /// A file holding the secret in the same forms (refused if group or others can read
        /// it).
        pub(crate) file: Option<S<String>>,
        /// A systemd credential: the file of this name in $CREDENTIALS_DIRECTORY.
        pub(crate) credential: Option<S<String>>,
    }
}

/// The keys of a `{ name = "...", weight = N }` entry of a `track_*` list.
#[allow(non_upper_case_globals)]
pub mod track_ref_keys {
    /// `name`
    pub const name: super::Key = super::Key("name");
    /// `weight`
    pub const weight: super::Key = super::Key("weight");
}

/// A `track_*` list entry: `"name"` or `{ name = "...", weight = N }`.
#[derive(Debug, Default)]
pub(crate) struct RawTrackRef {
    /// Set for the short form (its span is the entry's).
    pub(crate) short: Option<String>,
    pub(crate) name: Option<S<String>>,
    pub(crate) weight: Option<S<Weight>>,
}

impl<'de> Deserialize<'de> for RawTrackRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawTrackRef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name or { name = \"...\", weight = N }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawTrackRef, E> {
                Ok(RawTrackRef {
                    short: Some(s.to_string()),
                    ..RawTrackRef::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawTrackRef, A::Error> {
                let mut out = RawTrackRef::default();
                while let Some(key) = map.next_key::<String>()? {
                    if track_ref_keys::name == *key.as_str() {
                        out.name = Some(map.next_value()?);
                    } else if track_ref_keys::weight == *key.as_str() {
                        out.weight = Some(map.next_value()?);
                    } else {
                        const KNOWN: &[&str] = &[
                            track_ref_keys::name.as_str(),
                            track_ref_keys::weight.as_str(),
                        ];
                        return Err(serde::de::Error::unknown_field(&key, KNOWN));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// A program: `"/path/prog arg"` (split on whitespace) or `["/path/prog", "arg"]`.
#[derive(Debug)]
pub(crate) enum RawCommand {
    Line(String),
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawCommand;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a program path or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawCommand, E> {
                Ok(RawCommand::Line(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawCommand, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(RawCommand::Argv(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `expect_status = 200` or `expect_status = [200, 204]`.
#[derive(Debug)]
pub(crate) struct RawStatuses(pub(crate) Vec<i64>);

impl<'de> Deserialize<'de> for RawStatuses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawStatuses;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a status code or a list of them")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<RawStatuses, E> {
                Ok(RawStatuses(vec![n]))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<RawStatuses, E> {
                Ok(RawStatuses(vec![i64::try_from(n).unwrap_or(i64::MAX)]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawStatuses, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = seq.next_element::<i64>()? {
                    v.push(n);
                }
                Ok(RawStatuses(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RawTrackRef {
    fn schema_name() -> Cow<'static, str> {
        "TrackRef".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A tracker's name, or `{ name, weight }` to override its weight here.",
            "x-vipd-kind": "track-ref",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "description": "The tracker's name." },
                        "weight": {
                            "type": "integer",
                            "minimum": -crate::types::MAX_WEIGHT,
                            "maximum": crate::types::MAX_WEIGHT,
                            "description": "Weight for this instance (overrides the tracker's)."
                        }
                    },
                    "required": ["name"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl JsonSchema for RawCommand {
    fn schema_name() -> Cow<'static, str> {
        "Command".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A program: \"/path/prog arg\" (split on whitespace) or [\"/path/prog\", \"arg\"].",
            "x-vipd-kind": "command",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

impl JsonSchema for RawStatuses {
    fn schema_name() -> Cow<'static, str> {
        "Statuses".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An HTTP status code or a list of them.",
            "x-vipd-kind": "int-or-int-array",
            "anyOf": [
                { "type": "integer" },
                { "type": "array", "items": { "type": "integer" } }
            ]
        })
    }
}
