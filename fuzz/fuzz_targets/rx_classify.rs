//! The daemon's receive policy (`vipd_proto::rx::classify`) on whatever a raw socket could
//! return. Byte 0 picks the family and the instance's settings (version, auth, unicast
//! peers); IPv6 takes src (16), dst (16) and hop limit (1) next; the rest is the datagram
//! (IPv4: header included) or the VRRP message (IPv6). Classifying never panics, and an
//! accepted advert is consistent with the instance it was accepted for.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vipd_proto::Version;
use vipd_proto::rx::{Outcome, PeerTtl, Received, RxView, accepted_alarms, classify, drop_alarm};
use vipd_wire::ChecksumMode;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let version = if sel & 1 == 0 {
        Version::V3
    } else {
        Version::V2
    };
    let auth = (sel & 2 != 0).then_some(*b"s3cret\0\0");
    let peers4 = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 12))];
    let peers6 = [IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 12))];
    let vips4 = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))];
    let vips6 = [IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100))];
    let unicast = sel & 4 != 0;
    // Bit 1: the source limits (TTL 255 from the unicast peer; an allowlist in multicast).
    let limits = sel & 2 != 0;
    let ttl4 = [PeerTtl {
        peer: peers4[0],
        min: 255,
        max: 255,
    }];
    let ttl6 = [PeerTtl {
        peer: peers6[0],
        min: 255,
        max: 255,
    }];
    let vrid = sel >> 3; // 0..=31
    let (pkt, view) = if sel & 0x80 == 0 {
        let view = RxView {
            ah: false,
            version,
            auth,
            peers: if unicast { &peers4[..] } else { &[] },
            peer_ttl: if unicast && limits { &ttl4[..] } else { &[] },
            allowed: if !unicast && limits { &peers4[..] } else { &[] },
            own: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11)),
            interval_cs: 100,
            checksum: if sel & 0x40 == 0 {
                ChecksumMode::WithPseudoHeader
            } else {
                ChecksumMode::WithoutPseudoHeader
            },
            vips: &vips4,
        };
        (Received::V4(rest), view)
    } else {
        let Some((hdr, payload)) = rest.split_first_chunk::<33>() else {
            return;
        };
        let src: [u8; 16] = hdr[..16].try_into().unwrap_or([0; 16]);
        let dst: [u8; 16] = hdr[16..32].try_into().unwrap_or([0; 16]);
        let view = RxView {
            ah: false,
            version: Version::V3,
            auth: None,
            peers: if unicast { &peers6[..] } else { &[] },
            peer_ttl: if unicast && limits { &ttl6[..] } else { &[] },
            allowed: if !unicast && limits { &peers6[..] } else { &[] },
            own: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 11)),
            interval_cs: 100,
            checksum: ChecksumMode::WithPseudoHeader,
            vips: &vips6,
        };
        let pkt = Received::V6 {
            payload,
            src: src.into(),
            dst: dst.into(),
            hop_limit: hdr[32],
        };
        (pkt, view)
    };
    let out = classify(pkt, |v| (v == vrid).then_some((7usize, view)));
    match out {
        Outcome::Accept(a) => {
            assert_eq!(a.instance, 7);
            assert_eq!(a.advert.version, view.version);
            assert!(view.peers.is_empty() || view.peers.contains(&a.advert.src));
            assert!(view.allowed.is_empty() || view.allowed.contains(&a.advert.src));
            assert_ne!(a.advert.src, view.own);
            // What the advert says about its sender is computed without panicking, bounded.
            assert!(accepted_alarms(&a, &view).len() <= 4);
        }
        Outcome::Drop {
            instance, reason, ..
        } => {
            assert!(instance.is_none() || instance == Some(7));
            let _ = drop_alarm(reason, view.version);
        }
        Outcome::Own { instance, .. } => assert_eq!(instance, 7),
    }
});
