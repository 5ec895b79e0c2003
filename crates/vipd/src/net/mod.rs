//! Linux I/O for vipd, moving bytes only (packets are built and parsed by
//! [`vipd_wire`]):
//! - [`netlink`]: links, addresses and change notifications behind the [`Netlink`] trait.
//! - [`vrrp_socket`]: raw IPv4/IPv6 sockets for IP protocol 112 (VRRP).
//! - [`packet`]: an `AF_PACKET` socket sending complete Ethernet frames
//!   (gratuitous ARP, unsolicited neighbour advertisements).
//! - [`observe`]: the bounded, kernel-filtered wire observer of `vipctl drill failover`.
//! - [`stamp`]: kernel receive timestamps mapped onto the monotonic clock.
//! - [`accept`]: Accept_Mode enforced with an nftables table.

pub mod accept;
pub mod netlink;
pub mod observe;
pub mod packet;
pub mod stamp;
pub mod vrrp_socket;

pub use netlink::{AddrSpec, LinkInfo, NetEvent, NetEvents, Netlink, RtNetlink, Scope, subscribe};
pub use packet::FrameSender;
pub use vrrp_socket::{RecvMeta, RecvMetaV4, VrrpSocketV4, VrrpSocketV6};
