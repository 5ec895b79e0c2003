//! vipd on a real network: agents in network namespaces on a bridged LAN elect a master, fail
//! over on crash and clean stop, and recover from a crash without leaving a duplicate VIP.
//! Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd_lab::sniff::{Seen, Sniffer};
use vipd_lab::watch::AddrWatcher;
use vipd_proto::{self as proto, Version};

/// One agent's settings; rendered into a TOML file.
#[derive(Clone)]
struct Agent {
    priority: u8,
    preempt: bool,
    extra: String,
}

impl Agent {
    fn new(priority: u8) -> Agent {
        Agent {
            priority,
            preempt: true,
            extra: String::new(),
        }
    }
}

struct Setup {
    version: u8,
    interval_ms: u64,
    vip: IpAddr,
    vrid: u8,
    instance_extra: String,
}

fn config(s: &Setup, a: &Agent, dir: &std::path::Path, i: usize) -> String {
    let prefix = if s.vip.is_ipv6() { 64 } else { 24 };
    format!(
        r#"[global]
control_socket = "{dir}/h{i}.sock"
garp_master_delay = "1s"

[[instance]]
name = "VI_TEST"
interface = "eth0"
vrid = {vrid}
version = {version}
priority = {priority}
preempt = {preempt}
advert_interval = "{interval}ms"
vips = ["{vip}/{prefix}"]
{extra}
{iextra}
"#,
        dir = dir.display(),
        vrid = s.vrid,
        version = s.version,
        priority = a.priority,
        preempt = a.preempt,
        interval = s.interval_ms,
        vip = s.vip,
        extra = a.extra,
        iextra = s.instance_extra,
    )
}

fn start(lan: &Lan, dir: &TempDir, s: &Setup, agents: &[Agent], i: usize) -> ChildGuard {
    let path = dir.path().join(format!("h{i}.toml"));
    std::fs::write(&path, config(s, &agents[i], dir.path(), i)).unwrap();
    common::start_vipd(lan.host(i), &path)
}

fn v4_setup(lan: &Lan) -> Setup {
    Setup {
        version: 3,
        interval_ms: 100,
        vip: lan.vip(false),
        vrid: 51,
        instance_extra: String::new(),
    }
}

fn proto_version(s: &Setup) -> Version {
    if s.version == 2 {
        Version::V2
    } else {
        Version::V3
    }
}

fn interval(s: &Setup) -> Duration {
    Duration::from_millis(s.interval_ms)
}

/// Who holds the VIP now (host indexes).
fn holders(lan: &Lan, vip: IpAddr) -> Vec<usize> {
    (0..lan.hosts().len())
        .filter(|&i| lan.host(i).has_addr("eth0", vip).unwrap())
        .collect()
}

fn wait_holder(lan: &Lan, vip: IpAddr, want: usize, timeout: Duration, logs: &[&ChildGuard]) {
    let ok = common::wait_until(timeout, || holders(lan, vip) == vec![want]);
    if ok.is_none() {
        for (i, l) in logs.iter().enumerate() {
            eprintln!("---- agent {i} log:\n{}", l.log());
        }
        panic!(
            "expected exactly host {want} to hold {vip}; holders now {:?}",
            holders(lan, vip)
        );
    }
}

fn src_of(lan: &Lan, i: usize, s: &Setup) -> IpAddr {
    if s.vip.is_ipv6() {
        IpAddr::V6(lan.host(i).ll)
    } else {
        IpAddr::V4(lan.host(i).v4)
    }
}

