//! Soak: three agents (priorities 150/100/50, 100 ms adverts) on a real namespace LAN under a
//! seeded random schedule of faults — 5 % random loss on links (nftables random drop), link
//! flaps, SIGKILL of the master and restart later — each episode followed by a heal. The
//! simulator's invariants are checked on the real network, from the kernel's own address
//! events in every host namespace (AddrWatcher) and the adverts on the wire (Sniffer):
//!
//! - convergence: from heal + Master_Down_Interval + one interval + margin until the next
//!   fault, exactly one host holds the VIP, the highest priority (h0), and only h0
//!   advertises;
//! - no lasting duplicate: after a heal, the VIP is never on two connected hosts for longer
//!   than one advert interval + 50 ms;
//! - no lasting absence: while some agent is running with its link up, the VIP is never
//!   missing from every such host for longer than the protocol bound (the slowest backup's
//!   Master_Down_Interval) + margin.
//!
//! `VIPD_SOAK_SECS` (default 100) sets the length, `VIPD_SOAK_SEED` replays a schedule (the
//! seed is printed). Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd::net::netlink::NetEvent;
use vipd_lab::sniff::{Seen, Sniffer};
use vipd_lab::watch::AddrWatcher;
use vipd_proto::{self as proto, Version};
use vipd_sim::SplitMix64;

const PRIOS: [u8; 3] = [150, 100, 50];
const INTERVAL: Duration = Duration::from_millis(100);
/// Scheduling, process start and observer slack on a shared 2-core CI machine.
const MARGIN: Duration = Duration::from_millis(150);
const DUP_MARGIN: Duration = Duration::from_millis(50);

fn mdi(prio: u8) -> Duration {
    proto::master_down_interval(Version::V3, prio, INTERVAL)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    LinkDown(usize),
    LinkUp(usize),
    Killed(usize),
    Started(usize),
    LossOn(usize),
    LossOff(usize),
    /// Everything healed (all links up, no loss, every agent running).
    Healed,
}

struct Soak {
    lan: Lan,
    _dir: TempDir,
    vip: IpAddr,
    agents: Vec<Option<ChildGuard>>,
    cfgs: Vec<PathBuf>,
    log: Vec<(Instant, Ev)>,
    link_up: [bool; 3],
    lossy: [bool; 3],
}

impl Soak {
    fn note(&mut self, ev: Ev) {
        self.log.push((Instant::now(), ev));
    }

    fn start(&mut self, i: usize) {
        let c = common::start_vipd_realtime(self.lan.host(i), &self.cfgs[i]);
        self.agents[i] = Some(c);
        self.note(Ev::Started(i));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            // Faults are noted before they act, recoveries once done: the heal windows
            // never include a fault's first effects.
            self.note(Ev::Killed(i));
            c.kill().unwrap();
            let log = c.log();
            assert!(
                !log.contains("panicked"),
                "h{i} panicked before the kill:\n{log}"
            );
        }
    }

    fn link(&mut self, i: usize, up: bool) {
        if up {
            self.lan.link_up(i).unwrap();
            self.note(Ev::LinkUp(i));
        } else {
            self.note(Ev::LinkDown(i));
            self.lan.link_down(i).unwrap();
        }
        self.link_up[i] = up;
    }

    fn loss(&mut self, i: usize, on: bool) {
        if on {
            self.note(Ev::LossOn(i));
            self.lan.tc_netem(i, "loss 5%").unwrap();
            self.lan.tc_netem_port(i, "loss 5%").unwrap();
        } else {
            self.lan.tc_clear(i).unwrap();
            self.note(Ev::LossOff(i));
        }
        self.lossy[i] = on;
    }

    fn heal(&mut self) {
        for i in 0..3 {
            if self.lossy[i] {
                self.loss(i, false);
            }
            if !self.link_up[i] {
                self.link(i, true);
            }
            if self.agents[i].is_none() {
                self.start(i);
            }
        }
        // Every agent that should be running is (none died on its own).
        for (i, a) in self.agents.iter_mut().enumerate() {
            let a = a.as_mut().unwrap();
            assert!(
                a.try_wait().is_none(),
                "h{i} exited by itself:\n{}",
                a.log()
            );
        }
        self.note(Ev::Healed);
    }
}

