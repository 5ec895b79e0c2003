//! An Ethernet frame, and the same bytes as an IPv6 packet, carrying a Neighbor Advertisement.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd_wire::ndisc::{self, NaPacket, NaRepr};

fuzz_target!(|data: &[u8]| {
    let _ = ndisc::parse_na_frame(data);
    let Ok((ip, na)) = ndisc::parse_na_packet(data) else {
        return;
    };
    let mut out = vec![0u8; na.buffer_len()];
    na.emit(&mut NaPacket::new_unchecked(&mut out[..]), ip.src, ip.dst)
        .expect("emit of a parsed advertisement");
    let again = NaRepr::parse(
        &NaPacket::new_checked(&out[..]).expect("own output checks"),
        ip.src,
        ip.dst,
    )
    .expect("own output parses");
    assert_eq!(again, na);
});
