//! Malformed and hostile VRRP traffic against a running vipd pair: an attacker namespace on the
//! same LAN sends hand-built Ethernet frames (AF_PACKET) — truncated, bad version, bad type,
//! bad checksum, TTL 254, wrong VRID, count mismatch, oversized fragmented datagrams, VRRPv2
//! auth failures, IP AH — and floods a unicast pair with higher-priority adverts from a
//! stranger. The master must keep its state and its VIP, keep advertising on time (measured on
//! the wire), count every drop under the right reason (`vipctl status --json`) and exit 0 on
//! SIGTERM afterwards. Needs root (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{ChildGuard, Host, Lan, TempDir};
use vipd::ctl::Status;
use vipd::net::packet::FrameSender;
use vipd_lab::sniff::{Seen, Sniffer};
use vipd_wire::{
    Addrs, Auth, ChecksumMode, Family, IpPair, Ipv4Packet, Ipv4Repr, VrrpPacket, VrrpRepr,
    VrrpVersion,
};

/// The timing assertions need the CPU: one attack at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const VRID: u8 = 51;
/// Extra time allowed over the advert interval between two adverts of the master.
const GAP_MARGIN: Duration = Duration::from_millis(20);

// ---- frames ---------------------------------------------------------------------------------

/// Changes an encoded VRRP message in place.
type Mangle = fn(&mut Vec<u8>);

/// Knobs of one hand-built VRRP datagram; `good` gives a valid higher-priority advert.
#[derive(Clone)]
struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    ttl: u8,
    protocol: u8,
    vrid: u8,
    priority: u8,
    version: VrrpVersion,
    vips: Vec<Ipv4Addr>,
    /// Applied to the VRRP message after encoding; `true`: recompute the checksum afterwards.
    mangle: Option<(Mangle, bool)>,
    /// Zero bytes appended to the encoded message (before `mangle`).
    extra: usize,
    /// Cut the VRRP message to this many bytes (after checksumming).
    cut: Option<usize>,
    /// Flip a checksum bit (after everything else).
    bad_checksum: bool,
}

impl Pkt {
    fn good(attacker: &Host, vip: Ipv4Addr) -> Pkt {
        Pkt {
            src: attacker.v4,
            dst: Ipv4Addr::new(224, 0, 0, 18),
            dst_mac: [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12],
            src_mac: attacker.mac,
            ttl: 255,
            protocol: 112,
            vrid: VRID,
            priority: 254,
            version: VrrpVersion::V3 { max_adver_int: 100 },
            vips: vec![vip],
            mangle: None,
            extra: 0,
            cut: None,
            bad_checksum: false,
        }
    }

    fn v2(attacker: &Host, vip: Ipv4Addr, auth: Auth) -> Pkt {
        Pkt {
            version: VrrpVersion::V2 { adver_int: 1, auth },
            ..Pkt::good(attacker, vip)
        }
    }

    fn to(mut self, host: &Host) -> Pkt {
        self.dst = host.v4;
        self.dst_mac = host.mac;
        self
    }

    fn vrrp(&self) -> Vec<u8> {
        let repr = VrrpRepr {
            vrid: self.vrid,
            priority: self.priority,
            version: self.version,
            addrs: Addrs::v4(&self.vips),
        };
        let mode = match self.version {
            VrrpVersion::V2 { .. } => ChecksumMode::WithoutPseudoHeader,
            VrrpVersion::V3 { .. } => ChecksumMode::WithPseudoHeader,
        };
        let pair = IpPair::V4 {
            src: self.src,
            dst: self.dst,
        };
        let mut msg = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut VrrpPacket::new_unchecked(&mut msg[..], Family::Ipv4),
            &pair,
            mode,
        )
        .unwrap();
        msg.resize(msg.len() + self.extra, 0);
        if let Some((f, fix)) = self.mangle {
            f(&mut msg);
            if fix {
                VrrpPacket::new_unchecked(&mut msg[..], Family::Ipv4).fill_checksum(&pair, mode);
            }
        }
        if let Some(n) = self.cut {
            msg.truncate(n);
        }
        if self.bad_checksum {
            msg[7] ^= 0x01;
        }
        msg
    }

    /// The Ethernet frames (several when the datagram needs fragmenting at 1500 bytes).
    fn frames(&self) -> Vec<Vec<u8>> {
        ip_frames(self, &self.vrrp())
    }
}

/// A mangling step followed by a checksum fix (so only the mangled field is wrong).
fn fix(f: Mangle) -> Option<(Mangle, bool)> {
    Some((f, true))
}

fn ipv4_header(p: &Pkt, payload_len: usize, frag: Option<(u16, bool)>, ident: u16) -> Vec<u8> {
    let repr = Ipv4Repr {
        src: p.src,
        dst: p.dst,
        protocol: p.protocol,
        ttl: p.ttl,
        tos: 0xc0,
        ident,
        dont_frag: false,
        payload_len,
    };
    let mut h = vec![0u8; 20];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut h[..]))
        .unwrap();
    // emit writes protocol from the repr; fragment fields by hand, then re-checksum.
    if let Some((offset8, more)) = frag {
        let v = (offset8 & 0x1fff) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&v.to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let mut sum: u32 = 0;
        for c in h.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    h
}

fn eth(p: &Pkt, ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&p.dst_mac);
    f.extend_from_slice(&p.src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

fn ip_frames(p: &Pkt, payload: &[u8]) -> Vec<Vec<u8>> {
    const MAX: usize = 1480;
    if payload.len() <= MAX {
        let mut ip = ipv4_header(p, payload.len(), None, 0x4242);
        ip.extend_from_slice(payload);
        return vec![eth(p, &ip)];
    }
    static IDENT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);
    let ident = IDENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    payload
        .chunks(MAX)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * MAX;
            let more = offset + chunk.len() < payload.len();
            let mut ip = ipv4_header(p, chunk.len(), Some(((offset / 8) as u16, more)), ident);
            ip.extend_from_slice(chunk);
            eth(p, &ip)
        })
        .collect()
}

