//! A deterministic multi-node simulator over [`vipd_proto`].
//!
//! N nodes sit on one virtual LAN. Each node runs a [`Router`]. Time is
//! virtual: a caller-supplied base `Instant` plus a `Duration` offset; the
//! event queue is ordered by (time, sequence number), and all randomness
//! comes from a seeded [`SplitMix64`], so a seed replays exactly.
//!
//! Faults injected (see `docs/failure-model.md`): per-node link delay,
//! jitter, loss, duplication and reordering; partitions; node crash (all
//! state and VIP holdings vanish) and restart; clean stop and start;
//! tracker flaps (priority adjust, fault) and maintenance.
//!
//! The simulator records every transition and every VIP claim/release, and
//! checks invariants after every step (see [`Sim::violations`]).
//! [`Schedule`] generates random fault schedules and checks the
//! convergence properties.

#![warn(unreachable_pub)]

mod rng;
mod schedule;

pub use rng::SplitMix64;
pub use schedule::{FinalAct, Outcome, Schedule, TOLERANCE};

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use std::net::{IpAddr, Ipv6Addr};

use vipd_proto::advert::{self, TxView};
use vipd_proto::alarms::{AlarmKind, Alarms};
use vipd_proto::counters::Drops;
use vipd_proto::rx::{self, Outcome as RxOutcome, Received, RxView};
use vipd_proto::{
    Action, ConfigError, DropReason, FaultCause, InstanceConfig, InstanceId, Reason, Router, State,
    SyncGroupConfig,
};
use vipd_wire::{ChecksumMode, Family, Ipv4Packet, Ipv4Repr};

/// The id of a node's instance at position `i` of its configuration (the simulator numbers
/// instances by position; a restart keeps them).
pub fn iid(i: usize) -> InstanceId {
    InstanceId(u32::try_from(i).unwrap_or(u32::MAX))
}

/// Position `i` of a node's configuration, from its id.
fn pos(id: InstanceId) -> usize {
    usize::try_from(id.0).unwrap_or(usize::MAX)
}

/// A node's instances with their ids.
fn numbered(instances: &[InstanceConfig]) -> Vec<(InstanceId, InstanceConfig)> {
    instances
        .iter()
        .enumerate()
        .map(|(i, c)| (iid(i), c.clone()))
        .collect()
}

/// One node's attachment to the LAN. A frame from `s` to `r` crosses `s`'s
/// link then `r`'s: delays add, losses are independent.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way delay of this link.
    pub delay: Duration,
    /// Extra uniform delay in `0..=jitter` per frame.
    pub jitter: Duration,
    /// Probability a frame is lost on this link.
    pub loss: f64,
    /// Probability a frame is duplicated on this link.
    pub duplicate: f64,
    /// Probability a frame is held back by up to `reorder_delay` extra
    /// (so later frames overtake it).
    pub reorder: f64,
    pub reorder_delay: Duration,
}

impl LinkConfig {
    /// A perfect link with a fixed delay.
    pub fn clean(delay: Duration) -> Self {
        LinkConfig {
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
        }
    }

    /// Longest one-way delay of this link when it does not reorder.
    pub fn max_delay(&self) -> Duration {
        self.delay + self.jitter
    }
}

/// A simulated node: what its daemon runs, and its link.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub instances: Vec<InstanceConfig>,
    pub groups: Vec<SyncGroupConfig>,
    pub link: LinkConfig,
    /// What its instances put on the wire beyond the protocol configuration.
    pub wire: Wire,
}

/// A node's wire settings (the same for all its instances): the simulator's way to configure
/// two nodes of one VRID differently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wire {
    /// Send (and expect) the VRRPv3-over-IPv4 checksum without the pseudo-header.
    pub checksum_without_pseudo_header: bool,
    /// VRRPv2 simple-text password.
    pub auth: Option<[u8; 8]>,
    /// List a second virtual address after the VRID's own.
    pub extra_vip: bool,
}

impl Wire {
    fn checksum(&self) -> ChecksumMode {
        if self.checksum_without_pseudo_header {
            ChecksumMode::WithoutPseudoHeader
        } else {
            ChecksumMode::WithPseudoHeader
        }
    }
}