/// Elects with `agents`, checks the client reaches the VIP and saw the master's announcement.
fn elect(
    lan: &Lan,
    s: &Setup,
    agents: &[Agent],
    dir: &TempDir,
    sniff: &mut Sniffer,
) -> Vec<ChildGuard> {
    let t0 = Instant::now();
    let children: Vec<ChildGuard> = (0..agents.len())
        .map(|i| start(lan, dir, s, agents, i))
        .collect();
    let best = (0..agents.len())
        .max_by_key(|&i| agents[i].priority)
        .unwrap();
    let logs: Vec<&ChildGuard> = children.iter().collect();
    let bound =
        proto::master_down_interval(proto_version(s), 1, interval(s)) + Duration::from_secs(3);
    wait_holder(lan, s.vip, best, bound, &logs);
    let mac = lan.host(best).mac;
    let vip = s.vip;
    let seen = sniff.wait_for(t0, Duration::from_secs(2), |e| {
        e.eth_src == mac
            && match (&e.what, vip) {
                (Seen::Garp { ip, .. }, IpAddr::V4(v)) => *ip == v,
                (Seen::Na { target, .. }, IpAddr::V6(v)) => *target == v,
                _ => false,
            }
    });
    assert!(
        seen.is_some(),
        "client saw no gratuitous announcement of {vip} from the master"
    );
    assert!(
        lan.client(0)
            .ping_timeout(vip, Duration::from_secs(2))
            .unwrap(),
        "client cannot reach {vip}"
    );
    // Adverts on the wire carry TTL 255 and the master's priority.
    let src = src_of(lan, best, s);
    let prio = agents[best].priority;
    let adv = sniff.wait_for(t0, Duration::from_secs(2), |e| {
        matches!(e.what, Seen::Advert { src: a, priority, ttl: 255, .. } if a == src && priority == prio)
    });
    assert!(adv.is_some(), "no advert from the master seen");
    children
}

fn lan_with_client(tag: &str, n: usize) -> (Lan, Sniffer) {
    let mut lan = Lan::new(tag, n).unwrap();
    lan.add_client().unwrap();
    let sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
    (lan, sniff)
}

/// Time from `t0` to the first gratuitous announcement of the VIP from host `i`.
fn takeover_time(lan: &Lan, sniff: &mut Sniffer, s: &Setup, i: usize, t0: Instant) -> Duration {
    let mac = lan.host(i).mac;
    let vip = s.vip;
    let e = sniff
        .wait_for(t0, Duration::from_secs(10), |e| {
            e.eth_src == mac
                && match (&e.what, vip) {
                    (Seen::Garp { ip, .. }, IpAddr::V4(v)) => *ip == v,
                    (Seen::Na { target, .. }, IpAddr::V6(v)) => *target == v,
                    _ => false,
                }
        })
        .unwrap_or_else(|| panic!("host {i} never announced {vip}"));
    e.at - t0
}

