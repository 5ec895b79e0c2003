//! Raw IP sockets for VRRP (IP protocol 112), IPv4 and IPv6, on tokio.
//!
//! These move bytes only: the caller builds and parses VRRP payloads (and computes the
//! VRRP checksum, including for IPv6: `IPV6_CHECKSUM` is deliberately NOT set, so the
//! kernel neither fills nor verifies it).
//!
//! Kernel behaviours relied upon (Linux):
//! - IPv4 raw sockets deliver the whole datagram, IPv4 header included, so the caller
//!   checks TTL == 255 itself; IPv6 raw sockets deliver the payload only, the hop limit
//!   and destination come from `IPV6_HOPLIMIT` / `IPV6_PKTINFO` control messages.
//! - A raw socket BOUND to an address only receives datagrams addressed to it (IPv4:
//!   not even 224.0.0.18; IPv6: not our other unicast addresses), so both sockets stay
//!   unbound and force their source address per packet with `IP_PKTINFO`
//!   (`ipi_spec_dst`) / `IPV6_PKTINFO` (`ipi6_addr`).
//! - Both are `SO_BINDTODEVICE`d: only the interface's traffic is received and sent.
//! - Both ask for `SO_TIMESTAMPNS`: each datagram carries the (wall-clock) time the kernel
//!   received it, so timers started by an advert (a priority-0 advert's Skew_Time) count
//!   from its arrival, not from whenever the process got round to reading it.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::SystemTime;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, SockaddrIn6,
    SockaddrLike, recvmsg, sendmmsg, sendmsg, setsockopt, sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;
/// The IPv4 VRRP multicast group.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 VRRP multicast group.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit VRRP packets are sent with (and must be received with).
pub const VRRP_TTL: u32 = 255;
/// DSCP CS6 ("network control"), as keepalived sends VRRP.
pub const VRRP_TOS: u32 = 0xc0;

fn ctx(what: &str, ifname: &str) -> impl FnOnce(io::Error) -> io::Error {
    let msg = format!("VRRP socket on {ifname}: {what}");
    move |e| io::Error::new(e.kind(), format!("{msg}: {e}"))
}

fn errno_ctx(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> io::Error {
    move |e| {
        let e = io::Error::from(e);
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }
}

fn raw_socket(domain: Domain, ifname: &str) -> io::Result<Socket> {
    raw_socket_proto(domain, ifname, IPPROTO_VRRP)
}

fn raw_socket_proto(domain: Domain, ifname: &str, proto: i32) -> io::Result<Socket> {
    let sock = Socket::new(domain, Type::RAW, Some(Protocol::from(proto))).map_err(ctx(
        if proto == IPPROTO_VRRP {
            "socket(SOCK_RAW, 112)"
        } else {
            "socket(SOCK_RAW, 51)"
        },
        ifname,
    ))?;
    sock.set_nonblocking(true)
        .map_err(ctx("O_NONBLOCK", ifname))?;
    sock.bind_device(Some(ifname.as_bytes()))
        .map_err(ctx("SO_BINDTODEVICE", ifname))?;
    setsockopt(&sock, sockopt::ReceiveTimestampns, &true)
        .map_err(io::Error::from)
        .map_err(ctx("SO_TIMESTAMPNS", ifname))?;
    count_overflows(&sock, ifname)?;
    Ok(sock)
}

/// SO_RXQ_OVFL: each datagram carries how many the kernel dropped on this socket so far
/// because its receive buffer was full.
fn count_overflows(sock: &Socket, ifname: &str) -> io::Result<()> {
    setsockopt(sock, sockopt::RxqOvfl, &1)
        .map_err(io::Error::from)
        .map_err(ctx("SO_RXQ_OVFL", ifname))
}

/// Sets the receive buffer to `bytes`: SO_RCVBUFFORCE (CAP_NET_ADMIN, past
/// net.core.rmem_max), else SO_RCVBUF (capped by rmem_max). Returns what the kernel gives
/// (it doubles the request for its bookkeeping).
fn set_receive_buffer(sock: &Socket, bytes: usize) -> io::Result<usize> {
    if setsockopt(sock, sockopt::RcvBufForce, &bytes).is_err() {
        sock.set_recv_buffer_size(bytes)?;
    }
    sock.recv_buffer_size()
}

/// The SO_RXQ_OVFL count of a received datagram's control data.
fn overflow_count(c: &ControlMessageOwned) -> Option<u32> {
    match c {
        ControlMessageOwned::RxqOvfl(n) => Some(*n),
        _ => None,
    }
}

/// Takes over a VRRP socket handed over by the previous binary of an upgrade (opened by
/// [`raw_socket`] and configured by `open`), after checking it is one: a raw socket of
/// `domain` for protocol 112, bound to `ifname`.
fn adopted(fd: OwnedFd, domain: Domain, ifname: &str) -> io::Result<Socket> {
    let sock = Socket::from(fd);
    let wrong = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("handed-over socket for {ifname} is not {what}"),
        )
    };
    if sock.r#type()? != Type::RAW || sock.domain()? != domain {
        return Err(wrong("a raw socket of the right family"));
    }
    if sock.protocol()? != Some(Protocol::from(IPPROTO_VRRP)) {
        return Err(wrong("a VRRP (protocol 112) socket"));
    }
    if sock.device()?.as_deref() != Some(ifname.as_bytes()) {
        return Err(wrong("bound to this interface"));
    }
    sock.set_nonblocking(true)
        .map_err(ctx("O_NONBLOCK", ifname))?;
    // A binary before this one may not have asked for the count.
    count_overflows(&sock, ifname)?;
    Ok(sock)
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "VRRP datagram larger than the receive buffer (dropped)",
    )
}

