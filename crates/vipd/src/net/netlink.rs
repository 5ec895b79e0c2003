//! Netlink (rtnetlink) behind one small trait of ours, so the rest of vipd never sees
//! rtnetlink / netlink-packet-route types (their API changes with every minor release).
//!
//! - [`Netlink`]: the operations the daemon needs (link lookup, list/add/delete addresses).
//! - [`RtNetlink`]: the real implementation over a `NETLINK_ROUTE` socket.
//! - [`subscribe`]: a stream of [`NetEvent`]s from the multicast groups `RTNLGRP_LINK`,
//!   `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR` (link up/down, address added/removed).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{AddressMessageBuilder, MulticastGroup};

/// What vipd needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// The hardware address, when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`) AND with carrier (`IFF_LOWER_UP`).
    pub up: bool,
    pub mtu: u32,
}

/// Address scope (`ip addr add ... scope SCOPE`): the configuration's own type.
pub use vipd_config::Scope;

/// An address to add (a virtual IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv4 only (`IFA_LABEL`), at most 15 bytes; by convention `<ifname>:<suffix>`.
    /// Ignored for IPv6.
    pub label: Option<String>,
    pub scope: Scope,
    /// IPv6 only: `IFA_F_NODAD`, usable at once (never "tentative"). VIPs want this.
    pub nodad: bool,
}

impl AddrSpec {
    /// A global-scope VIP; IPv6 ones get `nodad`.
    pub fn vip(addr: IpAddr, prefix_len: u8) -> AddrSpec {
        AddrSpec {
            addr,
            prefix_len,
            label: None,
            scope: Scope::Global,
            nodad: addr.is_ipv6(),
        }
    }
}

/// A change reported by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link appeared or changed (including up/down and carrier changes).
    Link(LinkInfo),
    LinkRemoved {
        index: u32,
    },
    AddrAdded {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    },
    AddrRemoved {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    },
}

/// The netlink operations vipd uses. All are async and run on the caller's runtime.
#[allow(async_fn_in_trait)]
pub trait Netlink {
    /// The link called `name`, or `None` if there is none.
    async fn link_by_name(&self, name: &str) -> io::Result<Option<LinkInfo>>;
    /// The link with ifindex `index`, or `None` if there is none.
    async fn link_by_index(&self, index: u32) -> io::Result<Option<LinkInfo>>;
    /// Every address (IPv4 and IPv6, including link-local) on the interface.
    async fn addrs(&self, index: u32) -> io::Result<Vec<(IpAddr, u8)>>;
    /// Adds an address. Idempotent: an already present address is `Ok`.
    async fn add_addr(&self, index: u32, spec: &AddrSpec) -> io::Result<()>;
    /// Deletes an address. Idempotent: an absent address, or interface, is `Ok`.
    async fn del_addr(&self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()>;
}

/// [`Netlink`] over a real `NETLINK_ROUTE` socket (of the calling thread's network
/// namespace at creation time).
#[derive(Clone)]
pub struct RtNetlink {
    handle: rtnetlink::Handle,
}

/// The current tokio runtime, as an error instead of netlink-sys' panic when absent
/// (creating the netlink socket registers it with the runtime's reactor).
fn current_runtime() -> io::Result<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current()
        .map_err(|e| io::Error::other(format!("netlink needs a tokio runtime: {e}")))
}

impl RtNetlink {
    /// Opens the netlink socket and spawns its connection task on the current tokio
    /// runtime (error if called outside one).
    pub fn new() -> io::Result<RtNetlink> {
        let rt = current_runtime()?;
        let (conn, handle, _unsolicited) = rtnetlink::new_connection()
            .map_err(|e| io::Error::new(e.kind(), format!("open netlink socket: {e}")))?;
        rt.spawn(conn);
        Ok(RtNetlink { handle })
    }

    async fn get_link(
        &self,
        req: rtnetlink::LinkGetRequest,
        what: &str,
    ) -> io::Result<Option<LinkInfo>> {
        let mut stream = req.execute();
        match stream.try_next().await {
            Ok(Some(msg)) => Ok(Some(link_info(&msg))),
            Ok(None) => Ok(None),
            Err(e) => match errno(&e) {
                Some(libc::ENODEV) => Ok(None),
                _ => Err(to_io(e, &format!("get link {what}"))),
            },
        }
    }
}

/// The errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

fn to_io(e: rtnetlink::Error, context: &str) -> io::Error {
    match &e {
        rtnetlink::Error::NetlinkError(m) => {
            let inner = m.to_io();
            io::Error::new(inner.kind(), format!("{context}: {inner}"))
        }
        _ => io::Error::other(format!("{context}: {e}")),
    }
}

fn link_info(msg: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up)
            && msg.header.flags.contains(LinkFlags::LowerUp),
        mtu: 0,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => info.name.clone_from(n),
            LinkAttribute::Address(a) => info.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::Mtu(m) => info.mtu = *m,
            _ => {}
        }
    }
    info
}

/// The (address, prefix length) of an address message: `IFA_LOCAL` when present
/// (the interface's own address for IPv4, also on point-to-point), else `IFA_ADDRESS`.
fn addr_of(msg: &AddressMessage) -> Option<(IpAddr, u8)> {
    let mut address = None;
    let mut local = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    local.or(address).map(|a| (a, msg.header.prefix_len))
}

