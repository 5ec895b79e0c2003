//! `auth_hmac`: keepalived's HMAC-SHA256 advert authentication (draft-cassen-vrrp-auth-hmac,
//! keepalived 2.4.1 and later), wire-compatible with it. Pure: the caller gives the UTC time;
//! the trailer's bytes are `vipd_wire::auth`'s.
//!
//! What the HMAC covers: a 20-byte pseudo-header (`[family, version, vrid, 0]` and the sender's
//! source address, zero-padded), the VRRP message with its checksum field zeroed, and the
//! trailer's first 12 bytes followed by 16 zero bytes. The checksum is therefore not
//! authenticated (it may differ per destination), the source address is (a signed advert
//! replayed from another address fails).
//!
//! [`Sequencer`] gives the sequence a sender puts in each trailer, [`sign`] fills a trailer in,
//! [`Verifier`] checks one in the draft's order (malformed, stale, unknown key, HMAC, replay)
//! and keeps the per-sender high-water marks.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use vipd_wire::auth::{AuthTrailer, EXT_HMAC_SHA256_128, HMAC_LEN, TRAILER_LEN};

use crate::Version;

type HmacSha256 = Hmac<Sha256>;

/// Shortest key keepalived accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;
/// Longest key stored as is (longer ones are hashed first, as HMAC does).
pub const MAX_KEY_LEN: usize = 64;
/// Senders remembered per instance in multicast mode (keepalived: 4), least recently used
/// evicted.
pub const MULTICAST_SENDERS: usize = 4;

/// How strictly adverts must be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Sign, and require a valid trailer (the default).
    Enforce,
    /// Sign, and also accept adverts without a trailer (a rollout step).
    Permissive,
    /// Send no trailer; verify one when present (the first rollout step).
    ReceiveOnly,
}

impl Mode {
    /// keepalived's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Permissive => "permissive",
            Mode::ReceiveOnly => "receive-only",
        }
    }
    /// Whether this side signs what it sends.
    pub const fn signs(self) -> bool {
        !matches!(self, Mode::ReceiveOnly)
    }
}

/// How replays are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AntiReplay {
    /// The sequence's seconds must be within `window` of our UTC clock, and grow per sender.
    Time {
        /// keepalived's `time_window` (1..=300 s; default max(3 x interval, 5 s)).
        window: Duration,
    },
    /// Each sender's sequence must grow; clocks need not agree.
    Monotonic,
}

/// One key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// 1..=255, sent in the trailer.
    pub id: u8,
    /// The secret (32..=64 bytes; longer ones are hashed by HMAC itself).
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Key {{ id: {}, secret: <{} bytes> }}",
            self.id,
            self.secret.len()
        )
    }
}

/// An instance's `auth_hmac` settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthHmac {
    /// Mode.
    pub mode: Mode,
    /// Every key a trailer may name.
    pub keys: Vec<Key>,
    /// The key this side signs with.
    pub active: u8,
    /// Replay protection.
    pub anti_replay: AntiReplay,
}

impl AuthHmac {
    fn key(&self, id: u8) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// Why a received advert failed authentication (each counted, with the sender's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFail {
    /// No trailer, in enforce mode.
    Missing,
    /// A trailer with another `ext_type` or non-zero reserved bytes.
    Malformed,
    /// The trailer names a key we do not have.
    UnknownKey(u8),
    /// The HMAC does not verify.
    BadHmac,
    /// Time mode: the sequence's seconds are this far from our clock (sender minus us).
    Stale {
        /// Seconds, the sender's clock minus ours.
        skew_s: i64,
    },
    /// The sequence is not after the last one accepted from this sender.
    Replay,
}

impl fmt::Display for AuthFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFail::Missing => f.write_str("no auth_hmac trailer"),
            AuthFail::Malformed => f.write_str("malformed auth_hmac trailer"),
            AuthFail::UnknownKey(id) => write!(f, "unknown key id {id}"),
            AuthFail::BadHmac => f.write_str("HMAC does not verify"),
            AuthFail::Stale { skew_s } => {
                write!(f, "stale: the sender's clock is {skew_s:+} s from ours")
            }
            AuthFail::Replay => f.write_str("replayed (sequence not after the last one accepted)"),
        }
    }
}