/// Sends `count` copies of `frames` from the attacker's eth0, `per_burst` frames then
/// `pause`, and returns how long it took.
fn send(
    attacker: &Host,
    frames: Vec<Vec<u8>>,
    count: usize,
    per_burst: usize,
    pause: Duration,
) -> Duration {
    let ifindex = attacker.ifindex;
    attacker
        .run_async(move || async move {
            let tx = FrameSender::open(ifindex).unwrap();
            let t0 = Instant::now();
            let mut sent = 0usize;
            for _ in 0..count {
                for f in &frames {
                    tx.send(f).await.unwrap();
                    sent += 1;
                    if sent.is_multiple_of(per_burst) {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
            t0.elapsed()
        })
        .unwrap()
}

// ---- agents ---------------------------------------------------------------------------------

struct Agent {
    child: ChildGuard,
    sock: PathBuf,
}

fn start(lan: &Lan, dir: &TempDir, i: usize, priority: u8, instance_extra: &str) -> Agent {
    start_with(lan, dir, i, priority, "", instance_extra)
}

fn start_with(
    lan: &Lan,
    dir: &TempDir,
    i: usize,
    priority: u8,
    global_extra: &str,
    instance_extra: &str,
) -> Agent {
    let vip = vip(lan);
    let sock = dir.path().join(format!("h{i}.sock"));
    let cfg = dir.path().join(format!("h{i}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"[global]
control_socket = "{sock}"
garp_master_delay = "0s"
{global_extra}

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = {VRID}
priority = {priority}
vips = ["{vip}/24"]
{instance_extra}
"#,
            sock = sock.display()
        ),
    )
    .unwrap();
    let child = common::start_vipd_realtime(lan.host(i), &cfg);
    common::wait_until(Duration::from_secs(3), || sock.exists()).expect("control socket");
    Agent { child, sock }
}

fn vip(lan: &Lan) -> Ipv4Addr {
    lan.addr_v4(100)
}

fn status(a: &Agent) -> Status {
    common::vipctl_status(&a.sock, &a.child)
}

/// Every drop counter of the agent: `instance:<reason>` and `eth0:<reason>`, plus
/// `queue_full`.
fn drops(s: &Status) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in &s.instances {
        for (r, n) in &i.counters.drops {
            m.insert(format!("instance:{r}"), *n);
        }
    }
    for (ifname, d) in &s.interface_drops {
        for (r, n) in d {
            m.insert(format!("{ifname}:{r}"), *n);
        }
    }
    m.insert("queue_full".into(), s.queue_full_drops);
    m
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// The master's invariants: MASTER, no new transition, VIP present on the interface.
fn assert_master(lan: &Lan, a: &Agent, transitions: u64, what: &str) {
    let s = status(a);
    let i = &s.instances[0];
    assert_eq!(
        i.state,
        "MASTER",
        "{what}: master lost its state\n{}",
        a.child.log()
    );
    assert_eq!(
        i.counters.transitions,
        transitions,
        "{what}: the master made a transition\n{}",
        a.child.log()
    );
    assert!(
        lan.host(0).has_addr("eth0", IpAddr::V4(vip(lan))).unwrap(),
        "{what}: the VIP left the master"
    );
    assert!(
        !lan.host(1).has_addr("eth0", IpAddr::V4(vip(lan))).unwrap(),
        "{what}: the backup took the VIP"
    );
}

/// Largest gap between consecutive adverts of `src` (priority `prio`) seen in [from, to],
/// including the edges (from the last advert before `from` to the first after `to`).
fn max_gap(sniff: &mut Sniffer, src: IpAddr, prio: u8, from: Instant, to: Instant) -> Duration {
    let _ = sniff.wait_for(
        to,
        Duration::from_secs(2),
        |e| matches!(e.what, Seen::Advert { src: s, priority, .. } if s == src && priority == prio),
    );
    let times: Vec<Instant> = sniff
        .events()
        .iter()
        .filter(|e| matches!(e.what, Seen::Advert { src: s, priority, .. } if s == src && priority == prio))
        .map(|e| e.at)
        .collect();
    let first = times.iter().rposition(|t| *t <= from).unwrap_or(0);
    let last = times
        .iter()
        .position(|t| *t >= to)
        .unwrap_or(times.len().saturating_sub(1));
    assert!(last > first, "no adverts of {src} seen around the attack");
    times[first..=last]
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

struct Case {
    name: &'static str,
    pkt: Pkt,
    /// The counter that must grow by one per datagram (`None`: the kernel drops it, nothing
    /// reaches vipd and no counter moves).
    counter: Option<&'static str>,
}

/// Sends each case `n` times and checks the counters move exactly as expected.
fn run_cases(lan: &Lan, master: &Agent, attacker: &Host, cases: Vec<Case>, n: usize) {
    let transitions = status(master).instances[0].counters.transitions;
    for c in cases {
        let before = drops(&status(master));
        send(attacker, c.pkt.frames(), n, 50, Duration::from_millis(5));
        let want: BTreeMap<String, u64> = c
            .counter
            .map(|k| (k.to_owned(), n as u64))
            .into_iter()
            .collect();
        let mut got = BTreeMap::new();
        common::wait_until(Duration::from_secs(3), || {
            got = delta(&before, &drops(&status(master)));
            got == want
        });
        if c.counter.is_none() {
            // Give stray packets time to show up before concluding nothing moved.
            std::thread::sleep(Duration::from_millis(300));
            got = delta(&before, &drops(&status(master)));
        }
        assert_eq!(got, want, "case {}: drop counters moved wrongly", c.name);
        eprintln!("case {:<28} {n} sent -> {:?}", c.name, got);
        assert_master(lan, master, transitions, c.name);
    }
}

fn setup(tag: &str) -> (Lan, TempDir) {
    let mut lan = Lan::new(tag, 2).unwrap();
    lan.add_client().unwrap(); // c0: observer
    lan.add_client().unwrap(); // c1: attacker
    let dir = TempDir::new(tag);
    (lan, dir)
}

fn wait_master(lan: &Lan, a: &Agent) {
    common::wait_until(Duration::from_secs(5), || {
        status(a).instances[0].state == "MASTER"
            && lan.host(0).has_addr("eth0", IpAddr::V4(vip(lan))).unwrap()
    })
    .unwrap_or_else(|| panic!("h0 never became master\n{}", a.child.log()));
}

fn stop_cleanly(mut a: Agent, what: &str) {
    assert!(
        a.child.try_wait().is_none(),
        "{what}: vipd died\n{}",
        a.child.log()
    );
    a.child.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = a.child.wait_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "{what}: vipd did not exit 0 on SIGTERM: {st:?}\n{}",
        a.child.log()
    );
}

// ---- tests ----------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn malformed_vrrpv3_is_counted_and_harmless() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("malformed3");
    let mut sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
    let m = start(&lan, &dir, 0, 150, "advert_interval = \"100ms\"");
    let b = start(&lan, &dir, 1, 100, "advert_interval = \"100ms\"");
    wait_master(&lan, &m);
    let attacker = lan.client(1).clone();
    let v = vip(&lan);
    let good = || Pkt::good(&attacker, v);
    let cases = vec![
        Case {
            name: "truncated (6 bytes)",
            pkt: Pkt {
                cut: Some(6),
                ..good()
            },
            counter: Some("eth0:truncated"),
        },
        Case {
            name: "bad version (4)",
            pkt: Pkt {
                mangle: fix(|m| m[0] = 0x41),
                ..good()
            },
            counter: Some("eth0:bad_version"),
        },
        Case {
            name: "bad type (2)",
            pkt: Pkt {
                mangle: fix(|m| m[0] = 0x32),
                ..good()
            },
            counter: Some("eth0:bad_type"),
        },
        Case {
            name: "bad checksum",
            pkt: Pkt {
                bad_checksum: true,
                ..good()
            },
            counter: Some("eth0:bad_checksum"),
        },
        Case {
            name: "TTL 254",
            pkt: Pkt { ttl: 254, ..good() },
            counter: Some("instance:ttl_not_255"),
        },
        Case {
            name: "wrong VRID",
            pkt: Pkt { vrid: 52, ..good() },
            counter: Some("eth0:unknown_vrid"),
        },
        Case {
            name: "count 3, one address",
            pkt: Pkt {
                mangle: fix(|m| m[3] = 3),
                ..good()
            },
            counter: Some("eth0:length_mismatch"),
        },
        Case {
            name: "count 0, one address",
            pkt: Pkt {
                mangle: fix(|m| m[3] = 0),
                ..good()
            },
            counter: Some("eth0:length_mismatch"),
        },
        Case {
            name: "VRRPv2 at a v3 instance",
            pkt: Pkt::v2(&attacker, v, Auth::None),
            counter: Some("instance:version_mismatch"),
        },
        Case {
            name: "zero interval",
            pkt: Pkt {
                version: VrrpVersion::V3 { max_adver_int: 0 },
                ..good()
            },
            counter: Some("instance:zero_interval"),
        },
        Case {
            name: "oversized (6000 B, fragmented)",
            pkt: Pkt {
                extra: 6000,
                mangle: fix(|m| m[3] = 255),
                ..good()
            },
            counter: Some("eth0:length_mismatch"),
        },
    ];
    let t0 = Instant::now();
    run_cases(&lan, &m, &attacker, cases, 40);
    let t1 = Instant::now();
    let gap = max_gap(&mut sniff, IpAddr::V4(lan.host(0).v4), 150, t0, t1);
    eprintln!(
        "v3 malformed: {:?} of attack, max gap between the master's adverts {gap:?}",
        t1 - t0
    );
    assert!(
        gap <= Duration::from_millis(100) + GAP_MARGIN,
        "the master's adverts stalled: gap {gap:?}"
    );
    // The backup never advertised (it stayed backup: nothing got through).
    let b_src = IpAddr::V4(lan.host(1).v4);
    assert!(
        !sniff
            .events()
            .iter()
            .any(|e| matches!(e.what, Seen::Advert { src, .. } if src == b_src)),
        "the backup advertised during the attack\n{}",
        b.child.log()
    );
    assert_eq!(status(&b).instances[0].state, "BACKUP");
    // The log names the sender of what the interface dropped.
    let log = m.child.log();
    assert!(
        log.contains(&format!(
            "eth0: dropped VRRP packet from {} (bad_checksum; 1 so far)",
            attacker.v4
        )),
        "{log}"
    );
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vrrpv2_auth_failures_are_counted_and_harmless() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("malformed2");
    let mut sniff = Sniffer::start(Some(lan.client(0).name())).unwrap();
    let extra = "version = 2\nadvert_interval = \"1s\"\nauth_pass = \"s3cret\"";
    let m = start(&lan, &dir, 0, 150, extra);
    let b = start(&lan, &dir, 1, 100, extra);
    wait_master(&lan, &m);
    let attacker = lan.client(1).clone();
    let v = vip(&lan);
    let pass = *b"s3cret\0\0";
    let cases = vec![
        Case {
            name: "wrong password",
            pkt: Pkt::v2(&attacker, v, Auth::SimpleText(*b"guess\0\0\0")),
            counter: Some("instance:auth_mismatch"),
        },
        Case {
            name: "no authentication",
            pkt: Pkt::v2(&attacker, v, Auth::None),
            counter: Some("instance:auth_mismatch"),
        },
        Case {
            name: "auth type 3 (unknown)",
            pkt: Pkt {
                mangle: fix(|m| m[4] = 3),
                ..Pkt::v2(&attacker, v, Auth::SimpleText(pass))
            },
            counter: Some("eth0:auth_mismatch"),
        },
        Case {
            name: "auth type 2 (IP AH)",
            pkt: Pkt::v2(&attacker, v, Auth::IpAh),
            counter: Some("instance:auth_ah_unsupported"),
        },
        Case {
            // A real RFC 2338 AH datagram is IP protocol 51: the kernel never hands it to a
            // protocol-112 raw socket, so vipd sees (and counts) nothing.
            name: "IP protocol 51 (AH)",
            pkt: Pkt {
                protocol: 51,
                ..Pkt::v2(&attacker, v, Auth::IpAh)
            },
            counter: None,
        },
        Case {
            name: "v2 interval 2 s (ours 1 s)",
            pkt: Pkt {
                version: VrrpVersion::V2 {
                    adver_int: 2,
                    auth: Auth::SimpleText(pass),
                },
                ..Pkt::good(&attacker, v)
            },
            counter: Some("instance:interval_mismatch"),
        },
        Case {
            name: "VRRPv3 at a v2 instance",
            pkt: Pkt::good(&attacker, v),
            counter: Some("instance:version_mismatch"),
        },
    ];
    let t0 = Instant::now();
    run_cases(&lan, &m, &attacker, cases, 40);
    let t1 = Instant::now();
    let gap = max_gap(&mut sniff, IpAddr::V4(lan.host(0).v4), 150, t0, t1);
    eprintln!(
        "v2 auth: {:?} of attack, max gap between the master's adverts {gap:?}",
        t1 - t0
    );
    assert!(
        gap <= Duration::from_secs(1) + GAP_MARGIN,
        "the master's adverts stalled: gap {gap:?}"
    );
    assert_eq!(status(&b).instances[0].state, "BACKUP");
    // Never silence: each mismatch is a sticky alarm naming the sender.
    let who = attacker.v4.to_string();
    let alarms: BTreeMap<String, String> = status(&m).instances[0]
        .alarms
        .iter()
        .map(|a| (a.kind.clone(), a.peer.clone()))
        .collect();
    // (The auth alarm was cleared by the attacker's later adverts with the right password.)
    assert!(
        m.child
            .log()
            .contains(&format!("alarm auth_mismatch: {who}")),
        "{}",
        m.child.log()
    );
    for kind in ["interval_mismatch", "version_mismatch"] {
        assert_eq!(
            alarms.get(kind),
            Some(&who),
            "{kind}: alarms {alarms:?}\n{}",
            m.child.log()
        );
    }
    assert!(
        m.child
            .log()
            .contains(&format!("alarm interval_mismatch: {who}")),
        "{}",
        m.child.log()
    );
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn stranger_flood_at_a_unicast_pair() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("flood");
    let (h0, h1) = (lan.host(0).clone(), lan.host(1).clone());
    let peer = |me: &Host, other: &Host| {
        format!(
            "advert_interval = \"100ms\"\nunicast_peers = [\"{}\"]\nsource_address = \"{}\"",
            other.v4, me.v4
        )
    };
    // Unicast adverts h0 -> h1 are not flooded to the clients once the bridge has learnt
    // the MACs: watch them where they arrive, in h1's namespace.
    let mut sniff = Sniffer::start(Some(h1.name())).unwrap();
    let m = start(&lan, &dir, 0, 150, &peer(&h0, &h1));
    let b = start(&lan, &dir, 1, 100, &peer(&h1, &h0));
    wait_master(&lan, &m);
    let transitions = status(&m).instances[0].counters.transitions;
    let before = drops(&status(&m));
    let before_b = drops(&status(&b));
    let attacker = lan.client(1).clone();
    let v = vip(&lan);
    // Valid-looking priority-254 adverts from a stranger, at both peers' unicast addresses.
    let frames: Vec<Vec<u8>> = [&h0, &h1]
        .iter()
        .flat_map(|h| Pkt::good(&attacker, v).to(h).frames())
        .collect();
    const ROUNDS: usize = 10_000; // x2 frames = 20,000 packets
    let quiet = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    let base = max_gap(&mut sniff, IpAddr::V4(h0.v4), 150, quiet, t0);
    eprintln!("flood: baseline max gap over 3 s without attack {base:?}");
    let took = send(&attacker, frames, ROUNDS, 40, Duration::from_millis(8));
    let t1 = Instant::now();
    let gap = max_gap(&mut sniff, IpAddr::V4(h0.v4), 150, t0, t1);
    let mut got = BTreeMap::new();
    let mut got_b = BTreeMap::new();
    common::wait_until(Duration::from_secs(3), || {
        got = delta(&before, &drops(&status(&m)));
        got_b = delta(&before_b, &drops(&status(&b)));
        got.get("instance:unknown_peer") == Some(&(ROUNDS as u64))
            && got_b.get("instance:unknown_peer") == Some(&(ROUNDS as u64))
    });
    eprintln!(
        "flood: {} packets in {took:?} ({:.0}/s); master drops {got:?}, backup drops {got_b:?}; \
         max gap between the master's adverts {gap:?}",
        2 * ROUNDS,
        (2 * ROUNDS) as f64 / took.as_secs_f64()
    );
    let want: BTreeMap<String, u64> = [("instance:unknown_peer".to_owned(), ROUNDS as u64)].into();
    assert_eq!(
        got, want,
        "master: every stranger advert counted as unknown_peer"
    );
    assert_eq!(
        got_b, want,
        "backup: every stranger advert counted as unknown_peer"
    );
    assert!(
        gap <= Duration::from_millis(100) + GAP_MARGIN,
        "the master's adverts stalled under the flood: gap {gap:?}"
    );
    assert_master(&lan, &m, transitions, "flood");
    assert_eq!(status(&b).instances[0].state, "BACKUP");
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

/// A routed spoofer: adverts with the backup peer's source address at priority 255 (which
/// would demote the master) and with the master's address at priority 0 (which would make
/// the backup take over), arriving with TTL 1, 64 and 254, are dropped when the peers require
/// TTL 255 (`unicast_min_ttl`), counted as `ttl_out_of_range` and logged with the source.
/// Without the requirement the same packets demote the master: checked first.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn routed_spoof_of_a_unicast_peer_is_dropped_by_its_ttl() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("ttlspoof");
    let (h0, h1) = (lan.host(0).clone(), lan.host(1).clone());
    let attacker = lan.client(1).clone();
    let v = vip(&lan);
    let peer = |me: &Host, other: &Host, extra: &str| {
        format!(
            "advert_interval = \"100ms\"\nunicast_peers = [\"{}\"]\nsource_address = \"{}\"\n{extra}",
            other.v4, me.v4
        )
    };
    let spoof = |as_host: &Host, to: &Host, prio: u8, ttl: u8| {
        Pkt {
            src: as_host.v4,
            ttl,
            priority: prio,
            ..Pkt::good(&attacker, v).to(to)
        }
        .frames()
    };
    // Without a TTL requirement, one spoofed priority-255 advert with TTL 1 demotes the
    // master: the attack is real.
    {
        let m = start(&lan, &dir, 0, 150, &peer(&h0, &h1, ""));
        let b = start(&lan, &dir, 1, 100, &peer(&h1, &h0, ""));
        wait_master(&lan, &m);
        send(&attacker, spoof(&h1, &h0, 255, 1), 1, 1, Duration::ZERO);
        common::wait_until(Duration::from_secs(2), || {
            status(&m).instances[0].state == "BACKUP"
        })
        .unwrap_or_else(|| {
            panic!(
                "without unicast_min_ttl the spoof is accepted\n{}",
                m.child.log()
            )
        });
        stop_cleanly(m, "master");
        stop_cleanly(b, "backup");
    }
    let m = start(&lan, &dir, 0, 150, &peer(&h0, &h1, "unicast_min_ttl = 255"));
    let b = start(&lan, &dir, 1, 100, &peer(&h1, &h0, "unicast_min_ttl = 255"));
    wait_master(&lan, &m);
    let transitions = status(&m).instances[0].counters.transitions;
    let before = drops(&status(&m));
    let before_b = drops(&status(&b));
    const ROUNDS: usize = 200;
    let mut frames = Vec::new();
    for ttl in [1, 64, 254] {
        frames.extend(spoof(&h1, &h0, 255, ttl));
        frames.extend(spoof(&h0, &h1, 0, ttl));
    }
    send(&attacker, frames, ROUNDS, 20, Duration::from_millis(5));
    let want = (ROUNDS * 3) as u64;
    let mut got = BTreeMap::new();
    let mut got_b = BTreeMap::new();
    common::wait_until(Duration::from_secs(3), || {
        got = delta(&before, &drops(&status(&m)));
        got_b = delta(&before_b, &drops(&status(&b)));
        got.get("instance:ttl_out_of_range") == Some(&want)
            && got_b.get("instance:ttl_out_of_range") == Some(&want)
    });
    let only = |n: u64| BTreeMap::from([("instance:ttl_out_of_range".to_owned(), n)]);
    assert_eq!(
        got,
        only(want),
        "master: every spoof counted\n{}",
        m.child.log()
    );
    assert_eq!(
        got_b,
        only(want),
        "backup: every spoof counted\n{}",
        b.child.log()
    );
    assert_master(&lan, &m, transitions, "ttl spoof");
    let s_b = status(&b);
    assert_eq!(s_b.instances[0].state, "BACKUP");
    assert_eq!(
        s_b.instances[0].counters.transitions, 1,
        "the backup never moved"
    );
    let log = m.child.log();
    assert!(
        log.contains(&format!(
            "dropped VRRP advert from {} (ttl_out_of_range",
            h1.v4
        )),
        "the drop is logged with its source\n{log}"
    );
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

/// A host on the link that is not in a multicast instance's `allowed_sources`: its valid,
/// higher-priority adverts (TTL 255) are dropped as `source_not_allowed`; nothing moves.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn multicast_allowlist_drops_other_hosts_on_the_link() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("allowsrc");
    let (h0, h1) = (lan.host(0).clone(), lan.host(1).clone());
    let attacker = lan.client(1).clone();
    let v = vip(&lan);
    let allow = |other: &Host| {
        format!(
            "advert_interval = \"100ms\"\nallowed_sources = [\"{}\"]",
            other.v4
        )
    };
    let m = start(&lan, &dir, 0, 150, &allow(&h1));
    let b = start(&lan, &dir, 1, 100, &allow(&h0));
    wait_master(&lan, &m);
    let transitions = status(&m).instances[0].counters.transitions;
    let before = drops(&status(&m));
    let before_b = drops(&status(&b));
    const ROUNDS: usize = 500;
    let frames = [
        Pkt {
            priority: 255,
            ..Pkt::good(&attacker, v)
        }
        .frames(),
        Pkt {
            priority: 0,
            ..Pkt::good(&attacker, v)
        }
        .frames(),
    ]
    .concat();
    send(&attacker, frames, ROUNDS, 20, Duration::from_millis(5));
    let want = (ROUNDS * 2) as u64;
    let mut got = BTreeMap::new();
    let mut got_b = BTreeMap::new();
    common::wait_until(Duration::from_secs(3), || {
        got = delta(&before, &drops(&status(&m)));
        got_b = delta(&before_b, &drops(&status(&b)));
        got.get("instance:source_not_allowed") == Some(&want)
            && got_b.get("instance:source_not_allowed") == Some(&want)
    });
    let only = |n: u64| BTreeMap::from([("instance:source_not_allowed".to_owned(), n)]);
    assert_eq!(got, only(want), "master\n{}", m.child.log());
    assert_eq!(got_b, only(want), "backup\n{}", b.child.log());
    assert_master(&lan, &m, transitions, "allowlist");
    assert_eq!(status(&b).instances[0].state, "BACKUP");
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

/// Datagrams the kernel drops because vipd's receive buffer is full are counted
/// (`rcvbuf_overflow`, from SO_RXQ_OVFL) and logged: the backup, stalled (SIGSTOP) under a
/// flood with the smallest `receive_buffer`, reports them once it reads again.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn kernel_receive_buffer_drops_are_counted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("rcvbuf");
    let m = start(&lan, &dir, 0, 150, "advert_interval = \"100ms\"");
    let b = start_with(
        &lan,
        &dir,
        1,
        100,
        "receive_buffer = 65536",
        "advert_interval = \"100ms\"",
    );
    wait_master(&lan, &m);
    let attacker = lan.client(1).clone();
    let frames = Pkt {
        vrid: VRID + 1,
        ..Pkt::good(&attacker, vip(&lan))
    }
    .frames();
    b.child.signal(nix::sys::signal::Signal::SIGSTOP).unwrap();
    send(&attacker, frames, 3000, 100, Duration::from_millis(1));
    b.child.signal(nix::sys::signal::Signal::SIGCONT).unwrap();
    let mut got = 0;
    common::wait_until(Duration::from_secs(3), || {
        got = drops(&status(&b))
            .get("eth0:rcvbuf_overflow")
            .copied()
            .unwrap_or(0);
        got > 0
    })
    .unwrap_or_else(|| panic!("no rcvbuf_overflow counted\n{}", b.child.log()));
    eprintln!("rcvbuf_overflow: {got}");
    assert!(
        b.child
            .log()
            .contains("because vipd's receive buffer was full"),
        "{}",
        b.child.log()
    );
    assert_master(
        &lan,
        &m,
        status(&m).instances[0].counters.transitions,
        "rcvbuf",
    );
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

/// The client's neighbour entry for `ip`: its MAC, if it has one.
fn neighbour_mac(client: &Host, ip: Ipv4Addr) -> Option<[u8; 6]> {
    let out = client
        .ip(&["neigh", "show", &ip.to_string(), "dev", "eth0"])
        .ok()?;
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)?;
    common::parse_mac(mac)
}

/// A spoofed priority-0 advert in the master's name, sent only to the backup: the backup takes
/// over (as the RFC says) and announces the VIP, so the client follows it; the master hears the
/// backup claim the VRID, answers and re-announces the VIP (and the backup, stepping down,
/// says goodbye at its own priority), so within one advert interval of the backup's takeover
/// the client's neighbour entry points at the master again, and the master never lost the VIP.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn spoofed_priority_zero_to_the_backup_and_the_client_comes_back_to_the_master() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("spoof0");
    let m = start(&lan, &dir, 0, 150, "advert_interval = \"100ms\"");
    let b = start(&lan, &dir, 1, 100, "advert_interval = \"100ms\"");
    wait_master(&lan, &m);
    let v = vip(&lan);
    let client = lan.client(0).clone();
    // Linux ignores a neighbour update within `locktime` (1 s) of the last one: the first
    // re-announcement of the master comes ~100 ms after the backup's, so let this client take
    // every update (a router does; a Linux client catches up with the second burst).
    client.sysctl(&["net.ipv4.neigh.eth0.locktime=0"]).unwrap();
    assert!(client.ping(IpAddr::V4(v)).unwrap());
    let (mac0, mac1) = (lan.host(0).mac, lan.host(1).mac);
    assert_eq!(neighbour_mac(&client, v), Some(mac0));
    std::thread::sleep(Duration::from_millis(500));
    let (sm, sb) = (status(&m), status(&b));
    let attacker = lan.client(1).clone();
    let spoof = Pkt {
        src: lan.host(0).v4,
        priority: 0,
        ..Pkt::good(&attacker, v)
    }
    .to(lan.host(1));
    let mut sniff = Sniffer::start(Some(client.name())).unwrap();
    // Right after one of the master's adverts: the backup's Skew_Time (~61 ms) then runs out
    // before the next one (100 ms), which would otherwise cancel the spoof's effect.
    let src0 = IpAddr::V4(lan.host(0).v4);
    sniff
        .wait_for(
            Instant::now(),
            Duration::from_secs(2),
            |e| matches!(e.what, Seen::Advert { src, priority: 150, .. } if src == src0),
        )
        .expect("an advert of the master");
    let t0 = Instant::now();
    send(&attacker, spoof.frames(), 1, 1, Duration::ZERO);
    // The backup takes over after Skew_Time and announces the VIP: the client follows it ...
    let garp_from = |sniff: &mut Sniffer, mac: [u8; 6], after: Instant| {
        sniff
            .events()
            .iter()
            .find(|e| {
                e.at >= after && matches!(e.what, Seen::Garp { ip, mac: m } if ip == v && m == mac)
            })
            .map(|e| e.at)
    };
    common::wait_until(Duration::from_secs(2), || {
        garp_from(&mut sniff, mac1, t0).is_some()
    })
    .unwrap_or_else(|| panic!("the backup never took over\n{}", b.child.log()));
    let followed = garp_from(&mut sniff, mac1, t0).unwrap();
    // ... and the master, hearing the backup claim the VRID, re-announces it within one
    // advert interval (+ scheduling margin).
    common::wait_until(Duration::from_secs(1), || {
        garp_from(&mut sniff, mac0, followed).is_some()
    })
    .unwrap_or_else(|| panic!("the master never re-announced the VIP\n{}", m.child.log()));
    let back = garp_from(&mut sniff, mac0, followed).unwrap() - followed;
    eprintln!("spoofed priority 0: the master re-announced {back:?} after the backup's takeover");
    assert!(
        back <= Duration::from_millis(100) + GAP_MARGIN,
        "re-announced {back:?} after the backup, more than one interval"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        neighbour_mac(&client, v),
        Some(mac0),
        "it stays at the master"
    );
    let (sm2, sb2) = (status(&m), status(&b));
    assert_eq!(sm2.instances[0].state, "MASTER");
    assert_eq!(
        sm2.instances[0].counters.transitions, sm.instances[0].counters.transitions,
        "the master never left MASTER"
    );
    assert!(
        sm2.instances[0].counters.lower_priority_received
            > sm.instances[0].counters.lower_priority_received,
        "the master did not count the backup's claim"
    );
    assert_eq!(sb2.instances[0].state, "BACKUP");
    assert!(sb2.instances[0].counters.transitions >= sb.instances[0].counters.transitions + 2);
    assert!(lan.host(0).has_addr("eth0", IpAddr::V4(v)).unwrap());
    assert!(!lan.host(1).has_addr("eth0", IpAddr::V4(v)).unwrap());
    let log = m.child.log();
    assert!(log.contains("advertises itself as master"), "{log}");
    stop_cleanly(b, "backup");
    stop_cleanly(m, "master");
}

/// A peer that computes the VRRPv3 checksum the other way (keepalived and FRR drop such
/// adverts, vipd accepts both): the side that hears it raises a sticky `checksum_form`
/// alarm naming the peer, shown in status and the log; fixing the configuration (a reload)
/// clears it at the peer's next advert.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn checksum_form_mismatch_raises_an_alarm_until_fixed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("alarm-ck");
    let m = start(&lan, &dir, 0, 150, "advert_interval = \"100ms\"");
    let b = start(
        &lan,
        &dir,
        1,
        100,
        "advert_interval = \"100ms\"\nchecksum = \"without-pseudo-header\"",
    );
    wait_master(&lan, &m);
    let master = lan.host(0).v4.to_string();
    let alarm = |a: &Agent| {
        status(a).instances[0]
            .alarms
            .iter()
            .find(|x| x.kind == "checksum_form")
            .cloned()
    };
    common::wait_until(Duration::from_secs(2), || alarm(&b).is_some())
        .unwrap_or_else(|| panic!("no alarm on the backup\n{}", b.child.log()));
    let a = alarm(&b).unwrap();
    assert_eq!(a.peer, master);
    assert_eq!(a.detail, "with-pseudo-header, ours without-pseudo-header");
    // Sticky: still raised a second later, counted.
    std::thread::sleep(Duration::from_secs(1));
    assert!(alarm(&b).is_some_and(|x| x.count > a.count));
    assert_eq!(status(&b).instances[0].state, "BACKUP");
    // It crosses an upgrade (the new binary takes the old one's state): same alarm, same
    // start, its count going on.
    let before = alarm(&b).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(&b.sock)
        .arg("upgrade")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vipctl upgrade: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        b.child.log()
    );
    let after = alarm(&b).unwrap_or_else(|| panic!("alarm lost by the upgrade\n{}", b.child.log()));
    // `since` is a monotonic instant shown as wall-clock time, converted at each status: on a
    // loaded machine two conversions differ by a few milliseconds.
    assert!(
        after.since_unix_ms.abs_diff(before.since_unix_ms) <= 50,
        "{before:?} -> {after:?}"
    );
    assert!(after.count >= before.count);
    // Fixed by a reload: cleared at the master's next advert.
    let cfg = dir.path().join("h1.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("checksum = \"without-pseudo-header\"", "");
    std::fs::write(&cfg, text).unwrap();
    b.child.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    common::wait_until(Duration::from_secs(3), || alarm(&b).is_none())
        .unwrap_or_else(|| panic!("alarm not cleared\n{}", b.child.log()));
    assert!(
        b.child
            .log()
            .contains(&format!("alarm checksum_form from {master} cleared")),
        "{}",
        b.child.log()
    );
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

