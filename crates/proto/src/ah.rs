//! VRRPv2 IPsec Authentication Header (RFC 2338 §5.3.2, RFC 2402 with HMAC-MD5-96 of
//! RFC 2403), as keepalived implements it, byte for byte: legacy, kept so that a rolling
//! migration of an AH-protected pair never ends with two masters. Pure: the caller gives the
//! IP identification and the sequence.
//!
//! The datagram is `IPv4 header (20) | AH (24) | VRRP message`, IP protocol 51. The AH header
//! is next header 112, payload length 4 (a 96-bit ICV), SPI = the sender's IPv4 address, a
//! sequence number, and the ICV: HMAC-MD5 keyed with the 8-byte password (zero-padded, as
//! keepalived's `auth_data`), over the IP header with TOS, fragment field and checksum zeroed
//! (and TTL, for unicast, as keepalived), the AH header with its ICV zeroed, and the VRRP
//! message; truncated to 12 bytes.
//!
//! Sequence numbers follow keepalived: one counter per virtual router, raised by every
//! authenticated advert received and increased by one for each advert sent, so a new master
//! carries on from the old one's sequence; an advert whose sequence is not above the counter
//! is a replay. vipd starts its counter from the clock (seconds since 2024) rather than from
//! zero, so that its adverts after a restart are not taken for replays.

use std::fmt;
use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use md5::Md5;

type HmacMd5 = Hmac<Md5>;

/// IP protocol number of the Authentication Header.
pub const IP_PROTO_AH: u8 = 51;
/// Length of the AH header with a 96-bit ICV.
pub const AH_LEN: usize = 24;
/// Length of the ICV.
pub const ICV_LEN: usize = 12;
/// Length of the IPv4 header vipd writes (no options).
pub const IP_LEN: usize = 20;
/// The AH "payload length" field for a 96-bit ICV: (3 + 3) 32-bit words minus 2.
const PAYLOAD_LEN: u8 = 4;
/// Seconds from the Unix epoch to 2024-01-01: the clock-based start of the counter.
const EPOCH_2024: u64 = 1_704_067_200;

/// Why an AH datagram is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AhError {
    /// Too short, not protocol 51, or not an AH header for VRRP.
    Malformed,
    /// The ICV does not match (another password, or a changed packet).
    BadIcv,
    /// The SPI is not the sender's address.
    BadSpi,
    /// The sequence is not above the counter.
    Replay,
}

impl AhError {
    /// The drop reason's words.
    pub fn as_str(self) -> &'static str {
        match self {
            AhError::Malformed => "malformed AH header",
            AhError::BadIcv => "wrong AH ICV (another password?)",
            AhError::BadSpi => "AH SPI is not the sender's address",
            AhError::Replay => "AH sequence number already seen (replay)",
        }
    }
}

impl fmt::Display for AhError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ICV of `datagram` (IP header, AH, VRRP message), computed as keepalived does.
fn icv(datagram: &[u8], ihl: usize, key: &[u8; 8], unicast: bool) -> Option<[u8; ICV_LEN]> {
    let ip = datagram.get(..ihl)?;
    let ah = datagram.get(ihl..ihl + AH_LEN)?;
    let rest = datagram.get(ihl + AH_LEN..)?;
    let mut iph = ip.to_vec();
    // Mutable fields zeroed: TOS, fragment field, checksum; TTL for unicast (keepalived).
    *iph.get_mut(1)? = 0;
    *iph.get_mut(6)? = 0;
    *iph.get_mut(7)? = 0;
    *iph.get_mut(10)? = 0;
    *iph.get_mut(11)? = 0;
    if unicast {
        *iph.get_mut(8)? = 0;
    }
    let mut ahz = [0u8; AH_LEN];
    ahz.get_mut(..12)?.copy_from_slice(ah.get(..12)?);
    let mut mac = HmacMd5::new_from_slice(key).ok()?;
    mac.update(&iph);
    mac.update(&ahz);
    mac.update(rest);
    let out = mac.finalize().into_bytes();
    let mut v = [0u8; ICV_LEN];
    v.copy_from_slice(out.get(..ICV_LEN)?);
    Some(v)
}

