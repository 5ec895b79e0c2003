//! proptest: arbitrary event sequences against one Instance.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vipd_proto::{
    Action, FaultCause, Instance, InstanceConfig, RxAdvert, State, Version, effective_priority,
    master_down_interval, skew_time,
};

#[derive(Debug, Clone)]
enum Ev {
    Advert {
        src: u8,
        prio: u8,
        cs: u16,
        v2: bool,
    },
    Timeout,
    Adjust(i32),
    Fault(bool),
    Maintenance(bool),
    Shutdown,
    Start,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        4 => (1u8..6, any::<u8>(), 0u16..300, any::<bool>())
            .prop_map(|(src, prio, cs, v2)| Ev::Advert { src, prio, cs, v2 }),
        4 => Just(Ev::Timeout),
        1 => (-300i32..300).prop_map(Ev::Adjust),
        1 => any::<bool>().prop_map(Ev::Fault),
        1 => any::<bool>().prop_map(Ev::Maintenance),
        1 => Just(Ev::Shutdown),
        1 => Just(Ev::Start),
    ]
}

proptest! {
    #[test]
    fn effective_priority_in_range(base in 1u8..=255, delta in any::<i32>()) {
        let e = effective_priority(base, delta);
        if base == 255 { prop_assert_eq!(e, 255) } else { prop_assert!((1..=254).contains(&e)) }
    }

    #[test]
    fn skew_below_interval(prio in 1u8..=255, cs in 1u64..=4095) {
        let i = Duration::from_millis(cs * 10);
        let s = skew_time(Version::V3, prio, i);
        prop_assert!(s < i);
        prop_assert_eq!(master_down_interval(Version::V3, prio, i), i * 3 + s);
        prop_assert!(skew_time(Version::V2, prio, i) < Duration::from_secs(1));
    }

    /// Whatever happens: VIP claims and releases alternate and match the
    /// Master state, timers exist exactly when they should and never lie
    /// in the past after handling, notifications describe real changes.
    #[test]
    fn instance_stays_consistent(
        prio in 1u8..=255,
        preempt in any::<bool>(),
        delay_ms in prop_oneof![Just(0u64), 1u64..500],
        evs in prop::collection::vec((ev(), 0u64..400), 1..200),
    ) {
        let mut c = InstanceConfig::new("p", 1, Version::V3, prio,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)));
        c.advert_interval = Duration::from_millis(100);
        c.preempt = preempt;
        c.preempt_delay = Duration::from_millis(delay_ms);
        let mut i = Instance::new(c);
        let mut now = Instant::now();
        i.start(now);
        let mut held = false;
        let mut state = State::Initialize;
        for (e, dt) in evs {
            now += Duration::from_millis(dt);
            let timed_out = matches!(e, Ev::Timeout);
            match e {
                Ev::Advert { src, prio, cs, v2 } => {
                    let adv = RxAdvert {
                        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, src)),
                        version: if v2 { Version::V2 } else { Version::V3 },
                        priority: prio,
                        max_advert_int_cs: cs,
                    };
                    let _ = i.handle_advert(now, &adv);
                }
                Ev::Timeout => {
                    if let Some(t) = i.poll_timeout() {
                        now = now.max(t);
                        i.handle_timeout(now);
                    }
                }
                Ev::Adjust(d) => i.set_priority_adjust(now, d),
                Ev::Fault(f) => i.set_fault(now, f.then(|| FaultCause::Other("p".into()))),
                Ev::Maintenance(m) => i.set_maintenance(now, m),
                Ev::Shutdown => i.shutdown(now),
                Ev::Start => i.start(now),
            }
            while let Some(a) = i.poll_action() {
                match a {
                    Action::ClaimVips => { prop_assert!(!held); held = true; }
                    Action::ReleaseVips => { prop_assert!(held); held = false; }
                    Action::Notify(t) => {
                        prop_assert_eq!(t.from, state);
                        prop_assert_ne!(t.from, t.to);
                        state = t.to;
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(state, i.state());
            prop_assert_eq!(held, i.state() == State::Master);
            match i.state() {
                State::Master => prop_assert!(i.poll_timeout().is_some()),
                State::Backup => prop_assert_eq!(
                    i.poll_timeout().is_some(), !i.in_maintenance()),
                State::Fault | State::Initialize => prop_assert!(i.poll_timeout().is_none()),
            }
            if timed_out && let Some(t) = i.poll_timeout() {
                // Every due timer was handled.
                prop_assert!(t > now);
            }
        }
    }
}
