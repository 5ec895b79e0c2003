//! Router and sync-group scenarios.
#![allow(clippy::expect_used)] // tests: a failed expectation is a test failure

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use vipd_proto::{
    Action, ConfigError, DropReason, FaultCause, InstanceConfig, InstanceId, Reason, Router,
    RxAdvert, State, SyncGroupConfig, Version,
};

/// Instance ids 0, 1, 2, ... in configuration order.
fn numbered(cfgs: Vec<InstanceConfig>) -> Vec<(InstanceId, InstanceConfig)> {
    (0u32..).map(InstanceId).zip(cfgs).collect()
}

fn id(i: u32) -> InstanceId {
    InstanceId(i)
}

fn cfg(vrid: u8, prio: u8) -> InstanceConfig {
    InstanceConfig::new(
        format!("vi{vrid}"),
        vrid,
        Version::V3,
        prio,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    )
}

fn group_router(n: usize) -> Router {
    let cfgs = (0..n).map(|i| cfg(10 + i as u8, 100 + i as u8)).collect();
    Router::new(
        numbered(cfgs),
        vec![SyncGroupConfig {
            name: "g".into(),
            members: (0..n as u32).map(InstanceId).collect(),
        }],
    )
    .expect("valid")
}

fn drain(r: &mut Router) -> Vec<(usize, Action)> {
    std::iter::from_fn(|| r.poll_action())
        .map(|(id, a)| (id.0 as usize, a))
        .collect()
}

fn notes(a: &[(usize, Action)]) -> Vec<(usize, State, State, Reason)> {
    a.iter()
        .filter_map(|(i, a)| match a {
            Action::Notify(t) => Some((*i, t.from, t.to, t.reason.clone())),
            _ => None,
        })
        .collect()
}

fn sg(member: u32) -> Reason {
    Reason::SyncGroup {
        group: "g".into(),
        member: InstanceId(member),
    }
}

fn adv(prio: u8) -> RxAdvert {
    RxAdvert {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        version: Version::V3,
        priority: prio,
        max_advert_int_cs: 100,
    }
}

fn states(r: &Router) -> Vec<State> {
    r.instances().map(|(_, i)| i.state()).collect()
}

/// Fires timers until a member is master (a group waits for its last member's timer);
/// returns the time of the election.
fn elect(r: &mut Router) -> Instant {
    loop {
        let t = r.poll_timeout().expect("timer");
        r.handle_timeout(t);
        if states(r).contains(&State::Master) {
            return t;
        }
    }
}

#[test]
fn router_validation() {
    let bad = Router::new(numbered(vec![cfg(0, 100)]), vec![]);
    assert!(matches!(bad, Err(ConfigError::Instance { index: 0, .. })));
    let out = Router::new(
        numbered(vec![cfg(1, 100)]),
        vec![SyncGroupConfig {
            name: "g".into(),
            members: vec![id(3)],
        }],
    );
    assert!(matches!(
        out,
        Err(ConfigError::GroupMemberOutOfRange { member: 3, .. })
    ));
    let shared = Router::new(
        numbered(vec![cfg(1, 100), cfg(2, 100)]),
        vec![
            SyncGroupConfig {
                name: "a".into(),
                members: vec![id(0), id(1)],
            },
            SyncGroupConfig {
                name: "b".into(),
                members: vec![id(1)],
            },
        ],
    );
    assert!(matches!(
        shared,
        Err(ConfigError::GroupMemberShared { member: 1, .. })
    ));
    let empty = Router::new(
        numbered(vec![cfg(1, 100)]),
        vec![SyncGroupConfig {
            name: "a".into(),
            members: vec![],
        }],
    );
    assert!(matches!(empty, Err(ConfigError::GroupEmpty { .. })));
}

#[test]
fn independent_instances_and_bad_index() {
    let t0 = Instant::now();
    let mut r = Router::new(numbered(vec![cfg(1, 100), cfg(2, 255)]), vec![]).expect("valid");
    r.start(t0);
    assert_eq!(states(&r), vec![State::Backup, State::Master]);
    let a = drain(&mut r);
    assert!(a.contains(&(1, Action::ClaimVips)));
    assert!(!a.contains(&(0, Action::ClaimVips)));
    assert_eq!(
        r.handle_advert(t0, id(7), &adv(1)),
        Err(DropReason::UnknownInstance(id(7)))
    );
    assert!(r.set_fault(t0, id(9), None).is_err());
    assert!(r.set_priority_adjust(t0, id(9), 1).is_err());
    // Timers: instance 1 (master) advertises after 1 s.
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(1)));
}

