//! Fixed IPv6 header (RFC 8200).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Source Address (16)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Destination Address (16)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Extension headers are not walked: `next_header` is reported as found. Bytes past Payload
//! Length (link padding) are ignored.

use core::net::Ipv6Addr;

use super::{
    Error, Result, get_array, get_u8, get_u16, get_u32, set_bytes, set_u8, set_u16, set_u32,
};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after checking that the header and Payload Length fit it.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Ipv6Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks the header and Payload Length against the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len - HEADER_LEN < usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn first_word(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0)
    }

    /// Version (6).
    pub fn version(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0) >> 4
    }

    /// Traffic Class.
    pub fn traffic_class(&self) -> u8 {
        ((self.first_word() >> 20) & 0xff) as u8
    }

    /// Flow Label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    /// Payload Length.
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// Next Header.
    pub fn next_header(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 6)
    }

    /// Hop Limit.
    pub fn hop_limit(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 7)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), 8))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), 24))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload (Payload Length bytes after the fixed header).
    pub fn payload(&self) -> &'a [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, Traffic Class and Flow Label (masked to 20 bits).
    pub fn set_first_word(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        set_u32(self.buffer.as_mut(), 0, w);
    }

    /// Sets Payload Length.
    pub fn set_payload_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }

    /// Sets Next Header.
    pub fn set_next_header(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 6, v);
    }

    /// Sets Hop Limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 7, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        set_bytes(self.buffer.as_mut(), 8, &a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        set_bytes(self.buffer.as_mut(), 24, &a.octets());
    }

    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }
}

/// High-level fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next Header (112 VRRP, 58 ICMPv6).
    pub next_header: u8,
    /// Hop Limit (255 for VRRP and ND; checking it is the receiver's policy).
    pub hop_limit: u8,
    /// Traffic Class (keepalived sends VRRP with 0xc0, CS6).
    pub traffic_class: u8,
    /// Flow Label (20 bits; larger values are masked on emit).
    pub flow_label: u32,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Ipv6Repr {
    /// Parses a checked packet (version must be 6).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::BadVersion(packet.version()));
        }
        Ok(Ipv6Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
            payload_len: usize::from(packet.payload_len()),
        })
    }

    /// Header length (40).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header; the payload is not touched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) -> Result<()> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        let plen = u16::try_from(self.payload_len).map_err(|_| Error::ValueOutOfRange)?;
        packet.set_first_word(self.traffic_class, self.flow_label);
        packet.set_payload_len(plen);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Header of the keepalived VRRPv3/IPv6 capture (payload omitted, so Payload Length 0).
    static HEADER: [u8; 40] = [
        0x6c, 0x09, 0x47, 0x81, 0x00, 0x00, 0x70, 0xff, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x10, 0x33,
        0xde, 0xff, 0xfe, 0xd8, 0xf4, 0xa9, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x12,
    ];

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src: "fe80::1033:deff:fed8:f4a9".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
            next_header: 112,
            hop_limit: 255,
            traffic_class: 0xc0,
            flow_label: 0x94781,
            payload_len: 0,
        }
    }

    #[test]
    fn parse_emit() {
        let p = Ipv6Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), repr());
        let mut out = [0u8; 40];
        repr()
            .emit(&mut Ipv6Packet::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, HEADER);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Ipv6Packet::new_checked(&HEADER[..39]).err(),
            Some(Error::Truncated)
        );
        let mut h = HEADER;
        h[5] = 1; // payload length 1, nothing follows
        assert_eq!(
            Ipv6Packet::new_checked(&h[..]).err(),
            Some(Error::Truncated)
        );
        let mut h = HEADER;
        h[0] = 0x4c;
        let p = Ipv6Packet::new_checked(&h[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p), Err(Error::BadVersion(4)));
    }
}
