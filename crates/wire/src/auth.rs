//! The authentication trailer of keepalived's `auth_hmac` (draft-cassen-vrrp-auth-hmac): 28
//! bytes after the VRRP message (v2 and v3, IPv4 and IPv6):
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |   ext_type    |    key_id     |           reserved            |
//! +---------------+---------------+-------------------------------+
//! |          sequence: UTC seconds (bits 63..32)                  |
//! +-------------------------------+-------------------------------+
//! |  fraction of the second       |  counter within the timestamp |
//! +-------------------------------+-------------------------------+
//! |        HMAC-SHA256, first 16 bytes (4 words)                  |
//! +---------------------------------------------------------------+
//! ```
//!
//! A receiver tells a trailer by length: the IP payload is exactly the message (from its header's
//! version and address count) plus 28 bytes. The codec only moves bytes; signing and checking
//! are `vipd_proto::auth`'s.

use crate::vrrp::{AUTH_LEN, Family, HEADER_LEN};
use crate::{Error, Result};

/// Bytes of the trailer.
pub const TRAILER_LEN: usize = 28;
/// The only `ext_type`: HMAC-SHA256 truncated to 128 bits.
pub const EXT_HMAC_SHA256_128: u8 = 1;
/// Bytes of the truncated HMAC.
pub const HMAC_LEN: usize = 16;
/// Offset of the HMAC within the trailer.
pub const HMAC_AT: usize = 12;

/// A decoded trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthTrailer {
    /// 1 = HMAC-SHA256-128.
    pub ext_type: u8,
    /// The key that signed (1..=255).
    pub key_id: u8,
    /// 0 when well-formed.
    pub reserved: u16,
    /// The sequence: UTC seconds << 32 | fraction << 16 | counter.
    pub seq: u64,
    /// The truncated HMAC.
    pub hmac: [u8; HMAC_LEN],
}

impl AuthTrailer {
    /// Reads the 28 bytes of `b` (exactly [`TRAILER_LEN`]).
    pub fn parse(b: &[u8]) -> Result<AuthTrailer> {
        let b: &[u8; TRAILER_LEN] = b.try_into().map_err(|_| Error::LengthMismatch)?;
        let [
            ext_type,
            key_id,
            r0,
            r1,
            s0,
            s1,
            s2,
            s3,
            s4,
            s5,
            s6,
            s7,
            h @ ..,
        ] = *b;
        Ok(AuthTrailer {
            ext_type,
            key_id,
            reserved: u16::from_be_bytes([r0, r1]),
            seq: u64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            hmac: h,
        })
    }

    /// Writes the trailer into the first [`TRAILER_LEN`] bytes of `out`.
    pub fn emit(&self, out: &mut [u8]) -> Result<()> {
        let out = out.get_mut(..TRAILER_LEN).ok_or(Error::BufferTooSmall)?;
        let (head, hmac) = out.split_at_mut(HMAC_AT);
        head.copy_from_slice(&self.head());
        hmac.copy_from_slice(&self.hmac);
        Ok(())
    }

    /// The first 12 bytes (everything but the HMAC), as the HMAC covers them.
    pub fn head(&self) -> [u8; HMAC_AT] {
        let [r0, r1] = self.reserved.to_be_bytes();
        let [s0, s1, s2, s3, s4, s5, s6, s7] = self.seq.to_be_bytes();
        [
            self.ext_type,
            self.key_id,
            r0,
            r1,
            s0,
            s1,
            s2,
            s3,
            s4,
            s5,
            s6,
            s7,
        ]
    }

    /// The UTC seconds of the sequence.
    pub fn seconds(&self) -> u32 {
        u32::try_from(self.seq >> 32).unwrap_or(u32::MAX)
    }
}

/// The length of the VRRP message at the start of `payload` as its header declares it (header,
/// addresses, and for VRRPv2 the 8 authentication bytes), or `None` if the header is cut.
pub fn message_len(payload: &[u8], family: Family) -> Option<usize> {
    let version = payload.first()? >> 4;
    let count = usize::from(*payload.get(3)?);
    let auth = if version == 2 { AUTH_LEN } else { 0 };
    Some(HEADER_LEN + count * family.addr_len() + auth)
}

