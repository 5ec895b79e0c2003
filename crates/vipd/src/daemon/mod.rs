//! The I/O shell: a single-threaded tokio runtime that feeds the sans-IO [`vipd_proto::Router`]
//! with packets, timers, link events and signals, and carries out the actions it returns
//! (send adverts, add/remove VIPs through netlink, send gratuitous ARP / NA).

pub mod control;
mod held;
mod reload;
pub mod state;
pub mod timer;
mod tracking;
pub mod upgrade;
mod vmac;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::net::netlink::{AddrSpec, NetEvent, NetEvents, Netlink, RtNetlink};
use crate::net::packet::FrameSender;
use crate::net::vrrp_socket::{VrrpSocketV4, VrrpSocketV6};
use vipd_config::{self as config, Config};
use vipd_proto::{self as proto, Action, InstanceConfig, InstanceId, Router, State, Transition};
use vipd_wire::{ChecksumMode, Family};

use vipd_proto::advert::{self as tx, TxView};
use vipd_proto::counters::{Counters, Drop, Drops};
use vipd_proto::rx::{self, Outcome, Received, RxView};

/// How many packets may wait between the socket readers and the state machine.
const RX_QUEUE: usize = 4096;
/// Largest datagram read from a raw socket.
const RX_BUF: usize = 4096;
/// A timer that fires this late is logged: the process or the host was stalled.
const STALL_WARN: Duration = Duration::from_millis(250);
/// An alarm clears after this long without evidence (or ten advert intervals, if longer).
const ALARM_QUIET: Duration = Duration::from_secs(10);
/// How often a master checks that its VIPs are still on the interface (besides netlink events).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// Every this many reconciles, masters check that their tracked routes and rules are there.
const ROUTE_CHECK_EVERY: u64 = 10;

/// The IP source of a received datagram, when its header is readable.
fn packet_source(pkt: Received<'_>) -> Option<IpAddr> {
    match pkt {
        Received::V4(b) if b.len() >= 20 && b.first().is_some_and(|v| v >> 4 == 4) => {
            let a: [u8; 4] = b.get(12..16)?.try_into().ok()?;
            Some(IpAddr::V4(a.into()))
        }
        Received::V4(_) => None,
        Received::V6 { src, .. } => Some(IpAddr::V6(src)),
    }
}

/// The VRID of a received VRRP packet, when its header is readable.
fn packet_vrid(pkt: Received<'_>) -> Option<u8> {
    match pkt {
        Received::V4(b) => {
            let ihl = usize::from(b.first()? & 0x0f) * 4;
            b.get(ihl + 1).copied()
        }
        Received::V6 { payload, .. } => payload.get(1).copied(),
    }
}

/// Instance `id`'s effective priority (0 if the router does not have it).
fn effective(router: &Router, id: InstanceId) -> u8 {
    router
        .instance(id)
        .map(|i| i.effective_priority())
        .unwrap_or(0)
}

/// A state entered, as logs, events and notify programs all name it: the stopped state is
/// STOP (keepalived's notify word), whatever the state machine calls it.
fn to_word(s: State) -> String {
    match s {
        State::Initialize => "STOP".to_owned(),
        s => s.to_string(),
    }
}

/// A transition as an operator's sentence, naming the peer whose advert (or silence) caused
/// it: "VI_1: MASTER -> BACKUP: 10.0.0.12 advertises 255 > 150".
fn transition_sentence(
    name: &str,
    t: &Transition,
    heard: Option<(IpAddr, u8)>,
    ours: u8,
) -> String {
    use proto::Reason as R;
    let head = format!("{name}: {} -> {}", t.from, to_word(t.to));
    match (&t.reason, heard) {
        (R::HigherPriorityAdvert, Some((peer, theirs))) if theirs == ours => {
            format!("{head}: {peer} advertises the same priority {theirs} from a higher address")
        }
        (R::HigherPriorityAdvert, Some((peer, theirs))) => {
            format!("{head}: {peer} advertises {theirs} > {ours}")
        }
        (R::MasterDown, Some((peer, _))) => format!(
            "{head}: no advert from the master {peer} for Master_Down_Interval (master down)"
        ),
        (R::MasterDown, None) => format!("{head}: no master heard for Master_Down_Interval"),
        (R::PriorityZeroReceived, Some((peer, _))) => {
            format!("{head}: the master {peer} stepped down (priority 0)")
        }
        (R::Preempt, Some((peer, theirs))) => {
            format!("{head}: preempting {peer}, which advertises {theirs} < {ours}")
        }
        (R::Threshold { effective, min }, _) if effective < min => {
            format!("{head}: effective priority {effective} is below the announce threshold {min}")
        }
        (R::Threshold { effective, min }, _) => {
            format!("{head}: effective priority {effective} reached the announce threshold {min}")
        }
        (reason, _) => format!("{head}: {reason}"),
    }
}

/// How often the loop pings systemd's watchdog and publishes the metrics snapshot: every
/// second, or at half the watchdog's timeout if that is shorter.
fn housekeeping_every(watchdog: Option<Duration>) -> Duration {
    let every = crate::ctl::metrics::SNAPSHOT_EVERY;
    watchdog.map_or(every, |w| (w / 2).clamp(Duration::from_millis(10), every))
}
/// Transitions kept per instance for status.
const HISTORY: usize = 16;
/// Longest wait at startup for every tracker's first result before the state machines start.
const FIRST_RESULTS: Duration = Duration::from_secs(2);

/// Runs the agent until SIGTERM/SIGINT. On those it hands over (priority 0), releases its VIPs
/// and returns `Ok(())`. With `handover` (this binary was executed by `vipctl upgrade`), it
/// goes on from the state the previous binary handed over (see [`upgrade`]).
pub fn run(
    cfg: Config,
    config_path: PathBuf,
    handover: Option<upgrade::Handover>,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let nl = RtNetlink::new()?;
        let mut daemon = Daemon::setup_handed(cfg, nl, handover).await?;
        let control = daemon.io.handed.as_mut().and_then(|h| {
            let fd = h.state.control.as_ref()?.0;
            h.take_fd(fd)
        });
        // What was handed over and not taken is closed here.
        daemon.io.handed = None;
        daemon.serve_control(config_path, control).await?;
        daemon.run().await
    })
}

/// One raw socket, shared by the instances on one interface, family and source address.
enum Sock {
    V4(Arc<VrrpSocketV4>),
    V6(Arc<VrrpSocketV6>),
    /// Its interface was deleted: closed, its reader stopped (the slot keeps the indexes of
    /// the other sockets stable). Instances on it are re-opened on a new socket.
    Closed,
}

