//! RFC 1071 internet checksum.
//!
//! The one's-complement sum of 16-bit big-endian words (an odd trailing byte is padded with a
//! zero byte). A message carries the complement of the sum with its checksum field zeroed; a
//! receiver sums the whole message (checksum included) and expects `0xffff`.
//!
//! Pseudo-headers summed in front of upper-layer messages:
//!
//! ```text
//! IPv4 (RFC 768 style, used by VRRPv3 over IPv4):
//! +--------+--------+--------+--------+
//! |          Source Address           |
//! +--------+--------+--------+--------+
//! |        Destination Address        |
//! +--------+--------+--------+--------+
//! |  zero  |protocol|  upper length   |
//! +--------+--------+--------+--------+
//!
//! IPv6 (RFC 8200 section 8.1, used by VRRPv3 over IPv6 and ICMPv6):
//! |  Source Address (16)  |  Destination Address (16)  |
//! |  Upper-Layer Packet Length (32)  |  zero (24) | Next Header (8) |
//! ```

use core::net::{Ipv4Addr, Ipv6Addr};

/// Folds a wide accumulator into 16 bits with end-around carry.
const fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// One's-complement sum of `data` (not complemented).
pub fn data(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        if let Some(pair) = w.first_chunk::<2>() {
            acc += u64::from(u16::from_be_bytes(*pair));
        }
        // Fold now and then so an arbitrarily long slice cannot overflow.
        if acc > (1 << 48) {
            acc = u64::from(fold(acc));
        }
    }
    if let Some(&last) = words.remainder().first() {
        acc += u64::from(u16::from_be_bytes([last, 0]));
    }
    fold(acc)
}

/// One's-complement sum of partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Sum of the IPv4 pseudo-header (source, destination, zero, protocol, upper-layer length).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    combine(&[
        data(&src.octets()),
        data(&dst.octets()),
        u16::from(protocol),
        length,
    ])
}

/// Sum of the IPv6 pseudo-header (source, destination, 32-bit upper-layer length, next header).
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u16 {
    combine(&[
        data(&src.octets()),
        data(&dst.octets()),
        data(&length.to_be_bytes()),
        u16::from(next_header),
    ])
}

/// The value to store in a checksum field, given the sum over everything it covers (with the
/// field itself zeroed).
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// Whether a sum over everything a checksum covers (the field included) verifies.
pub const fn is_valid(sum: u16) -> bool {
    sum == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 -> sum ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data(&[0x12]), 0x1200);
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn combine_folds_carry() {
        assert_eq!(combine(&[0xffff, 0x0001]), 0x0001);
        assert_eq!(combine(&[0x8000, 0x8000]), 0x0001);
    }

    #[test]
    fn ipv4_header_from_capture_verifies() {
        // IPv4 header of the keepalived VRRPv3 capture (checksum d02c).
        let hdr = [
            0x45, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x2c, 0x0a, 0x63,
            0x00, 0x0b, 0xe0, 0x00, 0x00, 0x12,
        ];
        assert!(is_valid(data(&hdr)));
    }

    #[test]
    fn pseudo_headers() {
        let v4 = pseudo_header_v4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            112,
            16,
        );
        assert_eq!(v4, 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 112 + 16);
        let v6 = pseudo_header_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, 58, 0x1_0000);
        assert_eq!(v6, 1 + 1 + 1 + 58);
    }
}
