//! `[instance.announce]` on a routed network: load balancers in subnets of their own, each
//! with vipd and a BGP speaker (FRR or BIRD 2, the same tests for both), a router running FRR
//! bgpd with ECMP and BFD, a client behind it (see `vipd_lab::bgp`). What counts is the
//! router's forwarding table, and for host death the client's traffic. Needs root, FRR and
//! BIRD (scripts/test.sh installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::ChildGuard;
use vipd_lab::bgp::{BFD_INTERVAL_MS, BFD_MULTIPLIER, Fabric, Speaker, TABLE, VIP, VIP6};

const SETTLE: Duration = Duration::from_secs(20);
/// Generous bounds for CI (the benchmarks measure the real numbers): a withdrawal the router
/// must see, and host death, which the 3 s hold timer alone would detect only after 3 s.
const WITHDRAW: Duration = Duration::from_secs(2);

fn lb(i: usize) -> IpAddr {
    Fabric::lb_addr(i)
}

struct Node {
    cfg: PathBuf,
    sock: PathBuf,
    ok_file: PathBuf,
    vipd: Option<ChildGuard>,
}

/// vipd's config for load balancer `i`: the VIP announced (`policy`), a weight-0 file
/// tracker (`lbN.ok`: 0 healthy, 1 failed), and for active-standby unicast VRRP with the
/// other load balancers across the router.
fn write_config(dir: &Path, i: usize, lbs: usize, policy: &str) -> Node {
    let sock = dir.join(format!("lb{i}.sock"));
    let ok_file = dir.join(format!("lb{i}.ok"));
    std::fs::write(&ok_file, "0\n").unwrap();
    let vrrp = if policy == "active-standby" {
        let peers: Vec<String> = (0..lbs)
            .filter(|&j| j != i)
            .map(|j| format!("\"{}\"", lb(j)))
            .collect();
        format!(
            "vrid = 51\nadvert_interval = \"100ms\"\nunicast_peers = [{}]\n",
            peers.join(", ")
        )
    } else {
        String::new()
    };
    let priority = if policy == "active-standby" {
        150 - 50 * i
    } else {
        100
    };
    // IPv6 too: in the same instance (active-active runs no VRRP, so both families may mix),
    // as an excluded VIP of the IPv4 virtual router for active-standby.
    let vips = if policy == "active-standby" {
        format!("vips = [\"{VIP}\"]\nexcluded_vips = [\"{VIP6}\"]")
    } else {
        format!("vips = [\"{VIP}\", \"{VIP6}\"]")
    };
    let text = format!(
        "[global]\ncontrol_socket = \"{}\"\n\n\
         [[track_file]]\nname = \"lb_ok\"\npath = \"{}\"\nweight = 0\n\n\
         [[instance]]\nname = \"web\"\ninterface = \"up0\"\npriority = {priority}\n{vrrp}\
         {vips}\ntrack_files = [\"lb_ok\"]\n\n\
         [instance.announce]\npolicy = \"{policy}\"\ntable = {TABLE}\n",
        sock.display(),
        ok_file.display()
    );
    let cfg = dir.join(format!("lb{i}.toml"));
    std::fs::write(&cfg, text).unwrap();
    Node {
        cfg,
        sock,
        ok_file,
        vipd: None,
    }
}

struct Lab {
    fabric: Fabric,
    nodes: Vec<Node>,
}

impl Lab {
    fn new(tag: &str, speaker: Speaker, lbs: usize, policy: &str) -> Lab {
        common::require_root();
        for sp in [speaker, Speaker::Frr] {
            assert!(
                sp.available(),
                "{} is not installed (scripts/test.sh installs frr and bird2)",
                sp.name()
            );
        }
        let mut fabric = Fabric::new(tag, lbs).unwrap();
        let dir = fabric.dir().to_path_buf();
        let mut nodes = Vec::new();
        for i in 0..lbs {
            fabric.start_speaker(i, speaker).unwrap();
            let mut n = write_config(&dir, i, lbs, policy);
            n.vipd = Some(common::start_vipd(&fabric.lbs[i], &n.cfg));
            nodes.push(n);
        }
        let lab = Lab { fabric, nodes };
        if let Err(e) = lab.fabric.wait_sessions(SETTLE) {
            lab.fail(&format!("{e}"));
        }
        lab
    }

