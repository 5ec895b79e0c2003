//! vipd and keepalived 2.x on the same virtual router: election by priority in both
//! directions, failover both ways on a crash (SIGKILL + cable cut) and on a clean stop
//! (SIGTERM: priority 0), and a single master once settled (seen from a client namespace).
//!
//! Host 0 runs vipd, host 1 runs keepalived. Needs root and keepalived (scripts/test.sh).
//!
//! keepalived quirk pinned here: it always sends VRRPv3-over-IPv4 checksums WITH the IPv4
//! pseudo-header and rejects the other variant ("Invalid VRRPv3 checksum"); vipd accepts
//! both on receive. So vipd with `checksum = "without-pseudo-header"` follows a keepalived
//! master, but keepalived ignores such a vipd master (two masters): only
//! `"with-pseudo-header"` (vipd's default) interoperates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{ChildGuard, Lan, TempDir};
use vipd_lab::keepalived::{self, Keepalived, Spec};
use vipd_lab::sniff::{Seen, Sniffer};
use vipd_proto::{self as proto, Version};

const VIPD: usize = 0;
const KA: usize = 1;
const VRID: u8 = 42;

#[derive(Clone, Copy)]
struct Case {
    tag: &'static str,
    version: u8,
    v6: bool,
    unicast: bool,
    auth: bool,
    checksum: Option<&'static str>,
    /// Another multicast group than RFC 9568's (keepalived's `vrrp_mcast_group4/6`).
    mcast_group: Option<&'static str>,
    /// RFC 9568 virtual MAC on both (keepalived's `use_vmac`, vipd's `vmac`).
    vmac: bool,
    /// VRRPv2 IPsec-AH on both (keepalived's `auth_type AH`, vipd's `auth_ah`).
    ah: bool,
}

impl Case {
    fn interval(&self) -> Duration {
        if self.version == 2 {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        }
    }
    fn proto_version(&self) -> Version {
        if self.version == 2 {
            Version::V2
        } else {
            Version::V3
        }
    }
}

/// The shared LAN: vipd on h0, keepalived on h1, a sniffing client.
struct Pair {
    case: Case,
    lan: Lan,
    dir: TempDir,
    /// In the client namespace: what a client sees (GARPs / NAs, multicast adverts).
    sniff: Sniffer,
    /// In the switch namespace (every port): also unicast adverts, which the bridge does not
    /// flood to the client.
    wire: Sniffer,
    vip: IpAddr,
    vipd: Option<ChildGuard>,
    ka: Option<Keepalived>,
    ka_runs: u32,
}

impl Pair {
    fn new(case: Case) -> Pair {
        common::require_root();
        assert!(keepalived::available(), "keepalived is not installed");
        let mut lan = Lan::new(case.tag, 2).unwrap();
        lan.add_client().unwrap();
        let sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
        let wire = Sniffer::start(Some(lan.switch().name())).unwrap();
        let dir = TempDir::new(case.tag);
        let vip = lan.vip(case.v6);
        Pair {
            case,
            lan,
            dir,
            sniff,
            wire,
            vip,
            vipd: None,
            ka: None,
            ka_runs: 0,
        }
    }

    /// The address host `i` advertises from.
    fn src(&self, i: usize) -> IpAddr {
        let h = self.lan.host(i);
        match (self.case.v6, self.case.unicast) {
            (false, _) => IpAddr::V4(h.v4),
            (true, false) => IpAddr::V6(h.ll),
            (true, true) => IpAddr::V6(h.v6),
        }
    }

    fn spec(&self, i: usize, priority: u8) -> Spec {
        let prefix = if self.case.v6 { 64 } else { 24 };
        let mut s = Spec::new(VRID, priority, self.case.interval(), self.vip, prefix);
        s.name = "VI_INTEROP".to_owned();
        s.version = self.case.version;
        if self.case.unicast {
            s.unicast = Some((self.src(i), vec![self.src(1 - i)]));
        }
        if self.case.auth || self.case.ah {
            s.auth_pass = Some("x".to_owned());
        }
        if i == VIPD {
            s.checksum = self.case.checksum.map(str::to_owned);
        }
        s
    }

