//! Active-active announcement (`InstanceConfig::anycast`): no VRRP, health decides.
#![allow(clippy::expect_used)] // tests: a failed expectation is a test failure

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use vipd_proto::{
    Action, DropReason, FaultCause, Instance, InstanceConfig, Reason, RxAdvert, State, Version,
};

fn cfg(min: u8) -> InstanceConfig {
    let mut c = InstanceConfig::new(
        "web",
        0,
        Version::V3,
        100,
        IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
    );
    c.anycast = Some(min);
    c
}

fn drain(i: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| i.poll_action()).collect()
}

fn moves(a: &[Action]) -> Vec<(State, State, Reason)> {
    a.iter()
        .filter_map(|a| match a {
            Action::Notify(t) => Some((t.from, t.to, t.reason.clone())),
            _ => None,
        })
        .collect()
}

fn no_vrrp(a: &[Action]) {
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::SendAdvert { .. } | Action::SendGratuitous { .. })),
        "an active-active instance sends no advert and no gratuitous frame: {a:?}"
    );
}

#[test]
fn announces_at_start_and_runs_no_timer() {
    assert_eq!(cfg(1).validate(), Ok(()), "VRID 0 is fine without VRRP");
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(1));
    i.start(t0);
    let a = drain(&mut i);
    no_vrrp(&a);
    assert!(a.contains(&Action::ClaimVips));
    assert_eq!(
        moves(&a),
        [(State::Initialize, State::Master, Reason::Startup)]
    );
    assert_eq!(i.poll_timeout(), None, "no advert timer, no down timer");
    let adv = RxAdvert {
        src: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 3)),
        version: Version::V3,
        priority: 254,
        max_advert_int_cs: 100,
    };
    assert_eq!(i.handle_advert(t0, &adv), Err(DropReason::NotRunning));
    assert_eq!(i.state(), State::Master, "no advert moves it");
}

#[test]
fn weights_withdraw_below_the_threshold_and_announce_again() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(60));
    i.start(t0);
    drain(&mut i);
    i.set_priority_adjust(t0, -30);
    let a = drain(&mut i);
    assert!(moves(&a).is_empty(), "70 >= 60 still announces: {a:?}");
    i.set_priority_adjust(t0, -50);
    let a = drain(&mut i);
    no_vrrp(&a);
    assert!(a.contains(&Action::ReleaseVips));
    assert_eq!(
        moves(&a),
        [(
            State::Master,
            State::Backup,
            Reason::Threshold {
                effective: 50,
                min: 60
            }
        )]
    );
    i.set_priority_adjust(t0, 0);
    let a = drain(&mut i);
    assert!(a.contains(&Action::ClaimVips));
    assert_eq!(
        moves(&a),
        [(
            State::Backup,
            State::Master,
            Reason::Threshold {
                effective: 100,
                min: 60
            }
        )]
    );
}

#[test]
fn fault_and_maintenance_withdraw_whatever_the_priority() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(1));
    i.start(t0);
    drain(&mut i);
    i.set_fault(t0, Some(FaultCause::Other("check".into())));
    let a = drain(&mut i);
    no_vrrp(&a);
    assert!(a.contains(&Action::ReleaseVips));
    assert_eq!(i.state(), State::Fault);
    i.set_fault(t0, None);
    let a = drain(&mut i);
    assert!(a.contains(&Action::ClaimVips));
    assert_eq!(
        moves(&a),
        [(State::Fault, State::Master, Reason::FaultCleared)]
    );

    i.set_maintenance(t0, true);
    let a = drain(&mut i);
    no_vrrp(&a);
    assert_eq!(
        moves(&a),
        [(State::Master, State::Backup, Reason::Maintenance)]
    );
    // A priority change during maintenance does not announce.
    i.set_priority_adjust(t0, 10);
    assert!(moves(&drain(&mut i)).is_empty());
    i.set_maintenance(t0, false);
    let a = drain(&mut i);
    assert_eq!(
        moves(&a),
        [(State::Backup, State::Master, Reason::Maintenance)]
    );

    i.shutdown(t0);
    let a = drain(&mut i);
    no_vrrp(&a);
    assert!(a.contains(&Action::ReleaseVips));
    assert_eq!(i.state(), State::Initialize);
}

#[test]
fn starts_withdrawn_when_unhealthy() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(101));
    i.start(t0);
    let a = drain(&mut i);
    assert!(!a.contains(&Action::ClaimVips));
    assert_eq!(
        moves(&a),
        [(State::Initialize, State::Backup, Reason::Startup)]
    );
    assert_eq!(
        i.poll_timeout(),
        None,
        "a withdrawn node never times out into Master"
    );
    let mut vrrp = cfg(1);
    vrrp.anycast = None;
    assert!(
        !i.reconfigure(t0, vrrp),
        "VRRP and active-active are different routers"
    );
}

#[test]
fn resumes_without_timers() {
    let t0 = Instant::now();
    for healthy in [true, false] {
        let mut a = Instance::new(cfg(if healthy { 1 } else { 101 }));
        a.start(t0);
        drain(&mut a);
        let snap = a.snapshot(t0).expect("running");
        let mut b = Instance::new(cfg(if healthy { 1 } else { 101 }));
        assert!(b.resume(t0, std::time::Duration::ZERO, &snap));
        assert_eq!(b.state(), a.state());
        assert_eq!(
            b.poll_timeout(),
            None,
            "a resumed active-active instance runs no timer"
        );
        assert!(!b.is_due(t0 + std::time::Duration::from_secs(100)));
        assert!(drain(&mut b).is_empty());
    }
}

#[test]
fn resumed_under_a_higher_threshold_withdraws() {
    let t0 = Instant::now();
    let mut a = Instance::new(cfg(50));
    a.start(t0);
    drain(&mut a);
    let snap = a.snapshot(t0).expect("running");
    let mut b = Instance::new(cfg(150));
    assert!(b.resume(t0, std::time::Duration::ZERO, &snap));
    let acts = drain(&mut b);
    assert!(acts.contains(&Action::ReleaseVips), "{acts:?}");
    assert_eq!(
        moves(&acts),
        [(
            State::Master,
            State::Backup,
            Reason::Threshold {
                effective: 100,
                min: 150
            }
        )]
    );
}
