//! VRRPv2 IPsec-AH between two vipd (keepalived interop is in interop_keepalived.rs): the
//! same password elects one master; another password's adverts are refused and counted
//! (`ah_bad`), so each side believes it is alone; a replayed advert is refused (`ah_replay`).
//! Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{ChildGuard, Lan, TempDir};

fn conf(dir: &std::path::Path, i: usize, prio: u8, vip: IpAddr, key: &str) -> String {
    format!(
        "[global]\ncontrol_socket = \"{}\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\npriority = {prio}\nadvert_interval = \"1s\"\nvips = [\"{vip}/24\"]\nauth_ah = \"{key}\"\n",
        dir.join(format!("h{i}.sock")).display()
    )
}

/// Hosts 0 (priority 150) and 1 (100) with the same AH password: their config paths and
/// agents.
fn start_pair(lan: &Lan, dir: &TempDir, vip: IpAddr) -> (Vec<PathBuf>, ChildGuard, ChildGuard) {
    let paths: Vec<_> = (0..2)
        .map(|i| dir.path().join(format!("h{i}.toml")))
        .collect();
    std::fs::write(&paths[0], conf(dir.path(), 0, 150, vip, "s3cr3t")).unwrap();
    std::fs::write(&paths[1], conf(dir.path(), 1, 100, vip, "s3cr3t")).unwrap();
    let c0 = common::start_vipd(lan.host(0), &paths[0]);
    let c1 = common::start_vipd(lan.host(1), &paths[1]);
    (paths, c0, c1)
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn ah_elects_with_the_same_password_and_refuses_another() {
    let lan = Lan::new("authah", 2).unwrap();
    let dir = TempDir::new("authah");
    let vip = lan.vip(false);
    let (paths, c0, mut c1) = start_pair(&lan, &dir, vip);
    let holders = || -> Vec<usize> {
        (0..2)
            .filter(|&i| lan.host(i).has_addr("eth0", vip).unwrap_or(false))
            .collect()
    };
    let ok = common::wait_until(Duration::from_secs(8), || holders() == vec![0]);
    assert!(
        ok.is_some(),
        "holders {:?}\n{}\n{}",
        holders(),
        c0.log(),
        c1.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(holders(), vec![0], "{}", c1.log());
    let st = common::vipctl_status(&dir.path().join("h1.sock"), &c1);
    assert_eq!(st.instances[0].state, "BACKUP");
    assert!(
        st.instances[0].counters.drops.is_empty(),
        "{:?}",
        st.instances[0].counters.drops
    );

    // Another password on host 1: its adverts and host 0's refuse each other.
    drop(c1.kill());
    std::fs::write(&paths[1], conf(dir.path(), 1, 100, vip, "other")).unwrap();
    let c1 = common::start_vipd(lan.host(1), &paths[1]);
    let ok = common::wait_until(Duration::from_secs(8), || holders() == vec![0, 1]);
    assert!(ok.is_some(), "holders {:?}\n{}", holders(), c1.log());
    let st = common::vipctl_status(&dir.path().join("h1.sock"), &c1);
    assert!(
        st.instances[0]
            .counters
            .drops
            .get("ah_bad")
            .copied()
            .unwrap_or(0)
            > 0,
        "{:?}",
        st.instances[0].counters.drops
    );
}

/// A replayed AH advert: a host on the LAN captures one of the master's adverts and sends the
/// very same frame again seconds later. The backup refuses it as a replay (`ah_replay`: its
/// sequence number is one it has seen), keeps following the master, and nothing moves.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn a_replayed_ah_advert_is_refused() {
    let mut lan = Lan::new("ahreplay", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("ahreplay");
    let vip = lan.vip(false);
    let (_, c0, c1) = start_pair(&lan, &dir, vip);
    let ok = common::wait_until(Duration::from_secs(8), || {
        lan.host(0).has_addr("eth0", vip).unwrap_or(false)
            && common::vipctl_status(&dir.path().join("h1.sock"), &c1).instances[0].state
                == "BACKUP"
    });
    assert!(ok.is_some(), "{}\n{}", c0.log(), c1.log());

    // The attacker's copy: one AH advert (IP protocol 51) of the master, as it was on the wire.
    let client = lan.client(0);
    let cap = common::Capture::start(client, "eth0", "ip proto 51").unwrap();
    assert!(
        cap.wait_for(Duration::from_secs(5), |_| true).unwrap(),
        "no AH advert seen"
    );
    let frame = cap.snapshot().unwrap().remove(0).1;
    std::thread::sleep(Duration::from_millis(2500));

    let before = common::vipctl_status(&dir.path().join("h1.sock"), &c1).instances[0]
        .counters
        .drops
        .get("ah_replay")
        .copied()
        .unwrap_or(0);
    let ifindex = client.link("eth0").unwrap().index;
    client
        .run_async(move || async move {
            let tx = vipd::net::FrameSender::open(ifindex).unwrap();
            for _ in 0..5 {
                tx.send(&frame).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let st = common::vipctl_status(&dir.path().join("h1.sock"), &c1);
    let after = st.instances[0]
        .counters
        .drops
        .get("ah_replay")
        .copied()
        .unwrap_or(0);
    assert!(
        after >= before + 5,
        "the replays were not refused as replays: {:?}\n{}",
        st.instances[0].counters.drops,
        c1.log()
    );
    assert_eq!(st.instances[0].state, "BACKUP");
    assert!(lan.host(0).has_addr("eth0", vip).unwrap());
    assert!(!lan.host(1).has_addr("eth0", vip).unwrap());
}
