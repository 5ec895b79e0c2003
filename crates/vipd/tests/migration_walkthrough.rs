//! docs/migration.md's "Migrating one load balancer at a time", run as written on a namespaced
//! pair: two keepalived nodes with keepalived's defaults (VRRPv2, `auth_type PASS`,
//! `state MASTER`/`BACKUP`), each file converted with `vipctl import-keepalived`, the backup
//! moved to vipd first (nothing moves), a failover tested both ways against keepalived, then
//! the master moved last. At every step the VIP is on at most one host, and on the expected one
//! once settled. Needs root and keepalived (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ChildGuard, Lan, TempDir};
use vipd_lab::keepalived::{self, Keepalived};

fn keepalived_conf(router_id: &str, state: &str, priority: u8, vip: IpAddr) -> String {
    format!(
        r#"global_defs {{
    router_id {router_id}
}}

vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass s3cret
    }}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"#
    )
}

/// `vipctl import-keepalived`, then this test's control socket (two vipd on one file system).
fn import(dir: &Path, name: &str, sock: &Path) -> PathBuf {
    let conf = dir.join(format!("{name}.conf"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("import-keepalived")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "import {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    let toml = toml.replacen(
        "[global]\n",
        &format!("[global]\ncontrol_socket = \"{}\"\n", sock.display()),
        1,
    );
    assert!(toml.contains("control_socket"), "{toml}");
    assert!(
        toml.contains("vrrp_version = 2"),
        "keepalived's default kept: {toml}"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

fn holders(lan: &Lan, vip: IpAddr) -> Vec<usize> {
    (0..2)
        .filter(|&i| lan.host(i).has_addr("eth0", vip).unwrap())
        .collect()
}

/// Waits until `want` alone holds the VIP, checking meanwhile that no two hosts ever do.
#[track_caller]
fn settle(lan: &Lan, vip: IpAddr, want: usize, within: Duration, what: &str) {
    common::wait_until(within, || {
        let h = holders(lan, vip);
        assert!(h.len() <= 1, "{what}: the VIP on two hosts");
        h == vec![want]
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}: the VIP did not settle on h{want}: {:?}",
            holders(lan, vip)
        )
    });
}

/// For `d`, the VIP stays on `want` alone.
#[track_caller]
fn stays(lan: &Lan, vip: IpAddr, want: usize, d: Duration, what: &str) {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < d {
        assert_eq!(holders(lan, vip), vec![want], "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_vipd(lan: &Lan, i: usize, cfg: &Path) -> ChildGuard {
    common::start_vipd(lan.host(i), cfg)
}

fn state(sock: &Path) -> vipd::ctl::InstanceStatus {
    let r = vipd::ctl::request(sock, vipd::ctl::Command::Status, Duration::from_secs(5)).unwrap();
    r.status.unwrap().instances.remove(0)
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn migrating_one_load_balancer_at_a_time() {
    assert!(keepalived::available(), "keepalived is not installed");
    let mut lan = Lan::new("migrate", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("migrate");
    let vip = lan.vip(false);
    let (lb1, lb2) = (0, 1);
    let conf1 = keepalived_conf("lb1", "MASTER", 150, vip);
    let conf2 = keepalived_conf("lb2", "BACKUP", 100, vip);
    let mut ka1 = Keepalived::start(lan.host(lb1), dir.path(), "lb1", &conf1).unwrap();
    let mut ka2 = Keepalived::start(lan.host(lb2), dir.path(), "lb2", &conf2).unwrap();
    settle(&lan, vip, lb1, Duration::from_secs(10), "keepalived pair");

    // 1. Convert on every node and check.
    let (sock1, sock2) = (dir.path().join("lb1.sock"), dir.path().join("lb2.sock"));
    let toml1 = import(dir.path(), "lb1", &sock1);
    let toml2 = import(dir.path(), "lb2", &sock2);
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(["--check"])
        .arg(&toml1)
        .arg(&toml2)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&check.stderr).contains("speaks"),
        "the converted pair agrees: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // 2. Start with the backup: keepalived off, vipd on. Nothing moves.
    ka2.stop().unwrap();
    ka2.wait_exit(Duration::from_secs(5)).unwrap();
    let vipd2 = start_vipd(&lan, lb2, &toml2);
    common::wait_until(Duration::from_secs(5), || sock2.exists()).expect("lb2's socket");
    stays(
        &lan,
        vip,
        lb1,
        Duration::from_secs(3),
        "vipd joined as backup",
    );
    let s = state(&sock2);
    assert_eq!(s.state, "BACKUP", "{}", vipd2.log());
    assert!(s.counters.adverts_received > 0, "vipd hears keepalived");
    assert_eq!(
        s.master.as_ref().unwrap().address,
        lan.host(lb1).v4.to_string()
    );

    // 3. Test a failover: keepalived on the master stops, vipd takes over; keepalived comes
    //    back and preempts.
    ka1.stop().unwrap();
    ka1.wait_exit(Duration::from_secs(5)).unwrap();
    settle(
        &lan,
        vip,
        lb2,
        Duration::from_secs(3),
        "vipd takes over from keepalived",
    );
    assert!(
        lan.client(0)
            .ping_timeout(vip, Duration::from_secs(2))
            .unwrap(),
        "the client reaches the VIP on vipd"
    );
    let ka1 = Keepalived::start(lan.host(lb1), dir.path(), "lb1", &conf1).unwrap();
    settle(
        &lan,
        vip,
        lb1,
        Duration::from_secs(10),
        "keepalived preempts back",
    );

    // 4. The master last: its VIP moves once when it stops, and back when vipd starts.
    ka1.stop().unwrap();
    settle(
        &lan,
        vip,
        lb2,
        Duration::from_secs(3),
        "the master's keepalived stops",
    );
    let vipd1 = start_vipd(&lan, lb1, &toml1);
    settle(
        &lan,
        vip,
        lb1,
        Duration::from_secs(10),
        "vipd on lb1 preempts",
    );
    stays(&lan, vip, lb1, Duration::from_secs(2), "two vipd");
    assert_eq!(state(&sock1).state, "MASTER", "{}", vipd1.log());
    assert_eq!(state(&sock2).state, "BACKUP", "{}", vipd2.log());
    assert!(
        lan.client(0)
            .ping_timeout(vip, Duration::from_secs(2))
            .unwrap()
    );
    common::assert_readable_log(&vipd1.log());
    common::assert_readable_log(&vipd2.log());
}
