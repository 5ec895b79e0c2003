//! The pure VRRP state machine (RFC 9568 / RFC 5798 VRRPv3, RFC 3768 VRRPv2).
//!
//! Sans-IO, in the style of `quinn-proto`: nothing here touches a socket or a
//! clock. The I/O shell feeds events (`start`, `handle_advert`,
//! `handle_timeout`, tracker changes) together with the current time `now`,
//! then drains [`Action`]s with `poll_action` and sleeps until `poll_timeout`.
//!
//! * [`Instance`]: one virtual router (one VRID on one interface).
//! * [`Router`]: everything one daemon runs, i.e. several instances plus
//!   sync groups (keepalived's `vrrp_sync_group`), with the same poll API.
//!
//! Input adverts are already decoded and validated by the codec
//! (checksum, TTL/hop limit 255, VRID match): see [`RxAdvert`].
//!
//! Conventions:
//! * Intervals on the wire are carried in centiseconds (`max_advert_int_cs`)
//!   for both versions; for VRRPv2 the value is `seconds * 100` and the shell
//!   converts it to/from the 8-bit seconds field.
//! * Priorities: 0 = "master is stopping", 1..=254 normal, 255 = address owner.

#![warn(missing_docs, unreachable_pub)]

pub mod advert;
pub mod ah;
pub mod alarms;
pub mod auth;
pub mod counters;
mod instance;
mod router;
pub mod rx;

#[cfg(test)]
mod testutil {
    /// Bytes from hex digits (anything else, such as spaces, is skipped).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
        (0..s.len() / 2)
            .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    }
}

pub use instance::{
    ADVERT_GRID_DIVISOR, ADVERT_LEAD_DIVISOR, Instance, LOWER_ANSWERED, Snapshot, Stats,
};
pub use router::{InstanceId, Router, SyncGroupConfig, UnknownInstance};

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// VRRP protocol version of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only in the standard, interval in whole seconds.
    V2,
    /// RFC 9568 (obsoletes RFC 5798): IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl Version {
    /// The version number as it appears on the wire and in the file (2 or 3).
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// RFC state of an instance (`Fault` is keepalived's extra state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// Not running: before `start`, and after `shutdown`.
    Initialize,
    /// Listening to the master, `Master_Down_Timer` running.
    Backup,
    /// Owns the virtual addresses and advertises.
    Master,
    /// A weight-0 tracker failed or the link is down: silent, ignores adverts.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// Gratuitous ARP / unsolicited NA policy (keepalived's `garp_master_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpConfig {
    /// `garp_master_delay`: a second burst this long after becoming master
    /// (zero disables the second burst). keepalived default 5 s.
    pub delay: Duration,
    /// `garp_master_repeat`: frames per VIP per burst. Default 5.
    pub repeat: u32,
    /// `garp_master_refresh`: periodic burst while master (None = off).
    pub refresh: Option<Duration>,
    /// `garp_master_refresh_repeat`: frames per VIP per refresh burst. Default 1.
    pub refresh_repeat: u32,
    /// `garp_lower_prio_repeat`: frames per VIP when a master hears a lower-priority advert
    /// (the other side of a healed split, a stalled peer): clients and routers that followed
    /// the other master's gratuitous ARP/NA come back. Default: `repeat`.
    pub lower_prio_repeat: u32,
    /// `garp_lower_prio_delay`: a second such burst this much later (zero: none). Default:
    /// `delay`.
    pub lower_prio_delay: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            delay: Duration::from_secs(5),
            repeat: 5,
            refresh: None,
            refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
        }
    }
}

