//! Pure packet codecs: no I/O, no allocation, no panics on any input.
//!
//! Every codec follows the smoltcp `src/wire` shape:
//!
//! - a checked view `Packet<T: AsRef<[u8]>>` over a borrowed buffer, built with
//!   `new_checked` (validates lengths) and read through field accessors;
//! - a high-level `Repr` with `parse(&Packet<&[u8]>, ..) -> Result<Repr, Error>`,
//!   `buffer_len()` and `emit(&mut Packet<&mut [u8]>, ..) -> Result<(), Error>`
//!   (emit fills in checksums; it never panics, a short buffer is [`Error::BufferTooSmall`]).
//!
//! Modules:
//! - [`checksum`]: RFC 1071 internet checksum and IPv4/IPv6 pseudo-header sums.
//! - [`vrrp`]: VRRPv3 (IPv4/IPv6) and VRRPv2 (IPv4) advertisements, plus the receive-path
//!   helpers [`vrrp::decode_ipv4_datagram`] and [`vrrp::decode_ipv6_payload`].
//! - [`ipv4`], [`ipv6`]: the IP header fields the agent needs.
//! - [`ethernet`]: Ethernet II header.
//! - [`arp`]: ARP for Ethernet/IPv4 and the gratuitous-ARP frame builder.
//! - [`ndisc`]: unsolicited IPv6 Neighbor Advertisement and its frame builder.
//!
//! Field accessors on a view that was *not* built with `new_checked` never panic: a field that
//! lies outside the buffer reads as zero and writes to it are dropped.

#![warn(missing_docs, unreachable_pub)]

use core::fmt;

pub mod arp;
pub mod auth;
pub mod checksum;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod ndisc;
pub mod vrrp;

pub use arp::{
    ArpOperation, ArpPacket, ArpRepr, GARP_FRAME_LEN, build_garp_frame, parse_arp_frame,
};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use ndisc::{
    NA_FRAME_LEN, NaFlags, NaFrame, NaPacket, NaRepr, build_unsolicited_na_frame,
    build_unsolicited_na_packet, parse_na_frame, parse_na_packet,
};
pub use vrrp::{
    Addrs, Auth, ChecksumMode, ChecksumPolicy, Family, IpPair, ReceivedV4, ReceivedV6, VrrpPacket,
    VrrpRepr, VrrpVersion, decode_ipv4_datagram, decode_ipv4_datagram_with_trailer,
    decode_ipv6_payload, decode_ipv6_payload_with_trailer, encode_ipv4_datagram,
    fill_ipv6_checksum, ipv4_datagram_len,
};

/// IP protocol number of VRRP (IPv4 protocol / IPv6 next header).
pub const IP_PROTO_VRRP: u8 = 112;
/// IP protocol number of the IP Authentication Header.
pub const IP_PROTO_AH: u8 = 51;
/// IPv6 next header of ICMPv6.
pub const IP_PROTO_ICMPV6: u8 = 58;