impl Sock {
    /// Sends `msgs` (see `VrrpSocketV4::send_batch`): one result per message, in order; a
    /// destination of the other family, or a closed socket, is an error for that message.
    async fn send_batch(&self, msgs: &[(&[u8], IpAddr)]) -> Vec<io::Result<()>> {
        fn split<'m, A: Copy>(
            msgs: &[(&'m [u8], IpAddr)],
            addr: impl Fn(IpAddr) -> Option<A>,
        ) -> Vec<(&'m [u8], A)> {
            msgs.iter()
                .filter_map(|&(p, d)| addr(d).map(|a| (p, a)))
                .collect()
        }
        let sent = match self {
            Sock::V4(s) => {
                let v4 = |d| match d {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                };
                s.send_batch(&split(msgs, v4)).await
            }
            Sock::V6(s) => {
                let v6 = |d| match d {
                    IpAddr::V6(a) => Some(a),
                    IpAddr::V4(_) => None,
                };
                s.send_batch(&split(msgs, v6)).await
            }
            Sock::Closed => Vec::new(),
        };
        // Put the results back in the messages' places.
        let fits = |d: &IpAddr| match self {
            Sock::V4(_) => d.is_ipv4(),
            Sock::V6(_) => d.is_ipv6(),
            Sock::Closed => false,
        };
        let mut sent = sent.into_iter();
        msgs.iter()
            .map(|(_, d)| match (fits(d), self) {
                (true, _) => sent
                    .next()
                    .unwrap_or_else(|| Err(io::Error::other("not sent"))),
                (false, Sock::Closed) => {
                    Err(io::Error::other("socket closed: the interface is gone"))
                }
                (false, _) => Err(io::Error::other("address family mismatch")),
            })
            .collect()
    }
}

struct SockInfo {
    sock: Sock,
    /// Sends only (a VMAC device's: no multicast membership, no reader; adverts are read on
    /// its parent).
    tx_only: bool,
    /// IP protocol 51 (VRRPv2 IPsec-AH datagrams, with their own IP header).
    ah: bool,
    ifindex: u32,
    family: Family,
    src: IpAddr,
    /// The kernel's SO_RXQ_OVFL count last seen on it (its drops for want of buffer).
    overflows: u32,
    /// The reader task, for the socket that reads its (interface, family).
    reader: Option<tokio::task::AbortHandle>,
}

impl SockInfo {
    fn open(&self) -> bool {
        !matches!(self.sock, Sock::Closed)
    }
}

/// UTC now, for `auth_hmac` sequences (a clock before 1970 reads as 0).
fn utc_now() -> Duration {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// An advert built and waiting in the send batch.
struct Queued {
    idx: usize,
    sock: usize,
    dst: IpAddr,
    bytes: std::ops::Range<usize>,
    priority: u8,
}

/// Most adverts gathered before they are sent.
const TX_BATCH: usize = 1024;

/// A packet from a socket reader task.
struct Inbound {
    sock: usize,
    /// The socket's SO_RXQ_OVFL count with it.
    overflows: Option<u32>,
    /// When it arrived: the kernel's receive time (see [`received_at`]).
    at: Instant,
    data: Vec<u8>,
    v6: Option<V6Meta>,
    /// Larger than [`RX_BUF`] (so larger than any valid advert): `data` is empty, the
    /// packet is only counted.
    oversized: bool,
}

impl Inbound {
    /// A datagram of `info.len` bytes of `buf` read from socket `sock`, timed by the kernel's
    /// receive stamp.
    fn received(sock: usize, info: &RecvInfo, buf: &[u8]) -> Inbound {
        Inbound {
            sock,
            overflows: info.overflows,
            at: crate::net::stamp::received_at(Instant::now(), SystemTime::now(), info.received),
            data: buf.get(..info.len).unwrap_or(&[]).to_vec(),
            v6: info.v6,
            oversized: false,
        }
    }

    /// A datagram too large for any advert (only counted).
    fn oversized(sock: usize) -> Inbound {
        Inbound {
            sock,
            overflows: None,
            at: Instant::now(),
            data: Vec::new(),
            v6: None,
            oversized: true,
        }
    }
}

/// What a reader does after a receive error: an oversized datagram (the kernel reassembles
/// fragments up to 64 KiB) is forwarded to be counted at once — pausing on it would let
/// anyone on the link stall the receive path — anything else is logged (rate-limited) and
/// retried after a short pause.
async fn after_recv_error(
    e: &io::Error,
    errors: &mut u64,
    tx: &mpsc::Sender<Inbound>,
    sock: usize,
    full: &AtomicU64,
) -> Result<(), ()> {
    if e.kind() == io::ErrorKind::InvalidData {
        return forward(tx, Inbound::oversized(sock), full);
    }
    *errors += 1;
    if errors.is_power_of_two() {
        warn!(error = %e, count = *errors, "VRRP socket receive failed");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// `auth_ah` state of an instance (see [`proto::ah`]).
#[derive(Debug, Clone)]
struct AhState {
    key: [u8; 8],
    counter: proto::ah::AhCounter,
    /// The IP identification of the last datagram (never 0: the kernel would pick one, and
    /// the ICV covers it).
    ip_id: u16,
}

/// What the shell knows of one instance beyond the state machine: the one per-instance
/// record of the daemon (tracking and notification state included).
pub struct Inst {
    /// Its identity in the router, kept across reloads while it runs unchanged.
    pub id: InstanceId,
    /// The configuration.
    pub cfg: config::Instance,
    /// Interface index.
    pub ifindex: u32,
    /// Interface MAC (source of gratuitous frames).
    pub mac: [u8; 6],
    /// Our source address.
    pub src: IpAddr,
    /// The addresses its adverts carry (the VIPs not excluded).
    pub vip_addrs: Vec<IpAddr>,
    /// Where it put each VIP it holds (see `held.rs`); empty unless holding.
    pub placed: Vec<held::Placed>,
    /// The routes and rules it added while holding.
    placed_routes: Vec<held::PlacedRoute>,
    placed_rules: Vec<config::Rule>,
    /// The devices of VIPs it should hold that do not exist (said once each).
    missing_devices: Vec<String>,
    /// Its RFC 9568 VMAC device (`vmac = true`).
    pub vmac: Option<vmac::VmacDev>,
    /// `auth_ah`: the key, the sequence counter, the IP identification of its datagrams.
    ah: Option<AhState>,
    /// The interface its adverts are read on: `ifindex`, or its VMAC device's.
    rx_if: u32,
    /// Where adverts go: the multicast group, or each unicast peer.
    pub dsts: Vec<IpAddr>,
    /// Whether we hold the VIPs (claimed and not released).
    pub holding: bool,
    /// Whether the interface is up (with carrier).
    pub link_up: bool,
    /// Counters.
    pub counters: Counters,
    /// Last transitions with their wall-clock time, newest last.
    pub history: VecDeque<(SystemTime, Transition)>,
    /// When the instance entered its current state.
    pub since: SystemTime,
    /// The last failover drill.
    pub last_drill: Option<crate::ctl::DrillReport>,
    /// Sticky alarms about peers' configurations (see [`proto::alarms`]).
    pub alarms: proto::alarms::Alarms,
    /// `auth_hmac`: the sequence of our signed adverts, and the senders' marks.
    hmac_seq: proto::auth::Sequencer,
    hmac_verifier: proto::auth::Verifier,
    /// Fault cause last given to the router (link down or a weight-0 tracker).
    fault_applied: Option<proto::FaultCause>,
    /// The last advert accepted: its sender and priority (what a transition's log names).
    heard: Option<(IpAddr, u8)>,
    /// The master this node last knew of (itself when master), for "master changed", and
    /// since when.
    master_seen: Option<IpAddr>,
    pub master_since: Option<SystemTime>,
    /// `[instance.announce]`: when the announcement last changed (or the instance started
    /// withdrawn), and why.
    pub announce_since: Option<SystemTime>,
    pub announce_reason: Option<String>,
    /// The state its notify programs were last told (sync-group notifications wait for
    /// every member).
    notified: State,
    sock: usize,
    auth: Option<[u8; 8]>,
    family: Family,
    checksum: ChecksumMode,
}

impl Inst {
    /// The send view; `seq`: this advert's `auth_hmac` sequence (ignored without auth_hmac).
    fn tx_view(&self, seq: u64) -> TxView<'_> {
        TxView {
            vrid: self.cfg.vrid,
            version: self.cfg.version,
            auth: self.auth,
            ah: self.ah.is_some(),
            vips: &self.vip_addrs,
            family: self.family,
            checksum: self.checksum,
            src: self.src,
            hmac: self.cfg.auth_hmac.as_ref().map(|a| (a, seq)),
        }
    }

    /// The `auth_hmac` sequence of the next advert (0 without auth_hmac).
    fn next_seq(&mut self) -> u64 {
        match &self.cfg.auth_hmac {
            Some(a) if a.mode.signs() => self.hmac_seq.next(utc_now(), a.anti_replay),
            _ => 0,
        }
    }

    fn rx_view(&self) -> RxView<'_> {
        RxView {
            version: self.cfg.version,
            auth: self.auth,
            ah: self.ah.is_some(),
            peers: &self.cfg.unicast_peers,
            peer_ttl: &self.cfg.peer_ttl,
            allowed: &self.cfg.allowed_sources,
            own: self.src,
            interval_cs: proto::interval_cs(self.cfg.version, self.cfg.advert_interval),
            checksum: self.checksum,
            vips: &self.vip_addrs,
        }
    }

    /// An instance whose interface does not exist (yet): no socket, link down, so FAULT.
    /// (Also the base [`Daemon::prepare`] fills in from the interface.)
    /// Its source address is the configured one, else its first VIP as a stand-in for the
    /// state machine (a FAULT instance neither sends nor compares addresses); it is
    /// re-opened with the interface's real address when the interface appears.
    fn missing(c: &config::Instance, family: Family) -> Inst {
        let unspecified = match family {
            Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let stand_in = c.advertised_vips().next().map_or(unspecified, |v| v.addr);
        Inst {
            // Given by the daemon when the instance joins the router.
            id: InstanceId(u32::MAX),
            cfg: c.clone(),
            ifindex: 0,
            mac: [0; 6],
            src: c.source_address.unwrap_or(stand_in),
            vip_addrs: c.advertised_vips().map(|v| v.addr).collect(),
            placed: Vec::new(),
            placed_routes: Vec::new(),
            placed_rules: Vec::new(),
            missing_devices: Vec::new(),
            vmac: None,
            rx_if: 0,
            ah: c.auth_ah.as_ref().map(|p| AhState {
                key: p.wire_bytes(),
                counter: proto::ah::AhCounter::from_clock(
                    SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                ),
                ip_id: 0,
            }),
            dsts: Vec::new(),
            holding: false,
            link_up: false,
            counters: Counters::default(),
            history: VecDeque::with_capacity(HISTORY),
            since: SystemTime::now(),
            last_drill: None,
            alarms: proto::alarms::Alarms::default(),
            hmac_seq: proto::auth::Sequencer::default(),
            hmac_verifier: proto::auth::Verifier::default(),
            fault_applied: None,
            heard: None,
            master_seen: None,
            master_since: None,
            announce_since: None,
            announce_reason: None,
            notified: State::Initialize,
            sock: usize::MAX,
            auth: c.auth_pass.as_ref().map(|p| p.wire_bytes()),
            family,
            checksum: c.checksum,
        }
    }

    /// Whether the interface was missing when the instance was opened (it has no socket).
    pub fn interface_missing(&self) -> bool {
        self.ifindex == 0
    }

    fn addr_spec(vip: &config::Vip) -> AddrSpec {
        AddrSpec {
            addr: vip.addr,
            prefix_len: vip.prefix_len,
            label: vip.label.clone(),
            scope: vip.scope,
            nodad: vip.addr.is_ipv6(),
        }
    }
}

/// The proto configuration of an instance.
pub fn instance_config(c: &config::Instance, primary: IpAddr) -> InstanceConfig {
    InstanceConfig {
        name: c.name.clone(),
        vrid: c.vrid,
        version: c.version,
        priority: c.priority,
        advert_interval: c.advert_interval,
        preempt: c.preempt,
        preempt_delay: c.preempt_delay,
        fast_preempt: c.fast_preempt,
        accept_mode: c.accept,
        primary_addr: primary,
        garp: proto::GarpConfig {
            delay: c.garp.master_delay,
            repeat: u32::from(c.garp.master_repeat),
            refresh: c.garp.master_refresh,
            refresh_repeat: u32::from(c.garp.master_refresh_repeat),
            lower_prio_repeat: u32::from(c.garp.lower_prio_repeat()),
            lower_prio_delay: c.garp.lower_prio_delay(),
        },
        lower_prio_no_advert: c.lower_prio_no_advert,
        max_adopted_interval: c.max_adopted_interval,
        anycast: c
            .announce
            .as_ref()
            .filter(|_| c.is_anycast())
            .map(|a| a.min_priority),
    }
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// The running agent: the state machines and the one record per instance, with each other
/// concern in a part of its own.
pub struct Daemon<N: Netlink> {
    nl: N,
    /// The protocol state machines (sans-IO).
    router: Router,
    /// One record per instance, in configuration order.
    insts: Vec<Inst>,
    /// Finding an instance: by (interface, family, VRID) for received adverts, by id for
    /// the router's actions.
    index: Index,
    /// Sockets, their reader tasks and the receive queue.
    io: Io,
    /// Control socket and metrics (see [`control`]).
    ctl: control::Control,
    /// Health trackers and notifications (see `tracking.rs`).
    track: tracking::Tracking,
    /// The configuration in force (reload compares against it).
    running: Running,
    /// Precise protocol timers (None: timerfd unavailable, tokio's millisecond timer instead).
    timer: Option<timer::PreciseTimer>,
}

/// Where each instance is.
#[derive(Default)]
struct Index {
    /// (ifindex, family, VRID) → position in `insts`.
    demux: HashMap<(u32, Family, u8), usize>,
    /// Position in `insts` of each router instance.
    by_id: HashMap<InstanceId, usize>,
    /// The next fresh [`InstanceId`].
    next_id: u32,
}

/// The sockets and the receive path.
struct Io {
    socks: Vec<SockInfo>,
    frames: HashMap<u32, Arc<FrameSender>>,
    /// Sockets below this index already have their reader task (or share one).
    readers: usize,
    rx: mpsc::Receiver<Inbound>,
    rx_tx: mpsc::Sender<Inbound>,
    /// Link and address changes.
    events: NetEvents,
    /// Packets dropped because the receive queue was full (the loop could not keep up).
    queue_full: Arc<AtomicU64>,
    /// Receive buffer of each VRRP socket (`receive_buffer`).
    receive_buffer: usize,
    /// "The kernel dropped adverts" warnings, at most one a minute.
    overflow_log: crate::ratelimit::LogEvery,
    /// The buffer [`Daemon::read_pending`] reads into.
    pending_buf: Vec<u8>,
    /// Adverts built and waiting to be sent together (see [`Daemon::drain`]).
    tx_batch: Vec<Queued>,
    /// Their bytes, one buffer reused across wake-ups (allocating per advert was measurable
    /// at ten thousand adverts a second).
    tx_bytes: Vec<u8>,
    /// Accept_Mode: the nftables table dropping traffic to the VIPs of `accept = false`.
    accept: crate::net::accept::AcceptFilter,
    /// Drops not attributable to an instance, per interface index.
    iface_drops: HashMap<u32, Drops>,
    /// While starting after an upgrade: what the previous binary handed over.
    handed: Option<upgrade::Handover>,
    /// Reconciles done (routes are checked every [`ROUTE_CHECK_EVERY`]).
    reconciles: u64,
    /// Parents of VMAC devices: their own (arp_ignore, arp_filter, arp_announce), to put
    /// back.
    parent_arp: HashMap<u32, (u32, u32, u32)>,
    /// (interface, family, VRID) of instances whose adverts are read on their VMAC device:
    /// a copy the interface itself sees is not an unknown VRID.
    shadow: std::collections::HashSet<(u32, Family, u8)>,
    /// The nftables rules keeping VMAC devices from sending IGMP/MLD reports.
    vmac_filter: crate::net::accept::VmacFilter,
}

/// The configuration in force (reload compares against it).
struct Running {
    config: Config,
}

impl<N: Netlink> Daemon<N> {
    /// Resolves interfaces and addresses, removes VIPs a crashed run left behind, opens the
    /// sockets and starts the state machines.
    pub async fn setup(cfg: Config, nl: N) -> io::Result<Self> {
        Self::setup_handed(cfg, nl, None).await
    }

    /// [`Daemon::setup`] after an upgrade: each instance the previous binary ran as the same
    /// virtual router is resumed as it was (its VIPs are not touched, its sockets are taken
    /// over); the others start as after a normal start.
    pub async fn setup_handed(
        cfg: Config,
        nl: N,
        handover: Option<upgrade::Handover>,
    ) -> io::Result<Self> {
        // Subscribe first so no link or address change between our reads and the loop is lost.
        let events = crate::net::netlink::subscribe()?;
        let (rx_tx, rx) = mpsc::channel(RX_QUEUE);
        let carried = handover
            .as_ref()
            .map(|h| h.state.trackers.clone())
            .unwrap_or_default();
        let track = tracking::Tracking::setup(&cfg, &nl, &mut Default::default(), &carried).await?;
        let mut d = Daemon {
            nl,
            router: Router::new(Vec::new(), Vec::new()).map_err(|e| other(e.to_string()))?,
            insts: Vec::with_capacity(cfg.instances.len()),
            index: Index::default(),
            io: Io {
                socks: Vec::new(),
                frames: HashMap::new(),
                readers: 0,
                rx,
                rx_tx,
                events,
                queue_full: Arc::new(AtomicU64::new(0)),
                receive_buffer: cfg.global.receive_buffer,
                overflow_log: crate::ratelimit::LogEvery::new(Duration::from_secs(60)),
                pending_buf: Vec::new(),
                tx_batch: Vec::new(),
                tx_bytes: Vec::new(),
                accept: crate::net::accept::AcceptFilter::default(),
                iface_drops: HashMap::new(),
                handed: handover,
                reconciles: 0,
                parent_arp: HashMap::new(),
                shadow: Default::default(),
                vmac_filter: Default::default(),
            },
            ctl: control::Control::new(&cfg.global),
            track,
            running: Running {
                config: cfg.clone(),
            },
            timer: timer::PreciseTimer::new()
                .inspect_err(|e| warn!("no timerfd ({e}): protocol timers use tokio's 1 ms wheel"))
                .ok(),
        };
        let all_vips = all_vips(&cfg);
        // Per instance: what the previous binary handed over for it, if it continues.
        let mut resume: Vec<Option<upgrade::HandedInstance>> = Vec::new();
        for c in &cfg.instances {
            let handed = d.io.handed.as_ref().and_then(|h| h.instance(c)).cloned();
            // The VIPs of a master that goes on are its own, not a crash's leftovers.
            let keeps_vips = handed.as_ref().is_some_and(|h| h.holding);
            let mut inst = d.prepare(c, &all_vips, !keeps_vips).await?;
            inst.id = d.fresh_id();
            let handed = match handed {
                Some(h) if h.src == inst.src && !inst.interface_missing() => Some(h),
                Some(h) => {
                    warn!(instance = %c.name, "upgrade: its source address or interface changed: starting it afresh");
                    if h.holding {
                        for p in h.placed_on((inst.ifindex, inst.mac)) {
                            let _ = d.nl.del_addr(p.ifindex, p.addr, p.prefix_len).await;
                        }
                    }
                    None
                }
                None => None,
            };
            resume.push(handed);
            d.insts.push(inst);
        }
        // VMAC devices a crash left that no instance wants now.
        d.prune_vmacs(false).await;
        let protos = d
            .insts
            .iter()
            .map(|i| (i.id, instance_config(&i.cfg, i.src)))
            .collect();
        let groups = sync_groups(&cfg, &d.insts);
        d.router = Router::new(protos, groups).map_err(|e| other(format!("{e}")))?;
        d.rebuild_demux();
        d.spawn_readers(0);
        let now = Instant::now();
        // Instances an operator drained stay drained across the restart: applied before the
        // state machines start, so they never take the VIPs at boot.
        d.ctl.restore_maintenance(&cfg);
        let (mut resumed, mut masters) = (0, 0);
        if let Some(h) = d.io.handed.as_ref() {
            let ago = h.ago;
            for (idx, handed) in resume.iter().enumerate() {
                let Some(snap) = handed.as_ref().and_then(|x| x.snapshot.as_ref()) else {
                    continue;
                };
                let id = d.id_of(idx);
                if d.router.resume_one(now, id, ago, snap) == Ok(true) {
                    resumed += 1;
                    let inst = &mut d.insts[idx];
                    if let Some(h) = handed {
                        inst.counters = h.counters.clone();
                        inst.since = std::time::UNIX_EPOCH + Duration::from_millis(h.since_unix_ms);
                        for a in h.alarms.iter().filter_map(|a| a.alarm(now, ago)) {
                            inst.alarms.restore(a);
                        }
                    }
                    inst.holding = snap.state == State::Master;
                    masters += usize::from(inst.holding);
                    inst.notified = snap.state;
                    info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, state = %snap.state,
                          "upgrade: resumed as it ran");
                }
            }
            let fresh = d.insts.len() - resumed;
            let state = h.state.clone();
            d.ctl.continue_from(&state, resumed, masters, fresh);
            d.ctl.maintained_only(&cfg);
        }
        for idx in 0..d.insts.len() {
            let (id, name) = (d.id_of(idx), d.insts[idx].cfg.name.clone());
            if d.ctl.in_maintenance(&name) {
                let _ = d.router.set_maintenance(now, id, true);
            }
        }
        // What is known before the state machines start is applied before they start: faults
        // (link down, missing interface) and the trackers' first results (a resumed instance
        // carries its trackers' state already). An owner on a down link, or whose weight-0
        // tracker fails, thus never goes MASTER at boot and never runs notify_master.
        if d.ctl.upgraded.is_none() {
            let delay = cfg.global.startup_delay;
            if !delay.is_zero() {
                info!(
                    delay_ms = delay.as_millis() as u64,
                    "startup_delay: waiting {} before the state machines start",
                    vipd_config::format_duration(delay)
                );
                tokio::time::sleep(delay).await;
            }
            d.first_tracker_results(FIRST_RESULTS).await;
        }
        let now = Instant::now();
        for idx in 0..d.insts.len() {
            d.apply_tracking(now, idx);
        }
        d.router.start(now);
        // A resumed master's VIPs as the new configuration has them (only the difference).
        for (idx, handed) in resume.iter().enumerate() {
            if let Some(h) = handed
                && d.insts.get(idx).is_some_and(|i| i.holding)
            {
                d.settle_handed_vips(idx, h).await;
            }
        }
        for idx in 0..d.insts.len() {
            d.refresh_fault(now, idx);
        }
        match &d.ctl.upgraded {
            Some(u) => info!(
                instances = d.insts.len(),
                resumed = u.resumed,
                masters = u.masters,
                fresh = u.fresh,
                from_version = %u.from_version,
                "vipd upgraded in place: {} instances resumed ({} masters kept their VIPs), {} started afresh",
                u.resumed, u.masters, u.fresh
            ),
            None => info!(
                instances = d.insts.len(),
                sockets = d.io.socks.len(),
                "vipd started"
            ),
        }
        Ok(d)
    }

    /// Resolves one instance: interface, MAC, source address, socket, frame sender.
    /// With `cleanup`, removes its VIPs from the interface (left there by a crash).
    async fn prepare(
        &mut self,
        c: &config::Instance,
        all_vips: &[IpAddr],
        cleanup: bool,
    ) -> io::Result<Inst> {
        let family = c.family;
        let Some(link) = self.nl.link_by_name(&c.interface).await? else {
            // An announced VIP a crash left on its device (lo) is announced by the BGP daemon
            // whatever state the uplink is in: removed now.
            if cleanup && c.announce.is_some() {
                self.remove_leftover_vips(c, 0, &c.interface).await;
            }
            // Like keepalived with `dynamic_interfaces`: the instance waits in FAULT and is
            // opened when the interface appears (a VLAN or bond created after vipd started);
            // the other instances run meanwhile.
            warn!(instance = %c.name, interface = %c.interface,
                  "interface does not exist: instance in FAULT until it appears");
            return Ok(Inst::missing(c, family));
        };
        let present = self.nl.addrs(link.index).await?;
        if c.is_anycast() {
            // No VRRP: no socket, no source address to wait for; the uplink's state still
            // matters (link down is FAULT unless fault_on_link_down = false).
            if cleanup {
                self.remove_leftover_vips(c, link.index, &c.interface).await;
            }
            let mut inst = Inst::missing(c, family);
            if let Some((a, _)) = present.first() {
                inst.src = *a;
            }
            return Ok(Inst {
                ifindex: link.index,
                mac: link.mac.unwrap_or([0; 6]),
                link_up: link.up,
                ..inst
            });
        }
        let Some(src) = c
            .source_address
            .or_else(|| pick_source(family, &present, all_vips))
        else {
            // As keepalived: FAULT until the interface has an address (DHCP, networkd
            // configuring it after vipd started); opened by the address event.
            warn!(instance = %c.name, interface = %c.interface,
                  "interface has no {} address to send adverts from: instance in FAULT until it has one",
                  if family == Family::Ipv4 { "IPv4" } else { "link-local IPv6" });
            return Ok(Inst::missing(c, family));
        };
        let vmac = self.make_vmac(c, &link, src).await?;
        // Crash recovery: a VIP of ours on its device now was left by a previous run (we
        // have not claimed anything yet).
        if cleanup {
            let (own, own_name) = vmac
                .as_ref()
                .map_or((link.index, c.interface.as_str()), |v| {
                    (v.index, v.name.as_str())
                });
            self.remove_leftover_vips(c, own, own_name).await;
        }
        // Adverts go out of the VMAC device unless vmac_xmit_base.
        let (sock, rx_if) = self.open_sockets(c, link.index, vmac.as_ref(), src)?;
        for index in [Some(link.index), vmac.as_ref().map(|v| v.index)]
            .into_iter()
            .flatten()
        {
            if let std::collections::hash_map::Entry::Vacant(e) = self.io.frames.entry(index) {
                e.insert(Arc::new(FrameSender::open(index)?));
            }
        }
        let dsts = destinations(c);
        // What the interface gives on top of the instance's own settings.
        Ok(Inst {
            ifindex: link.index,
            mac: link.mac.unwrap_or([0; 6]),
            src,
            dsts,
            link_up: link.up,
            sock,
            rx_if,
            vmac,
            ..Inst::missing(c, family)
        })
    }

    /// Instance `c`'s sockets, sending from `src`: (the one it sends on, the interface index
    /// its adverts are read on). With a VMAC device both are the device's (a peer's adverts
    /// from the virtual MAC reach only the local VMAC device: the kernel hands a multicast
    /// frame whose source is a local private macvlan's MAC to that device alone), except
    /// that `vmac_xmit_base` sends on the interface.
    fn open_sockets(
        &mut self,
        c: &config::Instance,
        link_index: u32,
        vmac: Option<&vmac::VmacDev>,
        src: IpAddr,
    ) -> io::Result<(usize, u32)> {
        match vmac {
            Some(v) => {
                let rx = self.socket_for(c, &v.name, v.index, src)?;
                let tx = if c.vmac_xmit_base {
                    self.socket_on(c, &c.interface, link_index, src, false)?
                } else {
                    rx
                };
                Ok((tx, v.index))
            }
            None => Ok((
                self.socket_for(c, &c.interface, link_index, src)?,
                link_index,
            )),
        }
    }

    /// The socket for instance `c` on interface `ifindex` sending from `src`: an open one of
    /// the same (interface, family, source), the one an upgrade handed over, or a new one.
    fn socket_for(
        &mut self,
        c: &config::Instance,
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
    ) -> io::Result<usize> {
        self.socket_on(c, ifname, ifindex, src, true)
    }

    /// [`Daemon::socket_for`]; without `rx` a send-only socket (a VMAC device's).
    fn socket_on(
        &mut self,
        c: &config::Instance,
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        rx: bool,
    ) -> io::Result<usize> {
        let family = c.family;
        let ah = c.auth_ah.is_some();
        if let Some(i) = self.io.socks.iter().position(|s| {
            s.open()
                && s.ifindex == ifindex
                && s.family == family
                && s.src == src
                && s.tx_only != rx
                && s.ah == ah
        }) {
            if let Some(s) = self.io.socks.get(i)
                && rx
            {
                join_group(&s.sock, c);
            }
            return Ok(i);
        }
        let handed = self
            .io
            .handed
            .as_mut()
            .and_then(|h| h.socket(ifindex, family == Family::Ipv6, src));
        let adopted = handed.and_then(|fd| {
            let r = match src {
                IpAddr::V4(a) => {
                    VrrpSocketV4::adopt(fd, ifname, ifindex, a).map(|s| Sock::V4(Arc::new(s)))
                }
                IpAddr::V6(a) => {
                    VrrpSocketV6::adopt(fd, ifname, ifindex, a).map(|s| Sock::V6(Arc::new(s)))
                }
            };
            r.inspect_err(|e| {
                warn!(interface = %ifname, error = %e,
                      "upgrade: cannot take the VRRP socket over: opening a new one")
            })
            .ok()
        });
        let sock = match (adopted, src) {
            (Some(s), _) => s,
            (None, IpAddr::V4(a)) if ah => {
                Sock::V4(Arc::new(VrrpSocketV4::open_ah(ifname, ifindex, a, rx)?))
            }
            (None, IpAddr::V4(a)) => {
                Sock::V4(Arc::new(VrrpSocketV4::open(ifname, ifindex, a, rx)?))
            }
            (None, IpAddr::V6(a)) => {
                Sock::V6(Arc::new(VrrpSocketV6::open(ifname, ifindex, a, rx)?))
            }
        };
        if rx {
            join_group(&sock, c);
        }
        let bytes = self.io.receive_buffer;
        let set = match &sock {
            Sock::V4(s) => s.set_receive_buffer(bytes),
            Sock::V6(s) => s.set_receive_buffer(bytes),
            Sock::Closed => Ok(0),
        };
        match set {
            Ok(got) => {
                debug!(interface = %ifname, asked = bytes, got, "VRRP socket receive buffer")
            }
            Err(e) => {
                warn!(interface = %ifname, error = %e, "cannot set the VRRP socket's receive buffer to {bytes} bytes: {e}")
            }
        }
        self.io.socks.push(SockInfo {
            sock,
            tx_only: !rx,
            ah,
            ifindex,
            family,
            src,
            overflows: 0,
            reader: None,
        });
        Ok(self.io.socks.len() - 1)
    }

    /// The source address instance `c` sends from on interface `ifindex`: its
    /// `source_address`, else the interface's (see [`pick_source`]).
    async fn source_for(
        &self,
        c: &config::Instance,
        ifindex: u32,
        all_vips: &[IpAddr],
    ) -> io::Result<Option<IpAddr>> {
        if let Some(a) = c.source_address {
            return Ok(Some(a));
        }
        let present = self.nl.addrs(ifindex).await?;
        Ok(pick_source(c.family, &present, all_vips))
    }

    fn rebuild_demux(&mut self) {
        self.index.demux = self
            .insts
            .iter()
            .enumerate()
            .filter(|(_, inst)| !inst.cfg.is_anycast())
            .map(|(i, inst)| ((inst.rx_if, inst.family, inst.cfg.vrid), i))
            .collect();
        self.io.shadow = self
            .insts
            .iter()
            .filter(|i| i.rx_if != i.ifindex && !i.cfg.is_anycast())
            .map(|i| (i.ifindex, i.family, i.cfg.vrid))
            .collect();
        self.index.by_id = self
            .insts
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.id, i))
            .collect();
    }

    /// A new identity for an instance joining the router.
    fn fresh_id(&mut self) -> InstanceId {
        let id = InstanceId(self.index.next_id);
        self.index.next_id = self.index.next_id.wrapping_add(1);
        id
    }

    /// The router id of the instance at position `idx`.
    pub(super) fn id_of(&self, idx: usize) -> InstanceId {
        self.insts.get(idx).map_or(InstanceId(u32::MAX), |i| i.id)
    }

    /// The position of router instance `id`.
    fn pos_of(&self, id: InstanceId) -> Option<usize> {
        self.index.by_id.get(&id).copied()
    }

    fn spawn_readers(&mut self, from: usize) {
        // Raw sockets see every VRRP packet on their interface: only the first socket of an
        // (interface, family) reads, or each advert would be processed twice.
        let mut seen: Vec<(u32, Family, bool)> = self
            .io
            .socks
            .iter()
            .take(from)
            .filter(|s| s.open() && !s.tx_only)
            .map(|s| (s.ifindex, s.family, s.ah))
            .collect();
        self.io.readers = self.io.socks.len();
        for (i, s) in self.io.socks.iter_mut().enumerate().skip(from) {
            if !s.open() || s.tx_only || seen.contains(&(s.ifindex, s.family, s.ah)) {
                continue;
            }
            seen.push((s.ifindex, s.family, s.ah));
            let tx = self.io.rx_tx.clone();
            let full = Arc::clone(&self.io.queue_full);
            let task = match &s.sock {
                Sock::V4(sock) => tokio::spawn(read_loop(Arc::clone(sock), i, tx, full)),
                Sock::V6(sock) => tokio::spawn(read_loop(Arc::clone(sock), i, tx, full)),
                Sock::Closed => continue,
            };
            s.reader = Some(task.abort_handle());
        }
    }

    /// Closes the sockets (and stops the readers, drops the frame sender) of a deleted
    /// interface.
    fn close_interface(&mut self, index: u32) {
        for s in self.io.socks.iter_mut().filter(|s| s.ifindex == index) {
            if let Some(r) = s.reader.take() {
                r.abort();
            }
            s.sock = Sock::Closed;
        }
        self.io.frames.remove(&index);
    }

    /// The instances (for status).
    pub fn instances(&self) -> &[Inst] {
        &self.insts
    }

    /// The event loop.
    pub async fn run(&mut self) -> io::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // systemd's watchdog (WatchdogSec=): pinged from this loop, so a loop that hangs is
        // restarted; the metrics snapshot is published on the same tick.
        let watchdog = sd_notify::watchdog_enabled();
        if let Some(w) = watchdog {
            info!(
                watchdog_ms = w.as_millis() as u64,
                "systemd watchdog on: the event loop pings it every {} ms",
                housekeeping_every(watchdog).as_millis()
            );
        }
        let mut housekeeping = tokio::time::interval(housekeeping_every(watchdog));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.no_accept_vips().is_empty() {
            crate::net::accept::AcceptFilter::clear_stale();
        }
        self.sync_accept();
        loop {
            self.drain().await;
            let deadline = self
                .router
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let timer = &self.timer;
            let sleep = async move {
                // Built only when needed: a tokio sleep per loop turn is measurable at
                // thousands of wake-ups a second.
                let coarse = || tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
                match timer {
                    Some(t) => {
                        if let Err(e) = t.sleep_until(deadline).await {
                            warn!("timerfd: {e}");
                            coarse().await;
                        }
                    }
                    None => coarse().await,
                }
            };
            tokio::select! {
                () = sleep => {
                    // Adverts received before the deadline are read before the timer fires:
                    // after a stall of this process both are ready at once, and the timer
                    // must not win over a master whose adverts wait in the socket.
                    self.read_pending();
                    let now = Instant::now();
                    let late = now.saturating_duration_since(deadline);
                    if late >= STALL_WARN {
                        warn!(late_ms = late.as_millis() as u64,
                              "the event loop woke {} ms after its deadline (this process or the host was stalled); adverts received meanwhile were read first",
                              late.as_millis());
                    }
                    self.router.handle_timeout(now);
                }
                Some(pkt) = self.io.rx.recv() => self.on_packet(pkt),
                Some(ev) = self.io.events.recv() => self.on_net_event(ev).await,
                Some(req) = self.ctl.rx.recv() => self.on_control(req).await,
                Some(probe) = self.ctl.upgrade_rx.recv() => self.upgrade_probed(probe).await,
                wake = control::drill_wake(self.ctl.drill.as_mut()) => self.drill_progress(wake).await,
                Some(u) = self.track.rx.recv() => self.on_tracker(u),
                _ = reconcile.tick() => self.reconcile().await,
                _ = housekeeping.tick() => {
                    if watchdog.is_some() {
                        control::notify_systemd(&[sd_notify::NotifyState::Watchdog]);
                    }
                    self.publish_metrics().await;
                }
                _ = term.recv() => { info!("SIGTERM: handing over and stopping"); break; }
                _ = int.recv() => { info!("SIGINT: handing over and stopping"); break; }
                _ = hup.recv() => {
                    control::notify_reloading();
                    self.reload_from_control("SIGHUP").await;
                    control::notify_systemd(&[sd_notify::NotifyState::Ready]);
                }
            }
        }
        control::notify_systemd(&[sd_notify::NotifyState::Stopping]);
        self.router.shutdown(Instant::now());
        self.drain().await;
        self.prune_vmacs(true).await;
        if let Err(e) = self.io.accept.remove() {
            warn!(error = %e, "could not remove the Accept_Mode filter (nftables table inet vipd_accept)");
        }
        self.track.finish().await;
        info!("vipd stopped");
        Ok(())
    }

