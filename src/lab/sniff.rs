//! A passive observer for drills, tests and benchmarks: an AF_PACKET socket in a network
//! namespace that timestamps every VRRP advert, gratuitous ARP and unsolicited NA it sees.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::wire::{self, EtherType, EthernetFrame, Ipv6Packet, Ipv6Repr};

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
    },
}

/// One observation with its arrival time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When the frame was read.
    pub at: Instant,
    /// Ethernet source of the frame.
    pub eth_src: [u8; 6],
    /// What it was.
    pub what: Seen,
}

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
            let r = wire::decode_ipv4_datagram(payload).ok()?;
            Some((src, advert(IpAddr::V4(r.ip.src), r.ip.ttl, &r.vrrp)))
        }
        EtherType::Ipv6 => {
            let pkt = Ipv6Packet::new_checked(payload).ok()?;
            let ip = Ipv6Repr::parse(&pkt).ok()?;
            match ip.next_header {
                wire::IP_PROTO_VRRP => {
                    let r = wire::decode_ipv6_payload(pkt.payload(), ip.src, ip.dst, ip.hop_limit)
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
                        },
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A MAC address as bytes.
pub type EthernetAddressBytes = [u8; 6];

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

/// Reads one frame and when the kernel received it (`SO_TIMESTAMPNS`, mapped onto the
/// monotonic clock; the read time when the kernel gave no timestamp).
fn recv_stamped(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, Instant)> {
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
        .and_then(|mut c| c.find_map(|c| crate::net::stamp::kernel_time(&c)));
    let at = crate::net::stamp::received_at(Instant::now(), std::time::SystemTime::now(), received);
    Ok((msg.bytes, at))
}

/// A running observer; stops (and joins its thread) on drop.
pub struct Sniffer {
    rx: mpsc::Receiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    seen: Vec<Event>,
}

impl Sniffer {
    /// Starts observing every interface of network namespace `netns` (`None`: the caller's).
    /// Returns once the socket is open, so nothing sent afterwards is missed.
    pub fn start(netns: Option<&str>) -> io::Result<Sniffer> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let ns = netns.map(str::to_owned);
        let thread = std::thread::Builder::new()
            .name("vipd-sniff".into())
            .spawn(move || {
                let sock = (|| {
                    if let Some(ns) = &ns {
                        super::netns::enter(ns)?;
                    }
                    let all = i32::from((libc::ETH_P_ALL as u16).to_be());
                    let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(all)))?;
                    s.set_read_timeout(Some(Duration::from_millis(20)))?;
                    s.set_recv_buffer_size(1 << 20)?;
                    // Kernel receive timestamps: a busy machine delaying this thread must
                    // not show up as late packets.
                    nix::sys::socket::setsockopt(
                        &s,
                        nix::sys::socket::sockopt::ReceiveTimestampns,
                        &true,
                    )
                    .map_err(io::Error::from)?;
                    Ok::<_, io::Error>(s)
                })();
                let sock = match sock {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut buf = [0u8; 2048];
                while !stop2.load(Ordering::Relaxed) {
                    match recv_stamped(&sock, &mut buf) {
                        Ok((n, at)) => {
                            if let Some((eth_src, what)) = buf.get(..n).and_then(classify) {
                                if tx.send(Event { at, eth_src, what }).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::TimedOut
                                || e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Sniffer {
                rx,
                stop,
                thread: Some(thread),
                seen: Vec::new(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("sniffer thread died")),
        }
    }

    fn pull(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
    }

    /// Everything seen so far (kept).
    pub fn events(&mut self) -> &[Event] {
        self.pull();
        &self.seen
    }

    /// Waits up to `timeout` for the first event at or after `since` matching `pred`.
    pub fn wait_for(
        &mut self,
        since: Instant,
        timeout: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            self.pull();
            if let Some(e) = self
                .seen
                .iter()
                .skip(checked)
                .find(|e| e.at >= since && pred(e))
            {
                return Some(e.clone());
            }
            checked = self.seen.len();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(e) => self.seen.push(e),
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

impl std::ops::Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
            .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn classifies_captures() {
        let v3 = hex(include_str!("../../tests/data/vrrpv3-ipv4.hex"));
        let (_, s) = classify(&eth(0x0800, &v3)).unwrap();
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
        let v6 = hex(include_str!("../../tests/data/vrrpv3-ipv6-prio0.hex"));
        let (_, s) = classify(&eth(0x86dd, &v6)).unwrap();
        assert!(matches!(
            s,
            Seen::Advert {
                priority: 0,
                vrid: 36,
                ..
            }
        ));
        let garp = hex(include_str!("../../tests/data/garp-on-master.hex"));
        let (_, s) = classify(&eth(0x0806, &garp)).unwrap();
        assert_eq!(
            s,
            Seen::Garp {
                ip: "10.99.0.131".parse().unwrap(),
                mac: [0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9]
            }
        );
        let na = hex(include_str!("../../tests/data/ipv6-unsolicited-na.hex"));
        let (_, s) = classify(&eth(0x86dd, &na)).unwrap();
        assert!(matches!(s, Seen::Na { .. }));
        assert!(classify(&[0u8; 10]).is_none());
    }
}