/// Injected events.
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    /// Replace a node's link parameters.
    SetLink { node: usize, link: LinkConfig },
    /// Component label per node: nodes hear each other only with equal
    /// labels (missing entries count as component 0).
    Partition { component: Vec<u32> },
    /// Remove any partition (and every one-way drop).
    Heal,
    /// One-way loss: frames from `from` (any node if `None`) to `to` are dropped, for
    /// `vrid` only (all VRIDs if `None`). With `from: None` the node hears nothing of that
    /// VRID: an instance that ignores adverts (FRR's owner, keepalived in strict mode).
    DropOneWay {
        from: Option<usize>,
        to: usize,
        vrid: Option<u8>,
    },
    /// The node loses all state; its VIPs vanish. No-op if already down.
    Crash { node: usize },
    /// A crashed node boots a fresh `Router` and starts it. No-op if up.
    Restart { node: usize },
    /// Clean stop of the node's router (priority-0 adverts).
    Shutdown { node: usize },
    /// `Router::start` on a running (e.g. shut down) node.
    Start { node: usize },
    /// Tracker weight sum for one instance.
    PriorityAdjust {
        node: usize,
        instance: usize,
        delta: i32,
    },
    /// Weight-0 tracker / link state for one instance.
    Fault {
        node: usize,
        instance: usize,
        fault: bool,
    },
    /// Maintenance for one instance (its sync group).
    Maintenance {
        node: usize,
        instance: usize,
        on: bool,
    },
    /// The node's daemon is paused (SIGSTOP, a VM pause) for `duration`: its timers do not
    /// run and the frames it receives wait in its socket, stamped with their arrival. On
    /// release, `reads_first` processes the waiting frames before the overdue timers (what
    /// vipd does); `false` lets the timers win (the old event loop), to show what that did.
    Stall {
        node: usize,
        duration: Duration,
        reads_first: bool,
    },
    /// End of a stall (scheduled by [`SimEvent::Stall`]).
    Release { node: usize },
}

/// A recorded transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    pub at: Duration,
    pub node: usize,
    pub instance: usize,
    pub vrid: u8,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

/// A change of VIP holding. `held == false` with `crash == true` means the
/// holdings vanished with the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipRecord {
    pub at: Duration,
    pub node: usize,
    pub instance: usize,
    pub vrid: u8,
    pub held: bool,
    pub crash: bool,
}

#[derive(Debug)]
enum Ev {
    Deliver { to: usize, epoch: u64, frame: Frame },
    User(SimEvent),
}

/// An advertisement as a raw socket returns it: built by the daemon's own send path
/// (`vipd_proto::advert`), classified on arrival by its own receive policy (`vipd_proto::rx`),
/// so the simulator exercises both.
#[derive(Debug, Clone)]
enum Frame {
    /// The whole IPv4 datagram (header with TTL 255, as the kernel sends it).
    V4(Vec<u8>),
    /// The VRRP message and its IPv6 source (hop limit 255, to ff02::12).
    V6 { payload: Vec<u8>, src: Ipv6Addr },
}

/// The second VIP of a node with [`Wire::extra_vip`].
fn extra_vip(cfg: &InstanceConfig) -> IpAddr {
    match sim_vip(cfg) {
        IpAddr::V4(a) => {
            let [x, y, z, w] = a.octets();
            IpAddr::V4(std::net::Ipv4Addr::new(x, y, z, w.wrapping_add(1)))
        }
        IpAddr::V6(a) => {
            let mut o = a.octets();
            o[15] = o[15].wrapping_add(1);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

/// The VIP the simulator gives an instance (the configuration has none): one per VRID and
/// family, the same on every node, so adverts carry a real address list.
fn sim_vip(cfg: &InstanceConfig) -> IpAddr {
    match cfg.primary_addr {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::new(10, 255, 0, cfg.vrid)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(cfg.vrid))),
    }
}

impl Frame {
    /// What `cfg`'s instance puts on the wire for one advertisement.
    fn advert(
        cfg: &InstanceConfig,
        wire: &Wire,
        vips: &[IpAddr],
        priority: u8,
        max_advert_int_cs: u16,
    ) -> Option<Frame> {
        let family = Family::of(&cfg.primary_addr);
        let view = TxView {
            ah: false,
            vrid: cfg.vrid,
            version: cfg.version,
            auth: wire.auth,
            vips,
            family,
            checksum: wire.checksum(),
            src: cfg.primary_addr,
            hmac: None,
        };
        let mut buf = [0u8; 96];
        match cfg.primary_addr {
            IpAddr::V4(src) => {
                let dst = vipd_wire::vrrp::MCAST_V4;
                let (hdr, msg) = buf.split_at_mut(vipd_wire::ipv4::HEADER_LEN);
                let n = advert::build_advert(msg, &view, priority, max_advert_int_cs, dst.into())
                    .ok()?;
                let ip = Ipv4Repr {
                    src,
                    dst,
                    protocol: vipd_wire::IP_PROTO_VRRP,
                    ttl: 255,
                    tos: 0xc0,
                    ident: 0,
                    dont_frag: false,
                    payload_len: n,
                };
                ip.emit(&mut Ipv4Packet::new_unchecked(hdr)).ok()?;
                Some(Frame::V4(
                    buf.get(..vipd_wire::ipv4::HEADER_LEN + n)?.to_vec(),
                ))
            }
            IpAddr::V6(src) => {
                let dst = vipd_wire::vrrp::MCAST_V6;
                let n =
                    advert::build_advert(&mut buf, &view, priority, max_advert_int_cs, dst.into())
                        .ok()?;
                Some(Frame::V6 {
                    payload: buf.get(..n)?.to_vec(),
                    src,
                })
            }
        }
    }

    fn received(&self) -> Received<'_> {
        match self {
            Frame::V4(bytes) => Received::V4(bytes),
            Frame::V6 { payload, src } => Received::V6 {
                payload,
                src: *src,
                dst: vipd_wire::vrrp::MCAST_V6,
                hop_limit: 255,
            },
        }
    }

    fn is_v4(&self) -> bool {
        matches!(self, Frame::V4(_))
    }
}