/// What an AH datagram carries besides the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhOut {
    /// Source address (also the SPI).
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP identification (never 0: the kernel would choose one, after the ICV).
    pub id: u16,
    /// AH sequence number.
    pub seq: u32,
    /// Sent to a unicast peer (keepalived leaves the TTL out of the ICV then).
    pub unicast: bool,
}

/// Writes the AH datagram carrying VRRP message `vrrp` into `out`: IPv4 header (TOS 0xc0,
/// identification, TTL 255, protocol 51, the checksum too, though the kernel rewrites it),
/// AH with its sequence, the message. Returns its length (`None`: `out` too small).
pub fn build_datagram(out: &mut [u8], vrrp: &[u8], h: &AhOut, key: &[u8; 8]) -> Option<usize> {
    let AhOut {
        src,
        dst,
        id,
        seq,
        unicast,
    } = *h;
    let total = IP_LEN + AH_LEN + vrrp.len();
    let total16 = u16::try_from(total).ok()?;
    let buf = out.get_mut(..total)?;
    buf.fill(0);
    let ip = buf.get_mut(..IP_LEN)?;
    ip[0] = 0x45;
    ip[1] = 0xc0;
    ip[2..4].copy_from_slice(&total16.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[8] = 255;
    ip[9] = IP_PROTO_AH;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = !vipd_wire::checksum::data(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let ah = buf.get_mut(IP_LEN..IP_LEN + AH_LEN)?;
    ah[0] = vipd_wire::IP_PROTO_VRRP;
    ah[1] = PAYLOAD_LEN;
    ah[4..8].copy_from_slice(&src.octets());
    ah[8..12].copy_from_slice(&seq.to_be_bytes());
    buf.get_mut(IP_LEN + AH_LEN..)?.copy_from_slice(vrrp);
    let v = icv(buf, IP_LEN, key, unicast)?;
    buf.get_mut(IP_LEN + 12..IP_LEN + AH_LEN)?
        .copy_from_slice(&v);
    Some(total)
}

/// Checks an AH datagram as received (IPv4 header included): protocol, AH for VRRP, ICV,
/// SPI. Returns its sequence number (the caller checks it against its counter).
pub fn verify(datagram: &[u8], key: &[u8; 8], unicast: bool) -> Result<u32, AhError> {
    let ihl = usize::from(datagram.first().ok_or(AhError::Malformed)? & 0x0f) * 4;
    if ihl < IP_LEN || datagram.get(9) != Some(&IP_PROTO_AH) {
        return Err(AhError::Malformed);
    }
    let ah = datagram.get(ihl..ihl + AH_LEN).ok_or(AhError::Malformed)?;
    if ah[0] != vipd_wire::IP_PROTO_VRRP || ah[1] != PAYLOAD_LEN {
        return Err(AhError::Malformed);
    }
    let want = icv(datagram, ihl, key, unicast).ok_or(AhError::Malformed)?;
    let got = ah.get(12..AH_LEN).ok_or(AhError::Malformed)?;
    // Constant time: fold the differences.
    if want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
        return Err(AhError::BadIcv);
    }
    if ah.get(4..8) != datagram.get(12..16) {
        return Err(AhError::BadSpi);
    }
    let seq = u32::from_be_bytes([ah[8], ah[9], ah[10], ah[11]]);
    Ok(seq)
}

/// The VRRP message inside an AH datagram (for the wire decoder), if it is one.
pub fn inner(datagram: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(datagram.first()? & 0x0f) * 4;
    (datagram.get(9) == Some(&IP_PROTO_AH)).then_some(())?;
    datagram.get(ihl + AH_LEN..)
}

/// A virtual router's AH sequence counter (keepalived's `ipsecah_counter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhCounter {
    counter: u32,
}

