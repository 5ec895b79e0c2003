//! ARP for Ethernet/IPv4 (RFC 826) and gratuitous ARP.
//!
//! ```text
//! +--------+--------+--------+--------+
//! | HTYPE = 1       | PTYPE = 0x0800  |
//! +--------+--------+--------+--------+
//! |HLEN = 6|PLEN = 4| OPER (1 req, 2 reply)
//! +--------+--------+--------+--------+
//! | Sender hardware address (6)       |
//! | Sender protocol address (4)       |
//! | Target hardware address (6)       |
//! | Target protocol address (4)       |
//! +--------+--------+--------+--------+
//! ```
//!
//! A gratuitous ARP announces `VIP is at MAC`: sender and target protocol addresses are both
//! the VIP, sent to the Ethernet broadcast address.
//!
//! - Request form (what keepalived 2.2.7 sends, see `tests/data/garp-on-master.hex`): target
//!   hardware address ff:ff:ff:ff:ff:ff.
//! - Reply form (RFC 5944 section 4.6): target hardware address = the sender's MAC.
//!
//! Bytes after the 28-byte message (Ethernet minimum-size padding) are ignored.

use core::net::Ipv4Addr;

use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::{
    Error, EthernetAddress, Result, get_array, get_u8, get_u16, set_bytes, set_u8, set_u16,
};

/// Length of an Ethernet/IPv4 ARP message.
pub const PACKET_LEN: usize = 28;
/// Length of a full gratuitous ARP frame (Ethernet header + ARP, no padding or FCS).
pub const GARP_FRAME_LEN: usize = ethernet::HEADER_LEN + PACKET_LEN;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1
    Request,
    /// 2
    Reply,
}

impl ArpOperation {
    /// The wire value.
    pub const fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// A view of an ARP message.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer of at least 28 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(ArpPacket { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type.
    pub fn hardware_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }

    /// Protocol type.
    pub fn protocol_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 4)
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 5)
    }

    /// Operation.
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// Sender hardware address.
    pub fn sender_hw(&self) -> EthernetAddress {
        EthernetAddress(get_array(self.buffer.as_ref(), 8))
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 14))
    }

    /// Target hardware address.
    pub fn target_hw(&self) -> EthernetAddress {
        EthernetAddress(get_array(self.buffer.as_ref(), 18))
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 24))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets hardware/protocol types and lengths for Ethernet/IPv4.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        set_u16(b, 0, HTYPE_ETHERNET);
        set_u16(b, 2, PTYPE_IPV4);
        set_u8(b, 4, 6);
        set_u8(b, 5, 4);
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, op: u16) {
        set_u16(self.buffer.as_mut(), 6, op);
    }

    /// Sets the sender hardware address.
    pub fn set_sender_hw(&mut self, a: EthernetAddress) {
        set_bytes(self.buffer.as_mut(), 8, &a.0);
    }

    /// Sets the sender protocol address.
    pub fn set_sender_ip(&mut self, a: Ipv4Addr) {
        set_bytes(self.buffer.as_mut(), 14, &a.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hw(&mut self, a: EthernetAddress) {
        set_bytes(self.buffer.as_mut(), 18, &a.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, a: Ipv4Addr) {
        set_bytes(self.buffer.as_mut(), 24, &a.octets());
    }
}

/// High-level Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_hw: EthernetAddress,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_hw: EthernetAddress,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// A gratuitous ARP for `vip` at `mac` in request or reply form (see the module docs).
    pub const fn gratuitous(operation: ArpOperation, mac: EthernetAddress, vip: Ipv4Addr) -> Self {
        let target_hw = match operation {
            ArpOperation::Request => EthernetAddress::BROADCAST,
            ArpOperation::Reply => mac,
        };
        ArpRepr {
            operation,
            sender_hw: mac,
            sender_ip: vip,
            target_hw,
            target_ip: vip,
        }
    }

    /// Whether sender and target protocol addresses are equal.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }

    /// Parses a checked message (Ethernet/IPv4 only, operation 1 or 2).
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self> {
        if packet.buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if packet.hardware_type() != HTYPE_ETHERNET || packet.hardware_len() != 6 {
            return Err(Error::BadHardwareType);
        }
        if packet.protocol_type() != PTYPE_IPV4 || packet.protocol_len() != 4 {
            return Err(Error::BadProtocolType);
        }
        let operation = match packet.operation() {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            op => return Err(Error::BadOperation(op)),
        };
        Ok(ArpRepr {
            operation,
            sender_hw: packet.sender_hw(),
            sender_ip: packet.sender_ip(),
            target_hw: packet.target_hw(),
            target_ip: packet.target_ip(),
        })
    }

    /// Message length (28).
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the message.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) -> Result<()> {
        if packet.buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_ethernet_ipv4();
        packet.set_operation(self.operation.code());
        packet.set_sender_hw(self.sender_hw);
        packet.set_sender_ip(self.sender_ip);
        packet.set_target_hw(self.target_hw);
        packet.set_target_ip(self.target_ip);
        Ok(())
    }
}

