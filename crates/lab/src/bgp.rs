//! A routed fabric for the BGP tests and benchmarks: a router namespace running FRR's bgpd
//! (ECMP over every load balancer, BFD), load-balancer namespaces in subnets of their own,
//! each with a BGP speaker of the operator's choice (FRR or BIRD 2) that announces what vipd
//! places, and a client behind the router. Dev-only.
//!
//! ```text
//!   client 10.200.0.2 ── cl ┐
//!                           router (AS 65000, bgpd + bfdd + zebra, maximum-paths 8)
//!   lb0 10.100.0.2 ── lb0 ──┤  10.100.N.1 on lbN
//!   lb1 10.100.1.2 ── lb1 ──┘
//! ```
//! Load balancers are AS 65001, their uplink is `up0`, their default route the router. IPv6
//! alongside: `fd00:100:N::1/64` / `fd00:100:N::2/64`, the client `fd00:200::2/64`, a session
//! per family.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::frr::{Daemons, FRR_LIB};
use crate::lan::{netns_add, netns_del, require_root, unique_stem};
use crate::ns::{ChildGuard, Netns, Scratch};

/// The VIP the tests announce.
pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The IPv6 VIP the tests announce.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x10);
/// The router's AS.
pub const ROUTER_AS: u32 = 65000;
/// The load balancers' AS.
pub const LB_AS: u32 = 65001;
/// The kernel table vipd fills for BIRD (`[instance.announce] table`).
pub const TABLE: u32 = 100;
/// BFD: transmit/receive interval and multiplier (detection 3 x 100 ms).
pub const BFD_INTERVAL_MS: u32 = 100;
/// See [`BFD_INTERVAL_MS`].
pub const BFD_MULTIPLIER: u32 = 3;

/// The BGP speaker on the load balancers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// FRR's zebra + bgpd + bfdd: redistributes the connected VIP routes of `lo`.
    Frr,
    /// BIRD 2: learns vipd's host routes from kernel table [`TABLE`].
    Bird,
}

impl Speaker {
    /// Whether its daemons are installed (FRR: Debian's `frr`; BIRD: `bird2`).
    pub fn available(self) -> bool {
        match self {
            Speaker::Frr => ["zebra", "bgpd", "bfdd"]
                .iter()
                .all(|d| Path::new(FRR_LIB).join(d).exists()),
            Speaker::Bird => Path::new("/usr/sbin/bird").exists(),
        }
    }

    /// Its name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Speaker::Frr => "FRR",
            Speaker::Bird => "BIRD",
        }
    }
}

/// bfdd's config: the profile both ends use.
pub fn frr_bfd_conf() -> String {
    format!(
        "bfd\n profile fast\n  detect-multiplier {BFD_MULTIPLIER}\n  receive-interval {BFD_INTERVAL_MS}\n  transmit-interval {BFD_INTERVAL_MS}\n exit\nexit\n"
    )
}

/// FRR bgpd's config for a load balancer (doc recipe: docs/bgp.md).
pub fn frr_lb_conf(lb: usize) -> String {
    format!(
        "ip prefix-list VIPD-VIPS seq 5 permit 203.0.113.0/24 ge 32\n\
         ipv6 prefix-list VIPD-VIPS6 seq 5 permit 2001:db8:100::/48 ge 128\n\
         route-map VIPD-VIPS permit 10\n match interface lo\n match ip address prefix-list VIPD-VIPS\nexit\n\
         route-map VIPD-VIPS6 permit 10\n match interface lo\n match ipv6 address prefix-list VIPD-VIPS6\nexit\n\
         router bgp {LB_AS}\n bgp router-id 10.100.{lb}.2\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n\
         \x20neighbor UP peer-group\n neighbor UP remote-as {ROUTER_AS}\n neighbor UP timers 1 3\n\
         \x20neighbor UP timers connect 1\n neighbor UP advertisement-interval 0\n neighbor UP bfd profile fast\n\
         \x20neighbor 10.100.{lb}.1 peer-group UP\n neighbor fd00:100:{lb}::1 peer-group UP\n\
         \x20address-family ipv4 unicast\n  neighbor 10.100.{lb}.1 activate\n  redistribute connected route-map VIPD-VIPS\n exit-address-family\n\
         \x20address-family ipv6 unicast\n  neighbor fd00:100:{lb}::1 activate\n  redistribute connected route-map VIPD-VIPS6\n exit-address-family\nexit\n"
    )
}

