//! vipctl against agents in network namespaces: status (table and JSON), failover drills
//! (handover and simulated crash), maintenance, reload (SIGHUP and vipctl) while traffic
//! flows, metrics, and control-socket permissions. Needs root (scripts/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd::ctl::Status;
use vipd_lab::watch::AddrWatcher;
use vipd_proto::{self as proto, Version};

struct Node {
    cfg: PathBuf,
    sock: PathBuf,
    child: ChildGuard,
}

fn instance(name: &str, vrid: u8, priority: u8, vip: &str) -> String {
    format!(
        r#"
[[instance]]
name = "{name}"
interface = "eth0"
vrid = {vrid}
priority = {priority}
advert_interval = "100ms"
vips = ["{vip}/24"]
"#
    )
}

fn global(dir: &Path, i: usize, extra: &str) -> String {
    format!(
        "[global]\ncontrol_socket = \"{}/h{i}.sock\"\ngarp_master_delay = \"1s\"\n{extra}\n",
        dir.display()
    )
}

fn start(lan: &Lan, dir: &TempDir, i: usize, text: &str) -> Node {
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
    common::wait_until(Duration::from_secs(3), || sock.exists()).expect("control socket appears");
    Node { cfg, sock, child }
}

fn vipctl(lan: &Lan, i: usize, node: &Node, args: &[&str]) -> Output {
    let mut full = vec![
        env!("CARGO_BIN_EXE_vipctl"),
        "--socket",
        node.sock.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    lan.host(i).exec(&full).unwrap()
}

fn status(lan: &Lan, i: usize, node: &Node) -> Status {
    let out = vipctl(lan, i, node, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn state(lan: &Lan, i: usize, node: &Node, inst: &str) -> String {
    status(lan, i, node)
        .instances
        .into_iter()
        .find(|x| x.name == inst)
        .map(|x| x.state)
        .unwrap_or_default()
}

fn wait_state(lan: &Lan, i: usize, node: &Node, inst: &str, want: &str) {
    common::wait_until(Duration::from_secs(5), || state(lan, i, node, inst) == want)
        .unwrap_or_else(|| {
            panic!(
                "h{i} {inst} never reached {want}: {}\n{}",
                state(lan, i, node, inst),
                node.child.log()
            )
        });
}

fn pair(tag: &str) -> (Lan, TempDir, String, Node, Node) {
    let mut lan = Lan::new(tag, 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new(tag);
    let vip = lan.vip(false).to_string();
    let n0 = start(
        &lan,
        &dir,
        0,
        &(global(dir.path(), 0, "") + &instance("VI_1", 51, 150, &vip)),
    );
    let n1 = start(
        &lan,
        &dir,
        1,
        &(global(dir.path(), 1, "") + &instance("VI_1", 51, 100, &vip)),
    );
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    wait_state(&lan, 1, &n1, "VI_1", "BACKUP");
    (lan, dir, vip, n0, n1)
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn status_shows_state_master_vips_and_counters() {
    let (lan, _dir, vip, n0, n1) = pair("ctlstatus");
    let s0 = status(&lan, 0, &n0);
    let i0 = &s0.instances[0];
    assert_eq!(i0.state, "MASTER");
    assert_eq!(i0.base_priority, 150);
    assert_eq!(i0.effective_priority, 150);
    assert_eq!(i0.vips[0].address, format!("{vip}/24"));
    assert!(i0.vips[0].present, "VIP reported present on the master");
    assert!(i0.counters.adverts_sent > 0);
    assert_eq!(i0.reason, "master-down");
    assert!(!i0.transitions.is_empty());
    let s1 = status(&lan, 1, &n1);
    let i1 = &s1.instances[0];
    assert_eq!(i1.state, "BACKUP");
    assert!(!i1.vips[0].present);
    let m = i1.master.as_ref().expect("backup knows its master");
    assert_eq!(m.address, lan.host(0).v4.to_string());
    assert_eq!(m.priority, 150);
    assert!(i1.counters.adverts_received > 0);
    assert_eq!(i1.master_advert_interval_ms, 100);
    // The table.
    let out = vipctl(&lan, 0, &n0, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("VI_1") && text.contains("MASTER") && text.contains(&format!("{vip}/24*")),
        "{text}"
    );
    // The backup knows since when h0 is master; counters of real takeovers.
    assert!(i1.master_since_unix_ms.is_some());
    assert_eq!(i0.counters.became_master, 1);
    assert!(i1.counters.master_changes >= 1);
    // `--json` has every field docs/control-protocol.md documents, and no other (null when
    // empty), at the top level, per instance, per tracker-less instance's counters.
    let out = vipctl(&lan, 1, &n1, &["status", "--json"]);
    let live: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/control-protocol.md"),
    )
    .unwrap();
    let example = doc
        .split("### `status`\n```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the status example");
    let example: serde_json::Value = serde_json::from_str(example).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&live), keys(&example), "top-level fields");
    assert_eq!(
        keys(&live["instances"][0]),
        keys(&example["instances"][0]),
        "instance fields"
    );
    let (lc, ec) = (
        &live["instances"][0]["counters"],
        &example["instances"][0]["counters"],
    );
    assert_eq!(keys(lc), keys(ec), "counters");
    assert!(live["instances"][0]["fault"].is_null());
    assert!(live["instances"][0]["last_drill"].is_null());
    // -j is global; an unknown instance is exit status 4 for every subcommand.
    let out = vipctl(&lan, 1, &n1, &["-j", "status", "VI_1"]);
    assert!(out.status.success());
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
    for args in [
        &["status", "NOPE"][..],
        &["maintenance", "on", "NOPE"][..],
        &["drill", "failover", "NOPE", "--yes"][..],
    ] {
        let out = vipctl(&lan, 1, &n1, args);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("no such instance `NOPE`"));
    }
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn drill_handover_and_crash_report_timeline_within_bound() {
    let (lan, _dir, vip, n0, n1) = pair("ctldrill");
    // Without --yes and without a terminal to ask on, nothing moves.
    let out = vipctl(&lan, 0, &n0, &["drill", "failover"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass --yes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&lan, 0, &n0).instances[0].state, "MASTER");
    let out = vipctl(&lan, 0, &n0, &["drill", "failover", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("priority-0") && text.contains("new master") && text.contains("PASS"),
        "{text}"
    );
    // Restored: h0 (higher priority, preempting) takes the VIP back.
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    let ip: IpAddr = vip.parse().unwrap();
    common::wait_until(Duration::from_secs(3), || {
        lan.host(0).has_addr("eth0", ip).unwrap()
    })
    .unwrap();
    // Crash mode measures detection: total within Master_Down_Interval of the backup.
    let out = vipctl(
        &lan,
        0,
        &n0,
        &["drill", "failover", "--crash", "--json", "--yes"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let d: vipd::ctl::DrillReport = serde_json::from_slice(&out.stdout).unwrap();
    let bound = proto::master_down_interval(Version::V3, 100, Duration::from_millis(100));
    assert!(d.crash && d.ok);
    assert!((d.bound_ms - bound.as_secs_f64() * 1e3).abs() < 0.01);
    assert!(d.total_ms.unwrap() <= d.bound_ms + 50.0);
    assert_eq!(d.new_master.unwrap().address, lan.host(1).v4.to_string());
    // Kept in status.
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    let s = status(&lan, 0, &n0);
    assert!(s.instances[0].last_drill.as_ref().is_some_and(|d| d.crash));
    // A drill on the backup is refused with a clear message.
    let out = vipctl(&lan, 1, &n1, &["drill", "failover", "--yes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run the drill on the master"));
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn maintenance_drains_and_returns() {
    let (lan, _dir, _vip, n0, n1) = pair("ctlmaint");
    let out = vipctl(&lan, 0, &n0, &["maintenance", "on", "VI_1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_state(&lan, 1, &n1, "VI_1", "MASTER");
    std::thread::sleep(Duration::from_millis(500));
    let s = status(&lan, 0, &n0);
    assert_eq!(s.instances[0].state, "BACKUP");
    assert!(s.instances[0].maintenance, "drained instance stays backup");
    let out = vipctl(&lan, 0, &n0, &["maintenance", "off"]);
    assert!(out.status.success());
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    let out = vipctl(&lan, 0, &n0, &["maintenance", "on", "NOPE"]);
    assert!(!out.status.success());
}

/// `vipctl reload --dry-run` and `vipd --check --against-running` say per instance what a
/// reload would do and change nothing; the reload then behaves as they said: settings are
/// updated in place (the master stays master, the peer sees nothing), and a change that
/// makes the instance another virtual router restarts it (the VIP moves and comes back).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn reload_dry_run_says_what_would_move() {
    let (lan, dir, vip, n0, n1) = pair("ctlplan");
    let text = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let out = vipctl(&lan, 0, &n0, &["reload", "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text(&out).contains("VI_1: unchanged"), "{}", text(&out));
    assert!(text(&out).contains("moves no VIP"), "{}", text(&out));
    // A new priority, preempt_delay and source address are taken in place; VI_2 is new.
    let vip2 = vip.replace(".100", ".102");
    let second = lan.addr_v4(50);
    lan.host(0)
        .ip(&["addr", "add", &format!("{second}/24"), "dev", "eth0"])
        .unwrap();
    let in_place = global(dir.path(), 0, "")
        + &instance("VI_1", 51, 160, &vip).replace(
            "vips =",
            &format!("preempt_delay = \"2s\"\nsource_address = \"{second}\"\nvips ="),
        )
        + &instance("VI_2", 52, 150, &vip2);
    std::fs::write(&n0.cfg, &in_place).unwrap();
    let peer_before = status(&lan, 1, &n1).instances[0].counters.transitions;
    let own_before = status(&lan, 0, &n0).instances[0].counters.transitions;
    let out = vipctl(&lan, 0, &n0, &["reload", "--dry-run"]);
    assert!(out.status.success());
    let plan = text(&out);
    assert!(
        plan.contains("VI_1: updated in place: priority, preempt_delay, source_address"),
        "{plan}"
    );
    assert!(plan.contains("VI_2: added"), "{plan}");
    assert!(plan.contains("moves no VIP"), "{plan}");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_vipd"))
        .args(["--check", "--against-running"])
        .arg(&n0.cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        text(&check).contains("VI_1: updated in place: priority, preempt_delay, source_address"),
        "{}",
        text(&check)
    );
    // Nothing changed.
    let s = status(&lan, 0, &n0);
    assert_eq!(s.instances.len(), 1);
    assert_eq!(s.instances[0].base_priority, 150);
    // The reload does what the plan said: VI_1 stays master with its new priority.
    let out = vipctl(&lan, 0, &n0, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text(&out).contains("1 updated in place"), "{}", text(&out));
    std::thread::sleep(Duration::from_millis(500));
    let s = status(&lan, 0, &n0);
    let vi1 = s.instances.iter().find(|i| i.name == "VI_1").unwrap();
    assert_eq!(vi1.state, "MASTER");
    assert_eq!(vi1.base_priority, 160);
    assert_eq!(vi1.counters.transitions, own_before, "no transition here");
    let peer = status(&lan, 1, &n1);
    assert_eq!(
        peer.instances[0].counters.transitions, peer_before,
        "the peer saw nothing"
    );
    assert_eq!(
        peer.instances[0].master.as_ref().map(|m| m.address.clone()),
        Some(second.to_string()),
        "the peer hears the master from its new source address"
    );
    assert!(
        n0.child.log().contains("updated in place"),
        "{}",
        n0.child.log()
    );
    // Unicast peers make VI_1 another virtual router on the wire: a restart, said before.
    let peer = lan.host(1).v4;
    let reopen = global(dir.path(), 0, "")
        + &instance("VI_1", 51, 160, &vip).replace(
            "vips =",
            &format!(
                "preempt_delay = \"2s\"\nsource_address = \"{second}\"\nunicast_peers = [\"{peer}\"]\nvips ="
            ),
        )
        + &instance("VI_2", 52, 150, &vip2);
    std::fs::write(&n0.cfg, &reopen).unwrap();
    let out = vipctl(&lan, 0, &n0, &["reload", "--dry-run"]);
    let plan = text(&out);
    assert!(
        plan.contains("VI_1: restart: the VIP will move (unicast_peers changed;"),
        "{plan}"
    );
    assert!(plan.contains("VI_2: unchanged"), "{plan}");
    let out = vipctl(&lan, 0, &n0, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    common::wait_until(Duration::from_secs(5), || {
        status(&lan, 1, &n1).instances[0].counters.transitions >= peer_before + 2
    })
    .expect("the peer took VI_1 over during the restart, as the plan said");
}

/// `vipctl maintenance on`, then a restart: the node stays drained (the peer keeps the VIP),
/// status says so, and `maintenance off` clears it for good. A corrupt state file is ignored
/// with a warning and the node starts normally.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn maintenance_survives_a_restart() {
    let mut lan = Lan::new("ctlpersist", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("ctlpersist");
    let vip = lan.vip(false).to_string();
    let state = dir.path().join("state0");
    let text0 = global(
        dir.path(),
        0,
        &format!("state_directory = \"{}\"", state.display()),
    ) + &instance("VI_1", 51, 150, &vip);
    let mut n0 = start(&lan, &dir, 0, &text0);
    let n1 = start(
        &lan,
        &dir,
        1,
        &(global(dir.path(), 1, "") + &instance("VI_1", 51, 100, &vip)),
    );
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    let out = vipctl(&lan, 0, &n0, &["maintenance", "on", "VI_1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_state(&lan, 1, &n1, "VI_1", "MASTER");
    let file = state.join("maintenance.json");
    assert!(std::fs::read_to_string(&file).unwrap().contains("VI_1"));
    let restart = |n: &mut Node| {
        n.child.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
        common::wait_until(Duration::from_secs(5), || n.child.try_wait().is_some())
            .expect("vipd stops on SIGTERM");
        let _ = std::fs::remove_file(&n.sock);
        start(&lan, &dir, 0, &std::fs::read_to_string(&n.cfg).unwrap())
    };
    n0 = restart(&mut n0);
    // Drained across the restart: backup, in maintenance, and the peer keeps the VIP.
    std::thread::sleep(Duration::from_millis(1500));
    let s = status(&lan, 0, &n0);
    assert_eq!(s.instances[0].state, "BACKUP", "{}", n0.child.log());
    assert!(s.instances[0].maintenance);
    assert_eq!(status(&lan, 1, &n1).instances[0].state, "MASTER");
    assert!(
        n0.child
            .log()
            .contains("kept in maintenance across the restart")
    );
    // Off: the master takes its VIP back, and the file no longer holds it.
    let out = vipctl(&lan, 0, &n0, &["maintenance", "off"]);
    assert!(out.status.success());
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("VI_1"));
    // A corrupt state file: a warning, and a normal start (it becomes master again).
    std::fs::write(&file, "{\"format\": 1, \"maintenance\": [\"VI_1\"").unwrap();
    n0 = restart(&mut n0);
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    assert!(
        n0.child
            .log()
            .contains("state file is corrupt or truncated"),
        "{}",
        n0.child.log()
    );
}

/// Pings `ip` from the client every 20 ms until `stop`; returns (sent, lost).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn reload_keeps_unchanged_vips_and_rejects_broken_configs() {
    let (lan, dir, vip, n0, _n1) = pair("ctlreload");
    let ip: IpAddr = vip.parse().unwrap();
    let mut watch = AddrWatcher::start(lan.host(0).name()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let t0 = Instant::now();
    let vip2 = lan.addr_v4(101).to_string();
    let (sent, lost) = std::thread::scope(|s| {
        let pinger = s.spawn(|| common::ping_loop(&lan, ip, &stop));
        std::thread::sleep(Duration::from_millis(300));
        // Add a second instance via vipctl reload.
        let text = global(dir.path(), 0, "")
            + &instance("VI_1", 51, 150, &vip)
            + &instance("VI_2", 52, 150, &vip2);
        std::fs::write(&n0.cfg, text).unwrap();
        let out = vipctl(&lan, 0, &n0, &["reload"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let msg = String::from_utf8_lossy(&out.stdout);
        assert!(
            msg.contains("1 unchanged") && msg.contains("1 added"),
            "{msg}"
        );
        // A broken file is refused and the running configuration kept.
        std::fs::write(&n0.cfg, "[[instance]]\nname = 3\n").unwrap();
        let out = vipctl(&lan, 0, &n0, &["reload"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("running one is kept"));
        // The refusal is in the daemon's log too, with who asked and the error's place.
        common::wait_until(Duration::from_secs(3), || {
            let log = n0.child.log();
            log.contains("reload refused") && log.contains("vipctl") && log.contains(":2:8: error")
        })
        .unwrap_or_else(|| panic!("refused reload not logged:\n{}", n0.child.log()));
        // SIGHUP reloads too: drop VI_2 again.
        let text = global(dir.path(), 0, "") + &instance("VI_1", 51, 150, &vip);
        std::fs::write(&n0.cfg, text).unwrap();
        n0.child.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
        common::wait_until(Duration::from_secs(3), || {
            status(&lan, 0, &n0).instances.len() == 1
        })
        .expect("SIGHUP reload removed VI_2");
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        pinger.join().unwrap()
    });
    assert!(
        watch
            .wait(t0, ip, false, Duration::from_millis(10))
            .is_none(),
        "the unchanged VIP left the master during reloads"
    );
    assert!(
        sent > 10 && lost == 0,
        "pings lost during reload: {lost}/{sent}"
    );
    let log = n0.child.log();
    assert!(log.contains("configuration reloaded"));
    assert!(log.contains("SIGHUP"), "{log}");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn metrics_and_permissions() {
    let mut lan = Lan::new("ctlperm", 1).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("ctlperm");
    // Let `nobody` reach the socket directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let vip = lan.vip(false).to_string();
    let extra = "control_group = \"nogroup\"\nmetrics_listen = \"127.0.0.1:9488\"";
    let n0 = start(
        &lan,
        &dir,
        0,
        &(global(dir.path(), 0, extra) + &instance("VI_1", 51, 150, &vip)),
    );
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    // Metrics over HTTP inside the namespace (a snapshot published every second: the
    // state shows within about a second).
    let scrape = || {
        lan.host(0)
            .run(|| {
                let mut s = std::net::TcpStream::connect("127.0.0.1:9488").unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut body = String::new();
                s.read_to_string(&mut body).unwrap();
                body
            })
            .unwrap()
    };
    let master_line =
        r#"vipd_instance_state{vrrp_instance="VI_1",vrid="51",interface="eth0",state="MASTER"} 1"#;
    let mut body = String::new();
    common::wait_until(Duration::from_secs(3), || {
        body = scrape();
        body.contains(master_line)
    });
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(master_line), "{body}");
    // HEAD: the same status line and headers, no body.
    let head = lan
        .host(0)
        .run(|| {
            let mut s = std::net::TcpStream::connect("127.0.0.1:9488").unwrap();
            s.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        })
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "a body after HEAD: {head}");
    assert!(body.contains("vipd_adverts_sent_total"));
    // A member of the control group may read but not change. (A copy of vipctl that
    // `nobody` can execute, whatever the permissions of the build directory.)
    let exe = dir.path().join("vipctl");
    std::fs::copy(env!("CARGO_BIN_EXE_vipctl"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sock = n0.sock.to_str().unwrap();
    let as_nobody = |args: &[&str]| {
        let mut full = vec![
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            exe.to_str().unwrap(),
            "--socket",
            sock,
        ];
        full.extend_from_slice(args);
        lan.host(0).exec(&full).unwrap()
    };
    let out = as_nobody(&["status", "--json"]);
    assert!(
        out.status.success(),
        "group member can read status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&["maintenance", "on"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the group, nobody cannot even connect (socket mode 0600 would apply).
}

#[test]
fn import_keepalived_prints_toml_and_notes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .args([
            "import-keepalived",
            "../../tests/data/keepalived/lvs-director.conf",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    let notes = String::from_utf8_lossy(&out.stderr);
    // LVS is not converted, and says so on stderr and in the file.
    assert!(notes.contains("NOT CONVERTED: virtual_server"), "{notes}");
    assert!(
        toml.contains("# NOT CONVERTED:") && toml.contains("virtual_server"),
        "{toml}"
    );
    // The rest is a valid vipd configuration.
    let loaded = vipd_config::parse_str(&toml, Path::new("converted.toml"))
        .unwrap_or_else(|d| panic!("{d}\n{toml}"));
    assert!(!loaded.config.instances.is_empty());
    // A missing file is a clear error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .args(["import-keepalived", "/nonexistent/keepalived.conf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/keepalived.conf"));
}

/// A keepalived.conf whose security cannot be carried (an unknown auth_type) is refused with status 3
/// and no configuration on stdout, unless --accept-weaker.
#[test]
fn import_keepalived_refuses_a_weaker_result() {
    let dir = TempDir::new("importah");
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(
        &conf,
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n version 2\n authentication {\n  auth_type XYZ\n  auth_pass secret\n }\n virtual_ipaddress { 10.0.0.100/24 }\n}\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
            .arg("import-keepalived")
            .args(extra)
            .arg(&conf)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("SECURITY NOT CONVERTED: auth_type"), "{err}");
    assert!(err.contains("--accept-weaker"), "{err}");
    let out = run(&["--accept-weaker"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("# SECURITY NOT CONVERTED:"), "{toml}");
    vipd_config::parse_str(&toml, Path::new("converted.toml"))
        .unwrap_or_else(|d| panic!("{d}\n{toml}"));
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn status_lists_each_trackers_contribution() {
    let lan = Lan::new("ctltrack", 1).unwrap();
    let dir = TempDir::new("ctltrack");
    let vip = lan.vip(false).to_string();
    let file = dir.path().join("weight");
    std::fs::write(&file, "0\n").unwrap();
    let text = global(dir.path(), 0, "")
        + &format!(
            "[[track_file]]\nname = \"drain\"\npath = \"{}\"\nweight = -10\n",
            file.display()
        )
        + &instance("VI_1", 51, 150, &vip)
        + "track_files = [\"drain\"]\n";
    let n0 = start(&lan, &dir, 0, &text);
    wait_state(&lan, 0, &n0, "VI_1", "MASTER");
    std::fs::write(&file, "3\n").unwrap();
    common::wait_until(Duration::from_secs(3), || {
        status(&lan, 0, &n0).instances[0].effective_priority == 120
    })
    .unwrap_or_else(|| {
        panic!(
            "{:?}\n{}",
            status(&lan, 0, &n0).instances[0],
            n0.child.log()
        )
    });
    let i = &status(&lan, 0, &n0).instances[0];
    assert_eq!(i.priority_adjust, -30);
    assert_eq!(i.trackers.len(), 1);
    let t = &i.trackers[0];
    assert_eq!(
        (t.name.as_str(), t.kind.as_str(), t.weight, t.contribution),
        ("drain", "file", -10, -30)
    );
    let out = vipctl(&lan, 0, &n0, &["status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("150->120") && table.contains("contributes -30"),
        "{table}"
    );
}
