//! The harness itself: LAN construction, addressing, link down/up, capture, cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{Capture, Lan, wait_until};

fn netns_list() -> String {
    String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
fn lan_hosts_reach_each_other_and_cleanup() {
    let stem;
    {
        let mut lan = Lan::new("harness_basic", 2);
        stem = lan.stem().to_owned();
        let (h0, h1) = (lan.host(0), lan.host(1));
        assert_eq!(h0.ifname, "eth0");
        assert_ne!(h0.mac, h1.mac);
        // No tentative addresses (DAD off), link-local present.
        for h in lan.hosts() {
            let addrs = h.addrs_on("eth0");
            assert!(addrs.iter().all(|a| !a.tentative()), "{addrs:?}");
            assert!(addrs.iter().any(|a| a.addr == IpAddr::V6(h.ll)));
            assert!(addrs.iter().any(|a| a.addr == IpAddr::V4(h.v4)));
        }
        assert!(h0.ping(h1.v4.into()), "v4 ping");
        assert!(h0.ping(h1.v6.into()), "v6 ping");
        assert!(h0.ping(h1.ll.into()), "link-local ping");
        let c = lan.add_client().clone();
        assert!(c.ping(lan.host(1).v4.into()));
        for n in lan.ns_names() {
            assert!(netns_list().contains(&n), "{n} missing");
        }
    }
    let after = netns_list();
    assert!(!after.contains(&stem), "leftover namespaces: {after}");
}

#[test]
fn lan_cleanup_on_panic() {
    let stem = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let lan = Lan::new("harness_panic", 1);
        *stem.lock().unwrap() = lan.stem().to_owned();
        panic!("boom");
    });
    assert!(r.is_err());
    let stem = stem.into_inner().unwrap();
    assert!(!stem.is_empty());
    assert!(!netns_list().contains(&stem));
}

#[test]
fn link_down_gives_no_carrier_on_host() {
    let lan = Lan::new("harness_link", 2);
    let h = lan.host(0);
    assert!(h.link("eth0").lower_up);
    lan.link_down(0);
    let st = h.link("eth0");
    assert!(st.admin_up, "{st:?}");
    assert!(st.no_carrier && !st.lower_up, "{st:?}");
    assert!(!h.ping(lan.host(1).v4.into()));
    lan.link_up(0);
    assert!(wait_until(Duration::from_secs(3), || h.link("eth0").lower_up).is_some());
    assert!(wait_until(Duration::from_secs(3), || h.ping(lan.host(1).v4.into())).is_some());
}

#[test]
fn impairments_apply_and_clear() {
    let lan = Lan::new("harness_netem", 2);
    let (h0, h1) = (lan.host(0), lan.host(1));
    if common::netem_available(h0) {
        lan.tc_netem(0, "delay 50ms");
        let t = std::time::Instant::now();
        assert!(h0.ping(h1.v4.into()));
        assert!(t.elapsed() >= Duration::from_millis(50));
        lan.tc_clear(0);
    }
    // 100% loss through whichever mechanism this kernel offers.
    lan.tc_netem(0, "loss 100%");
    assert!(!h0.ping_timeout(h1.v4.into(), Duration::from_millis(300)));
    lan.tc_clear(0);
    assert!(h0.ping(h1.v4.into()));
    lan.block_ingress(0);
    assert!(!h0.ping_timeout(h1.v4.into(), Duration::from_millis(300)));
    lan.tc_clear(0);
    lan.block_egress(0);
    assert!(!h0.ping_timeout(h1.v4.into(), Duration::from_millis(300)));
    lan.tc_clear(0);
    assert!(h0.ping(h1.v4.into()));
}

#[test]
fn capture_sees_ping() {
    let lan = Lan::new("harness_capture", 2);
    let mut cap = Capture::start(lan.host(1), "eth0", "icmp");
    assert!(lan.host(0).ping(lan.host(1).v4.into()));
    let pkts = cap.stop();
    assert!(
        pkts.iter().any(|p| p.src == Some(lan.host(0).v4.into())
            && p.proto == "ICMP"
            && p.ttl == Some(64)
            && p.bytes.len() >= 42),
        "{pkts:#?}"
    );
}

#[test]
fn spawn_runs_in_namespace_and_is_killed_on_drop() {
    let lan = Lan::new("harness_spawn", 1);
    let h = lan.host(0);
    let mut c = h.spawn(&["sh", "-c", "ip -br addr show dev eth0; exec sleep 30"]);
    let pid = c.pid();
    assert!(wait_until(Duration::from_secs(3), || c.log().contains("10.99.")).is_some());
    assert!(c.try_wait().is_none());
    drop(c);
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    assert!(!alive, "child survived its guard");
    let out = h.exec(&["ip", "link", "show", "eth0"]);
    assert!(out.status.success());
}