/// Why a buffer could not be decoded (or a representation could not be emitted).
///
/// One variant per reason, so a receiver can count and log rejections precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer ends before a fixed header or a length it declares.
    #[error("truncated packet")]
    Truncated,
    /// A length field disagrees with the bytes present (e.g. trailing bytes after the message).
    #[error("length field does not match the packet")]
    LengthMismatch,
    /// The VRRP address count does not fit the bytes that remain.
    #[error("VRRP address count does not match the packet length")]
    CountMismatch,
    /// Unexpected version field (IP version, VRRP version).
    #[error("unsupported version {0}")]
    BadVersion(u8),
    /// Unexpected message type (VRRP type other than advertisement, ICMPv6 type other than NA).
    #[error("unexpected message type {0}")]
    BadType(u8),
    /// Unexpected ICMPv6 code.
    #[error("unexpected ICMP code {0}")]
    BadCode(u8),
    /// The checksum does not verify (under any accepted mode).
    #[error("bad checksum")]
    BadChecksum,
    /// IPv4 header length below 20 bytes or beyond the total length.
    #[error("bad IPv4 header length")]
    BadHeaderLength,
    /// The IPv4 datagram is a fragment (MF set or non-zero offset).
    #[error("fragmented IPv4 datagram")]
    Fragmented,
    /// The IP protocol / next header is not the one this decoder handles.
    #[error("unexpected IP protocol {0}")]
    BadProtocol(u8),
    /// The Ethernet frame carries another EtherType.
    #[error("unexpected EtherType {0:#06x}")]
    BadEtherType(u16),
    /// ARP hardware type is not Ethernet (1) or hardware address length is not 6.
    #[error("ARP hardware type/length is not Ethernet")]
    BadHardwareType,
    /// ARP protocol type is not IPv4 (0x0800) or protocol address length is not 4.
    #[error("ARP protocol type/length is not IPv4")]
    BadProtocolType,
    /// ARP operation other than request (1) or reply (2).
    #[error("unsupported ARP operation {0}")]
    BadOperation(u16),
    /// VRRPv2 authentication type other than 0, 1 or 2.
    #[error("unknown VRRPv2 authentication type {0}")]
    BadAuthType(u8),
    /// The datagram is protected by an IP Authentication Header (VRRPv2 auth type 2,
    /// RFC 2338), which this agent does not implement.
    #[error("IP Authentication Header (VRRPv2 auth type 2) is not supported")]
    UnsupportedAuthAh,
    /// An ICMPv6 option has length zero or runs past the message.
    #[error("malformed ICMPv6 option")]
    BadOption,
    /// The address family does not fit (VRRPv2 over IPv6, or addresses of the other family).
    #[error("address family mismatch")]
    FamilyMismatch,
    /// Emit only: a field value does not fit its wire width (e.g. interval > 4095 cs).
    #[error("field value out of range")]
    ValueOutOfRange,
    /// Emit only: more than 255 addresses.
    #[error("too many addresses (max 255)")]
    TooManyAddresses,
    /// Emit only: the output buffer is smaller than `buffer_len()`.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Result alias for the wire codecs.
pub type Result<T> = core::result::Result<T, Error>;

/// A 48-bit Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// 00:00:00:00:00:00
    pub const ZERO: EthernetAddress = EthernetAddress([0; 6]);

    /// The bytes of the address.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether the group (I/G) bit is set.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The Ethernet multicast address an IPv6 multicast group maps to (RFC 2464: 33:33 + last
    /// 32 bits), e.g. ff02::1 -> 33:33:00:00:00:01.
    pub const fn from_ipv6_multicast(group: core::net::Ipv6Addr) -> EthernetAddress {
        let o = group.octets();
        EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// The Ethernet multicast address an IPv4 multicast group maps to (RFC 1112: 01:00:5e + low
    /// 23 bits), e.g. 224.0.0.18 -> 01:00:5e:00:00:12.
    pub const fn from_ipv4_multicast(group: core::net::Ipv4Addr) -> EthernetAddress {
        let o = group.octets();
        EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(b: [u8; 6]) -> Self {
        EthernetAddress(b)
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

// ---- panic-free byte access shared by the codecs -------------------------------------------

pub(crate) fn get_u8(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(get_array(b, at))
}

pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(get_array(b, at))
}

pub(crate) fn get_array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

pub(crate) fn set_u8(b: &mut [u8], at: usize, v: u8) {
    if let Some(slot) = b.get_mut(at) {
        *slot = v;
    }
}

pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
    set_bytes(b, at, &v.to_be_bytes());
}

pub(crate) fn set_u32(b: &mut [u8], at: usize, v: u32) {
    set_bytes(b, at, &v.to_be_bytes());
}

pub(crate) fn set_bytes(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(dst) = at.checked_add(v.len()).and_then(|end| b.get_mut(at..end)) {
        dst.copy_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_and_multicast_maps() {
        let m = EthernetAddress([0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9]);
        assert_eq!(m.to_string(), "12:33:de:d8:f4:a9");
        assert!(!m.is_multicast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert_eq!(
            EthernetAddress::from_ipv6_multicast("ff02::1".parse().unwrap()),
            EthernetAddress([0x33, 0x33, 0, 0, 0, 1])
        );
        assert_eq!(
            EthernetAddress::from_ipv4_multicast("224.0.0.18".parse().unwrap()),
            EthernetAddress([0x01, 0, 0x5e, 0, 0, 0x12])
        );
    }

    #[test]
    fn byte_helpers_never_panic() {
        let mut b = [1u8, 2, 3];
        assert_eq!(get_u16(&b, 1), 0x0203);
        assert_eq!(get_u16(&b, 2), 0);
        assert_eq!(get_u32(&b, usize::MAX), 0);
        set_u16(&mut b, 2, 0xffff);
        set_bytes(&mut b, usize::MAX, &[1, 2]);
        assert_eq!(b, [1, 2, 3]);
        set_u8(&mut b, 0, 9);
        assert_eq!(b[0], 9);
    }
}
