//! Health tracking on a real network: two vipd agents in network namespaces, each with a
//! tracker; the tracker's failure moves the VIP to the peer within the tracker's bound plus the
//! protocol's, and its recovery moves it back (preemption). Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd_lab::sniff::{Seen, Sniffer};
use vipd_proto::{self as proto, Version};

/// Advert interval of every test here.
const ADVERT: Duration = Duration::from_millis(100);
/// Slack for scheduling on a loaded 2-core machine, on top of computed bounds.
const SLACK: Duration = Duration::from_millis(1500);
/// For waits that are not measured.
const LONG: Duration = Duration::from_secs(20);

fn vip(lan: &Lan, last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, last))
}

/// Writes host `i`'s configuration: one instance VI_1 (vrid 51) at `priority`, plus `extra`
/// (instance keys) and `top` (global/tracker tables, placed before the instance).
fn write_config(
    dir: &Path,
    i: usize,
    vip: IpAddr,
    priority: u8,
    top: &str,
    extra: &str,
) -> PathBuf {
    let text = format!(
        r#"[global]
control_socket = "{dir}/h{i}.sock"
garp_master_delay = "0s"
{top}

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
advert_interval = "{adv}ms"
vips = ["{vip}/24"]
{extra}
"#,
        dir = dir.display(),
        adv = ADVERT.as_millis(),
    );
    write_raw(dir, i, &text)
}