    /// The VIPs that must not accept traffic while master: `accept = false`, not the owner.
    fn no_accept_vips(&self) -> Vec<IpAddr> {
        self.insts
            .iter()
            .filter(|i| !i.cfg.accept && i.cfg.priority != 255)
            .flat_map(|i| i.cfg.vips.iter().map(|v| v.addr))
            .collect()
    }

    /// Puts the Accept_Mode filter in line with the instances (start, reload).
    pub(super) fn sync_accept(&mut self) {
        let vips = self.no_accept_vips();
        let n = vips.len();
        match self.io.accept.sync(vips) {
            Ok(true) => info!(
                vips = n,
                "Accept_Mode: traffic to the VIPs of instances with accept = false is dropped (nftables table inet vipd_accept)"
            ),
            Ok(false) => {}
            Err(e) => {
                error!(error = %e, "Accept_Mode: cannot install the filter for accept = false: traffic to those VIPs is accepted")
            }
        }
    }

    /// Processes every advert already received, before a timer fires: first what the
    /// readers forwarded, then what still waits in the sockets (bounded per socket). On a
    /// current-thread runtime the readers cannot run meanwhile, so nothing is read twice or
    /// out of order.
    fn read_pending(&mut self) {
        while let Ok(pkt) = self.io.rx.try_recv() {
            self.on_packet(pkt);
        }
        let mut buf = std::mem::take(&mut self.io.pending_buf);
        buf.resize(RX_BUF, 0);
        for i in 0..self.io.socks.len() {
            for _ in 0..RX_QUEUE {
                let Some(s) = self.io.socks.get(i).filter(|s| s.reader.is_some()) else {
                    break;
                };
                let got = match &s.sock {
                    Sock::V4(sock) => sock.try_recv_meta(&mut buf),
                    Sock::V6(sock) => sock.try_recv_meta(&mut buf),
                    Sock::Closed => break,
                };
                let pkt = match got {
                    Ok(Some(info)) => Inbound::received(i, &info, &buf),
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => Inbound::oversized(i),
                    // Empty, or an error the reader will see and report.
                    Ok(None) | Err(_) => break,
                };
                self.on_packet(pkt);
            }
        }
        self.io.pending_buf = buf;
    }