/// A signed advert from `src` for the test's VRID (priority `prio`, VIP `vip`), signed with
/// `secret` as key 1 at sequence `seq`.
fn signed_advert(src: Ipv4Addr, vip: Ipv4Addr, prio: u8, secret: &[u8], seq: u64) -> Vec<u8> {
    use vipd_proto::auth::{AntiReplay, AuthHmac, Key, Mode};
    let cfg = AuthHmac {
        mode: Mode::Enforce,
        keys: vec![Key {
            id: 1,
            secret: secret.to_vec(),
        }],
        active: 1,
        anti_replay: AntiReplay::Monotonic,
    };
    let vips = [IpAddr::V4(vip)];
    let v = vipd_proto::advert::TxView {
        ah: false,
        vrid: VRID,
        version: vipd_proto::Version::V3,
        auth: None,
        vips: &vips,
        family: Family::Ipv4,
        checksum: ChecksumMode::WithPseudoHeader,
        src: IpAddr::V4(src),
        hmac: Some((&cfg, seq)),
    };
    let mut buf = vec![0u8; vipd_proto::advert::MAX_ADVERT_LEN];
    let n = vipd_proto::advert::build_advert(
        &mut buf,
        &v,
        prio,
        100,
        IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
    )
    .unwrap();
    buf.truncate(n);
    buf
}