/// What [`VrrpSocketV4::recv`] returns besides the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMetaV4 {
    /// Length of the whole IPv4 datagram (header included) written to the buffer.
    pub len: usize,
    /// Source address of the datagram.
    pub src: Ipv4Addr,
    /// When the kernel received it (wall clock), if it said.
    pub received: Option<SystemTime>,
    /// Datagrams the kernel dropped on this socket so far for want of buffer (SO_RXQ_OVFL).
    pub overflows: Option<u32>,
}

/// Raw IPv4 socket for VRRP on one interface.
#[derive(Debug)]
pub struct VrrpSocketV4 {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    local: Ipv4Addr,
}

impl VrrpSocketV4 {
    /// Opens the socket on `ifname`/`ifindex`, sending from `local` (TTL 255, TOS 0xc0,
    /// no multicast loopback). With `multicast`, joins 224.0.0.18 on the interface.
    /// Must be called inside a tokio runtime.
    pub fn open(ifname: &str, ifindex: u32, local: Ipv4Addr, multicast: bool) -> io::Result<Self> {
        Self::open_proto(ifname, ifindex, local, multicast, false)
    }

    /// [`VrrpSocketV4::open`] for VRRPv2 IPsec-AH: IP protocol 51, and the datagrams sent
    /// carry their own IPv4 header (IP_HDRINCL: the AH ICV covers the header, so vipd must
    /// choose its identification). What it receives is AH datagrams.
    pub fn open_ah(
        ifname: &str,
        ifindex: u32,
        local: Ipv4Addr,
        multicast: bool,
    ) -> io::Result<Self> {
        Self::open_proto(ifname, ifindex, local, multicast, true)
    }