/// Presence of the VIP per host over time, rebuilt from the address events.
#[derive(Default, Clone, Copy)]
struct World {
    present: [bool; 3],
    running: [bool; 3],
    link: [bool; 3],
}

impl World {
    fn live(&self, i: usize) -> bool {
        self.running[i] && self.link[i]
    }
    /// Hosts holding the VIP whose agent runs with its link up.
    fn effective(&self) -> BTreeSet<usize> {
        (0..3)
            .filter(|&i| self.present[i] && self.live(i))
            .collect()
    }
    /// Hosts holding the VIP that are connected (a duplicate on the wire).
    fn on_wire(&self) -> BTreeSet<usize> {
        (0..3)
            .filter(|&i| self.present[i] && self.link[i])
            .collect()
    }
    fn any_live(&self) -> bool {
        (0..3).any(|i| self.live(i))
    }
}

#[derive(Clone, Copy, Debug)]
enum Change {
    Fault(Ev),
    Addr(usize, bool),
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn soak_random_faults_keep_the_invariants() {
    let secs: u64 = std::env::var("VIPD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("VIPD_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("soak: {secs} s, seed {seed} (replay: VIPD_SOAK_SEED={seed} VIPD_SOAK_SECS={secs})");
    let mut rng = SplitMix64::new(seed);

    let mut lan = Lan::new("soak", 3).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("soak");
    let vip = lan.vip(false);
    let cfgs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = dir.path().join(format!("h{i}.toml"));
            std::fs::write(
                &p,
                format!(
                    "[global]\ncontrol_socket = \"{}/h{i}.sock\"\ngarp_master_delay = \"0s\"\n\n\
                     [[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 81\n\
                     priority = {}\nadvert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\n",
                    dir.path().display(),
                    PRIOS[i]
                ),
            )
            .unwrap();
            p
        })
        .collect();
    let mut watchers: Vec<AddrWatcher> = (0..3)
        .map(|i| AddrWatcher::start(lan.host(i).name()).unwrap())
        .collect();
    let mut sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
    let mut s = Soak {
        lan,
        _dir: dir,
        vip,
        agents: (0..3).map(|_| None).collect(),
        cfgs,
        log: Vec::new(),
        link_up: [true; 3],
        lossy: [false; 3],
    };
    let t_start = Instant::now();
    for i in 0..3 {
        s.start(i);
    }
    s.note(Ev::Healed);
    let quiet_min = mdi(PRIOS[0]) + INTERVAL + MARGIN;
    std::thread::sleep(quiet_min + Duration::from_millis(700));

    // ---- the schedule ----
    let deadline = t_start + Duration::from_secs(secs);
    let mut episodes = 0;
    let (mut kills, mut flaps, mut losses) = (0, 0, 0);
    while Instant::now() + Duration::from_secs(4) < deadline {
        episodes += 1;
        let faults = 1 + rng.below(2);
        for _ in 0..faults {
            match rng.below(3) {
                0 => {
                    // Kill the master (the host holding the VIP with a running agent).
                    let holder = (0..3).find(|&i| {
                        s.agents[i].is_some() && s.lan.host(i).has_addr("eth0", s.vip).unwrap()
                    });
                    if let Some(i) = holder {
                        s.kill(i);
                        kills += 1;
                    }
                }
                1 => {
                    let i = rng.below(3) as usize;
                    if s.link_up[i] {
                        s.link(i, false);
                        flaps += 1;
                    }
                }
                _ => {
                    let i = rng.below(3) as usize;
                    if !s.lossy[i] {
                        s.loss(i, true);
                        losses += 1;
                    }
                }
            }
            std::thread::sleep(rng.duration(Duration::from_millis(0), Duration::from_millis(600)));
        }
        // Partial recovery first sometimes: links come back before the agents restart.
        if rng.chance(0.5) {
            for i in 0..3 {
                if !s.link_up[i] {
                    s.link(i, true);
                }
            }
            std::thread::sleep(
                rng.duration(Duration::from_millis(100), Duration::from_millis(1200)),
            );
        }
        std::thread::sleep(rng.duration(Duration::from_millis(200), Duration::from_millis(1500)));
        s.heal();
        std::thread::sleep(
            quiet_min + rng.duration(Duration::from_millis(500), Duration::from_millis(1500)),
        );
    }
    let t_end = Instant::now();
    // Stop cleanly: each exits 0 (nothing crashed along the way).
    for i in 0..3 {
        let mut c = s.agents[i].take().unwrap();
        assert!(c.try_wait().is_none(), "h{i} died:\n{}", c.log());
        c.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
        let st = c.wait_timeout(Duration::from_secs(2)).unwrap();
        assert!(
            st.is_some_and(|x| x.success()),
            "h{i} exit {st:?}:\n{}",
            c.log()
        );
    }

