//! Property tests for the wire codecs: emit -> parse round-trips, arbitrary bytes never panic,
//! single-bit flips never panic and are caught by checksums.

// Helpers outside #[test] fns unwrap values the strategies made valid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vipd_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use vipd_wire::ethernet::{EthernetFrame, EthernetRepr};
use vipd_wire::ipv4::{Ipv4Packet, Ipv4Repr};
use vipd_wire::ipv6::{Ipv6Packet, Ipv6Repr};
use vipd_wire::ndisc::{self, NaFlags, NaPacket, NaRepr};
use vipd_wire::vrrp::{
    self, Addrs, Auth, ChecksumMode, ChecksumPolicy, Family, IpPair, VrrpPacket, VrrpRepr,
    VrrpVersion,
};
use vipd_wire::{EthernetAddress, arp};

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn mode() -> impl Strategy<Value = ChecksumMode> {
    prop_oneof![
        Just(ChecksumMode::WithPseudoHeader),
        Just(ChecksumMode::WithoutPseudoHeader)
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::None),
        any::<[u8; 8]>().prop_map(Auth::SimpleText),
        Just(Auth::IpAh),
    ]
}

fn v3_version() -> impl Strategy<Value = VrrpVersion> {
    (0u16..=vrrp::MAX_ADVER_INT_V3).prop_map(|max_adver_int| VrrpVersion::V3 { max_adver_int })
}

fn v2_version() -> impl Strategy<Value = VrrpVersion> {
    (any::<u8>(), auth()).prop_map(|(adver_int, auth)| VrrpVersion::V2 { adver_int, auth })
}

fn emit_vrrp(repr: &VrrpRepr<'_>, pair: &IpPair, mode: ChecksumMode) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut VrrpPacket::new_unchecked(&mut buf[..], repr.family()),
        pair,
        mode,
    )
    .unwrap();
    buf
}

fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    (
        v4(),
        v4(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
        0usize..200,
    )
        .prop_map(
            |(src, dst, protocol, ttl, tos, ident, dont_frag, payload_len)| Ipv4Repr {
                src,
                dst,
                protocol,
                ttl,
                tos,
                ident,
                dont_frag,
                payload_len,
            },
        )
}

