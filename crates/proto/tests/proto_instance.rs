//! Deterministic scenario tests for one or two `Instance`s driven by hand.
#![allow(clippy::expect_used)] // tests: a failed expectation is a test failure

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use vipd_proto::{
    Action, DropReason, FaultCause, Instance, InstanceConfig, Reason, RxAdvert, State, Version,
    master_down_interval, skew_time,
};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(prio: u8, last: u8) -> InstanceConfig {
    let mut c = InstanceConfig::new(format!("vi{last}"), 51, Version::V3, prio, ip(last));
    c.advert_interval = Duration::from_secs(1);
    c
}

fn drain(i: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| i.poll_action()).collect()
}

fn adv(src: u8, prio: u8, cs: u16) -> RxAdvert {
    RxAdvert {
        src: ip(src),
        version: Version::V3,
        priority: prio,
        max_advert_int_cs: cs,
    }
}

fn transitions(a: &[Action]) -> Vec<(State, State, Reason)> {
    a.iter()
        .filter_map(|a| match a {
            Action::Notify(t) => Some((t.from, t.to, t.reason.clone())),
            _ => None,
        })
        .collect()
}

fn started(prio: u8, last: u8, t0: Instant) -> Instance {
    let mut i = Instance::new(cfg(prio, last));
    i.start(t0);
    drain(&mut i);
    i
}

/// Start as backup and let the down timer make it master.
fn master_at(prio: u8, last: u8, t0: Instant) -> (Instance, Instant) {
    let mut i = started(prio, last, t0);
    let t = i.poll_timeout().expect("down timer");
    i.handle_timeout(t);
    drain(&mut i);
    assert_eq!(i.state(), State::Master);
    (i, t)
}

#[test]
fn skew_and_master_down_interval_v3_exact() {
    let s = skew_time(Version::V3, 100, Duration::from_secs(1));
    assert_eq!(s, Duration::from_micros(609_375)); // 156/256 s
    assert_eq!(
        master_down_interval(Version::V3, 100, Duration::from_secs(1)),
        Duration::from_micros(3_609_375)
    );
    // Sub-centisecond precision: 56 * 10 ms / 256 = 2.1875 ms.
    assert_eq!(
        skew_time(Version::V3, 200, ms(10)),
        Duration::from_nanos(2_187_500)
    );
    assert_eq!(
        skew_time(Version::V3, 255, ms(100)),
        Duration::from_nanos(390_625)
    );
}

#[test]
fn skew_v2_is_in_seconds_regardless_of_interval() {
    assert_eq!(
        skew_time(Version::V2, 100, Duration::from_secs(3)),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        master_down_interval(Version::V2, 100, Duration::from_secs(3)),
        Duration::from_micros(9_609_375)
    );
}

#[test]
fn validate_ranges() {
    let mut c = cfg(100, 1);
    assert!(c.validate().is_ok());
    c.advert_interval = ms(5);
    assert!(c.validate().is_err());
    c.advert_interval = ms(15);
    assert!(c.validate().is_err());
    c.advert_interval = ms(40_950);
    assert!(c.validate().is_ok());
    c.advert_interval = ms(40_960);
    assert!(c.validate().is_err());
    c.version = Version::V2;
    c.advert_interval = ms(1500);
    assert!(c.validate().is_err());
    c.advert_interval = Duration::from_secs(255);
    assert!(c.validate().is_ok());
    c.advert_interval = Duration::from_secs(256);
    assert!(c.validate().is_err());
    let mut c = cfg(0, 1);
    assert!(c.validate().is_err());
    c.priority = 1;
    c.vrid = 0;
    assert!(c.validate().is_err());
}

#[test]
fn non_owner_starts_backup_with_down_timer() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(100, 1));
    assert_eq!(i.state(), State::Initialize);
    assert_eq!(i.poll_timeout(), None);
    i.start(t0);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        transitions(&drain(&mut i)),
        vec![(State::Initialize, State::Backup, Reason::Startup)]
    );
    assert_eq!(
        i.poll_timeout(),
        Some(t0 + Duration::from_micros(3_609_375))
    );
    assert_eq!(i.master(), None);
}

#[test]
fn owner_starts_master_and_is_never_demoted_by_trackers() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(255, 1));
    i.start(t0);
    assert_eq!(i.state(), State::Master);
    let a = drain(&mut i);
    assert_eq!(
        a[..3],
        [
            Action::SendAdvert {
                priority: 255,
                max_advert_int_cs: 100
            },
            Action::ClaimVips,
            Action::SendGratuitous { repeat: 5 },
        ]
    );
    assert_eq!(
        transitions(&a),
        vec![(State::Initialize, State::Master, Reason::AddressOwner)]
    );
    i.set_priority_adjust(t0, -200);
    assert_eq!(i.effective_priority(), 255);
    assert!(drain(&mut i).is_empty());
    // Lower adverts are answered, never obeyed.
    i.handle_advert(t0 + ms(10), &adv(2, 254, 100)).expect("ok");
    assert_eq!(i.state(), State::Master);
    assert!(i.accepts_vip_traffic());
}

