//! RFC 9568 virtual MAC (`vmac = true`, keepalived's `use_vmac`) on a real network: a
//! macvlan with 00:00:5e:00:01:VRID carries the VIPs and sends the adverts and gratuitous
//! ARPs, so clients keep the same MAC for the VIP across a failover; keepalived's sysctls are
//! set and put back; the device goes at a clean stop, and a crash's leftover at the next
//! start. Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd_lab::sniff::{Seen, Sniffer};

const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];

fn config(dir: &Path, i: usize, priority: u8, vip: IpAddr, extra: &str) -> String {
    format!(
        "[global]\ncontrol_socket = \"{}\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\nadvert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\nvmac = true\n{extra}",
        dir.join(format!("h{i}.sock")).display()
    )
}

fn sysctl(lan: &Lan, i: usize, dev: &str, key: &str) -> String {
    lan.host(i)
        .exec_ok(&["cat", &format!("/proc/sys/net/ipv4/conf/{dev}/{key}")])
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn has(lan: &Lan, i: usize, dev: &str, vip: IpAddr) -> bool {
    lan.host(i).has_addr(dev, vip).unwrap_or(false)
}

#[track_caller]
fn wait(what: &str, logs: &[&ChildGuard], mut cond: impl FnMut() -> bool) {
    if common::wait_until(Duration::from_secs(6), &mut cond).is_none() {
        for (i, l) in logs.iter().enumerate() {
            eprintln!("---- agent {i} log:\n{}", l.log());
        }
        panic!("timed out waiting until {what}");
    }
}

/// The MAC client `c` has for `vip` (after a ping).
fn client_mac(lan: &Lan, vip: IpAddr) -> Option<[u8; 6]> {
    let _ = lan.client(0).ping(vip);
    common::client_mac(lan, vip)
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vmac_pair_keeps_the_clients_mac_across_a_failover() {
    let mut lan = Lan::new("vmac", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("vmac");
    let vip = lan.vip(false);
    let cfgs: Vec<_> = (0..2)
        .map(|i| {
            let p = dir.path().join(format!("h{i}.toml"));
            std::fs::write(&p, config(dir.path(), i, [150, 100][i], vip, "")).unwrap();
            p
        })
        .collect();
    let before: Vec<String> = ["arp_ignore", "arp_filter", "arp_announce"]
        .iter()
        .map(|k| sysctl(&lan, 0, "eth0", k))
        .collect();
    let mut sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
    let t0 = Instant::now();
    let mut c0 = common::start_vipd(lan.host(0), &cfgs[0]);
    let c1 = common::start_vipd(lan.host(1), &cfgs[1]);
    wait(
        "host 0 holds the VIP on its VMAC device",
        &[&c0, &c1],
        || has(&lan, 0, "vrrp.51", vip),
    );
    assert!(
        !has(&lan, 0, "eth0", vip),
        "the VIP is on the VMAC device, not eth0"
    );
    for i in 0..2 {
        let l = lan.host(i).link("vrrp.51").unwrap();
        assert_eq!(l.mac, VMAC, "host {i}'s VMAC device");
    }
    assert!(!has(&lan, 1, "vrrp.51", vip));
    // keepalived's settings.
    assert_eq!(sysctl(&lan, 0, "vrrp.51", "arp_ignore"), "1");
    assert_eq!(sysctl(&lan, 0, "vrrp.51", "accept_local"), "1");
    assert_eq!(sysctl(&lan, 0, "vrrp.51", "rp_filter"), "0");
    assert_eq!(sysctl(&lan, 0, "eth0", "arp_ignore"), "1");
    assert_eq!(sysctl(&lan, 0, "eth0", "arp_filter"), "1");
    assert_eq!(sysctl(&lan, 0, "eth0", "arp_announce"), "2");
    // Adverts and gratuitous ARP come from the virtual MAC.
    let src0: IpAddr = IpAddr::V4(lan.host(0).v4);
    let adv = sniff.wait_for(
        t0,
        Duration::from_secs(3),
        |e| matches!(e.what, Seen::Advert { src, .. } if src == src0),
    );
    let all: Vec<String> = sniff
        .events()
        .iter()
        .map(|e| format!("{:?} {:?} +{:?}", e.eth_src, e.what, e.at - t0))
        .collect();
    assert_eq!(
        adv.map(|e| e.eth_src),
        Some(VMAC),
        "advert not from the VMAC: {all:#?}"
    );
    let garp = sniff.wait_for(t0, Duration::from_secs(3), |e| {
        matches!(e.what, Seen::Garp { .. })
    });
    match garp.map(|e| e.what) {
        Some(Seen::Garp { mac, .. }) => assert_eq!(mac, VMAC),
        other => panic!("no GARP: {other:?}"),
    }
    assert_eq!(client_mac(&lan, vip), Some(VMAC));

    // Failover: the client's entry stays the same MAC, and the VIP answers from host 1.
    c0.terminate(Duration::from_secs(5));
    wait("host 1 holds the VIP on its VMAC device", &[&c1], || {
        has(&lan, 1, "vrrp.51", vip)
    });
    wait("the VIP answers from host 1", &[&c1], || {
        lan.client(0)
            .ping_timeout(vip, Duration::from_millis(300))
            .unwrap_or(false)
    });
    assert_eq!(client_mac(&lan, vip), Some(VMAC));
    // A clean stop removed host 0's VMAC device and put its settings back.
    assert!(
        lan.host(0).link("vrrp.51").is_err(),
        "VMAC device left after a clean stop"
    );
    let after: Vec<String> = ["arp_ignore", "arp_filter", "arp_announce"]
        .iter()
        .map(|k| sysctl(&lan, 0, "eth0", k))
        .collect();
    assert_eq!(after, before, "the parent's ARP settings were not put back");
}

/// A crash leaves the VMAC device; the next start without `vmac` removes it (it carries
/// vipd's alias), and a device of that name that is not vipd's VMAC is never taken over.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn a_crash_leftover_vmac_is_removed_and_foreign_devices_refused() {
    let lan = Lan::new("vmaccrash", 1).unwrap();
    let dir = TempDir::new("vmaccrash");
    let vip = lan.vip(false);
    let cfg = dir.path().join("h0.toml");
    std::fs::write(&cfg, config(dir.path(), 0, 150, vip, "")).unwrap();
    let mut c = common::start_vipd(lan.host(0), &cfg);
    wait("the VIP is on the VMAC device", &[&c], || {
        has(&lan, 0, "vrrp.51", vip)
    });
    c.kill().unwrap();
    assert!(lan.host(0).link("vrrp.51").is_ok(), "a crash leaves it");
    let plain = config(dir.path(), 0, 150, vip, "").replace("vmac = true\n", "");
    std::fs::write(&cfg, plain).unwrap();
    let c = common::start_vipd(lan.host(0), &cfg);
    wait("the leftover VMAC is removed", &[&c], || {
        lan.host(0).link("vrrp.51").is_err() && has(&lan, 0, "eth0", vip)
    });
    drop(c);
    // Someone else's device with the name: refused, untouched.
    lan.host(0)
        .ip(&[
            "link", "add", "link", "eth0", "name", "vrrp.51", "type", "macvlan",
        ])
        .unwrap();
    let before = lan.host(0).link("vrrp.51").unwrap().mac;
    std::fs::write(&cfg, config(dir.path(), 0, 150, vip, "")).unwrap();
    let mut c = common::start_vipd(lan.host(0), &cfg);
    let st = c.wait_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        st.is_some_and(|s| !s.success()) || c.log().contains("is not the VMAC device"),
        "{}",
        c.log()
    );
    assert_eq!(lan.host(0).link("vrrp.51").unwrap().mac, before);
}

/// `vmac_xmit_base`: the VIPs stay on the VMAC device (gratuitous ARP from the virtual MAC),
/// the adverts leave from the interface's own MAC.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vmac_xmit_base_sends_adverts_from_the_interface() {
    let mut lan = Lan::new("vmacxb", 1).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("vmacxb");
    let vip = lan.vip(false);
    let cfg = dir.path().join("h0.toml");
    std::fs::write(
        &cfg,
        config(dir.path(), 0, 150, vip, "vmac_xmit_base = true\n"),
    )
    .unwrap();
    let mut sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
    let t0 = Instant::now();
    let c = common::start_vipd(lan.host(0), &cfg);
    wait("the VIP is on the VMAC device", &[&c], || {
        has(&lan, 0, "vrrp.51", vip)
    });
    let src0 = IpAddr::V4(lan.host(0).v4);
    let adv = sniff.wait_for(
        t0,
        Duration::from_secs(3),
        |e| matches!(e.what, Seen::Advert { src, .. } if src == src0),
    );
    assert_eq!(adv.map(|e| e.eth_src), Some(lan.host(0).mac), "{}", c.log());
    let garp = sniff.wait_for(t0, Duration::from_secs(3), |e| {
        matches!(e.what, Seen::Garp { .. })
    });
    assert!(
        matches!(garp.map(|e| e.what), Some(Seen::Garp { mac, .. }) if mac == VMAC),
        "{}",
        c.log()
    );
}