/// BIRD 2's config for a load balancer (doc recipe: docs/bgp.md).
pub fn bird_lb_conf(lb: usize) -> String {
    format!(
        "log stderr all;\nrouter id 10.100.{lb}.2;\n\
         protocol device {{ }}\n\
         # vipd's host routes (protocol 18) in table {TABLE}: learned, never written back.\n\
         protocol kernel vipd {{\n  kernel table {TABLE};\n  learn;\n  scan time 10;\n  ipv4 {{ import all; export none; }};\n}}\n\
         protocol kernel vipd6 {{\n  kernel table {TABLE};\n  learn;\n  scan time 10;\n  ipv6 {{ import all; export none; }};\n}}\n\
         protocol bfd {{\n  interface \"up0\" {{ min rx interval {BFD_INTERVAL_MS} ms; min tx interval {BFD_INTERVAL_MS} ms; idle tx interval {BFD_INTERVAL_MS} ms; multiplier {BFD_MULTIPLIER}; }};\n}}\n\
         protocol bgp upstream {{\n  local 10.100.{lb}.2 as {LB_AS};\n  neighbor 10.100.{lb}.1 as {ROUTER_AS};\n\
         \x20 hold time 3;\n  keepalive time 1;\n  connect retry time 1;\n  error wait time 1, 5;\n  bfd on;\n\
         \x20 ipv4 {{ import none; export where source = RTS_INHERIT && net ~ [ 203.0.113.0/24{{32,32}} ]; next hop self; }};\n}}\n\
         protocol bgp upstream6 {{\n  local fd00:100:{lb}::2 as {LB_AS};\n  neighbor fd00:100:{lb}::1 as {ROUTER_AS};\n\
         \x20 hold time 3;\n  keepalive time 1;\n  connect retry time 1;\n  error wait time 1, 5;\n  bfd on;\n\
         \x20 ipv6 {{ import none; export where source = RTS_INHERIT && net ~ [ 2001:db8:100::/48{{128,128}} ]; next hop self; }};\n}}\n"
    )
}

/// The router's bgpd config: one peer per load balancer, ECMP, BFD.
pub fn frr_router_conf(lbs: usize) -> String {
    let mut s = format!(
        "router bgp {ROUTER_AS}\n bgp router-id 10.200.0.1\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n\
         \x20bgp bestpath as-path multipath-relax\n\
         \x20neighbor LB peer-group\n neighbor LB remote-as {LB_AS}\n neighbor LB timers 1 3\n neighbor LB timers connect 1\n\
         \x20neighbor LB advertisement-interval 0\n neighbor LB bfd profile fast\n\
         \x20neighbor LB6 peer-group\n neighbor LB6 remote-as {LB_AS}\n neighbor LB6 timers 1 3\n neighbor LB6 timers connect 1\n\
         \x20neighbor LB6 advertisement-interval 0\n neighbor LB6 bfd profile fast\n"
    );
    for i in 0..lbs {
        s.push_str(&format!(
            " neighbor 10.100.{i}.2 peer-group LB\n neighbor fd00:100:{i}::2 peer-group LB6\n"
        ));
    }
    s.push_str(
        " address-family ipv4 unicast\n  neighbor LB activate\n  maximum-paths 8\n exit-address-family\n\
         \x20address-family ipv6 unicast\n  neighbor LB6 activate\n  maximum-paths 8\n exit-address-family\nexit\n",
    );
    s
}

/// zebra, bfdd and bgpd with `bgpd_conf` in `ns`.
fn start_frr(ns: &Netns, dir: &Path, tag: &str, bgpd_conf: &str) -> io::Result<Daemons> {
    let bfd = frr_bfd_conf();
    Daemons::start(
        ns,
        dir,
        tag,
        &[("zebra", ""), ("bfdd", &bfd), ("bgpd", bgpd_conf)],
    )
}

/// BIRD running in the foreground in a namespace, killed on drop.
struct Bird {
    _child: ChildGuard,
    sock: PathBuf,
    log: PathBuf,
}

/// One load balancer's BGP speaker.
enum LbSpeaker {
    Frr(Daemons),
    Bird(Bird),
    ExaBgp(ChildGuard),
}

/// Whether ExaBGP and its healthcheck are installed (Debian's `exabgp`), the comparison of
/// the benchmark.
pub fn exabgp_available() -> bool {
    Path::new("/usr/sbin/exabgp").exists() && Path::new("/usr/bin/exabgp-healthcheck").exists()
}

