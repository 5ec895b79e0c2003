//! The local adversaries of docs/security.md's threat model: a non-root user of the host
//! (metrics endpoint, control socket) and a hostile health script. None of them may move
//! the VIP or stop vipd. Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd::ctl::Status;

struct Agent {
    child: ChildGuard,
    sock: PathBuf,
}

fn write_config(
    dir: &Path,
    i: usize,
    priority: u8,
    vip: IpAddr,
    global: &str,
    inst: &str,
) -> PathBuf {
    let sock = dir.join(format!("h{i}.sock"));
    let cfg = dir.join(format!("h{i}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"[global]
control_socket = "{sock}"
garp_master_delay = "0s"
{global}

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 71
priority = {priority}
advert_interval = "100ms"
vips = ["{vip}/24"]
{inst}
"#,
            sock = sock.display()
        ),
    )
    .unwrap();
    cfg
}

fn status(a: &Agent) -> Status {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(&a.sock)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vipctl status: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        a.child.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_state(a: &Agent, state: &str) {
    common::wait_until(Duration::from_secs(5), || {
        a.sock.exists() && status(a).instances[0].state == state
    })
    .unwrap_or_else(|| panic!("never {state}\n{}", a.child.log()));
}

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// 1100 idle connections to the metrics endpoint, held for 20 s, against a master whose
/// trackers (a script, an HTTP check, a file) would move the VIP if they failed, under
/// LimitNOFILE=1024 (prlimit, as the unit sets it): no transition, no tracker change, and
/// metrics are served again once the flood is over.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn idle_metrics_connections_cannot_exhaust_vipd() {
    let lan = Lan::new("metflood", 2).unwrap();
    let dir = TempDir::new("metflood");
    let vip = lan.vip(false);
    let weight = dir.path().join("weight");
    std::fs::write(&weight, "0\n").unwrap();
    // A tiny HTTP server for track_http, in h0's namespace.
    let http = lan
        .host(0)
        .spawn(&[
            "python3",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "18080",
        ])
        .unwrap();
    common::wait_until(Duration::from_secs(5), || {
        lan.host(0)
            .run(|| std::net::TcpStream::connect("127.0.0.1:18080").is_ok())
            .unwrap()
    })
    .expect("http server");
    let global0 = format!(
        r#"metrics_listen = "127.0.0.1:9489"

[[track_script]]
name = "chk"
command = ["/bin/true"]
interval = "200ms"
weight = -60

[[track_http]]
name = "web"
url = "http://127.0.0.1:18080/"
interval = "200ms"
weight = -60

[[track_file]]
name = "w"
path = "{}"
"#,
        weight.display()
    );
    let cfg0 = write_config(
        dir.path(),
        0,
        150,
        vip,
        &global0,
        "track_scripts = [\"chk\"]\ntrack_http = [\"web\"]\ntrack_files = [\"w\"]",
    );
    let cfg1 = write_config(dir.path(), 1, 100, vip, "", "");
    let m = Agent {
        child: lan
            .host(0)
            .spawn(&[
                "prlimit",
                "--nofile=1024:1024",
                env!("CARGO_BIN_EXE_vipd"),
                "--config",
                cfg0.to_str().unwrap(),
            ])
            .unwrap(),
        sock: dir.path().join("h0.sock"),
    };
    let b = Agent {
        child: common::start_vipd(lan.host(1), &cfg1),
        sock: dir.path().join("h1.sock"),
    };
    wait_state(&m, "MASTER");
    wait_state(&b, "BACKUP");
    common::wait_until(Duration::from_secs(5), || {
        status(&m).instances[0].trackers.iter().all(|t| t.up)
    })
    .expect("trackers up");
    let before = status(&m).instances[0].counters.transitions;
    let changes_before = m.child.log().matches("tracker changed").count();
    let body = lan.host(0).run(|| scrape("127.0.0.1:9489")).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");

    // The flood: 1100 connections opened and left idle for 20 s.
    let held = lan
        .host(0)
        .run(|| {
            let lim = nix::sys::resource::Resource::RLIMIT_NOFILE;
            nix::sys::resource::setrlimit(lim, 8192, 8192).unwrap();
            let mut conns = Vec::new();
            for _ in 0..1100 {
                match std::net::TcpStream::connect("127.0.0.1:9489") {
                    Ok(c) => conns.push(c),
                    Err(e) => panic!("connect {}: {e}", conns.len()),
                }
            }
            let t0 = Instant::now();
            let mut checks = 0;
            while t0.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_secs(2));
                checks += 1;
            }
            (conns.len(), checks)
        })
        .unwrap();
    assert_eq!(held.0, 1100);
    let s = status(&m);
    let log = m.child.log();
    assert_eq!(s.instances[0].state, "MASTER", "{log}");
    assert_eq!(
        s.instances[0].counters.transitions, before,
        "a transition\n{log}"
    );
    assert!(
        s.instances[0].trackers.iter().all(|t| t.up),
        "{:?}\n{log}",
        s.instances[0].trackers
    );
    assert!(!log.contains("track script failed"), "{log}");
    assert_eq!(
        log.matches("tracker changed").count(),
        changes_before,
        "a tracker changed during the flood\n{log}"
    );
    assert_eq!(status(&b).instances[0].state, "BACKUP");
    assert!(
        lan.host(0).has_addr("eth0", vip).unwrap() && !lan.host(1).has_addr("eth0", vip).unwrap(),
        "the VIP moved"
    );
    assert!(
        log.contains("connections already open"),
        "refusals are logged\n{log}"
    );
    // Served again once the flood is gone.
    let body = lan.host(0).run(|| scrape("127.0.0.1:9489")).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("vipd_instance_state"), "{body}");
    drop(http);
}
