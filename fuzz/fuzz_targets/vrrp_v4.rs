//! VRRP (v2/v3) over IPv4: bytes 0..8 are the IPv4 source and destination, the rest is the
//! VRRP message. A decoded advertisement must re-encode and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd_wire::vrrp::{ChecksumPolicy, Family, IpPair, VrrpPacket, VrrpRepr};

fuzz_target!(|data: &[u8]| {
    let Some((addrs, msg)) = data.split_first_chunk::<8>() else {
        return;
    };
    let [a, b, c, d, e, f, g, h] = *addrs;
    let pair = IpPair::V4 {
        src: [a, b, c, d].into(),
        dst: [e, f, g, h].into(),
    };
    let Ok(packet) = VrrpPacket::new_checked(msg, Family::Ipv4) else {
        return;
    };
    let Ok((repr, mode)) = VrrpRepr::parse(&packet, &pair, ChecksumPolicy::Any) else {
        return;
    };
    assert_eq!(repr.buffer_len(), msg.len());
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4),
        &pair,
        mode,
    )
    .expect("emit of a parsed advertisement");
    let again = VrrpPacket::new_checked(&out[..], Family::Ipv4).expect("own output checks");
    let (repr2, _) =
        VrrpRepr::parse(&again, &pair, ChecksumPolicy::Only(mode)).expect("own output parses");
    assert_eq!(repr, repr2);
});
