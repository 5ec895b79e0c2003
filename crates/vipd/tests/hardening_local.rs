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
    common::vipctl_status(&a.sock, &a.child)
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

/// Runs `script` with python3 as `nobody` (group `nogroup`, the control group) in `host`.
fn python_as_nobody(lan: &Lan, script: &str) -> ChildGuard {
    lan.host(0)
        .spawn(&[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .unwrap()
}

fn vipctl_status_as_root(sock: &Path) -> (bool, Duration, String) {
    let t0 = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(sock)
        .args(["status", "--json"])
        .output()
        .unwrap();
    (
        out.status.success(),
        t0.elapsed(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A control_group member opens 200 connections, sends a request on each and never reads
/// (and pipelines 10,000 requests on one more): it gets its share of slots, the rest are
/// refused and logged, and root's vipctl keeps working throughout. A regular file at the
/// control_socket path is never deleted: vipd refuses it and runs without a socket.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn a_control_group_member_cannot_keep_root_out() {
    let lan = Lan::new("ctlslots", 1).unwrap();
    let dir = TempDir::new("ctlslots");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let vip = lan.vip(false);
    let cfg = write_config(dir.path(), 0, 150, vip, "control_group = \"nogroup\"", "");
    let a = Agent {
        child: common::start_vipd(lan.host(0), &cfg),
        sock: dir.path().join("h0.sock"),
    };
    wait_state(&a, "MASTER");
    let script = format!(
        r#"
import socket, time, json
req = (json.dumps({{"v": 1, "cmd": "status"}}) + "\n").encode()
held = []
for i in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("{sock}")
    try:
        s.send(req)
    except OSError:
        pass
    held.append(s)
p = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
p.connect("{sock}")
p.setblocking(False)
for i in range(10000):
    try:
        p.send(req)
    except OSError:
        break
held.append(p)
print("attacker ready", flush=True)
time.sleep(30)
"#,
        sock = a.sock.display(),
    );
    let attacker = python_as_nobody(&lan, &script);
    common::wait_until(Duration::from_secs(10), || {
        attacker.log().contains("attacker ready")
    })
    .unwrap_or_else(|| panic!("attacker never ready\n{}", attacker.log()));
    // Root is never kept out while the attacker holds its connections.
    for _ in 0..10 {
        let (ok, took, err) = vipctl_status_as_root(&a.sock);
        assert!(ok, "root locked out: {err}\n{}", a.child.log());
        assert!(took < Duration::from_secs(2), "root waited {took:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = a.child.log();
    assert!(
        log.contains("refused a connection of uid 65534"),
        "refusals are logged\n{log}"
    );
    assert_eq!(status(&a).instances[0].state, "MASTER");
    drop(attacker);

    // A regular file where the socket should be: kept, and vipd runs without a socket.
    let file = dir.path().join("precious");
    std::fs::write(&file, "keep me\n").unwrap();
    let cfg = dir.path().join("file.toml");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(dir.path().join("h0.toml"))
            .unwrap()
            .replace(&a.sock.display().to_string(), &file.display().to_string()),
    )
    .unwrap();
    drop(a);
    let b = common::start_vipd(lan.host(0), &cfg);
    common::wait_until(Duration::from_secs(5), || {
        b.log().contains("exists and is not a socket")
    })
    .unwrap_or_else(|| panic!("no refusal logged\n{}", b.log()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me\n");
}

/// A server that is not vipd (another user's) on the socket path: vipctl refuses to trust
/// it before sending anything.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vipctl_rejects_a_fake_server() {
    let lan = Lan::new("ctlfake", 1).unwrap();
    let dir = TempDir::new("ctlfake");
    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        &open_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let sock = open_dir.join("vipd.sock");
    let got = open_dir.join("got");
    let script = format!(
        r#"
import socket, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("{sock}")
s.listen(4)
while True:
    c, _ = s.accept()
    data = c.recv(4096)
    if data:
        open("{got}", "w").write("request received")
    c.send((json.dumps({{"v": 1, "ok": True, "message": "all fine, trust me"}}) + "\n").encode())
    c.close()
"#,
        sock = sock.display(),
        got = got.display()
    );
    let fake = python_as_nobody(&lan, &script);
    common::wait_until(Duration::from_secs(5), || sock.exists())
        .unwrap_or_else(|| panic!("fake server not up\n{}", fake.log()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(&sock)
        .args(["maintenance", "on"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "vipctl trusted the fake server");
    assert!(err.contains("refusing to trust the server"), "{err}");
    assert!(err.contains("uid 65534"), "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!got.exists(), "vipctl sent its request to the fake server");
}

/// Under systemd's watchdog (WATCHDOG_USEC), the event loop sends WATCHDOG=1 at half the
/// timeout; a vipd whose loop stops (here SIGSTOP) stops sending, so systemd restarts it.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn the_event_loop_feeds_systemds_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let lan = Lan::new("watchdog", 1).unwrap();
    let dir = TempDir::new("watchdog");
    let cfg = write_config(dir.path(), 0, 150, lan.vip(false), "", "");
    let path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let env_sock = format!("NOTIFY_SOCKET={}", path.display());
    let child = lan
        .host(0)
        .spawn(&[
            "env",
            &env_sock,
            "WATCHDOG_USEC=400000",
            env!("CARGO_BIN_EXE_vipd"),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .unwrap();
    let pings = |d: Duration| {
        let t0 = Instant::now();
        let mut n = 0;
        let mut buf = [0u8; 4096];
        while t0.elapsed() < d {
            if let Ok(len) = notify.recv(&mut buf) {
                n += String::from_utf8_lossy(&buf[..len])
                    .lines()
                    .filter(|l| *l == "WATCHDOG=1")
                    .count();
            }
        }
        n
    };
    let n = pings(Duration::from_millis(1500));
    assert!(
        n >= 5,
        "{n} watchdog pings in 1.5 s at a 400 ms timeout\n{}",
        child.log()
    );
    child.signal(nix::sys::signal::Signal::SIGSTOP).unwrap();
    let _ = pings(Duration::from_millis(150));
    let stopped = pings(Duration::from_millis(800));
    child.signal(nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(stopped, 0, "pings while the loop was stopped");
    assert!(
        child.log().contains("systemd watchdog on"),
        "{}",
        child.log()
    );
}

/// `startup_delay` (keepalived's `vrrp_startup_delay`): nothing is advertised and no VIP is
/// taken before it has run out; then the instance starts as usual.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn startup_delay_holds_the_state_machines() {
    let lan = Lan::new("stdelay", 1).unwrap();
    let dir = TempDir::new("stdelay");
    let vip = lan.vip(false);
    let cfg = write_config(dir.path(), 0, 150, vip, "startup_delay = \"1500ms\"", "");
    let t0 = Instant::now();
    let child = common::start_vipd(lan.host(0), &cfg);
    let took = common::wait_until(Duration::from_secs(5), || {
        lan.host(0).has_addr("eth0", vip).unwrap()
    })
    .unwrap_or_else(|| panic!("never took the VIP\n{}", child.log()));
    let since_start = t0.elapsed();
    assert!(
        since_start >= Duration::from_millis(1500),
        "the VIP came after {since_start:?}, before the 1.5 s startup delay ran out\n{}",
        child.log()
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(
        child.log().contains("startup_delay: waiting 1.5s"),
        "{}",
        child.log()
    );
}
