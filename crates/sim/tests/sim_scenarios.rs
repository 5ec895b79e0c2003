//! Deterministic simulator scenarios with exact expectations.
#![allow(clippy::expect_used)] // tests: a failed expectation is a test failure

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use vipd_proto::{InstanceConfig, Reason, State, SyncGroupConfig, Version};
use vipd_sim::{LinkConfig, NodeConfig, Schedule, Sim, SimEvent};

const DELAY: Duration = Duration::from_millis(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn inst(node: usize, vrid: u8, prio: u8) -> InstanceConfig {
    let mut c = InstanceConfig::new(
        format!("n{node}v{vrid}"),
        vrid,
        Version::V3,
        prio,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, node as u8 + 1)),
    );
    c.advert_interval = ms(100);
    c
}

fn sim(prios: &[u8]) -> Sim {
    let nodes = prios
        .iter()
        .enumerate()
        .map(|(i, &p)| NodeConfig {
            instances: vec![inst(i, 1, p)],
            groups: vec![],
            link: LinkConfig::clean(DELAY / 2),
        })
        .collect();
    let mut s = Sim::new(Instant::now(), nodes, 7).expect("valid");
    for node in 0..prios.len() {
        s.schedule(Duration::ZERO, SimEvent::Start { node });
    }
    s
}

fn mdi(s: &Sim, node: usize) -> Duration {
    s.router(node)
        .and_then(|r| r.instance(vipd_sim::iid(0)))
        .expect("running")
        .master_down_interval()
}

fn first_claim_after(s: &Sim, t: Duration) -> Option<(Duration, usize)> {
    s.vip_log()
        .iter()
        .find(|r| r.at > t && r.held)
        .map(|r| (r.at, r.node))
}

#[test]
fn highest_priority_wins_from_cold_start() {
    let mut s = sim(&[100, 150, 200]);
    s.run_until(ms(1000));
    assert_eq!(s.holders(1), vec![2]);
    assert!(s.violations().is_empty(), "{:?}", s.violations());
    // Node 2 has the shortest Master_Down_Interval: the only claim.
    assert_eq!(s.vip_log().len(), 1);
    let t = &s.vip_log()[0];
    assert_eq!(t.at, ms(300) + ms(100) * 56 / 256);
}

