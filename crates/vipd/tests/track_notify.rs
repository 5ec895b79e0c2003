//! Notify programs get keepalived's arguments, in order (instances and sync groups), and the
//! events socket delivers ordered JSON lines. Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{ChildGuard, Lan, TempDir};

const LONG: Duration = Duration::from_secs(20);

fn start(lan: &Lan, i: usize, path: &Path) -> ChildGuard {
    common::start_vipd(lan.host(i), path)
}

/// A notify script appending its arguments (one line per call) to `out`.
fn recorder(dir: &Path, out: &Path) -> std::path::PathBuf {
    let p = dir.join("record.sh");
    std::fs::write(&p, format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display())).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn notify_programs_get_keepalived_arguments_in_order() {
    let lan = Lan::new("ntf-args", 1).unwrap();
    let dir = TempDir::new("ntf-args");
    let out = dir.path().join("calls");
    let rec = recorder(dir.path(), &out);
    let (va, vb) = (
        IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 100)),
        IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 101)),
    );
    let text = format!(
        r#"[global]
control_socket = "{dir}/h0.sock"
script_user = "root"

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 51
priority = 150
advert_interval = "100ms"
vips = ["{va}/24"]
notify_master = ["{rec}", "specific-master"]
notify = "{rec}"

[[instance]]
name = "VI_B"
interface = "eth0"
vrid = 52
priority = 150
advert_interval = "100ms"
vips = ["{vb}/24"]

[[sync_group]]
name = "G1"
instances = ["VI_A", "VI_B"]
notify = ["{rec}"]
notify_stop = "{rec} group-stop"
"#,
        dir = dir.path().display(),
        rec = rec.display(),
    );
    let path = dir.path().join("h0.toml");
    std::fs::write(&path, text).unwrap();
    let mut a = start(&lan, 0, &path);
    let want_up = [
        "INSTANCE VI_A BACKUP 150",
        "GROUP G1 BACKUP 0",
        "specific-master",
        "INSTANCE VI_A MASTER 150",
        "GROUP G1 MASTER 0",
    ];
    let ok = common::wait_until(LONG, || lines(&out).len() >= want_up.len());
    assert!(ok.is_some(), "calls: {:?}\n{}", lines(&out), a.log());
    assert_eq!(lines(&out), want_up, "{}", a.log());
    let st = a.terminate(Duration::from_secs(15));
    assert!(st.is_some_and(|s| s.success()), "{}", a.log());
    let mut want = want_up.to_vec();
    want.extend(["INSTANCE VI_A STOP 150", "group-stop", "GROUP G1 STOP 0"]);
    assert_eq!(lines(&out), want, "{}", a.log());
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn notify_timeout_kills_the_program() {
    let lan = Lan::new("ntf-timeout", 1).unwrap();
    let dir = TempDir::new("ntf-timeout");
    let out = dir.path().join("calls");
    let rec = recorder(dir.path(), &out);
    let vip = IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 100));
    let text = format!(
        r#"[global]
control_socket = "{dir}/h0.sock"
script_user = "root"

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
advert_interval = "100ms"
vips = ["{vip}/24"]
notify_backup = ["/bin/sleep", "777.{pid}"]
notify = "{rec}"
notify_timeout = "300ms"
"#,
        dir = dir.path().display(),
        rec = rec.display(),
        pid = std::process::id(),
    );
    let path = dir.path().join("h0.toml");
    std::fs::write(&path, text).unwrap();
    let a = start(&lan, 0, &path);
    // The hung notify_backup is killed, then the generic notify runs, then MASTER's.
    let ok = common::wait_until(LONG, || lines(&out).len() >= 2);
    assert!(ok.is_some(), "{}", a.log());
    assert_eq!(
        lines(&out)[..2],
        ["INSTANCE VI_1 BACKUP 100", "INSTANCE VI_1 MASTER 100"]
    );
    assert!(a.log().contains("timed out after"), "{}", a.log());
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn events_socket_streams_ordered_json_lines() {
    let lan = Lan::new("ntf-events", 1).unwrap();
    let dir = TempDir::new("ntf-events");
    let sock = dir.path().join("events.sock");
    let file = dir.path().join("w");
    let vip = IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 100));
    let path = dir.path().join("h0.toml");
    std::fs::write(&path, events_config(dir.path(), &sock, &file, vip, -5)).unwrap();
    let a = start(&lan, 0, &path);
    assert!(
        common::wait_until(LONG, || sock.exists()).is_some(),
        "{}",
        a.log()
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // Wait for MASTER before changing the file, then read what follows.
    assert!(
        common::wait_until(LONG, || lan.host(0).has_addr("eth0", vip).unwrap()).is_some(),
        "{}",
        a.log()
    );
    std::fs::write(&file, "2").unwrap();
    let mut r = BufReader::new(stream);
    let mut got: Vec<serde_json::Value> = Vec::new();
    while !got
        .iter()
        .any(|v| v["type"] == "priority" && v["priority"] == 90)
    {
        let mut line = String::new();
        let n = r.read_line(&mut line).unwrap();
        assert!(n > 0, "socket closed; got {got:#?}");
        assert!(line.ends_with('\n'));
        got.push(serde_json::from_str(&line).unwrap());
    }
    let t = got
        .iter()
        .position(|v| v["type"] == "tracker" && v["tracker"] == "w" && v["value"] == 2)
        .unwrap_or_else(|| panic!("no tracker event: {got:#?}"));
    let p = got.iter().position(|v| v["type"] == "priority").unwrap();
    assert!(t < p, "tracker event after the priority event: {got:#?}");
    let pe = &got[p];
    assert_eq!(
        (pe["instance"].as_str(), pe["vrid"].as_u64()),
        (Some("VI_1"), Some(51))
    );
    assert_eq!(pe["base"], 100);
    // Ordered, gapless sequence numbers; timestamps present.
    let seqs: Vec<u64> = got.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(
        got.iter()
            .all(|v| v["ts"].as_str().is_some_and(|s| s.ends_with('Z')))
    );
}