/// A pair with `auth_hmac` (enforce, the key in a 0600 file): signed adverts elect and keep
/// the master; a LAN host without the key changes nothing: unsigned adverts at priority 255,
/// adverts signed with another key, a recorded (stale) advert, and a signed advert sent twice
/// (the second a replay) are each dropped and counted by kind, with the sender's address.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn auth_hmac_pair_refuses_unsigned_forged_stale_and_replayed_adverts() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("hmac");
    let secret: Vec<u8> = (0u8..32).collect();
    let key = dir.path().join("hmac.key");
    std::fs::write(
        &key,
        "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!(
        "advert_interval = \"100ms\"\n[instance.auth_hmac]\nkeys = [{{ id = 1, file = \"{}\" }}]\n",
        key.display()
    );
    let m = start(&lan, &dir, 0, 150, &extra);
    let b = start(&lan, &dir, 1, 100, &extra);
    wait_master(&lan, &m);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(status(&b).instances[0].state, "BACKUP", "{}", b.child.log());
    let transitions = status(&m).instances[0].counters.transitions;
    let attacker = lan.client(1).clone();
    let v = vip(&lan);
    let now_seq = || {
        vipd_proto::auth::clock_seq(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap(),
        )
    };
    let frames = |payload: &[u8]| ip_frames(&Pkt::good(&attacker, v), payload);
    let before = drops(&status(&b));
    // Unsigned: priority 255, priority 0, and priority 255 with the longest interval (a
    // backup adopting 40.95 s would wait two minutes for a silent master).
    let unsigned = [
        Pkt {
            priority: 255,
            ..Pkt::good(&attacker, v)
        },
        Pkt {
            priority: 0,
            ..Pkt::good(&attacker, v)
        },
        Pkt {
            priority: 255,
            version: VrrpVersion::V3 {
                max_adver_int: 4095,
            },
            ..Pkt::good(&attacker, v)
        },
    ]
    .iter()
    .flat_map(Pkt::frames)
    .collect();
    send(&attacker, unsigned, 20, 5, Duration::from_millis(5));
    // Signed with another key: priority 255 and priority 0.
    let wrong: Vec<u8> = (100u8..132).collect();
    let forged = [
        frames(&signed_advert(attacker.v4, v, 255, &wrong, now_seq())),
        frames(&signed_advert(attacker.v4, v, 0, &wrong, now_seq())),
    ]
    .concat();
    send(&attacker, forged, 20, 5, Duration::from_millis(5));
    // Recorded an hour ago (the right key: a capture replayed later).
    let hour_ago = now_seq() - (3600u64 << 32);
    send(
        &attacker,
        frames(&signed_advert(attacker.v4, v, 255, &secret, hour_ago)),
        20,
        5,
        Duration::from_millis(5),
    );
    // A signed advert at priority 1 (changes nothing), then the same bytes again: a replay.
    let once = frames(&signed_advert(attacker.v4, v, 1, &secret, now_seq()));
    send(&attacker, once, 3, 5, Duration::from_millis(5));
    std::thread::sleep(Duration::from_millis(300));
    assert_master(&lan, &m, transitions, "auth_hmac attacks");
    assert_eq!(status(&b).instances[0].state, "BACKUP");
    let d = delta(&before, &drops(&status(&b)));
    // The backup kept its master's interval (nothing adopted from the unsigned 40.95 s).
    assert_eq!(status(&b).instances[0].master_advert_interval_ms, 100);
    for (reason, n) in [
        ("instance:hmac_missing", 60),
        ("instance:hmac_bad", 40),
        ("instance:hmac_stale", 20),
        ("instance:hmac_replay", 2),
    ] {
        assert_eq!(
            d.get(reason).copied(),
            Some(n),
            "{reason}: {d:?}\n{}",
            b.child.log()
        );
    }
    let who = attacker.v4.to_string();
    assert!(
        b.child
            .log()
            .contains(&format!("advert from {who} refused: stale")),
        "{}",
        b.child.log()
    );
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}