#[test]
fn backup_becomes_master_on_timeout_with_garp_bursts() {
    let t0 = Instant::now();
    let mut c = cfg(100, 1);
    c.garp.refresh = Some(Duration::from_secs(60));
    c.garp.refresh_repeat = 2;
    let mut i = Instance::new(c);
    i.start(t0);
    drain(&mut i);
    let down = i.poll_timeout().expect("timer");
    i.handle_timeout(down - ms(1));
    assert_eq!(i.state(), State::Backup);
    i.handle_timeout(down);
    assert_eq!(i.state(), State::Master);
    let a = drain(&mut i);
    assert_eq!(
        a,
        vec![
            Action::SendAdvert {
                priority: 100,
                max_advert_int_cs: 100
            },
            Action::ClaimVips,
            Action::SendGratuitous { repeat: 5 },
            Action::Notify(vipd_proto::Transition {
                from: State::Backup,
                to: State::Master,
                reason: Reason::MasterDown,
                at: down,
            }),
        ]
    );
    // Adver_Timer = Advertisement_Interval.
    assert_eq!(i.poll_timeout(), Some(down + Duration::from_secs(1)));
    let mut garps = Vec::new();
    let mut adverts = 0;
    let mut t = down;
    while t < down + Duration::from_secs(130) {
        t = i.poll_timeout().expect("master has timers");
        i.handle_timeout(t);
        for a in drain(&mut i) {
            match a {
                Action::SendAdvert { .. } => adverts += 1,
                Action::SendGratuitous { repeat } => garps.push((t - down, repeat)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(adverts >= 129);
    assert_eq!(
        garps,
        vec![
            (Duration::from_secs(5), 5),
            (Duration::from_secs(60), 2),
            (Duration::from_secs(120), 2)
        ]
    );
}

#[test]
fn v3_adopted_interval_is_capped_when_configured() {
    let t0 = Instant::now();
    let mut c = cfg(100, 1);
    c.max_adopted_interval = Some(Duration::from_secs(3));
    let mut i = Instance::new(c);
    i.start(t0);
    drain(&mut i);
    // One forged advert with the longest v3 interval: the backup adopts 3 s, not 40.95 s,
    // so it notices the silent "master" within 3 x 3 s plus Skew_Time.
    let t1 = t0 + ms(200);
    i.handle_advert(t1, &adv(2, 255, 4095)).expect("accepted");
    assert_eq!(i.master_advert_interval(), Duration::from_secs(3));
    assert!(i.master_down_interval() < Duration::from_secs(11));
    // A shorter interval is adopted as is; the cap never goes below our own interval.
    i.handle_advert(t1 + ms(100), &adv(2, 255, 50))
        .expect("accepted");
    assert_eq!(i.master_advert_interval(), ms(500));
    let mut c = cfg(100, 1);
    c.max_adopted_interval = Some(ms(100));
    let mut i = Instance::new(c);
    i.start(t0);
    drain(&mut i);
    i.handle_advert(t1, &adv(2, 200, 300)).expect("accepted");
    assert_eq!(i.master_advert_interval(), Duration::from_secs(1));
}

#[test]
fn v3_backup_adopts_master_interval() {
    let t0 = Instant::now();
    let mut i = started(100, 1, t0);
    let t1 = t0 + ms(200);
    i.handle_advert(t1, &adv(2, 200, 50)).expect("accepted");
    assert_eq!(i.master_advert_interval(), ms(500));
    assert_eq!(i.master(), Some((ip(2), 200)));
    // 3 * 500 ms + 156 * 500 ms / 256.
    let mdi = ms(1500) + Duration::from_nanos(304_687_500);
    assert_eq!(i.master_down_interval(), mdi);
    assert_eq!(i.poll_timeout(), Some(t1 + mdi));
}

#[test]
fn drops_are_reported() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(100, 1));
    assert_eq!(
        i.handle_advert(t0, &adv(2, 200, 100)),
        Err(DropReason::NotRunning)
    );
    i.start(t0);
    let mut a = adv(2, 200, 100);
    a.version = Version::V2;
    assert_eq!(i.handle_advert(t0, &a), Err(DropReason::VersionMismatch));
    assert_eq!(
        i.handle_advert(t0, &adv(1, 200, 100)),
        Err(DropReason::OwnAdvert)
    );
    assert_eq!(
        i.handle_advert(t0, &adv(2, 200, 0)),
        Err(DropReason::ZeroInterval)
    );
    let v6 = RxAdvert {
        src: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..adv(2, 200, 100)
    };
    assert_eq!(
        i.handle_advert(t0, &v6),
        Err(DropReason::AddressFamilyMismatch)
    );
    assert_eq!(i.stats().adverts_dropped, 5);
    // Dropped adverts did not touch the timer.
    assert_eq!(i.poll_timeout(), Some(t0 + i.master_down_interval()));
}

#[test]
fn v2_interval_mismatch_is_dropped() {
    let t0 = Instant::now();
    let mut c = cfg(100, 1);
    c.version = Version::V2;
    let mut i = Instance::new(c);
    i.start(t0);
    let mut a = adv(2, 200, 200);
    a.version = Version::V2;
    assert_eq!(
        i.handle_advert(t0, &a),
        Err(DropReason::IntervalMismatch {
            ours_cs: 100,
            theirs_cs: 200
        })
    );
    a.max_advert_int_cs = 100;
    assert_eq!(i.handle_advert(t0, &a), Ok(()));
    assert_eq!(i.master(), Some((ip(2), 200)));
    assert_eq!(i.master_advert_interval(), Duration::from_secs(1));
}

#[test]
fn backup_priority_zero_sets_timer_to_skew() {
    let t0 = Instant::now();
    let mut i = started(100, 1, t0);
    i.handle_advert(t0, &adv(2, 200, 100)).expect("ok");
    let t1 = t0 + ms(500);
    i.handle_advert(t1, &adv(2, 0, 100)).expect("ok");
    assert_eq!(i.poll_timeout(), Some(t1 + Duration::from_micros(609_375)));
    assert_eq!(i.master(), None);
    i.handle_timeout(t1 + Duration::from_micros(609_375));
    assert_eq!(i.state(), State::Master);
    assert_eq!(
        transitions(&drain(&mut i)),
        vec![(State::Backup, State::Master, Reason::PriorityZeroReceived)]
    );
}

#[test]
fn backup_with_preempt_ignores_lower_adverts() {
    let t0 = Instant::now();
    let mut i = started(150, 1, t0);
    let deadline = i.poll_timeout().expect("timer");
    i.handle_advert(t0 + ms(100), &adv(2, 100, 100))
        .expect("ok");
    assert_eq!(i.poll_timeout(), Some(deadline));
    assert_eq!(i.stats().adverts_preempted, 1);
    i.handle_timeout(deadline);
    assert_eq!(
        transitions(&drain(&mut i)),
        vec![(State::Backup, State::Master, Reason::Preempt)]
    );
}

#[test]
fn backup_without_preempt_accepts_lower_adverts() {
    let t0 = Instant::now();
    let mut c = cfg(150, 1);
    c.preempt = false;
    let mut i = Instance::new(c);
    i.start(t0);
    i.handle_advert(t0 + ms(100), &adv(2, 100, 100))
        .expect("ok");
    assert_eq!(
        i.poll_timeout(),
        Some(t0 + ms(100) + i.master_down_interval())
    );
    assert_eq!(i.master(), Some((ip(2), 100)));
}

#[test]
fn backup_accepts_equal_priority_regardless_of_address() {
    let t0 = Instant::now();
    let mut i = started(100, 9, t0);
    i.handle_advert(t0 + ms(100), &adv(2, 100, 100))
        .expect("ok");
    assert_eq!(
        i.poll_timeout(),
        Some(t0 + ms(100) + i.master_down_interval())
    );
}

#[test]
fn preempt_delay_after_startup() {
    let t0 = Instant::now();
    let mut c = cfg(150, 1);
    c.preempt_delay = Duration::from_secs(5);
    let mut i = Instance::new(c);
    i.start(t0);
    let mdi = i.master_down_interval();
    // Within 5 s of startup, lower adverts are treated as valid.
    for s in 1..5 {
        let t = t0 + Duration::from_secs(s);
        i.handle_advert(t, &adv(2, 100, 100)).expect("ok");
        assert_eq!(i.poll_timeout(), Some(t + mdi));
    }
    // From 5 s on, ignored: the timer set at 4 s fires.
    i.handle_advert(t0 + Duration::from_secs(5), &adv(2, 100, 100))
        .expect("ok");
    assert_eq!(i.poll_timeout(), Some(t0 + Duration::from_secs(4) + mdi));
    i.handle_timeout(t0 + Duration::from_secs(4) + mdi);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn preempt_delay_restarts_when_master_drops_below_us() {
    let t0 = Instant::now();
    let mut c = cfg(150, 1);
    c.preempt_delay = Duration::from_secs(3);
    let mut i = Instance::new(c);
    i.start(t0);
    let mdi = i.master_down_interval();
    // A higher master for 10 s.
    for s in 0..10 {
        i.handle_advert(t0 + Duration::from_secs(s), &adv(2, 200, 100))
            .expect("ok");
    }
    // Its priority drops to 100 at 10 s: accepted until 13 s.
    for s in 10..13 {
        let t = t0 + Duration::from_secs(s);
        i.handle_advert(t, &adv(2, 100, 100)).expect("ok");
        assert_eq!(i.poll_timeout(), Some(t + mdi), "at {s}");
    }
    i.handle_advert(t0 + Duration::from_secs(13), &adv(2, 100, 100))
        .expect("ok");
    assert_eq!(i.poll_timeout(), Some(t0 + Duration::from_secs(12) + mdi));
}

/// The delay's start and a call-off are reported (for the log), once each.
#[test]
fn preempt_delay_start_and_call_off_are_reported() {
    let t0 = Instant::now();
    let mut c = cfg(150, 1);
    c.preempt_delay = Duration::from_secs(3);
    let mut i = Instance::new(c);
    i.start(t0);
    drain(&mut i);
    let delays = |a: Vec<Action>| -> Vec<Action> {
        a.into_iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::PreemptDelayStarted { .. } | Action::PreemptDelayCancelled { .. }
                )
            })
            .collect()
    };
    i.handle_advert(t0, &adv(2, 100, 100)).expect("ok");
    assert_eq!(
        delays(drain(&mut i)),
        vec![Action::PreemptDelayStarted {
            master: ip(2),
            priority: 100,
            delay: Duration::from_secs(3)
        }]
    );
    i.handle_advert(t0 + ms(1000), &adv(2, 100, 100))
        .expect("ok");
    assert!(delays(drain(&mut i)).is_empty(), "reported once");
    i.handle_advert(t0 + ms(2000), &adv(2, 200, 100))
        .expect("ok");
    assert_eq!(
        delays(drain(&mut i)),
        vec![Action::PreemptDelayCancelled {
            master: ip(2),
            priority: 200
        }]
    );
    i.handle_advert(t0 + ms(2500), &adv(2, 200, 100))
        .expect("ok");
    assert!(delays(drain(&mut i)).is_empty());
}