    fn on_packet(&mut self, pkt: Inbound) {
        self.count_overflows(&pkt);
        let Some(s) = self.io.socks.get(pkt.sock) else {
            return;
        };
        let (ifindex, family) = (s.ifindex, s.family);
        if pkt.oversized {
            // Longer than any valid advert: a length that matches no VRRP message.
            self.io
                .iface_drops
                .entry(ifindex)
                .or_default()
                .add(Drop::LengthMismatch);
            return;
        }
        let received = match pkt.v6 {
            None => Received::V4(&pkt.data),
            Some((src, dst, hop_limit)) => Received::V6 {
                payload: &pkt.data,
                src,
                dst,
                hop_limit,
            },
        };
        let insts = &self.insts;
        let demux = &self.index.demux;
        let outcome = rx::classify(received, |vrid| {
            let idx = *demux.get(&(ifindex, family, vrid))?;
            Some((idx, insts.get(idx)?.rx_view()))
        });
        match outcome {
            Outcome::Own { instance, priority } => {
                // Ours looped back, unless another priority than ours (or our 0): then
                // another host sends from our address.
                let ours = self
                    .insts
                    .get(instance)
                    .and_then(|i| self.router.instance(i.id))
                    .map_or(0, |i| i.effective_priority());
                if priority != ours && priority != 0 {
                    let own = self.insts.get(instance).map(|i| i.src);
                    if let Some(own) = own {
                        self.raise_alarm(
                            instance,
                            pkt.at,
                            proto::alarms::AlarmKind::OwnAddress,
                            own,
                            &format!("priority {priority}, ours {ours}"),
                        );
                    }
                }
            }
            Outcome::Drop {
                instance: Some(idx),
                reason,
                from,
            } => {
                self.count_drop_from(idx, reason, from);
                if let (Some(src), Some(inst)) = (from, self.insts.get(idx))
                    && let Some((kind, detail)) = rx::drop_alarm(reason, inst.cfg.version)
                {
                    self.raise_alarm(idx, pkt.at, kind, src, &detail);
                }
            }
            Outcome::Drop {
                instance: None,
                reason,
                ..
            } => {
                // The interface's copy of an advert its VMAC device's instance reads.
                if reason == Drop::UnknownVrid
                    && packet_vrid(received)
                        .is_some_and(|v| self.io.shadow.contains(&(ifindex, family, v)))
                {
                    return;
                }
                let drops = self.io.iface_drops.entry(ifindex).or_default();
                drops.add(reason);
                let n = drops.get(reason);
                let from = packet_source(received);
                let from =
                    || from.map_or_else(|| "an unknown source".to_owned(), |a| a.to_string());
                // Other virtual routers on the link are normal (debug); anything else is
                // logged with its sender at powers of two. Names are looked up only for a
                // line that is written (a flood of drops costs no lookups).
                if reason == Drop::UnknownVrid || !n.is_power_of_two() {
                    debug!(interface = %self.ifname_of(ifindex), reason = %reason, peer = %from(), count = n,
                           "dropped VRRP packet");
                } else {
                    let (ifname, from) = (self.ifname_of(ifindex), from());
                    warn!(interface = %ifname, reason = %reason, peer = %from, count = n,
                          "{ifname}: dropped VRRP packet from {from} ({reason}; {n} so far)");
                }
            }
            Outcome::Accept(a) => {
                // IPsec-AH: the ICV and the sequence, before anything reaches the state
                // machine.
                if let (Some(inst), Received::V4(datagram)) =
                    (self.insts.get_mut(a.instance), received)
                    && let Some(ah) = inst.ah.as_mut()
                {
                    let unicast = !inst.cfg.unicast_peers.is_empty();
                    let checked = proto::ah::verify(datagram, &ah.key, unicast)
                        .and_then(|seq| ah.counter.accept(seq));
                    if let Err(e) = checked {
                        let reason = if e == proto::ah::AhError::Replay {
                            Drop::AhReplay
                        } else {
                            Drop::AhBad
                        };
                        self.count_drop_from(a.instance, reason, Some(a.advert.src));
                        return;
                    }
                }
                // auth_hmac before anything reaches the state machine.
                let refused = self.insts.get_mut(a.instance).and_then(|inst| {
                    let cfg = inst.cfg.auth_hmac.as_ref()?;
                    let slots = if inst.cfg.unicast_peers.is_empty() {
                        proto::auth::MULTICAST_SENDERS
                    } else {
                        inst.cfg.unicast_peers.len()
                    };
                    rx::authenticate(received, &a, cfg, &mut inst.hmac_verifier, utc_now(), slots)
                        .err()
                });
                if let Some(e) = refused {
                    self.count_refused(a.instance, Drop::from_auth(e), a.advert.src, &e);
                    return;
                }
                let mut evidence = self
                    .insts
                    .get(a.instance)
                    .map(|i| rx::accepted_alarms(&a, &i.rx_view()))
                    .unwrap_or_default();
                if let Some(inst) = self.insts.get_mut(a.instance)
                    && !a.addresses_match
                {
                    inst.counters.address_list_mismatch += 1;
                }
                // Accepted adverts are counted by the state machine (`Instance::stats`).
                if let Err(e) = self
                    .router
                    .handle_advert(pkt.at, self.id_of(a.instance), &a.advert)
                {
                    if let proto::DropReason::IntervalMismatch { ours_cs, theirs_cs } = e {
                        evidence.push((
                            proto::alarms::AlarmKind::IntervalMismatch,
                            format!("{} s, ours {} s", theirs_cs / 100, ours_cs / 100),
                        ));
                    }
                    self.count_drop_from(a.instance, Drop::from_proto(e), Some(a.advert.src));
                } else {
                    if let Some(inst) = self.insts.get_mut(a.instance) {
                        inst.heard = Some((a.advert.src, a.advert.priority));
                    }
                    self.note_master(a.instance);
                }
                let src = a.advert.src;
                for (kind, detail) in &evidence {
                    self.raise_alarm(a.instance, pkt.at, *kind, src, detail);
                }
                let still: Vec<proto::alarms::AlarmKind> =
                    evidence.iter().map(|(k, _)| *k).collect();
                if let Some(inst) = self.insts.get_mut(a.instance)
                    && !inst.alarms.is_empty()
                {
                    let cleared = inst.alarms.conforming(src, &still);
                    for c in cleared {
                        self.alarm_cleared(a.instance, &c);
                    }
                }
            }
        }
    }