/// Splits `payload` into the VRRP message and its `auth_hmac` trailer when it has one (its
/// length is exactly the declared message plus [`TRAILER_LEN`]); otherwise the whole payload
/// and `None`.
pub fn split_trailer(payload: &[u8], family: Family) -> (&[u8], Option<&[u8]>) {
    match message_len(payload, family) {
        Some(n) if payload.len() == n + TRAILER_LEN => {
            let (msg, trailer) = payload.split_at(n);
            (msg, Some(trailer))
        }
        _ => (payload, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_splits_by_length() {
        let t = AuthTrailer {
            ext_type: 1,
            key_id: 7,
            reserved: 0,
            seq: 0x6800_0000_8000_0001,
            hmac: [0xab; 16],
        };
        let mut b = [0u8; TRAILER_LEN];
        t.emit(&mut b).unwrap_or_default();
        assert_eq!(AuthTrailer::parse(&b), Ok(t));
        assert_eq!(t.seconds(), 0x6800_0000);
        assert_eq!(AuthTrailer::parse(&b[..27]), Err(Error::LengthMismatch));
        // A v3 IPv4 message with one address (12 bytes), then the trailer.
        let mut p = vec![0x31, 51, 200, 1, 0, 100, 0, 0, 192, 0, 2, 100];
        assert_eq!(split_trailer(&p, Family::Ipv4), (&p[..], None));
        p.extend_from_slice(&b);
        let (msg, tr) = split_trailer(&p, Family::Ipv4);
        assert_eq!((msg.len(), tr.map(<[u8]>::len)), (12, Some(TRAILER_LEN)));
        // One byte more or less: no trailer (the message decoder reports the length).
        assert_eq!(split_trailer(&p[..p.len() - 1], Family::Ipv4).1, None);
        assert_eq!(
            message_len(&[0x21, 1, 100, 2], Family::Ipv4),
            Some(8 + 8 + 8)
        );
        assert_eq!(message_len(&[0x31], Family::Ipv6), None);
    }
}

#[cfg(test)]
mod captures {
    //! keepalived 2.4.3's signed adverts (../shared/vectors/auth-hmac/) decode, with their
    //! trailer, and their checksums verify as keepalived computes them.
    use crate::vrrp::{decode_ipv4_datagram_with_trailer, decode_ipv6_payload_with_trailer};
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
        (0..s.len() / 2)
            .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    }

    #[test]
    fn keepalived_signed_adverts_decode() {
        let ip4 = hex(
            "45c0003c00020000ff70d0300a42000b e000001231339601000a433f0a420064 \
             010100006b0ecdfab6610000ee6cc360 0b19245062ddc5b5ee08d5bf",
        );
        let (r, t) = decode_ipv4_datagram_with_trailer(&ip4).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((r.vrrp.vrid, r.vrrp.priority), (51, 150));
        assert_eq!(r.ip.src, Ipv4Addr::new(10, 66, 0, 11));
        assert_eq!(t.map(<[u8]>::len), Some(super::TRAILER_LEN));
        // Without the trailer the same message decodes too; with a byte less, no trailer is
        // recognised and the length does not add up.
        assert!(decode_ipv4_datagram_with_trailer(&ip4[..ip4.len() - 1]).is_err());
        let ip6 = hex(
            "6c0f6ff6004470fffe80000000000000 80cf67fffedfeebaff02000000000000 \
             000000000000001231339602000a5498 fe800000000000000000000000000100 \
             fd660000000000000000000000000100 010100006b0ece07fd3300008ce28a09 \
             7ab07a9e4811711fac45688f",
        );
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x80cf, 0x67ff, 0xfedf, 0xeeba);
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
        let payload = &ip6[40..];
        let (r, t) = decode_ipv6_payload_with_trailer(payload, src, dst, 255)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (r.vrrp.vrid, r.vrrp.priority, r.vrrp.addrs.len()),
            (51, 150, 2)
        );
        assert!(t.is_some());
        // The checksum covers the trailer: a flipped trailer byte is a bad checksum.
        let mut bad = payload.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode_ipv6_payload_with_trailer(&bad, src, dst, 255).is_err());
        // fill_ipv6_checksum reproduces keepalived's value.
        let mut again = payload.to_vec();
        crate::vrrp::fill_ipv6_checksum(&mut again, src, dst).unwrap_or_default();
        assert_eq!(again, payload);
    }
}
