//! A datagram as a raw IPv4 socket returns it (IPv4 header + VRRP).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd_wire::vrrp;

fuzz_target!(|data: &[u8]| {
    let Ok(rx) = vrrp::decode_ipv4_datagram(data) else {
        return;
    };
    let mut out = vec![0u8; vrrp::ipv4_datagram_len(&rx.vrrp)];
    vrrp::encode_ipv4_datagram(&mut out, &rx.ip, &rx.vrrp, rx.checksum_mode)
        .expect("encode of a decoded datagram");
    let again = vrrp::decode_ipv4_datagram(&out).expect("own output decodes");
    assert_eq!(again.ip, rx.ip);
    assert_eq!(again.vrrp, rx.vrrp);
});