#[derive(Debug)]
struct Queued {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // Reversed: BinaryHeap is a max-heap, we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug)]
struct Node {
    cfg: NodeConfig,
    router: Option<Router>,
    /// Bumped on crash: frames addressed to the old incarnation are lost.
    epoch: u64,
    held: Vec<bool>,
    link: LinkConfig,
    /// Per instance: its VIP list ([`sim_vip`], plus one with [`Wire::extra_vip`]), what it
    /// advertises and the receive policy compares against.
    vips: Vec<Vec<IpAddr>>,
    /// Per instance: its alarms, raised from the same evidence as the daemon's.
    alarms: Vec<Alarms>,
    /// Stalled: until when, and whether the waiting frames are read before the timers.
    stalled: Option<(Duration, bool)>,
    /// Frames received while stalled, with their arrival times.
    waiting: Vec<(Duration, u64, Frame)>,
}

/// Counters of what the simulator did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub steps: u64,
    pub frames_sent: u64,
    pub frames_delivered: u64,
    pub frames_lost: u64,
    pub garp_bursts: u64,
    /// Frames the receive policy dropped, by reason.
    pub rx_drops: Drops,
    /// Accepted adverts whose VIP list differs from the receiver's.
    pub address_list_mismatch: u64,
}

/// The simulator.
#[derive(Debug)]
pub struct Sim {
    base: Instant,
    now: Duration,
    seq: u64,
    rng: SplitMix64,
    nodes: Vec<Node>,
    component: Vec<u32>,
    /// One-way drops `(from, to, vrid)` (see [`SimEvent::DropOneWay`]).
    one_way: Vec<(Option<usize>, usize, Option<u8>)>,
    /// Last in-order arrival time per (sender, receiver) pair.
    fifo: Vec<Duration>,
    queue: BinaryHeap<Queued>,
    transitions: Vec<TransitionRecord>,
    vips: Vec<VipRecord>,
    violations: Vec<String>,
    trace: Option<String>,
    stats: SimStats,
    /// The client's view: per VRID, the node whose gratuitous ARP/NA it heard last (where
    /// its ARP/neighbour entry for the VIP points), since when, and whether that node has
    /// since released the VIPs where no other running node could hear it (crashed, or
    /// stopped/faulted while partitioned from all of them: then no VRRP router can know the
    /// entry is stale; only the client's own neighbour timeout or `garp_master_refresh`
    /// fixes it). The client hears every running node (it sits on the switch, on both sides
    /// of a partition between the nodes): the worst case, in which it may have followed the
    /// loser of a split.
    arp: std::collections::BTreeMap<u8, ClientArp>,
}

/// Where the client's neighbour entry for one VRID's VIP points (see `Sim::client_arp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientArp {
    /// The node whose gratuitous ARP/NA the client heard last.
    pub node: usize,
    /// When.
    pub at: Duration,
    /// That node has since released the VIPs unheard by every other running node.
    pub orphaned: bool,
    /// A frame was lost since (the re-announcement that corrects the entry rides on
    /// adverts: `FAREWELLS` farewells and the answers to lower adverts; each can be lost).
    pub lossy: bool,
}

