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
    /// VRRPv2 IPsec-AH: the message says authentication type 2 (the caller wraps it in the
    /// AH datagram, [`crate::ah::build_datagram`]).
    pub ah: bool,
    /// The VIPs (one family).
    pub vips: &'a [IpAddr],
    /// Family of the VIPs.
    pub family: Family,
    /// VRRPv3/IPv4 checksum mode.
    pub checksum: ChecksumMode,
    /// Our source address (pseudo-header input).
    pub src: IpAddr,
    /// `auth_hmac`: the settings and this advert's sequence (the same for every copy of one
    /// advert); nothing is appended unless the mode signs.
    pub hmac: Option<(&'a crate::auth::AuthHmac, u64)>,
}

/// Largest advertisement: header + 255 IPv6 addresses + auth + an `auth_hmac` trailer.
pub const MAX_ADVERT_LEN: usize =
    wire::vrrp::HEADER_LEN + 255 * 16 + wire::vrrp::AUTH_LEN + crate::auth::OVERHEAD;

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
            auth: match (v.ah, v.auth) {
                (true, _) => Auth::IpAh,
                (false, Some(p)) => Auth::SimpleText(p),
                (false, None) => Auth::None,
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
    let Some((cfg, seq)) = v.hmac.filter(|(c, _)| c.mode.signs()) else {
        return Ok(len);
    };
    // The trailer after the message; the HMAC does not cover the checksum, so it is signed
    // after the message is complete. IPv4: the checksum covers the message only (as
    // keepalived computes it); IPv6: it covers the trailer too, so it is computed again.
    let total = len + crate::auth::OVERHEAD;
    let all = buf.get_mut(..total).ok_or(wire::Error::BufferTooSmall)?;
    let (msg, trailer) = all.split_at_mut(len);
    let ctx = crate::auth::Context {
        version: v.version,
        vrid: v.vrid,
        src: v.src,
    };
    if !crate::auth::sign(cfg, &ctx, msg, seq, trailer) {
        return Err(wire::Error::ValueOutOfRange);
    }
    if let IpPair::V6 { src, dst } = pair {
        wire::fill_ipv6_checksum(all, src, dst)?;
    }
    Ok(total)
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

    use crate::testutil::hex;

    /// Signed adverts byte for byte as keepalived 2.4.3 sent them (../shared/vectors/auth-hmac/),
    /// given the same key and sequence: IPv4 (checksum over the message only) and IPv6 (checksum
    /// over message and trailer).
    #[test]
    fn signed_adverts_match_keepalived_captures() {
        use crate::auth::{AntiReplay, AuthHmac, Key, Mode};
        let cfg = AuthHmac {
            mode: Mode::Enforce,
            keys: vec![Key {
                id: 1,
                secret: (0u8..32).collect(),
            }],
            active: 1,
            anti_replay: AntiReplay::Monotonic,
        };
        let vips4 = [IpAddr::V4(Ipv4Addr::new(10, 66, 0, 100))];
        let v4 = TxView {
            ah: false,
            vrid: 51,
            version: Version::V3,
            auth: None,
            vips: &vips4,
            family: Family::Ipv4,
            checksum: ChecksumMode::WithPseudoHeader,
            src: IpAddr::V4(Ipv4Addr::new(10, 66, 0, 11)),
            hmac: Some((&cfg, 0x6b0e_cdfa_b661_0000)),
        };
        let mut buf = [0u8; MAX_ADVERT_LEN];
        let n = build_advert(
            &mut buf,
            &v4,
            150,
            10,
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        )
        .unwrap_or(0);
        let want = hex(
            "31339601000a433f0a420064 010100006b0ecdfab6610000ee6cc360 0b19245062ddc5b5ee08d5bf",
        );
        assert_eq!(&buf[..n], &want[..]);
        let vips6 = [
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100)),
            IpAddr::V6(Ipv6Addr::new(0xfd66, 0, 0, 0, 0, 0, 0, 0x100)),
        ];
        let v6 = TxView {
            ah: false,
            vips: &vips6,
            family: Family::Ipv6,
            src: IpAddr::V6(Ipv6Addr::new(
                0xfe80, 0, 0, 0, 0x80cf, 0x67ff, 0xfedf, 0xeeba,
            )),
            hmac: Some((&cfg, 0x6b0e_ce07_fd33_0000)),
            ..v4
        };
        let n = build_advert(
            &mut buf,
            &v6,
            150,
            10,
            IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        )
        .unwrap_or(0);
        let want = hex(
            "31339602000a5498 fe800000000000000000000000000100 fd660000000000000000000000000100 \
             010100006b0ece07fd3300008ce28a09 7ab07a9e4811711fac45688f",
        );
        assert_eq!(&buf[..n], &want[..]);
        // Receive-only signs nothing.
        let ro = AuthHmac {
            mode: Mode::ReceiveOnly,
            ..cfg.clone()
        };
        let plain = TxView {
            ah: false,
            hmac: Some((&ro, 1)),
            ..v4
        };
        let n = build_advert(
            &mut buf,
            &plain,
            150,
            10,
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        )
        .unwrap_or(0);
        assert_eq!(n, 12);
    }

    #[test]
    fn advert_matches_keepalived_capture() {
        // tests/data/vrrpv3-ipv4.hex: vrid 31 prio 150 100cs vip 10.99.0.131 from 10.99.0.11.
        let vips = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 131))];
        let v = TxView {
            ah: false,
            hmac: None,
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
            ah: false,
            hmac: None,
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