    fn open_proto(
        ifname: &str,
        ifindex: u32,
        local: Ipv4Addr,
        multicast: bool,
        ah: bool,
    ) -> io::Result<Self> {
        let sock = if ah {
            let s = raw_socket_proto(Domain::IPV4, ifname, 51)?;
            s.set_header_included_v4(true)
                .map_err(ctx("IP_HDRINCL", ifname))?;
            s
        } else {
            raw_socket(Domain::IPV4, ifname)?
        };
        if multicast {
            sock.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))
                .map_err(ctx("join 224.0.0.18", ifname))?;
        }
        // Every send names the interface (IP_PKTINFO) as well; on a VMAC device, which has
        // no address of its own, the kernel refuses the source address here (EINVAL).
        match sock.set_multicast_if_v4(&local) {
            Err(e) if e.raw_os_error() != Some(libc::EINVAL) => {
                return Err(ctx("IP_MULTICAST_IF", ifname)(e));
            }
            _ => {}
        }
        sock.set_multicast_ttl_v4(VRRP_TTL)
            .map_err(ctx("IP_MULTICAST_TTL", ifname))?;
        sock.set_ttl_v4(VRRP_TTL).map_err(ctx("IP_TTL", ifname))?;
        sock.set_multicast_loop_v4(false)
            .map_err(ctx("IP_MULTICAST_LOOP", ifname))?;
        sock.set_tos_v4(VRRP_TOS).map_err(ctx("IP_TOS", ifname))?;
        let fd = crate::sys::async_fd(sock).map_err(ctx("register with tokio", ifname))?;
        Ok(VrrpSocketV4 { fd, ifindex, local })
    }

    /// Takes over the socket `open` made in the previous binary of an upgrade (see
    /// [`adopted`]): the adverts that arrived meanwhile are waiting in it.
    pub fn adopt(fd: OwnedFd, ifname: &str, ifindex: u32, local: Ipv4Addr) -> io::Result<Self> {
        let sock = adopted(fd, Domain::IPV4, ifname)?;
        let fd = crate::sys::async_fd(sock).map_err(ctx("register with tokio", ifname))?;
        Ok(VrrpSocketV4 { fd, ifindex, local })
    }

    /// The descriptor (handed to the next binary by an upgrade).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    /// Sets the kernel receive buffer (see [`set_receive_buffer`]); what the kernel gave.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<usize> {
        set_receive_buffer(self.fd.get_ref(), bytes)
    }

    /// The source address packets are sent from.
    pub fn local(&self) -> Ipv4Addr {
        self.local
    }

    /// Joins multicast group `group` on the interface as well (a group other than
    /// 224.0.0.18: keepalived's `vrrp_mcast_group4`). Already joined is `Ok`.
    pub fn join(&self, group: Ipv4Addr) -> io::Result<()> {
        match self
            .fd
            .get_ref()
            .join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(self.ifindex))
        {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
            r => r,
        }
    }

    /// Sends one VRRP payload to `dst` (224.0.0.18 or a unicast peer); the kernel adds
    /// the IPv4 header (source = `local`, TTL 255, protocol 112).
    pub async fn send_to(&self, vrrp_payload: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = SockaddrIn::from(std::net::SocketAddrV4::new(dst, 0));
        let ifindex = i32::try_from(self.ifindex).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range")
        })?;
        let pktinfo = libc::in_pktinfo {
            ipi_ifindex: ifindex,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(self.local).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let iov = [IoSlice::new(vrrp_payload)];
        self.fd
            .async_io(Interest::WRITABLE, |inner| {
                let cmsg = [ControlMessage::Ipv4PacketInfo(&pktinfo)];
                sendmsg(
                    inner.as_raw_fd(),
                    &iov,
                    &cmsg,
                    MsgFlags::empty(),
                    Some(&addr),
                )
                .map_err(errno_ctx("send VRRP (IPv4)"))
            })
            .await
            .map(|_| ())
    }

    /// Sends several VRRP payloads, each to its destination, with as few `sendmmsg` calls as
    /// the socket takes (the adverts due at one wake-up of many instances); what the socket
    /// cannot take at once is sent one by one as it drains. One result per message.
    pub async fn send_batch(&self, msgs: &[(&[u8], Ipv4Addr)]) -> Vec<io::Result<()>> {
        let ifindex = i32::try_from(self.ifindex).unwrap_or(0);
        let pktinfo = libc::in_pktinfo {
            ipi_ifindex: ifindex,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(self.local).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let addrs: Vec<Option<SockaddrIn>> = msgs
            .iter()
            .map(|(_, d)| Some(SockaddrIn::from(std::net::SocketAddrV4::new(*d, 0))))
            .collect();
        let cmsg = [ControlMessage::Ipv4PacketInfo(&pktinfo)];
        let space = nix::cmsg_space!(libc::in_pktinfo).capacity();
        let fd = self.fd.get_ref().as_raw_fd();
        send_all(
            msgs,
            |rest, at| batch(fd, rest, addrs.get(at..).unwrap_or(&[]), &cmsg, space),
            |p, d| self.send_to(p, d),
            "send VRRP (IPv4)",
        )
        .await
    }

    /// Receives one datagram: the FULL IPv4 datagram (header included) is written to
    /// `buf`. A datagram larger than `buf` is dropped with an `InvalidData` error; like
    /// any per-packet error, the socket stays usable.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<RecvMetaV4> {
        self.fd
            .async_io(Interest::READABLE, |inner| Self::recv_now(inner, buf))
            .await
    }

    /// Like [`VrrpSocketV4::recv`], but only what is already queued: `Ok(None)` when the
    /// socket is empty. The event loop reads what waits in the socket before it lets a
    /// timer fire (a stall must not let the timer win over adverts received in time).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<RecvMetaV4>> {
        match Self::recv_now(self.fd.get_ref(), buf) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn recv_now(inner: &Socket, buf: &mut [u8]) -> io::Result<RecvMetaV4> {
        let mut cmsg_buf = nix::cmsg_space!(libc::timespec, u32);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrIn>(
            inner.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_TRUNC,
        )
        .map_err(errno_ctx("receive VRRP (IPv4)"))?;
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(truncated());
        }
        let src = msg.address.map(|a| a.ip()).unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mut received = None;
        let mut overflows = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                received = received.or_else(|| super::stamp::kernel_time(&c));
                overflows = overflows.or_else(|| overflow_count(&c));
            }
        }
        Ok(RecvMetaV4 {
            len: msg.bytes,
            src,
            received,
            overflows,
        })
    }
}