    fn start_vipd(&mut self, priority: u8) {
        self.vipd = None;
        let spec = self.spec(VIPD, priority);
        let sock = self.dir.path().join("vipd.sock");
        let path = self.dir.path().join("vipd.toml");
        let mut toml = keepalived::vipd_toml("interop", &sock, &[spec]);
        if let Some(g) = self.case.mcast_group {
            let key = if self.case.v6 {
                "multicast_group_v6"
            } else {
                "multicast_group_v4"
            };
            toml = toml.replacen("[global]\n", &format!("[global]\n{key} = \"{g}\"\n"), 1);
        }
        if self.case.ah {
            toml = toml.replacen("auth_pass = ", "auth_ah = ", 1);
        }
        if self.case.vmac {
            // keepalived names it vrrp.VRID for IPv6 too.
            toml = toml.replacen(
                "[[instance]]\n",
                &format!("[[instance]]\nvmac = true\nvmac_interface = \"vrrp.{VRID}\"\n"),
                1,
            );
        }
        std::fs::write(&path, toml).unwrap();
        let child = self
            .lan
            .host(VIPD)
            .spawn(&[
                env!("CARGO_BIN_EXE_vipd"),
                "--config",
                path.to_str().unwrap(),
                "--log",
                "debug",
            ])
            .unwrap();
        self.vipd = Some(child);
    }

    fn start_ka(&mut self, priority: u8) {
        // The previous keepalived (if any) must be gone first, and each run gets its own pid
        // files (dropping a Keepalived kills whatever its pid file names).
        self.ka = None;
        self.ka_runs += 1;
        let name = format!("ka{}", self.ka_runs);
        let mut conf = keepalived::keepalived_conf(&name, &[self.spec(KA, priority)]);
        if let Some(g) = self.case.mcast_group {
            let key = if self.case.v6 {
                "vrrp_mcast_group6"
            } else {
                "vrrp_mcast_group4"
            };
            conf = conf.replacen(
                "global_defs {\n",
                &format!("global_defs {{\n  {key} {g}\n"),
                1,
            );
        }
        if self.case.ah {
            conf = conf.replacen("auth_type PASS", "auth_type AH", 1);
        }
        if self.case.vmac {
            conf = conf.replacen(
                "vrrp_instance VI_INTEROP {\n",
                "vrrp_instance VI_INTEROP {\n  use_vmac\n",
                1,
            );
        }
        let k = Keepalived::start(&self.lan.host(KA).ns, self.dir.path(), &name, &conf).unwrap();
        self.ka = Some(k);
    }

    fn logs(&self) -> String {
        format!(
            "---- vipd log:\n{}\n---- keepalived log:\n{}",
            self.vipd.as_ref().map(|c| c.log()).unwrap_or_default(),
            self.ka.as_ref().map(|k| k.log()).unwrap_or_default()
        )
    }

    /// The MAC host `i` announces the VIP with: the virtual MAC with `vmac` (the same on
    /// both), else its interface's.
    fn mac_of(&self, i: usize) -> [u8; 6] {
        if self.case.vmac {
            [
                0x00,
                0x00,
                0x5e,
                0x00,
                if self.case.v6 { 2 } else { 1 },
                VRID,
            ]
        } else {
            self.lan.host(i).mac
        }
    }

    fn holds(&self, i: usize) -> bool {
        if self.case.vmac {
            // Both name the VMAC device vrrp.VRID.
            let dev = format!("vrrp.{VRID}");
            return self.lan.host(i).has_addr(&dev, self.vip).unwrap_or(false);
        }
        self.lan.host(i).has_addr("eth0", self.vip).unwrap()
    }

    /// Whether `e` is a gratuitous ARP / unsolicited NA for the VIP from host `i`.
    fn announces(&self, e: &vipd_lab::sniff::Event, i: usize) -> bool {
        let mac = self.mac_of(i);
        e.eth_src == mac
            && match (&e.what, self.vip) {
                (Seen::Garp { ip, .. }, IpAddr::V4(v)) => *ip == v,
                (Seen::Na { target, .. }, IpAddr::V6(v)) => *target == v,
                _ => false,
            }
    }