    /// The name of interface `ifindex`, as an instance on it configured it (`ifindex N` when
    /// none is).
    pub(super) fn ifname_of(&self, ifindex: u32) -> String {
        self.insts
            .iter()
            .find(|i| i.ifindex == ifindex)
            .map_or_else(|| format!("ifindex {ifindex}"), |i| i.cfg.interface.clone())
    }

    /// Gives every open VRRP socket a receive buffer of `bytes` (a reload changed it).
    pub(super) fn set_receive_buffers(&mut self, bytes: usize) {
        self.io.receive_buffer = bytes;
        for s in &self.io.socks {
            let set = match &s.sock {
                Sock::V4(x) => x.set_receive_buffer(bytes),
                Sock::V6(x) => x.set_receive_buffer(bytes),
                Sock::Closed => continue,
            };
            if let Err(e) = set {
                warn!(error = %e, "cannot set a VRRP socket's receive buffer to {bytes} bytes: {e}");
            }
        }
        info!(bytes, "VRRP sockets' receive buffer set to {bytes} bytes");
    }

    /// Counts what the kernel dropped on the packet's socket since the last packet
    /// (SO_RXQ_OVFL), on its interface as `rcvbuf_overflow`; warns at most once a minute.
    fn count_overflows(&mut self, pkt: &Inbound) {
        let Some(n) = pkt.overflows else {
            return;
        };
        let Some(s) = self.io.socks.get_mut(pkt.sock) else {
            return;
        };
        let new = n.wrapping_sub(s.overflows);
        if new == 0 {
            return;
        }
        s.overflows = n;
        let ifindex = s.ifindex;
        self.io
            .iface_drops
            .entry(ifindex)
            .or_default()
            .add_n(Drop::RcvbufOverflow, u64::from(new));
        if let Some(held) = self.io.overflow_log.check(Instant::now()) {
            let ifname = self.ifname_of(ifindex);
            warn!(interface = %ifname, dropped = new, total = n,
                  "the kernel dropped {new} VRRP packets on {ifname} because vipd's receive buffer was full ({n} so far): raise receive_buffer in [global] (now {} bytes){}",
                  self.io.receive_buffer, crate::ratelimit::held_note(held));
        }
    }

