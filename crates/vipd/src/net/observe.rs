//! A passive, bounded observer of the wire for `vipctl drill failover`: an `AF_PACKET`
//! socket whose kernel filter passes only ARP, VRRP (IP protocol 112, IPv4 and IPv6) and
//! ICMPv6 neighbour advertisements, timestamped by the kernel. It exists only while a drill
//! runs; what it sees goes through a small bounded queue (the excess is dropped and
//! counted), and the daemon's loop wakes on each event instead of polling.
//!
//! [`classify`] is the one decoder of "what did the wire show" that the lab's sniffer
//! (tests, benchmark, drill) shares.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc;
use vipd_wire::{self as wire, EtherType, EthernetFrame, Ipv6Packet, Ipv6Repr};

/// What was seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A VRRP advertisement (checksum verified).
    Advert {
        /// IP source.
        src: IpAddr,
        /// VRID.
        vrid: u8,
        /// Priority (0: the master is stopping).
        priority: u8,
        /// 2 or 3.
        version: u8,
        /// Interval in centiseconds (v2: seconds x 100).
        interval_cs: u16,
        /// TTL / hop limit.
        ttl: u8,
    },
    /// A gratuitous ARP for `ip` at `mac`.
    Garp {
        /// The announced address.
        ip: Ipv4Addr,
        /// The announcing MAC.
        mac: [u8; 6],
    },
    /// An unsolicited neighbour advertisement for `target` at `mac`.
    Na {
        /// The announced address.
        target: Ipv6Addr,
        /// The announcing MAC (target link-layer address option, else Ethernet source).
        mac: [u8; 6],
        /// The Router flag.
        router: bool,
    },
}

/// One observation with its arrival time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When the kernel received the frame (monotonic clock).
    pub at: Instant,
    /// Ethernet source of the frame.
    pub eth_src: [u8; 6],
    /// What it was.
    pub what: Seen,
}

/// A MAC address as bytes.
pub type EthernetAddressBytes = [u8; 6];