    // ---- rebuild the timeline ----
    let mut changes: Vec<(Instant, Change)> =
        s.log.iter().map(|(t, e)| (*t, Change::Fault(*e))).collect();
    for (i, w) in watchers.iter_mut().enumerate() {
        for (t, ev) in w.events() {
            match ev {
                NetEvent::AddrAdded { addr, .. } if *addr == vip => {
                    changes.push((*t, Change::Addr(i, true)))
                }
                NetEvent::AddrRemoved { addr, .. } if *addr == vip => {
                    changes.push((*t, Change::Addr(i, false)))
                }
                _ => {}
            }
        }
    }
    changes.sort_by_key(|(t, _)| *t);
    let changes: Vec<(Instant, Change)> =
        changes.into_iter().filter(|(t, _)| *t <= t_end).collect();

    let heals: Vec<Instant> = s
        .log
        .iter()
        .filter(|(_, e)| *e == Ev::Healed)
        .map(|(t, _)| *t)
        .collect();
    // The first fault after each heal (or the end).
    let next_fault = |h: Instant| {
        s.log
            .iter()
            .filter(|(t, e)| {
                *t > h
                    && !matches!(
                        e,
                        Ev::Healed | Ev::Started(_) | Ev::LinkUp(_) | Ev::LossOff(_)
                    )
            })
            .map(|(t, _)| *t)
            .next()
            .unwrap_or(t_end)
    };
    let absence_bound = mdi(*PRIOS.iter().min().unwrap()) + MARGIN;
    let dup_bound = INTERVAL + DUP_MARGIN;