/// What the HMAC of an advert is bound to besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Protocol version of the message.
    pub version: Version,
    /// Its VRID.
    pub vrid: u8,
    /// The packet's IP source address.
    pub src: IpAddr,
}

impl Context {
    fn pseudo(&self) -> [u8; 20] {
        let mut p = [0u8; 20];
        let (family, addr): (u8, &[u8]) = match &self.src {
            IpAddr::V4(a) => (4, &a.octets()[..]),
            IpAddr::V6(a) => (6, &a.octets()[..]),
        };
        p[0] = family;
        p[1] = self.version.number();
        p[2] = self.vrid;
        if let Some(dst) = p.get_mut(4..4 + addr.len()) {
            dst.copy_from_slice(addr);
        }
        p
    }
}

/// The HMAC of `msg` (its checksum field treated as 0) and the trailer head under `secret`.
fn digest(secret: &[u8], ctx: &Context, msg: &[u8], head: &[u8; 12]) -> [u8; HMAC_LEN] {
    // HMAC accepts any key length; a key longer than the block is hashed first.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return [0; HMAC_LEN];
    };
    mac.update(&ctx.pseudo());
    mac.update(msg.get(..6).unwrap_or(msg));
    if msg.len() > 6 {
        mac.update(&[0, 0]);
        mac.update(msg.get(8..).unwrap_or(&[]));
    }
    mac.update(head);
    mac.update(&[0u8; HMAC_LEN]);
    let out = mac.finalize().into_bytes();
    let mut h = [0u8; HMAC_LEN];
    if let Some(src) = out.get(..HMAC_LEN) {
        h.copy_from_slice(src);
    }
    h
}

/// The sequence numbers one sender puts in its trailers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequencer {
    last: u64,
}

/// `(seconds << 32) | (binary fraction of the second << 16)`.
pub fn clock_seq(utc: Duration) -> u64 {
    let sec = utc.as_secs() & 0xffff_ffff;
    let frac = (u64::from(utc.subsec_nanos()) << 16) / 1_000_000_000;
    (sec << 32) | ((frac & 0xffff) << 16)
}

impl Sequencer {
    /// The next sequence at UTC time `utc`: the clock if it is after the last one sent,
    /// otherwise the last one plus one; in time mode a last sequence more than `window` ahead
    /// of the clock (the clock was stepped back) restarts from the clock.
    pub fn next(&mut self, utc: Duration, anti_replay: AntiReplay) -> u64 {
        let clock = clock_seq(utc);
        let ahead = |last: u64| (last >> 32).saturating_sub(clock >> 32);
        self.last = match anti_replay {
            AntiReplay::Time { window } if ahead(self.last) > window.as_secs() => clock,
            _ if clock > self.last => clock,
            _ => self.last.wrapping_add(1),
        };
        self.last
    }

    /// The last sequence sent (for an upgrade's handover).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Goes on from `last` (handed over by the previous binary).
    pub fn resume(last: u64) -> Sequencer {
        Sequencer { last }
    }
}

/// Fills `trailer` ([`TRAILER_LEN`] bytes) for `msg`, signed with `cfg`'s active key and
/// sequence `seq`. `false` if the active key is missing (a configuration the validator
/// refuses) or `trailer` is short.
pub fn sign(cfg: &AuthHmac, ctx: &Context, msg: &[u8], seq: u64, trailer: &mut [u8]) -> bool {
    let Some(key) = cfg.key(cfg.active) else {
        return false;
    };
    let mut t = AuthTrailer {
        ext_type: EXT_HMAC_SHA256_128,
        key_id: key.id,
        reserved: 0,
        seq,
        hmac: [0; HMAC_LEN],
    };
    t.hmac = digest(&key.secret, ctx, msg, &t.head());
    t.emit(trailer).is_ok()
}

/// One sender's high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    src: IpAddr,
    seq: u64,
    /// For least-recently-used eviction.
    used: u64,
}

/// Verifies received trailers and remembers each sender's last sequence: one mark per
/// configured unicast peer, or [`MULTICAST_SENDERS`] marks in multicast mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verifier {
    marks: Vec<Mark>,
    tick: u64,
}

