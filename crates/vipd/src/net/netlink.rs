//! Netlink (rtnetlink) behind one small trait of ours, so the rest of vipd never sees
//! rtnetlink / netlink-packet-route types (their API changes with every minor release).
//!
//! - [`Netlink`]: the operations the daemon needs (link lookup, list/add/delete addresses).
//! - [`RtNetlink`]: the real implementation over a `NETLINK_ROUTE` socket.
//! - [`subscribe`]: a stream of [`NetEvent`]s from the multicast groups `RTNLGRP_LINK`,
//!   `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR` (link up/down, address added/removed),
//!   and the route and rule groups (only the removal of vipd's own routes and rules, protocol
//!   [`RTPROT_VIPD`], becomes an event).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoKind, LinkAttribute, LinkFlags,
    LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
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
    /// A macvlan device, on this parent (`IFLA_LINK`).
    pub macvlan_on: Option<u32>,
    /// Its alias (`IFLA_IFALIAS`; vipd marks its VMAC devices with one).
    pub alias: Option<String>,
}

/// A VMAC device to have (RFC 9568 virtual MAC): a private-mode macvlan on `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmacSpec {
    pub name: String,
    pub parent: u32,
    pub mac: [u8; 6],
    /// Marks it as vipd's (found and removed after a crash).
    pub alias: String,
    /// IPv6: no automatic link-local address (the caller adds the one it sends from).
    pub v6: bool,
}

/// The alias prefix of vipd's VMAC devices.
pub const VMAC_ALIAS: &str = "vipd vmac";

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

/// The routing protocol number of vipd's routes and rules: keepalived's (18, "keepalived" in
/// iproute2's rt_protos), so that filters written for keepalived's routes match them, and so
/// that a route the operator added (another protocol) is never deleted by vipd.
pub const RTPROT_VIPD: u8 = 18;

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
    /// One of vipd's routes (protocol [`RTPROT_VIPD`]) was deleted.
    RouteRemoved {
        dst: IpAddr,
        dst_len: u8,
        table: u32,
    },
    /// One of vipd's rules (protocol [`RTPROT_VIPD`]) was deleted.
    RuleRemoved,
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
    /// Adds a route with protocol [`RTPROT_VIPD`] through device `oif`. `Ok(false)`: the
    /// kernel has that route already (ours, or the operator's: it is not replaced).
    async fn add_route(&self, route: &vipd_config::Route, oif: Option<u32>) -> io::Result<bool>;
    /// Deletes a route of ours (protocol [`RTPROT_VIPD`]). Idempotent.
    async fn del_route(&self, route: &vipd_config::Route, oif: Option<u32>) -> io::Result<()>;
    /// Adds a rule with protocol [`RTPROT_VIPD`]; `Ok(false)`: an identical rule exists.
    async fn add_rule(&self, rule: &vipd_config::Rule) -> io::Result<bool>;
    /// Deletes a rule of ours. Idempotent.
    async fn del_rule(&self, rule: &vipd_config::Rule) -> io::Result<()>;
    /// Whether a route of ours to `route`'s destination is in its table (with its metric).
    async fn has_route(&self, route: &vipd_config::Route) -> io::Result<bool>;
    /// Whether a rule of ours like `rule` is installed.
    async fn has_rule(&self, rule: &vipd_config::Rule) -> io::Result<bool>;
    /// The VMAC device `spec` describes, up: created if missing; an existing device of that
    /// name that is not such a macvlan is an error (never taken over).
    async fn ensure_vmac(&self, spec: &VmacSpec) -> io::Result<LinkInfo>;
    /// Deletes a link (absent: `Ok`).
    async fn delete_link(&self, index: u32) -> io::Result<()>;
    /// Every link.
    async fn links(&self) -> io::Result<Vec<LinkInfo>>;
    /// Sets IPv4 devconf values (`IPV4_DEVCONF_*` index, value) of a link.
    async fn set_ipv4_conf(&self, index: u32, conf: &[(u16, u32)]) -> io::Result<()>;
    /// (arp_ignore, arp_filter, arp_announce) of a link.
    async fn arp_conf(&self, index: u32) -> io::Result<Option<(u32, u32, u32)>>;
}

