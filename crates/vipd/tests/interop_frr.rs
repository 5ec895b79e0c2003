//! vipd with a VMAC (`vmac = true`) against FRR's vrrpd, which always uses one: one virtual
//! router, both directions of failover, clients keeping the virtual MAC throughout. Needs
//! root and FRR (scripts/test.sh installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd_lab::frr::Vrrpd;
use vipd_lab::sniff::{Seen, Sniffer};

const VRID: u8 = 42;
const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, VRID];

fn vipd_conf(dir: &std::path::Path, priority: u8, vip: IpAddr) -> String {
    format!(
        "[global]\ncontrol_socket = \"{}\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = {VRID}\npriority = {priority}\nadvert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\nvmac = true\n",
        dir.join("vipd.sock").display()
    )
}

/// Waits until only `src` advertises VRID (priority > 0) from the virtual MAC for a window.
#[track_caller]
fn only_master(wire: &mut Sniffer, src: IpAddr, what: &str, logs: &dyn Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let from = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let adverts: Vec<(IpAddr, [u8; 6])> = wire
            .events()
            .iter()
            .filter(|e| e.at >= from)
            .filter_map(|e| match e.what {
                Seen::Advert {
                    src,
                    vrid,
                    priority,
                    ..
                } if vrid == VRID && priority > 0 => Some((src, e.eth_src)),
                _ => None,
            })
            .collect();
        if !adverts.is_empty() && adverts.iter().all(|a| *a == (src, VMAC)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: expected only {src} advertising from the virtual MAC, saw {adverts:?}\n{}",
            logs()
        );
    }
}

#[track_caller]
fn reachable(lan: &Lan, vip: IpAddr, what: &str) {
    let ok = common::wait_until(Duration::from_secs(5), || {
        lan.client(0)
            .ping_timeout(vip, Duration::from_millis(300))
            .unwrap_or(false)
    });
    assert!(ok.is_some(), "{what}: the VIP does not answer");
    assert_eq!(
        common::client_mac(lan, vip),
        Some(VMAC),
        "{what}: the client's MAC for the VIP"
    );
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vipd_vmac_and_frr_vrrpd_fail_over_both_ways() {
    assert!(
        vipd_lab::frr::available(),
        "FRR is not installed (apt-get install frr)"
    );
    let mut lan = Lan::new("frrvmac", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("frrvmac");
    let vip = lan.vip(false);
    let mut wire = Sniffer::start(Some(lan.switch().name())).unwrap();
    let (src0, src1) = (IpAddr::V4(lan.host(0).v4), IpAddr::V4(lan.host(1).v4));
    let conf = format!(
        "interface eth0\n vrrp {VRID} version 3\n vrrp {VRID} priority 100\n vrrp {VRID} advertisement-interval 100\n vrrp {VRID} ip {vip}\n!\n"
    );
    let mut frr = Vrrpd::start(
        &lan.host(1).ns,
        dir.path(),
        "h1",
        "eth0",
        VRID,
        &[format!("{vip}/24")],
        &conf,
    )
    .unwrap();
    let cfg = dir.path().join("vipd.toml");
    std::fs::write(&cfg, vipd_conf(dir.path(), 150, vip)).unwrap();
    let mut v = common::start_vipd(lan.host(0), &cfg);
    let logs = |v: &ChildGuard, f: &Vrrpd| {
        format!("---- vipd:\n{}\n---- frr vrrpd:\n{}", v.log(), f.log())
    };

    // A: vipd 150 against FRR 100: vipd is master.
    only_master(&mut wire, src0, "A: vipd 150 vs FRR 100", &|| {
        logs(&v, &frr)
    });
    reachable(&lan, vip, "A");

    // B: vipd stops (priority 0): FRR takes over, the client keeps the same MAC.
    v.terminate(Duration::from_secs(5));
    only_master(&mut wire, src1, "B: after vipd's stop", &|| logs(&v, &frr));
    reachable(&lan, vip, "B");

    // C: vipd back with 200: it preempts FRR.
    std::fs::write(&cfg, vipd_conf(dir.path(), 200, vip)).unwrap();
    let v = common::start_vipd(lan.host(0), &cfg);
    only_master(&mut wire, src0, "C: vipd 200 preempts FRR 100", &|| {
        logs(&v, &frr)
    });
    reachable(&lan, vip, "C");

    // D: FRR crashes: nothing moves.
    frr.crash();
    only_master(&mut wire, src0, "D: after FRR's crash", &|| logs(&v, &frr));
    reachable(&lan, vip, "D");
}