/// One instance (priority 100) following a file tracker of `weight`, with an events socket.
fn events_config(dir: &Path, sock: &Path, file: &Path, vip: IpAddr, weight: i32) -> String {
    format!(
        r#"[global]
control_socket = "{dir}/h0.sock"
events_socket = "{sock}"

[[track_file]]
name = "w"
path = "{file}"
weight = {weight}

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 100
advert_interval = "100ms"
vips = ["{vip}/24"]
track_files = ["w"]
"#,
        dir = dir.display(),
        sock = sock.display(),
        file = file.display(),
    )
}

/// Reads event lines from `r` until one satisfies `pred`; returns them all.
fn read_until(
    r: &mut BufReader<std::os::unix::net::UnixStream>,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut got: Vec<serde_json::Value> = Vec::new();
    while !got.iter().any(&pred) {
        let mut line = String::new();
        let n = r.read_line(&mut line).unwrap();
        assert!(n > 0, "socket closed; got {got:#?}");
        got.push(serde_json::from_str(&line).unwrap());
    }
    got
}

/// A reload that restarts the trackers keeps the events socket: the path stays, and a client
/// connected before the reload keeps receiving events after it, with the sequence going on.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn events_socket_survives_a_reload() {
    let lan = Lan::new("ntf-reload", 1).unwrap();
    let dir = TempDir::new("ntf-reload");
    let sock = dir.path().join("events.sock");
    let file = dir.path().join("w");
    let vip = IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 100));
    let text = |weight: i32| events_config(dir.path(), &sock, &file, vip, weight);
    let path = dir.path().join("h0.toml");
    std::fs::write(&path, text(-5)).unwrap();
    let a = start(&lan, 0, &path);
    assert!(
        common::wait_until(LONG, || sock.exists()).is_some(),
        "{}",
        a.log()
    );
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut r = BufReader::new(stream);
    assert!(
        common::wait_until(LONG, || lan.host(0).has_addr("eth0", vip).unwrap()).is_some(),
        "{}",
        a.log()
    );
    std::fs::write(&file, "1").unwrap();
    let before = read_until(&mut r, |v| v["type"] == "priority" && v["priority"] == 95);
    // Change a tracker's weight: the trackers restart.
    std::fs::write(&path, text(-6)).unwrap();
    a.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(
        common::wait_until(LONG, || a.log().contains("trackers restarted")).is_some(),
        "{}",
        a.log()
    );
    assert!(sock.exists(), "the events socket is gone after the reload");
    std::fs::write(&file, "2").unwrap();
    let after = read_until(&mut r, |v| v["type"] == "priority" && v["priority"] == 88);
    let last = before.last().and_then(|v| v["seq"].as_u64()).unwrap();
    let next = after.first().and_then(|v| v["seq"].as_u64()).unwrap();
    assert_eq!(
        next,
        last + 1,
        "the sequence goes on: {before:#?} {after:#?}"
    );
    // And a new client can still connect.
    std::os::unix::net::UnixStream::connect(&sock).unwrap();
}

