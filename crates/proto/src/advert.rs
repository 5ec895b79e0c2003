//! Building what we send, as pure code: advertisements and gratuitous ARP / unsolicited NA
//! frames.

use std::net::IpAddr;

use crate::Version;
use vipd_wire::{
    self as wire, Addrs, ArpOperation, Auth, ChecksumMode, EthernetAddress, Family, IpPair,
    VrrpPacket, VrrpRepr, VrrpVersion,
};

/// What the send path needs to know of an instance.
#[derive(Debug, Clone, Copy)]
pub struct TxView<'a> {
    /// VRID.
    pub vrid: u8,
    /// Version.
    pub version: Version,
    /// VRRPv2 password.
    pub auth: Option<[u8; 8]>,
    /// The VIPs (one family).
    pub vips: &'a [IpAddr],
    /// Family of the VIPs.
    pub family: Family,
    /// VRRPv3/IPv4 checksum mode.
    pub checksum: ChecksumMode,
    /// Our source address (pseudo-header input).
    pub src: IpAddr,
}

/// Largest advertisement: header + 255 IPv6 addresses + auth.
pub const MAX_ADVERT_LEN: usize = wire::vrrp::HEADER_LEN + 255 * 16 + wire::vrrp::AUTH_LEN;

/// Writes the VRRP message (no IP header: the kernel adds it) for `dst` into `buf`.
pub fn build_advert(
    buf: &mut [u8],
    v: &TxView<'_>,
    priority: u8,
    interval_cs: u16,
    dst: IpAddr,
) -> Result<usize, wire::Error> {
    let version = match v.version {
        Version::V2 => VrrpVersion::V2 {
            adver_int: u8::try_from((interval_cs / 100).max(1)).unwrap_or(u8::MAX),
            auth: match v.auth {
                Some(p) => Auth::SimpleText(p),
                None => Auth::None,
            },
        },
        Version::V3 => VrrpVersion::V3 {
            max_adver_int: interval_cs,
        },
    };
    let repr = VrrpRepr {
        vrid: v.vrid,
        priority,
        version,
        addrs: Addrs::ip(v.family, v.vips)?,
    };
    let pair = match (v.src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => IpPair::V4 { src, dst },
        (IpAddr::V6(src), IpAddr::V6(dst)) => IpPair::V6 { src, dst },
        _ => return Err(wire::Error::FamilyMismatch),
    };
    let len = repr.buffer_len();
    let out = buf.get_mut(..len).ok_or(wire::Error::BufferTooSmall)?;
    repr.emit(
        &mut VrrpPacket::new_unchecked(out, v.family),
        &pair,
        v.checksum,
    )?;
    Ok(len)
}

/// Largest gratuitous frame.
pub const MAX_GRATUITOUS_LEN: usize = if wire::NA_FRAME_LEN > wire::GARP_FRAME_LEN {
    wire::NA_FRAME_LEN
} else {
    wire::GARP_FRAME_LEN
};

/// Writes a gratuitous ARP (IPv4 VIP, request form as keepalived sends it) or an unsolicited
/// neighbour advertisement (IPv6 VIP, from the VIP itself as keepalived does) announcing
/// `vip` at `mac`; `router`: the NA's Router flag (the host forwards IPv6 on the interface,
/// as keepalived sets it; hosts that route through the VIP keep it as their router).
pub fn build_gratuitous(
    buf: &mut [u8],
    mac: [u8; 6],
    vip: IpAddr,
    router: bool,
) -> Result<usize, wire::Error> {
    let mac = EthernetAddress(mac);
    match vip {
        IpAddr::V4(a) => wire::build_garp_frame(buf, mac, a, ArpOperation::Request),
        IpAddr::V6(a) => wire::build_unsolicited_na_frame(buf, mac, a, a, router),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn advert_matches_keepalived_capture() {
        // tests/data/vrrpv3-ipv4.hex: vrid 31 prio 150 100cs vip 10.99.0.131 from 10.99.0.11.
        let vips = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 131))];
        let v = TxView {
            vrid: 31,
            version: Version::V3,
            auth: None,
            vips: &vips,
            family: Family::Ipv4,
            checksum: ChecksumMode::WithPseudoHeader,
            src: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11)),
        };
        let mut buf = [0u8; MAX_ADVERT_LEN];
        let n = build_advert(
            &mut buf,
            &v,
            150,
            100,
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        )
        .unwrap();
        assert_eq!(
            &buf[..n],
            &[
                0x31, 0x1f, 0x96, 0x01, 0x00, 0x64, 0x42, 0x98, 0x0a, 0x63, 0x00, 0x83
            ]
        );
    }

    #[test]
    fn v2_with_password() {
        // tests/data/vrrpv2-ipv4-auth-pass.hex
        let vips = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 121))];
        let v = TxView {
            vrid: 21,
            version: Version::V2,
            auth: Some(*b"lab-pass"),
            vips: &vips,
            family: Family::Ipv4,
            checksum: ChecksumMode::WithPseudoHeader,
            src: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11)),
        };
        let mut buf = [0u8; MAX_ADVERT_LEN];
        let n = build_advert(
            &mut buf,
            &v,
            150,
            100,
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        )
        .unwrap();
        let want = b"\x21\x15\x96\x01\x01\x01\x8a\xa8\x0a\x63\x00\x79lab-pass";
        assert_eq!(&buf[..n], want);
    }

    #[test]
    fn gratuitous_frames() {
        let mac = [0x12, 0x33, 0xde, 0xd8, 0xf4, 0xa9];
        let mut buf = [0u8; MAX_GRATUITOUS_LEN];
        let n = build_gratuitous(
            &mut buf,
            mac,
            IpAddr::V4(Ipv4Addr::new(10, 99, 0, 131)),
            false,
        )
        .unwrap();
        assert_eq!(&buf[..6], &[0xff; 6]);
        assert_eq!(&buf[12..14], &[0x08, 0x06]);
        assert_eq!(n, wire::GARP_FRAME_LEN);
        let vip: Ipv6Addr = "fd99::136".parse().unwrap();
        let n = build_gratuitous(&mut buf, mac, IpAddr::V6(vip), false).unwrap();
        let na = wire::parse_na_frame(&buf[..n]).unwrap();
        assert_eq!(na.na.target, vip);
        assert_eq!(na.na.target_lladdr, Some(EthernetAddress(mac)));
        assert_eq!(na.ip.src, vip);
    }
}
