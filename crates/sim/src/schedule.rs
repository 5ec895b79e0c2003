//! Random fault schedules and the convergence properties checked on them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::{LinkConfig, NodeConfig, Sim, SimEvent, SplitMix64};
use vipd_proto::alarms::AlarmKind;
use vipd_proto::{GarpConfig, InstanceConfig, State, SyncGroupConfig, Version};

/// Slack added to every bound: one centisecond, so implementations that
/// round `Skew_Time` to whole centiseconds (FRR) pass the same checks as
/// exact ones (keepalived's microseconds, ours).
pub const TOLERANCE: Duration = Duration::from_millis(10);

/// What to do to the master once the network is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalAct {
    /// Nothing: just check convergence.
    None,
    /// Crash the VIP holder of the first VRID: a backup must claim within
    /// `Master_Down_Interval` (+ delay and tolerance).
    CrashMaster,
    /// Clean-stop the holder: a backup must claim within `Skew_Time`
    /// (+ delay and tolerance).
    StopMaster,
}

/// A random scenario: nodes, a fault phase, a healing phase, checks.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub nodes: Vec<NodeConfig>,
    /// Fault-phase events (time, event), sorted by time.
    pub events: Vec<(Duration, SimEvent)>,
    /// When the network becomes whole and stable.
    pub heal_at: Duration,
    pub final_act: FinalAct,
    /// Every VRID in use.
    pub vrids: Vec<u8>,
}

/// What a successful run observed.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Time from heal to the last VIP change in the healing window.
    pub converged_after_heal: Option<Duration>,
    /// Time from the final act to the first claim by another node.
    pub takeover_after_final_act: Option<Duration>,
    pub steps: u64,
    pub transitions: usize,
}

const INTERVALS_MS: [u64; 6] = [10, 20, 50, 100, 200, 1000];

fn addr(v6: bool, node: usize) -> IpAddr {
    let n = u8::try_from(node + 1).unwrap_or(255);
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(n)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }
}

fn cs_round(d: Duration) -> Duration {
    let cs = (d.as_millis() / 10).clamp(1, 4095);
    Duration::from_millis(u64::try_from(cs).unwrap_or(1) * 10)
}