#[test]
fn partition_split_brain_then_heal() {
    let mut s = sim(&[100, 150, 200]);
    s.run_until(ms(1000));
    s.apply(SimEvent::Partition {
        component: vec![0, 0, 1],
    });
    s.run_until(ms(2000));
    // Both sides elect a master: expected VRRP behaviour.
    assert_eq!(s.holders(1), vec![1, 2]);
    s.apply(SimEvent::Heal);
    let healed = s.now();
    // Within one advert interval + delay, node 1 hears node 2.
    s.run_until(healed + ms(100) + DELAY);
    assert_eq!(s.holders(1), vec![2]);
    // And the client, which followed node 1's gratuitous ARP during the split, points at
    // node 2 again: node 2 heard node 1 (its adverts, or its farewell advert on stepping
    // down) and re-announced the VIP.
    s.run_until(healed + ms(100) + DELAY * 3);
    assert_eq!(
        s.client_arp(1).map(|a| a.node),
        Some(2),
        "client still follows the loser"
    );
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

#[test]
fn master_crash_takeover_within_master_down_interval() {
    let mut s = sim(&[100, 150, 200]);
    s.run_until(ms(1000));
    let bound = mdi(&s, 1) + DELAY;
    let t = s.now();
    s.apply(SimEvent::Crash { node: 2 });
    assert!(s.holders(1).is_empty());
    s.run_until(t + ms(1000));
    let (at, node) = first_claim_after(&s, t).expect("takeover");
    assert_eq!(node, 1);
    assert!(at - t <= bound, "{:?} > {bound:?}", at - t);
    // Not earlier than MDI minus one advert interval.
    assert!(at - t >= mdi(&s, 1).saturating_sub(ms(100)));
    // Restart: the crashed node holds nothing until it preempts back.
    let t = s.now();
    s.apply(SimEvent::Restart { node: 2 });
    assert!(!s.holds(2, 1));
    s.run_until(t + ms(1000));
    assert_eq!(s.holders(1), vec![2]);
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

#[test]
fn clean_stop_takeover_after_skew_only() {
    let mut s = sim(&[100, 150, 200]);
    s.run_until(ms(1000));
    let t = s.now();
    s.apply(SimEvent::Shutdown { node: 2 });
    s.run_until(t + ms(1000));
    let (at, node) = first_claim_after(&s, t).expect("takeover");
    assert_eq!(node, 1);
    // Priority 0 arrives after DELAY, then Skew_Time = 106/256 * 100 ms.
    assert_eq!(at - t, DELAY + ms(100) * 106 / 256);
    let last = s.transitions().iter().rfind(|r| r.node == 1).expect("t");
    assert_eq!(last.reason, Reason::PriorityZeroReceived);
}

#[test]
fn tracker_drop_moves_vips() {
    let mut s = sim(&[100, 150, 200]);
    s.run_until(ms(1000));
    let t = s.now();
    s.apply(SimEvent::PriorityAdjust {
        node: 2,
        instance: 0,
        delta: -100,
    });
    s.run_until(t + ms(1000));
    assert_eq!(s.holders(1), vec![1]);
    let (at, _) = first_claim_after(&s, t).expect("takeover");
    assert!(at - t <= mdi(&s, 1) + DELAY);
    let last = s.transitions().iter().rfind(|r| r.node == 1).expect("t");
    assert_eq!(last.reason, Reason::Preempt);
}

#[test]
fn fast_preempt_moves_vips_after_skew_time() {
    let nodes = [100u8, 150, 200]
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let mut c = inst(i, 1, p);
            c.fast_preempt = true;
            NodeConfig {
                instances: vec![c],
                groups: vec![],
                link: LinkConfig::clean(DELAY / 2),
            }
        })
        .collect();
    let mut s = Sim::new(Instant::now(), nodes, 7).expect("valid");
    for node in 0..3 {
        s.schedule(Duration::ZERO, SimEvent::Start { node });
    }
    s.run_until(ms(1000));
    let t = s.now();
    s.apply(SimEvent::PriorityAdjust {
        node: 2,
        instance: 0,
        delta: -100,
    });
    s.run_until(t + ms(1000));
    assert_eq!(s.holders(1), vec![1]);
    // The lowered master advertises its priority at once; node 1 (150) takes over one
    // Skew_Time later, not Master_Down_Interval; node 0 (100) stays backup.
    let (at, node) = first_claim_after(&s, t).expect("takeover");
    assert_eq!(node, 1);
    let skew = ms(100) * 106 / 256;
    assert!(at - t <= skew + DELAY * 2, "{:?} > {skew:?}", at - t);
    assert_eq!(s.client_arp(1).map(|a| a.node), Some(1));
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

#[test]
fn sync_group_moves_together_on_fault() {
    let nodes = [200u8, 100]
        .iter()
        .enumerate()
        .map(|(i, &p)| NodeConfig {
            instances: vec![inst(i, 1, p), inst(i, 2, p)],
            groups: vec![SyncGroupConfig {
                name: "g".into(),
                members: vec![vipd_sim::iid(0), vipd_sim::iid(1)],
            }],
            link: LinkConfig::clean(DELAY / 2),
        })
        .collect();
    let mut s = Sim::new(Instant::now(), nodes, 1).expect("valid");
    s.schedule(Duration::ZERO, SimEvent::Start { node: 0 });
    s.schedule(Duration::ZERO, SimEvent::Start { node: 1 });
    s.run_until(ms(1000));
    assert_eq!((s.holders(1), s.holders(2)), (vec![0], vec![0]));
    let t = s.now();
    s.apply(SimEvent::Fault {
        node: 0,
        instance: 1,
        fault: true,
    });
    let st = |s: &Sim, n: usize, i: usize| {
        s.router(n)
            .and_then(|r| r.instance(vipd_sim::iid(i)))
            .map(|i| i.state())
    };
    assert_eq!(st(&s, 0, 0), Some(State::Fault));
    s.run_until(t + ms(500));
    assert_eq!((s.holders(1), s.holders(2)), (vec![1], vec![1]));
    s.apply(SimEvent::Fault {
        node: 0,
        instance: 1,
        fault: false,
    });
    s.run_until(t + ms(1500));
    assert_eq!((s.holders(1), s.holders(2)), (vec![0], vec![0]));
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

#[test]
fn same_seed_same_history() {
    let run = |seed| {
        let sched = Schedule::random(seed);
        let mut s = Sim::new(Instant::now(), sched.nodes.clone(), seed).expect("valid");
        for (t, ev) in &sched.events {
            s.schedule(*t, ev.clone());
        }
        s.run_until(sched.heal_at);
        (
            s.transitions().to_vec(),
            s.vip_log().to_vec(),
            s.stats().clone(),
        )
    };
    for seed in [1, 2, 3, 99] {
        assert_eq!(run(seed), run(seed));
    }
}

#[test]
fn schedules_cover_the_fault_model() {
    let mut crash = 0;
    let mut stop = 0;
    let mut groups = 0;
    let mut v2 = 0;
    let mut v6 = 0;
    let mut owner = 0;
    let mut partition = 0;
    for seed in 0..500 {
        let s = Schedule::random(seed);
        let cfgs: Vec<_> = s.nodes.iter().flat_map(|n| n.instances.iter()).collect();
        groups += usize::from(s.nodes.iter().any(|n| !n.groups.is_empty()));
        v2 += usize::from(cfgs.iter().any(|c| c.version == Version::V2));
        v6 += usize::from(cfgs.iter().any(|c| c.primary_addr.is_ipv6()));
        owner += usize::from(cfgs.iter().any(|c| c.priority == 255));
        partition += usize::from(
            s.events
                .iter()
                .any(|(_, e)| matches!(e, SimEvent::Partition { .. })),
        );
        let o = s.run(Instant::now(), false).expect("passes");
        if o.takeover_after_final_act.is_some() {
            match s.final_act {
                vipd_sim::FinalAct::CrashMaster => crash += 1,
                _ => stop += 1,
            }
        }
    }
    for (what, n) in [
        ("crash", crash),
        ("stop", stop),
        ("groups", groups),
        ("v2", v2),
        ("v6", v6),
        ("owner", owner),
        ("partition", partition),
    ] {
        assert!(n >= 10, "only {n} of 500 schedules exercise {what}");
    }
}

/// Adverts cross the simulated LAN as bytes: built by the daemon's send path and classified
/// by its receive policy. A clean LAN drops nothing; a node configured for another version
/// (VRRPv2 on a VRRPv3 VRID) has every advert dropped by the policy as a version mismatch
/// (so both sides become master: the misconfiguration is visible, not silent).
#[test]
fn adverts_go_through_the_real_send_and_receive_paths() {
    let mut s = sim(&[100, 150, 200]);
    s.run_until(ms(2000));
    assert_eq!(s.stats().rx_drops.total(), 0);
    assert_eq!(
        s.stats().address_list_mismatch,
        0,
        "adverts carry the VIP list"
    );
    assert!(s.stats().frames_delivered > 0);

    let mut v2 = inst(1, 1, 150);
    v2.version = Version::V2;
    v2.advert_interval = ms(1000);
    let nodes = vec![
        NodeConfig {
            instances: vec![inst(0, 1, 100)],
            groups: vec![],
            link: LinkConfig::clean(DELAY / 2),
        },
        NodeConfig {
            instances: vec![v2],
            groups: vec![],
            link: LinkConfig::clean(DELAY / 2),
        },
    ];
    let mut s = Sim::new(Instant::now(), nodes, 7).expect("valid");
    for node in 0..2 {
        s.schedule(Duration::ZERO, SimEvent::Start { node });
    }
    s.run_until(ms(5000));
    let mismatch = s
        .stats()
        .rx_drops
        .get(vipd_proto::counters::Drop::VersionMismatch);
    assert!(mismatch > 0, "{:?}", s.stats());
    assert_eq!(mismatch, s.stats().rx_drops.total());
    assert_eq!(s.holders(1), vec![0, 1]);
}

fn group_sim(prios: &[u8], seed: u64) -> Sim {
    let nodes = prios
        .iter()
        .enumerate()
        .map(|(i, &p)| NodeConfig {
            instances: vec![inst(i, 1, p), inst(i, 2, p)],
            groups: vec![SyncGroupConfig {
                name: "g".into(),
                members: vec![vipd_sim::iid(0), vipd_sim::iid(1)],
            }],
            link: LinkConfig::clean(DELAY / 2),
        })
        .collect();
    let mut s = Sim::new(Instant::now(), nodes, seed).expect("valid");
    for node in 0..prios.len() {
        s.schedule(Duration::ZERO, SimEvent::Start { node });
    }
    s
}

/// One VRID's adverts lost one way (master -> backup) in a sync group: the backup's member
/// of that VRID wants to take over, its other member still hears the master, so the group
/// stays put (keepalived's `vrrp_sync_can_goto_master`). Without that rule the group
/// flapped every Master_Down_Interval (the backup's VRID 1 timer forced VRID 2 to Master,
/// VRID 2 then heard the higher master and pulled the group back): 2 transitions per
/// member and cycle.
#[test]
fn sync_group_with_one_vrid_broken_one_way_does_not_flap() {
    for seed in 0..20 {
        let mut s = group_sim(&[200, 100], seed);
        s.run_until(ms(1000));
        assert_eq!((s.holders(1), s.holders(2)), (vec![0], vec![0]));
        let before = s.transitions().len();
        let t = s.now();
        s.apply(SimEvent::DropOneWay {
            from: Some(0),
            to: 1,
            vrid: Some(1),
        });
        s.run_until(t + ms(30_000));
        let after: Vec<_> = s.transitions()[before..].to_vec();
        assert!(
            after.is_empty(),
            "seed {seed}: {} transitions, first {:?}",
            after.len(),
            after.iter().take(4).collect::<Vec<_>>()
        );
        assert_eq!((s.holders(1), s.holders(2)), (vec![0], vec![0]));
        // The master dies: the group moves as a whole, after the held member's and the
        // other member's timers.
        let t = s.now();
        s.apply(SimEvent::Crash { node: 0 });
        s.run_until(t + ms(1000));
        assert_eq!(
            (s.holders(1), s.holders(2)),
            (vec![1], vec![1]),
            "seed {seed}"
        );
        assert!(s.violations().is_empty(), "{:?}", s.violations());
    }
}

/// Two address owners (255) on one VRID, the one with the lower address ignoring adverts
/// (FRR's owner, keepalived in strict mode): the other backs off to 254 after two more
/// adverts, so there is one master and the client follows it; when the rogue goes away the
/// other is elected and takes 255 back. Without the back-off both stayed master forever.
#[test]
fn duplicate_owner_that_ignores_adverts_leaves_one_master() {
    let mut s = sim(&[255, 255]);
    // Node 0 (10.0.0.1, the lower address) hears nothing of VRID 1.
    s.apply(SimEvent::DropOneWay {
        from: None,
        to: 0,
        vrid: Some(1),
    });
    s.run_until(ms(1000));
    assert_eq!(s.holders(1), vec![0], "one master: the rogue");
    let pr = |s: &Sim, n: usize| {
        s.router(n)
            .and_then(|r| r.instance(vipd_sim::iid(0)))
            .map(|i| i.effective_priority())
    };
    assert_eq!(pr(&s, 1), Some(254));
    s.run_until(ms(5000));
    assert_eq!(s.holders(1), vec![0]);
    assert_eq!(s.client_arp(1).map(|a| a.node), Some(0));
    // The rogue crashes: node 1 takes over and is the owner again.
    let t = s.now();
    s.apply(SimEvent::Crash { node: 0 });
    s.run_until(t + ms(1000));
    assert_eq!(s.holders(1), vec![1]);
    assert_eq!(pr(&s, 1), Some(255));
    assert!(s.violations().is_empty(), "{:?}", s.violations());
}

/// Configuration mismatches between two nodes of one VRID, each with its expected outcome,
/// never silence: the alarm names the peer on the side that hears it.
#[test]
fn configuration_mismatches_are_never_silent() {
    use vipd_proto::alarms::AlarmKind as K;
    let node = |i: usize, prio: u8, version: Version, interval: u64| {
        let mut c = inst(i, 1, prio);
        c.version = version;
        c.advert_interval = ms(interval);
        NodeConfig {
            instances: vec![c],
            groups: vec![],
            link: LinkConfig::clean(DELAY / 2),
        }
    };
    let run = |nodes: Vec<NodeConfig>| {
        let mut s = Sim::new(Instant::now(), nodes, 3).expect("valid");
        s.schedule(Duration::ZERO, SimEvent::Start { node: 0 });
        s.schedule(Duration::ZERO, SimEvent::Start { node: 1 });
        s.run_until(ms(10_000));
        assert!(s.violations().is_empty(), "{:?}", s.violations());
        s
    };
    let addr = |i: usize| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1));
    // VRRPv3 against VRRPv2: each drops the other's adverts: two masters, an alarm on both.
    let s = run(vec![
        node(0, 200, Version::V3, 1000),
        node(1, 100, Version::V2, 1000),
    ]);
    assert_eq!(s.holders(1), vec![0, 1]);
    assert_eq!(s.alarms(0, 0), vec![(K::VersionMismatch, addr(1))]);
    assert_eq!(s.alarms(1, 0), vec![(K::VersionMismatch, addr(0))]);
    // VRRPv2 with 1 s against 2 s (RFC 3768 drops them): two masters, an alarm on both.
    let s = run(vec![
        node(0, 200, Version::V2, 1000),
        node(1, 100, Version::V2, 2000),
    ]);
    assert_eq!(s.holders(1), vec![0, 1]);
    assert_eq!(s.alarms(0, 0), vec![(K::IntervalMismatch, addr(1))]);
    assert_eq!(s.alarms(1, 0), vec![(K::IntervalMismatch, addr(0))]);
    // VRRPv3 with 100 ms against 200 ms: one master (the backup adopts its interval), and
    // an alarm on the backup, which hears the other interval.
    let s = run(vec![
        node(0, 200, Version::V3, 100),
        node(1, 100, Version::V3, 200),
    ]);
    assert_eq!(s.holders(1), vec![0]);
    assert_eq!(s.alarms(1, 0), vec![(K::AdoptedInterval, addr(0))]);
    assert!(s.alarms(0, 0).is_empty());
    // Equal configurations: nothing.
    let s = run(vec![
        node(0, 200, Version::V3, 100),
        node(1, 100, Version::V3, 100),
    ]);
    assert_eq!(s.holders(1), vec![0]);
    assert!(s.alarms(0, 0).is_empty() && s.alarms(1, 0).is_empty());
}