/// What [`VrrpSocketV6::recv`] returns besides the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Length of the VRRP payload written to the buffer (no IPv6 header).
    pub len: usize,
    /// Source address (a link-local for a conforming VRRP router).
    pub src: Ipv6Addr,
    /// Destination address (ff02::12 or our unicast address).
    pub dst: Ipv6Addr,
    /// Hop limit the datagram arrived with (must be 255).
    pub hop_limit: u8,
    /// Interface it arrived on.
    pub ifindex: u32,
    /// When the kernel received it (wall clock), if it said.
    pub received: Option<SystemTime>,
    /// Datagrams the kernel dropped on this socket so far for want of buffer (SO_RXQ_OVFL).
    pub overflows: Option<u32>,
}

/// Raw IPv6 socket for VRRP on one interface.
#[derive(Debug)]
pub struct VrrpSocketV6 {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    local: Ipv6Addr,
}

impl VrrpSocketV6 {
    /// Opens the socket on `ifname`/`ifindex`, sending from `local` (normally the
    /// interface's link-local address, RFC 9568 5.1.2.1); hop limit 255, no
    /// multicast loopback, hop limit and packet info reported on receive. With
    /// `multicast`, joins ff02::12 on the interface. Must be called inside tokio.
    pub fn open(ifname: &str, ifindex: u32, local: Ipv6Addr, multicast: bool) -> io::Result<Self> {
        let sock = raw_socket(Domain::IPV6, ifname)?;
        if multicast {
            sock.join_multicast_v6(&VRRP_GROUP_V6, ifindex)
                .map_err(ctx("join ff02::12", ifname))?;
        }
        sock.set_multicast_if_v6(ifindex)
            .map_err(ctx("IPV6_MULTICAST_IF", ifname))?;
        sock.set_multicast_hops_v6(VRRP_TTL)
            .map_err(ctx("IPV6_MULTICAST_HOPS", ifname))?;
        sock.set_unicast_hops_v6(VRRP_TTL)
            .map_err(ctx("IPV6_UNICAST_HOPS", ifname))?;
        sock.set_multicast_loop_v6(false)
            .map_err(ctx("IPV6_MULTICAST_LOOP", ifname))?;
        setsockopt(&sock, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(io::Error::from)
            .map_err(ctx("IPV6_RECVHOPLIMIT", ifname))?;
        setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(io::Error::from)
            .map_err(ctx("IPV6_RECVPKTINFO", ifname))?;
        let fd = crate::sys::async_fd(sock).map_err(ctx("register with tokio", ifname))?;
        Ok(VrrpSocketV6 { fd, ifindex, local })
    }

    /// Takes over the socket `open` made in the previous binary of an upgrade (see
    /// [`adopted`]).
    pub fn adopt(fd: OwnedFd, ifname: &str, ifindex: u32, local: Ipv6Addr) -> io::Result<Self> {
        let sock = adopted(fd, Domain::IPV6, ifname)?;
        let fd = crate::sys::async_fd(sock).map_err(ctx("register with tokio", ifname))?;
        Ok(VrrpSocketV6 { fd, ifindex, local })
    }

    /// The descriptor (handed to the next binary by an upgrade).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    /// Sets the kernel receive buffer (see [`set_receive_buffer`]); what the kernel gave.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<usize> {
        set_receive_buffer(self.fd.get_ref(), bytes)
    }