/// `IPV4_DEVCONF_*` indexes vipd sets on VMAC devices and their parents.
pub mod devconf {
    pub const RP_FILTER: u16 = 8;
    pub const ARP_FILTER: u16 = 13;
    pub const ARP_ANNOUNCE: u16 = 18;
    pub const ARP_IGNORE: u16 = 19;
    pub const PROMOTE_SECONDARIES: u16 = 20;
    pub const ACCEPT_LOCAL: u16 = 23;
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
        macvlan_on: None,
        alias: None,
    };
    let mut parent = None;
    let mut macvlan = false;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => info.name.clone_from(n),
            LinkAttribute::Address(a) => info.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::Mtu(m) => info.mtu = *m,
            LinkAttribute::Link(p) => parent = Some(*p),
            LinkAttribute::IfAlias(a) => info.alias = Some(a.clone()),
            LinkAttribute::LinkInfo(infos) => {
                macvlan = infos.iter().any(|i| {
                    matches!(
                        i,
                        rtnetlink::packet_route::link::LinkInfo::Kind(InfoKind::MacVlan)
                    )
                });
            }
            _ => {}
        }
    }
    if macvlan {
        info.macvlan_on = parent;
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
    async fn add_route(&self, route: &vipd_config::Route, oif: Option<u32>) -> io::Result<bool> {
        let mut req = self.handle.route().add(route_message(route, oif));
        let _ = req.message_mut();
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(to_io(e, &format!("add route {route}"))),
        }
    }

    async fn del_route(&self, route: &vipd_config::Route, oif: Option<u32>) -> io::Result<()> {
        match self
            .handle
            .route()
            .del(route_message(route, oif))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ESRCH | libc::ENOENT | libc::ENODEV)) => {
                Ok(())
            }
            Err(e) => Err(to_io(e, &format!("delete route {route}"))),
        }
    }

    async fn add_rule(&self, rule: &vipd_config::Rule) -> io::Result<bool> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = rule_message(rule);
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(to_io(e, &format!("add rule {rule}"))),
        }
    }

    async fn del_rule(&self, rule: &vipd_config::Rule) -> io::Result<()> {
        match self.handle.rule().del(rule_message(rule)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::ESRCH)) => Ok(()),
            Err(e) => Err(to_io(e, &format!("delete rule {rule}"))),
        }
    }

    async fn has_route(&self, route: &vipd_config::Route) -> io::Result<bool> {
        let want = route_message(route, None);
        // A dump of the family's routes (the table is filtered here: without strict
        // checking the kernel ignores the request's table).
        let mut req = RouteMessage::default();
        req.header.address_family = want.header.address_family;
        let mut stream = self.handle.route().get(req).execute();
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => {
                    if same_route(&msg, &want, route.table) {
                        return Ok(true);
                    }
                }
                Ok(None) => return Ok(false),
                Err(e) => return Err(to_io(e, &format!("list routes of table {}", route.table))),
            }
        }
    }

    async fn has_rule(&self, rule: &vipd_config::Rule) -> io::Result<bool> {
        let want = rule_message(rule);
        let version = match rule.family {
            vipd_config::Family::Ipv4 => rtnetlink::IpVersion::V4,
            vipd_config::Family::Ipv6 => rtnetlink::IpVersion::V6,
        };
        let mut stream = self.handle.rule().get(version).execute();
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => {
                    if same_rule(&msg, &want) {
                        return Ok(true);
                    }
                }
                Ok(None) => return Ok(false),
                Err(e) => return Err(to_io(e, "list rules")),
            }
        }
    }
    async fn ensure_vmac(&self, spec: &VmacSpec) -> io::Result<LinkInfo> {
        if let Some(l) = self.link_by_name(&spec.name).await? {
            if l.macvlan_on != Some(spec.parent) || l.mac != Some(spec.mac) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not the VMAC device (a macvlan on the interface with MAC {}): remove it, or choose another vmac_interface",
                        spec.name,
                        mac_text(&spec.mac)
                    ),
                ));
            }
            self.set_up_with_alias(l.index, &spec.alias).await?;
            return self
                .link_by_index(l.index)
                .await?
                .ok_or_else(|| io::Error::other(format!("{} vanished", spec.name)));
        }
        // Created down: the kernel ignores IFLA_AF_SPEC at creation, and an up device would
        // get an automatic IPv6 link-local address (and send DAD and MLD from the virtual
        // MAC) before it could be told not to.
        let b = rtnetlink::LinkMacVlan::new(&spec.name, spec.parent, MacVlanMode::Private)
            .address(spec.mac.to_vec());
        match self.handle.link().add(b.build()).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(to_io(e, &format!("create VMAC device {}", spec.name))),
        }
        let l = self.link_by_name(&spec.name).await?.ok_or_else(|| {
            io::Error::other(format!("{} not there after creating it", spec.name))
        })?;
        // No automatic IPv6 link-local address (RFC 9568 7.4): an IPv6 instance adds the
        // address it sends from itself.
        let gen_none = rtnetlink::LinkUnspec::new_with_index(l.index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]))
            .build();
        if let Err(e) = self.handle.link().set(gen_none).execute().await {
            tracing::warn!(interface = %spec.name, error = %e,
                           "cannot turn off automatic IPv6 addresses on {}: {e}", spec.name);
        }
        self.set_up_with_alias(l.index, &spec.alias).await?;
        self.link_by_index(l.index)
            .await?
            .ok_or_else(|| io::Error::other(format!("{} vanished", spec.name)))
    }

    async fn delete_link(&self, index: u32) -> io::Result<()> {
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ENODEV | libc::ENOENT)) => Ok(()),
            Err(e) => Err(to_io(e, &format!("delete link {index}"))),
        }
    }

    async fn links(&self) -> io::Result<Vec<LinkInfo>> {
        let mut stream = self.handle.link().get().execute();
        let mut out = Vec::new();
        loop {
            match stream.try_next().await {
                Ok(Some(m)) => out.push(link_info(&m)),
                Ok(None) => return Ok(out),
                Err(e) => return Err(to_io(e, "list links")),
            }
        }
    }

    async fn set_ipv4_conf(&self, index: u32, conf: &[(u16, u32)]) -> io::Result<()> {
        // IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF / [index] = value, zeros included (the
        // library's request form leaves zero values out).
        let mut nested = Vec::new();
        for &(k, v) in conf {
            nested.extend_from_slice(&8u16.to_ne_bytes());
            nested.extend_from_slice(&k.to_ne_bytes());
            nested.extend_from_slice(&v.to_ne_bytes());
        }
        let inet_conf = DefaultNla::new(1, nested);
        let msg = rtnetlink::LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
                AfSpecInet::Other(inet_conf),
            ])]))
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| to_io(e, &format!("set IPv4 settings of link {index}")))
    }

    async fn arp_conf(&self, index: u32) -> io::Result<Option<(u32, u32, u32)>> {
        let mut stream = self.handle.link().get().match_index(index).execute();
        let msg = match stream.try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(to_io(e, &format!("get link {index}"))),
        };
        for attr in &msg.attributes {
            if let LinkAttribute::AfSpecUnspec(specs) = attr {
                for s in specs {
                    if let AfSpecUnspec::Inet(inet) = s {
                        for i in inet {
                            if let AfSpecInet::DevConf(c) = i {
                                let u = |v: i32| u32::try_from(v).unwrap_or(0);
                                return Ok(Some((
                                    u(c.arp_ignore),
                                    u(c.arpfilter),
                                    u(c.arp_announce),
                                )));
                            }
                        }
                    }
                }
            }
        }
        Ok(None)
    }
}