/// Configuration of one virtual router instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Name for logs and notifications.
    pub name: String,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// VRRP version (2 or 3).
    pub version: Version,
    /// Configured base priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// Our `Advertisement_Interval`. v2: whole seconds, 1..=255 s.
    /// v3: multiple of 10 ms, 10 ms..=40.95 s.
    pub advert_interval: Duration,
    /// `Preempt_Mode`. Ignored (always on) for the address owner.
    pub preempt: bool,
    /// keepalived `preempt_delay`: see [`Instance`] docs for the exact rule.
    pub preempt_delay: Duration,
    /// Beyond the RFC: a preempting backup that ignores a lower advert arms its down timer
    /// for at most `Skew_Time` (instead of letting `Master_Down_Interval` run out), so a
    /// master whose priority dropped is preempted within one `Skew_Time`.
    pub fast_preempt: bool,
    /// `Accept_Mode`: a non-owner master accepts traffic to the VIPs.
    pub accept_mode: bool,
    /// Our own primary address on the interface (the advert source),
    /// used for the equal-priority tie-break between masters.
    pub primary_addr: IpAddr,
    /// Gratuitous ARP / unsolicited NA bursts on becoming master and while master.
    pub garp: GarpConfig,
    /// keepalived's `lower_prio_no_advert`: a master that hears a lower-priority advert does
    /// not answer it with an advert of its own (it still re-announces its VIPs).
    pub lower_prio_no_advert: bool,
    /// VRRPv3: the longest `Master_Adver_Interval` a backup adopts from a master's adverts
    /// (`None`: any, as RFC 9568 says). One forged advert with a 40.95 s interval would
    /// otherwise leave the backups waiting over two minutes before they notice the master
    /// is gone.
    pub max_adopted_interval: Option<Duration>,
    /// Active-active announcement (vipd's `[instance.announce] policy = "active-active"`): no
    /// VRRP runs. The instance is Master (announcing: [`Action::ClaimVips`]) while it has no
    /// fault, is not in maintenance and its effective priority is at least this; Backup
    /// otherwise. It sends no adverts and accepts none; its VRID (0) means nothing.
    pub anycast: Option<u8>,
}

/// Longest VRRPv3 interval: 4095 centiseconds.
pub const V3_MAX_INTERVAL: Duration = Duration::from_millis(40_950);
/// Shortest VRRPv3 interval: 1 centisecond.
pub const V3_MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest accepted `preempt_delay` (keepalived's limit is 1000 s).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// Invalid configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// VRID 0 is reserved.
    #[error("vrid must be 1..=255, got 0")]
    VridZero,
    /// Priority 0 is reserved for "the master is stopping".
    #[error("priority must be 1..=255, got 0")]
    PriorityZero,
    /// The interval is outside the version's range.
    #[error("advert_interval {interval:?} out of range for {version:?}")]
    IntervalOutOfRange {
        /// The instance's version.
        version: Version,
        /// The configured interval.
        interval: Duration,
    },
    /// The interval is not a whole number of the version's unit.
    #[error("advert_interval {interval:?} is not a whole number of {unit}")]
    IntervalGranularity {
        /// The configured interval.
        interval: Duration,
        /// "seconds" (v2) or "centiseconds" (v3).
        unit: &'static str,
    },
    /// `preempt_delay` above [`MAX_PREEMPT_DELAY`].
    #[error("preempt_delay {0:?} exceeds 1000 s")]
    PreemptDelayTooLong(Duration),
    /// A periodic GARP refresh needs a non-zero interval.
    #[error("garp refresh interval must be non-zero")]
    GarpRefreshZero,
    /// The advert source address is unspecified (0.0.0.0 / ::).
    #[error("primary address must not be unspecified")]
    PrimaryAddrUnspecified,
    /// One instance of a [`Router`] is invalid.
    #[error("instance {index} ({name}): {source}")]
    Instance {
        /// Its index in the router.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong with it.
        #[source]
        source: Box<ConfigError>,
    },
    /// A sync group names an instance the router does not have.
    #[error("sync group {group}: no instance {member}")]
    GroupMemberOutOfRange {
        /// The group.
        group: String,
        /// The instance id.
        member: u32,
    },
    /// Two instances were given the same [`InstanceId`].
    #[error("instance id {id} is given twice")]
    DuplicateId {
        /// The id.
        id: u32,
    },
    /// An instance is in two sync groups.
    #[error("sync group {group}: instance {member} is already in sync group {other}")]
    GroupMemberShared {
        /// The second group.
        group: String,
        /// The instance id.
        member: u32,
        /// The group it is already in.
        other: String,
    },
    /// A sync group without members.
    #[error("sync group {group} has no members")]
    GroupEmpty {
        /// The group.
        group: String,
    },
}