/// ExaBGP's config for a load balancer: its healthcheck runs the program `check` (a path:
/// ExaBGP splits the line on spaces) every `interval_s`
/// (rise 1, fall 1), withdraws on failure (`--withdraw-on-down`; its default is to announce
/// with a worse MED) and keeps the VIP on `lo` (`--dynamic-ip-setup`).
pub fn exabgp_lb_conf(lb: usize, check: &str, interval_s: f64) -> String {
    format!(
        "process hc {{\n  run /usr/bin/exabgp-healthcheck --no-syslog --cmd {check} --interval {interval_s} \
         --fast-interval {interval_s} --rise 1 --fall 1 --withdraw-on-down --ip {VIP}/32 --dynamic-ip-setup;\n  encoder text;\n}}\n\
         neighbor 10.100.{lb}.1 {{\n  router-id 10.100.{lb}.2;\n  local-address 10.100.{lb}.2;\n  local-as {LB_AS};\n  peer-as {ROUTER_AS};\n\
         \x20 hold-time 3;\n  api {{ processes [ hc ]; }}\n}}\n"
    )
}

/// The fabric; every namespace and daemon goes on drop (also on panic).
pub struct Fabric {
    stem: String,
    /// The router namespace.
    pub router: Netns,
    /// The load balancers' namespaces (uplink `up0`, address `10.100.N.2/24`).
    pub lbs: Vec<Netns>,
    /// The client namespace (`10.200.0.2/24`, default route the router).
    pub client: Netns,
    speakers: Vec<Option<LbSpeaker>>,
    router_frr: Option<Daemons>,
    created: Vec<String>,
    dir: Scratch,
}