#[test]
fn master_answers_priority_zero_at_once() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    let t = tm + ms(300);
    i.handle_advert(t, &adv(2, 0, 100)).expect("ok");
    // The advert (RFC 9568 §6.4.3), and the re-announcement: only a master sends priority 0,
    // so the sender believed it was master and clients may follow it.
    assert_eq!(
        drain(&mut i),
        vec![
            Action::SendAdvert {
                priority: 100,
                max_advert_int_cs: 100
            },
            Action::LowerPriorityAdvert {
                from: ip(2),
                priority: 0
            },
            Action::SendGratuitous { repeat: 5 },
        ]
    );
    assert_eq!(i.poll_timeout(), Some(t + Duration::from_secs(1)));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn master_steps_down_on_higher_priority() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    let t = tm + ms(300);
    i.handle_advert(t, &adv(2, 101, 20)).expect("ok");
    assert_eq!(i.state(), State::Backup);
    let a = drain(&mut i);
    // A farewell advert at our priority (so a master that had not heard us learns that we
    // were master too), then the VIPs go.
    assert_eq!(
        a[..2],
        [
            Action::SendAdvert {
                priority: 100,
                max_advert_int_cs: 100
            },
            Action::ReleaseVips
        ]
    );
    assert_eq!(
        transitions(&a),
        vec![(State::Master, State::Backup, Reason::HigherPriorityAdvert)]
    );
    assert_eq!(i.master_advert_interval(), ms(200));
    assert_eq!(i.poll_timeout(), Some(t + i.master_down_interval()));
    assert_eq!(i.master(), Some((ip(2), 101)));
}

#[test]
fn master_equal_priority_tie_break_on_address() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 5, t0);
    // Lower address, same priority: answer and re-announce, stay.
    i.handle_advert(tm + ms(1), &adv(4, 100, 100)).expect("ok");
    assert_eq!(i.state(), State::Master);
    assert_eq!(
        drain(&mut i),
        vec![
            Action::LowerPriorityAdvert {
                from: ip(4),
                priority: 100
            },
            Action::SendAdvert {
                priority: 100,
                max_advert_int_cs: 100
            },
            Action::SendGratuitous { repeat: 5 },
        ]
    );
    // Higher address, same priority: a farewell advert, then step down.
    i.handle_advert(tm + ms(2), &adv(6, 100, 100)).expect("ok");
    assert_eq!(i.state(), State::Backup);
    let a = drain(&mut i);
    assert_eq!(
        a.first(),
        Some(&Action::SendAdvert {
            priority: 100,
            max_advert_int_cs: 100
        }),
        "{a:?}"
    );
    assert!(a.contains(&Action::ReleaseVips));
}

#[test]
fn master_answers_lower_advert_and_resets_timer() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    let t = tm + ms(700);
    i.handle_advert(t, &adv(2, 50, 100)).expect("ok");
    assert_eq!(
        drain(&mut i),
        vec![
            Action::LowerPriorityAdvert {
                from: ip(2),
                priority: 50
            },
            Action::SendAdvert {
                priority: 100,
                max_advert_int_cs: 100
            },
            Action::SendGratuitous { repeat: 5 },
        ]
    );
    assert_eq!(i.poll_timeout(), Some(t + Duration::from_secs(1)));
    assert_eq!(i.stats().lower_priority_received, 1);
}