/// Decodes one Ethernet frame into what a drill cares about; anything else is `None`.
pub fn classify(frame: &[u8]) -> Option<(EthernetAddressBytes, Seen)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let src = eth.src_addr().0;
    let payload = eth.payload();
    match eth.ethertype() {
        EtherType::Arp => {
            let (_, arp) = wire::parse_arp_frame(frame).ok()?;
            arp.is_gratuitous().then_some((
                src,
                Seen::Garp {
                    ip: arp.sender_ip,
                    mac: arp.sender_hw.0,
                },
            ))
        }
        EtherType::Ipv4 => {
            // Signed adverts (auth_hmac) too: the trailer is told by length.
            let (r, _) = wire::decode_ipv4_datagram_with_trailer(payload).ok()?;
            Some((src, advert(IpAddr::V4(r.ip.src), r.ip.ttl, &r.vrrp)))
        }
        EtherType::Ipv6 => {
            let pkt = Ipv6Packet::new_checked(payload).ok()?;
            let ip = Ipv6Repr::parse(&pkt).ok()?;
            match ip.next_header {
                wire::IP_PROTO_VRRP => {
                    let (r, _) = wire::decode_ipv6_payload_with_trailer(
                        pkt.payload(),
                        ip.src,
                        ip.dst,
                        ip.hop_limit,
                    )
                    .ok()?;
                    Some((src, advert(IpAddr::V6(ip.src), ip.hop_limit, &r.vrrp)))
                }
                wire::IP_PROTO_ICMPV6 => {
                    let (_, na) = wire::parse_na_packet(payload).ok()?;
                    let mac = na.target_lladdr.map(|m| m.0).unwrap_or(src);
                    (!na.flags.solicited).then_some((
                        src,
                        Seen::Na {
                            target: na.target,
                            mac,
                            router: na.flags.router,
                        },
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn advert(src: IpAddr, ttl: u8, r: &wire::VrrpRepr<'_>) -> Seen {
    Seen::Advert {
        src,
        vrid: r.vrid,
        priority: r.priority,
        version: r.version.number(),
        interval_cs: r.version.interval_cs(),
        ttl,
    }
}

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: 0x15, // BPF_JMP | BPF_JEQ | BPF_K
        jt,
        jf,
        k,
    }
}

const LDH_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
const LDB_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// The kernel filter: ARP; IPv4 with protocol 112; IPv6 with next header 112, or ICMPv6
/// type 136 (neighbour advertisement). Untagged Ethernet; everything else never reaches
/// user space. Jump offsets count instructions after the jump.
pub const FILTER: [libc::sock_filter; 13] = [
    stmt(LDH_ABS, 12),   // 0: EtherType
    jeq(0x0806, 9, 0),   // 1: ARP -> accept (11)
    jeq(0x0800, 0, 2),   // 2: IPv4 -> 3, else 5
    stmt(LDB_ABS, 23),   // 3: IPv4 protocol
    jeq(112, 6, 7),      // 4: VRRP -> accept, else reject (12)
    jeq(0x86dd, 0, 6),   // 5: IPv6 -> 6, else reject
    stmt(LDB_ABS, 20),   // 6: IPv6 next header
    jeq(112, 3, 0),      // 7: VRRP -> accept, else 8
    jeq(58, 0, 3),       // 8: ICMPv6 -> 9, else reject
    stmt(LDB_ABS, 54),   // 9: ICMPv6 type
    jeq(136, 0, 1),      // 10: NA -> accept, else reject
    stmt(RET_K, 0xffff), // 11: accept (whole frame)
    stmt(RET_K, 0),      // 12: reject
];

/// How many observations may wait for the daemon's loop; more are dropped and counted.
pub const QUEUE: usize = 256;

/// A running observer; closes its socket and stops its task when dropped.
#[derive(Debug)]
pub struct Observer {
    rx: mpsc::Receiver<Event>,
    task: tokio::task::JoinHandle<()>,
    dropped: Arc<AtomicU64>,
}

impl Observer {
    /// Starts observing every interface of this network namespace. Returns once the socket
    /// is open and filtered, so nothing sent afterwards is missed. Needs `CAP_NET_RAW` and a
    /// tokio runtime.
    pub fn start() -> io::Result<Observer> {
        let all = i32::from((libc::ETH_P_ALL as u16).to_be());
        let sock = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(all)))?;
        crate::sys::attach_bpf(&sock, &FILTER)?;
        sock.set_nonblocking(true)?;
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
            .map_err(io::Error::from)?;
        let fd = crate::sys::async_fd(sock)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped2 = Arc::clone(&dropped);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let r = fd
                    .async_io(tokio::io::Interest::READABLE, |s| recv_stamped(s, &mut buf))
                    .await;
                let Ok((n, at)) = r else { return };
                let Some((eth_src, what)) = buf.get(..n).and_then(classify) else {
                    continue;
                };
                match tx.try_send(Event { at, eth_src, what }) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        dropped2.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        });
        Ok(Observer { rx, task, dropped })
    }

    /// The next observation (pending until one arrives; `None` if the reader stopped).
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// Observations dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one frame and when the kernel received it (`SO_TIMESTAMPNS`, mapped onto the
/// monotonic clock; the read time when the kernel gave no timestamp).
pub fn recv_stamped(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, Instant)> {
    use nix::sys::socket::{MsgFlags, SockaddrStorage, recvmsg};
    use std::os::fd::AsRawFd;
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let received = msg
        .cmsgs()
        .ok()
        .and_then(|mut c| c.find_map(|c| super::stamp::kernel_time(&c)));
    let at = super::stamp::received_at(Instant::now(), SystemTime::now(), received);
    Ok((msg.bytes, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: String = s
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.chars())
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        (0..digits.len() / 2)
            .filter_map(|i| u8::from_str_radix(digits.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A classic-BPF interpreter for the instructions [`FILTER`] uses, so the program's
    /// jump offsets are checked without a socket.
    fn run_filter(frame: &[u8]) -> bool {
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let Some(i) = FILTER.get(pc) else {
                return false;
            };
            let k = i.k as usize;
            match i.code {
                LDH_ABS => match frame.get(k..k + 2) {
                    Some(b) => a = u32::from(u16::from_be_bytes([b[0], b[1]])),
                    None => return false,
                },
                LDB_ABS => match frame.get(k) {
                    Some(b) => a = u32::from(*b),
                    None => return false,
                },
                0x15 => {
                    let skip = if a == i.k { i.jt } else { i.jf };
                    pc += usize::from(skip);
                }
                RET_K => return i.k != 0,
                _ => return false,
            }
            pc += 1;
        }
    }

    /// Signed adverts (keepalived 2.4.3's auth_hmac captures) are adverts to the drill too,
    /// and the kernel filter passes them.
    #[test]
    fn signed_adverts_are_seen() {
        let ip4 = hex(
            "45c0003c00020000ff70d0300a42000b e000001231339601000a433f0a420064 \
             010100006b0ecdfab6610000ee6cc360 0b19245062ddc5b5ee08d5bf",
        );
        let f = eth(0x0800, &ip4);
        assert!(run_filter(&f));
        assert!(matches!(
            classify(&f),
            Some((
                _,
                Seen::Advert {
                    priority: 150,
                    ttl: 255,
                    ..
                }
            ))
        ));
        let ip6 = hex(
            "6c0f6ff6004470fffe80000000000000 80cf67fffedfeebaff02000000000000 \
             000000000000001231339602000a5498 fe800000000000000000000000000100 \
             fd660000000000000000000000000100 010100006b0ece07fd3300008ce28a09 \
             7ab07a9e4811711fac45688f",
        );
        let f = eth(0x86dd, &ip6);
        assert!(run_filter(&f));
        assert!(matches!(
            classify(&f),
            Some((_, Seen::Advert { priority: 150, .. }))
        ));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn classifies_captures_and_the_filter_passes_them() {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/");
        let read = |name: &str| hex(&std::fs::read_to_string(format!("{data}{name}")).unwrap());
        let v3 = eth(0x0800, &read("vrrpv3-ipv4.hex"));
        assert!(run_filter(&v3));
        let (_, s) = classify(&v3).unwrap();
        assert_eq!(
            s,
            Seen::Advert {
                src: "10.99.0.11".parse().unwrap(),
                vrid: 31,
                priority: 150,
                version: 3,
                interval_cs: 100,
                ttl: 255
            }
        );
        let v6 = eth(0x86dd, &read("vrrpv3-ipv6-prio0.hex"));
        assert!(run_filter(&v6));
        assert!(matches!(
            classify(&v6).unwrap().1,
            Seen::Advert {
                priority: 0,
                vrid: 36,
                ..
            }
        ));
        let garp = eth(0x0806, &read("garp-on-master.hex"));
        assert!(run_filter(&garp));
        assert_eq!(
            classify(&garp).unwrap().1,
            Seen::Garp {
                ip: "10.99.0.131".parse().unwrap(),
                mac: [0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9]
            }
        );
        let na = eth(0x86dd, &read("ipv6-unsolicited-na.hex"));
        assert!(run_filter(&na));
        assert!(matches!(classify(&na).unwrap().1, Seen::Na { .. }));
        assert!(classify(&[0u8; 10]).is_none());
    }

    #[test]
    fn the_filter_rejects_other_traffic() {
        // IPv4 TCP, IPv6 UDP, ICMPv6 echo, an unknown EtherType, a runt.
        let mut v4 = vec![0u8; 40];
        v4[9] = 6;
        assert!(!run_filter(&eth(0x0800, &v4)));
        let mut v6 = vec![0u8; 60];
        v6[6] = 17;
        assert!(!run_filter(&eth(0x86dd, &v6)));
        v6[6] = 58;
        v6[40] = 128;
        assert!(!run_filter(&eth(0x86dd, &v6)));
        v6[40] = 136;
        assert!(run_filter(&eth(0x86dd, &v6)));
        assert!(!run_filter(&eth(0x88cc, &[0u8; 40])));
        assert!(!run_filter(&[0u8; 8]));
    }
}
