//! Where VIPs go, on a real network: VIPs on another device than the instance's interface
//! (keepalived's `dev`, every neutron router's addresses) and excluded VIPs (keepalived's
//! `virtual_ipaddress_excluded`) are held and released with the instance, put back when
//! deleted, announced from their own device, and never carried in adverts. Needs root
//! (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd_lab::capture::Capture;
use vipd_lab::sniff::{Seen, Sniffer};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A second device in `host`: a veth pair `ext0`/`ext0p`, both ends up (frames sent on
/// `ext0` are seen on `ext0p`).
fn add_ext(lan: &Lan, i: usize) {
    let h = lan.host(i);
    h.ip(&[
        "link", "add", "ext0", "type", "veth", "peer", "name", "ext0p",
    ])
    .unwrap();
    h.sysctl(&[
        "net.ipv6.conf.ext0.accept_dad=0",
        "net.ipv6.conf.ext0p.accept_dad=0",
    ])
    .unwrap();
    h.ip(&["link", "set", "ext0", "up"]).unwrap();
    h.ip(&["link", "set", "ext0p", "up"]).unwrap();
}

fn config(dir: &Path, i: usize, priority: u8, vip: IpAddr, extra: &str) -> String {
    format!(
        "[global]\ncontrol_socket = \"{}\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\nadvert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\nexcluded_vips = [\"2001:db8:99::10/64\", \"192.0.2.10/24\"]\n\n[[instance.vip]]\naddress = \"198.51.100.10/24\"\ninterface = \"ext0\"\n\n[[instance.vip]]\naddress = \"203.0.113.10/24\"\ninterface = \"late0\"\n{extra}",
        dir.join(format!("h{i}.sock")).display()
    )
}

/// Whether host `i` holds `addr` on `dev`.
fn on(lan: &Lan, i: usize, dev: &str, addr: &str) -> bool {
    lan.host(i).has_addr(dev, ip(addr)).unwrap_or(false)
}

#[track_caller]
fn wait(what: &str, logs: &[&ChildGuard], mut cond: impl FnMut() -> bool) {
    if common::wait_until(Duration::from_secs(5), &mut cond).is_none() {
        for (i, l) in logs.iter().enumerate() {
            eprintln!("---- agent {i} log:\n{}", l.log());
        }
        panic!("timed out waiting until {what}");
    }
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vips_on_other_devices_and_excluded_vips_follow_the_master() {
    let lan = Lan::new("placement", 2).unwrap();
    let dir = TempDir::new("placement");
    let vip = lan.vip(false);
    for i in 0..2 {
        add_ext(&lan, i);
    }
    let ext_mac = lan.host(0).link("ext0").unwrap().mac;
    let cfgs: Vec<_> = (0..2)
        .map(|i| {
            let p = dir.path().join(format!("h{i}.toml"));
            std::fs::write(&p, config(dir.path(), i, [150, 100][i], vip, "")).unwrap();
            p
        })
        .collect();
    let mut cap = Capture::start(lan.host(1), "eth0", "ip proto 112").unwrap();
    let mut sniff = Sniffer::start(Some(lan.host(0).name())).unwrap();
    let t0 = Instant::now();
    let mut c0 = common::start_vipd(lan.host(0), &cfgs[0]);
    let c1 = common::start_vipd(lan.host(1), &cfgs[1]);
    let logs = [&c0, &c1];

    // The master holds every VIP where it belongs; the device that does not exist yet is
    // said once, and its VIP waits.
    wait("host 0 holds every VIP on its device", &logs, || {
        on(&lan, 0, "eth0", &vip.to_string())
            && on(&lan, 0, "ext0", "198.51.100.10")
            && on(&lan, 0, "eth0", "192.0.2.10")
            && on(&lan, 0, "eth0", "2001:db8:99::10")
    });
    assert!(!on(&lan, 0, "eth0", "198.51.100.10"));
    assert!(!on(&lan, 1, "ext0", "198.51.100.10") && !on(&lan, 1, "eth0", "192.0.2.10"));
    wait("the missing device is logged", &logs, || {
        c0.log()
            .contains("interface late0 does not exist: 203.0.113.10/24 added when it appears")
    });

    // Gratuitous ARP for the VIP on ext0 goes out on ext0 (its MAC), and NA for the
    // excluded IPv6 VIP on eth0.
    let eth_mac = lan.host(0).link("eth0").unwrap().mac;
    let garp = sniff.wait_for(t0, Duration::from_secs(3), |e| {
        matches!(e.what, Seen::Garp { ip, .. } if ip == "198.51.100.10".parse::<std::net::Ipv4Addr>().unwrap())
    });
    match garp.map(|e| e.what) {
        Some(Seen::Garp { mac, .. }) => assert_eq!(mac, ext_mac, "GARP not from ext0"),
        other => panic!("no GARP for the ext0 VIP: {other:?}\n{}", c0.log()),
    }
    let na = sniff.wait_for(t0, Duration::from_secs(3), |e| {
        matches!(e.what, Seen::Na { target, .. } if target == "2001:db8:99::10".parse::<std::net::Ipv6Addr>().unwrap())
    });
    match na.map(|e| e.what) {
        Some(Seen::Na { mac, .. }) => assert_eq!(mac, eth_mac),
        other => panic!("no NA for the excluded IPv6 VIP: {other:?}"),
    }

    // The device appears: its VIP is added within a reconcile period, and announced.
    lan.host(0)
        .ip(&[
            "link", "add", "late0", "type", "veth", "peer", "name", "late0p",
        ])
        .unwrap();
    lan.host(0).ip(&["link", "set", "late0", "up"]).unwrap();
    wait("the VIP of the new device is added", &logs, || {
        on(&lan, 0, "late0", "203.0.113.10")
    });

    // Deleted behind vipd's back: put back, on its own device.
    lan.host(0)
        .ip(&["addr", "del", "198.51.100.10/24", "dev", "ext0"])
        .unwrap();
    lan.host(0)
        .ip(&["addr", "del", "192.0.2.10/24", "dev", "eth0"])
        .unwrap();
    wait("deleted VIPs are put back", &logs, || {
        on(&lan, 0, "ext0", "198.51.100.10") && on(&lan, 0, "eth0", "192.0.2.10")
    });

    // Adverts carry the advertised VIPs only (the interface's, ext0's and late0's, in
    // order), never the excluded ones.
    let adverts = cap
        .verbose(&format!("vrrp && ip.src == {}", lan.host(0).v4))
        .unwrap();
    let count = adverts.matches("Addr Count: ").count();
    assert!(count > 0, "no advert from host 0 captured");
    assert_eq!(adverts.matches("Addr Count: 3").count(), count, "{adverts}");
    let listed: Vec<&str> = adverts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("IP Address: "))
        .take(3)
        .collect();
    assert_eq!(
        listed,
        [vip.to_string().as_str(), "198.51.100.10", "203.0.113.10"],
        "{adverts}"
    );
    assert!(
        !adverts.contains("192.0.2.10") && !adverts.contains("2001:db8:99::10"),
        "an excluded VIP was advertised"
    );

    // A reload that moves one VIP to another device and drops another touches only those.
    let transitions = |sock: &str| {
        let st = common::vipctl_status(&dir.path().join(sock), &c0);
        st.instances[0].counters.transitions
    };
    let before = transitions("h0.sock");
    let moved = config(dir.path(), 0, 150, vip, "")
        .replace("interface = \"late0\"", "interface = \"ext0\"")
        .replace(", \"192.0.2.10/24\"", "");
    std::fs::write(&cfgs[0], moved).unwrap();
    c0.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    wait("the reload moved and dropped VIPs", &logs, || {
        on(&lan, 0, "ext0", "203.0.113.10")
            && !on(&lan, 0, "late0", "203.0.113.10")
            && !on(&lan, 0, "eth0", "192.0.2.10")
    });
    assert!(on(&lan, 0, "eth0", &vip.to_string()) && on(&lan, 0, "ext0", "198.51.100.10"));
    assert_eq!(transitions("h0.sock"), before, "{}", c0.log());
    // Status says where each VIP is, and which are excluded.
    let st = common::vipctl_status(&dir.path().join("h0.sock"), &c0);
    let shown: Vec<(String, Option<String>, bool, bool)> = st.instances[0]
        .vips
        .iter()
        .map(|v| {
            (
                v.address.clone(),
                v.interface.clone(),
                v.excluded,
                v.present,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (format!("{vip}/24"), None, false, true),
            ("198.51.100.10/24".into(), Some("ext0".into()), false, true),
            ("203.0.113.10/24".into(), Some("ext0".into()), false, true),
            ("2001:db8:99::10/64".into(), None, true, true),
        ]
    );

    // A clean stop releases everything, on every device; the backup takes it all.
    c0.terminate(Duration::from_secs(5));
    wait("host 1 holds every VIP", &[&c1], || {
        on(&lan, 1, "eth0", &vip.to_string())
            && on(&lan, 1, "ext0", "198.51.100.10")
            && on(&lan, 1, "eth0", "2001:db8:99::10")
            && on(&lan, 1, "eth0", "192.0.2.10")
    });
    for (dev, a) in [
        ("eth0", vip.to_string()),
        ("ext0", "198.51.100.10".into()),
        ("ext0", "203.0.113.10".into()),
        ("eth0", "2001:db8:99::10".into()),
    ] {
        assert!(!on(&lan, 0, dev, &a), "{a} left on host 0's {dev}");
    }
    let _ = cap.stop();
}

/// A crash leaves VIPs on other devices and routes too; the next start removes them before it
/// claims anything (as for the interface's own VIPs).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn a_restart_after_a_crash_removes_vips_left_on_other_devices() {
    let lan = Lan::new("placecrash", 1).unwrap();
    let dir = TempDir::new("placecrash");
    let vip = lan.vip(false);
    add_ext(&lan, 0);
    let cfg = dir.path().join("h0.toml");
    let route = "\n[[instance.route]]\nto = \"203.0.113.0/24\"\ninterface = \"ext0\"\n";
    std::fs::write(&cfg, config(dir.path(), 0, 150, vip, route)).unwrap();
    let mut c = common::start_vipd(lan.host(0), &cfg);
    // Both the VIP and the route (added after the VIPs) are there before the crash.
    wait("host 0 holds the ext0 VIP and the route", &[&c], || {
        on(&lan, 0, "ext0", "198.51.100.10")
            && lan
                .host(0)
                .ip(&["route", "show", "203.0.113.0/24", "dev", "ext0"])
                .is_ok_and(|o| o.contains("203.0.113.0/24"))
    });
    c.kill().unwrap();
    assert!(on(&lan, 0, "ext0", "198.51.100.10"), "a crash leaves it");
    // The next start removes it before anything else (it then claims it again as master).
    let c = common::start_vipd(lan.host(0), &cfg);
    wait("the leftovers are removed and logged", &[&c], || {
        let log = c.log();
        log.contains("removing a VIP left on ext0 by a previous run")
            && log.contains("removing route 203.0.113.0/24 dev ext0 left by a previous run")
    });
}

/// The routes of ours (protocol 18) in `table` on host `i`, as `ip route` prints them.
fn our_routes(lan: &Lan, i: usize, v6: bool, table: &str) -> Vec<String> {
    let fam = if v6 { "-6" } else { "-4" };
    lan.host(i)
        .ip(&[fam, "route", "show", "table", table, "proto", "18"])
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

fn our_rules(lan: &Lan, i: usize) -> Vec<String> {
    lan.host(i)
        .ip(&["rule", "show"])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("proto keepalived"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn routes_and_rules_follow_the_master_and_are_put_back() {
    let lan = Lan::new("vroutes", 2).unwrap();
    let dir = TempDir::new("vroutes");
    let vip = lan.vip(false);
    let gw = lan.addr_v4(254);
    for i in 0..2 {
        add_ext(&lan, i);
    }
    // The operator's own route to a destination vipd also routes: never replaced or removed.
    lan.host(0)
        .ip(&[
            "route",
            "add",
            "192.0.2.0/24",
            "via",
            &gw.to_string(),
            "proto",
            "static",
        ])
        .unwrap();
    let conf = |i: usize, prio: u8| {
        format!(
            "[global]\ncontrol_socket = \"{sock}\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {prio}\nadvert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\n\
             [[instance.route]]\nto = \"192.0.2.0/24\"\nvia = \"{gw}\"\n\
             [[instance.route]]\nto = \"198.18.0.0/15\"\ntype = \"blackhole\"\ntable = 100\n\
             [[instance.route]]\nto = \"default\"\nvia = \"{gw}\"\nsrc = \"{vip}\"\ntable = 101\n\
             [[instance.route]]\nto = \"203.0.113.0/24\"\ninterface = \"ext0\"\n\
             [[instance.route]]\nto = \"198.51.100.0/24\"\nvia = \"{gw}\"\ntrack = false\n\
             [[instance.route]]\nto = \"2001:db8:77::/48\"\ntype = \"unreachable\"\n\
             [[instance.rule]]\nfrom = \"{vip}\"\ntable = 101\npriority = 1000\n\
             [[instance.rule]]\nfwmark = 7\ntable = 100\n",
            sock = dir.path().join(format!("h{i}.sock")).display()
        )
    };
    let cfgs: Vec<_> = (0..2)
        .map(|i| {
            let p = dir.path().join(format!("h{i}.toml"));
            std::fs::write(&p, conf(i, [150, 100][i])).unwrap();
            p
        })
        .collect();
    let mut c0 = common::start_vipd(lan.host(0), &cfgs[0]);
    let c1 = common::start_vipd(lan.host(1), &cfgs[1]);
    let main4 = |i: usize| our_routes(&lan, i, false, "main");
    let full = |i: usize| {
        // Host 0's route to 192.0.2.0/24 is the operator's.
        main4(i).len() == [2, 3][i]
            && our_routes(&lan, i, false, "100").len() == 1
            && our_routes(&lan, i, false, "101").len() == 1
            && our_routes(&lan, i, true, "main").len() == 1
            && our_rules(&lan, i).len() == 2
    };
    if common::wait_until(Duration::from_secs(5), || full(0)).is_none() {
        panic!(
            "host 0 lacks routes or rules: main {:?} 100 {:?} 101 {:?} v6 {:?} rules {:?}\n{}",
            main4(0),
            our_routes(&lan, 0, false, "100"),
            our_routes(&lan, 0, false, "101"),
            our_routes(&lan, 0, true, "main"),
            our_rules(&lan, 0),
            c0.log()
        );
    }
    assert_eq!(
        our_routes(&lan, 0, false, "101"),
        [format!("default via {gw} dev eth0 src {vip}")]
    );
    assert_eq!(
        our_routes(&lan, 0, false, "100"),
        ["blackhole 198.18.0.0/15".to_string()]
    );
    // The operator's route stays the one in the kernel (ours was refused as existing).
    let r = lan.host(0).ip(&["route", "show", "192.0.2.0/24"]).unwrap();
    assert!(r.contains("proto static"), "{r}");
    assert!(!main4(0).iter().any(|l| l.starts_with("192.0.2.0/24")));
    assert!(
        c0.log().contains("route 192.0.2.0/24 via")
            && c0.log().contains("in the kernel already: not replaced"),
        "{}",
        c0.log()
    );
    assert!(our_routes(&lan, 1, false, "main").is_empty() && our_rules(&lan, 1).is_empty());

    // Deleted behind vipd's back: tracked ones come back (the kernel's event), no_track does not.
    lan.host(0)
        .ip(&["route", "del", "203.0.113.0/24", "dev", "ext0"])
        .unwrap();
    lan.host(0)
        .ip(&["route", "del", "198.18.0.0/15", "table", "100"])
        .unwrap();
    lan.host(0)
        .ip(&["route", "del", "198.51.100.0/24"])
        .unwrap();
    lan.host(0).ip(&["rule", "del", "pref", "1000"]).unwrap();
    wait("tracked routes and rules are put back", &[&c0], || {
        main4(0)
            .iter()
            .any(|l| l.starts_with("203.0.113.0/24 dev ext0"))
            && our_routes(&lan, 0, false, "100").len() == 1
            && our_rules(&lan, 0).len() == 2
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !main4(0).iter().any(|l| l.starts_with("198.51.100.0/24")),
        "a no_track route was put back: {:?}",
        main4(0)
    );
    let st = common::vipctl_status(&dir.path().join("h0.sock"), &c0);
    assert_eq!(st.instances[0].counters.routes_restored, 3, "{}", c0.log());

    // A reload drops one route and adds another: only those change, nothing moves.
    let reloaded = conf(0, 150)
        .replace("to = \"198.18.0.0/15\"", "to = \"198.19.0.0/16\"")
        .replace("[[instance.rule]]\nfwmark = 7\ntable = 100\n", "");
    std::fs::write(&cfgs[0], &reloaded).unwrap();
    c0.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    wait("the reload changed one route and one rule", &[&c0], || {
        our_routes(&lan, 0, false, "100") == ["blackhole 198.19.0.0/16".to_string()]
            && our_rules(&lan, 0).len() == 1
    });
    let st = common::vipctl_status(&dir.path().join("h0.sock"), &c0);
    assert_eq!(st.instances[0].state, "MASTER");
    assert_eq!(st.instances[0].counters.transitions, 2, "{}", c0.log());
    std::fs::write(&cfgs[0], conf(0, 150)).unwrap();

    // A clean stop: the backup takes them all; the old master keeps only the operator's.
    c0.terminate(Duration::from_secs(5));
    wait("host 1 holds every route and rule", &[&c1], || full(1));
    assert!(
        main4(0).is_empty() && our_rules(&lan, 0).is_empty(),
        "{:?}",
        main4(0)
    );
    assert!(
        our_routes(&lan, 0, false, "100").is_empty()
            && our_routes(&lan, 0, true, "main").is_empty()
    );
    let r = lan.host(0).ip(&["route", "show", "192.0.2.0/24"]).unwrap();
    assert!(
        r.contains("proto static"),
        "the operator's route was removed: {r}"
    );

    // Back (it preempts): exactly one of each rule, no duplicates after a second takeover.
    let c0 = common::start_vipd(lan.host(0), &cfgs[0]);
    wait("host 0 holds them again", &[&c0, &c1], || {
        full(0) && our_rules(&lan, 1).is_empty()
    });
    assert_eq!(our_rules(&lan, 0).len(), 2, "{:?}", our_rules(&lan, 0));
}

/// `no_vips` (keepalived's `no_virtual_ipaddress`, for clouds that move the address by API):
/// a VRRPv3 pair without VIPs elects one master, whose notify_master runs; the backup takes
/// over (and runs its own) when the master stops; adverts carry no address.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn a_pair_without_vips_elects_and_runs_notify_master() {
    use std::os::unix::fs::PermissionsExt;
    let lan = Lan::new("novips", 2).unwrap();
    let dir = TempDir::new("novips");
    let script = dir.path().join("master.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}/became-master\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let paths: Vec<_> = (0..2)
        .map(|i| {
            let p = dir.path().join(format!("h{i}.toml"));
            std::fs::write(
                &p,
                format!(
                    "[global]\ncontrol_socket = \"{}\"\nscript_user = \"root\"\n\n[[instance]]\nname = \"EIP\"\ninterface = \"eth0\"\nvrid = 61\npriority = {}\nadvert_interval = \"100ms\"\nno_vips = true\nnotify_master = [\"{}\", \"h{i}\"]\n",
                    dir.path().join(format!("h{i}.sock")).display(),
                    [150, 100][i],
                    script.display()
                ),
            )
            .unwrap();
            p
        })
        .collect();
    let mut cap = Capture::start(lan.host(1), "eth0", "ip proto 112").unwrap();
    let mut c0 = common::start_vipd(lan.host(0), &paths[0]);
    let c1 = common::start_vipd(lan.host(1), &paths[1]);
    let masters = || {
        std::fs::read_to_string(dir.path().join("became-master"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    wait("host 0 runs notify_master", &[&c0, &c1], || {
        masters() == ["h0"]
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(masters(), ["h0"], "only one master");
    let adverts = cap
        .verbose(&format!("vrrp && ip.src == {}", lan.host(0).v4))
        .unwrap();
    assert!(adverts.contains("Addr Count: 0"), "{adverts}");
    c0.terminate(Duration::from_secs(5));
    wait("host 1 takes over", &[&c1], || masters() == ["h0", "h1"]);
    let _ = cap.stop();
}