impl Schedule {
    /// A random schedule: 2..=5 nodes, 1..=2 VRIDs (sometimes one sync
    /// group), random priorities/intervals/preempt settings, a fault phase
    /// with random link faults, partitions, crashes, stops, tracker flaps
    /// and maintenance, then a heal (everything restored at `heal_at`).
    pub fn random(seed: u64) -> Schedule {
        let mut rng = SplitMix64::new(seed ^ 0x005E_ED0F_F411_u64);
        let n = usize::try_from(rng.range(2, 5)).unwrap_or(2);
        let nvr = if rng.chance(0.3) { 2 } else { 1 };
        let grouped = nvr == 2 && rng.chance(0.4);
        // A quarter of the schedules draw priorities from two values only: equal priorities
        // are frequent there (an RFC backup accepts an equal master whatever its address;
        // two equal masters settle by address).
        let few = rng.chance(0.25);
        let prio = |rng: &mut SplitMix64| {
            if few {
                if rng.chance(0.5) { 100 } else { 150 }
            } else {
                u8::try_from(rng.range(1, 254)).unwrap_or(100)
            }
        };
        // Per node base priority (shared by grouped VRIDs so the group
        // orders nodes consistently, as keepalived requires).
        let node_prio: Vec<u8> = (0..n)
            .map(|i| {
                if i == 0 && rng.chance(0.08) {
                    255
                } else {
                    prio(&mut rng)
                }
            })
            .collect();
        let mut vrids = Vec::new();
        let mut per_node: Vec<Vec<InstanceConfig>> = vec![Vec::new(); n];
        let mut interval_max = Duration::ZERO;
        let mut interval_min = Duration::MAX;
        let versions: Vec<Version> = (0..nvr)
            .map(|_| {
                if rng.chance(0.2) {
                    Version::V2
                } else {
                    Version::V3
                }
            })
            .collect();
        // One time scale per schedule (v2 forces whole seconds), so that
        // event counts stay small and link delays stay below the intervals.
        let base = if versions.contains(&Version::V2) {
            Duration::from_secs(rng.range(1, 2))
        } else {
            Duration::from_millis(*rng.pick(&INTERVALS_MS).unwrap_or(&100))
        };
        for (v, &version) in versions.iter().enumerate() {
            let vrid = u8::try_from(10 + v).unwrap_or(10);
            vrids.push(vrid);
            let v6 = version == Version::V3 && rng.chance(0.25);
            for (i, cfgs) in per_node.iter_mut().enumerate() {
                let mut interval = base;
                if version == Version::V3 && rng.chance(0.2) {
                    interval = if rng.chance(0.5) {
                        cs_round(base * 2)
                    } else {
                        cs_round(base / 2)
                    };
                }
                interval_max = interval_max.max(interval);
                interval_min = interval_min.min(interval);
                let priority = if grouped {
                    node_prio.get(i).copied().unwrap_or(100)
                } else if i == 0 && node_prio.first() == Some(&255) && v == 0 {
                    255
                } else {
                    prio(&mut rng)
                };
                let preempt_delay = if rng.chance(0.15) {
                    interval * u32::try_from(rng.range(1, 5)).unwrap_or(1)
                } else {
                    Duration::ZERO
                };
                cfgs.push(InstanceConfig {
                    name: format!("n{i}v{vrid}"),
                    vrid,
                    version,
                    priority,
                    advert_interval: interval,
                    preempt: rng.chance(0.85),
                    preempt_delay,
                    fast_preempt: false,
                    accept_mode: rng.chance(0.5),
                    primary_addr: addr(v6, i),
                    garp: {
                        let repeat = u32::try_from(rng.range(0, 3)).unwrap_or(1);
                        GarpConfig {
                            delay: interval * 3,
                            repeat,
                            refresh: rng.chance(0.2).then_some(interval * 7),
                            refresh_repeat: 1,
                            lower_prio_repeat: repeat,
                            lower_prio_delay: interval * 3,
                        }
                    },
                    lower_prio_no_advert: false,
                    max_adopted_interval: None,
                    anycast: None,
                });
            }
        }
        let nodes: Vec<NodeConfig> = per_node
            .into_iter()
            .map(|instances| {
                // Healed links: delay + jitter well below the shortest
                // interval (jitter beyond ~2 intervals makes any VRRP flap).
                let delay = rng.duration(Duration::ZERO, interval_min / 8);
                let groups = if grouped {
                    vec![SyncGroupConfig {
                        name: "g".into(),
                        members: (0..instances.len()).map(crate::iid).collect(),
                    }]
                } else {
                    Vec::new()
                };
                NodeConfig {
                    instances,
                    groups,
                    link: LinkConfig {
                        delay,
                        jitter: rng.duration(Duration::ZERO, delay / 2),
                        loss: 0.0,
                        duplicate: if rng.chance(0.2) { 0.05 } else { 0.0 },
                        reorder: 0.0,
                        reorder_delay: Duration::ZERO,
                    },
                    // Differences vipd tolerates (it accepts both checksum forms and elects
                    // whatever VIP list a peer advertises), which must never go unreported.
                    wire: crate::Wire {
                        checksum_without_pseudo_header: rng.chance(0.15),
                        extra_vip: rng.chance(0.1),
                        auth: None,
                    },
                }
            })
            .collect();

        // Fault phase.
        let heal_at = interval_max * u32::try_from(rng.range(8, 30)).unwrap_or(10);
        let mut events = Vec::new();
        for node in 0..n {
            events.push((
                rng.duration(Duration::ZERO, interval_max),
                SimEvent::Start { node },
            ));
        }
        let n_faults = rng.range(0, 10);
        for _ in 0..n_faults {
            let at = rng.duration(Duration::ZERO, heal_at);
            let node = usize::try_from(rng.below(n as u64)).unwrap_or(0);
            let instance = usize::try_from(rng.below(nvr as u64)).unwrap_or(0);
            let ev = match rng.below(13) {
                0 | 1 => {
                    let base = nodes.get(node).map(|c| c.link.clone());
                    let mut link = base.unwrap_or_else(|| LinkConfig::clean(Duration::ZERO));
                    link.loss = rng.unit() * 0.5;
                    link.reorder = rng.unit() * 0.3;
                    link.reorder_delay = interval_max;
                    link.duplicate = rng.unit() * 0.2;
                    SimEvent::SetLink { node, link }
                }
                2 => SimEvent::Partition {
                    component: (0..n).map(|_| u32::from(rng.chance(0.5))).collect(),
                },
                3 => SimEvent::Heal,
                4 => SimEvent::Crash { node },
                5 => SimEvent::Restart { node },
                6 => SimEvent::Shutdown { node },
                7 => SimEvent::Start { node },
                8 => SimEvent::PriorityAdjust {
                    node,
                    instance,
                    delta: i32::try_from(rng.range(0, 200)).unwrap_or(0) - 100,
                },
                9 => SimEvent::Fault {
                    node,
                    instance,
                    fault: rng.chance(0.7),
                },
                // One-way loss, from one node or all, for one VRID or all (healed with the
                // partitions).
                11 => SimEvent::DropOneWay {
                    from: rng
                        .chance(0.5)
                        .then(|| usize::try_from(rng.below(n as u64)).unwrap_or(0)),
                    to: node,
                    vrid: rng
                        .chance(0.5)
                        .then(|| vrids.get(instance).copied())
                        .flatten(),
                },
                // A stall of the node's daemon (timers held, frames waiting in its socket),
                // over before the heal.
                12 => SimEvent::Stall {
                    node,
                    duration: rng.duration(
                        Duration::ZERO,
                        (interval_max * 8).min(heal_at.saturating_sub(at)),
                    ),
                    reads_first: true,
                },
                _ => SimEvent::Maintenance {
                    node,
                    instance,
                    on: rng.chance(0.7),
                },
            };
            events.push((at, ev));
        }
        events.sort_by_key(|(t, _)| *t);
        let final_act = match rng.below(4) {
            0 | 1 => FinalAct::None,
            2 => FinalAct::CrashMaster,
            _ => FinalAct::StopMaster,
        };
        Schedule {
            seed,
            nodes,
            events,
            heal_at,
            final_act,
            vrids,
        }
    }

