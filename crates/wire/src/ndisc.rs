//! IPv6 Neighbor Advertisement (RFC 4861 section 4.4), for unsolicited announcements of a VIP.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type = 136   |   Code = 0    |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|S|O|                     Reserved                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Target Address (16)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type = 2     |  Length = 1   |  Target link-layer address    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+             (6)               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The checksum covers the IPv6 pseudo-header (next header 58). An unsolicited NA sets only
//! Override (flags word 0x20000000), goes to ff02::1 (Ethernet 33:33:00:00:00:01) with hop limit
//! 255, and carries the Target Link-Layer Address option; keepalived 2.2.7 sends it from the VIP
//! itself (see `tests/data/ipv6-unsolicited-na.hex`). Options other than TLLA are skipped.

use core::net::Ipv6Addr;

use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::ipv6::{self, Ipv6Packet, Ipv6Repr};
use super::{
    Error, EthernetAddress, IP_PROTO_ICMPV6, Result, checksum, get_array, get_u8, get_u16, get_u32,
    set_bytes, set_u8, set_u16, set_u32,
};

/// ICMPv6 type of a Neighbor Advertisement.
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;
/// Length of the NA without options.
pub const HEADER_LEN: usize = 24;
/// Length of the Target Link-Layer Address option for Ethernet.
pub const TLLA_OPT_LEN: usize = 8;
/// Option type of the Target Link-Layer Address.
pub const OPT_TARGET_LLADDR: u8 = 2;
/// All-nodes multicast group.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Hop limit required for Neighbor Discovery.
pub const HOP_LIMIT: u8 = 255;
/// Length of a full unsolicited NA frame (Ethernet + IPv6 + NA + TLLA).
pub const NA_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + HEADER_LEN + TLLA_OPT_LEN;

const FLAG_ROUTER: u32 = 0x8000_0000;
const FLAG_SOLICITED: u32 = 0x4000_0000;
const FLAG_OVERRIDE: u32 = 0x2000_0000;

/// The R, S and O flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NaFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: override existing cache entries.
    pub override_: bool,
}

impl NaFlags {
    /// Override only: an unsolicited advertisement.
    pub const UNSOLICITED: NaFlags = NaFlags {
        router: false,
        solicited: false,
        override_: true,
    };

    /// The flags word (reserved bits zero).
    pub const fn to_bits(self) -> u32 {
        (if self.router { FLAG_ROUTER } else { 0 })
            | (if self.solicited { FLAG_SOLICITED } else { 0 })
            | (if self.override_ { FLAG_OVERRIDE } else { 0 })
    }

    /// From a flags word (reserved bits ignored).
    pub const fn from_bits(bits: u32) -> NaFlags {
        NaFlags {
            router: bits & FLAG_ROUTER != 0,
            solicited: bits & FLAG_SOLICITED != 0,
            override_: bits & FLAG_OVERRIDE != 0,
        }
    }
}