/// Writes a full gratuitous ARP frame for `vip` at `mac` (Ethernet dst broadcast, src `mac`)
/// into `buf` and returns its length ([`GARP_FRAME_LEN`]). The NIC pads it to 60 bytes.
pub fn build_garp_frame(
    buf: &mut [u8],
    mac: EthernetAddress,
    vip: Ipv4Addr,
    operation: ArpOperation,
) -> Result<usize> {
    let frame = buf.get_mut(..GARP_FRAME_LEN).ok_or(Error::BufferTooSmall)?;
    let mut frame = EthernetFrame::new_unchecked(frame);
    EthernetRepr {
        src: mac,
        dst: EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
    }
    .emit(&mut frame)?;
    ArpRepr::gratuitous(operation, mac, vip)
        .emit(&mut ArpPacket::new_unchecked(frame.payload_mut()))?;
    Ok(GARP_FRAME_LEN)
}

/// Parses an Ethernet frame carrying ARP.
pub fn parse_arp_frame(bytes: &[u8]) -> Result<(EthernetRepr, ArpRepr)> {
    let frame = EthernetFrame::new_checked(bytes)?;
    let eth = EthernetRepr::parse(&frame)?;
    if eth.ethertype != EtherType::Arp {
        return Err(Error::BadEtherType(eth.ethertype.into()));
    }
    let arp = ArpRepr::parse(&ArpPacket::new_checked(frame.payload())?)?;
    Ok((eth, arp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9]);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 131);

    // keepalived 2.2.7 gratuitous ARP for 10.99.0.131.
    static GARP: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9, 0x0a,
        0x63, 0x00, 0x83, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x63, 0x00, 0x83,
    ];

    #[test]
    fn parse_emit() {
        let r = ArpRepr::parse(&ArpPacket::new_checked(&GARP[..]).unwrap()).unwrap();
        assert_eq!(r, ArpRepr::gratuitous(ArpOperation::Request, MAC, VIP));
        assert!(r.is_gratuitous());
        let mut out = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, GARP);
    }

    #[test]
    fn frame() {
        let mut buf = [0u8; 60];
        let n = build_garp_frame(&mut buf, MAC, VIP, ArpOperation::Request).unwrap();
        assert_eq!(n, 42);
        assert_eq!(&buf[..6], &[0xff; 6]);
        assert_eq!(&buf[6..12], &MAC.0);
        assert_eq!(&buf[12..14], &[0x08, 0x06]);
        assert_eq!(&buf[14..42], &GARP);
        // padded frame parses too
        let (eth, arp) = parse_arp_frame(&buf).unwrap();
        assert_eq!(eth.dst, EthernetAddress::BROADCAST);
        assert_eq!(arp.operation, ArpOperation::Request);

        let n = build_garp_frame(&mut buf, MAC, VIP, ArpOperation::Reply).unwrap();
        let (_, arp) = parse_arp_frame(&buf[..n]).unwrap();
        assert_eq!(arp.target_hw, MAC);
        assert_eq!(arp.operation, ArpOperation::Reply);
        assert_eq!(
            build_garp_frame(&mut buf[..41], MAC, VIP, ArpOperation::Reply),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(
            ArpPacket::new_checked(&GARP[..27]).err(),
            Some(Error::Truncated)
        );
        let mut b = GARP;
        b[1] = 6;
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_unchecked(&b[..])),
            Err(Error::BadHardwareType)
        );
        let mut b = GARP;
        b[5] = 16;
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_unchecked(&b[..])),
            Err(Error::BadProtocolType)
        );
        let mut b = GARP;
        b[7] = 3;
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_unchecked(&b[..])),
            Err(Error::BadOperation(3))
        );
        let mut f = [0u8; 42];
        build_garp_frame(&mut f, MAC, VIP, ArpOperation::Request).unwrap();
        f[13] = 0x00;
        assert_eq!(parse_arp_frame(&f), Err(Error::BadEtherType(0x0800)));
    }
}