fn ipv6_repr() -> impl Strategy<Value = Ipv6Repr> {
    (
        v6(),
        v6(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0u32..(1 << 20),
        0usize..200,
    )
        .prop_map(
            |(src, dst, next_header, hop_limit, traffic_class, flow_label, payload_len)| Ipv6Repr {
                src,
                dst,
                next_header,
                hop_limit,
                traffic_class,
                flow_label,
                payload_len,
            },
        )
}

fn arp_repr() -> impl Strategy<Value = ArpRepr> {
    (any::<bool>(), mac(), v4(), mac(), v4()).prop_map(|(req, sh, si, th, ti)| ArpRepr {
        operation: if req {
            ArpOperation::Request
        } else {
            ArpOperation::Reply
        },
        sender_hw: sh,
        sender_ip: si,
        target_hw: th,
        target_ip: ti,
    })
}

fn na_repr() -> impl Strategy<Value = NaRepr> {
    (
        any::<(bool, bool, bool)>(),
        v6(),
        proptest::option::of(mac()),
    )
        .prop_map(
            |((router, solicited, override_), target, target_lladdr)| NaRepr {
                flags: NaFlags {
                    router,
                    solicited,
                    override_,
                },
                target,
                target_lladdr,
            },
        )
}

/// Runs every decoder (and every accessor of unchecked views) over `bytes`; must not panic.
fn decode_everything(bytes: &[u8], a4: Ipv4Addr, b4: Ipv4Addr, a6: Ipv6Addr, b6: Ipv6Addr) {
    let p4 = IpPair::V4 { src: a4, dst: b4 };
    let p6 = IpPair::V6 { src: a6, dst: b6 };
    for (family, pair) in [(Family::Ipv4, p4), (Family::Ipv6, p6)] {
        if let Ok(p) = VrrpPacket::new_checked(bytes, family) {
            for policy in [
                ChecksumPolicy::Any,
                ChecksumPolicy::Only(ChecksumMode::WithPseudoHeader),
                ChecksumPolicy::Only(ChecksumMode::WithoutPseudoHeader),
            ] {
                if let Ok((r, _)) = VrrpRepr::parse(&p, &pair, policy) {
                    let _ = r.addrs.iter().count();
                    let _ = format!("{r:?}");
                }
                let _ = VrrpRepr::parse(&p, &p4, policy);
                let _ = VrrpRepr::parse(&p, &p6, policy);
            }
        }
        let u = VrrpPacket::new_unchecked(bytes, family);
        let _ = (
            u.version(),
            u.msg_type(),
            u.vrid(),
            u.priority(),
            u.addr_count(),
            u.auth_type(),
            u.adver_int(),
            u.reserved(),
            u.max_adver_int(),
            u.checksum(),
            u.auth_data(),
            u.addr_bytes(),
            u.verify_checksum_any(&pair, ChecksumPolicy::Any),
        );
    }
    let _ = vrrp::decode_ipv4_datagram(bytes);
    let _ = vrrp::decode_ipv6_payload(bytes, a6, b6, 255);

    if let Ok(p) = Ipv4Packet::new_checked(bytes) {
        let _ = Ipv4Repr::parse(&p);
        let _ = p.payload();
    }
    let u = Ipv4Packet::new_unchecked(bytes);
    let _ = (u.payload(), u.verify_checksum(), u.src_addr(), u.dst_addr());
    let _ = Ipv4Repr::parse(&u);

    if let Ok(p) = Ipv6Packet::new_checked(bytes) {
        let _ = Ipv6Repr::parse(&p);
    }
    let u = Ipv6Packet::new_unchecked(bytes);
    let _ = (u.payload(), u.flow_label(), u.traffic_class(), u.dst_addr());
    let _ = Ipv6Repr::parse(&u);

    if let Ok(p) = ArpPacket::new_checked(bytes) {
        let _ = ArpRepr::parse(&p);
    }
    let _ = ArpRepr::parse(&ArpPacket::new_unchecked(bytes));
    let _ = arp::parse_arp_frame(bytes);

    if let Ok(p) = NaPacket::new_checked(bytes) {
        let _ = NaRepr::parse(&p, a6, b6);
        let _ = p.target_lladdr();
    }
    let u = NaPacket::new_unchecked(bytes);
    let _ = (u.target(), u.flags_word(), u.target_lladdr(), u.options());
    let _ = NaRepr::parse(&u, a6, b6);
    let _ = ndisc::parse_na_packet(bytes);
    let _ = ndisc::parse_na_frame(bytes);

    if let Ok(f) = EthernetFrame::new_checked(bytes) {
        let _ = EthernetRepr::parse(&f);
    }
    let _ = EthernetRepr::parse(&EthernetFrame::new_unchecked(bytes));
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let bit = bit % (out.len() * 8);
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

proptest! {
    #[test]
    fn vrrp_v3_ipv4_roundtrip(
        vrid in any::<u8>(), priority in any::<u8>(), version in v3_version(),
        addrs in proptest::collection::vec(v4(), 0..40),
        src in v4(), dst in v4(), mode in mode(),
    ) {
        let repr = VrrpRepr { vrid, priority, version, addrs: Addrs::v4(&addrs) };
        let pair = IpPair::V4 { src, dst };
        let buf = emit_vrrp(&repr, &pair, mode);
        prop_assert_eq!(buf.len(), 8 + 4 * addrs.len());
        let p = VrrpPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        let (parsed, m) = VrrpRepr::parse(&p, &pair, ChecksumPolicy::Only(mode)).unwrap();
        prop_assert_eq!(parsed, repr);
        prop_assert_eq!(m, mode);
        let (parsed, m) = VrrpRepr::parse(&p, &pair, ChecksumPolicy::Any).unwrap();
        prop_assert_eq!(parsed, repr);
        prop_assert!(p.verify_checksum(&pair, m));
    }

    #[test]
    fn vrrp_v3_ipv6_roundtrip(
        vrid in any::<u8>(), priority in any::<u8>(), version in v3_version(),
        addrs in proptest::collection::vec(v6(), 0..20),
        src in v6(), dst in v6(), mode in mode(),
    ) {
        let repr = VrrpRepr { vrid, priority, version, addrs: Addrs::v6(&addrs) };
        let pair = IpPair::V6 { src, dst };
        // `mode` is ignored for IPv6: always with the pseudo-header.
        let buf = emit_vrrp(&repr, &pair, mode);
        let rx = vrrp::decode_ipv6_payload(&buf, src, dst, 255).unwrap();
        prop_assert_eq!(rx.vrrp, repr);
        let p = VrrpPacket::new_checked(&buf[..], Family::Ipv6).unwrap();
        prop_assert!(p.verify_checksum(&pair, ChecksumMode::WithPseudoHeader));
    }

    #[test]
    fn vrrp_v2_roundtrip(
        vrid in any::<u8>(), priority in any::<u8>(), version in v2_version(),
        addrs in proptest::collection::vec(v4(), 0..40),
        src in v4(), dst in v4(), mode in mode(),
    ) {
        let ip: Vec<IpAddr> = addrs.iter().copied().map(IpAddr::V4).collect();
        let repr = VrrpRepr { vrid, priority, version, addrs: Addrs::ip(Family::Ipv4, &ip).unwrap() };
        let pair = IpPair::V4 { src, dst };
        let buf = emit_vrrp(&repr, &pair, mode);
        prop_assert_eq!(buf.len(), 16 + 4 * addrs.len());
        let p = VrrpPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        let (parsed, m) = VrrpRepr::parse(&p, &pair, ChecksumPolicy::Any).unwrap();
        prop_assert_eq!(parsed, repr);
        prop_assert_eq!(parsed.addrs, Addrs::v4(&addrs));
        prop_assert_eq!(m, ChecksumMode::WithoutPseudoHeader);
    }

    #[test]
    fn ipv4_datagram_roundtrip(
        ip in ipv4_repr(), vrid in any::<u8>(), priority in any::<u8>(),
        version in prop_oneof![v2_version(), v3_version()],
        addrs in proptest::collection::vec(v4(), 0..10), mode in mode(),
    ) {
        let repr = VrrpRepr { vrid, priority, version, addrs: Addrs::v4(&addrs) };
        let mut buf = vec![0u8; vrrp::ipv4_datagram_len(&repr)];
        let n = vrrp::encode_ipv4_datagram(&mut buf, &ip, &repr, mode).unwrap();
        prop_assert_eq!(n, buf.len());
        let rx = vrrp::decode_ipv4_datagram(&buf).unwrap();
        prop_assert_eq!(rx.vrrp, repr);
        prop_assert_eq!(rx.ip, Ipv4Repr { protocol: 112, payload_len: repr.buffer_len(), ..ip });
    }

    #[test]
    fn ipv4_header_roundtrip(ip in ipv4_repr()) {
        let mut buf = vec![0u8; 20 + ip.payload_len];
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), ip);
        prop_assert_eq!(p.payload().len(), ip.payload_len);
    }

    #[test]
    fn ipv6_header_roundtrip(ip in ipv6_repr()) {
        let mut buf = vec![0u8; 40 + ip.payload_len];
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv6Repr::parse(&p).unwrap(), ip);
    }

    #[test]
    fn arp_roundtrip(r in arp_repr(), pad in 0usize..20) {
        let mut buf = vec![0u8; 28 + pad];
        r.emit(&mut ArpPacket::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn garp_frame_roundtrip(m in mac(), vip in v4(), req in any::<bool>()) {
        let op = if req { ArpOperation::Request } else { ArpOperation::Reply };
        let mut buf = [0u8; 60];
        let n = arp::build_garp_frame(&mut buf, m, vip, op).unwrap();
        let (eth, a) = arp::parse_arp_frame(&buf[..n]).unwrap();
        prop_assert_eq!(eth.dst, EthernetAddress::BROADCAST);
        prop_assert_eq!(eth.src, m);
        prop_assert_eq!(a, ArpRepr::gratuitous(op, m, vip));
    }

    #[test]
    fn na_roundtrip(r in na_repr(), src in v6(), dst in v6()) {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut NaPacket::new_unchecked(&mut buf[..]), src, dst).unwrap();
        let p = NaPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(NaRepr::parse(&p, src, dst).unwrap(), r);
    }

    #[test]
    fn na_frame_roundtrip(m in mac(), src in v6(), vip in v6(), router in any::<bool>()) {
        let mut buf = [0u8; ndisc::NA_FRAME_LEN];
        ndisc::build_unsolicited_na_frame(&mut buf, m, src, vip, router).unwrap();
        let f = ndisc::parse_na_frame(&buf).unwrap();
        let mut want = NaRepr::unsolicited(m, vip);
        want.flags.router = router;
        prop_assert_eq!(f.na, want);
        prop_assert_eq!(f.ip.src, src);
        prop_assert_eq!(f.ip.hop_limit, 255);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        a4 in v4(), b4 in v4(), a6 in v6(), b6 in v6(),
    ) {
        decode_everything(&bytes, a4, b4, a6, b6);
    }

    /// Arbitrary bytes behind a plausible header reach the deeper checks.
    #[test]
    fn plausible_headers_never_panic(
        first in prop_oneof![Just(0x21u8), Just(0x31u8), Just(0x45u8), Just(0x60u8), Just(0x88u8)],
        count in any::<u8>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        a6 in v6(), b6 in v6(),
    ) {
        let mut bytes = bytes;
        if let Some(b) = bytes.get_mut(0) { *b = first; }
        if let Some(b) = bytes.get_mut(3) { *b = count; }
        decode_everything(&bytes, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, a6, b6);
    }

    #[test]
    fn bit_flips_in_ipv4_datagrams_are_caught(
        ip in ipv4_repr(), vrid in any::<u8>(), priority in any::<u8>(),
        version in prop_oneof![v2_version(), v3_version()],
        addrs in proptest::collection::vec(v4(), 0..6), mode in mode(), bit in any::<usize>(),
    ) {
        let repr = VrrpRepr { vrid, priority, version, addrs: Addrs::v4(&addrs) };
        let mut buf = vec![0u8; vrrp::ipv4_datagram_len(&repr)];
        vrrp::encode_ipv4_datagram(&mut buf, &ip, &repr, mode).unwrap();
        let good = vrrp::decode_ipv4_datagram(&buf).unwrap();
        let bad = flip(&buf, bit);
        decode_everything(&bad, ip.src, ip.dst, Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED);
        // Either rejected, or (with ChecksumPolicy::Any) the other mode happens to verify and
        // the decode differs in fields or in the reported mode.
        prop_assert_ne!(vrrp::decode_ipv4_datagram(&bad), Ok(good));
    }

    #[test]
    fn bit_flips_in_vrrp_v6_are_caught(
        vrid in any::<u8>(), priority in any::<u8>(), version in v3_version(),
        addrs in proptest::collection::vec(v6(), 0..4), src in v6(), dst in v6(),
        bit in any::<usize>(),
    ) {
        let repr = VrrpRepr { vrid, priority, version, addrs: Addrs::v6(&addrs) };
        let buf = emit_vrrp(&repr, &IpPair::V6 { src, dst }, ChecksumMode::WithPseudoHeader);
        let bad = flip(&buf, bit);
        decode_everything(&bad, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, src, dst);
        prop_assert!(vrrp::decode_ipv6_payload(&bad, src, dst, 255).is_err());
    }

    #[test]
    fn bit_flips_in_na_frames_are_caught(m in mac(), src in v6(), vip in v6(), bit in any::<usize>()) {
        let mut buf = [0u8; ndisc::NA_FRAME_LEN];
        ndisc::build_unsolicited_na_frame(&mut buf, m, src, vip, false).unwrap();
        let good = ndisc::parse_na_frame(&buf).unwrap();
        // Bits the ICMPv6 checksum does not cover (Ethernet header, traffic class, flow label,
        // hop limit) change the decoded headers; every other flip is rejected.
        let bad = flip(&buf, bit);
        decode_everything(&bad, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, src, vip);
        let parsed = ndisc::parse_na_frame(&bad);
        prop_assert_ne!(parsed, Ok(good));
        let byte = (bit % (buf.len() * 8)) / 8;
        let uncovered = byte < 14 + 4 || byte == 14 + 7;
        if !uncovered {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn bit_flips_in_arp_never_panic(r in arp_repr(), bit in any::<usize>()) {
        let mut buf = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut buf[..])).unwrap();
        let bad = flip(&buf, bit);
        decode_everything(&bad, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED,
            Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED);
        prop_assert_ne!(ArpRepr::parse(&ArpPacket::new_unchecked(&bad[..])), Ok(r));
    }
}

#[test]
fn max_255_addresses() {
    let addrs = [Ipv6Addr::LOCALHOST; 255];
    let repr = VrrpRepr {
        vrid: 1,
        priority: 100,
        version: VrrpVersion::V3 { max_adver_int: 100 },
        addrs: Addrs::v6(&addrs),
    };
    let pair = IpPair::V6 {
        src: Ipv6Addr::LOCALHOST,
        dst: vrrp::MCAST_V6,
    };
    let buf = emit_vrrp(&repr, &pair, ChecksumMode::WithPseudoHeader);
    assert_eq!(buf.len(), 8 + 255 * 16);
    let rx = vrrp::decode_ipv6_payload(&buf, Ipv6Addr::LOCALHOST, vrrp::MCAST_V6, 255).unwrap();
    assert_eq!(rx.vrrp.addrs.len(), 255);
}