impl Verifier {
    /// Checks the advert `msg` with trailer bytes `trailer` (`None`: it had none) from
    /// `ctx.src` at UTC time `utc`, in the draft's order; on success moves the sender's mark.
    /// `slots`: how many senders to remember (unicast: the number of peers; multicast:
    /// [`MULTICAST_SENDERS`]).
    pub fn verify(
        &mut self,
        cfg: &AuthHmac,
        ctx: &Context,
        msg: &[u8],
        trailer: Option<&[u8]>,
        utc: Duration,
        slots: usize,
    ) -> Result<(), AuthFail> {
        let Some(trailer) = trailer else {
            return match cfg.mode {
                Mode::Enforce => Err(AuthFail::Missing),
                Mode::Permissive | Mode::ReceiveOnly => Ok(()),
            };
        };
        let t = match AuthTrailer::parse(trailer) {
            Ok(t) if t.ext_type == EXT_HMAC_SHA256_128 && t.reserved == 0 => t,
            _ => return Err(AuthFail::Malformed),
        };
        let now_s = i64::try_from(utc.as_secs() & 0xffff_ffff).unwrap_or(0);
        let skew_s = i64::from(t.seconds()) - now_s;
        if let AntiReplay::Time { window } = cfg.anti_replay {
            // Before the digest: a flood of stale replays costs no HMAC.
            if skew_s.unsigned_abs() > window.as_secs() {
                return Err(AuthFail::Stale { skew_s });
            }
        }
        let Some(key) = cfg.key(t.key_id) else {
            return Err(AuthFail::UnknownKey(t.key_id));
        };
        // Constant-time comparison of the truncated tag.
        let expected = digest(&key.secret, ctx, msg, &t.head());
        let diff = expected
            .iter()
            .zip(t.hmac.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(AuthFail::BadHmac);
        }
        self.tick = self.tick.wrapping_add(1);
        let tick = self.tick;
        if let AntiReplay::Time { window } = cfg.anti_replay {
            // A mark far from now (the sender's clock was stepped) is forgotten first.
            self.marks.retain(|m| {
                let s = i64::try_from(m.seq >> 32).unwrap_or(0);
                (s - now_s).unsigned_abs() <= window.as_secs()
            });
        }
        match self.marks.iter_mut().find(|m| m.src == ctx.src) {
            Some(m) => {
                // Strictly after the mark, modulo 2^64 (keepalived: (int64)(seq - mark) > 0).
                if (t.seq.wrapping_sub(m.seq) as i64) <= 0 {
                    return Err(AuthFail::Replay);
                }
                m.seq = t.seq;
                m.used = tick;
            }
            None => {
                if self.marks.len() >= slots.max(1) {
                    // Evict the least recently used sender.
                    if let Some(i) = self
                        .marks
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, m)| m.used)
                        .map(|(i, _)| i)
                    {
                        self.marks.swap_remove(i);
                    }
                }
                self.marks.push(Mark {
                    src: ctx.src,
                    seq: t.seq,
                    used: tick,
                });
            }
        }
        Ok(())
    }
}