    /// Notes the master instance `idx` knows of now (itself when master); a change is
    /// counted and logged ("master changed 10.0.0.11 -> 10.0.0.12").
    fn note_master(&mut self, idx: usize) {
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let Some(p) = self.router.instance(inst.id) else {
            return;
        };
        let now = match p.state() {
            State::Master => Some((inst.src, p.effective_priority())),
            State::Backup => p.master(),
            _ => None,
        };
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let Some((addr, prio)) = now else {
            return;
        };
        if inst.master_seen == Some(addr) {
            return;
        }
        let before = inst.master_seen.replace(addr);
        inst.master_since = Some(SystemTime::now());
        inst.counters.master_changes += 1;
        let who = if addr == inst.src { " (this node)" } else { "" };
        match before {
            Some(old) => {
                info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %addr, from = %old, priority = prio,
                               "{}: master changed {old} -> {addr}{who} (priority {prio})", inst.cfg.name)
            }
            None => {
                info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %addr, priority = prio,
                          "{}: the master is {addr}{who} (priority {prio})", inst.cfg.name)
            }
        }
    }

    /// Counts a dropped advert of instance `idx`; logged (with its source, when known) at
    /// powers of two, so that a flood never becomes a log flood. Adverts an instance in FAULT
    /// ignores are expected: logged at debug only.
    fn count_drop_from(&mut self, idx: usize, reason: Drop, from: Option<IpAddr>) {
        let Some(n) = self.count(idx, reason) else {
            return;
        };
        let Some(inst) = self.insts.get(idx).filter(|_| n.is_power_of_two()) else {
            return;
        };
        let from = from.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        if reason == Drop::NotListening {
            debug!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, reason = %reason, count = n, peer = %from, "dropped VRRP advert");
        } else {
            warn!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, reason = %reason, count = n, peer = %from,
                  "{}: dropped VRRP advert from {from} ({reason}; {n} so far)", inst.cfg.name);
        }
    }

    /// Counts an advert from `from` that authentication refused (`why`), logged like
    /// [`Daemon::count_drop_from`] at powers of two.
    fn count_refused(
        &mut self,
        idx: usize,
        reason: Drop,
        from: IpAddr,
        why: &dyn std::fmt::Display,
    ) {
        let Some(n) = self.count(idx, reason) else {
            return;
        };
        if let Some(inst) = self.insts.get(idx).filter(|_| n.is_power_of_two()) {
            warn!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %from, reason = %reason, count = n,
                  "{}: advert from {from} refused: {why} ({n} so far)", inst.cfg.name);
        }
    }

    /// Adds one to instance `idx`'s drop counter for `reason`; the new count.
    fn count(&mut self, idx: usize, reason: Drop) -> Option<u64> {
        let inst = self.insts.get_mut(idx)?;
        inst.counters.drops.add(reason);
        Some(inst.counters.drops.get(reason))
    }

    /// Evidence of alarm `kind` from `peer` on instance `idx`: logged when it is raised or
    /// its detail changes, with an event.
    fn raise_alarm(
        &mut self,
        idx: usize,
        now: Instant,
        kind: proto::alarms::AlarmKind,
        peer: IpAddr,
        detail: &str,
    ) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        match inst.alarms.raise(now, kind, peer, detail) {
            proto::alarms::Raised::New(a) | proto::alarms::Raised::Changed(a) => {
                let sep = if a.detail.is_empty() { "" } else { ": " };
                warn!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %peer, alarm = %kind, detail = %a.detail,
                      "{}: alarm {kind}: {peer} {}{sep}{}", inst.cfg.name, kind.meaning(), a.detail);
                self.on_alarm(idx, &a, true);
            }
            proto::alarms::Raised::Again | proto::alarms::Raised::Full => {}
        }
    }

    /// An alarm of instance `idx` cleared.
    fn alarm_cleared(&mut self, idx: usize, a: &proto::alarms::Alarm) {
        if let Some(inst) = self.insts.get(idx) {
            info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %a.peer, alarm = %a.kind,
                  "{}: alarm {} from {} cleared", inst.cfg.name, a.kind, a.peer);
        }
        self.on_alarm(idx, a, false);
    }

    /// Alarms without evidence for ten advert intervals (at least 10 s) clear.
    fn expire_alarms(&mut self) {
        let now = Instant::now();
        for idx in 0..self.insts.len() {
            let Some(inst) = self.insts.get_mut(idx) else {
                continue;
            };
            if inst.alarms.is_empty() {
                continue;
            }
            let quiet = (inst.cfg.advert_interval * 10).max(ALARM_QUIET);
            for a in inst.alarms.expire(now, quiet) {
                self.alarm_cleared(idx, &a);
            }
        }
    }

    async fn on_net_event(&mut self, ev: NetEvent) {
        let now = Instant::now();
        match ev {
            NetEvent::Link(link) => {
                self.track_link(&link);
                self.reopen_on(&link).await;
                for idx in 0..self.insts.len() {
                    let inst = &mut self.insts[idx];
                    if inst.ifindex != link.index || inst.link_up == link.up {
                        continue;
                    }
                    inst.link_up = link.up;
                    if link.up {
                        info!(instance = %inst.cfg.name, interface = %inst.cfg.interface, "link up");
                    } else {
                        warn!(instance = %inst.cfg.name, interface = %inst.cfg.interface, "link down");
                    }
                    if let Some(mac) = link.mac {
                        inst.mac = mac;
                    }
                    self.refresh_fault(now, idx);
                }
            }
            NetEvent::LinkRemoved { index } => {
                self.track_link_removed(index);
                self.close_interface(index);
                let mut vmac_gone = Vec::new();
                for idx in 0..self.insts.len() {
                    let inst = &mut self.insts[idx];
                    let its_vmac = inst.vmac.as_ref().is_some_and(|v| v.index == index);
                    if inst.ifindex == index || its_vmac {
                        // Its socket is bound to the old index: re-opened when it is back.
                        inst.link_up = false;
                        inst.ifindex = 0;
                        inst.vmac = None;
                        if its_vmac {
                            warn!(instance = %inst.cfg.name, interface = %inst.cfg.interface,
                                  "{}: its VMAC device was removed: FAULT, and made again", inst.cfg.name);
                            vmac_gone.push(inst.cfg.interface.clone());
                        } else {
                            warn!(instance = %inst.cfg.name, interface = %inst.cfg.interface,
                                  "interface removed: FAULT until it is back");
                        }
                        self.refresh_fault(now, idx);
                    }
                }
                for name in vmac_gone {
                    if let Ok(Some(link)) = self.nl.link_by_name(&name).await {
                        self.reopen_on(&link).await;
                    }
                }
            }
            NetEvent::AddrAdded { .. } => {
                // An instance waiting for its interface may have been missing only an address
                // to send from.
                let mut names: Vec<String> = self
                    .insts
                    .iter()
                    .filter(|i| i.interface_missing())
                    .map(|i| i.cfg.interface.clone())
                    .collect();
                names.sort_unstable();
                names.dedup();
                for name in names {
                    if let Ok(Some(link)) = self.nl.link_by_name(&name).await {
                        self.reopen_on(&link).await;
                    }
                }
            }
            NetEvent::RouteRemoved {
                dst,
                dst_len,
                table,
            } => self.restore_routes(Some((dst, dst_len, table))).await,
            NetEvent::RuleRemoved => self.restore_rules().await,
            NetEvent::AddrRemoved { index, addr, .. } => {
                let restore: Vec<(usize, u32, AddrSpec)> = self
                    .insts
                    .iter()
                    .enumerate()
                    .filter(|(_, inst)| inst.holding)
                    .filter(|(_, inst)| {
                        inst.placed
                            .iter()
                            .any(|p| p.ifindex == index && p.addr == addr)
                    })
                    .filter_map(|(idx, inst)| {
                        let vip = inst.cfg.vips.iter().find(|v| v.addr == addr)?;
                        Some((idx, index, Inst::addr_spec(vip)))
                    })
                    .collect();
                for (idx, index, spec) in restore {
                    self.restore_vip(
                        idx,
                        index,
                        &spec,
                        "a VIP was removed behind our back while master; putting it back",
                    )
                    .await;
                }
            }
        }
    }

    /// Opens the instances on `link`'s name whose interface was missing, or has been
    /// re-created under a new index (their socket is bound to the old one). Retried on
    /// later link and address events when it cannot be done yet (no address to send from).
    async fn reopen_on(&mut self, link: &crate::net::LinkInfo) {
        let candidates: Vec<(String, Family, bool)> = self
            .insts
            .iter()
            .filter(|i| i.cfg.interface == link.name && i.ifindex != link.index)
            .map(|i| (i.cfg.name.clone(), i.family, i.cfg.source_address.is_some()))
            .collect();
        if candidates.is_empty() {
            return;
        }
        // Only those that can open now (an address to send from), or every link event
        // would restart them in FAULT again.
        let present = self.nl.addrs(link.index).await.unwrap_or_default();
        let vips = all_vips(&self.running.config);
        let names: Vec<String> = candidates
            .into_iter()
            .filter(|(_, family, fixed)| *fixed || pick_source(*family, &present, &vips).is_some())
            .map(|(name, _, _)| name)
            .collect();
        if names.is_empty() {
            debug!(interface = %link.name, "interface present, no address to send from yet");
            return;
        }
        let cfg = self.running.config.clone();
        match self.reload_reopening(cfg, &names).await {
            Ok(_) => {
                info!(interface = %link.name, instances = %names.join(","),
                      "interface {} appeared: {} opened on it", link.name, names.join(", "))
            }
            Err(e) => {
                warn!(interface = %link.name, instances = %names.join(","), error = %e,
                      "interface {} appeared, but {} could not be opened on it ({e}); retried on its next change",
                      link.name, names.join(", "))
            }
        }
    }

    /// Safety net besides netlink events (which a full socket buffer can lose): a master puts
    /// back any VIP missing from its device, and adds those whose device has appeared.
    async fn reconcile(&mut self) {
        self.expire_alarms();
        // Routes and rules are checked less often (a route dump is a whole table), besides
        // the kernel's deletion events.
        self.io.reconciles += 1;
        if self.io.reconciles.is_multiple_of(ROUTE_CHECK_EVERY) {
            self.restore_routes(None).await;
            self.restore_rules().await;
        }
        let mut by_if: HashMap<u32, Option<Vec<(IpAddr, u8)>>> = HashMap::new();
        for idx in 0..self.insts.len() {
            if !self.insts[idx].holding {
                continue;
            }
            let devices: Vec<u32> = self.insts[idx].placed.iter().map(|p| p.ifindex).collect();
            for ifindex in devices {
                if let std::collections::hash_map::Entry::Vacant(e) = by_if.entry(ifindex) {
                    e.insert(match self.nl.addrs(ifindex).await {
                        Ok(a) => Some(a),
                        Err(e) => {
                            debug!(ifindex, error = %e, "could not list addresses");
                            None
                        }
                    });
                }
            }
            let inst = &mut self.insts[idx];
            // A device that went away took its addresses: they are placed again by name.
            let own = inst.ifindex;
            inst.placed
                .retain(|p| p.ifindex == own || by_if.get(&p.ifindex).is_some_and(Option::is_some));
            let missing: Vec<(u32, AddrSpec)> = inst
                .placed
                .iter()
                .filter(|p| {
                    by_if
                        .get(&p.ifindex)
                        .and_then(Option::as_ref)
                        .is_some_and(|l| !l.iter().any(|(a, _)| *a == p.addr))
                })
                .filter_map(|p| {
                    let v = inst.cfg.vips.iter().find(|v| v.addr == p.addr)?;
                    Some((p.ifindex, Inst::addr_spec(v)))
                })
                .collect();
            for (ifindex, spec) in missing {
                self.restore_vip(
                    idx,
                    ifindex,
                    &spec,
                    "VIP missing from its interface while master; putting it back",
                )
                .await;
            }
            let i = &self.insts[idx];
            if i.placed.len() < i.cfg.vips.len()
                || i.placed_routes.len() < i.cfg.routes.len()
                || i.placed_rules.len() < i.cfg.rules.len()
            {
                self.sync_and_announce_vips(idx, "").await;
            }
        }
    }

    /// Puts back a VIP of master instance `idx` that left its device `ifindex`: logged,
    /// counted.
    async fn restore_vip(&mut self, idx: usize, ifindex: u32, spec: &AddrSpec, why: &str) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        warn!(instance = %inst.cfg.name, vip = %spec.addr, "{why}");
        inst.counters.vips_restored += 1;
        if let Err(e) = self.nl.add_addr(ifindex, spec).await {
            error!(vip = %spec.addr, error = %e, "could not restore VIP");
        }
    }

    /// Carries out the router's actions in order. Adverts are gathered and sent together
    /// (one `sendmmsg` per socket for all the adverts due at one wake-up), flushed before any
    /// other action so that the order holds (a new master's advert before its VIPs).
    async fn drain(&mut self) {
        while let Some((id, action)) = self.router.poll_action() {
            let Some(idx) = self.pos_of(id) else {
                continue;
            };
            match action {
                Action::SendAdvert {
                    priority,
                    max_advert_int_cs,
                } => {
                    self.queue_advert(idx, priority, max_advert_int_cs);
                    if self.io.tx_batch.len() >= TX_BATCH {
                        self.flush_adverts().await;
                    }
                }
                other => {
                    self.flush_adverts().await;
                    self.execute(idx, other).await;
                }
            }
        }
        self.flush_adverts().await;
    }

    /// Builds instance `idx`'s advert for each of its destinations into the send batch.
    fn queue_advert(&mut self, idx: usize, priority: u8, max_advert_int_cs: u16) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        // One sequence per advert: every copy (unicast peers) carries the same signature.
        let seq = inst.next_seq();
        // AH: one sequence number and IP identification per advert too (keepalived).
        let ah = inst.ah.as_mut().map(|a| {
            a.ip_id = a.ip_id.wrapping_add(1).max(1);
            (a.key, a.counter.next_seq(), a.ip_id)
        });
        let unicast = inst.cfg.is_unicast();
        for dst in &inst.dsts {
            let start = self.io.tx_bytes.len();
            self.io.tx_bytes.resize(start + tx::MAX_ADVERT_LEN, 0);
            let built = match ah {
                None => tx::build_advert(
                    self.io.tx_bytes.get_mut(start..).unwrap_or(&mut []),
                    &inst.tx_view(seq),
                    priority,
                    max_advert_int_cs,
                    *dst,
                ),
                Some((key, ah_seq, id)) => {
                    let mut msg = [0u8; tx::MAX_ADVERT_LEN];
                    let total = proto::ah::IP_LEN + proto::ah::AH_LEN;
                    tx::build_advert(
                        &mut msg,
                        &inst.tx_view(seq),
                        priority,
                        max_advert_int_cs,
                        *dst,
                    )
                    .and_then(|n| {
                        let (IpAddr::V4(src), IpAddr::V4(d)) = (inst.src, *dst) else {
                            return Err(vipd_wire::Error::BufferTooSmall);
                        };
                        self.io.tx_bytes.resize(start + total + n, 0);
                        let h = proto::ah::AhOut {
                            src,
                            dst: d,
                            id,
                            seq: ah_seq,
                            unicast,
                        };
                        proto::ah::build_datagram(
                            self.io.tx_bytes.get_mut(start..).unwrap_or(&mut []),
                            msg.get(..n).unwrap_or(&[]),
                            &h,
                            &key,
                        )
                        .ok_or(vipd_wire::Error::BufferTooSmall)
                    })
                }
            };
            match built {
                Ok(n) => {
                    self.io.tx_bytes.truncate(start + n);
                    self.io.tx_batch.push(Queued {
                        idx,
                        sock: inst.sock,
                        dst: *dst,
                        bytes: start..start + n,
                        priority,
                    });
                }
                Err(e) => {
                    self.io.tx_bytes.truncate(start);
                    inst.counters.send_errors += 1;
                    if inst.counters.send_errors.is_power_of_two() {
                        warn!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, to = %dst, error = %e,
                              count = inst.counters.send_errors, "could not build advert");
                    }
                }
            }
        }
    }

    /// Sends the batched adverts: one `send_batch` per run of the same socket.
    async fn flush_adverts(&mut self) {
        if self.io.tx_batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.io.tx_batch);
        let bytes = std::mem::take(&mut self.io.tx_bytes);
        let mut results: Vec<io::Result<()>> = Vec::with_capacity(batch.len());
        for run in batch.chunk_by(|a, b| a.sock == b.sock) {
            let msgs: Vec<(&[u8], IpAddr)> = run
                .iter()
                .map(|q| (bytes.get(q.bytes.clone()).unwrap_or(&[]), q.dst))
                .collect();
            match run.first().and_then(|q| self.io.socks.get(q.sock)) {
                Some(s) => results.extend(s.sock.send_batch(&msgs).await),
                None => results.extend(msgs.iter().map(|_| Err(io::Error::other("no socket")))),
            }
        }
        for (q, r) in batch.iter().zip(results) {
            let Some(inst) = self.insts.get_mut(q.idx) else {
                continue;
            };
            match r {
                Ok(()) => {
                    inst.counters.adverts_sent += 1;
                    if q.priority == 0 {
                        inst.counters.priority_zero_sent += 1;
                    }
                }
                Err(e) => {
                    inst.counters.send_errors += 1;
                    if inst.counters.send_errors.is_power_of_two() {
                        warn!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, to = %q.dst, error = %e,
                              count = inst.counters.send_errors, "could not send advert");
                    }
                }
            }
        }
        // Keep the allocations for the next wake-up.
        let (mut batch, mut bytes) = (batch, bytes);
        batch.clear();
        bytes.clear();
        self.io.tx_batch = batch;
        self.io.tx_bytes = bytes;
    }

    async fn execute(&mut self, idx: usize, action: Action) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        match action {
            Action::SendAdvert {
                priority,
                max_advert_int_cs,
            } => {
                self.queue_advert(idx, priority, max_advert_int_cs);
                self.flush_adverts().await;
            }
            Action::ClaimVips => {
                inst.holding = true;
                self.sync_vips(idx, "").await;
            }
            Action::ReleaseVips => {
                inst.holding = false;
                // Including those on other devices when the instance's interface is gone.
                self.unplace_vips(idx).await;
            }
            Action::SendGratuitous { repeat } => self.send_gratuitous(idx, None, repeat).await,
            Action::Notify(t) => {
                inst.counters.transitions += 1;
                let ours = effective(&self.router, inst.id);
                let peer = inst.heard.map(|(a, _)| a.to_string()).unwrap_or_default();
                info!(
                    instance = %inst.cfg.name,
                    vrid = inst.cfg.vrid,
                    from_state = %t.from,
                    to_state = %to_word(t.to),
                    reason = %t.reason,
                    priority = ours,
                    peer = %peer,
                    "{}",
                    transition_sentence(&inst.cfg.name, &t, inst.heard, ours)
                );
                if inst.history.len() == HISTORY {
                    inst.history.pop_front();
                }
                inst.since = SystemTime::now();
                inst.history.push_back((inst.since, t.clone()));
                let moved = t.from == State::Master || t.to == State::Master;
                if let (Some(a), true) = (&inst.cfg.announce, moved || t.from == State::Initialize)
                {
                    let announced = t.to == State::Master;
                    inst.announce_since = Some(inst.since);
                    inst.announce_reason = Some(t.reason.to_string());
                    if moved {
                        let vips: Vec<String> =
                            inst.cfg.vips.iter().map(|v| v.addr.to_string()).collect();
                        info!(
                            instance = %inst.cfg.name,
                            announced,
                            policy = a.policy.as_str(),
                            reason = %t.reason,
                            vips = %vips.join(","),
                            "{}: {} {} ({})",
                            inst.cfg.name,
                            if announced { "announcing" } else { "withdrew" },
                            vips.join(", "),
                            t.reason
                        );
                    }
                }
                self.on_transition(idx, &t);
                self.note_master(idx);
            }
            Action::LowerPriorityAdvert { from, priority } => {
                let ours = effective(&self.router, inst.id);
                warn!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %from, priority, ours,
                      "{}: {from} advertises itself as master with priority {priority} (< our {ours}): answering and re-announcing the VIPs",
                      inst.cfg.name);
                self.on_lower_priority(idx, from, priority);
            }
            Action::OwnerConflict { from, step } => {
                let (name, vrid) = (inst.cfg.name.clone(), inst.cfg.vrid);
                match step {
                    proto::OwnerConflict::Detected => error!(
                        instance = %name, vrid, peer = %from, step = %step,
                        "{name}: CONFIGURATION ERROR: {from} and this host are both configured as the address owner (priority 255) of VRID {vrid}: the higher address stays master; give one of them a priority below 255"
                    ),
                    proto::OwnerConflict::BackedOff => error!(
                        instance = %name, vrid, peer = %from, step = %step,
                        "{name}: {from} is still advertising as address owner after two of our adverts (it ignores adverts): lowering our priority to 254 so that it is the only master; please resolve"
                    ),
                    proto::OwnerConflict::Restored => warn!(
                        instance = %name, vrid, step = %step,
                        "{name}: the other address owner has stopped advertising: our priority is 255 again"
                    ),
                    proto::OwnerConflict::Stopped => info!(
                        instance = %name, vrid, step = %step,
                        "{name}: the other address owner stopped advertising after our adverts (it stepped down)"
                    ),
                }
                self.on_owner_conflict(idx, from, step);
                match step {
                    proto::OwnerConflict::Detected | proto::OwnerConflict::BackedOff => {
                        self.raise_alarm(
                            idx,
                            Instant::now(),
                            proto::alarms::AlarmKind::OwnerConflict,
                            from,
                            &step.to_string(),
                        );
                    }
                    proto::OwnerConflict::Restored | proto::OwnerConflict::Stopped => {
                        let cleared = self.insts.get_mut(idx).map_or_else(Vec::new, |i| {
                            i.alarms.clear_kind(proto::alarms::AlarmKind::OwnerConflict)
                        });
                        for a in cleared {
                            self.alarm_cleared(idx, &a);
                        }
                    }
                }
            }
            Action::PreemptDelayStarted {
                master,
                priority,
                delay,
            } => {
                let ours = effective(&self.router, inst.id);
                info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %master, priority, ours,
                      "{}: {master} advertises {priority} < our {ours}: taking over after preempt_delay {} unless it comes back", inst.cfg.name, vipd_config::format_duration(delay));
            }
            Action::PreemptDelayCancelled { master, priority } => {
                info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, peer = %master, priority,
                      "{}: preempt delay called off: {master} advertises {priority} again", inst.cfg.name);
            }
            Action::HeldBySyncGroup { group, waiting_for } => {
                let other = self
                    .pos_of(waiting_for)
                    .and_then(|p| self.insts.get(p))
                    .map_or_else(|| waiting_for.to_string(), |o| o.cfg.name.clone());
                let Some(inst) = self.insts.get(idx) else {
                    return;
                };
                warn!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, group = %group, waiting_for = %other,
                      "{}: no master heard, but staying BACKUP: sync group {group} moves only when every member wants to, and {other} still hears its master (a one-way or partial path between the peers?)",
                      inst.cfg.name);
                self.on_sync_hold(idx, &group, &other);
            }
            Action::PriorityChanged { base, effective } => {
                info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, base, effective, "priority changed");
                self.on_priority(idx, base, effective);
            }
        }
    }

    /// Sends `repeat` gratuitous ARP / unsolicited NA frames for each VIP of instance `idx`
    /// (or only for `only`), paced by its `garp_interval`.
    async fn send_gratuitous(&mut self, idx: usize, only: Option<&[IpAddr]>, repeat: u32) {
        let from = self.announce_from(idx, only);
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let gap = inst.cfg.garp.interval;
        let mut buf = [0u8; tx::MAX_GRATUITOUS_LEN];
        let mut batch: Vec<(Arc<FrameSender>, Vec<u8>)> = Vec::new();
        // Read per burst (bursts are rare, and forwarding may be switched at any time).
        let mut forwarding: HashMap<&str, bool> = HashMap::new();
        for _ in 0..repeat {
            for a in &from {
                let router = a.addr.is_ipv6()
                    && *forwarding
                        .entry(a.dev.as_str())
                        .or_insert_with(|| ipv6_forwarding(&a.dev));
                match tx::build_gratuitous(&mut buf, a.mac, a.addr, router) {
                    Ok(n) => {
                        batch.push((Arc::clone(&a.frames), buf.get(..n).unwrap_or(&[]).to_vec()))
                    }
                    Err(e) => {
                        warn!(instance = %inst.cfg.name, vip = %a.addr, error = %e, "could not build gratuitous frame")
                    }
                }
            }
        }
        if gap.is_zero() {
            for (frames, f) in &batch {
                match frames.send(f).await {
                    Ok(_) => inst.counters.gratuitous_sent += 1,
                    Err(e) => {
                        warn!(instance = %inst.cfg.name, error = %e, "could not send gratuitous frame")
                    }
                }
            }
        } else {
            // Paced bursts must not hold up the protocol: send from a task.
            inst.counters.gratuitous_sent += batch.len() as u64;
            tokio::spawn(async move {
                for (frames, f) in batch {
                    if let Err(e) = frames.send(&f).await {
                        warn!(error = %e, "could not send gratuitous frame");
                    }
                    tokio::time::sleep(gap).await;
                }
            });
        }
    }

    /// Packets dropped because the receive queue was full.
    pub fn queue_full_drops(&self) -> u64 {
        self.io.queue_full.load(Ordering::Relaxed)
    }

    /// Drops not attributable to an instance (undecodable, unknown VRID), per interface index.
    pub fn interface_drops(&self) -> &HashMap<u32, Drops> {
        &self.io.iface_drops
    }

    /// The state of instance `idx`.
    pub fn state(&self, idx: usize) -> Option<State> {
        self.router.instance(self.id_of(idx)).map(|i| i.state())
    }
}

