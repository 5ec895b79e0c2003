//! Hitless operations on a real network: two vipd hosts (100 ms adverts) and a client pinging
//! the VIP every 20 ms. The master is reloaded 20 times with in-place changes and upgraded
//! (re-executed with its state handed over) 20 times, the backup 5 times: no transition
//! anywhere, no lost ping, and the VIP on exactly one host throughout (netlink watched on
//! both). Bad upgrade targets are refused with nothing handed over, and a corrupt handed-over
//! state means a normal start. Needs root (scripts/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd::ctl::Status;
use vipd::net::netlink::NetEvent;
use vipd_lab::watch::AddrWatcher;

struct Node {
    cfg: PathBuf,
    sock: PathBuf,
    child: ChildGuard,
}

/// Host `i`'s configuration; `v` varies the settings a reload may change in place.
fn config(dir: &Path, i: usize, priority: u8, vip: &str, v: usize) -> String {
    let (interval, delay, repeat, weight) = (
        ["100ms", "120ms"][v % 2],
        ["0s", "1s", "2s"][v % 3],
        [5, 3][v % 2],
        10 + (v % 3),
    );
    let notify = if v % 2 == 1 {
        "notify_master = \"/bin/true\"\n"
    } else {
        ""
    };
    let d = dir.display();
    format!(
        r#"[global]
control_socket = "{d}/h{i}.sock"
enable_script_security = false

[[track_file]]
name = "w"
path = "{d}/w{i}"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {}
advert_interval = "{interval}"
preempt_delay = "{delay}"
garp_master_repeat = {repeat}
track_files = [{{ name = "w", weight = {weight} }}]
{notify}vips = ["{vip}/24"]
"#,
        priority + (v % 3) as u8
    )
}