impl InstanceConfig {
    /// A config with keepalived-like defaults (preempt on, no delay, accept off).
    pub fn new(
        name: impl Into<String>,
        vrid: u8,
        version: Version,
        priority: u8,
        primary_addr: IpAddr,
    ) -> Self {
        InstanceConfig {
            name: name.into(),
            vrid,
            version,
            priority,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            fast_preempt: false,
            accept_mode: false,
            primary_addr,
            garp: GarpConfig::default(),
            lower_prio_no_advert: false,
            max_adopted_interval: None,
            anycast: None,
        }
    }

    /// Range checks: vrid/priority non-zero, interval range and granularity
    /// per version, preempt delay <= 1000 s, non-zero refresh.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 && self.anycast.is_none() {
            return Err(ConfigError::VridZero);
        }
        if self.priority == 0 {
            return Err(ConfigError::PriorityZero);
        }
        let i = self.advert_interval;
        match self.version {
            Version::V2 => {
                if i < Duration::from_secs(1) || i > Duration::from_secs(255) {
                    return Err(ConfigError::IntervalOutOfRange {
                        version: self.version,
                        interval: i,
                    });
                }
                if i.subsec_nanos() != 0 {
                    return Err(ConfigError::IntervalGranularity {
                        interval: i,
                        unit: "seconds",
                    });
                }
            }
            Version::V3 => {
                if i < V3_MIN_INTERVAL || i > V3_MAX_INTERVAL {
                    return Err(ConfigError::IntervalOutOfRange {
                        version: self.version,
                        interval: i,
                    });
                }
                if !i.as_nanos().is_multiple_of(10_000_000) {
                    return Err(ConfigError::IntervalGranularity {
                        interval: i,
                        unit: "centiseconds",
                    });
                }
            }
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelayTooLong(self.preempt_delay));
        }
        if self.garp.refresh == Some(Duration::ZERO) {
            return Err(ConfigError::GarpRefreshZero);
        }
        if self.primary_addr.is_unspecified() {
            return Err(ConfigError::PrimaryAddrUnspecified);
        }
        Ok(())
    }

    /// Our advertisement interval in centiseconds, clamped to the version's
    /// range (v2 values are `seconds * 100`).
    pub fn advert_interval_cs(&self) -> u16 {
        interval_cs(self.version, self.advert_interval)
    }

    /// True for the address owner (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Whether `other` is the same virtual router on the wire (VRID, version, address
    /// family): then a running instance takes `other` in place ([`Instance::reconfigure`]);
    /// otherwise it must be stopped and a new one started. (A new advert source address of
    /// the same family is taken in place, as keepalived does.)
    pub fn same_virtual_router(&self, other: &InstanceConfig) -> bool {
        self.vrid == other.vrid
            && self.anycast.is_some() == other.anycast.is_some()
            && self.version == other.version
            && self.primary_addr.is_ipv4() == other.primary_addr.is_ipv4()
    }
}

/// A decoded, checksum-verified advertisement for this instance's VRID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxAdvert {
    /// IP source address (the sender's primary address).
    pub src: IpAddr,
    /// The advert's VRRP version.
    pub version: Version,
    /// The sender's priority (0: it is stopping).
    pub priority: u8,
    /// Max Adver Int in centiseconds (v2: the seconds field * 100).
    pub max_advert_int_cs: u16,
}

/// Why an advert was not processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Instance is in `Initialize` (not started or shut down).
    #[error("instance not running")]
    NotRunning,
    /// Instance is in `Fault`.
    #[error("instance in fault")]
    Faulted,
    /// Advert version differs from the configured one.
    #[error("version mismatch")]
    VersionMismatch,
    /// Source address family differs from our primary address's.
    #[error("address family mismatch")]
    AddressFamilyMismatch,
    /// Source is our own primary address (looped back).
    #[error("own advert")]
    OwnAdvert,
    /// VRRPv2 (RFC 3768 §7.1): the advert interval differs from ours.
    #[error("advert interval {theirs_cs} cs differs from ours {ours_cs} cs")]
    IntervalMismatch {
        /// Our interval, in centiseconds.
        ours_cs: u16,
        /// The advert's, in centiseconds.
        theirs_cs: u16,
    },
    /// VRRPv3 advert with Max Adver Int 0.
    #[error("zero advert interval")]
    ZeroInterval,
    /// [`Router::handle_advert`] with an out-of-range index.
    #[error("no instance {0}")]
    UnknownInstance(InstanceId),
}