/// A view of a Neighbor Advertisement (the ICMPv6 message, options included).
#[derive(Debug, Clone)]
pub struct NaPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NaPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        NaPacket { buffer }
    }

    /// Wraps a buffer of at least 24 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(NaPacket { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// ICMPv6 type.
    pub fn msg_type(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0)
    }

    /// ICMPv6 code.
    pub fn code(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 1)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// The flags word (R/S/O and reserved bits).
    pub fn flags_word(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }

    /// Target address.
    pub fn target(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), 8))
    }

    /// Options area.
    pub fn options(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Whether the checksum verifies with the IPv6 pseudo-header of `src` -> `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let msg = self.buffer.as_ref();
        let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        checksum::is_valid(checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IP_PROTO_ICMPV6, len),
            checksum::data(msg),
        ]))
    }

    /// The first Ethernet Target Link-Layer Address option. A zero-length option or one that
    /// runs past the message is [`Error::BadOption`].
    pub fn target_lladdr(&self) -> Result<Option<EthernetAddress>> {
        let mut rest = self.options();
        let mut found = None;
        while !rest.is_empty() {
            let kind = get_u8(rest, 0);
            let len = usize::from(get_u8(rest, 1)) * 8;
            if len == 0 {
                return Err(Error::BadOption);
            }
            let opt = rest.get(..len).ok_or(Error::BadOption)?;
            if found.is_none() && kind == OPT_TARGET_LLADDR && len == TLLA_OPT_LEN {
                found = Some(EthernetAddress(get_array(opt, 2)));
            }
            rest = rest.get(len..).unwrap_or(&[]);
        }
        Ok(found)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NaPacket<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, msg_type: u8, code: u8) {
        set_u8(self.buffer.as_mut(), 0, msg_type);
        set_u8(self.buffer.as_mut(), 1, code);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the flags word.
    pub fn set_flags_word(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 4, v);
    }

    /// Sets the target address.
    pub fn set_target(&mut self, a: Ipv6Addr) {
        set_bytes(self.buffer.as_mut(), 8, &a.octets());
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let msg = self.buffer.as_ref();
        let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IP_PROTO_ICMPV6, len),
            checksum::data(msg),
        ]);
        self.set_checksum(checksum::finish(sum));
    }
}

/// High-level Neighbor Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NaRepr {
    /// R/S/O flags.
    pub flags: NaFlags,
    /// Target address (the VIP).
    pub target: Ipv6Addr,
    /// Target Link-Layer Address option, if present.
    pub target_lladdr: Option<EthernetAddress>,
}

impl NaRepr {
    /// An unsolicited NA for `vip` at `mac`.
    pub const fn unsolicited(mac: EthernetAddress, vip: Ipv6Addr) -> Self {
        NaRepr {
            flags: NaFlags::UNSOLICITED,
            target: vip,
            target_lladdr: Some(mac),
        }
    }

    /// Parses a checked message: type 136, code 0, checksum (pseudo-header `src` -> `dst`),
    /// well-formed options.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &NaPacket<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Self> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.msg_type() != TYPE_NEIGHBOR_ADVERT {
            return Err(Error::BadType(packet.msg_type()));
        }
        if packet.code() != 0 {
            return Err(Error::BadCode(packet.code()));
        }
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(NaRepr {
            flags: NaFlags::from_bits(packet.flags_word()),
            target: packet.target(),
            target_lladdr: packet.target_lladdr()?,
        })
    }

    /// Bytes [`emit`](Self::emit) writes (24, or 32 with the TLLA option).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self.target_lladdr {
                Some(_) => TLLA_OPT_LEN,
                None => 0,
            }
    }

    /// Writes the message into the first `buffer_len()` bytes and fills in the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut NaPacket<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<()> {
        let buf = packet
            .buffer
            .as_mut()
            .get_mut(..self.buffer_len())
            .ok_or(Error::BufferTooSmall)?;
        let mut out = NaPacket::new_unchecked(buf);
        out.set_type_code(TYPE_NEIGHBOR_ADVERT, 0);
        out.set_flags_word(self.flags.to_bits());
        out.set_target(self.target);
        if let Some(mac) = self.target_lladdr {
            set_u8(out.buffer, HEADER_LEN, OPT_TARGET_LLADDR);
            set_u8(out.buffer, HEADER_LEN + 1, 1);
            set_bytes(out.buffer, HEADER_LEN + 2, &mac.0);
        }
        out.fill_checksum(src, dst);
        Ok(())
    }
}

/// A parsed Ethernet + IPv6 + NA frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NaFrame {
    /// Ethernet header.
    pub eth: EthernetRepr,
    /// IPv6 header.
    pub ip: Ipv6Repr,
    /// The advertisement.
    pub na: NaRepr,
}

/// Writes the IPv6 packet (header + NA + TLLA) of an unsolicited NA for `vip` at `mac`, from
/// `src` to ff02::1 with hop limit 255, and returns its length (72). `router`: the R flag
/// (set when the sender forwards IPv6 on that interface, RFC 4861 §4.4).
pub fn build_unsolicited_na_packet(
    buf: &mut [u8],
    mac: EthernetAddress,
    src: Ipv6Addr,
    vip: Ipv6Addr,
    router: bool,
) -> Result<usize> {
    let mut na = NaRepr::unsolicited(mac, vip);
    na.flags.router = router;
    let total = ipv6::HEADER_LEN + na.buffer_len();
    let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    let ip = Ipv6Repr {
        src,
        dst: ALL_NODES,
        next_header: IP_PROTO_ICMPV6,
        hop_limit: HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
        payload_len: na.buffer_len(),
    };
    let mut packet = Ipv6Packet::new_unchecked(buf);
    ip.emit(&mut packet)?;
    na.emit(
        &mut NaPacket::new_unchecked(packet.payload_mut()),
        src,
        ALL_NODES,
    )?;
    Ok(total)
}

/// Writes a full unsolicited NA frame (Ethernet dst 33:33:00:00:00:01, src `mac`) and returns
/// its length ([`NA_FRAME_LEN`]). keepalived uses the VIP itself as `src`.
pub fn build_unsolicited_na_frame(
    buf: &mut [u8],
    mac: EthernetAddress,
    src: Ipv6Addr,
    vip: Ipv6Addr,
    router: bool,
) -> Result<usize> {
    let buf = buf.get_mut(..NA_FRAME_LEN).ok_or(Error::BufferTooSmall)?;
    let mut frame = EthernetFrame::new_unchecked(buf);
    EthernetRepr {
        src: mac,
        dst: EthernetAddress::from_ipv6_multicast(ALL_NODES),
        ethertype: EtherType::Ipv6,
    }
    .emit(&mut frame)?;
    build_unsolicited_na_packet(frame.payload_mut(), mac, src, vip, router)?;
    Ok(NA_FRAME_LEN)
}

/// Parses an IPv6 packet (fixed header, next header 58) carrying a Neighbor Advertisement.
pub fn parse_na_packet(bytes: &[u8]) -> Result<(Ipv6Repr, NaRepr)> {
    let packet = Ipv6Packet::new_checked(bytes)?;
    let ip = Ipv6Repr::parse(&packet)?;
    if ip.next_header != IP_PROTO_ICMPV6 {
        return Err(Error::BadProtocol(ip.next_header));
    }
    let na = NaRepr::parse(&NaPacket::new_checked(packet.payload())?, ip.src, ip.dst)?;
    Ok((ip, na))
}

/// Parses an Ethernet frame carrying an IPv6 Neighbor Advertisement.
pub fn parse_na_frame(bytes: &[u8]) -> Result<NaFrame> {
    let frame = EthernetFrame::new_checked(bytes)?;
    let eth = EthernetRepr::parse(&frame)?;
    if eth.ethertype != EtherType::Ipv6 {
        return Err(Error::BadEtherType(eth.ethertype.into()));
    }
    let (ip, na) = parse_na_packet(frame.payload())?;
    Ok(NaFrame { eth, ip, na })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9]);

    fn vip() -> Ipv6Addr {
        "fd99::136".parse().unwrap()
    }

    // keepalived 2.2.7 NA for fd99::136 from fd99::136 to ff02::1 (ICMPv6 part).
    static NA: [u8; 32] = [
        0x88, 0x00, 0x73, 0x4a, 0x20, 0x00, 0x00, 0x00, 0xfd, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0x01, 0x36, 0x02, 0x01, 0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9,
    ];

    #[test]
    fn parse_emit() {
        let p = NaPacket::new_checked(&NA[..]).unwrap();
        assert_eq!(p.flags_word(), 0x2000_0000);
        let r = NaRepr::parse(&p, vip(), ALL_NODES).unwrap();
        assert_eq!(r, NaRepr::unsolicited(MAC, vip()));
        let mut out = [0u8; 32];
        r.emit(&mut NaPacket::new_unchecked(&mut out[..]), vip(), ALL_NODES)
            .unwrap();
        assert_eq!(out, NA);
    }

    #[test]
    fn frame() {
        let mut buf = [0u8; 100];
        let n = build_unsolicited_na_frame(&mut buf, MAC, vip(), vip(), false).unwrap();
        assert_eq!(n, 86);
        assert_eq!(&buf[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&buf[54..86], &NA);
        let f = parse_na_frame(&buf[..n]).unwrap();
        assert_eq!(f.ip.hop_limit, 255);
        assert_eq!(f.ip.dst, ALL_NODES);
        assert_eq!(f.na.target_lladdr, Some(MAC));
        assert_eq!(
            build_unsolicited_na_frame(&mut buf[..85], MAC, vip(), vip(), false),
            Err(Error::BufferTooSmall)
        );
        // A router sets R; the checksum still verifies.
        let n = build_unsolicited_na_frame(&mut buf, MAC, vip(), vip(), true).unwrap();
        let f = parse_na_frame(&buf[..n]).unwrap();
        assert!(f.na.flags.router && f.na.flags.override_);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            NaPacket::new_checked(&NA[..23]).err(),
            Some(Error::Truncated)
        );
        let mut b = NA;
        b[3] ^= 1;
        let p = NaPacket::new_checked(&b[..]).unwrap();
        assert_eq!(NaRepr::parse(&p, vip(), ALL_NODES), Err(Error::BadChecksum));
        let mut b = NA;
        b[0] = 135;
        let p = NaPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            NaRepr::parse(&p, vip(), ALL_NODES),
            Err(Error::BadType(135))
        );
        let mut b = NA;
        b[1] = 1;
        let p = NaPacket::new_checked(&b[..]).unwrap();
        assert_eq!(NaRepr::parse(&p, vip(), ALL_NODES), Err(Error::BadCode(1)));
        // zero-length option, checksum fixed up
        let mut b = NA;
        b[25] = 0;
        let mut p = NaPacket::new_unchecked(&mut b[..]);
        p.fill_checksum(vip(), ALL_NODES);
        let p = NaPacket::new_checked(&b[..]).unwrap();
        assert_eq!(NaRepr::parse(&p, vip(), ALL_NODES), Err(Error::BadOption));
        // option running past the end
        let mut b = NA;
        b[25] = 2;
        let mut p = NaPacket::new_unchecked(&mut b[..]);
        p.fill_checksum(vip(), ALL_NODES);
        let p = NaPacket::new_checked(&b[..]).unwrap();
        assert_eq!(NaRepr::parse(&p, vip(), ALL_NODES), Err(Error::BadOption));
    }

    #[test]
    fn no_option() {
        let r = NaRepr {
            flags: NaFlags {
                router: true,
                solicited: true,
                override_: false,
            },
            target: vip(),
            target_lladdr: None,
        };
        let mut out = [0u8; 24];
        r.emit(&mut NaPacket::new_unchecked(&mut out[..]), vip(), ALL_NODES)
            .unwrap();
        assert_eq!(
            NaRepr::parse(&NaPacket::new_checked(&out[..]).unwrap(), vip(), ALL_NODES),
            Ok(r)
        );
    }
}