const TOLERANCE: Duration = Duration::from_millis(50);

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn two_agents_elect_highest_and_client_reaches_vip() {
    let (lan, mut sniff) = lan_with_client("elect2", 2);
    let dir = TempDir::new("elect2");
    let s = v4_setup(&lan);
    let agents = [Agent::new(100), Agent::new(150)];
    let _c = elect(&lan, &s, &agents, &dir, &mut sniff);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn three_agents_elect_highest() {
    let (lan, mut sniff) = lan_with_client("elect3", 3);
    let dir = TempDir::new("elect3");
    let s = v4_setup(&lan);
    let agents = [Agent::new(100), Agent::new(50), Agent::new(200)];
    let _c = elect(&lan, &s, &agents, &dir, &mut sniff);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn crash_and_link_down_fails_over_within_bound() {
    let (lan, mut sniff) = lan_with_client("crash", 2);
    let dir = TempDir::new("crash");
    let s = v4_setup(&lan);
    let agents = [Agent::new(150), Agent::new(100)];
    let mut c = elect(&lan, &s, &agents, &dir, &mut sniff);
    let bound = proto::master_down_interval(Version::V3, 100, interval(&s));
    let mut watch = AddrWatcher::start(lan.host(1).name()).unwrap();
    let t0 = Instant::now();
    c[0].kill().unwrap();
    lan.link_down(0).unwrap();
    let took = takeover_time(&lan, &mut sniff, &s, 1, t0);
    let up = watch
        .wait(t0, s.vip, true, Duration::from_secs(5))
        .expect("VIP up on h1");
    eprintln!(
        "crash takeover: VIP up {:?}, GARP {:?}, bound {:?}",
        up - t0,
        took,
        bound
    );
    assert!(
        took <= bound + TOLERANCE,
        "takeover {took:?} over bound {bound:?} + {TOLERANCE:?}"
    );
    assert!(
        lan.client(0)
            .ping_timeout(s.vip, Duration::from_secs(2))
            .unwrap()
    );
    // The log says what happened, naming the peer. (The takeover is seen on the wire before
    // vipd has written every line about it: on a loaded machine it may be preempted between
    // two lines, so wait for the last one.)
    let (src0, src1) = (src_of(&lan, 0, &s), src_of(&lan, 1, &s));
    let changed = format!("master changed {src0} -> {src1} (this node)");
    common::wait_until(Duration::from_secs(2), || c[1].log().contains(&changed));
    let log = c[1].log();
    assert!(
        log.contains(&format!(
            "BACKUP -> MASTER: no advert from the master {src0} for Master_Down_Interval"
        )),
        "{log}"
    );
    assert!(log.contains(&changed), "{log}");
    common::assert_readable_log(&log);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn clean_stop_hands_over_within_skew() {
    let (lan, mut sniff) = lan_with_client("stop", 2);
    let dir = TempDir::new("stop");
    let s = v4_setup(&lan);
    let agents = [Agent::new(150), Agent::new(100)];
    let mut c = elect(&lan, &s, &agents, &dir, &mut sniff);
    let bound = proto::skew_time(Version::V3, 100, interval(&s));
    let t0 = Instant::now();
    c[0].signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = c[0].wait_timeout(Duration::from_secs(1)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "vipd did not exit 0 within 1 s of SIGTERM: {status:?}\n{}",
        c[0].log()
    );
    let src0 = src_of(&lan, 0, &s);
    assert!(
        sniff
            .wait_for(
                t0,
                Duration::from_secs(1),
                |e| matches!(e.what, Seen::Advert { src, priority: 0, .. } if src == src0)
            )
            .is_some(),
        "no priority-0 advert on stop"
    );
    let took = takeover_time(&lan, &mut sniff, &s, 1, t0);
    eprintln!("clean stop takeover: {took:?}, bound {bound:?}");
    assert!(
        took <= bound + TOLERANCE,
        "takeover {took:?} over skew {bound:?} + {TOLERANCE:?}"
    );
    assert!(
        !lan.host(0).has_addr("eth0", s.vip).unwrap(),
        "old master still holds the VIP"
    );
    wait_holder(&lan, s.vip, 1, Duration::from_secs(1), &[&c[1]]);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn preemption_on_and_off() {
    let (lan, mut sniff) = lan_with_client("preempt", 2);
    let dir = TempDir::new("preempt");
    let s = v4_setup(&lan);
    // h0 is preferred but starts late: with preemption it takes over, without it stays backup.
    for preempt in [true, false] {
        let mut agents = [Agent::new(150), Agent::new(100)];
        agents[0].preempt = preempt;
        let mut c1 = start(&lan, &dir, &s, &agents, 1);
        wait_holder(&lan, s.vip, 1, Duration::from_secs(3), &[&c1]);
        let c0 = start(&lan, &dir, &s, &agents, 0);
        if preempt {
            wait_holder(&lan, s.vip, 0, Duration::from_secs(3), &[&c0, &c1]);
            let (src0, src1) = (src_of(&lan, 0, &s), src_of(&lan, 1, &s));
            // Each line is written by its own process, shortly after the move: wait for all.
            common::wait_until(Duration::from_secs(2), || {
                c1.log()
                    .contains(&format!("MASTER -> BACKUP: {src0} advertises 150 > 100"))
                    && c1
                        .log()
                        .contains(&format!("master changed {src1} -> {src0}"))
                    && c0.log().contains(&format!(
                        "BACKUP -> MASTER: preempting {src1}, which advertises 100 < 150"
                    ))
            });
            assert!(
                c1.log()
                    .contains(&format!("MASTER -> BACKUP: {src0} advertises 150 > 100")),
                "h1's log\n{}",
                c1.log()
            );
            assert!(
                c0.log().contains(&format!(
                    "BACKUP -> MASTER: preempting {src1}, which advertises 100 < 150"
                )),
                "{}",
                c0.log()
            );
            assert!(
                c1.log()
                    .contains(&format!("master changed {src1} -> {src0}")),
                "{}",
                c1.log()
            );
            common::assert_readable_log(&c0.log());
            common::assert_readable_log(&c1.log());
        } else {
            std::thread::sleep(Duration::from_millis(1500));
            assert_eq!(
                holders(&lan, s.vip),
                vec![1],
                "nopreempt agent took over\n{}",
                c0.log()
            );
        }
        drop(c0);
        c1.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
        c1.wait_timeout(Duration::from_secs(2)).unwrap();
        // A SIGKILLed agent may leave its VIP: clean up between rounds.
        for i in 0..2 {
            let _ =
                lan.host(i)
                    .exec(&["ip", "addr", "del", &format!("{}/24", s.vip), "dev", "eth0"]);
        }
        let _ = &mut sniff;
    }
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn ipv6_election_and_crash() {
    let begin = Instant::now();
    let (lan, mut sniff) = lan_with_client("ipv6", 2);
    let dir = TempDir::new("ipv6");
    let mut s = v4_setup(&lan);
    s.vip = lan.vip(true);
    let agents = [Agent::new(150), Agent::new(100)];
    let mut c = elect(&lan, &s, &agents, &dir, &mut sniff);
    let addr = lan
        .host(0)
        .addrs_on("eth0")
        .unwrap()
        .into_iter()
        .find(|a| a.addr == s.vip)
        .unwrap();
    assert!(!addr.tentative(), "IPv6 VIP must be added without DAD");
    // The Router flag of the neighbour advertisements follows IPv6 forwarding on the
    // interface (keepalived does the same): h0 does not forward, h1 will.
    let na_router = |sniff: &mut Sniffer, i: usize, since: Instant| {
        let mac = lan.host(i).mac;
        sniff
            .events()
            .iter()
            .filter(|e| e.at >= since)
            .find_map(|e| match e.what {
                Seen::Na {
                    target,
                    mac: m,
                    router,
                } if IpAddr::V6(target) == s.vip && m == mac => Some(router),
                _ => None,
            })
    };
    assert_eq!(na_router(&mut sniff, 0, begin), Some(false));
    lan.host(1)
        .sysctl(&["net.ipv6.conf.eth0.forwarding=1"])
        .unwrap();
    let bound = proto::master_down_interval(Version::V3, 100, interval(&s));
    let t0 = Instant::now();
    c[0].kill().unwrap();
    lan.link_down(0).unwrap();
    let took = takeover_time(&lan, &mut sniff, &s, 1, t0);
    assert!(
        took <= bound + TOLERANCE,
        "IPv6 takeover {took:?} over {bound:?}"
    );
    assert_eq!(
        na_router(&mut sniff, 1, t0),
        Some(true),
        "a forwarding host's NA carries the Router flag"
    );
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn unicast_peers() {
    let (lan, mut sniff) = lan_with_client("unicast", 3);
    let dir = TempDir::new("unicast");
    let s = v4_setup(&lan);
    // h0 and h1 are peers; h2 is a stranger on the same VRID that must be ignored.
    let mut agents = [Agent::new(150), Agent::new(100), Agent::new(200)];
    agents[0].extra = format!(
        "unicast_peers = [\"{}\"]\nsource_address = \"{}\"",
        lan.host(1).v4,
        lan.host(0).v4
    );
    agents[1].extra = format!(
        "unicast_peers = [\"{}\"]\nsource_address = \"{}\"",
        lan.host(0).v4,
        lan.host(1).v4
    );
    agents[2].extra = format!("unicast_peers = [\"{}\"]", lan.host(0).v4);
    let c0 = start(&lan, &dir, &s, &agents, 0);
    let mut c1 = start(&lan, &dir, &s, &agents, 1);
    wait_holder(&lan, s.vip, 0, Duration::from_secs(3), &[&c0, &c1]);
    // The stranger (priority 200) advertises to h0, which drops it: h0 keeps the VIP.
    let mut c2 = start(&lan, &dir, &s, &agents, 2);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        lan.host(0).has_addr("eth0", s.vip).unwrap(),
        "h0 gave in to a stranger\n{}",
        c0.log()
    );
    c2.kill().unwrap();
    let _ = lan
        .host(2)
        .exec(&["ip", "addr", "del", &format!("{}/24", s.vip), "dev", "eth0"]);
    // A clean stop of h0 hands over to h1 over unicast.
    let mut c0 = c0;
    c0.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(
        c0.wait_timeout(Duration::from_secs(1))
            .unwrap()
            .is_some_and(|st| st.success())
    );
    wait_holder(&lan, s.vip, 1, Duration::from_secs(3), &[&c1]);
    // Nothing was sent to the multicast group: sniffing on the client (which is not a peer)
    // sees only what the bridge floods; unicast adverts to h0/h1 are not flooded once the
    // bridge has learnt their MACs, so we check the agents' own view instead: h1 is master.
    let _ = sniff.events();
    c1.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = c1.wait_timeout(Duration::from_secs(1)).unwrap();
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vrrpv2_with_auth() {
    let (lan, mut sniff) = lan_with_client("v2auth", 2);
    let dir = TempDir::new("v2auth");
    let mut s = v4_setup(&lan);
    s.version = 2;
    s.interval_ms = 1000;
    s.instance_extra = "auth_pass = \"s3cret\"".into();
    let agents = [Agent::new(150), Agent::new(100)];
    let c = elect(&lan, &s, &agents, &dir, &mut sniff);
    let v = sniff
        .events()
        .iter()
        .any(|e| matches!(e.what, Seen::Advert { version: 2, .. }));
    assert!(v, "no VRRPv2 advert seen");
    let t0 = Instant::now();
    c[0].signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let took = takeover_time(&lan, &mut sniff, &s, 1, t0);
    let bound = proto::skew_time(Version::V2, 100, interval(&s));
    assert!(
        took <= bound + TOLERANCE,
        "v2 clean stop {took:?} over skew {bound:?}"
    );
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn ten_ms_adverts() {
    let (lan, mut sniff) = lan_with_client("fast", 2);
    let dir = TempDir::new("fast");
    let mut s = v4_setup(&lan);
    s.interval_ms = 10;
    let agents = [Agent::new(150), Agent::new(100)];
    let mut c = elect(&lan, &s, &agents, &dir, &mut sniff);
    // Stable: no flapping over a second of 10 ms adverts.
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let from_backup = sniff
        .events()
        .iter()
        .filter(|e| {
            e.at >= t && matches!(e.what, Seen::Advert { src, .. } if src == src_of(&lan, 1, &s))
        })
        .count();
    assert_eq!(
        from_backup, 0,
        "the backup advertised while the master was healthy"
    );
    let bound = proto::master_down_interval(Version::V3, 100, interval(&s));
    let t0 = Instant::now();
    c[0].kill().unwrap();
    lan.link_down(0).unwrap();
    let took = takeover_time(&lan, &mut sniff, &s, 1, t0);
    eprintln!("10 ms crash takeover {took:?} bound {bound:?}");
    assert!(
        took <= bound + TOLERANCE,
        "takeover {took:?} over {bound:?} + {TOLERANCE:?}"
    );
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn restart_after_sigkill_leaves_no_duplicate_vip() {
    let (lan, mut sniff) = lan_with_client("restart", 2);
    let dir = TempDir::new("restart");
    let s = v4_setup(&lan);
    let agents = [Agent::new(150), Agent::new(100)];
    let mut c = elect(&lan, &s, &agents, &dir, &mut sniff);
    // SIGKILL leaves the VIP on h0 (nobody removed it); h1 takes over: two holders for now.
    c[0].kill().unwrap();
    common::wait_until(Duration::from_secs(3), || {
        lan.host(1).has_addr("eth0", s.vip).unwrap()
    })
    .expect("h1 took over");
    assert!(
        lan.host(0).has_addr("eth0", s.vip).unwrap(),
        "precondition: SIGKILL leaves the VIP"
    );
    // Restart h0: it must remove the stale VIP before anything else, then preempt back.
    let c0 = start(&lan, &dir, &s, &agents, 0);
    let logs = [&c0, &c[1]];
    wait_holder(&lan, s.vip, 0, Duration::from_secs(3), &logs);
    assert!(
        c0.log().contains("previous run"),
        "restart did not report the stale VIP:\n{}",
        c0.log()
    );
    // And it stays single.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(holders(&lan, s.vip), vec![0]);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vip_deleted_behind_our_back_is_put_back_within_one_interval() {
    let (lan, mut sniff) = lan_with_client("vipdel", 2);
    let dir = TempDir::new("vipdel");
    let s = v4_setup(&lan);
    let agents = [Agent::new(150), Agent::new(100)];
    let c = elect(&lan, &s, &agents, &dir, &mut sniff);
    let mut watch = AddrWatcher::start(lan.host(0).name()).unwrap();
    let t0 = Instant::now();
    let out = lan
        .host(0)
        .exec(&["ip", "addr", "del", &format!("{}/24", s.vip), "dev", "eth0"])
        .unwrap();
    assert!(out.status.success());
    let gone = watch
        .wait(t0, s.vip, false, Duration::from_secs(1))
        .expect("deleted");
    let back = watch
        .wait(gone, s.vip, true, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("VIP not put back\n{}", c[0].log()));
    eprintln!("VIP put back after {:?}", back - gone);
    assert!(
        back - gone <= interval(&s),
        "put back after {:?}",
        back - gone
    );
    assert!(
        c[0].log().contains("behind our back"),
        "not logged:\n{}",
        c[0].log()
    );
    assert_eq!(holders(&lan, s.vip), vec![0]);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn gratuitous_bursts_follow_repeat_and_delay() {
    let (lan, mut sniff) = lan_with_client("garp", 1);
    let dir = TempDir::new("garp");
    let mut s = v4_setup(&lan);
    s.instance_extra = "garp_master_repeat = 3\ngarp_master_delay = \"500ms\"".into();
    let agents = [Agent::new(150)];
    let t0 = Instant::now();
    let c = start(&lan, &dir, &s, &agents, 0);
    wait_holder(&lan, s.vip, 0, Duration::from_secs(3), &[&c]);
    std::thread::sleep(Duration::from_millis(1200));
    let mac = lan.host(0).mac;
    let vip = s.vip;
    let times: Vec<Instant> = sniff
        .events()
        .iter()
        .filter(|e| {
            e.at >= t0
                && e.eth_src == mac
                && matches!(e.what, Seen::Garp { ip, .. } if IpAddr::V4(ip) == vip)
        })
        .map(|e| e.at)
        .collect();
    assert_eq!(times.len(), 6, "two bursts of 3: {times:?}");
    let gap = times[3] - times[2];
    assert!(
        gap >= Duration::from_millis(480) && gap <= Duration::from_millis(600),
        "second burst {gap:?} after the first"
    );
    assert!(
        times[2] - times[0] < Duration::from_millis(20),
        "a burst is sent at once"
    );
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn link_down_is_fault_and_link_up_returns() {
    let (lan, mut sniff) = lan_with_client("linkfault", 2);
    let dir = TempDir::new("linkfault");
    let s = v4_setup(&lan);
    let agents = [Agent::new(150), Agent::new(100)];
    let c = elect(&lan, &s, &agents, &dir, &mut sniff);
    lan.link_down(0).unwrap();
    common::wait_until(Duration::from_secs(3), || {
        c[0].log().contains("to_state=FAULT") || c[0].log().contains("to_state\":\"FAULT")
    })
    .unwrap_or_else(|| panic!("no FAULT on link down\n{}", c[0].log()));
    common::wait_until(Duration::from_secs(2), || {
        !lan.host(0).has_addr("eth0", s.vip).unwrap()
    })
    .expect("a faulted master releases its VIP");
    wait_holder(&lan, s.vip, 1, Duration::from_secs(3), &[&c[0], &c[1]]);
    lan.link_up(0).unwrap();
    // Back to backup, then (preempting, higher priority) master again.
    wait_holder(&lan, s.vip, 0, Duration::from_secs(3), &[&c[0], &c[1]]);
    assert!(c[0].log().contains("fault-cleared"), "{}", c[0].log());
}

/// An instance whose interface does not exist yet (or has no address yet) waits in FAULT
/// while the others run; it opens when the interface (its address) appears, goes to FAULT
/// when it is deleted, and opens again when it is re-created (under a new index).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn missing_interface_waits_in_fault_and_opens_when_it_appears() {
    let lan = Lan::new("ifwait", 1).unwrap();
    let dir = TempDir::new("ifwait");
    let h = lan.host(0);
    let vip_a = lan.vip(false);
    let vip_b: IpAddr = "10.77.0.100".parse().unwrap();
    let vip_c: IpAddr = "10.78.0.100".parse().unwrap();
    let cfg = format!(
        r#"[global]
control_socket = "{dir}/h0.sock"

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 1
priority = 150
advert_interval = "100ms"
vips = ["{vip_a}/24"]

[[instance]]
name = "VI_B"
interface = "vip9"
vrid = 2
priority = 150
advert_interval = "100ms"
vips = ["{vip_b}/24"]

[[instance]]
name = "VI_C"
interface = "vip8"
vrid = 3
priority = 150
advert_interval = "100ms"
vips = ["{vip_c}/24"]
"#,
        dir = dir.path().display()
    );
    let path = dir.path().join("h0.toml");
    std::fs::write(&path, cfg).unwrap();
    // vip8 exists but has no address yet (DHCP still running, say).
    h.ip(&[
        "link", "add", "vip8", "type", "veth", "peer", "name", "vip8p",
    ])
    .unwrap();
    h.ip(&["link", "set", "vip8p", "up"]).unwrap();
    h.ip(&["link", "set", "vip8", "up"]).unwrap();
    let mut c = common::start_vipd(h, &path);
    let up = |ifname: &str, vip: IpAddr| h.has_addr(ifname, vip).unwrap_or(false);
    common::wait_until(Duration::from_secs(3), || up("eth0", vip_a))
        .unwrap_or_else(|| panic!("VI_A must run while vip9 is missing\n{}", c.log()));
    assert!(c.try_wait().is_none(), "vipd exited\n{}", c.log());
    assert!(c.log().contains("interface does not exist"), "{}", c.log());
    assert!(
        c.log().contains("link-down:vip9"),
        "VI_B in FAULT\n{}",
        c.log()
    );
    assert!(
        c.log().contains("has no IPv4 address to send adverts from"),
        "VI_C in FAULT\n{}",
        c.log()
    );
    assert!(!up("vip8", vip_c));
    // vipctl status shows both waiting instances in FAULT with the cause.
    let sock = dir.path().join("h0.sock");
    let out = h
        .exec(&[
            env!("CARGO_BIN_EXE_vipctl"),
            "--socket",
            sock.to_str().unwrap(),
            "status",
        ])
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    if std::env::var_os("VIPD_TEST_SHOW_LOG").is_some() {
        eprintln!("{table}");
    }
    for (name, cause) in [("VI_B", "link-down:vip9"), ("VI_C", "link-down:vip8")] {
        assert!(
            table.contains(name) && table.contains(cause),
            "{name} FAULT ({cause}) in status:\n{table}"
        );
    }
    h.ip(&["addr", "add", "10.78.0.1/24", "dev", "vip8"])
        .unwrap();
    common::wait_until(Duration::from_secs(3), || up("vip8", vip_c))
        .unwrap_or_else(|| panic!("VI_C must open once vip8 has an address\n{}", c.log()));
    let create = || {
        h.ip(&[
            "link", "add", "vip9", "type", "veth", "peer", "name", "vip9p",
        ])
        .unwrap();
        h.ip(&["link", "set", "vip9p", "up"]).unwrap();
        h.ip(&["link", "set", "vip9", "up"]).unwrap();
        // The address comes last: opening waits for an address to send from.
        h.ip(&["addr", "add", "10.77.0.1/24", "dev", "vip9"])
            .unwrap();
    };
    // Open file descriptors after each deletion: the same every round (the deleted
    // interface's socket and frame sender are closed, not leaked).
    let fds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let mut open_after = Vec::new();
    for round in 0..3 {
        create();
        common::wait_until(Duration::from_secs(3), || up("vip9", vip_b)).unwrap_or_else(|| {
            panic!(
                "round {round}: VI_B must open on vip9 and take its VIP\n{}",
                c.log()
            )
        });
        h.ip(&["link", "del", "vip9"]).unwrap();
        common::wait_until(Duration::from_secs(3), || {
            c.log().matches("interface removed").count() > round
        })
        .unwrap_or_else(|| panic!("round {round}: no FAULT on removal\n{}", c.log()));
        // Let the aborted reader go and the GARP burst (5 × 0 s) finish.
        std::thread::sleep(Duration::from_millis(200));
        open_after.push(fds(c.pid()));
    }
    assert!(
        open_after.windows(2).all(|w| w[0] == w[1]) && open_after[0] > 0,
        "open fds after each deletion: {open_after:?}"
    );
    // VI_A never moved.
    assert!(up("eth0", vip_a));
    assert!(
        !c.log().contains("instance=VI_A vrid=1 from_state=MASTER"),
        "VI_A left MASTER\n{}",
        c.log()
    );
    assert!(c.try_wait().is_none(), "vipd exited\n{}", c.log());
    if std::env::var_os("VIPD_TEST_SHOW_LOG").is_some() {
        eprintln!("{}", c.log());
    }
}

/// A stalled backup (SIGSTOP longer than its Master_Down_Interval, as a paused process or
/// VM) whose master went on advertising: on SIGCONT both its timer and the master's adverts
/// waiting in the socket are ready; the adverts are read first, so it stays BACKUP and the
/// VIP never moves.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn stalled_backup_reads_the_waiting_adverts_before_its_timer() {
    use nix::sys::signal::Signal;
    let (lan, mut sniff) = lan_with_client("stall", 2);
    let dir = TempDir::new("stall");
    let s = v4_setup(&lan);
    let agents = [Agent::new(200), Agent::new(100)];
    let c = elect(&lan, &s, &agents, &dir, &mut sniff);
    let mdi = proto::master_down_interval(Version::V3, 100, interval(&s));
    let mut watch = AddrWatcher::start(lan.host(1).name()).unwrap();
    for round in 0..3 {
        c[1].signal(Signal::SIGSTOP).unwrap();
        std::thread::sleep(mdi * 4);
        c[1].signal(Signal::SIGCONT).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        let log = c[1].log();
        assert!(
            !log.contains("to_state=MASTER"),
            "round {round}: the stalled backup took over:\n{log}"
        );
        assert_eq!(holders(&lan, s.vip), vec![0], "round {round}");
    }
    assert!(
        c[1].log().contains("after its deadline"),
        "the stall is not logged:\n{}",
        c[1].log()
    );
    let vip = s.vip;
    assert!(
        watch
            .events()
            .iter()
            .all(|(_, e)| !matches!(e, vipd::net::netlink::NetEvent::AddrAdded { addr, .. } if *addr == vip)),
        "the VIP appeared on the stalled backup"
    );
}

/// Accept_Mode is enforced: with `accept = false` the master holds the VIP (the client's
/// neighbour entry points at it) but drops packets addressed to it; with the default
/// (`accept = true`, as keepalived outside strict mode) it answers. Both families; the
/// nftables table goes away when vipd stops.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn accept_false_drops_traffic_to_the_vip_and_accept_true_answers() {
    use nix::sys::signal::Signal;
    for v6 in [false, true] {
        let (lan, _sniff) = lan_with_client(if v6 { "acc6" } else { "acc4" }, 1);
        let dir = TempDir::new("accept");
        let mut s = v4_setup(&lan);
        s.vip = lan.vip(v6);
        let mut agent = Agent::new(150);
        agent.extra = "accept = false".into();
        let mut c = start(&lan, &dir, &s, &[agent], 0);
        wait_holder(&lan, s.vip, 0, Duration::from_secs(3), &[&c]);
        let table = || {
            lan.host(0)
                .exec(&["nft", "list", "table", "inet", "vipd_accept"])
                .unwrap()
        };
        let listed = table();
        assert!(listed.status.success(), "no nftables table:\n{}", c.log());
        assert!(
            !lan.client(0)
                .ping_timeout(s.vip, Duration::from_millis(800))
                .unwrap(),
            "v6={v6}: accept = false, yet the master answered a ping to the VIP"
        );
        c.signal(Signal::SIGTERM).unwrap();
        assert!(c.wait_timeout(Duration::from_secs(2)).unwrap().is_some());
        assert!(
            !table().status.success(),
            "v6={v6}: the table outlived vipd"
        );
        // The default: accepts.
        let c = start(&lan, &dir, &s, &[Agent::new(150)], 0);
        wait_holder(&lan, s.vip, 0, Duration::from_secs(3), &[&c]);
        assert!(
            lan.client(0)
                .ping_timeout(s.vip, Duration::from_secs(2))
                .unwrap(),
            "v6={v6}: accept = true, yet no answer from the VIP\n{}",
            c.log()
        );
    }
}

/// `fault_on_link_down = false` (keepalived's `dont_track_primary`): a master whose link
/// loses its carrier stays MASTER with its VIP instead of going to FAULT.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn link_down_ignored_with_fault_on_link_down_false() {
    let lan = Lan::new("nolinkfault", 1).unwrap();
    let dir = TempDir::new("nolinkfault");
    let vip = lan.vip(false);
    let sock = dir.path().join("h0.sock");
    let cfg = dir.path().join("h0.toml");
    std::fs::write(
        &cfg,
        format!(
            "[global]\ncontrol_socket = \"{}\"\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 150\nadvert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\nfault_on_link_down = false\n",
            sock.display()
        ),
    )
    .unwrap();
    let c = common::start_vipd(lan.host(0), &cfg);
    wait_holder(&lan, vip, 0, Duration::from_secs(3), &[&c]);
    lan.link_down(0).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let r = vipd::ctl::request(&sock, vipd::ctl::Command::Status, Duration::from_secs(5)).unwrap();
    let st = r.status.unwrap();
    assert_eq!(st.instances[0].state, "MASTER", "{}", c.log());
    assert!(st.instances[0].fault.is_none());
    assert!(lan.host(0).has_addr("eth0", vip).unwrap());
    assert!(c.log().contains("link down"), "{}", c.log());
}