impl Fabric {
    /// Builds the namespaces and links and starts the router's FRR; the load balancers'
    /// speakers are started with [`Fabric::start_speaker`].
    pub fn new(tag: &str, lbs: usize) -> io::Result<Fabric> {
        require_root()?;
        let (stem, _) = unique_stem(tag);
        let mut f = Fabric {
            router: Netns::new(format!("{stem}-rt")),
            lbs: Vec::new(),
            client: Netns::new(format!("{stem}-cl")),
            stem: stem.clone(),
            speakers: Vec::new(),
            router_frr: None,
            created: Vec::new(),
            dir: Scratch::new(tag)?,
        };
        for ns in [f.router.name().to_owned(), f.client.name().to_owned()] {
            netns_add(&ns)?;
            f.created.push(ns);
        }
        let no_dad = [
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ];
        f.client.sysctl(&no_dad)?;
        f.router.sysctl(&no_dad)?;
        f.router.sysctl(&[
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv6.fib_multipath_hash_policy=1",
        ])?;
        for ns in [&f.router, &f.client] {
            ns.ip(&["link", "set", "lo", "up"])?;
        }
        f.router.ip(&[
            "link",
            "add",
            "cl",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            f.client.name(),
        ])?;
        f.router
            .ip(&["addr", "add", "10.200.0.1/24", "dev", "cl"])?;
        f.router.ip(&["link", "set", "cl", "up"])?;
        f.client
            .ip(&["addr", "add", "10.200.0.2/24", "dev", "eth0"])?;
        f.router
            .ip(&["addr", "add", "fd00:200::1/64", "dev", "cl", "nodad"])?;
        f.client
            .ip(&["addr", "add", "fd00:200::2/64", "dev", "eth0", "nodad"])?;
        f.client.ip(&["link", "set", "eth0", "up"])?;
        f.client
            .ip(&["route", "add", "default", "via", "10.200.0.1"])?;
        f.client
            .ip(&["-6", "route", "add", "default", "via", "fd00:200::1"])?;
        for i in 0..lbs {
            let ns = Netns::new(format!("{stem}-lb{i}"));
            netns_add(ns.name())?;
            f.created.push(ns.name().to_owned());
            ns.sysctl(&no_dad)?;
            ns.ip(&["link", "set", "lo", "up"])?;
            let port = format!("lb{i}");
            f.router.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "up0",
                "netns",
                ns.name(),
            ])?;
            f.router
                .ip(&["addr", "add", &format!("10.100.{i}.1/24"), "dev", &port])?;
            f.router.ip(&["link", "set", &port, "up"])?;
            ns.ip(&["addr", "add", &format!("10.100.{i}.2/24"), "dev", "up0"])?;
            ns.ip(&["link", "set", "up0", "up"])?;
            ns.ip(&["route", "add", "default", "via", &format!("10.100.{i}.1")])?;
            f.router.ip(&[
                "addr",
                "add",
                &format!("fd00:100:{i}::1/64"),
                "dev",
                &port,
                "nodad",
            ])?;
            ns.ip(&[
                "addr",
                "add",
                &format!("fd00:100:{i}::2/64"),
                "dev",
                "up0",
                "nodad",
            ])?;
            ns.ip(&[
                "-6",
                "route",
                "add",
                "default",
                "via",
                &format!("fd00:100:{i}::1"),
            ])?;
            f.lbs.push(ns);
            f.speakers.push(None);
        }
        let conf = frr_router_conf(lbs);
        f.router_frr = Some(start_frr(&f.router, f.dir.path(), "router", &conf)?);
        Ok(f)
    }

    /// A scratch directory of the fabric's (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The namespace stem (unique per fabric).
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// Starts load balancer `lb`'s BGP speaker.
    pub fn start_speaker(&mut self, lb: usize, speaker: Speaker) -> io::Result<()> {
        let ns = &self.lbs[lb];
        let tag = format!("lb{lb}");
        let s = match speaker {
            Speaker::Frr => LbSpeaker::Frr(start_frr(ns, self.dir.path(), &tag, &frr_lb_conf(lb))?),
            Speaker::Bird => {
                let d = self.dir.path().join(format!("bird-{tag}"));
                std::fs::create_dir_all(&d)?;
                let conf = d.join("bird.conf");
                std::fs::write(&conf, bird_lb_conf(lb))?;
                let sock = d.join("bird.ctl");
                let log = d.join("bird.log");
                let child = ns.spawn_logged(
                    &[
                        "/usr/sbin/bird",
                        "-f",
                        "-c",
                        &conf.display().to_string(),
                        "-s",
                        &sock.display().to_string(),
                        "-P",
                        &d.join("bird.pid").display().to_string(),
                    ],
                    &log,
                )?;
                LbSpeaker::Bird(Bird {
                    _child: child,
                    sock,
                    log,
                })
            }
        };
        self.speakers[lb] = Some(s);
        Ok(())
    }

    /// Starts ExaBGP with [`exabgp_lb_conf`] on load balancer `lb` (no vipd there).
    pub fn start_exabgp(&mut self, lb: usize, check: &str, interval_s: f64) -> io::Result<()> {
        let d = self.dir.path().join(format!("exabgp-lb{lb}"));
        std::fs::create_dir_all(&d)?;
        let conf = d.join("exabgp.conf");
        std::fs::write(&conf, exabgp_lb_conf(lb, check, interval_s))?;
        let child = self.lbs[lb].spawn_logged(
            &[
                "env",
                "exabgp.daemon.user=root",
                "exabgp.daemon.daemonize=false",
                "exabgp.api.cli=false",
                "exabgp.log.destination=stdout",
                "/usr/sbin/exabgp",
                &conf.display().to_string(),
            ],
            &d.join("exabgp.log"),
        )?;
        self.speakers[lb] = Some(LbSpeaker::ExaBgp(child));
        Ok(())
    }

    /// Stops load balancer `lb`'s speaker (SIGKILL).
    pub fn kill_speaker(&mut self, lb: usize) {
        self.speakers[lb] = None;
    }

    /// The load balancers the router forwards `vip` to (their index, by the router's port
    /// towards them: `lbN`), sorted.
    pub fn lbs_routed(&self, vip: IpAddr) -> Vec<usize> {
        let fam = if vip.is_ipv6() { "-6" } else { "-4" };
        let prefix = match vip {
            IpAddr::V4(a) => format!("{a}/32"),
            IpAddr::V6(a) => format!("{a}/128"),
        };
        let out = self
            .router
            .ip(&[fam, "route", "show", "exact", &prefix])
            .unwrap_or_default();
        let mut lbs: Vec<usize> = out
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "dev")
            .filter_map(|w| w[1].strip_prefix("lb")?.parse().ok())
            .collect();
        lbs.sort_unstable();
        lbs.dedup();
        lbs
    }

    /// Waits until [`Fabric::lbs_routed`] is `want` (sorted); how long that took.
    pub fn wait_lbs(&self, vip: IpAddr, want: &[usize], timeout: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        loop {
            if self.lbs_routed(vip) == want {
                return Some(t0.elapsed());
            }
            if t0.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Load balancer `lb`'s IPv6 uplink address (`fd00:100:N::2`).
    pub fn lb_addr6(lb: usize) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x100, lb as u16, 0, 0, 0, 0, 2)
    }

    /// Load balancer `lb`'s uplink address as the router sees it.
    pub fn lb_addr(lb: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 100, lb as u8, 2))
    }

    /// Whether every load balancer's BGP session with the router is up (the router's view).
    pub fn sessions_up(&self) -> bool {
        let Some(frr) = &self.router_frr else {
            return false;
        };
        let Ok(out) = frr.vtysh(&self.router, "show bgp summary json") else {
            return false;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) else {
            return false;
        };
        (0..self.lbs.len()).all(|i| {
            v["ipv4Unicast"]["peers"][format!("10.100.{i}.2")]["state"].as_str()
                == Some("Established")
                && v["ipv6Unicast"]["peers"][Fabric::lb_addr6(i).to_string()]["state"].as_str()
                    == Some("Established")
        })
    }

    /// BFD sessions up at the router.
    pub fn bfd_up(&self) -> usize {
        let Some(frr) = &self.router_frr else {
            return 0;
        };
        let out = frr
            .vtysh(&self.router, "show bfd peers json")
            .unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .map_or(0, |a| {
                a.iter()
                    .filter(|p| p["status"].as_str() == Some("up"))
                    .count()
            })
    }

    /// Waits until [`Fabric::sessions_up`].
    pub fn wait_sessions(&self, timeout: Duration) -> io::Result<()> {
        let t0 = Instant::now();
        while !self.sessions_up() {
            if t0.elapsed() > timeout {
                return Err(io::Error::other(format!(
                    "BGP sessions not established within {timeout:?}\n{}",
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// "Host death" of load balancer `lb`: every frame in and out of its uplink is dropped
    /// (an nftables netdev table), the link stays up, so only BFD (or the hold timer) can
    /// tell the router.
    pub fn isolate(&self, lb: usize) -> io::Result<()> {
        let ns = &self.lbs[lb];
        let script = "table netdev vipd_lab_dead {\n\
             chain in { type filter hook ingress device \"up0\" priority 0; policy drop; }\n\
             chain out { type filter hook egress device \"up0\" priority 0; policy drop; }\n}\n";
        let path = self.dir.path().join(format!("dead-lb{lb}.nft"));
        std::fs::write(&path, script)?;
        ns.exec_ok(&["nft", "-f", &path.display().to_string()])?;
        Ok(())
    }

    /// Undoes [`Fabric::isolate`].
    pub fn heal(&self, lb: usize) -> io::Result<()> {
        self.lbs[lb].exec_ok(&["nft", "delete", "table", "netdev", "vipd_lab_dead"])?;
        Ok(())
    }

    /// ICMP echo requests load balancer `lb` has answered (its `/proc/net/snmp` IcmpOutEchoReps).
    pub fn echo_replies(&self, lb: usize) -> u64 {
        let out = self.lbs[lb]
            .exec_ok(&["cat", "/proc/net/snmp"])
            .unwrap_or_default();
        let mut lines = out.lines().filter(|l| l.starts_with("Icmp:"));
        let (Some(head), Some(vals)) = (lines.next(), lines.next()) else {
            return 0;
        };
        head.split_whitespace()
            .zip(vals.split_whitespace())
            .find(|(k, _)| *k == "OutEchoReps")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }

    /// Every daemon's log (for a failing test).
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.router_frr {
            s.push_str("==== router FRR\n");
            s.push_str(&r.logs());
            if let Ok(o) = r.vtysh(&self.router, "show bgp summary") {
                s.push_str(&o);
            }
            if let Ok(o) = r.vtysh(&self.router, "show bfd peers brief") {
                s.push_str(&o);
            }
        }
        for (i, sp) in self.speakers.iter().enumerate() {
            match sp {
                Some(LbSpeaker::Frr(d)) => {
                    s.push_str(&format!("==== lb{i} FRR\n{}", d.logs()));
                    if let Ok(o) = d.vtysh(&self.lbs[i], "show ip route") {
                        s.push_str(&o);
                    }
                }
                Some(LbSpeaker::Bird(b)) => {
                    s.push_str(&format!(
                        "==== lb{i} BIRD\n{}",
                        std::fs::read_to_string(&b.log).unwrap_or_default()
                    ));
                    if let Ok(o) = self.lbs[i].exec_ok(&[
                        "birdc",
                        "-s",
                        &b.sock.display().to_string(),
                        "show route all",
                    ]) {
                        s.push_str(&o);
                    }
                    if let Ok(o) = self.lbs[i].exec_ok(&[
                        "birdc",
                        "-s",
                        &b.sock.display().to_string(),
                        "show protocols all upstream",
                    ]) {
                        s.push_str(&o);
                    }
                }
                Some(LbSpeaker::ExaBgp(c)) => {
                    s.push_str(&format!("==== lb{i} ExaBGP\n{}", c.log()));
                }
                None => {}
            }
        }
        s
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        // Daemons first (they live in the namespaces).
        self.speakers.clear();
        self.router_frr = None;
        for ns in self.created.iter().rev() {
            netns_del(ns);
        }
    }
}