impl RtNetlink {
    /// Brings link `index` up and sets its alias.
    async fn set_up_with_alias(&self, index: u32, alias: &str) -> io::Result<()> {
        let msg = rtnetlink::LinkUnspec::new_with_index(index)
            .up()
            .append_extra_attribute(LinkAttribute::IfAlias(alias.to_string()))
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| to_io(e, &format!("set link {index} up")))
    }
}

/// `00:00:5e:00:01:33`.
pub fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The message that adds or deletes `route` (protocol [`RTPROT_VIPD`]).
fn route_message(route: &vipd_config::Route, oif: Option<u32>) -> RouteMessage {
    use vipd_config::RouteType as T;
    let mut m = RouteMessage::default();
    let (dst, len) = route.to;
    m.header.address_family = match dst {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.destination_prefix_length = len;
    m.header.protocol = RouteProtocol::from(RTPROT_VIPD);
    m.header.scope = match route.scope {
        Scope::Global => RouteScope::Universe,
        Scope::Site => RouteScope::Site,
        Scope::Link => RouteScope::Link,
        Scope::Host => RouteScope::Host,
    };
    m.header.kind = match route.kind {
        T::Unicast => RouteType::Unicast,
        T::Blackhole => RouteType::BlackHole,
        T::Unreachable => RouteType::Unreachable,
        T::Prohibit => RouteType::Prohibit,
        T::Throw => RouteType::Throw,
    };
    // Tables above 255 go in RTA_TABLE only (the header's field is 8 bits).
    m.header.table = u8::try_from(route.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.attributes.push(RouteAttribute::Table(route.table));
    if len > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
    }
    if let Some(via) = route.via
        && via.is_ipv4() == dst.is_ipv4()
    {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(via)));
    }
    if let Some(src) = route.src {
        m.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    if let Some(i) = oif {
        m.attributes.push(RouteAttribute::Oif(i));
    }
    if let Some(metric) = route.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    if route.onlink {
        m.header.flags |= RouteFlags::Onlink;
    }
    m
}