impl Sim {
    /// Build the nodes (routers validated, not started). `base` is the
    /// virtual time origin (the caller picks it; the simulator never reads
    /// a clock).
    pub fn new(base: Instant, nodes: Vec<NodeConfig>, seed: u64) -> Result<Self, ConfigError> {
        let mut built = Vec::with_capacity(nodes.len());
        for cfg in nodes {
            let router = Router::new(numbered(&cfg.instances), cfg.groups.clone())?;
            built.push(Node {
                held: vec![false; cfg.instances.len()],
                vips: cfg
                    .instances
                    .iter()
                    .map(|c| {
                        let mut v = vec![sim_vip(c)];
                        if cfg.wire.extra_vip {
                            v.push(extra_vip(c));
                        }
                        v
                    })
                    .collect(),
                alarms: vec![Alarms::default(); cfg.instances.len()],
                stalled: None,
                waiting: Vec::new(),
                link: cfg.link.clone(),
                router: Some(router),
                epoch: 0,
                cfg,
            });
        }
        Ok(Sim {
            base,
            now: Duration::ZERO,
            seq: 0,
            rng: SplitMix64::new(seed),
            component: vec![0; built.len()],
            one_way: Vec::new(),
            fifo: vec![Duration::ZERO; built.len() * built.len()],
            nodes: built,
            queue: BinaryHeap::new(),
            transitions: Vec::new(),
            vips: Vec::new(),
            violations: Vec::new(),
            trace: None,
            stats: SimStats::default(),
            arp: std::collections::BTreeMap::new(),
        })
    }

    /// Record a human-readable trace of every step (for replaying a seed).
    pub fn enable_trace(&mut self) {
        self.trace = Some(String::new());
    }

    /// The trace, if enabled.
    pub fn trace(&self) -> Option<&str> {
        self.trace.as_deref()
    }

    /// Schedule an event at virtual time `at` (clamped to now).
    pub fn schedule(&mut self, at: Duration, ev: SimEvent) {
        let at = at.max(self.now);
        self.push(at, Ev::User(ev));
    }

    /// Apply an event immediately.
    pub fn apply(&mut self, ev: SimEvent) {
        self.stats.steps += 1;
        self.user_event(ev);
        self.check_invariants();
    }

    /// Run every event and timer up to and including `end`.
    pub fn run_until(&mut self, end: Duration) {
        loop {
            let ev_at = self.queue.peek().map(|q| q.at);
            let timer = self.next_timer();
            let take_event = match (ev_at, timer) {
                (None, None) => break,
                (Some(e), None) => {
                    if e > end {
                        break;
                    }
                    true
                }
                (None, Some((t, _))) => {
                    if t > end {
                        break;
                    }
                    false
                }
                (Some(e), Some((t, _))) => {
                    if e.min(t) > end {
                        break;
                    }
                    e <= t
                }
            };
            self.stats.steps += 1;
            if take_event {
                let Some(q) = self.queue.pop() else { break };
                self.now = self.now.max(q.at);
                match q.ev {
                    Ev::Deliver { to, epoch, frame } => {
                        let stalled = self.nodes.get(to).is_some_and(|n| n.stalled.is_some());
                        if stalled {
                            let now = self.now;
                            if let Some(n) = self.nodes.get_mut(to) {
                                n.waiting.push((now, epoch, frame));
                            }
                        } else {
                            self.deliver(to, epoch, &frame, self.now);
                        }
                    }
                    Ev::User(ev) => self.user_event(ev),
                }
            } else if let Some((t, n)) = timer {
                self.now = self.now.max(t);
                let at = self.instant(self.now);
                if let Some(r) = self.nodes.get_mut(n).and_then(|n| n.router.as_mut()) {
                    r.handle_timeout(at);
                }
                self.drain(n);
            }
            self.check_invariants();
        }
        self.now = self.now.max(end);
    }

    /// Current virtual time (offset from the base).
    pub fn now(&self) -> Duration {
        self.now
    }