    /// Waits until host `master` (advertising `priority`) is the only master among `alive`:
    /// it alone holds the VIP, then for a settle window only it advertises (priority > 0) on
    /// VRID and only it holds the VIP.
    fn settled(&mut self, master: usize, priority: u8, alive: &[usize], what: &str) {
        let t0 = Instant::now();
        let i = self.case.interval();
        let limit = proto::master_down_interval(self.case.proto_version(), 1, i) * 2
            + Duration::from_secs(3);
        let others: Vec<usize> = alive.iter().copied().filter(|&h| h != master).collect();
        let ok = common::wait_until(limit, || {
            self.holds(master) && others.iter().all(|&h| !self.holds(h))
        });
        assert!(
            ok.is_some(),
            "{what}: host {master} never became the sole VIP holder\n{}",
            self.logs()
        );
        // Let a takeover's stragglers pass, then watch a window of adverts.
        std::thread::sleep(Duration::from_millis(200));
        let from = Instant::now();
        let window = i * 2 + Duration::from_millis(150);
        std::thread::sleep(window);
        let to = Instant::now();
        let msrc = self.src(master);
        let mut events: Vec<_> = self
            .wire
            .events()
            .iter()
            .filter(|e| e.at >= from && e.at <= to)
            .cloned()
            .collect();
        events.extend(
            self.sniff
                .events()
                .iter()
                .filter(|e| e.at >= from && e.at <= to)
                .cloned(),
        );
        let mut adverts = 0;
        for e in &events {
            if let Seen::Advert {
                src,
                vrid,
                priority: p,
                ..
            } = e.what
            {
                if vrid != VRID {
                    continue;
                }
                assert!(
                    src == msrc && p == priority,
                    "{what}: after settling, an advert from {src} priority {p} (expected only \
                     {msrc} priority {priority})\n{}",
                    self.logs()
                );
                adverts += 1;
            }
            // With a VMAC every router announces from the same MAC: a backup's announcement
            // cannot be told from the master's here (the adverts above and `holds` still
            // tell who is master).
            for &h in others.iter().filter(|_| !self.case.vmac) {
                assert!(
                    !self.announces(e, h),
                    "{what}: host {h} announced the VIP after settling\n{}",
                    self.logs()
                );
            }
        }
        assert!(
            adverts >= 2,
            "{what}: only {adverts} adverts from the master in {window:?}"
        );
        assert!(self.holds(master), "{what}: master lost the VIP");
        for &h in &others {
            assert!(!self.holds(h), "{what}: host {h} also holds the VIP");
        }
        if std::env::var_os("INTEROP_LOGS").is_some() {
            eprintln!("{}", self.logs());
        }
        eprintln!(
            "[{}] {what}: settled on host {master} in {:.0} ms",
            self.case.tag,
            (to - t0).as_secs_f64() * 1e3
        );
    }

    /// Waits for host `next` to announce the VIP after the fault at `t0`; checks the time
    /// against `bound` with a generous tolerance (this is a test, not the benchmark).
    fn takeover(&mut self, next: usize, t0: Instant, bound: Duration, what: &str) {
        let tol = self.case.interval() + Duration::from_millis(400);
        let mac = self.mac_of(next);
        let vip = self.vip;
        let e = self
            .sniff
            .wait_for(t0, bound + tol + Duration::from_secs(2), |e| {
                e.eth_src == mac
                    && match (&e.what, vip) {
                        (Seen::Garp { ip, .. }, IpAddr::V4(v)) => *ip == v,
                        (Seen::Na { target, .. }, IpAddr::V6(v)) => *target == v,
                        _ => false,
                    }
            });
        let Some(e) = e else {
            panic!("{what}: host {next} never announced {vip}\n{}", self.logs());
        };
        let took = e.at - t0;
        eprintln!(
            "[{}] {what}: takeover in {:.1} ms (bound {:.1} ms)",
            self.case.tag,
            took.as_secs_f64() * 1e3,
            bound.as_secs_f64() * 1e3
        );
        assert!(
            took <= bound + tol,
            "{what}: takeover took {took:?}, bound {bound:?} + {tol:?}\n{}",
            self.logs()
        );
    }

    /// Waits for a priority-0 advert from host `i` after `t0`.
    fn saw_priority0(&mut self, i: usize, t0: Instant, what: &str) {
        let src = self.src(i);
        let e = self.wire.wait_for(
            t0,
            Duration::from_secs(3),
            |e| matches!(e.what, Seen::Advert { src: s, priority: 0, vrid: VRID, .. } if s == src),
        );
        assert!(
            e.is_some(),
            "{what}: no priority-0 advert from host {i}\n{}",
            self.logs()
        );
    }
}

