//! Decode every keepalived 2.2.7 capture in tests/data, check each field its first comment line
//! states, then re-encode from the representation and require identical bytes.

// Test helpers outside #[test] fns: a malformed capture should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vipd_wire::vrrp::{self, Family, VrrpPacket};
use vipd_wire::{
    ArpOperation, ArpPacket, ArpRepr, Auth, ChecksumMode, ChecksumPolicy, EthernetAddress, IpPair,
    Ipv6Packet, Ipv6Repr, NaFlags, VrrpRepr, VrrpVersion, arp, ndisc,
};

/// One capture: the stated fields and the bytes.
struct Vector {
    name: String,
    /// First token after the name (VRRPv2, VRRPv3, ARP, ICMPv6).
    kind: String,
    fields: BTreeMap<String, String>,
    /// `src->dst` token, if any.
    route: Option<(String, String)>,
    eth_src: EthernetAddress,
    bytes: Vec<u8>,
}

impl Vector {
    fn field(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("{}: no field {key}", self.name))
    }

    fn num(&self, key: &str) -> u64 {
        let v = self.field(key);
        let v = v.split('(').next().unwrap();
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
            // decimal, possibly with a unit suffix (1s, 100cs)
            None => v
                .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse()
                .unwrap(),
        }
    }
}

fn parse_mac(s: &str) -> EthernetAddress {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    assert_eq!(parts.len(), 6, "mac {s}");
    for (o, p) in m.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).unwrap();
    }
    EthernetAddress(m)
}

fn load(text: &str) -> Vector {
    let mut comments = text.lines().filter(|l| l.starts_with('#'));
    let first = comments.next().expect("first comment line");
    let (name, rest) = first
        .trim_start_matches('#')
        .trim()
        .split_once(": ")
        .expect("name: fields");
    let mut tokens = rest.split_whitespace();
    let kind = tokens.next().unwrap().to_string();
    let mut fields = BTreeMap::new();
    let mut route = None;
    for t in tokens {
        if let Some((k, v)) = t.split_once('=') {
            fields.insert(k.to_string(), v.trim_matches('"').to_string());
        } else if let Some((a, b)) = t.split_once("->") {
            route = Some((a.to_string(), b.to_string()));
        } else {
            fields.insert(t.to_string(), String::new());
        }
    }
    let second = comments.next().expect("second comment line");
    let eth_src = second
        .split([';', ' '])
        .find_map(|t| t.strip_prefix("eth.src="))
        .map(parse_mac)
        .expect("eth.src");
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert_eq!(hex.len() % 2, 0);
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    Vector {
        name: name.to_string(),
        kind,
        fields,
        route,
        eth_src,
        bytes,
    }
}

macro_rules! vectors {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../../tests/data/", $file)))),*]
    };
}

static VECTORS: &[(&str, &str)] = vectors![
    "garp-on-master.hex",
    "ipv6-unsolicited-na.hex",
    "vrrpv2-ipv4-auth-pass.hex",
    "vrrpv2-ipv4-noauth.hex",
    "vrrpv2-ipv4-prio0.hex",
    "vrrpv3-ipv4-adv10cs.hex",
    "vrrpv3-ipv4-prio0.hex",
    "vrrpv3-ipv4-unicast.hex",
    "vrrpv3-ipv4.hex",
    "vrrpv3-ipv6-prio0.hex",
    "vrrpv3-ipv6.hex",
];

fn vector(file: &str) -> Vector {
    let (_, text) = VECTORS.iter().find(|(f, _)| *f == file).unwrap();
    load(text)
}

#[test]
fn every_capture_is_covered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = VECTORS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, listed);
    for (file, text) in VECTORS {
        let v = load(text);
        assert_eq!(format!("{}.hex", v.name), *file);
        match v.kind.as_str() {
            "VRRPv2" | "VRRPv3" if v.fields.contains_key("vip") => {
                if v.route.as_ref().unwrap().0.contains(':') {
                    check_vrrp_v6(&v)
                } else {
                    check_vrrp_v4(&v)
                }
            }
            "ARP" => check_arp(&v),
            "ICMPv6" => check_na(&v),
            other => panic!("{file}: unknown kind {other}"),
        }
    }
}