fn scope_of(s: Scope) -> AddressScope {
    match s {
        Scope::Global => AddressScope::Universe,
        Scope::Site => AddressScope::Site,
        Scope::Link => AddressScope::Link,
        Scope::Host => AddressScope::Host,
    }
}

fn check_prefix(addr: IpAddr, prefix_len: u8) -> io::Result<()> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("prefix length {prefix_len} too long for {addr}"),
        ));
    }
    Ok(())
}

impl Netlink for RtNetlink {
    async fn link_by_name(&self, name: &str) -> io::Result<Option<LinkInfo>> {
        if name.is_empty() || name.len() > 15 {
            return Ok(None);
        }
        let req = self.handle.link().get().match_name(name.to_owned());
        self.get_link(req, name).await
    }

    async fn link_by_index(&self, index: u32) -> io::Result<Option<LinkInfo>> {
        if index == 0 {
            return Ok(None);
        }
        let req = self.handle.link().get().match_index(index);
        self.get_link(req, &format!("#{index}")).await
    }

    async fn addrs(&self, index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => out.extend(addr_of(&msg)),
                Ok(None) => return Ok(out),
                Err(e) => return Err(to_io(e, &format!("list addresses of ifindex {index}"))),
            }
        }
    }

    async fn add_addr(&self, index: u32, spec: &AddrSpec) -> io::Result<()> {
        check_prefix(spec.addr, spec.prefix_len)?;
        let mut req = self.handle.address().add(index, spec.addr, spec.prefix_len);
        let msg = req.message_mut();
        msg.header.scope = scope_of(spec.scope);
        match spec.addr {
            IpAddr::V4(_) => {
                if let Some(label) = &spec.label {
                    if label.is_empty() || label.len() > 15 || label.contains('\0') {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("invalid address label {label:?} (1..=15 bytes)"),
                        ));
                    }
                    msg.attributes.push(AddressAttribute::Label(label.clone()));
                }
            }
            IpAddr::V6(_) => {
                if spec.nodad {
                    // Both the legacy 8-bit header flags and IFA_FLAGS (which wins).
                    msg.header.flags |= AddressHeaderFlags::Nodad;
                    msg.attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
            }
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(to_io(
                e,
                &format!(
                    "add address {}/{} on ifindex {index}",
                    spec.addr, spec.prefix_len
                ),
            )),
        }
    }

    async fn del_addr(&self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        check_prefix(addr, prefix_len)?;
        let msg = match addr {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(index)
                .address(a, prefix_len)
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(a, prefix_len)
                .build(),
        };
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    errno(&e),
                    // Not there, or the interface is gone (and its addresses with it).
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ESRCH | libc::ENODEV)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(to_io(
                e,
                &format!("delete address {addr}/{prefix_len} on ifindex {index}"),
            )),
        }
    }
}

/// Kernel notifications as a [`Stream`] of [`NetEvent`]s. Ends if the netlink socket
/// fails. If the daemon falls far behind, the kernel drops notifications (ENOBUFS):
/// consumers should still re-check state periodically.
pub struct NetEvents {
    rx: UnboundedReceiver<(
        NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
    _handle: rtnetlink::Handle,
}

/// Subscribes to link and IPv4/IPv6 address notifications of the calling thread's
/// network namespace. Must be called inside a tokio runtime.
pub fn subscribe() -> io::Result<NetEvents> {
    let rt = current_runtime()?;
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ];
    let (mut conn, handle, rx) = rtnetlink::new_multicast_connection(&groups)
        .map_err(|e| io::Error::new(e.kind(), format!("subscribe to netlink events: {e}")))?;
    // Bursts (many VIPs at once) must not overflow the default socket buffer.
    if let Err(e) = conn.socket_mut().socket_mut().set_rx_buf_sz(1 << 20) {
        tracing::debug!("netlink events: cannot enlarge receive buffer: {e}");
    }
    rt.spawn(conn);
    Ok(NetEvents {
        rx,
        _handle: handle,
    })
}

impl NetEvents {
    /// The next event (`None` once the subscription has ended).
    pub async fn recv(&mut self) -> Option<NetEvent> {
        self.next().await
    }
}

/// Translates one notification; `None` for messages we do not care about.
fn to_event(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<NetEvent> {
    let NetlinkPayload::InnerMessage(inner) = msg.payload else {
        return None;
    };
    match inner {
        // AF_BRIDGE link messages describe bridge-port state, not the link itself
        // (a DELLINK with AF_BRIDGE only means "removed from its bridge").
        RouteNetlinkMessage::NewLink(l) if l.header.interface_family != AddressFamily::Bridge => {
            Some(NetEvent::Link(link_info(&l)))
        }
        RouteNetlinkMessage::DelLink(l) if l.header.interface_family != AddressFamily::Bridge => {
            Some(NetEvent::LinkRemoved {
                index: l.header.index,
            })
        }
        RouteNetlinkMessage::NewAddress(a) => {
            addr_of(&a).map(|(addr, prefix_len)| NetEvent::AddrAdded {
                index: a.header.index,
                addr,
                prefix_len,
            })
        }
        RouteNetlinkMessage::DelAddress(a) => {
            addr_of(&a).map(|(addr, prefix_len)| NetEvent::AddrRemoved {
                index: a.header.index,
                addr,
                prefix_len,
            })
        }
        _ => None,
    }
}

impl Stream for NetEvents {
    type Item = NetEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NetEvent>> {
        loop {
            match self.rx.poll_next_unpin(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let Some(ev) = to_event(msg) {
                        return Poll::Ready(Some(ev));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