/// IPv6 receive metadata: source, destination, hop limit.
type V6Meta = (Ipv6Addr, Ipv6Addr, u8);

/// What a reader learns of one datagram besides its bytes.
struct RecvInfo {
    len: usize,
    v6: Option<V6Meta>,
    /// SO_RXQ_OVFL: the socket's drops so far.
    overflows: Option<u32>,
    /// The kernel's receive time (wall clock), if given.
    received: Option<SystemTime>,
}

/// What the reader loop needs of a raw VRRP socket.
trait RawRecv: Send + Sync + 'static {
    /// Receives one datagram: its length, for IPv6 (src, dst, hop limit), and its time.
    fn recv_meta(
        &self,
        buf: &mut [u8],
    ) -> impl std::future::Future<Output = io::Result<RecvInfo>> + Send;
    /// Like `recv_meta`, only what is already queued (`Ok(None)`: nothing).
    fn try_recv_meta(&self, buf: &mut [u8]) -> io::Result<Option<RecvInfo>>;
}

impl From<crate::net::RecvMetaV4> for RecvInfo {
    fn from(m: crate::net::RecvMetaV4) -> RecvInfo {
        RecvInfo {
            len: m.len,
            v6: None,
            received: m.received,
            overflows: m.overflows,
        }
    }
}