    /// The source address packets are sent from.
    pub fn local(&self) -> Ipv6Addr {
        self.local
    }

    /// Joins multicast group `group` on the interface as well (a group other than
    /// ff02::12: keepalived's `vrrp_mcast_group6`). Already joined is `Ok`.
    pub fn join(&self, group: Ipv6Addr) -> io::Result<()> {
        match self.fd.get_ref().join_multicast_v6(&group, self.ifindex) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
            r => r,
        }
    }

    /// Sends one VRRP payload (checksum already filled in by the caller) to `dst`
    /// (ff02::12 or a unicast peer; link-local peers are scoped to our interface).
    pub async fn send_to(&self, vrrp_payload: &[u8], dst: Ipv6Addr) -> io::Result<()> {
        let scope = if is_link_local(&dst) || dst.is_multicast() {
            self.ifindex
        } else {
            0
        };
        let addr = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
        let pktinfo = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: self.local.octets(),
            },
            ipi6_ifindex: self.ifindex,
        };
        let iov = [IoSlice::new(vrrp_payload)];
        self.fd
            .async_io(Interest::WRITABLE, |inner| {
                let cmsg = [ControlMessage::Ipv6PacketInfo(&pktinfo)];
                sendmsg(
                    inner.as_raw_fd(),
                    &iov,
                    &cmsg,
                    MsgFlags::empty(),
                    Some(&addr),
                )
                .map_err(errno_ctx("send VRRP (IPv6)"))
            })
            .await
            .map(|_| ())
    }

    /// Like [`VrrpSocketV4::send_batch`].
    pub async fn send_batch(&self, msgs: &[(&[u8], Ipv6Addr)]) -> Vec<io::Result<()>> {
        let pktinfo = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: self.local.octets(),
            },
            ipi6_ifindex: self.ifindex,
        };
        let addrs: Vec<Option<SockaddrIn6>> = msgs
            .iter()
            .map(|(_, d)| {
                let scope = if is_link_local(d) || d.is_multicast() {
                    self.ifindex
                } else {
                    0
                };
                Some(SockaddrIn6::from(SocketAddrV6::new(*d, 0, 0, scope)))
            })
            .collect();
        let cmsg = [ControlMessage::Ipv6PacketInfo(&pktinfo)];
        let space = nix::cmsg_space!(libc::in6_pktinfo).capacity();
        let fd = self.fd.get_ref().as_raw_fd();
        send_all(
            msgs,
            |rest, at| batch(fd, rest, addrs.get(at..).unwrap_or(&[]), &cmsg, space),
            |p, d| self.send_to(p, d),
            "send VRRP (IPv6)",
        )
        .await
    }

    /// Receives one VRRP payload into `buf` with its addresses and hop limit. A
    /// datagram larger than `buf` is dropped with an `InvalidData` error; like any
    /// per-packet error, the socket stays usable.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        self.fd
            .async_io(Interest::READABLE, |inner| Self::recv_now(inner, buf))
            .await
    }

    /// Like [`VrrpSocketV6::recv`], but only what is already queued: `Ok(None)` when the
    /// socket is empty (see [`VrrpSocketV4::try_recv`]).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<RecvMeta>> {
        match Self::recv_now(self.fd.get_ref(), buf) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn recv_now(inner: &Socket, buf: &mut [u8]) -> io::Result<RecvMeta> {
        let mut cmsg_buf = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, libc::timespec, u32);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrIn6>(
            inner.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_TRUNC,
        )
        .map_err(errno_ctx("receive VRRP (IPv6)"))?;
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(truncated());
        }
        let src = msg.address.map(|a| a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let mut dst = None;
        let mut hop_limit = None;
        let mut ifindex = 0;
        let mut received = None;
        let mut overflows = None;
        for c in msg.cmsgs().map_err(errno_ctx("VRRP (IPv6) control data"))? {
            if let Some(t) = super::stamp::kernel_time(&c) {
                received = Some(t);
                continue;
            }
            if let Some(n) = overflow_count(&c) {
                overflows = Some(n);
                continue;
            }
            match c {
                ControlMessageOwned::Ipv6PacketInfo(pi) => {
                    dst = Some(Ipv6Addr::from(pi.ipi6_addr.s6_addr));
                    ifindex = pi.ipi6_ifindex;
                }
                ControlMessageOwned::Ipv6HopLimit(h) => {
                    hop_limit = u8::try_from(h).ok();
                }
                _ => {}
            }
        }
        let (Some(dst), Some(hop_limit)) = (dst, hop_limit) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "VRRP (IPv6): missing IPV6_PKTINFO/IPV6_HOPLIMIT control data",
            ));
        };
        Ok(RecvMeta {
            len: msg.bytes,
            src,
            dst,
            hop_limit,
            ifindex,
            received,
            overflows,
        })
    }
}