fn write_raw(dir: &Path, i: usize, text: &str) -> PathBuf {
    let path = dir.join(format!("h{i}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn start(lan: &Lan, i: usize, path: &Path) -> ChildGuard {
    common::start_vipd(lan.host(i), path)
}

fn holders(lan: &Lan, vip: IpAddr) -> Vec<usize> {
    (0..lan.hosts().len())
        .filter(|&i| lan.host(i).has_addr("eth0", vip).unwrap())
        .collect()
}

/// Waits until exactly host `want` holds `vip`; returns how long it took.
fn wait_holder(
    lan: &Lan,
    vip: IpAddr,
    want: usize,
    timeout: Duration,
    logs: &[&ChildGuard],
) -> Duration {
    match common::wait_until(timeout, || holders(lan, vip) == vec![want]) {
        Some(d) => d,
        None => {
            for (i, l) in logs.iter().enumerate() {
                eprintln!("---- agent {i} log:\n{}", l.log());
            }
            panic!(
                "expected exactly host {want} to hold {vip} within {timeout:?}; holders now {:?}",
                holders(lan, vip)
            );
        }
    }
}

fn master_down(priority: u8) -> Duration {
    proto::master_down_interval(Version::V3, priority, ADVERT)
}

/// A minimal HTTP server on 127.0.0.1:`port` inside a namespace (loopback there is the
/// host's own). Answers 200 until dropped; then connections are refused.
struct HttpServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    fn start(ns: &str, port: u16) -> HttpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ns = ns.to_string();
        let thread = std::thread::spawn(move || {
            vipd_lab::netns::enter(&ns).unwrap();
            let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).ok();
                        s.set_read_timeout(Some(Duration::from_secs(1))).ok();
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        HttpServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads JSON lines from an events socket in a thread.
struct EventReader {
    rx: std::sync::mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl EventReader {
    fn connect(path: &Path) -> EventReader {
        let stream = common::wait_until(LONG, || path.exists())
            .and_then(|_| std::os::unix::net::UnixStream::connect(path).ok())
            .unwrap_or_else(|| panic!("cannot connect to {}", path.display()));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                let v: serde_json::Value = serde_json::from_str(&line).expect("event is JSON");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        EventReader {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for an event matching `pred` (searching everything seen so far first).
    fn wait(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.seen.iter().find(|v| pred(v)) {
                return v.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => self.seen.push(v),
                Err(_) => panic!("no matching event; seen: {:#?}", self.seen),
            }
        }
    }
}

fn is_transition(v: &serde_json::Value, to: &str) -> bool {
    v["type"] == "transition" && v["to"] == to
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn http_tracker_moves_the_vip_and_back() {
    let lan = Lan::new("trk-http", 2).unwrap();
    let dir = TempDir::new("trk-http");
    let vip = vip(&lan, 100);
    let (interval, fall, rise) = (Duration::from_millis(200), 2u32, 2u32);
    let top = format!(
        r#"[[track_http]]
name = "lb"
url = "http://127.0.0.1:18080/healthz"
interval = "{}ms"
timeout = "150ms"
rise = {rise}
fall = {fall}
weight = -60
"#,
        interval.as_millis()
    );
    let servers: Vec<Option<HttpServer>> = (0..2)
        .map(|i| Some(HttpServer::start(lan.host(i).name(), 18080)))
        .collect();
    let mut servers = servers;
    let p0 = write_config(dir.path(), 0, vip, 150, &top, "track_http = [\"lb\"]");
    let p1 = write_config(dir.path(), 1, vip, 100, &top, "track_http = [\"lb\"]");
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, vip, 0, LONG, &logs);

    // The master's LB dies: after `fall` failed checks its priority drops to 90 < 100.
    servers[0] = None;
    let bound = interval * fall + master_down(100) + SLACK;
    let took = wait_holder(&lan, vip, 1, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");

    // It comes back: after `rise` good checks it is 150 again and preempts.
    servers[0] = Some(HttpServer::start(lan.host(0).name(), 18080));
    let bound = interval * rise + master_down(150) + SLACK;
    let took = wait_holder(&lan, vip, 0, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "failback took {took:?}, bound {bound:?}");
    let log = a0.log();
    assert!(log.contains("tracker changed"), "{log}");
    common::assert_readable_log(&log);
    common::assert_readable_log(&logs[1].log());
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn script_tracker_moves_the_vip_and_back() {
    let lan = Lan::new("trk-script", 2).unwrap();
    let dir = TempDir::new("trk-script");
    let vip = vip(&lan, 100);
    let interval = Duration::from_millis(200);
    // The script runs as `nobody`: the flag files live in a directory it can read.
    let flag = |i: usize| dir.path().join(format!("ok-h{i}"));
    let mk = |i: usize| {
        format!(
            r#"[[track_script]]
name = "chk"
shell = "test -e {}"
interval = "{}ms"
timeout = "1s"
weight = -60
"#,
            flag(i).display(),
            interval.as_millis()
        )
    };
    std::fs::write(flag(0), "").unwrap();
    std::fs::write(flag(1), "").unwrap();
    let p0 = write_config(dir.path(), 0, vip, 150, &mk(0), "track_scripts = [\"chk\"]");
    let p1 = write_config(dir.path(), 1, vip, 100, &mk(1), "track_scripts = [\"chk\"]");
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, vip, 0, LONG, &logs);
    std::fs::remove_file(flag(0)).unwrap();
    let bound = interval + master_down(100) + SLACK;
    let took = wait_holder(&lan, vip, 1, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
    std::fs::write(flag(0), "").unwrap();
    let bound = interval + master_down(150) + SLACK;
    let took = wait_holder(&lan, vip, 0, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "failback took {took:?}, bound {bound:?}");
}

/// Live processes whose command line is exactly `argv`.
fn running(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            !zombie && std::fs::read(format!("/proc/{pid}/cmdline")).ok() == Some(want.clone())
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn hung_script_does_not_stall_adverts() {
    let mut lan = Lan::new("trk-hung", 2).unwrap();
    lan.add_client().unwrap();
    let mut sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
    let dir = TempDir::new("trk-hung");
    let vip = vip(&lan, 100);
    // A unique argument so that only our sleeps are counted.
    let secs = format!("1000.{}{}", std::process::id(), lan.id);
    let top = format!(
        r#"[[track_script]]
name = "hung"
command = ["/bin/sleep", "{secs}"]
interval = "300ms"
timeout = "200ms"
weight = -10
"#
    );
    let p0 = write_config(dir.path(), 0, vip, 150, &top, "track_scripts = [\"hung\"]");
    let p1 = write_config(dir.path(), 1, vip, 100, "", "");
    let mut a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    wait_holder(&lan, vip, 0, LONG, &[&a0, &a1]);
    // Let the first timeout land (priority 140), then watch the wire and the processes.
    std::thread::sleep(Duration::from_millis(600));
    let src = IpAddr::V4(lan.host(0).v4);
    let t0 = Instant::now();
    let argv = ["/bin/sleep", secs.as_str()];
    let mut pids = std::collections::BTreeSet::new();
    let mut max_alive = 0;
    while t0.elapsed() < Duration::from_secs(3) {
        let now = running(&argv);
        max_alive = max_alive.max(now.len());
        pids.extend(now);
        std::thread::sleep(Duration::from_millis(20));
    }
    let adverts: Vec<Instant> = sniff
        .events()
        .iter()
        .filter(|e| {
            e.at >= t0 && matches!(e.what, Seen::Advert { src: s, priority: 140, .. } if s == src)
        })
        .map(|e| e.at)
        .collect();
    assert!(adverts.len() >= 20, "only {} adverts in 3s", adverts.len());
    let max_gap = adverts
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let tolerance = Duration::from_millis(60);
    assert!(
        max_gap <= ADVERT + tolerance,
        "max gap between adverts {max_gap:?} > {:?}",
        ADVERT + tolerance
    );
    // Each run was killed at its timeout: never two alive, and several different ones seen.
    assert!(max_alive <= 1, "{max_alive} hung scripts alive at once");
    assert!(pids.len() >= 5, "only {} runs in 3s: {pids:?}", pids.len());
    let log = a0.log();
    assert!(log.contains("timed out after"), "{log}");
    // Stopping vipd leaves none behind.
    a0.terminate(Duration::from_secs(5));
    let gone = common::wait_until(Duration::from_secs(3), || running(&argv).is_empty());
    assert!(gone.is_some(), "left behind: {:?}", running(&argv));
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn weight_zero_tracker_faults_and_recovers_to_backup() {
    let lan = Lan::new("trk-fault", 2).unwrap();
    let dir = TempDir::new("trk-fault");
    let vip = vip(&lan, 100);
    let events = dir.path().join("events.sock");
    let file = dir.path().join("maint");
    let top = format!(
        r#"events_socket = "{}"

[[track_file]]
name = "maint"
path = "{}"
weight = 0
"#,
        events.display(),
        file.display()
    );
    let p0 = write_config(dir.path(), 0, vip, 150, &top, "track_files = [\"maint\"]");
    let p1 = write_config(dir.path(), 1, vip, 100, "", "");
    // Recovery goes to BACKUP, not back to MASTER: the peer must stay master, so it gets
    // the higher priority once h0 is faulted... keep h0 preferred but non-preempting.
    let text = std::fs::read_to_string(&p0)
        .unwrap()
        .replace("priority = 150", "priority = 150\npreempt = false");
    std::fs::write(&p0, text).unwrap();
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, vip, 0, LONG, &logs);
    let mut ev = EventReader::connect(&events);
    std::fs::write(&file, "1\n").unwrap();
    let f = ev.wait(LONG, |v| is_transition(v, "FAULT"));
    assert_eq!(f["instance"], "VI_1");
    assert!(
        f["reason"].as_str().unwrap().contains("tracker:maint"),
        "{f}"
    );
    wait_holder(&lan, vip, 1, LONG, &logs);
    assert!(
        !lan.host(0).has_addr("eth0", vip).unwrap(),
        "a faulted node holds the VIP"
    );
    std::fs::write(&file, "0\n").unwrap();
    let b = ev.wait(LONG, |v| v["type"] == "transition" && v["from"] == "FAULT");
    assert_eq!(b["to"], "BACKUP", "{b}");
    // Without preemption the peer keeps the VIP.
    std::thread::sleep(master_down(150) * 2);
    assert_eq!(holders(&lan, vip), vec![1]);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn track_file_value_times_weight() {
    let lan = Lan::new("trk-file", 2).unwrap();
    let dir = TempDir::new("trk-file");
    let vip = vip(&lan, 100);
    let file = dir.path().join("weight");
    std::fs::write(&file, "0\n").unwrap();
    let top = format!(
        "[[track_file]]\nname = \"w\"\npath = \"{}\"\nweight = -10\n",
        file.display()
    );
    let p0 = write_config(dir.path(), 0, vip, 150, &top, "track_files = [\"w\"]");
    let p1 = write_config(dir.path(), 1, vip, 100, "", "");
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, vip, 0, LONG, &logs);
    // 150 + 4 * -10 = 110 > 100: stays.
    std::fs::write(&file, "4\n").unwrap();
    std::thread::sleep(master_down(100) * 2);
    assert_eq!(holders(&lan, vip), vec![0]);
    // 150 + 6 * -10 = 90 < 100: moves.
    std::fs::write(&file, "6\n").unwrap();
    let bound = master_down(100) + SLACK;
    let took = wait_holder(&lan, vip, 1, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "took {took:?}");
    // Replaced by rename with 0: back.
    let tmp = dir.path().join(".weight.tmp");
    std::fs::write(&tmp, "0").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let bound = master_down(150) + SLACK;
    let took = wait_holder(&lan, vip, 0, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "took {took:?}");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn track_interface_down_faults() {
    let lan = Lan::new("trk-if", 2).unwrap();
    let dir = TempDir::new("trk-if");
    let vip = vip(&lan, 100);
    let h0 = lan.host(0);
    // A veth pair inside h0 stands for its uplink (kernels without the dummy driver).
    h0.ip(&[
        "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p",
    ])
    .unwrap();
    h0.ip(&["link", "set", "uplink0p", "up"]).unwrap();
    h0.ip(&["link", "set", "uplink0", "up"]).unwrap();
    let p0 = write_config(
        dir.path(),
        0,
        vip,
        150,
        "",
        "track_interfaces = [\"uplink0\"]",
    );
    let p1 = write_config(dir.path(), 1, vip, 100, "", "");
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, vip, 0, LONG, &logs);
    // Carrier loss (the far end goes down), as when a cable is pulled.
    h0.ip(&["link", "set", "uplink0p", "down"]).unwrap();
    let bound = master_down(100) + SLACK;
    let took = wait_holder(&lan, vip, 1, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "took {took:?}");
    assert!(a0.log().contains("link-down:uplink0"), "{}", a0.log());
    h0.ip(&["link", "set", "uplink0p", "up"]).unwrap();
    wait_holder(
        &lan,
        vip,
        0,
        master_down(150) + SLACK + Duration::from_secs(5),
        &logs,
    );
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn track_process_counts_named_processes() {
    let lan = Lan::new("trk-proc", 2).unwrap();
    let dir = TempDir::new("trk-proc");
    let vip = vip(&lan, 100);
    let name = format!("vipdlb{}x{}", std::process::id() % 100_000, lan.id);
    let top =
        format!("[[track_process]]\nname = \"lb\"\nprocess = \"{name}\"\nmin = 1\nweight = -60\n");
    let p0 = write_config(dir.path(), 0, vip, 150, &top, "track_processes = [\"lb\"]");
    let p1 = write_config(dir.path(), 1, vip, 100, "", "");
    // No such process yet: h0 is at 90, h1 wins.
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, vip, 1, LONG, &logs);
    // Start it (argv[0] renamed, as `exec -a` does): h0 back to 150 and preempts.
    let mut proc_ = std::process::Command::new("bash")
        .args(["-c", &format!("exec -a {name} sleep 600")])
        .spawn()
        .unwrap();
    let bound = Duration::from_secs(1) + master_down(150) + SLACK;
    let took = wait_holder(&lan, vip, 0, bound + Duration::from_secs(5), &logs);
    let _ = took;
    proc_.kill().unwrap();
    proc_.wait().unwrap();
    let took = wait_holder(&lan, vip, 1, bound + Duration::from_secs(5), &logs);
    assert!(took <= bound, "took {took:?}");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn sync_group_fails_over_together() {
    let lan = Lan::new("trk-sync", 2).unwrap();
    let dir = TempDir::new("trk-sync");
    let (va, vb) = (vip(&lan, 100), vip(&lan, 101));
    let file = dir.path().join("down");
    let mk = |i: usize, prio: u8| {
        let track = if i == 0 {
            format!(
                "[[track_file]]\nname = \"down\"\npath = \"{}\"\nweight = 0\n",
                file.display()
            )
        } else {
            String::new()
        };
        format!(
            r#"[global]
control_socket = "{dir}/h{i}.sock"
garp_master_delay = "0s"

{track}

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 51
priority = {prio}
advert_interval = "100ms"
vips = ["{va}/24"]
{tracks}

[[instance]]
name = "VI_B"
interface = "eth0"
vrid = 52
priority = {prio}
advert_interval = "100ms"
vips = ["{vb}/24"]

[[sync_group]]
name = "G1"
instances = ["VI_A", "VI_B"]
"#,
            dir = dir.path().display(),
            tracks = if i == 0 {
                "track_files = [\"down\"]"
            } else {
                ""
            },
        )
    };
    let p0 = write_raw(dir.path(), 0, &mk(0, 150));
    let p1 = write_raw(dir.path(), 1, &mk(1, 100));
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, va, 0, LONG, &logs);
    wait_holder(&lan, vb, 0, LONG, &logs);
    // Only VI_A's tracker fails; VI_B follows through the group.
    std::fs::write(&file, "1").unwrap();
    wait_holder(&lan, va, 1, LONG, &logs);
    wait_holder(&lan, vb, 1, LONG, &logs);
    std::fs::write(&file, "0").unwrap();
    wait_holder(&lan, va, 0, LONG, &logs);
    wait_holder(&lan, vb, 0, LONG, &logs);
}

/// A sync group with one VRID's adverts dropped one way (master -> backup, by an nftables
/// rule in the backup's namespace): the backup's member of that VRID wants to take over, its
/// other member still hears the master, so nothing moves for 30 s (without keepalived's
/// rule the group flapped every Master_Down_Interval); the hold is logged once. When the
/// master really stops, the group moves.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn sync_group_with_one_vrid_lost_one_way_does_not_flap() {
    let lan = Lan::new("trk-sync1w", 2).unwrap();
    let dir = TempDir::new("trk-sync1w");
    let (va, vb) = (vip(&lan, 100), vip(&lan, 101));
    let mk = |i: usize, prio: u8| {
        format!(
            r#"[global]
control_socket = "{dir}/h{i}.sock"
garp_master_delay = "0s"

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 51
priority = {prio}
advert_interval = "100ms"
vips = ["{va}/24"]

[[instance]]
name = "VI_B"
interface = "eth0"
vrid = 52
priority = {prio}
advert_interval = "100ms"
vips = ["{vb}/24"]

[[sync_group]]
name = "G1"
instances = ["VI_A", "VI_B"]
"#,
            dir = dir.path().display(),
        )
    };
    let p0 = write_raw(dir.path(), 0, &mk(0, 150));
    let p1 = write_raw(dir.path(), 1, &mk(1, 100));
    let a0 = start(&lan, 0, &p0);
    let mut a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, va, 0, LONG, &logs);
    wait_holder(&lan, vb, 0, LONG, &logs);
    // Host 1 stops hearing VRID 51 (the VRID byte is the second byte of the VRRP header).
    lan.host(1)
        .exec_ok(&[
            "nft",
            "add table inet oneway; add chain inet oneway in { type filter hook input priority -300; }; add rule inet oneway in meta l4proto 112 @th,8,8 51 drop",
        ])
        .unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        assert_eq!(
            (holders(&lan, va), holders(&lan, vb)),
            (vec![0], vec![0]),
            "after {:?}:\n{}",
            t0.elapsed(),
            a1.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = a1.log();
    assert!(
        !log.contains("to_state=MASTER"),
        "the backup's group went MASTER:\n{log}"
    );
    assert_eq!(
        log.matches("staying BACKUP: sync group G1").count(),
        1,
        "the hold is logged once:\n{log}"
    );
    // The master stops: the group moves to host 1 as a whole.
    let mut a0 = a0;
    a0.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(a0.wait_timeout(Duration::from_secs(2)).unwrap().is_some());
    wait_holder(&lan, va, 1, LONG, &[&a1]);
    wait_holder(&lan, vb, 1, LONG, &[&a1]);
    assert!(a1.try_wait().is_none());
}

/// A tracker of the sync group itself (keepalived: `track_file` in `vrrp_sync_group`) is
/// followed by every member: its failure moves the whole group, its recovery brings it
/// back. Its weight (-50, as a member weight would be) acts as 0, as keepalived's does.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn sync_group_tracker_moves_the_group() {
    let lan = Lan::new("trk-sgt", 2).unwrap();
    let dir = TempDir::new("trk-sgt");
    let (va, vb) = (vip(&lan, 100), vip(&lan, 101));
    let file = dir.path().join("down");
    let mk = |i: usize, prio: u8| {
        format!(
            r#"[global]
control_socket = "{dir}/h{i}.sock"
garp_master_delay = "0s"

[[track_file]]
name = "lb"
path = "{file}"
weight = -50

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 51
priority = {prio}
advert_interval = "100ms"
vips = ["{va}/24"]

[[instance]]
name = "VI_B"
interface = "eth0"
vrid = 52
priority = {prio}
advert_interval = "100ms"
vips = ["{vb}/24"]

[[sync_group]]
name = "G1"
instances = ["VI_A", "VI_B"]
track_files = ["lb"]
"#,
            dir = dir.path().display(),
            file = if i == 0 {
                file.display().to_string()
            } else {
                dir.path().join("never").display().to_string()
            },
        )
    };
    let p0 = write_raw(dir.path(), 0, &mk(0, 150));
    let p1 = write_raw(dir.path(), 1, &mk(1, 100));
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    let logs = [&a0, &a1];
    wait_holder(&lan, va, 0, LONG, &logs);
    wait_holder(&lan, vb, 0, LONG, &logs);
    std::fs::write(&file, "1").unwrap();
    wait_holder(&lan, va, 1, LONG, &logs);
    wait_holder(&lan, vb, 1, LONG, &logs);
    assert!(
        a0.log().contains("to_state=FAULT"),
        "the group tracker's failure is a FAULT:\n{}",
        a0.log()
    );
    std::fs::write(&file, "0").unwrap();
    wait_holder(&lan, va, 0, LONG, &logs);
    wait_holder(&lan, vb, 0, LONG, &logs);
}