#[test]
fn a_lower_master_is_answered_once_per_interval_per_sender_and_the_vips_reannounced() {
    let t0 = Instant::now();
    let mut c = cfg(100, 1);
    c.garp.lower_prio_repeat = 2;
    c.garp.lower_prio_delay = ms(3000);
    let mut i = Instance::new(c);
    i.start(t0);
    let t = i.poll_timeout().expect("down timer");
    i.handle_timeout(t);
    drain(&mut i);
    // The other side of a healed split keeps advertising every 100 ms.
    let mut bursts = 0;
    let mut answers = 0;
    for k in 0..10u64 {
        i.handle_advert(t + ms(10 + k * 100), &adv(2, 50, 10))
            .expect("ok");
        for a in drain(&mut i) {
            match a {
                Action::SendGratuitous { repeat: 2 } => bursts += 1,
                Action::LowerPriorityAdvert { .. } => answers += 1,
                _ => {}
            }
        }
    }
    // 1 s interval: one answer and one burst in that second ...
    assert_eq!((answers, bursts), (1, 1));
    // ... another sender is answered on its own ...
    i.handle_advert(t + ms(1000), &adv(3, 60, 10)).expect("ok");
    assert!(drain(&mut i).contains(&Action::LowerPriorityAdvert {
        from: ip(3),
        priority: 60
    }));
    // ... and the first again once its interval has passed.
    i.handle_advert(t + ms(1200), &adv(2, 50, 10)).expect("ok");
    assert!(drain(&mut i).contains(&Action::SendGratuitous { repeat: 2 }));
    // The second burst comes garp_lower_prio_delay after the last answer.
    let second = t + ms(1200) + ms(3000);
    let mut at = i.poll_timeout().expect("timer");
    let mut seen = false;
    while at <= second {
        i.handle_timeout(at);
        if at == second {
            seen = drain(&mut i).contains(&Action::SendGratuitous { repeat: 2 });
        } else {
            drain(&mut i);
        }
        at = i.poll_timeout().expect("timer");
    }
    assert!(seen, "no second burst at {second:?}");
}

#[test]
fn lower_prio_no_advert_still_reannounces() {
    let t0 = Instant::now();
    let mut c = cfg(100, 1);
    c.lower_prio_no_advert = true;
    let mut i = Instance::new(c);
    i.start(t0);
    let t = i.poll_timeout().expect("down timer");
    i.handle_timeout(t);
    drain(&mut i);
    i.handle_advert(t + ms(10), &adv(2, 50, 100)).expect("ok");
    let a = drain(&mut i);
    assert!(
        !a.iter().any(|a| matches!(a, Action::SendAdvert { .. })),
        "{a:?}"
    );
    assert!(a.contains(&Action::SendGratuitous { repeat: 5 }), "{a:?}");
}

#[test]
fn a_flood_of_spoofed_lower_senders_costs_a_bounded_table() {
    let t0 = Instant::now();
    let (mut i, t) = master_at(100, 1, t0);
    for k in 0..1000u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + k));
        let adv = RxAdvert {
            src,
            version: Version::V3,
            priority: 50,
            max_advert_int_cs: 100,
        };
        i.handle_advert(t + ms(1), &adv).expect("ok");
    }
    // At most LOWER_ANSWERED answers per interval, however many senders.
    let answers = drain(&mut i)
        .iter()
        .filter(|a| matches!(a, Action::SendGratuitous { .. }))
        .count();
    assert_eq!(answers, vipd_proto::LOWER_ANSWERED);
    assert_eq!(
        i.stats().lower_priority_received,
        vipd_proto::LOWER_ANSWERED as u64
    );
    assert!(format!("{i:?}").matches("10.1.").count() <= vipd_proto::LOWER_ANSWERED);
}

#[test]
fn accept_mode_controls_vip_traffic() {
    let t0 = Instant::now();
    let (i, _) = master_at(100, 1, t0);
    assert!(!i.accepts_vip_traffic());
    let mut c = cfg(100, 1);
    c.accept_mode = true;
    let mut i = Instance::new(c);
    i.start(t0);
    assert!(!i.accepts_vip_traffic(), "backup never accepts");
    let t = i.poll_timeout().expect("timer");
    i.handle_timeout(t);
    assert!(i.accepts_vip_traffic());
    let mut o = Instance::new(cfg(255, 1));
    o.start(t0);
    assert!(o.accepts_vip_traffic(), "owner always accepts");
}

#[test]
fn master_shutdown_sends_priority_zero_and_releases() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    i.shutdown(tm + ms(5));
    assert_eq!(i.state(), State::Initialize);
    let a = drain(&mut i);
    assert_eq!(
        a[..2],
        [
            Action::SendAdvert {
                priority: 0,
                max_advert_int_cs: 100
            },
            Action::ReleaseVips
        ]
    );
    assert_eq!(
        transitions(&a),
        vec![(State::Master, State::Initialize, Reason::Shutdown)]
    );
    assert_eq!(i.poll_timeout(), None);
}

#[test]
fn backup_shutdown_just_stops() {
    let t0 = Instant::now();
    let mut i = started(100, 1, t0);
    i.shutdown(t0 + ms(5));
    assert_eq!(
        drain(&mut i),
        vec![Action::Notify(vipd_proto::Transition {
            from: State::Backup,
            to: State::Initialize,
            reason: Reason::Shutdown,
            at: t0 + ms(5)
        })]
    );
    assert_eq!(i.poll_timeout(), None);
    // Can be started again.
    i.start(t0 + ms(10));
    assert_eq!(i.state(), State::Backup);
}

/// Wire two instances together by hand with zero delay.
fn exchange(from: &mut Instance, to: &mut Instance, now: Instant) -> Vec<Action> {
    let mut other = Vec::new();
    for a in drain(from) {
        if let Action::SendAdvert {
            priority,
            max_advert_int_cs,
        } = a
        {
            let rx = RxAdvert {
                src: from.config().primary_addr,
                version: from.config().version,
                priority,
                max_advert_int_cs,
            };
            let _ = to.handle_advert(now, &rx);
        }
        other.push(a);
    }
    other
}

#[test]
fn clean_stop_peer_takes_over_after_skew_only() {
    let t0 = Instant::now();
    let mut a = Instance::new(cfg(200, 1));
    let mut b = Instance::new(cfg(100, 2));
    a.start(t0);
    b.start(t0);
    drain(&mut b);
    // a's timer fires first (smaller skew).
    let ta = a.poll_timeout().expect("a");
    assert!(ta < b.poll_timeout().expect("b"));
    a.handle_timeout(ta);
    exchange(&mut a, &mut b, ta);
    assert_eq!(b.master(), Some((ip(1), 200)));
    let ts = ta + ms(2500);
    a.handle_timeout(ta + Duration::from_secs(1));
    exchange(&mut a, &mut b, ta + Duration::from_secs(1));
    a.handle_timeout(ta + Duration::from_secs(2));
    exchange(&mut a, &mut b, ta + Duration::from_secs(2));
    a.shutdown(ts);
    exchange(&mut a, &mut b, ts);
    let skew = b.skew_time();
    assert_eq!(b.poll_timeout(), Some(ts + skew));
    b.handle_timeout(ts + skew);
    assert_eq!(b.state(), State::Master);
}