fn stated_vips(v: &Vector) -> Vec<IpAddr> {
    v.field("vip")
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Checks the VRRP fields common to both families.
fn check_vrrp_common(v: &Vector, packet: &VrrpPacket<&[u8]>, repr: &VrrpRepr<'_>) {
    assert_eq!(packet.msg_type() as u64, v.num("type"), "{}", v.name);
    assert_eq!(repr.vrid as u64, v.num("vrid"), "{}", v.name);
    assert_eq!(repr.priority as u64, v.num("prio"), "{}", v.name);
    assert_eq!(packet.addr_count() as u64, v.num("count"), "{}", v.name);
    assert_eq!(repr.addrs.len() as u64, v.num("count"), "{}", v.name);
    assert_eq!(packet.checksum() as u64, v.num("checksum"), "{}", v.name);
    assert!(v.field("checksum").ends_with("(good)"));
    assert_eq!(
        repr.addrs.iter().collect::<Vec<_>>(),
        stated_vips(v),
        "{}",
        v.name
    );
    assert_eq!(v.num("ttl/hlim"), 255);
    match (v.kind.as_str(), repr.version) {
        ("VRRPv3", VrrpVersion::V3 { max_adver_int }) => {
            assert!(v.field("max_adver_int").ends_with("cs"));
            assert_eq!(max_adver_int as u64, v.num("max_adver_int"), "{}", v.name);
            assert_eq!(packet.version(), 3);
        }
        ("VRRPv2", VrrpVersion::V2 { adver_int, auth }) => {
            assert!(v.field("adver_int").ends_with('s'));
            assert_eq!(adver_int as u64, v.num("adver_int"), "{}", v.name);
            assert_eq!(auth.auth_type() as u64, v.num("auth_type"), "{}", v.name);
            assert_eq!(packet.auth_type() as u64, v.num("auth_type"), "{}", v.name);
            match auth {
                Auth::SimpleText(_) => {
                    assert_eq!(auth.password().unwrap(), v.field("auth").as_bytes())
                }
                Auth::None => assert!(!v.fields.contains_key("auth")),
                Auth::IpAh => panic!("AH in a capture"),
            }
            assert_eq!(packet.version(), 2);
        }
        (k, ver) => panic!("{}: {k} decoded as {ver:?}", v.name),
    }
}

fn check_vrrp_v4(v: &Vector) {
    let rx = vrrp::decode_ipv4_datagram(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
    let (src, dst) = v.route.clone().unwrap();
    assert_eq!(rx.ip.src, src.parse::<Ipv4Addr>().unwrap());
    assert_eq!(rx.ip.dst, dst.parse::<Ipv4Addr>().unwrap());
    assert_eq!(rx.ip.ttl as u64, v.num("ttl/hlim"));
    assert_eq!(rx.ip.protocol, 112);
    // keepalived 2.2.7: v2 without, v3 with the IPv4 pseudo-header (multicast and unicast).
    let expect_mode = if v.kind == "VRRPv3" {
        ChecksumMode::WithPseudoHeader
    } else {
        ChecksumMode::WithoutPseudoHeader
    };
    assert_eq!(rx.checksum_mode, expect_mode, "{}", v.name);
    let payload = &v.bytes[20..];
    let packet = VrrpPacket::new_checked(payload, Family::Ipv4).unwrap();
    check_vrrp_common(v, &packet, &rx.vrrp);
    if v.kind == "VRRPv3" {
        // The plain-sum mode must not also verify, or the report would be ambiguous.
        let pair = IpPair::V4 {
            src: rx.ip.src,
            dst: rx.ip.dst,
        };
        assert!(!packet.verify_checksum(&pair, ChecksumMode::WithoutPseudoHeader));
    }

    let mut out = vec![0u8; vrrp::ipv4_datagram_len(&rx.vrrp)];
    let n = vrrp::encode_ipv4_datagram(&mut out, &rx.ip, &rx.vrrp, rx.checksum_mode).unwrap();
    assert_eq!(out[..n], v.bytes[..], "{}: re-encode", v.name);
}

fn check_vrrp_v6(v: &Vector) {
    let ip6 = Ipv6Repr::parse(&Ipv6Packet::new_checked(&v.bytes[..]).unwrap()).unwrap();
    let (src, dst) = v.route.clone().unwrap();
    assert_eq!(ip6.src, src.parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip6.dst, dst.parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip6.hop_limit as u64, v.num("ttl/hlim"));
    assert_eq!(ip6.next_header, 112);
    // A raw IPv6 socket strips the header: decode the payload with src/dst/hlim from "cmsg".
    let payload = &v.bytes[40..];
    let rx = vrrp::decode_ipv6_payload(payload, ip6.src, ip6.dst, ip6.hop_limit)
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    assert_eq!(rx.hop_limit, 255);
    let packet = VrrpPacket::new_checked(payload, Family::Ipv6).unwrap();
    check_vrrp_common(v, &packet, &rx.vrrp);

    let mut out = vec![0u8; 40 + rx.vrrp.buffer_len()];
    let (hdr, body) = out.split_at_mut(40);
    ip6.emit(&mut Ipv6Packet::new_unchecked(hdr)).unwrap();
    let pair = IpPair::V6 {
        src: ip6.src,
        dst: ip6.dst,
    };
    rx.vrrp
        .emit(
            &mut VrrpPacket::new_unchecked(body, Family::Ipv6),
            &pair,
            ChecksumMode::WithoutPseudoHeader, // ignored: IPv6 always uses the pseudo-header
        )
        .unwrap();
    assert_eq!(out, v.bytes, "{}: re-encode", v.name);
}

fn split_hw_ip(s: &str) -> (EthernetAddress, Ipv4Addr) {
    let (mac, ip) = s.split_once('/').unwrap();
    (parse_mac(mac), ip.parse().unwrap())
}

fn check_arp(v: &Vector) {
    let repr = ArpRepr::parse(&ArpPacket::new_checked(&v.bytes[..]).unwrap()).unwrap();
    let op = match v.num("op") {
        1 => ArpOperation::Request,
        2 => ArpOperation::Reply,
        o => panic!("op {o}"),
    };
    assert_eq!(repr.operation, op);
    assert_eq!(repr.is_gratuitous(), v.num("gratuitous") == 1);
    let (shw, sip) = split_hw_ip(v.field("sender"));
    let (thw, tip) = split_hw_ip(v.field("target"));
    assert_eq!(
        (
            repr.sender_hw,
            repr.sender_ip,
            repr.target_hw,
            repr.target_ip
        ),
        (shw, sip, thw, tip)
    );
    assert_eq!(shw, v.eth_src);

    let mut out = [0u8; 28];
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(out[..], v.bytes[..]);

    // The frame builder produces the same message with the stated Ethernet header.
    let mut frame = [0u8; arp::GARP_FRAME_LEN];
    let n = arp::build_garp_frame(&mut frame, shw, sip, op).unwrap();
    assert_eq!(frame[14..n], v.bytes[..], "{}: GARP builder", v.name);
    let (eth, parsed) = arp::parse_arp_frame(&frame).unwrap();
    assert_eq!(eth.dst, parse_mac(v.field("eth.dst")));
    assert_eq!(eth.src, v.eth_src);
    assert_eq!(parsed, repr);
}

fn check_na(v: &Vector) {
    assert_eq!(v.num("type"), 136);
    assert!(v.fields.contains_key("NA"));
    let (ip, na) = ndisc::parse_na_packet(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
    let (src, dst) = v.route.clone().unwrap();
    assert_eq!(ip.src, src.parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip.dst, dst.parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip.hop_limit as u64, v.num("hlim"));
    assert_eq!(na.flags.to_bits() as u64, v.num("flags"));
    assert_eq!(na.flags, NaFlags::UNSOLICITED);
    assert_eq!(na.target, v.field("target").parse::<Ipv6Addr>().unwrap());
    assert_eq!(na.target_lladdr, Some(parse_mac(v.field("tlla"))));
    assert!(v.field("checksum").ends_with("(good)"));
    let icmp = ndisc::NaPacket::new_checked(&v.bytes[40..]).unwrap();
    assert_eq!(icmp.checksum() as u64, v.num("checksum"));
    assert_eq!(icmp.msg_type(), 136);

    let mut out = [0u8; 72];
    let n =
        ndisc::build_unsolicited_na_packet(&mut out, v.eth_src, ip.src, na.target, false).unwrap();
    assert_eq!(out[..n], v.bytes[..], "{}: re-encode", v.name);

    let mut frame = [0u8; ndisc::NA_FRAME_LEN];
    ndisc::build_unsolicited_na_frame(&mut frame, v.eth_src, ip.src, na.target, false).unwrap();
    assert_eq!(frame[14..], v.bytes[..]);
    let f = ndisc::parse_na_frame(&frame).unwrap();
    assert_eq!(
        f.eth.dst,
        EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        "ff02::1 maps to 33:33:00:00:00:01"
    );
    assert_eq!(f.eth.src, v.eth_src);
    assert_eq!((f.ip, f.na), (ip, na));
}

// One named test per capture, so a failure points at the file.
macro_rules! capture_test {
    ($name:ident, $file:literal, $check:ident) => {
        #[test]
        fn $name() {
            $check(&vector($file));
        }
    };
}

capture_test!(garp_on_master, "garp-on-master.hex", check_arp);
capture_test!(ipv6_unsolicited_na, "ipv6-unsolicited-na.hex", check_na);
capture_test!(
    vrrpv2_ipv4_auth_pass,
    "vrrpv2-ipv4-auth-pass.hex",
    check_vrrp_v4
);
capture_test!(vrrpv2_ipv4_noauth, "vrrpv2-ipv4-noauth.hex", check_vrrp_v4);
capture_test!(vrrpv2_ipv4_prio0, "vrrpv2-ipv4-prio0.hex", check_vrrp_v4);
capture_test!(
    vrrpv3_ipv4_adv10cs,
    "vrrpv3-ipv4-adv10cs.hex",
    check_vrrp_v4
);
capture_test!(vrrpv3_ipv4_prio0, "vrrpv3-ipv4-prio0.hex", check_vrrp_v4);
capture_test!(
    vrrpv3_ipv4_unicast,
    "vrrpv3-ipv4-unicast.hex",
    check_vrrp_v4
);
capture_test!(vrrpv3_ipv4, "vrrpv3-ipv4.hex", check_vrrp_v4);
capture_test!(vrrpv3_ipv6_prio0, "vrrpv3-ipv6-prio0.hex", check_vrrp_v6);
capture_test!(vrrpv3_ipv6, "vrrpv3-ipv6.hex", check_vrrp_v6);

#[test]
fn v3_ipv4_strict_policies() {
    let v = vector("vrrpv3-ipv4.hex");
    let payload = &v.bytes[20..];
    let pair = IpPair::V4 {
        src: "10.99.0.11".parse().unwrap(),
        dst: "224.0.0.18".parse().unwrap(),
    };
    let p = VrrpPacket::new_checked(payload, Family::Ipv4).unwrap();
    assert!(
        VrrpRepr::parse(
            &p,
            &pair,
            ChecksumPolicy::Only(ChecksumMode::WithPseudoHeader)
        )
        .is_ok()
    );
    assert_eq!(
        VrrpRepr::parse(
            &p,
            &pair,
            ChecksumPolicy::Only(ChecksumMode::WithoutPseudoHeader)
        ),
        Err(vipd_wire::Error::BadChecksum)
    );
}