impl From<crate::net::RecvMeta> for RecvInfo {
    fn from(m: crate::net::RecvMeta) -> RecvInfo {
        RecvInfo {
            len: m.len,
            v6: Some((m.src, m.dst, m.hop_limit)),
            received: m.received,
            overflows: m.overflows,
        }
    }
}

impl RawRecv for VrrpSocketV4 {
    async fn recv_meta(&self, buf: &mut [u8]) -> io::Result<RecvInfo> {
        self.recv(buf).await.map(RecvInfo::from)
    }
    fn try_recv_meta(&self, buf: &mut [u8]) -> io::Result<Option<RecvInfo>> {
        self.try_recv(buf).map(|m| m.map(RecvInfo::from))
    }
}

impl RawRecv for VrrpSocketV6 {
    async fn recv_meta(&self, buf: &mut [u8]) -> io::Result<RecvInfo> {
        self.recv(buf).await.map(RecvInfo::from)
    }
    fn try_recv_meta(&self, buf: &mut [u8]) -> io::Result<Option<RecvInfo>> {
        self.try_recv(buf).map(|m| m.map(RecvInfo::from))
    }
}

/// Reads one raw socket and forwards every datagram to the loop. Receive errors (e.g. an
/// oversized datagram) are logged at a decreasing rate and never stop the reader.
async fn read_loop<S: RawRecv>(
    sock: Arc<S>,
    idx: usize,
    tx: mpsc::Sender<Inbound>,
    full: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; RX_BUF];
    let mut errors: u64 = 0;
    loop {
        match sock.recv_meta(&mut buf).await {
            Ok(info) => {
                if forward(&tx, Inbound::received(idx, &info, &buf), &full).is_err() {
                    return;
                }
            }
            Err(e) => {
                if after_recv_error(&e, &mut errors, &tx, idx, &full)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn forward(tx: &mpsc::Sender<Inbound>, pkt: Inbound, full: &AtomicU64) -> Result<(), ()> {
    match tx.try_send(pkt) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => {
            let n = full.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            // Counted (status `queue_full_drops`); logged at powers of two only, so a flood
            // does not turn into a log flood.
            if n.is_power_of_two() {
                warn!(reason = %Drop::QueueFull, count = n, "receive queue full: dropping VRRP packets");
            }
            Ok(())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
    }
}

/// Whether this host forwards IPv6 on `ifname` (then its neighbour advertisements carry the
/// Router flag, RFC 4861 §4.4, as keepalived's do).
fn ipv6_forwarding(ifname: &str) -> bool {
    if ifname.contains('/') || ifname.contains("..") {
        return false;
    }
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .is_ok_and(|v| v.trim() == "1")
}

/// Where an instance's adverts go: the VRRP multicast group, or each unicast peer.
fn destinations(c: &config::Instance) -> Vec<IpAddr> {
    if c.unicast_peers.is_empty() {
        vec![c.multicast_group]
    } else {
        c.unicast_peers.clone()
    }
}

/// A multicast instance with another group than RFC 9568's (keepalived's
/// `vrrp_mcast_group4/6`, `mcast_dst_ip`): its socket joins that group too (sockets are shared,
/// and joining is idempotent).
fn join_group(sock: &Sock, c: &config::Instance) {
    if c.is_unicast() {
        return;
    }
    let r = match (sock, c.multicast_group) {
        (Sock::V4(s), IpAddr::V4(g)) if g != vipd_wire::vrrp::MCAST_V4 => s.join(g),
        (Sock::V6(s), IpAddr::V6(g)) if g != vipd_wire::vrrp::MCAST_V6 => s.join(g),
        _ => Ok(()),
    };
    if let Err(e) = r {
        warn!(instance = %c.name, group = %c.multicast_group, error = %e,
              "{}: cannot join multicast group {} on {}: {e}", c.name, c.multicast_group, c.interface);
    }
}

fn all_vips(cfg: &Config) -> Vec<IpAddr> {
    cfg.instances
        .iter()
        .flat_map(|i| i.vips.iter().map(|v| v.addr))
        .collect()
}

/// The router's sync groups for `insts` (the running instances, by name).
fn sync_groups(cfg: &Config, insts: &[Inst]) -> Vec<proto::SyncGroupConfig> {
    let names: Vec<(String, InstanceId)> =
        insts.iter().map(|i| (i.cfg.name.clone(), i.id)).collect();
    sync_groups_by_name(cfg, &names)
}

/// The router's sync groups: each member named in the configuration, as the id the
/// instance of that name has.
fn sync_groups_by_name(cfg: &Config, ids: &[(String, InstanceId)]) -> Vec<proto::SyncGroupConfig> {
    cfg.sync_groups
        .iter()
        .map(|g| proto::SyncGroupConfig {
            name: g.name.clone(),
            members: g
                .instances
                .iter()
                .filter_map(|n| ids.iter().find(|(name, _)| name == n).map(|(_, id)| *id))
                .collect(),
        })
        .collect()
}

/// Our source address when none is configured: IPv4, the first address of the interface that
/// is not a VIP; IPv6, the link-local address (RFC 9568 §5.1.2.1).
fn pick_source(family: Family, present: &[(IpAddr, u8)], vips: &[IpAddr]) -> Option<IpAddr> {
    present.iter().map(|(a, _)| *a).find(|a| match (family, a) {
        (Family::Ipv4, IpAddr::V4(v4)) => !vips.contains(a) && !v4.is_loopback(),
        (Family::Ipv6, IpAddr::V6(v6)) => v6.is_unicast_link_local(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn source_selection() {
        let present = vec![
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), 24),
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11)), 24),
            ("fd00::11".parse().unwrap(), 64),
            ("fe80::1".parse().unwrap(), 64),
        ];
        let vips = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))];
        assert_eq!(
            pick_source(Family::Ipv4, &present, &vips),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11)))
        );
        assert_eq!(
            pick_source(Family::Ipv6, &present, &vips),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(pick_source(Family::Ipv6, &present[..3], &vips), None);
    }
}