#[test]
fn effective_priority_clamps() {
    let t0 = Instant::now();
    let mut i = started(100, 1, t0);
    i.set_priority_adjust(t0, 500);
    assert_eq!(i.effective_priority(), 254);
    i.set_priority_adjust(t0, -500);
    assert_eq!(i.effective_priority(), 1);
    i.set_priority_adjust(t0, -30);
    assert_eq!(i.effective_priority(), 70);
    assert_eq!(
        drain(&mut i),
        vec![
            Action::PriorityChanged {
                base: 100,
                effective: 254
            },
            Action::PriorityChanged {
                base: 100,
                effective: 1
            },
            Action::PriorityChanged {
                base: 100,
                effective: 70
            },
        ]
    );
    // Skew uses the effective priority.
    assert_eq!(
        i.skew_time(),
        skew_time(Version::V3, 70, Duration::from_secs(1))
    );
}

#[test]
fn master_advertises_priority_change_at_once() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    let t = tm + ms(400);
    i.set_priority_adjust(t, -20);
    assert_eq!(
        drain(&mut i),
        vec![
            Action::PriorityChanged {
                base: 100,
                effective: 80
            },
            Action::SendAdvert {
                priority: 80,
                max_advert_int_cs: 100
            }
        ]
    );
    assert_eq!(i.poll_timeout(), Some(t + Duration::from_secs(1)));
}

#[test]
fn tracker_drop_hands_over_to_preempting_backup() {
    let t0 = Instant::now();
    let mut a = Instance::new(cfg(200, 1));
    let mut b = Instance::new(cfg(150, 2));
    a.start(t0);
    b.start(t0);
    drain(&mut b);
    let mut now = a.poll_timeout().expect("a");
    a.handle_timeout(now);
    exchange(&mut a, &mut b, now);
    assert_eq!(b.state(), State::Backup);
    // a's tracker fails: effective 200 - 100 = 100 < 150.
    now += ms(100);
    a.set_priority_adjust(now, -100);
    exchange(&mut a, &mut b, now);
    let b_deadline = b.poll_timeout().expect("b");
    // b ignores a's lower adverts; its timer fires.
    loop {
        let ta = a.poll_timeout().expect("a");
        if ta >= b_deadline {
            break;
        }
        a.handle_timeout(ta);
        exchange(&mut a, &mut b, ta);
    }
    assert_eq!(b.poll_timeout(), Some(b_deadline));
    b.handle_timeout(b_deadline);
    assert_eq!(b.state(), State::Master);
    assert_eq!(
        transitions(&exchange(&mut b, &mut a, b_deadline)),
        vec![(State::Backup, State::Master, Reason::Preempt)]
    );
    assert_eq!(a.state(), State::Backup);
    // a's bound: within Master_Down_Interval (+ one interval of the timer
    // phase) of the priority drop.
    assert!(b_deadline <= now + b.master_down_interval());
}

#[test]
fn fault_from_master_sends_priority_zero_and_releases() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    let cause = FaultCause::LinkDown("eth0".into());
    i.set_fault(tm + ms(1), Some(cause.clone()));
    assert_eq!(i.state(), State::Fault);
    let a = drain(&mut i);
    assert_eq!(
        a[..2],
        [
            Action::SendAdvert {
                priority: 0,
                max_advert_int_cs: 100
            },
            Action::ReleaseVips
        ]
    );
    assert_eq!(
        transitions(&a),
        vec![(State::Master, State::Fault, Reason::FaultRaised(cause))]
    );
    assert_eq!(i.poll_timeout(), None);
    assert_eq!(
        i.handle_advert(tm + ms(2), &adv(2, 50, 100)),
        Err(DropReason::Faulted)
    );
    // Raising again is silent.
    i.set_fault(tm + ms(3), Some(FaultCause::Tracker("x".into())));
    assert!(drain(&mut i).is_empty());
    let tc = tm + ms(10);
    i.set_fault(tc, None);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        transitions(&drain(&mut i)),
        vec![(State::Fault, State::Backup, Reason::FaultCleared)]
    );
    assert_eq!(i.poll_timeout(), Some(tc + i.master_down_interval()));
}

#[test]
fn fault_from_backup_and_before_start() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(100, 1));
    i.set_fault(t0, Some(FaultCause::Tracker("chk".into())));
    assert_eq!(i.state(), State::Initialize);
    i.start(t0);
    assert_eq!(i.state(), State::Fault);
    i.set_fault(t0 + ms(1), None);
    assert_eq!(i.state(), State::Backup);
    i.set_fault(t0 + ms(2), Some(FaultCause::Other("admin".into())));
    let a = drain(&mut i);
    assert!(!a.iter().any(|a| matches!(a, Action::SendAdvert { .. })));
    assert_eq!(i.state(), State::Fault);
}

#[test]
fn owner_leaves_fault_as_master() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(255, 1));
    i.start(t0);
    i.set_fault(t0, Some(FaultCause::LinkDown("eth0".into())));
    i.set_fault(t0 + ms(1), None);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn maintenance_hands_over_and_never_takes_over() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    i.set_maintenance(tm, true);
    assert_eq!(i.state(), State::Backup);
    let a = drain(&mut i);
    assert_eq!(
        a[..2],
        [
            Action::SendAdvert {
                priority: 0,
                max_advert_int_cs: 100
            },
            Action::ReleaseVips
        ]
    );
    assert_eq!(
        transitions(&a),
        vec![(State::Master, State::Backup, Reason::Maintenance)]
    );
    assert_eq!(i.poll_timeout(), None);
    i.handle_advert(tm + ms(1), &adv(2, 50, 100)).expect("ok");
    i.handle_advert(tm + ms(2), &adv(2, 0, 100)).expect("ok");
    assert_eq!(i.poll_timeout(), None);
    let t = tm + ms(10);
    i.set_maintenance(t, false);
    assert_eq!(i.poll_timeout(), Some(t + i.master_down_interval()));
}

#[test]
fn silent_maintenance_steps_down_without_priority_zero() {
    let t0 = Instant::now();
    let (mut i, tm) = master_at(100, 1, t0);
    i.set_maintenance_silently(tm, true);
    assert_eq!(i.state(), State::Backup);
    let a = drain(&mut i);
    assert_eq!(a[0], Action::ReleaseVips);
    assert!(
        !a.iter().any(|x| matches!(x, Action::SendAdvert { .. })),
        "a simulated crash must not advertise: {a:?}"
    );
    assert_eq!(i.poll_timeout(), None);
    // Peers' adverts do not make it take over while silent.
    i.handle_advert(tm + ms(1), &adv(2, 50, 100)).expect("ok");
    assert_eq!(i.poll_timeout(), None);
    i.set_maintenance_silently(tm + ms(10), false);
    assert_eq!(
        i.poll_timeout(),
        Some(tm + ms(10) + i.master_down_interval())
    );
}