#[test]
fn group_goes_master_together() {
    let t0 = Instant::now();
    let mut r = group_router(3);
    r.start(t0);
    drain(&mut r);
    // Instance 2 has the highest priority and the shortest skew: its timer runs out first,
    // but the others do not want to be master yet (their timers run): it is held.
    let t = r.poll_timeout().expect("timer");
    assert_eq!(r.instance(id(2)).and_then(|i| i.poll_timeout()), Some(t));
    r.handle_timeout(t);
    let a = drain(&mut r);
    assert!(notes(&a).is_empty(), "{a:?}");
    assert!(a.contains(&(
        2,
        Action::HeldBySyncGroup {
            group: "g".into(),
            waiting_for: id(0)
        }
    )));
    assert!(r.instance(id(2)).expect("2").held_by_sync_group());
    // Then 1 (held: 0 still waits), then 0, whose timer runs out last: every member wants
    // to be master, the group goes.
    let t = r.poll_timeout().expect("timer");
    assert_eq!(r.instance(id(1)).and_then(|i| i.poll_timeout()), Some(t));
    r.handle_timeout(t);
    assert!(notes(&drain(&mut r)).is_empty());
    let t = r.poll_timeout().expect("timer");
    assert_eq!(r.instance(id(0)).and_then(|i| i.poll_timeout()), Some(t));
    r.handle_timeout(t);
    let a = drain(&mut r);
    assert_eq!(
        notes(&a),
        vec![
            (0, State::Backup, State::Master, Reason::MasterDown),
            (1, State::Backup, State::Master, sg(0)),
            (2, State::Backup, State::Master, sg(0)),
        ]
    );
    for i in 0..3 {
        assert!(a.contains(&(i, Action::ClaimVips)));
    }
    assert!(!r.instance(id(2)).expect("2").held_by_sync_group());
}

/// keepalived's `vrrp_sync_can_goto_master`: one VRID whose adverts are lost (a one-way
/// path) wants to take over, but the other member still hears the master: the group stays
/// Backup, the member re-arms its timer each Master_Down_Interval, nothing flaps.
#[test]
fn group_stays_backup_while_one_member_hears_its_master() {
    let t0 = Instant::now();
    let mut r = group_router(2);
    r.start(t0);
    drain(&mut r);
    // Member 1 hears its master every second for a minute; member 0 hears nothing.
    let mut t = t0;
    let mut held = 0;
    for _ in 0..60 {
        let next = t + Duration::from_secs(1);
        while let Some(d) = r.poll_timeout().filter(|d| *d <= next) {
            r.handle_timeout(d);
        }
        t = next;
        r.handle_advert(t, id(1), &adv(200)).expect("ok");
        let a = drain(&mut r);
        assert!(notes(&a).is_empty(), "a transition: {a:?}");
        held += a
            .iter()
            .filter(|(_, a)| matches!(a, Action::HeldBySyncGroup { .. }))
            .count();
    }
    assert_eq!(states(&r), vec![State::Backup, State::Backup]);
    assert_eq!(held, 1, "the hold is reported once");
    assert!(r.instance(id(0)).expect("0").held_by_sync_group());
    // The master of VRID 1 dies: member 1's timer runs out, member 0 wants it too.
    let t = elect(&mut r);
    let a = drain(&mut r);
    assert_eq!(
        notes(&a),
        vec![
            (1, State::Backup, State::Master, Reason::MasterDown),
            (0, State::Backup, State::Master, sg(1)),
        ]
    );
    assert!(t > t0 + Duration::from_secs(60));
}

/// A held member that hears a master again (accepts an advert) no longer wants to be
/// master: the other member's timer running out later does not take the group over.
#[test]
fn held_member_that_hears_a_master_stops_wanting() {
    let t0 = Instant::now();
    let mut r = group_router(2);
    r.start(t0);
    drain(&mut r);
    // Member 1's timer runs out first (higher priority): held, since 0's runs.
    let t = r.poll_timeout().expect("timer");
    r.handle_timeout(t);
    assert!(r.instance(id(1)).expect("1").held_by_sync_group());
    // Then VRID 1's master is heard again, and member 0's timer runs out.
    r.handle_advert(t, id(1), &adv(200)).expect("ok");
    assert!(!r.instance(id(1)).expect("1").held_by_sync_group());
    let t = r.poll_timeout().expect("timer");
    assert_eq!(r.instance(id(0)).and_then(|i| i.poll_timeout()), Some(t));
    r.handle_timeout(t);
    assert!(notes(&drain(&mut r)).is_empty());
    assert_eq!(states(&r), vec![State::Backup, State::Backup]);
    assert!(r.instance(id(0)).expect("0").held_by_sync_group());
}

#[test]
fn group_goes_backup_together() {
    let t0 = Instant::now();
    let mut r = group_router(2);
    r.start(t0);
    let t = elect(&mut r);
    drain(&mut r);
    assert_eq!(states(&r), vec![State::Master, State::Master]);
    let t1 = t + Duration::from_millis(100);
    r.handle_advert(t1, id(0), &adv(200)).expect("ok");
    let a = drain(&mut r);
    assert_eq!(
        notes(&a),
        vec![
            (
                0,
                State::Master,
                State::Backup,
                Reason::HigherPriorityAdvert
            ),
            (1, State::Master, State::Backup, sg(0)),
        ]
    );
    assert!(a.contains(&(1, Action::ReleaseVips)));
    // The forced member waits a full Master_Down_Interval.
    let i1 = r.instance(id(1)).expect("1");
    assert_eq!(i1.poll_timeout(), Some(t1 + i1.master_down_interval()));
}