/// Stalls (a paused daemon or VM), in both orders of release. A backup stalled for five
/// Master_Down_Intervals while its master kept advertising: reading the waiting adverts
/// first (vipd), it stays Backup and the VIP never moves; letting the overdue timer win (the
/// old event loop) it takes over and the VIP moves twice.
#[test]
fn stalled_backup_reads_before_its_timer() {
    for reads_first in [true, false] {
        let mut s = sim(&[200, 100]);
        s.run_until(ms(1000));
        assert_eq!(s.holders(1), vec![0]);
        let before = s.vip_log().len();
        let t = s.now();
        s.apply(SimEvent::Stall {
            node: 1,
            duration: mdi(&s, 1) * 5,
            reads_first,
        });
        s.run_until(t + mdi(&s, 1) * 5 + ms(1000));
        let moves = s.vip_log().len() - before;
        if reads_first {
            assert_eq!(moves, 0, "{:?}", &s.vip_log()[before..]);
            assert!(
                s.transitions().iter().all(|r| r.at < t),
                "{:?}",
                s.transitions()
            );
        } else {
            assert!(moves >= 2, "the old order should show the bug");
        }
        assert_eq!(s.holders(1), vec![0]);
        assert!(s.violations().is_empty(), "{:?}", s.violations());
    }
}

