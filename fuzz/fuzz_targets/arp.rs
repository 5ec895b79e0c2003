//! An Ethernet frame carrying ARP, and the same bytes as a bare ARP message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd_wire::arp::{self, ArpPacket, ArpRepr};

fuzz_target!(|data: &[u8]| {
    let _ = arp::parse_arp_frame(data);
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut out = [0u8; arp::PACKET_LEN];
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
        .expect("emit of a parsed message");
    assert_eq!(out[..], data[..arp::PACKET_LEN]);
});