#[test]
fn adver_timer_keeps_its_cadence_when_woken_late() {
    let t0 = Instant::now();
    let (mut i, _) = master_at(200, 1, t0);
    let first = i.poll_timeout().expect("adver timer");
    // Woken 3 ms late every time: adverts stay on the 1 s grid (no drift).
    let mut due = first;
    for _ in 0..10 {
        i.handle_timeout(due + ms(3));
        assert!(
            drain(&mut i)
                .iter()
                .any(|a| matches!(a, Action::SendAdvert { .. }))
        );
        let next = i.poll_timeout().expect("adver timer");
        assert_eq!(next, due + Duration::from_secs(1));
        due = next;
    }
    // A stall longer than an interval restarts the grid from the late wake-up.
    let late = due + ms(1500);
    i.handle_timeout(late);
    drain(&mut i);
    assert_eq!(i.poll_timeout(), Some(late + Duration::from_secs(1)));
}

#[test]
fn advert_may_go_out_within_its_lead_and_keeps_the_grid() {
    let t0 = Instant::now();
    let mut c = cfg(200, 1);
    c.garp.delay = Duration::ZERO; // only the advert timer runs
    let mut i = Instance::new(c);
    i.start(t0);
    let t = i.poll_timeout().expect("down timer");
    i.handle_timeout(t);
    drain(&mut i);
    assert_eq!(i.state(), State::Master);
    let lead = i.advert_lead();
    assert_eq!(lead, Duration::from_micros(15_625)); // 1 s / 64
    let due = i.poll_timeout().expect("adver timer");
    let sent = |a: &[Action]| a.iter().any(|a| matches!(a, Action::SendAdvert { .. }));
    // Further ahead than the lead: nothing to do, nothing sent.
    let too_early = due - lead - Duration::from_micros(1);
    assert!(!i.is_due(too_early));
    i.handle_timeout(too_early);
    assert!(!sent(&drain(&mut i)));
    assert_eq!(i.poll_timeout(), Some(due));
    // Within the lead (a wake-up for another instance): sent now, and the next advert is
    // still due one interval after this one's due time, not after the early send.
    for k in 0..5u32 {
        let d = due + Duration::from_secs(u64::from(k));
        let early = d - lead;
        assert!(i.is_due(early));
        i.handle_timeout(early);
        assert!(sent(&drain(&mut i)));
        assert_eq!(i.poll_timeout(), Some(d + Duration::from_secs(1)));
    }
}

#[test]
fn master_down_timer_never_fires_early() {
    let t0 = Instant::now();
    let mut i = started(100, 2, t0);
    let down = i.poll_timeout().expect("down timer");
    // The advert lead is for adverts only: a backup a nanosecond before its deadline stays.
    let just_before = down - Duration::from_nanos(1);
    assert!(!i.is_due(just_before));
    i.handle_timeout(just_before);
    assert!(drain(&mut i).is_empty());
    assert_eq!(i.state(), State::Backup);
    assert!(i.is_due(down));
    i.handle_timeout(down);
    assert_eq!(i.state(), State::Master);
}

// ---- reload in place ----

#[test]
fn reconfigure_master_keeps_state_and_advertises_new_priority_at_once() {
    let t0 = Instant::now();
    let (mut i, t) = master_at(150, 1, t0);
    let became = i.stats().became_master;
    let mut c = cfg(120, 1);
    c.preempt_delay = Duration::from_secs(30);
    c.accept_mode = true;
    let now = t + ms(300);
    assert!(i.reconfigure(now, c.clone()));
    let a = drain(&mut i);
    assert_eq!(i.state(), State::Master, "no transition");
    assert!(transitions(&a).is_empty());
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::ReleaseVips | Action::ClaimVips)),
        "the VIPs stay: {a:?}"
    );
    assert!(a.contains(&Action::PriorityChanged {
        base: 120,
        effective: 120
    }));
    assert!(a.contains(&Action::SendAdvert {
        priority: 120,
        max_advert_int_cs: 100
    }));
    assert_eq!(i.stats().became_master, became);
    assert_eq!(i.config(), &c);
    assert!(i.accepts_vip_traffic());
}

#[test]
fn reconfigure_backup_keeps_its_master_and_down_timer() {
    let t0 = Instant::now();
    let mut i = started(100, 1, t0);
    i.handle_advert(t0 + ms(100), &adv(2, 200, 100))
        .expect("accepted");
    drain(&mut i);
    let down = i.poll_timeout();
    let mut c = cfg(110, 1);
    c.preempt = false;
    assert!(i.reconfigure(t0 + ms(200), c));
    let a = drain(&mut i);
    assert!(transitions(&a).is_empty(), "{a:?}");
    assert!(!a.iter().any(|a| matches!(a, Action::SendAdvert { .. })));
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.master(), Some((ip(2), 200)));
    assert_eq!(i.poll_timeout(), down, "down timer untouched");
    assert_eq!(i.effective_priority(), 110);
}

#[test]
fn reconfigure_interval_restarts_the_master_cadence() {
    let t0 = Instant::now();
    let (mut i, t) = master_at(150, 1, t0);
    let mut c = cfg(150, 1);
    c.advert_interval = ms(200);
    let now = t + ms(50);
    assert!(i.reconfigure(now, c));
    let a = drain(&mut i);
    assert_eq!(
        a,
        vec![Action::SendAdvert {
            priority: 150,
            max_advert_int_cs: 20
        }]
    );
    assert_eq!(i.advert_interval(), ms(200));
    assert_eq!(i.poll_timeout(), Some(now + ms(200)));
}

#[test]
fn reconfigure_preempt_delay_counts_from_when_it_began() {
    let t0 = Instant::now();
    let mut c = cfg(200, 1);
    c.preempt_delay = Duration::from_secs(10);
    let mut i = Instance::new(c.clone());
    i.start(t0);
    drain(&mut i);
    // The delay began at startup (t0) and would run 10 s; shortened to 3 s at t0+2 s, it
    // ends at t0+3 s.
    i.handle_advert(t0 + ms(1000), &adv(2, 100, 100))
        .expect("ok");
    c.preempt_delay = Duration::from_secs(3);
    assert!(i.reconfigure(t0 + ms(2000), c));
    i.handle_advert(t0 + ms(2500), &adv(2, 100, 100))
        .expect("ok");
    assert_eq!(i.stats().adverts_preempted, 0, "still delayed");
    i.handle_advert(t0 + ms(3500), &adv(2, 100, 100))
        .expect("ok");
    assert_eq!(
        i.stats().adverts_preempted,
        1,
        "the shortened delay is over"
    );
}