    /// Longest advert interval of any instance.
    pub fn interval_max(&self) -> Duration {
        self.nodes
            .iter()
            .flat_map(|n| n.instances.iter().map(|c| c.advert_interval))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Longest one-way delay between two nodes on healed links.
    pub fn delay_max(&self) -> Duration {
        let mut v: Vec<Duration> = self.nodes.iter().map(|n| n.link.max_delay()).collect();
        v.sort();
        v.iter().rev().take(2).sum()
    }

    /// Upper bound on `Master_Down_Interval` for any instance and any
    /// adopted interval: 3 * I + Skew (Skew < I for v3, < 1 s <= I for v2).
    pub fn master_down_max(&self) -> Duration {
        self.interval_max() * 4
    }

    /// How long the network must be whole and stable before exactly one
    /// correct holder per VRID is required:
    /// `Master_Down_Interval + one advert interval + 2 x delay` (the delay
    /// twice: the last advert before the heal may still be in flight, and
    /// the new master's first advert must reach the old one), plus, when
    /// some instance has a preempt delay, that delay and another
    /// `Master_Down_Interval + delay` (the preempting backup first treats
    /// the lower master as valid).
    pub fn settle_bound(&self) -> Duration {
        let d = self.delay_max();
        let mut b = self.master_down_max() + self.interval_max() + d * 2 + TOLERANCE;
        let pd = self
            .nodes
            .iter()
            .flat_map(|n| n.instances.iter().map(|c| c.preempt_delay))
            .max()
            .unwrap_or(Duration::ZERO);
        if !pd.is_zero() {
            b += pd + self.master_down_max() + d;
        }
        b
    }

    /// Run the schedule and check every property. `Err` describes the first
    /// violation (with the seed).
    pub fn run(&self, base: Instant, trace: bool) -> Result<Outcome, String> {
        let fail = |msg: String| {
            format!(
                "seed {}: {msg}\n  replay: VIPD_SIM_SEED={} cargo test --test sim_props replay -- --nocapture",
                self.seed, self.seed
            )
        };
        let mut sim =
            Sim::new(base, self.nodes.clone(), self.seed).map_err(|e| fail(e.to_string()))?;
        if trace {
            sim.enable_trace();
        }
        for (t, ev) in &self.events {
            sim.schedule(*t, ev.clone());
        }
        // Heal: links clean (delay and jitter kept), no partition, every
        // node up and started, trackers back to normal.
        let h = self.heal_at;
        sim.schedule(h, SimEvent::Heal);
        for (node, cfg) in self.nodes.iter().enumerate() {
            let mut link = cfg.link.clone();
            link.loss = 0.0;
            link.reorder = 0.0;
            sim.schedule(h, SimEvent::SetLink { node, link });
            sim.schedule(h, SimEvent::Restart { node });
            sim.schedule(h, SimEvent::Start { node });
            for instance in 0..cfg.instances.len() {
                sim.schedule(
                    h,
                    SimEvent::PriorityAdjust {
                        node,
                        instance,
                        delta: 0,
                    },
                );
                sim.schedule(
                    h,
                    SimEvent::Fault {
                        node,
                        instance,
                        fault: false,
                    },
                );
                sim.schedule(
                    h,
                    SimEvent::Maintenance {
                        node,
                        instance,
                        on: false,
                    },
                );
            }
        }
        let bound = self.settle_bound();
        let check_at = h + bound;
        // Keep running a while to see that the result is stable.
        let end = check_at + self.interval_max() * 3;
        sim.run_until(end);
        let dump = |sim: &Sim| sim.trace().map(str::to_owned).unwrap_or_default();
        if let Some(v) = sim.violations().first() {
            return Err(fail(format!("invariant: {v}{}", dump(&sim))));
        }
        let mut outcome = Outcome::default();
        let last_change = sim
            .vip_log()
            .iter()
            .filter(|r| r.at >= h)
            .map(|r| r.at)
            .max();
        outcome.converged_after_heal = last_change.map(|t| t - h);
        if let Some(t) = last_change
            && t > check_at
        {
            return Err(fail(format!(
                "VIPs still moving {:?} after heal (bound {:?}){}",
                t - h,
                bound,
                dump(&sim)
            )));
        }
        self.check_holders(&sim, None)
            .map_err(|e| fail(format!("{e}{}", dump(&sim))))?;

        if self.final_act != FinalAct::None
            && let Some(&vrid) = self.vrids.first()
            && let Some(&victim) = sim.holders(vrid).first()
        {
            // Bound from the backups' current view.
            let d = self.delay_max();
            let mut by_crash = Duration::ZERO;
            let mut by_stop = Duration::ZERO;
            for node in 0..sim.node_count() {
                if node == victim {
                    continue;
                }
                let (Some(i), Some(r)) = (sim.instance_for(node, vrid), sim.router(node)) else {
                    continue;
                };
                // In a sync group the takeover waits for every member's timer (keepalived's
                // rule): the bound is the slowest member's.
                let members: Vec<crate::InstanceId> = match r.group_of(crate::iid(i)) {
                    Some(g) => r
                        .groups()
                        .get(g)
                        .map(|g| g.members.clone())
                        .unwrap_or_default(),
                    None => vec![crate::iid(i)],
                };
                for inst in members.iter().filter_map(|&m| r.instance(m)) {
                    by_crash = by_crash.max(inst.master_down_interval());
                    by_stop = by_stop.max(inst.skew_time());
                }
            }
            let t0 = sim.now();
            let (ev, limit) = match self.final_act {
                FinalAct::CrashMaster => (SimEvent::Crash { node: victim }, by_crash + d),
                _ => (SimEvent::Shutdown { node: victim }, by_stop + d),
            };
            let limit = limit + TOLERANCE;
            sim.apply(ev);
            let end2 = t0 + self.settle_bound() + self.interval_max() * 3;
            sim.run_until(end2);
            if let Some(v) = sim.violations().first() {
                return Err(fail(format!(
                    "invariant after final act: {v}{}",
                    dump(&sim)
                )));
            }
            let first = sim
                .vip_log()
                .iter()
                .find(|r| r.at >= t0 && r.vrid == vrid && r.held && r.node != victim)
                .map(|r| r.at - t0);
            outcome.takeover_after_final_act = first;
            match first {
                Some(t) if t <= limit => {}
                other => {
                    return Err(fail(format!(
                        "{:?} of node {victim}: takeover after {other:?}, bound {limit:?}{}",
                        self.final_act,
                        dump(&sim)
                    )));
                }
            }
            self.check_holders(&sim, Some(victim))
                .map_err(|e| fail(format!("after final act: {e}{}", dump(&sim))))?;
        }
        outcome.steps = sim.stats().steps;
        outcome.transitions = sim.transitions().len();
        Ok(outcome)
    }

    /// Exactly one holder per VRID; no running preempting node (or owner)
    /// outranks it by effective priority. Equal priorities are accepted
    /// (an RFC backup accepts an equal-priority master regardless of
    /// address; the address tie-break only settles two masters).
    fn check_holders(&self, sim: &Sim, down: Option<usize>) -> Result<(), String> {
        for &vrid in &self.vrids {
            let holders = sim.holders(vrid);
            let [h] = holders[..] else {
                return Err(format!(
                    "vrid {vrid}: holders {holders:?}, want exactly one"
                ));
            };
            let get = |node: usize| {
                sim.instance_for(node, vrid)
                    .and_then(|i| sim.router(node).and_then(|r| r.instance(crate::iid(i))))
            };
            let Some(hi) = get(h) else {
                return Err(format!("vrid {vrid}: holder {h} has no instance"));
            };
            if hi.state() != State::Master {
                return Err(format!("vrid {vrid}: holder {h} is {}", hi.state()));
            }
            // Judged by the traffic: the client's neighbour entry points at the holder (when
            // every node announces its VIPs at all).
            let announces = (0..sim.node_count())
                .filter_map(&get)
                .all(|i| i.config().garp.repeat > 0 && i.config().garp.lower_prio_repeat > 0);
            let arp = sim.client_arp(vrid);
            if announces && arp.is_some_and(|a| a.node != h && !a.orphaned && !a.lossy) {
                return Err(format!(
                    "vrid {vrid}: holder {h}, but the client's ARP entry points at {arp:?}"
                ));
            }
            // Never silence: a backup that hears the holder's adverts and differs from it in a
            // way vipd tolerates shows the alarm naming the holder.
            let wire = |n: usize| {
                sim.node_config(n)
                    .map(|c| c.wire.clone())
                    .unwrap_or_default()
            };
            for node in 0..sim.node_count() {
                if node == h || Some(node) == down {
                    continue;
                }
                let Some(x) = get(node) else { continue };
                if x.state() != State::Backup || !sim.hears(h, node, vrid) {
                    continue;
                }
                let Some(i) = sim.instance_for(node, vrid) else {
                    continue;
                };
                let alarms = sim.alarms(node, i);
                let from = hi.config().primary_addr;
                let (wh, wx) = (wire(h), wire(node));
                let v3v4 = hi.config().version == vipd_proto::Version::V3 && from.is_ipv4();
                if v3v4
                    && wh.checksum_without_pseudo_header != wx.checksum_without_pseudo_header
                    && !alarms.contains(&(AlarmKind::ChecksumForm, from))
                {
                    return Err(format!(
                        "vrid {vrid}: node {node} hears holder {h}'s other checksum form and has no alarm: {alarms:?}"
                    ));
                }
                if wh.extra_vip != wx.extra_vip && !alarms.contains(&(AlarmKind::AddressList, from))
                {
                    return Err(format!(
                        "vrid {vrid}: node {node} hears holder {h}'s other VIP list and has no alarm: {alarms:?}"
                    ));
                }
            }
            for node in 0..sim.node_count() {
                if node == h || Some(node) == down {
                    continue;
                }
                let Some(x) = get(node) else { continue };
                if x.state() == State::Initialize {
                    continue;
                }
                // A member held by its sync group (it wants to take over, another member
                // still hears its master) does not preempt: the group moves only when every
                // member wants to (keepalived's rule; see docs/failure-model.md).
                if x.held_by_sync_group() {
                    continue;
                }
                let preempts = x.config().preempt || x.is_owner();
                if preempts && x.effective_priority() > hi.effective_priority() {
                    return Err(format!(
                        "vrid {vrid}: holder {h} (prio {}) but node {node} has prio {} and preempts",
                        hi.effective_priority(),
                        x.effective_priority()
                    ));
                }
            }
        }
        Ok(())
    }
}