/// Cause label of a fault, carried in the notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FaultCause {
    /// The interface (named) is down or lost its address.
    LinkDown(String),
    /// A weight-0 tracker (named) failed.
    Tracker(String),
    /// Anything else (free text).
    Other(String),
}

impl fmt::Display for FaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultCause::LinkDown(s) => write!(f, "link-down:{s}"),
            FaultCause::Tracker(s) => write!(f, "tracker:{s}"),
            FaultCause::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `start`: Initialize -> Backup.
    Startup,
    /// `start` (or fault cleared / maintenance left) with priority 255:
    /// straight to Master.
    AddressOwner,
    /// Backup -> Master: `Master_Down_Timer` expired (no advert heard).
    MasterDown,
    /// Backup -> Master: the timer, shortened to `Skew_Time` by a priority-0
    /// advert (the master stopped cleanly), expired.
    PriorityZeroReceived,
    /// Backup -> Master: we preempted a lower-priority master (its adverts
    /// were ignored until our timer expired).
    Preempt,
    /// Master -> Backup: an advert with higher priority (or equal priority and
    /// higher primary address) arrived.
    HigherPriorityAdvert,
    /// Any -> Initialize: `shutdown`.
    Shutdown,
    /// Any -> Fault: our own fault, with its cause.
    FaultRaised(FaultCause),
    /// Fault -> Backup (or Master for the owner): fault cleared.
    FaultCleared,
    /// Master -> Backup: we were silent longer than the peers' `Master_Down_Interval` (a
    /// stall of the process or the host) and, without preempt, accept the router that took
    /// over meanwhile instead of taking the VIPs back.
    Stalled,
    /// Forced by a sync group: `member` of `group` made the transition first.
    SyncGroup {
        /// The group's name.
        group: String,
        /// The member that moved first.
        member: InstanceId,
    },
    /// Master -> Backup on entering maintenance, or owner -> Master on
    /// leaving it.
    Maintenance,
    /// Active-active ([`InstanceConfig::anycast`]): the effective priority reached the
    /// threshold (-> Master) or fell below it (-> Backup).
    Threshold {
        /// The effective priority now.
        effective: u8,
        /// The configured minimum.
        min: u8,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::AddressOwner => f.write_str("address-owner"),
            Reason::MasterDown => f.write_str("master-down"),
            Reason::PriorityZeroReceived => f.write_str("priority-zero-received"),
            Reason::Preempt => f.write_str("preempt"),
            Reason::HigherPriorityAdvert => f.write_str("higher-priority-advert"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::FaultRaised(c) => write!(f, "fault({c})"),
            Reason::FaultCleared => f.write_str("fault-cleared"),
            Reason::Stalled => f.write_str("stalled"),
            Reason::SyncGroup { group, member } => write!(f, "sync-group({group}, {member})"),
            Reason::Maintenance => f.write_str("maintenance"),
            Reason::Threshold { effective, min } => write!(f, "priority({effective}/{min})"),
        }
    }
}

/// A state change, reported through [`Action::Notify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// When (the `now` of the event that caused it).
    pub at: Instant,
}