#[test]
fn reconfigure_takes_a_new_source_address_in_place() {
    let t0 = Instant::now();
    let (mut i, t) = master_at(150, 1, t0);
    let mut c = cfg(150, 1);
    c.primary_addr = ip(9);
    assert!(i.reconfigure(t + ms(10), c));
    assert!(drain(&mut i).is_empty(), "nothing to announce");
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.master(), Some((ip(9), 150)));
    // Its own adverts from the new address are recognised as its own.
    assert_eq!(
        i.handle_advert(t + ms(20), &adv(9, 150, 100)),
        Err(DropReason::OwnAdvert)
    );
}

#[test]
fn reconfigure_refuses_another_virtual_router() {
    let t0 = Instant::now();
    let (mut i, t) = master_at(150, 1, t0);
    let before = i.config().clone();
    let mut c = cfg(150, 1);
    c.vrid = 52;
    assert!(!i.reconfigure(t, c));
    let mut c = cfg(150, 1);
    c.primary_addr = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert!(!i.reconfigure(t, c));
    let mut c = cfg(150, 1);
    c.version = Version::V2;
    assert!(!i.reconfigure(t, c));
    assert_eq!(i.config(), &before);
    assert!(drain(&mut i).is_empty());
}

// ---- upgrade: snapshot and resume ----

#[test]
fn a_resumed_master_goes_on_advertising_on_schedule_without_a_transition() {
    let t0 = Instant::now();
    let (old, t) = master_at(150, 1, t0);
    let due = old.poll_timeout().expect("advert timer");
    let snap = old.snapshot(t + ms(200)).expect("master snapshot");
    assert_eq!(snap.state, State::Master);
    // The new process resumes it 30 ms later (its own clock reading).
    let now = t + ms(230);
    let mut new = Instance::new(cfg(150, 1));
    assert!(new.resume(now, ms(30), &snap));
    assert_eq!(new.state(), State::Master);
    assert!(drain(&mut new).is_empty(), "no transition, no VIP action");
    assert_eq!(
        new.poll_timeout(),
        Some(due),
        "the advert is due when it was"
    );
    new.handle_timeout(due);
    assert_eq!(
        drain(&mut new),
        vec![Action::SendAdvert {
            priority: 150,
            max_advert_int_cs: 100
        }]
    );
    // Resuming twice, or a started instance, is refused.
    assert!(!new.resume(now, ms(0), &snap));
}

#[test]
fn a_resumed_backup_keeps_its_master_and_the_time_left_on_its_down_timer() {
    let t0 = Instant::now();
    let mut old = started(100, 1, t0);
    old.handle_advert(t0 + ms(100), &adv(2, 200, 100))
        .expect("accepted");
    drain(&mut old);
    let down = old.poll_timeout().expect("down timer");
    let snap = old.snapshot(t0 + ms(150)).expect("backup snapshot");
    let mut new = Instance::new(cfg(100, 1));
    // 50 ms pass between the snapshot and the resume.
    let now = t0 + ms(200);
    assert!(new.resume(now, ms(50), &snap));
    assert!(drain(&mut new).is_empty());
    assert_eq!(new.state(), State::Backup);
    assert_eq!(new.master(), Some((ip(2), 200)));
    assert_eq!(new.poll_timeout(), Some(down));
    // The master's next advert re-arms it as usual.
    new.handle_advert(now + ms(10), &adv(2, 200, 100))
        .expect("accepted");
    assert_eq!(
        new.poll_timeout(),
        Some(now + ms(10) + new.master_down_interval())
    );
}

#[test]
fn snapshots_of_idle_or_faulted_instances_and_absurd_timers() {
    let t0 = Instant::now();
    let idle = Instance::new(cfg(100, 1));
    assert_eq!(idle.snapshot(t0), None);
    let mut faulted = started(100, 1, t0);
    faulted.set_fault(t0, Some(FaultCause::LinkDown("eth0".into())));
    assert_eq!(faulted.snapshot(t0), None);
    // A hand-made snapshot whose timers are days away is clamped to one interval.
    let (m, t) = master_at(150, 1, t0);
    let mut snap = m.snapshot(t).expect("master");
    snap.advert_in = Some(Duration::from_secs(86_400));
    let mut new = Instance::new(cfg(150, 1));
    assert!(new.resume(t, ms(0), &snap));
    assert_eq!(new.poll_timeout(), Some(t + Duration::from_secs(1)));
    // An Initialize or Fault snapshot is not resumed.
    snap.state = State::Fault;
    let mut other = Instance::new(cfg(150, 1));
    assert!(!other.resume(t, ms(0), &snap));
    assert_eq!(other.state(), State::Initialize);
}

#[test]
fn fast_preempt_takes_over_after_skew_time() {
    let t0 = Instant::now();
    // Without: a preempting backup lets Master_Down_Interval run out after the last
    // accepted advert.
    let mut slow = started(200, 1, t0);
    slow.handle_advert(t0 + ms(100), &adv(2, 250, 100))
        .expect("ok");
    let rfc = slow.poll_timeout().expect("timer");
    // The master drops to 150 (a tracker weight): the lower advert is ignored ...
    slow.handle_advert(t0 + ms(200), &adv(2, 150, 100))
        .expect("ok");
    assert_eq!(slow.poll_timeout(), Some(rfc), "the RFC waits");
    // With: Skew_Time after the lower advert.
    let mut c = cfg(200, 1);
    c.fast_preempt = true;
    let mut fast = Instance::new(c);
    fast.start(t0);
    drain(&mut fast);
    fast.handle_advert(t0 + ms(100), &adv(2, 250, 100))
        .expect("ok");
    fast.handle_advert(t0 + ms(200), &adv(2, 150, 100))
        .expect("ok");
    let at = t0 + ms(200) + fast.skew_time();
    assert_eq!(fast.poll_timeout(), Some(at));
    fast.handle_timeout(at);
    assert_eq!(fast.state(), State::Master);
    assert_eq!(
        transitions(&drain(&mut fast)).last().map(|t| t.2.clone()),
        Some(Reason::Preempt)
    );
    // Never later than the running timer, and not in maintenance.
    let mut c = cfg(200, 1);
    c.fast_preempt = true;
    let mut m = Instance::new(c);
    m.start(t0);
    m.set_maintenance(t0, true);
    m.handle_advert(t0 + ms(100), &adv(2, 150, 100))
        .expect("ok");
    assert_eq!(m.poll_timeout(), None);
}