impl AhCounter {
    /// A counter starting from the clock: `unix_secs` seconds since 1970.
    pub fn from_clock(unix_secs: u64) -> AhCounter {
        let c = unix_secs.saturating_sub(EPOCH_2024);
        AhCounter {
            counter: u32::try_from(c).unwrap_or(u32::MAX / 2),
        }
    }

    /// An authenticated advert with sequence `seq`: accepted (and the counter raised) if
    /// above the counter, else a replay.
    pub fn accept(&mut self, seq: u32) -> Result<(), AhError> {
        if seq > self.counter {
            self.counter = seq;
            Ok(())
        } else {
            Err(AhError::Replay)
        }
    }

    /// The sequence of the next advert sent (keepalived stops at 0xFFFFFFFD).
    pub fn next_seq(&mut self) -> u32 {
        if self.counter < 0xFFFF_FFFD {
            self.counter += 1;
        }
        self.counter
    }

    /// The counter.
    pub fn value(&self) -> u32 {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> [u8; 8] {
        let mut k = [0u8; 8];
        k[..s.len()].copy_from_slice(s.as_bytes());
        k
    }

    #[test]
    fn a_built_datagram_verifies_and_tampering_does_not() {
        let vrrp = [
            0x21, 51, 100, 1, 2, 1, 0, 0, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(224, 0, 0, 18));
        let mut buf = [0u8; 128];
        let n = build_datagram(
            &mut buf,
            &vrrp,
            &AhOut {
                src,
                dst,
                id: 7,
                seq: 42,
                unicast: false,
            },
            &key("s3cr3t"),
        )
        .unwrap();
        let d = buf[..n].to_vec();
        let d = &d[..];
        assert_eq!(n, 20 + 24 + vrrp.len());
        assert_eq!((d[9], d[20], d[21]), (51, 112, 4));
        assert_eq!(&d[24..28], &src.octets());
        assert_eq!(verify(d, &key("s3cr3t"), false), Ok(42));
        assert_eq!(inner(d), Some(&vrrp[..]));
        // Another password.
        assert_eq!(verify(d, &key("other"), false), Err(AhError::BadIcv));
        // Mutable fields may change in flight: TOS, TTL (multicast keeps it), checksum.
        let mut m = d.to_vec();
        m[1] = 0;
        m[10] ^= 0xff;
        assert_eq!(verify(&m, &key("s3cr3t"), false), Ok(42));
        // Immutable ones may not: the priority, the source, the identification.
        for at in [20 + 24 + 2, 12, 4] {
            let mut m = d.to_vec();
            m[at] ^= 1;
            assert!(verify(&m, &key("s3cr3t"), false).is_err(), "byte {at}");
        }
        // TTL is covered for multicast, not for unicast (keepalived).
        let mut m = d.to_vec();
        m[8] = 64;
        assert_eq!(verify(&m, &key("s3cr3t"), false), Err(AhError::BadIcv));
        let n = build_datagram(
            &mut buf,
            &vrrp,
            &AhOut {
                src,
                dst,
                id: 7,
                seq: 43,
                unicast: true,
            },
            &key("s3cr3t"),
        )
        .unwrap();
        let mut m = buf[..n].to_vec();
        m[8] = 64;
        assert_eq!(verify(&m, &key("s3cr3t"), true), Ok(43));
        // The SPI must be the sender: a copy resent from elsewhere fails (the ICV covers the
        // source too, so only a forged SPI with a valid ICV reaches that check).
        assert!(verify(&d[..30], &key("s3cr3t"), false).is_err());
    }

    #[test]
    fn the_counter_refuses_replays_and_carries_on_from_the_peers() {
        let mut c = AhCounter::from_clock(EPOCH_2024 + 1000);
        assert_eq!(c.value(), 1000);
        assert_eq!(c.next_seq(), 1001);
        assert_eq!(c.accept(1001), Err(AhError::Replay));
        assert_eq!(c.accept(5000), Ok(()));
        assert_eq!(
            c.next_seq(),
            5001,
            "a new master carries on from the old one's sequence"
        );
        assert_eq!(c.accept(4000), Err(AhError::Replay));
    }
}