#[test]
fn group_fault_holds_until_every_member_clears() {
    let t0 = Instant::now();
    let mut r = group_router(3);
    r.start(t0);
    let t = elect(&mut r);
    drain(&mut r);
    let c0 = FaultCause::Tracker("a".into());
    r.set_fault(t, id(0), Some(c0.clone())).expect("ok");
    let a = drain(&mut r);
    assert_eq!(
        notes(&a),
        vec![
            (0, State::Master, State::Fault, Reason::FaultRaised(c0)),
            (1, State::Master, State::Fault, sg(0)),
            (2, State::Master, State::Fault, sg(0)),
        ]
    );
    assert_eq!(
        a.iter()
            .filter(|(_, a)| matches!(a, Action::SendAdvert { priority: 0, .. }))
            .count(),
        3
    );
    // Member 2 also faults (already in Fault: silent).
    r.set_fault(t, id(2), Some(FaultCause::LinkDown("eth1".into())))
        .expect("ok");
    assert!(notes(&drain(&mut r)).is_empty());
    r.set_fault(t, id(0), None).expect("ok");
    assert!(notes(&drain(&mut r)).is_empty());
    assert_eq!(states(&r), vec![State::Fault; 3]);
    let t2 = t + Duration::from_secs(1);
    r.set_fault(t2, id(2), None).expect("ok");
    let a = drain(&mut r);
    assert_eq!(
        notes(&a),
        vec![
            (2, State::Fault, State::Backup, Reason::FaultCleared),
            (0, State::Fault, State::Backup, sg(2)),
            (1, State::Fault, State::Backup, sg(2)),
        ]
    );
    assert_eq!(states(&r), vec![State::Backup; 3]);
    assert!(r.poll_timeout().is_some());
}

#[test]
fn group_maintenance_applies_to_all_members() {
    let t0 = Instant::now();
    let mut r = group_router(2);
    r.start(t0);
    let t = elect(&mut r);
    drain(&mut r);
    r.set_maintenance(t, id(1), true).expect("ok");
    assert_eq!(states(&r), vec![State::Backup, State::Backup]);
    assert_eq!(r.poll_timeout(), None);
    r.set_maintenance(t, id(0), false).expect("ok");
    assert!(r.poll_timeout().is_some());
}

#[test]
fn shutdown_stops_everything() {
    let t0 = Instant::now();
    let mut r = group_router(2);
    r.start(t0);
    let t = elect(&mut r);
    drain(&mut r);
    r.shutdown(t);
    let a = drain(&mut r);
    assert_eq!(states(&r), vec![State::Initialize; 2]);
    assert_eq!(
        a.iter()
            .filter(|(_, a)| matches!(a, Action::SendAdvert { priority: 0, .. }))
            .count(),
        2
    );
    assert_eq!(r.poll_timeout(), None);
}

/// Masters elected at arbitrary moments advertise on one grid of interval/16 from the
/// router's first start: the first interval after an election is up to 1/16 short, the
/// cadence after that is exact, and no advert is ever due later than one interval.
#[test]
fn adverts_of_all_masters_share_one_grid() {
    let iv = Duration::from_millis(100);
    let step = iv / vipd_proto::ADVERT_GRID_DIVISOR;
    let cfgs = (0..5u8)
        .map(|i| {
            let mut c = cfg(1 + i, 100);
            c.advert_interval = iv;
            c.garp.delay = Duration::ZERO;
            c
        })
        .collect();
    let mut r = Router::new(numbered(cfgs), Vec::new()).expect("valid");
    let t0 = Instant::now();
    // Started 0, 1.3, 2.6, ... ms apart: five different election moments.
    for i in 0..5 {
        let t = t0 + Duration::from_micros(1300 * i as u64);
        r.start_one(t, id(i)).expect("start");
    }
    drain(&mut r);
    let mut elected = [None; 5];
    let mut adverts: Vec<Vec<Instant>> = vec![Vec::new(); 5];
    while let Some(t) = r.poll_timeout() {
        if t > t0 + Duration::from_secs(2) {
            break;
        }
        r.handle_timeout(t);
        for (i, a) in drain(&mut r) {
            match a {
                Action::Notify(n) if n.to == State::Master => elected[i] = Some(t),
                Action::SendAdvert { .. } => adverts[i].push(t),
                _ => {}
            }
        }
    }
    for i in 0..5 {
        let e = elected[i].expect("elected");
        let a = &adverts[i];
        assert!(a.len() > 10, "instance {i}: {} adverts", a.len());
        assert_eq!(a[0], e, "advert at once on election");
        // After the first: every send is on the grid, give or take the advert lead.
        let lead = iv / vipd_proto::ADVERT_LEAD_DIVISOR;
        for w in a.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap <= iv, "instance {i}: gap {gap:?} > interval");
            assert!(
                gap + step + lead >= iv,
                "instance {i}: gap {gap:?} too short"
            );
        }
        for &t in &a[1..] {
            let off = (t - t0).as_nanos() % step.as_nanos();
            let to_next = step.as_nanos() - off;
            assert!(
                off == 0 || to_next <= lead.as_nanos(),
                "instance {i}: advert {:?} after t0 is off the grid",
                t - t0
            );
        }
    }
}