    fn fail(&self, what: &str) -> ! {
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(v) = &n.vipd {
                eprintln!("==== vipd lb{i}\n{}", v.log());
            }
        }
        eprintln!("{}", self.fabric.logs());
        panic!("{what}");
    }

    /// Waits until the router forwards `vip` to exactly the load balancers `want`; returns
    /// how long it took.
    #[track_caller]
    fn expect_routed(&self, vip: IpAddr, want: &[usize], within: Duration, what: &str) -> Duration {
        match self.fabric.wait_lbs(vip, want, within) {
            Some(d) => d,
            None => self.fail(&format!(
                "{what}: the router forwards {vip} to {:?}, not {want:?} after {within:?}",
                self.fabric.lbs_routed(vip)
            )),
        }
    }

    /// [`Lab::expect_routed`] for the IPv4 VIP.
    #[track_caller]
    fn expect_hops(&self, want: &[usize], within: Duration, what: &str) -> Duration {
        self.expect_routed(IpAddr::V4(VIP), want, within, what)
    }

    /// [`Lab::expect_routed`] for the IPv6 VIP.
    #[track_caller]
    fn expect_hops6(&self, want: &[usize], within: Duration, what: &str) {
        self.expect_routed(IpAddr::V6(VIP6), want, within, what);
    }

    fn set_ok(&self, i: usize, ok: bool) {
        std::fs::write(&self.nodes[i].ok_file, if ok { "0\n" } else { "1\n" }).unwrap();
    }

    fn vipctl(&self, i: usize, args: &[&str]) -> String {
        let mut all = vec![
            env!("CARGO_BIN_EXE_vipctl"),
            "-s",
            self.nodes[i].sock.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let out = self.fabric.lbs[i].exec(&all).unwrap();
        if !out.status.success() {
            self.fail(&format!(
                "vipctl {args:?} on lb{i}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self, i: usize) -> vipd::ctl::InstanceStatus {
        let s = common::vipctl_status(&self.nodes[i].sock, self.nodes[i].vipd.as_ref().unwrap());
        s.instances.into_iter().next().unwrap()
    }

    fn has_vip(&self, i: usize) -> bool {
        self.fabric.lbs[i]
            .has_addr("lo", IpAddr::V4(VIP))
            .unwrap_or(false)
    }

    fn has_route(&self, i: usize) -> bool {
        let out = self.fabric.lbs[i]
            .ip(&["route", "show", "table", &TABLE.to_string()])
            .unwrap_or_default();
        out.contains(&VIP.to_string())
    }
}

/// Active-active: every healthy load balancer is an ECMP next hop of the router; a tracker
/// failure removes one, maintenance drains one, recovery adds them back, a clean stop
/// withdraws, and a crash's announcement is withdrawn by the next start when the tracker
/// fails.
fn active_active(speaker: Speaker, tag: &str) {
    let mut lab = Lab::new(tag, speaker, 3, "active-active");
    lab.expect_hops(&[0, 1, 2], SETTLE, "all three announce");
    lab.expect_hops6(&[0, 1, 2], SETTLE, "all three announce the IPv6 VIP");
    assert!(
        lab.fabric.client.ping(IpAddr::V6(VIP6)).unwrap(),
        "client cannot reach the IPv6 VIP"
    );
    // The client reaches the VIP.
    assert!(
        lab.fabric.client.ping(IpAddr::V4(VIP)).unwrap(),
        "client cannot reach the VIP"
    );
    let st = lab.status(0);
    let a = st.announce.as_ref().expect("announce status");
    assert!(a.announced && a.policy == "active-active", "{a:?}");
    assert_eq!((a.device.as_str(), a.table), ("lo", Some(TABLE)));
    assert!(lab.has_vip(0) && lab.has_route(0));
    let human = lab.vipctl(0, &["status"]);
    assert!(human.contains("ANNOUNCED"), "{human}");

    // A reload that changes nothing the announcement depends on moves nothing.
    let moves = lab.status(0).counters.transitions;
    let cfg = std::fs::read_to_string(&lab.nodes[0].cfg).unwrap() + "min_priority = 10\n";
    std::fs::write(&lab.nodes[0].cfg, cfg).unwrap();
    lab.vipctl(0, &["reload"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.fabric.lbs_routed(IpAddr::V4(VIP)), [0, 1, 2]);
    assert_eq!(
        lab.status(0).counters.transitions,
        moves,
        "the reload moved lb0"
    );
    // So does an upgrade in place: the announcing instance resumes as it ran.
    let out = lab.vipctl(0, &["upgrade"]);
    assert!(
        out.contains("upgraded in place") && out.contains("1 master(s) kept their VIPs"),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.fabric.lbs_routed(IpAddr::V4(VIP)), [0, 1, 2]);
    let st = lab.status(0);
    assert_eq!(st.counters.transitions, moves, "the upgrade moved lb0");
    assert!(st.announce.is_some_and(|a| a.announced));
    assert!(lab.has_vip(0) && lab.has_route(0));

    // A tracker failure withdraws that node only.
    lab.set_ok(1, false);
    let took = lab.expect_hops(&[0, 2], WITHDRAW * 3, "lb1's tracker failed");
    lab.expect_hops6(&[0, 2], WITHDRAW * 3, "lb1's tracker failed (IPv6)");
    eprintln!(
        "{} tracker failure -> gone from the router: {took:?}",
        speaker.name()
    );
    assert!(
        !lab.has_vip(1) && !lab.has_route(1),
        "a withdrawn node keeps nothing"
    );
    let st = lab.status(1);
    let a = st.announce.unwrap();
    assert!(!a.announced && a.reason.starts_with("fault("), "{a:?}");

    // Maintenance drains another.
    lab.vipctl(2, &["maintenance", "on", "web"]);
    lab.expect_hops(&[0], WITHDRAW * 3, "lb2 in maintenance");

    // Recovery adds both back.
    lab.set_ok(1, true);
    lab.vipctl(2, &["maintenance", "off", "web"]);
    lab.expect_hops(
        &[0, 1, 2],
        WITHDRAW * 3,
        "lb1 healthy, lb2 out of maintenance",
    );
    lab.expect_hops6(&[0, 1, 2], WITHDRAW * 3, "recovery (IPv6)");

    // A clean stop withdraws at once.
    lab.nodes[0]
        .vipd
        .as_mut()
        .unwrap()
        .terminate(Duration::from_secs(5));
    lab.expect_hops(&[1, 2], WITHDRAW * 3, "lb0's vipd stopped");
    lab.expect_hops6(&[1, 2], WITHDRAW * 3, "lb0's vipd stopped (IPv6)");
    assert!(
        !lab.has_vip(0) && !lab.has_route(0),
        "a clean stop leaves nothing"
    );

    // A crash leaves the announcement (nothing runs to remove it: docs/bgp.md); the next
    // start, with the tracker now failing, withdraws it before anything else.
    lab.nodes[1].vipd.as_mut().unwrap().kill().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(lab.has_vip(1), "the crash left the VIP");
    lab.set_ok(1, false);
    let cfg = lab.nodes[1].cfg.clone();
    lab.nodes[1].vipd = Some(common::start_vipd(&lab.fabric.lbs[1], &cfg));
    lab.expect_hops(&[2], WITHDRAW * 3, "lb1 restarted with its tracker failed");
    if !lab.nodes[1]
        .vipd
        .as_ref()
        .unwrap()
        .log()
        .contains("left by a previous run")
    {
        lab.fail("the restart did not say it removed the crash's leftovers");
    }
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn active_active_ecmp_with_frr() {
    active_active(Speaker::Frr, "bgp-aa-frr");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn active_active_ecmp_with_bird() {
    active_active(Speaker::Bird, "bgp-aa-bird");
}

/// Active-standby: exactly one next hop, the VRRP master's (election over unicast VRRP
/// through the router), moving on failover and back on recovery (preempt).
fn active_standby(speaker: Speaker, tag: &str) {
    let lab = Lab::new(tag, speaker, 2, "active-standby");
    lab.expect_hops(&[0], SETTLE, "the master lb0 announces alone");
    lab.expect_hops6(&[0], SETTLE, "the master lb0 announces the IPv6 VIP alone");
    assert!(
        !lab.has_vip(1) && !lab.has_route(1),
        "the backup holds nothing"
    );
    assert_eq!(lab.status(1).state, "BACKUP");
    lab.set_ok(0, false);
    let took = lab.expect_hops(&[1], WITHDRAW * 3, "the master's tracker failed");
    lab.expect_hops6(&[1], WITHDRAW * 3, "the master's tracker failed (IPv6)");
    eprintln!(
        "{} active-standby failover -> router: {took:?}",
        speaker.name()
    );
    assert_eq!(lab.status(1).state, "MASTER");
    lab.set_ok(0, true);
    lab.expect_hops(&[0], WITHDRAW * 3, "lb0 healthy again preempts");
    assert!(lab.fabric.client.ping(IpAddr::V4(VIP)).unwrap());
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn active_standby_one_next_hop_with_frr() {
    active_standby(Speaker::Frr, "bgp-as-frr");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn active_standby_one_next_hop_with_bird() {
    active_standby(Speaker::Bird, "bgp-as-bird");
}

/// Host death: the load balancer that carries the client's flow goes silent (every frame on
/// its uplink dropped, link up): the router's BFD notices, the route goes, and the client's
/// pings are answered by the other load balancer, well before the 3 s hold timer would.
fn host_death(speaker: Speaker, tag: &str) {
    let lab = Lab::new(tag, speaker, 2, "active-active");
    lab.expect_hops(&[0, 1], SETTLE, "both announce");
    // Every BFD session up at the router before the fault: one per load balancer and family
    // (a session still in `init` would leave its BGP session to the 3 s hold timer).
    let t0 = Instant::now();
    while lab.fabric.bfd_up() < 4 {
        if t0.elapsed() > SETTLE {
            lab.fail("BFD sessions did not come up");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let before: Vec<u64> = (0..2).map(|i| lab.fabric.echo_replies(i)).collect();
    let pinger = {
        let client = lab.fabric.client.name().to_owned();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let c = common::Netns::existing(&client);
            while !stop.load(Ordering::Relaxed) {
                let _ = c.ping_timeout(IpAddr::V4(VIP), Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let carrying = (0..2)
        .max_by_key(|&i| lab.fabric.echo_replies(i) - before[i])
        .unwrap();
    let other = 1 - carrying;
    let t_fault = Instant::now();
    lab.fabric.isolate(carrying).unwrap();
    let gone = lab.expect_hops(&[other], WITHDRAW, "the dead load balancer's route is gone");
    let answered_before = lab.fabric.echo_replies(other);
    let moved = loop {
        if lab.fabric.echo_replies(other) > answered_before + 2 {
            break t_fault.elapsed();
        }
        if t_fault.elapsed() > WITHDRAW * 2 {
            lab.fail(&format!(
                "the other load balancer never answered the client (echo replies before {before:?}, lb0 {} lb1 {}, carrying lb{carrying})",
                lab.fabric.echo_replies(0),
                lab.fabric.echo_replies(1)
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    stop.store(true, Ordering::Relaxed);
    pinger.join().unwrap();
    let detect = Duration::from_millis(u64::from(BFD_INTERVAL_MS * BFD_MULTIPLIER));
    eprintln!(
        "{} host death: route gone after {gone:?}, client answered by lb{other} after {moved:?} (BFD detection {detect:?})",
        speaker.name()
    );
    lab.fabric.heal(carrying).unwrap();
    lab.expect_hops(&[0, 1], SETTLE, "the healed load balancer is back in ECMP");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn host_death_moves_traffic_by_bfd_with_frr() {
    host_death(Speaker::Frr, "bgp-hd-frr");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn host_death_moves_traffic_by_bfd_with_bird() {
    host_death(Speaker::Bird, "bgp-hd-bird");
}
