//! IPv4 header (RFC 791), the fields the agent needs.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP/ECN    |          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (IHL > 5, skipped)                 |
//! ```
//!
//! Parsing verifies the header checksum and rejects fragments; options are skipped. Bytes past
//! Total Length (link padding) are ignored. Emit always writes a 20-byte header.

use core::net::Ipv4Addr;

use super::{Error, Result, checksum, get_array, get_u8, get_u16, set_bytes, set_u8, set_u16};

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// DSCP CS6 ("network control") with ECN not-ECT, as keepalived sends VRRP.
pub const TOS_CS6: u8 = 0xc0;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 datagram.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking that the header length and total length fit it.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Ipv4Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks IHL and Total Length against the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hlen = self.header_len();
        let total = usize::from(self.total_len());
        if hlen < HEADER_LEN || total < hlen {
            return Err(Error::BadHeaderLength);
        }
        if len < total {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0) >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(get_u8(self.buffer.as_ref(), 0) & 0x0f) * 4
    }

    /// The DSCP/ECN byte (ex Type of Service).
    pub fn tos(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 1)
    }

    /// Total Length.
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), 6) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), 6) & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6) & FRAG_OFFSET_MASK
    }

    /// Time to Live.
    pub fn ttl(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 8)
    }

    /// Protocol.
    pub fn protocol(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 9)
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 10)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 12))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 16))
    }

    /// Whether the header checksum verifies (false if the header does not fit the buffer).
    pub fn verify_checksum(&self) -> bool {
        match self.buffer.as_ref().get(..self.header_len()) {
            Some(h) => checksum::is_valid(checksum::data(h)),
            None => false,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload: bytes from the end of the header (options skipped) to Total Length.
    pub fn payload(&self) -> &'a [u8] {
        let total = usize::from(self.total_len());
        self.buffer
            .as_ref()
            .get(self.header_len()..total)
            .unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version and IHL.
    pub fn set_version_ihl(&mut self, version: u8, header_len: usize) {
        let ihl = u8::try_from(header_len / 4).unwrap_or(0x0f) & 0x0f;
        set_u8(self.buffer.as_mut(), 0, (version << 4) | ihl);
    }

    /// Sets the DSCP/ECN byte.
    pub fn set_tos(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 1, v);
    }

    /// Sets Total Length.
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets Identification.
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }

    /// Sets flags (DF only; MF clear) and a zero fragment offset.
    pub fn set_unfragmented(&mut self, dont_frag: bool) {
        set_u16(self.buffer.as_mut(), 6, if dont_frag { FLAG_DF } else { 0 });
    }

    /// Sets Time to Live.
    pub fn set_ttl(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 8, v);
    }

    /// Sets Protocol.
    pub fn set_protocol(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 9, v);
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 10, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        set_bytes(self.buffer.as_mut(), 12, &a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        set_bytes(self.buffer.as_mut(), 16, &a.octets());
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hlen = self.header_len();
        let sum = self.buffer.as_ref().get(..hlen).map_or(0, checksum::data);
        self.set_checksum(checksum::finish(sum));
    }

    /// Mutable payload (from the header end to Total Length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let total = usize::from(self.total_len());
        let hlen = self.header_len();
        self.buffer.as_mut().get_mut(hlen..total).unwrap_or(&mut [])
    }
}

/// High-level IPv4 header.
///
/// `ident`, `tos` and `dont_frag` are carried so that a captured header re-encodes
/// byte-for-byte; options are not represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol (112 for VRRP).
    pub protocol: u8,
    /// Time to Live (VRRP requires 255; checking it is the receiver's policy).
    pub ttl: u8,
    /// DSCP/ECN byte ([`TOS_CS6`] for VRRP).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment flag.
    pub dont_frag: bool,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Parses and validates a checked datagram: version 4, header checksum, no fragment.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::BadVersion(packet.version()));
        }
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(Error::Fragmented);
        }
        Ok(Ipv4Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            payload_len: usize::from(packet.total_len()).saturating_sub(packet.header_len()),
        })
    }

    /// Header length emitted (20).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header (no options) and its checksum. The buffer must hold at least
    /// the header; the payload is not touched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) -> Result<()> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        let total = self
            .payload_len
            .checked_add(HEADER_LEN)
            .and_then(|t| u16::try_from(t).ok())
            .ok_or(Error::ValueOutOfRange)?;
        packet.set_version_ihl(4, HEADER_LEN);
        packet.set_tos(self.tos);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_unfragmented(self.dont_frag);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Header of the keepalived VRRPv3 capture, followed by its 12-byte VRRP payload.
    static DATAGRAM: [u8; 32] = [
        0x45, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x2c, 0x0a, 0x63, 0x00,
        0x0b, 0xe0, 0x00, 0x00, 0x12, 0x31, 0x1f, 0x96, 0x01, 0x00, 0x64, 0x42, 0x98, 0x0a, 0x63,
        0x00, 0x83,
    ];

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(10, 99, 0, 11),
            dst: Ipv4Addr::new(224, 0, 0, 18),
            protocol: 112,
            ttl: 255,
            tos: TOS_CS6,
            ident: 1,
            dont_frag: false,
            payload_len: 12,
        }
    }

    #[test]
    fn parse() {
        let p = Ipv4Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr());
        assert_eq!(p.payload(), &DATAGRAM[20..]);
    }

    #[test]
    fn emit() {
        let mut out = [0u8; 20];
        repr()
            .emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out[..], DATAGRAM[..20]);
    }

    #[test]
    fn rejects() {
        let mut d = DATAGRAM;
        d[11] ^= 1;
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadChecksum));

        assert_eq!(
            Ipv4Packet::new_checked(&DATAGRAM[..31]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&DATAGRAM[..19]).err(),
            Some(Error::Truncated)
        );

        let mut d = DATAGRAM;
        d[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&d[..]).err(),
            Some(Error::BadHeaderLength)
        );

        let mut d = DATAGRAM;
        d[0] = 0x65;
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadVersion(6)));

        let mut frag = [0u8; 20];
        let mut r = repr();
        r.payload_len = 0;
        r.emit(&mut Ipv4Packet::new_unchecked(&mut frag[..]))
            .unwrap();
        frag[6] = 0x20; // MF
        let mut p = Ipv4Packet::new_unchecked(&mut frag[..]);
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&frag[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::Fragmented));
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6: one 4-byte option (NOP x4) before the payload.
        let mut d = [0u8; 26];
        d[..20].copy_from_slice(&DATAGRAM[..20]);
        d[0] = 0x46;
        d[3] = 26;
        d[20..24].copy_from_slice(&[1, 1, 1, 1]);
        d[24..].copy_from_slice(&[0xab, 0xcd]);
        Ipv4Packet::new_unchecked(&mut d[..]).fill_checksum();
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 2);
        assert_eq!(p.payload(), &[0xab, 0xcd]);
    }
}