/// What is known at startup is applied before the state machines start: an address owner
/// (priority 255, which goes straight to MASTER on start) whose link is down, or whose
/// weight-0 tracker fails, never becomes MASTER at boot, never adds its VIP and never runs
/// notify_master; its first transition is INIT -> FAULT.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn an_owner_with_a_known_fault_at_startup_never_goes_master() {
    for case in ["link-down", "tracker"] {
        let lan = Lan::new(&format!("ntf-boot-{case}"), 1).unwrap();
        let dir = TempDir::new(&format!("ntf-boot-{case}"));
        let out = dir.path().join("calls");
        let rec = recorder(dir.path(), &out);
        let vip = IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 100));
        let (tracker, follows) = if case == "tracker" {
            (
                "[[track_script]]\nname = \"chk\"\ncommand = [\"/bin/false\"]\nweight = 0\n",
                "track_scripts = [\"chk\"]\n",
            )
        } else {
            ("", "")
        };
        let text = format!(
            r#"[global]
control_socket = "{dir}/h0.sock"
script_user = "root"

{tracker}
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 255
advert_interval = "100ms"
vips = ["{vip}/24"]
notify_master = ["{rec}", "master"]
notify = "{rec}"
{follows}"#,
            dir = dir.path().display(),
            rec = rec.display()
        );
        let path = dir.path().join("h0.toml");
        std::fs::write(&path, text).unwrap();
        if case == "link-down" {
            lan.link_down(0).unwrap();
        }
        let a = start(&lan, 0, &path);
        assert!(
            common::wait_until(LONG, || a.log().contains("to_state=FAULT")).is_some(),
            "{case}: {}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(500));
        let log = a.log();
        assert!(
            !log.contains("to_state=MASTER"),
            "{case}: the owner went MASTER at boot:\n{log}"
        );
        assert!(
            log.contains("from_state=INIT to_state=FAULT"),
            "{case}: {log}"
        );
        assert!(
            !lan.host(0).has_addr("eth0", vip).unwrap(),
            "{case}: VIP added"
        );
        assert!(
            !lines(&out)
                .iter()
                .any(|l| l.contains("master") || l.contains("MASTER")),
            "{case}: notify_master ran: {:?}",
            lines(&out)
        );
    }
}

/// `fast_preempt` on a real network (1 s adverts): a tracker weight lowers the master below
/// the backup, and the backup takes the VIP one Skew_Time after the master advertises its new
/// priority (about 0.6 s), not after Master_Down_Interval (about 3.6 s) as the RFC would.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn fast_preempt_moves_the_vip_after_skew_time() {
    let lan = Lan::new("ntf-fastpre", 2).unwrap();
    let dir = TempDir::new("ntf-fastpre");
    let vip = IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 100));
    let file = dir.path().join("w");
    std::fs::write(&file, "0").unwrap();
    let conf = |i: usize, priority: u8, extra: &str| {
        format!(
            r#"[global]
control_socket = "{dir}/h{i}.sock"

[[track_file]]
name = "w"
path = "{file}"
weight = -60

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {priority}
advert_interval = "1s"
vips = ["{vip}/24"]
{extra}
"#,
            dir = dir.path().display(),
            file = file.display(),
        )
    };
    let p0 = dir.path().join("h0.toml");
    let p1 = dir.path().join("h1.toml");
    std::fs::write(&p0, conf(0, 150, "track_files = [\"w\"]")).unwrap();
    std::fs::write(&p1, conf(1, 100, "fast_preempt = true")).unwrap();
    let a0 = start(&lan, 0, &p0);
    let a1 = start(&lan, 1, &p1);
    assert!(
        common::wait_until(LONG, || lan.host(0).has_addr("eth0", vip).unwrap()).is_some(),
        "{}",
        a0.log()
    );
    std::thread::sleep(Duration::from_millis(1500));
    // The master's tracker fails: 150 - 60 = 90 < 100.
    let t0 = std::time::Instant::now();
    std::fs::write(&file, "1").unwrap();
    let took = common::wait_until(Duration::from_secs(10), || {
        lan.host(1).has_addr("eth0", vip).unwrap()
    })
    .unwrap_or_else(|| panic!("no takeover\n{}\n{}", a0.log(), a1.log()));
    eprintln!("fast_preempt: tracker failure -> VIP on the backup in {took:?}");
    let skew = vipd_proto::skew_time(vipd_proto::Version::V3, 100, Duration::from_secs(1));
    let mdi =
        vipd_proto::master_down_interval(vipd_proto::Version::V3, 100, Duration::from_secs(1));
    assert!(
        took < skew + Duration::from_millis(400) && took < mdi,
        "took {took:?} (skew {skew:?}, MDI {mdi:?})\n{}",
        a1.log()
    );
    assert!(t0.elapsed() < mdi + Duration::from_secs(5));
    assert!(
        common::wait_until(Duration::from_secs(3), || !lan
            .host(0)
            .has_addr("eth0", vip)
            .unwrap())
        .is_some()
    );
}

