//! VRRPv3 over IPv6 as a raw IPv6 socket returns it: bytes 0..32 are the source and
//! destination (from ancillary data), the rest is the VRRP message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::Ipv6Addr;
use vipd_wire::vrrp::{self, ChecksumMode, Family, IpPair, VrrpPacket};

fuzz_target!(|data: &[u8]| {
    let Some((addrs, msg)) = data.split_first_chunk::<32>() else {
        return;
    };
    let (s, d) = addrs.split_at(16);
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(s).unwrap_or([0; 16]));
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(d).unwrap_or([0; 16]));
    let Ok(rx) = vrrp::decode_ipv6_payload(msg, src, dst, 255) else {
        return;
    };
    let mut out = vec![0u8; rx.vrrp.buffer_len()];
    rx.vrrp
        .emit(
            &mut VrrpPacket::new_unchecked(&mut out[..], Family::Ipv6),
            &IpPair::V6 { src, dst },
            ChecksumMode::WithPseudoHeader,
        )
        .expect("emit of a parsed advertisement");
    let again = vrrp::decode_ipv6_payload(&out, src, dst, 255).expect("own output parses");
    assert_eq!(again.vrrp, rx.vrrp);
});