/// Sends every message of `msgs`: `try_batch(rest, offset)` sends as many of `rest` as the
/// socket takes at once; when it takes none (the socket is full) one waits for room through
/// `one`, then the batch goes on; a message the kernel refuses is reported and skipped. One
/// result per message.
async fn send_all<'m, D: Copy, F>(
    msgs: &[(&'m [u8], D)],
    mut try_batch: impl FnMut(&[(&'m [u8], D)], usize) -> nix::Result<usize>,
    one: impl Fn(&'m [u8], D) -> F,
    what: &'static str,
) -> Vec<io::Result<()>>
where
    F: std::future::Future<Output = io::Result<()>>,
{
    let mut out = Vec::with_capacity(msgs.len());
    while out.len() < msgs.len() {
        let at = out.len();
        let rest = msgs.get(at..).unwrap_or(&[]);
        match try_batch(rest, at) {
            Ok(n) if n > 0 => out.extend((0..n).map(|_| Ok(()))),
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                if let Some((p, d)) = rest.first() {
                    out.push(one(p, *d).await);
                }
            }
            Err(e) => out.push(Err(errno_ctx(what)(e))),
        }
    }
    out
}

/// Most messages per `sendmmsg` call (the kernel's UIO_MAXIOV).
const MAX_BATCH: usize = 1024;

/// One `sendmmsg` of (up to [`MAX_BATCH`] of) `msgs` to `addrs` on the non-blocking `fd`,
/// every message with `cmsg`: how many the kernel took.
fn batch<A: SockaddrLike + Copy, D>(
    fd: std::os::fd::RawFd,
    msgs: &[(&[u8], D)],
    addrs: &[Option<A>],
    cmsg: &[ControlMessage<'_>],
    space: usize,
) -> nix::Result<usize> {
    let n = msgs.len().min(addrs.len()).min(MAX_BATCH);
    let iovs: Vec<[IoSlice<'_>; 1]> = msgs
        .iter()
        .take(n)
        .map(|(p, _)| [IoSlice::new(p)])
        .collect();
    // `preallocate` sizes each message's control buffer by this vector's capacity.
    let mut headers = MultiHeaders::<A>::preallocate(n, Some(Vec::with_capacity(space)));
    let sent = sendmmsg(
        fd,
        &mut headers,
        &iovs,
        addrs.get(..n).unwrap_or(&[]),
        cmsg,
        MsgFlags::empty(),
    )?;
    Ok(sent.count())
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}