/// Starts host `i`'s vipd on `text`, its tracked file holding `value`.
fn start(lan: &Lan, dir: &TempDir, i: usize, text: &str, value: &str) -> Node {
    std::fs::write(dir.path().join(format!("w{i}")), value).unwrap();
    let cfg = dir.path().join(format!("h{i}.toml"));
    std::fs::write(&cfg, text).unwrap();
    let child = lan
        .host(i)
        .spawn(&[
            env!("CARGO_BIN_EXE_vipd"),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .unwrap();
    let sock = dir.path().join(format!("h{i}.sock"));
    common::wait_until(Duration::from_secs(5), || sock.exists()).expect("control socket appears");
    Node { cfg, sock, child }
}

fn vipctl(node: &Node, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(&node.sock)
        .args(args)
        .output()
        .unwrap()
}

fn status(node: &Node) -> Status {
    let out = vipctl(node, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_state(node: &Node, want: &str) {
    common::wait_until(Duration::from_secs(5), || {
        status(node).instances[0].state == want
    })
    .unwrap_or_else(|| panic!("never reached {want}:\n{}", node.child.log()));
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `vip` was added or removed on the watched host since `t0`.
fn vip_changed(w: &mut AddrWatcher, t0: Instant, vip: IpAddr) -> Vec<String> {
    w.events()
        .iter()
        .filter(|(at, _)| *at >= t0)
        .filter_map(|(_, ev)| match ev {
            NetEvent::AddrAdded { addr, .. } if *addr == vip => Some("added".to_string()),
            NetEvent::AddrRemoved { addr, .. } if *addr == vip => Some("removed".to_string()),
            _ => None,
        })
        .collect()
}

fn pair(tag: &str) -> (Lan, TempDir, IpAddr, Node, Node) {
    let mut lan = Lan::new(tag, 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new(tag);
    let vip = lan.vip(false);
    // The master's 95 is above the backup's 100 only with its tracker's weight: a tracker
    // that lost its state over a reload or an upgrade would hand the VIP over.
    let n0 = start(
        &lan,
        &dir,
        0,
        &config(dir.path(), 0, 95, &vip.to_string(), 0),
        "1",
    );
    let n1 = start(
        &lan,
        &dir,
        1,
        &config(dir.path(), 1, 100, &vip.to_string(), 0),
        "0",
    );
    wait_state(&n0, "MASTER");
    wait_state(&n1, "BACKUP");
    (lan, dir, vip, n0, n1)
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn reloads_and_upgrades_move_nothing() {
    let (lan, dir, vip, n0, n1) = pair("upg-hitless");
    // Settle (the first GARP bursts, the trackers' first results).
    std::thread::sleep(Duration::from_millis(1500));
    let mut w0 = AddrWatcher::start(lan.host(0).name()).unwrap();
    let mut w1 = AddrWatcher::start(lan.host(1).name()).unwrap();
    let (s0, s1) = (status(&n0), status(&n1));
    let (t_master, t_backup) = (
        s0.instances[0].counters.transitions,
        s1.instances[0].counters.transitions,
    );
    let t0 = Instant::now();
    let stop = AtomicBool::new(false);
    let (sent, lost) = std::thread::scope(|s| {
        let pinger = s.spawn(|| common::ping_loop(&lan, vip, &stop));
        std::thread::sleep(Duration::from_millis(300));
        for v in 1..=20 {
            std::fs::write(&n0.cfg, config(dir.path(), 0, 95, &vip.to_string(), v)).unwrap();
            if v % 2 == 0 {
                n0.child.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
            } else {
                let out = ok(&vipctl(&n0, &["reload"]));
                assert!(out.contains("1 updated in place"), "reload {v}: {out}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        for u in 1..=20 {
            let out = ok(&vipctl(&n0, &["upgrade"]));
            assert!(
                out.contains("upgraded in place") && out.contains("1 master(s) kept their VIPs"),
                "upgrade {u}: {out}\n{}",
                n0.child.log()
            );
            std::thread::sleep(Duration::from_millis(150));
        }
        for u in 1..=5 {
            let out = ok(&vipctl(&n1, &["upgrade"]));
            assert!(
                out.contains("1 instance(s) resumed"),
                "backup upgrade {u}: {out}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        pinger.join().unwrap()
    });
    let (s0, s1) = (status(&n0), status(&n1));
    let log = n0.child.log();
    assert_eq!(s0.instances[0].state, "MASTER", "{log}");
    assert_eq!(s1.instances[0].state, "BACKUP");
    assert_eq!(
        s1.instances[0].counters.transitions,
        t_backup,
        "the backup left BACKUP:\n{}",
        n1.child.log()
    );
    assert_eq!(s0.instances[0].counters.transitions, t_master, "{log}");
    assert_eq!(s0.pid, n0.child.pid(), "the PID stays");
    assert_eq!(s0.upgrade.as_ref().map(|u| u.generation), Some(20));
    assert_eq!(s1.upgrade.as_ref().map(|u| u.generation), Some(5));
    assert_eq!(s0.started_unix_ms, s0.started_unix_ms.max(1));
    assert!(
        vip_changed(&mut w0, t0, vip).is_empty(),
        "the VIP moved on the master: {:?}\n{log}",
        vip_changed(&mut w0, t0, vip)
    );
    assert!(
        vip_changed(&mut w1, t0, vip).is_empty(),
        "the VIP appeared on the backup: {:?}",
        vip_changed(&mut w1, t0, vip)
    );
    assert!(
        sent > 100 && lost == 0,
        "pings lost: {lost} of {sent}\n{log}"
    );
    assert!(lan.host(0).has_addr("eth0", vip).unwrap());
    assert!(!lan.host(1).has_addr("eth0", vip).unwrap());
    assert!(log.contains("updated in place"), "{log}");
    assert!(log.contains("vipd upgraded in place"), "{log}");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn bad_upgrade_targets_are_refused_and_the_old_binary_keeps_running() {
    let (_lan, dir, _vip, n0, _n1) = pair("upg-bad");
    let before = status(&n0);
    let script = |name: &str, body: &str, mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        p
    };
    let refused = |binary: &Path, why: &str| {
        let out = vipctl(&n0, &["upgrade", "--binary", binary.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{binary:?} was accepted");
        assert!(err.contains(why), "{binary:?}: {err}");
    };
    refused(&dir.path().join("missing"), "No such file");
    refused(&script("noexec", "exit 0", 0o644), "not executable");
    refused(&script("writable", "exit 0", 0o777), "group or others");
    refused(
        &script("broken", "echo 'config: nope' >&2; exit 1", 0o755),
        "cannot run this configuration",
    );
    refused(
        &script("future", "echo 'handover-formats: 99'", 0o755),
        "cannot take over this one's state",
    );
    // Nothing was handed over: the same process, still master, no transition.
    let after = status(&n0);
    assert_eq!(after.pid, before.pid);
    assert_eq!(after.started_unix_ms, before.started_unix_ms);
    assert_eq!(after.upgrade, None);
    assert_eq!(after.instances[0].state, "MASTER");
    assert_eq!(
        after.instances[0].counters.transitions,
        before.instances[0].counters.transitions
    );
    let log = n0.child.log();
    assert!(log.contains("upgrade refused"), "{log}");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn a_corrupt_handed_over_state_means_a_normal_start() {
    let lan = Lan::new("upg-corrupt", 1).unwrap();
    let dir = TempDir::new("upg-corrupt");
    let vip = lan.vip(false);
    std::fs::write(dir.path().join("w0"), "1").unwrap();
    let cfg = dir.path().join("h0.toml");
    std::fs::write(&cfg, config(dir.path(), 0, 95, &vip.to_string(), 0)).unwrap();
    // Truncated JSON on a pipe as descriptor 3, as an upgrade would pass it.
    let child = lan
        .host(0)
        .spawn(&[
            "bash",
            "-c",
            r#"exec "$0" --config "$1" --handover-fd 3 3< <(printf '{"format":1,"pid":')"#,
            env!("CARGO_BIN_EXE_vipd"),
            cfg.to_str().unwrap(),
        ])
        .unwrap();
    let node = Node {
        cfg,
        sock: dir.path().join("h0.sock"),
        child,
    };
    common::wait_until(Duration::from_secs(5), || node.sock.exists()).expect("started");
    wait_state(&node, "MASTER");
    let log = node.child.log();
    assert!(
        log.contains("handed-over state is ignored (corrupt or truncated"),
        "{log}"
    );
    assert_eq!(status(&node).upgrade, None);
    assert!(lan.host(0).has_addr("eth0", vip).unwrap());
}