/// Bytes a signed advert adds: the trailer.
pub const OVERHEAD: usize = TRAILER_LEN;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use crate::testutil::hex;

    fn draft_key() -> AuthHmac {
        AuthHmac {
            mode: Mode::Enforce,
            keys: vec![Key {
                id: 1,
                secret: (0u8..32).collect(),
            }],
            active: 1,
            anti_replay: AntiReplay::Monotonic,
        }
    }

    const FAR_FUTURE: Duration = Duration::from_secs(0x6900_0000);

    /// The draft's appendix vectors (../shared/auth-hmac.md): IPv4 and IPv6.
    #[test]
    fn draft_vectors_verify_and_sign_identically() {
        let cfg = draft_key();
        let cases = [
            (
                "3133c80100644402c0000264",
                "010100006800000080000000",
                "1b84bc4e8e43892dc6d98448f8ee2265",
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
            ),
            (
                "3133c8010064a2e9 fe800000000000000000000000000100",
                "010100006800000080000000",
                "c8c56146ebfd66ee10ec4d8186461b78",
                IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10)),
            ),
        ];
        for (msg, head, tag, src) in cases {
            let msg = hex(msg);
            let mut trailer = hex(head);
            trailer.extend(hex(tag));
            let ctx = Context {
                version: Version::V3,
                vrid: 51,
                src,
            };
            let mut v = Verifier::default();
            assert_eq!(
                v.verify(&cfg, &ctx, &msg, Some(&trailer), FAR_FUTURE, 4),
                Ok(()),
                "{src}"
            );
            let mut out = [0u8; TRAILER_LEN];
            assert!(sign(&cfg, &ctx, &msg, 0x6800_0000_8000_0000, &mut out));
            assert_eq!(&out[..], &trailer[..], "{src}");
        }
    }

    /// Every field the HMAC covers, flipped, fails; the checksum does not; ext_type and
    /// reserved are malformed; key_id is an unknown key; another source or VRID fails.
    #[test]
    fn tampering_with_any_covered_field_fails() {
        let cfg = draft_key();
        let msg = hex("3133c8010064a2e9 fe800000000000000000000000000100");
        let mut trailer = hex("010100006800000080000000");
        trailer.extend(hex("c8c56146ebfd66ee10ec4d8186461b78"));
        let src = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10));
        let ctx = Context {
            version: Version::V3,
            vrid: 51,
            src,
        };
        let check = |msg: &[u8], trailer: &[u8], ctx: &Context| {
            Verifier::default().verify(&cfg, ctx, msg, Some(trailer), FAR_FUTURE, 4)
        };
        // Message bytes: priority (2), interval (4, 5), VIP (8..24): bad HMAC; checksum: fine.
        for at in [2usize, 4, 5, 8, 23] {
            let mut m = msg.clone();
            m[at] ^= 1;
            assert_eq!(
                check(&m, &trailer, &ctx),
                Err(AuthFail::BadHmac),
                "byte {at}"
            );
        }
        let mut m = msg.clone();
        m[6] ^= 0xff;
        assert_eq!(check(&m, &trailer, &ctx), Ok(()), "checksum is not covered");
        // Trailer: sec, ctr, hmac: bad HMAC; ext_type, reserved: malformed; key id: unknown.
        for at in [4usize, 7, 10, 11, 12, 27] {
            let mut t = trailer.clone();
            t[at] ^= 1;
            assert_eq!(
                check(&msg, &t, &ctx),
                Err(AuthFail::BadHmac),
                "trailer {at}"
            );
        }
        for at in [0usize, 2, 3] {
            let mut t = trailer.clone();
            t[at] ^= 1;
            assert_eq!(
                check(&msg, &t, &ctx),
                Err(AuthFail::Malformed),
                "trailer {at}"
            );
        }
        let mut t = trailer.clone();
        t[1] = 2;
        assert_eq!(check(&msg, &t, &ctx), Err(AuthFail::UnknownKey(2)));
        let other = Context {
            src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x20)),
            ..ctx
        };
        assert_eq!(check(&msg, &trailer, &other), Err(AuthFail::BadHmac));
        let vrid52 = Context { vrid: 52, ..ctx };
        assert_eq!(check(&msg, &trailer, &vrid52), Err(AuthFail::BadHmac));
        // Truncated trailer: malformed.
        assert_eq!(check(&msg, &trailer[..27], &ctx), Err(AuthFail::Malformed));
    }

    /// Adverts captured from keepalived 2.4.3 (../shared/vectors/auth-hmac/) verify.
    #[test]
    fn keepalived_captures_verify() {
        let cfg = draft_key();
        // IPv4: the message after the 20-byte IP header, then the trailer.
        let ip4 = hex(
            "45c0003c00020000ff70d0300a42000b e000001231339601000a433f0a420064 \
             010100006b0ecdfab6610000ee6cc360 0b19245062ddc5b5ee08d5bf",
        );
        let (msg, trailer) = ip4[20..].split_at(12);
        let ctx = Context {
            version: Version::V3,
            vrid: 51,
            src: IpAddr::V4(Ipv4Addr::new(10, 66, 0, 11)),
        };
        let mut v = Verifier::default();
        assert_eq!(
            v.verify(&cfg, &ctx, msg, Some(trailer), FAR_FUTURE, 4),
            Ok(())
        );
        // IPv6: the payload after the 40-byte header: two VIPs, then the trailer.
        let ip6 = hex(
            "6c0f6ff6004470fffe80000000000000 80cf67fffedfeebaff02000000000000 \
             000000000000001231339602000a5498 fe800000000000000000000000000100 \
             fd660000000000000000000000000100 010100006b0ece07fd3300008ce28a09 \
             7ab07a9e4811711fac45688f",
        );
        let (msg, trailer) = ip6[40..].split_at(8 + 32);
        let ctx = Context {
            version: Version::V3,
            vrid: 51,
            src: IpAddr::V6(Ipv6Addr::new(
                0xfe80, 0, 0, 0, 0x80cf, 0x67ff, 0xfedf, 0xeeba,
            )),
        };
        assert_eq!(
            v.verify(&cfg, &ctx, msg, Some(trailer), FAR_FUTURE, 4),
            Ok(())
        );
        // Time mode: those are years old now.
        let timed = AuthHmac {
            anti_replay: AntiReplay::Time {
                window: Duration::from_secs(5),
            },
            ..cfg
        };
        let now = Duration::from_secs(1_796_132_359 + 3600);
        assert_eq!(
            Verifier::default().verify(&timed, &ctx, msg, Some(trailer), now, 4),
            Err(AuthFail::Stale { skew_s: -3600 })
        );
    }

    /// Replays are refused per sender; the sequencer never repeats, even with a clock that
    /// stands still or steps back; time mode forgets a mark far from now.
    #[test]
    fn replay_and_sequencing() {
        let mut cfg = draft_key();
        let ctx = |last: u8| Context {
            version: Version::V3,
            vrid: 51,
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        };
        let msg = hex("3133c80100644402c0000264");
        let t0 = Duration::from_secs(1_800_000_000);
        let mut seq = Sequencer::default();
        let mut v = Verifier::default();
        let signed = |s: u64, c: &Context, cfg: &AuthHmac| {
            let mut t = [0u8; TRAILER_LEN];
            assert!(sign(cfg, c, &msg, s, &mut t));
            t
        };
        let s1 = seq.next(t0, cfg.anti_replay);
        let s2 = seq.next(t0, cfg.anti_replay);
        assert_eq!(s2, s1 + 1, "same clock: counter");
        let a1 = signed(s1, &ctx(2), &cfg);
        let a2 = signed(s2, &ctx(2), &cfg);
        assert_eq!(v.verify(&cfg, &ctx(2), &msg, Some(&a1), t0, 4), Ok(()));
        assert_eq!(v.verify(&cfg, &ctx(2), &msg, Some(&a2), t0, 4), Ok(()));
        assert_eq!(
            v.verify(&cfg, &ctx(2), &msg, Some(&a1), t0, 4),
            Err(AuthFail::Replay)
        );
        assert_eq!(
            v.verify(&cfg, &ctx(2), &msg, Some(&a2), t0, 4),
            Err(AuthFail::Replay)
        );
        // Another sender has its own mark.
        let b1 = signed(s1, &ctx(3), &cfg);
        assert_eq!(v.verify(&cfg, &ctx(3), &msg, Some(&b1), t0, 4), Ok(()));
        // The clock steps back: monotonic mode goes on counting.
        let s3 = seq.next(t0 - Duration::from_secs(100), cfg.anti_replay);
        assert_eq!(s3, s2 + 1);
        // Time mode: a stepped-back clock restarts from it; the receiver, whose mark for
        // that sender is then far from now, forgets it and accepts.
        cfg.anti_replay = AntiReplay::Time {
            window: Duration::from_secs(5),
        };
        let back = t0 - Duration::from_secs(100);
        let s4 = seq.next(back, cfg.anti_replay);
        assert_eq!(s4, clock_seq(back));
        let a4 = signed(s4, &ctx(2), &cfg);
        assert_eq!(v.verify(&cfg, &ctx(2), &msg, Some(&a4), back, 4), Ok(()));
        // Enforce refuses a missing trailer; permissive and receive-only accept it.
        assert_eq!(
            v.verify(&cfg, &ctx(2), &msg, None, back, 4),
            Err(AuthFail::Missing)
        );
        for mode in [Mode::Permissive, Mode::ReceiveOnly] {
            let c = AuthHmac {
                mode,
                ..cfg.clone()
            };
            assert_eq!(v.verify(&c, &ctx(2), &msg, None, back, 4), Ok(()));
        }
        // Bounded: a flood of senders keeps at most `slots` marks.
        for last in 10..=200u8 {
            let c = ctx(last);
            let t = signed(s4 + u64::from(last), &c, &cfg);
            assert_eq!(v.verify(&cfg, &c, &msg, Some(&t), back, 4), Ok(()));
        }
        assert!(v.marks.len() <= 4);
    }
}
