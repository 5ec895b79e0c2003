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