    /// `base + offset`.
    pub fn instant(&self, offset: Duration) -> Instant {
        self.base.checked_add(offset).unwrap_or(self.base)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node's router, None while crashed.
    pub fn router(&self, node: usize) -> Option<&Router> {
        self.nodes.get(node).and_then(|n| n.router.as_ref())
    }

    pub fn node_config(&self, node: usize) -> Option<&NodeConfig> {
        self.nodes.get(node).map(|n| &n.cfg)
    }

    /// Current link of a node.
    pub fn link(&self, node: usize) -> Option<&LinkConfig> {
        self.nodes.get(node).map(|n| &n.link)
    }

    /// Index of the node's instance for `vrid` (first match).
    pub fn instance_for(&self, node: usize, vrid: u8) -> Option<usize> {
        self.nodes
            .get(node)?
            .cfg
            .instances
            .iter()
            .position(|c| c.vrid == vrid)
    }

    /// Nodes currently holding the VIPs of `vrid`.
    /// Where the client's ARP/neighbour entry for `vrid`'s VIP points (the node whose
    /// gratuitous ARP/NA it heard last).
    pub fn client_arp(&self, vrid: u8) -> Option<ClientArp> {
        self.arp.get(&vrid).copied()
    }

    /// `node` released `vrid`'s VIPs: if the client follows it and no other running node
    /// could hear it go (no priority-0 advert reached anyone), the entry is orphaned.
    fn orphan_unheard(&mut self, node: usize, vrid: u8) {
        // Heard by a node that can act on it for this VRID: a master (it re-announces), or a
        // backup that may take over (not in maintenance; Initialize and Fault ignore
        // adverts).
        let listening = |o: usize| {
            let Some(i) = self.instance_for(o, vrid) else {
                return false;
            };
            self.nodes
                .get(o)
                .and_then(|n| n.router.as_ref())
                .and_then(|r| r.instance(iid(i)))
                .is_some_and(|x| {
                    x.state() == State::Master
                        || (x.state() == State::Backup && !x.in_maintenance())
                })
        };
        let state = |o: usize| {
            let i = self.instance_for(o, vrid)?;
            self.nodes
                .get(o)
                .and_then(|n| n.router.as_ref())
                .and_then(|r| r.instance(iid(i)))
                .map(|x| x.state())
        };
        let others = || (0..self.nodes.len()).filter(move |&o| o != node);
        // A master that hears it re-announces. A backup that hears it takes over (and
        // announces) unless it hears a master, which then keeps the VIPs without knowing
        // (one-way loss into that master).
        let heard = others().any(|o| state(o) == Some(State::Master) && self.hears(node, o, vrid))
            || others().any(|b| {
                self.hears(node, b, vrid)
                    && listening(b)
                    && state(b) == Some(State::Backup)
                    && !others().any(|m| {
                        m != b && state(m) == Some(State::Master) && self.hears(m, b, vrid)
                    })
            });
        if !heard {
            self.orphan_entry(node, vrid);
        }
    }

    fn orphan_entry(&mut self, node: usize, vrid: u8) {
        if let Some(e) = self.arp.get_mut(&vrid)
            && e.node == node
        {
            e.orphaned = true;
        }
    }

    pub fn holders(&self, vrid: u8) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.holds(n, vrid))
            .collect()
    }

    /// Whether `node` holds the VIPs of `vrid`.
    pub fn holds(&self, node: usize, vrid: u8) -> bool {
        let Some(nd) = self.nodes.get(node) else {
            return false;
        };
        nd.cfg
            .instances
            .iter()
            .zip(&nd.held)
            .any(|(c, &h)| h && c.vrid == vrid)
    }

    pub fn transitions(&self) -> &[TransitionRecord] {
        &self.transitions
    }

    pub fn vip_log(&self) -> &[VipRecord] {
        &self.vips
    }

    /// Invariant violations seen so far (empty = good).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The alarms instance `instance` of `node` has raised (see `vipd_proto::alarms`).
    pub fn alarms(&self, node: usize, instance: usize) -> Vec<(AlarmKind, IpAddr)> {
        self.nodes
            .get(node)
            .and_then(|n| n.alarms.get(instance))
            .map(|a| a.iter().map(|x| (x.kind, x.peer)).collect())
            .unwrap_or_default()
    }

    /// Whether `to` receives `from`'s adverts for `vrid`: same partition component, and no
    /// one-way drop on the way.
    pub fn hears(&self, from: usize, to: usize, vrid: u8) -> bool {
        self.connected(from, to)
            && !self.one_way.iter().any(|&(f, t, v)| {
                t == to && f.is_none_or(|f| f == from) && v.is_none_or(|v| v == vrid)
            })
    }

    /// Whether two nodes are in the same partition component.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.component.get(a).copied().unwrap_or(0) == self.component.get(b).copied().unwrap_or(0)
    }

    // ---- internals ----

    fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn next_timer(&self) -> Option<(Duration, usize)> {
        let mut best: Option<(Duration, usize)> = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.stalled.is_some() {
                continue;
            }
            if let Some(t) = n.router.as_ref().and_then(Router::poll_timeout) {
                let off = t.saturating_duration_since(self.base);
                if best.is_none_or(|(b, _)| off < b) {
                    best = Some((off, i));
                }
            }
        }
        best
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = self.trace.as_mut() {
            let now = self.now;
            let _ = writeln!(t, "{:>12.6}s {}", now.as_secs_f64(), f());
        }
    }

    fn user_event(&mut self, ev: SimEvent) {
        let at = self.instant(self.now);
        self.log(|| format!("event {ev:?}"));
        match ev {
            SimEvent::SetLink { node, link } => {
                if let Some(n) = self.nodes.get_mut(node) {
                    n.link = link;
                }
            }
            SimEvent::Partition { component } => {
                self.component = (0..self.nodes.len())
                    .map(|i| component.get(i).copied().unwrap_or(0))
                    .collect();
            }
            SimEvent::Heal => {
                self.component = vec![0; self.nodes.len()];
                self.one_way.clear();
            }
            SimEvent::DropOneWay { from, to, vrid } => self.one_way.push((from, to, vrid)),
            SimEvent::Crash { node } => {
                let now = self.now;
                let vrids: Vec<u8> = self
                    .nodes
                    .get(node)
                    .map(|n| n.cfg.instances.iter().map(|c| c.vrid).collect())
                    .unwrap_or_default();
                for v in vrids {
                    self.orphan_entry(node, v);
                }
                if let Some(n) = self.nodes.get_mut(node)
                    && n.router.is_some()
                {
                    n.router = None;
                    n.epoch += 1;
                    for (i, h) in n.held.iter_mut().enumerate() {
                        if *h {
                            *h = false;
                            self.vips.push(VipRecord {
                                at: now,
                                node,
                                instance: i,
                                vrid: n.cfg.instances.get(i).map_or(0, |c| c.vrid),
                                held: false,
                                crash: true,
                            });
                        }
                    }
                }
            }
            SimEvent::Restart { node } => {
                if let Some(n) = self.nodes.get_mut(node)
                    && n.router.is_none()
                {
                    // The config was validated in `new`.
                    if let Ok(mut r) = Router::new(numbered(&n.cfg.instances), n.cfg.groups.clone())
                    {
                        r.start(at);
                        n.router = Some(r);
                    }
                }
                self.drain(node);
            }
            SimEvent::Shutdown { node } => {
                self.with_router(node, |r| r.shutdown(at));
            }
            SimEvent::Start { node } => {
                self.with_router(node, |r| r.start(at));
            }
            SimEvent::PriorityAdjust {
                node,
                instance,
                delta,
            } => {
                self.with_router(node, |r| {
                    let _ = r.set_priority_adjust(at, iid(instance), delta);
                });
            }
            SimEvent::Fault {
                node,
                instance,
                fault,
            } => {
                let cause = fault.then(|| FaultCause::Tracker("sim".into()));
                self.with_router(node, |r| {
                    let _ = r.set_fault(at, iid(instance), cause);
                });
            }
            SimEvent::Maintenance { node, instance, on } => {
                self.with_router(node, |r| {
                    let _ = r.set_maintenance(at, iid(instance), on);
                });
            }
            SimEvent::Stall {
                node,
                duration,
                reads_first,
            } => {
                let until = self.now + duration;
                if let Some(n) = self.nodes.get_mut(node)
                    && n.stalled.is_none()
                {
                    n.stalled = Some((until, reads_first));
                    self.schedule(until, SimEvent::Release { node });
                }
            }
            SimEvent::Release { node } => {
                let Some(n) = self.nodes.get_mut(node) else {
                    return;
                };
                let Some((_, reads_first)) = n.stalled.take() else {
                    return;
                };
                let waiting = std::mem::take(&mut n.waiting);
                if !reads_first {
                    self.with_router(node, |r| r.handle_timeout(at));
                }
                for (stamp, epoch, frame) in waiting {
                    self.deliver(node, epoch, &frame, stamp);
                }
                self.with_router(node, |r| r.handle_timeout(at));
            }
        }
    }

    fn with_router(&mut self, node: usize, f: impl FnOnce(&mut Router)) {
        if let Some(r) = self.nodes.get_mut(node).and_then(|n| n.router.as_mut()) {
            f(r);
            self.drain(node);
        }
    }

    /// A frame reaches `to`'s socket and is read, with its arrival time `stamp` (the kernel's
    /// receive timestamp: earlier than now for a frame that waited while the node stalled).
    fn deliver(&mut self, to: usize, epoch: u64, frame: &Frame, stamp: Duration) {
        let at = self.instant(stamp);
        let Some(n) = self.nodes.get_mut(to) else {
            return;
        };
        if n.epoch != epoch {
            self.stats.frames_lost += 1;
            return;
        }
        let Some(r) = n.router.as_mut() else {
            self.stats.frames_lost += 1;
            return;
        };
        // The daemon's receive policy, as on a real socket of this node.
        let v4 = frame.is_v4();
        let instances = &n.cfg.instances;
        let vips = &n.vips;
        let wire = &n.cfg.wire;
        let outcome = rx::classify(frame.received(), |vrid| {
            let idx = instances
                .iter()
                .position(|c| c.vrid == vrid && c.primary_addr.is_ipv4() == v4)?;
            let c = instances.get(idx)?;
            Some((
                idx,
                RxView {
                    ah: false,
                    version: c.version,
                    auth: wire.auth,
                    peers: &[],
                    peer_ttl: &[],
                    allowed: &[],
                    own: c.primary_addr,
                    interval_cs: c.advert_interval_cs(),
                    checksum: wire.checksum(),
                    vips: vips.get(idx)?,
                },
            ))
        });
        let ours = instances.get(match outcome {
            RxOutcome::Accept(a) => a.instance,
            RxOutcome::Drop {
                instance: Some(i), ..
            }
            | RxOutcome::Own { instance: i, .. } => i,
            RxOutcome::Drop { instance: None, .. } => usize::MAX,
        });
        let view = ours.map(|c| (c.version, c.advert_interval_cs(), c.primary_addr));
        match outcome {
            RxOutcome::Accept(a) => {
                self.stats.frames_delivered += 1;
                if !a.addresses_match {
                    self.stats.address_list_mismatch += 1;
                }
                let res = r.handle_advert(at, iid(a.instance), &a.advert);
                if let (Some((version, interval_cs, own)), Some(vips)) =
                    (view, n.vips.get(a.instance))
                {
                    let v = RxView {
                        ah: false,
                        version,
                        auth: n.cfg.wire.auth,
                        peers: &[],
                        peer_ttl: &[],
                        allowed: &[],
                        own,
                        interval_cs,
                        checksum: n.cfg.wire.checksum(),
                        vips,
                    };
                    let mut evidence = rx::accepted_alarms(&a, &v);
                    if let Err(DropReason::IntervalMismatch { ours_cs, theirs_cs }) = res {
                        evidence.push((
                            AlarmKind::IntervalMismatch,
                            format!("{theirs_cs} cs, ours {ours_cs} cs"),
                        ));
                    }
                    if let Some(al) = n.alarms.get_mut(a.instance) {
                        for (k, d) in &evidence {
                            al.raise(at, *k, a.advert.src, d);
                        }
                        let still: Vec<AlarmKind> = evidence.iter().map(|(k, _)| *k).collect();
                        al.conforming(a.advert.src, &still);
                    }
                }
                let adv = a.advert;
                self.log(|| format!("n{to} rx {adv:?} -> {res:?}"));
                self.drain(to);
            }
            RxOutcome::Drop {
                reason,
                instance,
                from,
            } => {
                if let (Some(i), Some(src), Some((version, _, _))) = (instance, from, view)
                    && let Some((k, d)) = rx::drop_alarm(reason, version)
                    && let Some(al) = n.alarms.get_mut(i)
                {
                    al.raise(at, k, src, &d);
                }
                self.stats.rx_drops.add(reason);
                self.log(|| format!("n{to} rx dropped: {reason}"));
            }
            RxOutcome::Own { .. } => {}
        }
    }

    fn drain(&mut self, node: usize) {
        loop {
            let Some(n) = self.nodes.get_mut(node) else {
                return;
            };
            let Some((id, action)) = n.router.as_mut().and_then(Router::poll_action) else {
                return;
            };
            let idx = pos(id);
            let Some(cfg) = n.cfg.instances.get(idx) else {
                continue;
            };
            let vrid = cfg.vrid;
            let frame = match action {
                Action::SendAdvert {
                    priority,
                    max_advert_int_cs,
                } => Frame::advert(
                    cfg,
                    &n.cfg.wire,
                    n.vips.get(idx).map_or(&[][..], Vec::as_slice),
                    priority,
                    max_advert_int_cs,
                ),
                _ => None,
            };
            match action {
                Action::SendAdvert { priority, .. } => {
                    self.log(|| format!("n{node} tx vrid {vrid} prio {priority}"));
                    if let Some(frame) = frame {
                        self.broadcast(node, vrid, &frame);
                    } else {
                        self.violations.push(format!(
                            "node {node} vrid {vrid}: the send path could not build an advert"
                        ));
                    }
                }
                Action::ClaimVips | Action::ReleaseVips => {
                    let claim = action == Action::ClaimVips;
                    if !claim {
                        self.orphan_unheard(node, vrid);
                    }
                    let now = self.now;
                    if let Some(h) = self.nodes.get_mut(node).and_then(|n| n.held.get_mut(idx)) {
                        if *h == claim {
                            let what = if claim { "claim" } else { "release" };
                            let v = format!(
                                "{now:?}: node {node} vrid {vrid}: double {what} of the VIPs"
                            );
                            self.violations.push(v);
                        }
                        *h = claim;
                    }
                    self.vips.push(VipRecord {
                        at: now,
                        node,
                        instance: idx,
                        vrid,
                        held: claim,
                        crash: false,
                    });
                    self.log(|| format!("n{node} vrid {vrid} held={claim}"));
                }
                Action::SendGratuitous { .. } => {
                    self.stats.garp_bursts += 1;
                    self.arp.insert(
                        vrid,
                        ClientArp {
                            node,
                            at: self.now,
                            orphaned: false,
                            lossy: false,
                        },
                    );
                }
                Action::Notify(t) => {
                    self.log(|| {
                        format!("n{node} vrid {vrid} {} -> {} ({})", t.from, t.to, t.reason)
                    });
                    self.transitions.push(TransitionRecord {
                        at: self.now,
                        node,
                        instance: idx,
                        vrid,
                        from: t.from,
                        to: t.to,
                        reason: t.reason,
                    });
                }
                Action::PriorityChanged { .. }
                | Action::PreemptDelayStarted { .. }
                | Action::PreemptDelayCancelled { .. }
                | Action::LowerPriorityAdvert { .. }
                | Action::OwnerConflict { .. }
                | Action::HeldBySyncGroup { .. } => {}
            }
        }
    }

    fn broadcast(&mut self, from: usize, vrid: u8, frame: &Frame) {
        self.stats.frames_sent += 1;
        let Some(out) = self.nodes.get(from).map(|n| n.link.clone()) else {
            return;
        };
        for to in 0..self.nodes.len() {
            if to == from || !self.connected(from, to) {
                continue;
            }
            if self.one_way.iter().any(|&(f, t, v)| {
                t == to && f.is_none_or(|f| f == from) && v.is_none_or(|v| v == vrid)
            }) {
                self.stats.frames_lost += 1;
                continue;
            }
            let Some((inl, epoch)) = self.nodes.get(to).map(|n| (n.link.clone(), n.epoch)) else {
                continue;
            };
            let copies = 1
                + u32::from(self.rng.chance(out.duplicate))
                + u32::from(self.rng.chance(inl.duplicate));
            for _ in 0..copies {
                if self.rng.chance(out.loss) || self.rng.chance(inl.loss) {
                    self.stats.frames_lost += 1;
                    for e in self.arp.values_mut() {
                        e.lossy = true;
                    }
                    continue;
                }
                let mut d = out.delay
                    + inl.delay
                    + self.rng.duration(Duration::ZERO, out.jitter)
                    + self.rng.duration(Duration::ZERO, inl.jitter);
                let mut reordered = false;
                if self.rng.chance(out.reorder) {
                    d += self.rng.duration(Duration::ZERO, out.reorder_delay);
                    reordered = true;
                }
                if self.rng.chance(inl.reorder) {
                    d += self.rng.duration(Duration::ZERO, inl.reorder_delay);
                    reordered = true;
                }
                let mut at = self.now + d;
                // A switched LAN keeps each sender->receiver flow in order:
                // jitter never lets a frame overtake an earlier one; only
                // the explicit `reorder` fault does.
                let pair = from * self.nodes.len() + to;
                if !reordered && let Some(last) = self.fifo.get_mut(pair) {
                    at = at.max(*last);
                    *last = at;
                }
                self.push(
                    at,
                    Ev::Deliver {
                        to,
                        epoch,
                        frame: frame.clone(),
                    },
                );
            }
        }
    }

    /// After every step: VIPs held exactly while Master, crashed nodes hold
    /// nothing, sync-group members never split between Master and Backup.
    fn check_invariants(&mut self) {
        let now = self.now;
        for (ni, n) in self.nodes.iter().enumerate() {
            let Some(r) = n.router.as_ref() else {
                if n.held.iter().any(|&h| h) {
                    self.violations
                        .push(format!("{now:?}: crashed node {ni} holds VIPs"));
                }
                continue;
            };
            for (i, (_, inst)) in r.instances().enumerate() {
                let held = n.held.get(i).copied().unwrap_or(false);
                let master = inst.state() == State::Master;
                if held != master {
                    self.violations.push(format!(
                        "{now:?}: node {ni} vrid {}: holds VIPs={held} in state {}",
                        inst.config().vrid,
                        inst.state()
                    ));
                }
            }
            for g in r.groups() {
                let st = |s: State| {
                    g.members
                        .iter()
                        .any(|&m| r.instance(m).is_some_and(|i| i.state() == s))
                };
                if st(State::Master) && st(State::Backup) {
                    self.violations.push(format!(
                        "{now:?}: node {ni} sync group {} split between Master and Backup",
                        g.name
                    ));
                }
            }
        }
    }
}