/// A stalled master: the backup rightly takes over meanwhile. On release the master reads
/// the new master's (lower) adverts before its own timer: with preempt it re-announces and
/// wins back (the preemption it would do anyway) and the client follows it; without preempt it
/// follows the router that took over (keepalived's stall handling) and the VIP stays there.
#[test]
fn stalled_master_resolves_by_preempt() {
    for preempt in [true, false] {
        let nodes = [200u8, 100]
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let mut c = inst(i, 1, p);
                c.preempt = preempt;
                NodeConfig {
                    instances: vec![c],
                    groups: vec![],
                    link: LinkConfig::clean(DELAY / 2),
                }
            })
            .collect();
        let mut s = Sim::new(Instant::now(), nodes, 5).expect("valid");
        s.schedule(Duration::ZERO, SimEvent::Start { node: 0 });
        s.schedule(Duration::ZERO, SimEvent::Start { node: 1 });
        s.run_until(ms(1000));
        assert_eq!(s.holders(1), vec![0]);
        let t = s.now();
        s.apply(SimEvent::Stall {
            node: 0,
            duration: ms(2000),
            reads_first: true,
        });
        s.run_until(t + ms(1500));
        // The backup took over (the stalled master still holds the address: two holders
        // until the master runs again).
        assert!(s.holders(1).contains(&1), "preempt={preempt}");
        s.run_until(t + ms(4000));
        let want = if preempt { 0 } else { 1 };
        assert_eq!(s.holders(1), vec![want], "preempt={preempt}");
        assert_eq!(
            s.client_arp(1).map(|a| a.node),
            Some(want),
            "preempt={preempt}: the client follows the holder"
        );
        if !preempt {
            assert!(
                s.transitions()
                    .iter()
                    .any(|r| r.node == 0 && r.reason == Reason::Stalled),
                "{:?}",
                s.transitions()
            );
        }
        assert!(s.violations().is_empty(), "{:?}", s.violations());
    }
}