/// keepalived's notify FIFO: the reader (started with the FIFO's path) gets every
/// transition of instances and groups in keepalived's line format and order, STOP at exit;
/// the FIFO vipd created is gone afterwards.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn notify_fifo_lines_reach_the_reader_in_order() {
    let lan = Lan::new("ntf-fifo", 1).unwrap();
    let dir = TempDir::new("ntf-fifo");
    let out = dir.path().join("fifo-lines");
    let reader = dir.path().join("reader.sh");
    std::fs::write(
        &reader,
        format!(
            "#!/bin/sh\nwhile read -r line; do echo \"$line\" >> {}; done < \"$1\"\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&reader, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fifo = dir.path().join("notify.fifo");
    let va = IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 100));
    let vb = IpAddr::V4(Ipv4Addr::new(10, 99, lan.id, 101));
    let text = format!(
        r#"[global]
control_socket = "{dir}/h0.sock"
script_user = "root"
notify_fifo = "{fifo}"
notify_fifo_script = ["{reader}"]

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 51
priority = 150
advert_interval = "100ms"
vips = ["{va}/24"]

[[instance]]
name = "VI_B"
interface = "eth0"
vrid = 52
priority = 150
advert_interval = "100ms"
vips = ["{vb}/24"]

[[sync_group]]
name = "G1"
instances = ["VI_A", "VI_B"]
"#,
        dir = dir.path().display(),
        fifo = fifo.display(),
        reader = reader.display(),
    );
    let path = dir.path().join("h0.toml");
    std::fs::write(&path, text).unwrap();
    let mut a = start(&lan, 0, &path);
    let up = [
        "INSTANCE \"VI_A\" BACKUP 150",
        "INSTANCE \"VI_B\" BACKUP 150",
        "GROUP \"G1\" BACKUP 0",
        "INSTANCE \"VI_A\" MASTER 150",
        "INSTANCE \"VI_B\" MASTER 150",
        "GROUP \"G1\" MASTER 0",
    ];
    let ok = common::wait_until(LONG, || lines(&out).len() >= up.len());
    assert!(ok.is_some(), "lines: {:?}\n{}", lines(&out), a.log());
    // Instances of one group may interleave; each one's own lines are in order, and the
    // group's line follows its members'.
    let got = lines(&out);
    for w in &up {
        assert!(got.contains(&w.to_string()), "{w} missing: {got:?}");
    }
    let pos = |s: &str| got.iter().position(|l| l == s).unwrap();
    assert!(pos(up[0]) < pos(up[3]) && pos(up[1]) < pos(up[4]));
    assert!(pos(up[3]) < pos(up[5]) && pos(up[4]) < pos(up[5]) && pos(up[2]) < pos(up[5]));
    let st = a.terminate(Duration::from_secs(15));
    assert!(st.is_some_and(|s| s.success()), "{}", a.log());
    let ok = common::wait_until(Duration::from_secs(5), || {
        lines(&out).iter().any(|l| l == "GROUP \"G1\" STOP 0")
    });
    assert!(
        ok.is_some(),
        "no STOP lines: {:?}\n{}",
        lines(&out),
        a.log()
    );
    assert!(lines(&out).contains(&"INSTANCE \"VI_A\" STOP 150".to_string()));
    assert!(!fifo.exists(), "the FIFO vipd created is left behind");
}