/// Rolling `auth_hmac` out on a live pair, keepalived's way, by reloads: none → receive-only
/// on both → permissive on both → enforce on both, then a key rotation (key 2 added
/// everywhere, made active, key 1 removed). No transition on either node, no advert refused on
/// the way, and at the end the backup verifies every advert of the master.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn auth_hmac_rollout_by_reloads_moves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lan, dir) = setup("hmacroll");
    let key = dir.path().join("hmac.key");
    std::fs::write(&key, "a shared passphrase of at least thirty-two bytes\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m = start(&lan, &dir, 0, 150, "advert_interval = \"100ms\"");
    let b = start(&lan, &dir, 1, 100, "advert_interval = \"100ms\"");
    wait_master(&lan, &m);
    std::thread::sleep(Duration::from_millis(500));
    let t0 = (
        status(&m).instances[0].counters.transitions,
        status(&b).instances[0].counters.transitions,
    );
    let key2 = dir.path().join("hmac2.key");
    std::fs::write(
        &key2,
        "the next passphrase, also thirty-two bytes or more\n",
    )
    .unwrap();
    std::fs::set_permissions(&key2, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (k1, k2) = (
        format!("{{ id = 1, file = \"{}\" }}", key.display()),
        format!("{{ id = 2, file = \"{}\" }}", key2.display()),
    );
    // The rollout, then a key rotation: add key 2 everywhere, sign with it, drop key 1.
    let steps = [
        ("receive-only", k1.clone(), 1),
        ("permissive", k1.clone(), 1),
        ("enforce", k1.clone(), 1),
        ("enforce", format!("{k1}, {k2}"), 1),
        ("enforce", format!("{k1}, {k2}"), 2),
        ("enforce", k2.clone(), 2),
    ];
    for (mode, keys, active) in &steps {
        for (i, a) in [(0usize, &m), (1, &b)] {
            let cfg = dir.path().join(format!("h{i}.toml"));
            let mut text = std::fs::read_to_string(&cfg).unwrap();
            if let Some(at) = text.find("[instance.auth_hmac]") {
                text.truncate(at);
            }
            text.push_str(&format!(
                "[instance.auth_hmac]\nmode = \"{mode}\"\nactive_key = {active}\nkeys = [{keys}]\n"
            ));
            std::fs::write(&cfg, text).unwrap();
            a.child.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
            // Half a second between the nodes: the other runs the previous step meanwhile.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let (sm, sb) = (status(&m), status(&b));
    assert_eq!(
        (
            sm.instances[0].counters.transitions,
            sb.instances[0].counters.transitions
        ),
        t0,
        "a transition during the rollout\n{}\n{}",
        m.child.log(),
        b.child.log()
    );
    let refused: Vec<(&String, &u64)> = sb.instances[0]
        .counters
        .drops
        .iter()
        .filter(|(k, _)| k.starts_with("hmac_"))
        .collect();
    assert!(
        refused.is_empty(),
        "refused during the rollout: {refused:?}"
    );
    for (who, a) in [("master", &m), ("backup", &b)] {
        let log = a.child.log();
        assert!(
            !log.contains("reload refused") && !log.contains("reload failed"),
            "{who}: a step was not applied\n{log}"
        );
        assert!(
            log.matches("reloading the configuration").count() >= 6,
            "{who}: {log}"
        );
    }
    // Enforce with key 2 only is really in force: an advert signed with key 1 is refused.
    let before = drops(&sb);
    let attacker = lan.client(1).clone();
    let v = vip(&lan);
    let seq = vipd_proto::auth::clock_seq(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap(),
    );
    let payload = signed_advert(
        attacker.v4,
        v,
        255,
        b"a shared passphrase of at least thirty-two bytes",
        seq,
    );
    send(
        &attacker,
        ip_frames(&Pkt::good(&attacker, v), &payload),
        5,
        5,
        Duration::from_millis(5),
    );
    std::thread::sleep(Duration::from_millis(300));
    let d = delta(&before, &drops(&status(&b)));
    assert_eq!(
        d.get("instance:hmac_unknown_key").copied(),
        Some(5),
        "{d:?}"
    );
    assert_master(&lan, &m, t0.0, "after the rollout");
    stop_cleanly(m, "master");
    stop_cleanly(b, "backup");
}