/// The whole interop drill for one case.
fn drill(case: Case) {
    let mut p = Pair::new(case);
    let v = case.proto_version();
    let i = case.interval();

    // A. Both start; vipd has the higher priority and wins.
    p.start_vipd(150);
    p.start_ka(100);
    p.settled(VIPD, 150, &[VIPD, KA], "A: vipd 150 vs keepalived 100");

    // B. vipd crashes and loses its cable: keepalived takes over.
    let t0 = Instant::now();
    p.vipd.as_mut().unwrap().kill().unwrap();
    p.lan.link_down(VIPD).unwrap();
    p.takeover(
        KA,
        t0,
        proto::master_down_interval(v, 100, i),
        "B: vipd crash",
    );
    p.settled(KA, 100, &[KA], "B: keepalived after vipd crash");

    // C. vipd comes back with a lower priority: keepalived stays master.
    p.lan.link_up(VIPD).unwrap();
    p.start_vipd(50);
    p.settled(KA, 100, &[VIPD, KA], "C: vipd 50 vs keepalived 100");

    // D. keepalived stops cleanly (priority 0): vipd takes over after its skew time.
    let t0 = Instant::now();
    p.ka.as_ref().unwrap().stop().unwrap();
    p.saw_priority0(KA, t0, "D: keepalived SIGTERM");
    p.takeover(VIPD, t0, proto::skew_time(v, 50, i), "D: keepalived stop");
    let st =
        p.ka.as_mut()
            .unwrap()
            .wait_exit(Duration::from_secs(5))
            .unwrap();
    assert!(st.is_some(), "keepalived did not exit on SIGTERM");
    p.settled(VIPD, 50, &[VIPD, KA], "D: vipd after keepalived stop");

    // E. keepalived comes back with a higher priority and preempts vipd.
    p.start_ka(100);
    p.settled(KA, 100, &[VIPD, KA], "E: keepalived 100 preempts vipd 50");

    // F. keepalived crashes (both processes SIGKILLed) and loses its cable: vipd takes over.
    let t0 = Instant::now();
    p.ka.as_mut().unwrap().crash().unwrap();
    p.lan.link_down(KA).unwrap();
    p.takeover(
        VIPD,
        t0,
        proto::master_down_interval(v, 50, i),
        "F: keepalived crash",
    );
    p.settled(VIPD, 50, &[VIPD], "F: vipd after keepalived crash");

    // G. keepalived comes back with a lower priority: vipd stays master.
    p.lan.link_up(KA).unwrap();
    p.start_ka(20);
    p.settled(VIPD, 50, &[VIPD, KA], "G: vipd 50 vs keepalived 20");

    // H. vipd stops cleanly (priority 0): keepalived takes over after its skew time.
    let t0 = Instant::now();
    p.vipd
        .as_ref()
        .unwrap()
        .signal(nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    p.saw_priority0(VIPD, t0, "H: vipd SIGTERM");
    p.takeover(KA, t0, proto::skew_time(v, 20, i), "H: vipd stop");
    let st = p
        .vipd
        .as_mut()
        .unwrap()
        .wait_timeout(Duration::from_secs(5))
        .unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "vipd did not exit cleanly: {st:?}"
    );
    p.settled(KA, 20, &[VIPD, KA], "H: keepalived after vipd stop");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv4_multicast() {
    drill(Case {
        tag: "ka-v3m",
        version: 3,
        v6: false,
        unicast: false,
        auth: false,
        checksum: Some("with-pseudo-header"),
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv4_unicast() {
    drill(Case {
        tag: "ka-v3u",
        version: 3,
        v6: false,
        unicast: true,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv6_multicast() {
    drill(Case {
        tag: "ka-v36",
        version: 3,
        v6: true,
        unicast: false,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv6_unicast() {
    drill(Case {
        tag: "ka-v36u",
        version: 3,
        v6: true,
        unicast: true,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v2_ipv4_multicast() {
    drill(Case {
        tag: "ka-v2m",
        version: 2,
        v6: false,
        unicast: false,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v2_ipv4_auth_unicast() {
    drill(Case {
        tag: "ka-v2a",
        version: 2,
        v6: false,
        unicast: true,
        auth: true,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v2_ipv4_unicast() {
    drill(Case {
        tag: "ka-v2u",
        version: 2,
        v6: false,
        unicast: true,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v2_ipv4_auth_multicast() {
    drill(Case {
        tag: "ka-v2am",
        version: 2,
        v6: false,
        unicast: false,
        auth: true,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: false,
    });
}

/// vipd sending VRRPv3/IPv4 checksums WITHOUT the pseudo-header: vipd accepts keepalived's
/// adverts (it verifies either variant), keepalived rejects vipd's.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv4_without_pseudo_header_is_one_way() {
    let case = Case {
        tag: "ka-nops",
        version: 3,
        v6: false,
        unicast: false,
        auth: false,
        checksum: Some("without-pseudo-header"),
        mcast_group: None,
        vmac: false,
        ah: false,
    };
    let mut p = Pair::new(case);
    // keepalived higher: vipd accepts its (pseudo-header) adverts and stays backup.
    p.start_ka(150);
    p.start_vipd(100);
    p.settled(
        KA,
        150,
        &[VIPD, KA],
        "keepalived 150 vs vipd 100 (no pseudo-header)",
    );
    let vlog = p.vipd.as_ref().unwrap().log();
    assert!(
        !vlog.contains("bad_checksum"),
        "vipd dropped keepalived's checksums:\n{vlog}"
    );
    // ... but says that keepalived, which computes the other form, drops ours.
    assert!(
        vlog.contains("alarm checksum_form")
            && vlog.contains("with-pseudo-header, ours without-pseudo-header"),
        "no checksum-form alarm about keepalived:\n{vlog}"
    );

    // vipd higher: vipd preempts, but keepalived drops vipd's adverts as corrupt and keeps
    // (or takes) the master role too: the two do NOT interoperate in this mode.
    p.vipd.as_mut().unwrap().kill().unwrap();
    p.start_vipd(200);
    let vip = p.vip;
    let both = common::wait_until(Duration::from_secs(5), || p.holds(VIPD) && p.holds(KA));
    let klog = p.ka.as_ref().unwrap().log();
    eprintln!(
        "keepalived on vipd's adverts: {:?}",
        klog.lines().find(|l| l.contains("checksum"))
    );
    assert!(
        klog.contains("Invalid VRRPv3 checksum"),
        "keepalived accepted adverts without the pseudo-header? (update docs/config.md)\n{klog}"
    );
    assert!(
        both.is_some(),
        "expected both to hold {vip} (keepalived ignores vipd's adverts); vipd {} keepalived {}\n{}",
        p.holds(VIPD),
        p.holds(KA),
        p.logs()
    );
}

/// keepalived's `vrrp_mcast_group4` / vipd's `multicast_group_v4`: both on 224.0.0.19, the
/// whole drill (each side hears the other only on that group).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv4_custom_multicast_group() {
    drill(Case {
        tag: "ka-mcg4",
        version: 3,
        v6: false,
        unicast: false,
        auth: false,
        checksum: None,
        mcast_group: Some("224.0.0.19"),
        vmac: false,
        ah: false,
    });
}

/// The same over IPv6 with ff02::13.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv6_custom_multicast_group() {
    drill(Case {
        tag: "ka-mcg6",
        version: 3,
        v6: true,
        unicast: false,
        auth: false,
        checksum: None,
        mcast_group: Some("ff02::13"),
        vmac: false,
        ah: false,
    });
}

/// RFC 9568 virtual MAC on both sides (keepalived's `use_vmac`): the whole drill, VIPs on
/// vrrp.42 and gratuitous ARPs from 00:00:5e:00:01:2a.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv4_vmac() {
    drill(Case {
        tag: "ka-vmac",
        version: 3,
        v6: false,
        unicast: false,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: true,
        ah: false,
    });
}

/// The same over IPv6 (00:00:5e:00:02:2a; the adverts' link-local source on the VMAC).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v3_ipv6_vmac() {
    drill(Case {
        tag: "ka-vmac6",
        version: 3,
        v6: true,
        unicast: false,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: true,
        ah: false,
    });
}

/// VRRPv2 IPsec-AH against keepalived's `auth_type AH`, both directions of every failover
/// (multicast).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v2_ipv4_ah_multicast() {
    drill(Case {
        tag: "ka-v2ah",
        version: 2,
        v6: false,
        unicast: false,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: true,
    });
}

/// The same over unicast (the ICV leaves the TTL out there, as keepalived).
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn v2_ipv4_ah_unicast() {
    drill(Case {
        tag: "ka-v2ahu",
        version: 2,
        v6: false,
        unicast: true,
        auth: false,
        checksum: None,
        mcast_group: None,
        vmac: false,
        ah: true,
    });
}