/// Whether `got` (from a dump) is the route `want` describes: ours, same destination, table
/// and metric (when `want` sets one).
fn same_route(got: &RouteMessage, want: &RouteMessage, table: u32) -> bool {
    let attr_table = got.attributes.iter().find_map(|a| match a {
        RouteAttribute::Table(t) => Some(*t),
        _ => None,
    });
    let dst = |m: &RouteMessage| {
        m.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(d) => Some(d.clone()),
            _ => None,
        })
    };
    let metric = |m: &RouteMessage| {
        m.attributes.iter().find_map(|a| match a {
            RouteAttribute::Priority(p) => Some(*p),
            _ => None,
        })
    };
    got.header.protocol == want.header.protocol
        && attr_table.unwrap_or(u32::from(got.header.table)) == table
        && got.header.address_family == want.header.address_family
        && got.header.destination_prefix_length == want.header.destination_prefix_length
        && dst(got) == dst(want)
        && (metric(want).is_none() || metric(got) == metric(want))
}

/// The message that adds or deletes `rule` (protocol [`RTPROT_VIPD`]).
fn rule_message(rule: &vipd_config::Rule) -> RuleMessage {
    use vipd_config::RouteType as T;
    let mut m = RuleMessage::default();
    m.header.family = match rule.family {
        vipd_config::Family::Ipv4 => AddressFamily::Inet,
        vipd_config::Family::Ipv6 => AddressFamily::Inet6,
    };
    m.header.action = match rule.kind {
        T::Blackhole => RuleAction::Blackhole,
        T::Unreachable => RuleAction::Unreachable,
        T::Prohibit => RuleAction::Prohibit,
        T::Unicast | T::Throw => RuleAction::ToTable,
    };
    if m.header.action == RuleAction::ToTable {
        m.header.table = u8::try_from(rule.table).unwrap_or(0);
        m.attributes.push(RuleAttribute::Table(rule.table));
    }
    if let Some((a, l)) = rule.from {
        m.header.src_len = l;
        if l > 0 {
            m.attributes.push(RuleAttribute::Source(a));
        }
    }
    if let Some((a, l)) = rule.to {
        m.header.dst_len = l;
        if l > 0 {
            m.attributes.push(RuleAttribute::Destination(a));
        }
    }
    if let Some(i) = &rule.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &rule.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some((mark, mask)) = rule.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
        m.attributes.push(RuleAttribute::FwMask(mask));
    }
    if let Some(p) = rule.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(RTPROT_VIPD)));
    m
}

/// Whether `got` (from a dump) is the rule `want` describes: the same header and the same
/// attributes, whatever their order (the kernel adds a priority when none was given).
fn same_rule(got: &RuleMessage, want: &RuleMessage) -> bool {
    got.header.family == want.header.family
        && got.header.action == want.header.action
        && got.header.src_len == want.header.src_len
        && got.header.dst_len == want.header.dst_len
        && want.attributes.iter().all(|a| match a {
            // Marks: the kernel reports the mask only when it is not all ones.
            RuleAttribute::FwMask(u32::MAX) => true,
            a => got.attributes.contains(a),
        })
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
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
        MulticastGroup::Ipv4Rule,
        MulticastGroup::Ipv6Rule,
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
        RouteNetlinkMessage::DelRoute(r) if u8::from(r.header.protocol) == RTPROT_VIPD => {
            let table = r
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(r.header.table));
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
                _ => None,
            });
            let any = if r.header.address_family == AddressFamily::Inet6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            Some(NetEvent::RouteRemoved {
                dst: dst.unwrap_or(any),
                dst_len: r.header.destination_prefix_length,
                table,
            })
        }
        RouteNetlinkMessage::DelRule(r)
            if r.attributes.iter().any(
                |a| matches!(a, RuleAttribute::Protocol(p) if u8::from(*p) == RTPROT_VIPD),
            ) =>
        {
            Some(NetEvent::RuleRemoved)
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