/// Something the shell must do, drained with `poll_action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Build and send an advertisement with these fields (the VIP list and
    /// VRID come from config). `priority: 0` means "I am stopping".
    SendAdvert {
        /// The priority to advertise.
        priority: u8,
        /// Max Adver Int in centiseconds (v2: seconds x 100).
        max_advert_int_cs: u16,
    },
    /// Add the virtual addresses (and the VMAC if any).
    ClaimVips,
    /// Remove the virtual addresses.
    ReleaseVips,
    /// Send `repeat` gratuitous ARPs / unsolicited NAs per VIP.
    SendGratuitous {
        /// Frames per VIP.
        repeat: u32,
    },
    /// A state transition, for logs, notify scripts and metrics.
    Notify(Transition),
    /// A master heard an advert of lower priority for its VRID (keepalived's
    /// `master-rx-lower-priority`): another router believes it is master. Reported at most
    /// once per advert interval per sender, with the answer (an advert unless
    /// `lower_prio_no_advert`, and a gratuitous burst) already queued.
    LowerPriorityAdvert {
        /// Who sent it.
        from: IpAddr,
        /// The priority it advertised.
        priority: u8,
    },
    /// Another router advertises priority 255 for our VRID while we are the address owner
    /// too: a configuration error (keepalived's rogue owner handling, see
    /// [`OwnerConflict`]).
    OwnerConflict {
        /// The other owner.
        from: IpAddr,
        /// What we do about it.
        step: OwnerConflict,
    },
    /// A member of a sync group wanted to become master (its `Master_Down_Timer` ran out)
    /// but another running member still hears a master: it stays Backup and tries again
    /// after `Master_Down_Interval` (keepalived's `vrrp_sync_can_goto_master`). Reported
    /// once per hold, when it begins.
    HeldBySyncGroup {
        /// The group.
        group: String,
        /// A member that does not want to become master.
        waiting_for: InstanceId,
    },
    /// A backup with `preempt_delay` heard a lower master: it takes over once the delay has
    /// run out (unless the master's priority comes back up first). For the log.
    PreemptDelayStarted {
        /// The lower master.
        master: IpAddr,
        /// Its priority.
        priority: u8,
        /// The delay.
        delay: Duration,
    },
    /// A running preempt delay was called off: the master advertises our priority or more
    /// again. For the log.
    PreemptDelayCancelled {
        /// The master.
        master: IpAddr,
        /// Its priority now.
        priority: u8,
    },
    /// The effective priority changed (for observers).
    PriorityChanged {
        /// The configured priority.
        base: u8,
        /// The priority after tracker weights.
        effective: u8,
    },
}

/// How a master that is the address owner handles another owner of its VRID (keepalived's
/// rogue owner handling): the one with the higher address stays master; if the other keeps
/// advertising 255 after two more of our adverts (it ignores adverts, as FRR's owner and
/// keepalived in strict mode do), we drop to 254 so that there is one master, and take 255
/// back when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerConflict {
    /// Another router claims to be the owner: it should step down (we have the higher
    /// address) or we do (it has).
    Detected,
    /// It kept advertising 255 after two more adverts of ours: we advertise 254 and step
    /// down to it.
    BackedOff,
    /// It stopped advertising as owner (we won the election again, or hear a lower
    /// priority): we are 255 again.
    Restored,
    /// It stopped advertising within the window after our two adverts: it backed off.
    Stopped,
}

impl fmt::Display for OwnerConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OwnerConflict::Detected => "detected",
            OwnerConflict::BackedOff => "backed-off",
            OwnerConflict::Restored => "restored",
            OwnerConflict::Stopped => "stopped",
        })
    }
}

/// Convert an interval to the centisecond wire value, clamped to the
/// version's valid range.
pub fn interval_cs(version: Version, d: Duration) -> u16 {
    let cs = d.as_millis() / 10;
    match version {
        Version::V2 => {
            let secs = d.as_secs().clamp(1, 255);
            // 1..=255 s -> 100..=25500 cs fits in u16.
            u16::try_from(secs * 100).unwrap_or(25_500)
        }
        Version::V3 => u16::try_from(cs.clamp(1, 4095)).unwrap_or(4095),
    }
}

/// `Skew_Time` for a priority and master interval.
///
/// v3 (RFC 9568 §6.1): `((256 - priority) * Master_Adver_Interval) / 256`,
/// computed exactly (nanosecond truncation).
/// v2 (RFC 3768 §6.1): `(256 - priority) / 256` seconds.
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Duration) -> Duration {
    let p = 256 - u128::from(priority);
    let base = match version {
        Version::V2 => Duration::from_secs(1),
        Version::V3 => master_adver_interval,
    };
    nanos(base.as_nanos() * p / 256)
}

/// `Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time`.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Duration,
) -> Duration {
    nanos(master_adver_interval.as_nanos() * 3).saturating_add(skew_time(
        version,
        priority,
        master_adver_interval,
    ))
}

fn nanos(n: u128) -> Duration {
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    // < 1e9 always fits.
    let sub = u32::try_from(n % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// Effective priority: the owner stays 255, others
/// `clamp(base + delta, 1, 254)`.
pub fn effective_priority(base: u8, delta: i32) -> u8 {
    if base == 255 {
        return 255;
    }
    let v = i64::from(base) + i64::from(delta);
    u8::try_from(v.clamp(1, 254)).unwrap_or(1)
}

/// `a > b` for the equal-priority tie-break; false across address families.
pub fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a > b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a > b,
        _ => false,
    }
}