fn owner_conflicts(a: &[Action]) -> Vec<vipd_proto::OwnerConflict> {
    a.iter()
        .filter_map(|a| match a {
            Action::OwnerConflict { step, .. } => Some(*step),
            _ => None,
        })
        .collect()
}

fn sent_priorities(a: &[Action]) -> Vec<u8> {
    a.iter()
        .filter_map(|a| match a {
            Action::SendAdvert { priority, .. } => Some(*priority),
            _ => None,
        })
        .collect()
}

/// keepalived's rogue owner handling: another owner (255) with a lower address that ignores
/// adverts (FRR's owner, keepalived in strict mode) keeps advertising after two more of our
/// adverts: we drop to 254 and step down, so there is one master; when it stops we are
/// elected again and take 255 back.
#[test]
fn duplicate_owner_that_ignores_adverts_makes_us_back_off_then_restore() {
    use vipd_proto::OwnerConflict as O;
    let t0 = Instant::now();
    let mut i = started(255, 20, t0);
    assert_eq!(i.state(), State::Master);
    // The rogue (10.0.0.10 < us) claims 255.
    let t = t0 + ms(100);
    i.handle_advert(t, &adv(10, 255, 100)).expect("ok");
    let a = drain(&mut i);
    assert_eq!(owner_conflicts(&a), vec![O::Detected]);
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.effective_priority(), 255);
    // Our next two adverts go out; the window opens after the second.
    for _ in 0..2 {
        let d = i.poll_timeout().expect("advert timer");
        i.handle_timeout(d);
        assert_eq!(sent_priorities(&drain(&mut i)), vec![255]);
    }
    // The rogue is still advertising 255: we back off to 254 and follow it.
    let t = t0 + ms(2500);
    i.handle_advert(t, &adv(10, 255, 100)).expect("ok");
    let a = drain(&mut i);
    assert_eq!(owner_conflicts(&a), vec![O::BackedOff]);
    assert!(a.contains(&Action::PriorityChanged {
        base: 255,
        effective: 254
    }));
    assert_eq!(
        transitions(&a),
        vec![(State::Master, State::Backup, Reason::HigherPriorityAdvert)]
    );
    assert_eq!(i.effective_priority(), 254);
    // While it keeps advertising we stay Backup at 254.
    for k in 1..=10 {
        let t = t0 + ms(2500 + 1000 * k);
        if let Some(d) = i.poll_timeout().filter(|d| *d <= t) {
            i.handle_timeout(d);
        }
        i.handle_advert(t, &adv(10, 255, 100)).expect("ok");
        let a = drain(&mut i);
        assert!(transitions(&a).is_empty(), "{a:?}");
        assert!(owner_conflicts(&a).is_empty());
    }
    assert_eq!(i.state(), State::Backup);
    // It stops: our timer runs out, we are master again, at 255, advertised at once.
    let d = i.poll_timeout().expect("down timer");
    i.handle_timeout(d);
    let a = drain(&mut i);
    assert_eq!(owner_conflicts(&a), vec![O::Restored]);
    assert_eq!(sent_priorities(&a), vec![255]);
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.effective_priority(), 255);
}

/// A rogue owner that follows the tie-break (it hears us and stops): no back-off, and the
/// conflict is reported as stopped once the window passes.
#[test]
fn duplicate_owner_that_steps_down_leaves_us_at_255() {
    use vipd_proto::OwnerConflict as O;
    let t0 = Instant::now();
    let mut i = started(255, 20, t0);
    i.handle_advert(t0 + ms(100), &adv(10, 255, 100))
        .expect("ok");
    assert_eq!(owner_conflicts(&drain(&mut i)), vec![O::Detected]);
    let mut seen = Vec::new();
    let end = t0 + Duration::from_secs(6);
    while let Some(d) = i.poll_timeout().filter(|d| *d <= end) {
        i.handle_timeout(d);
        seen.extend(drain(&mut i));
    }
    assert_eq!(owner_conflicts(&seen), vec![O::Stopped]);
    assert!(sent_priorities(&seen).iter().all(|&p| p == 255));
    assert_eq!(i.state(), State::Master);
}

/// The other owner has the higher address: we lose the RFC tie-break, step down and
/// report the configuration error.
#[test]
fn duplicate_owner_with_the_higher_address_wins_the_tie_break() {
    use vipd_proto::OwnerConflict as O;
    let t0 = Instant::now();
    let mut i = started(255, 10, t0);
    i.handle_advert(t0 + ms(100), &adv(20, 255, 100))
        .expect("ok");
    let a = drain(&mut i);
    assert_eq!(owner_conflicts(&a), vec![O::Detected]);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.effective_priority(), 255);
}

/// keepalived's stall handling: a master without preempt that was silent for longer than
/// any peer's Master_Down_Interval (a stalled process or VM) and hears the router that
/// took over meanwhile follows it instead of taking the VIPs back; not stalled, it answers
/// as a master does; with preempt it keeps the VIPs (it would preempt anyway).
#[test]
fn stalled_master_without_preempt_follows_the_router_that_took_over() {
    let t0 = Instant::now();
    let mut c = cfg(200, 20);
    c.preempt = false;
    let mut i = Instance::new(c);
    i.start(t0);
    let t = i.poll_timeout().expect("down timer");
    i.handle_timeout(t);
    drain(&mut i);
    assert_eq!(i.state(), State::Master);
    // Not stalled: a lower advert is answered, we stay master.
    i.handle_advert(t + ms(500), &adv(10, 100, 100))
        .expect("ok");
    assert_eq!(i.state(), State::Master);
    drain(&mut i);
    // The last advert went out at t + 500 ms. Stalled for 5 s (> 3 s + skew): the peer's
    // adverts, read before our timer fires, show it took over.
    i.handle_advert(t + ms(5600), &adv(10, 100, 100))
        .expect("ok");
    let a = drain(&mut i);
    assert_eq!(
        transitions(&a),
        vec![(State::Master, State::Backup, Reason::Stalled)]
    );
    assert!(a.contains(&Action::ReleaseVips));
    assert_eq!(i.master(), Some((ip(10), 100)));

    // With preempt: the same stall keeps the VIPs and re-announces them.
    let (mut p, t) = master_at(200, 20, t0);
    p.handle_advert(t + ms(5600), &adv(10, 100, 100))
        .expect("ok");
    let a = drain(&mut p);
    assert!(transitions(&a).is_empty());
    assert!(a.contains(&Action::LowerPriorityAdvert {
        from: ip(10),
        priority: 100
    }));
    assert_eq!(p.state(), State::Master);
}