    let mut w = World {
        link: [true; 3],
        ..World::default()
    };
    let mut problems: Vec<String> = Vec::new();
    let mut max_absence = Duration::ZERO;
    let mut max_dup_after_heal = Duration::ZERO;
    let mut max_converge = Duration::ZERO;
    let mut absent_since: Option<Instant> = None;
    let mut dup_since: Option<Instant> = None;
    // Which heal window (heal, next fault) contains t.
    let window = |t: Instant| {
        heals
            .iter()
            .rev()
            .find(|h| **h <= t)
            .map(|h| (*h, next_fault(*h)))
            .filter(|(h, f)| t >= *h && t < *f)
    };
    let rel = |t: Instant| (t - t_start).as_secs_f64() * 1e3;
    for (k, (t, ch)) in changes.iter().enumerate() {
        match ch {
            Change::Fault(Ev::LinkDown(i)) => w.link[*i] = false,
            Change::Fault(Ev::LinkUp(i)) => w.link[*i] = true,
            Change::Fault(Ev::Killed(i)) => w.running[*i] = false,
            Change::Fault(Ev::Started(i)) => w.running[*i] = true,
            Change::Fault(_) => {}
            Change::Addr(i, on) => w.present[*i] = *on,
        }
        // Several changes at the same instant: judge the state after all of them.
        if changes.get(k + 1).is_some_and(|(t2, _)| t2 == t) {
            continue;
        }
        // Absence while some node is healthy. Any fault or recovery during an absence
        // restarts the clock: the bound holds from the last disturbance (a backup that
        // claims and then loses its link makes the next one wait a full
        // Master_Down_Interval from ITS last advert).
        let absent = w.effective().is_empty() && w.any_live();
        match (absent, absent_since) {
            (true, None) => absent_since = Some(*t),
            (true, Some(_)) if matches!(ch, Change::Fault(_)) => absent_since = Some(*t),
            (false, Some(since)) => {
                let d = *t - since;
                max_absence = max_absence.max(d);
                if d > absence_bound {
                    problems.push(format!(
                        "VIP absent {:.0} ms (bound {:.0}) from {:.0} ms",
                        d.as_secs_f64() * 1e3,
                        absence_bound.as_secs_f64() * 1e3,
                        rel(since)
                    ));
                }
                absent_since = None;
            }
            _ => {}
        }
        // Duplicates on the wire, counted from the heal when they straddle it.
        let dup = w.on_wire().len() >= 2;
        match (dup, dup_since) {
            (true, None) => dup_since = Some(*t),
            (false, Some(since)) => {
                if let Some((h, _)) = window(*t) {
                    let d = *t - since.max(h);
                    max_dup_after_heal = max_dup_after_heal.max(d);
                    if d > dup_bound {
                        problems.push(format!(
                            "VIP on two hosts for {:.0} ms after the heal at {:.0} ms (bound {:.0})",
                            d.as_secs_f64() * 1e3,
                            rel(h),
                            dup_bound.as_secs_f64() * 1e3
                        ));
                    }
                }
                dup_since = None;
            }
            _ => {}
        }
    }
    // Convergence after every heal: from heal + bound to the next fault, h0 alone.
    let converge_bound = mdi(PRIOS[0]) + INTERVAL + MARGIN;
    for h in &heals {
        let f = next_fault(*h);
        let check_from = *h + converge_bound;
        if check_from >= f {
            continue;
        }
        // State at check_from, then every change until f.
        let mut st = [false; 3];
        let mut last_change = *h;
        for (t, ch) in &changes {
            if *t > f {
                break;
            }
            if let Change::Addr(i, on) = ch {
                st[*i] = *on;
                if *t >= *h {
                    last_change = *t;
                }
                if *t > check_from && st != [true, false, false] {
                    problems.push(format!(
                        "after the heal at {:.0} ms: holders {:?} at {:.0} ms",
                        rel(*h),
                        st,
                        rel(*t)
                    ));
                }
            }
        }
        let holders_at_check: Vec<usize> = {
            let mut st2 = [false; 3];
            for (t, ch) in &changes {
                if *t > check_from {
                    break;
                }
                if let Change::Addr(i, on) = ch {
                    st2[*i] = *on;
                }
            }
            (0..3).filter(|&i| st2[i]).collect()
        };
        if holders_at_check != vec![0] {
            problems.push(format!(
                "{:.0} ms after the heal at {:.0} ms the VIP is on {:?}, not h0 alone",
                converge_bound.as_secs_f64() * 1e3,
                rel(*h),
                holders_at_check
            ));
        }
        max_converge = max_converge.max(last_change.min(check_from) - *h);
        // Only h0 advertises (priority > 0) once converged.
        let h0 = IpAddr::V4(s.lan.host(0).v4);
        let others: Vec<IpAddr> = sniff
            .events()
            .iter()
            .filter(|e| e.at > check_from && e.at < f)
            .filter_map(|e| match e.what {
                Seen::Advert { src, priority, .. } if src != h0 && priority > 0 => Some(src),
                _ => None,
            })
            .collect();
        if !others.is_empty() {
            problems.push(format!(
                "after the heal at {:.0} ms, {} adverts from others than h0: {:?}",
                rel(*h),
                others.len(),
                others.iter().collect::<BTreeSet<_>>()
            ));
        }
    }
    let adverts = sniff
        .events()
        .iter()
        .filter(|e| matches!(e.what, Seen::Advert { .. }))
        .count();
    eprintln!(
        "soak: seed {seed}, {:.1} s, {episodes} episodes ({kills} master kills, {flaps} link flaps, \
         {losses} lossy links), {} heals, {adverts} adverts seen\n\
         soak: longest absence while a node was healthy {:.0} ms (bound {:.0}); longest duplicate \
         after a heal {:.0} ms (bound {:.0}); slowest convergence after a heal {:.0} ms (checked at {:.0})",
        (t_end - t_start).as_secs_f64(),
        heals.len(),
        max_absence.as_secs_f64() * 1e3,
        absence_bound.as_secs_f64() * 1e3,
        max_dup_after_heal.as_secs_f64() * 1e3,
        dup_bound.as_secs_f64() * 1e3,
        max_converge.as_secs_f64() * 1e3,
        converge_bound.as_secs_f64() * 1e3,
    );
    if !problems.is_empty() {
        for (t, e) in &s.log {
            eprintln!("  {:>9.1} ms {e:?}", rel(*t));
        }
        panic!(
            "soak (seed {seed}) broke {} invariant(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}
