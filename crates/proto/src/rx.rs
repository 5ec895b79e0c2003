//! The receive policy, as pure code: from the bytes a raw socket returned to either an advert
//! for one instance or a counted drop reason (RFC 9568 §7.1 checks, in the RFC's order where
//! it gives one).

use std::net::{IpAddr, Ipv6Addr};

use crate::alarms::AlarmKind;
use crate::{RxAdvert, Version};
use vipd_wire::{self as wire, Auth, ChecksumMode, VrrpRepr, VrrpVersion};

use crate::counters::Drop;

/// What a raw socket handed us.
#[derive(Debug, Clone, Copy)]
pub enum Received<'a> {
    /// A raw IPv4 socket returns the whole datagram, IPv4 header included.
    V4(&'a [u8]),
    /// A raw IPv6 socket returns the VRRP message; the rest comes from ancillary data.
    V6 {
        /// The VRRP message.
        payload: &'a [u8],
        /// Source address.
        src: Ipv6Addr,
        /// Destination address (IPV6_PKTINFO).
        dst: Ipv6Addr,
        /// Hop limit (IPV6_HOPLIMIT).
        hop_limit: u8,
    },
}

/// What the receive path needs to know of an instance.
#[derive(Debug, Clone, Copy)]
pub struct RxView<'a> {
    /// Configured version.
    pub version: Version,
    /// VRRPv2 password (`None`: no authentication).
    pub auth: Option<[u8; 8]>,
    /// VRRPv2 IPsec-AH (`auth_ah`): adverts must come in AH datagrams (verified by the
    /// caller with [`crate::ah::verify`]).
    pub ah: bool,
    /// Unicast peers (empty: multicast mode, any source on the link is accepted).
    pub peers: &'a [IpAddr],
    /// Unicast: the TTL / hop limit each listed peer's adverts must arrive with (a peer
    /// not listed: any).
    pub peer_ttl: &'a [PeerTtl],
    /// Multicast: the only sources accepted (empty: any on the link).
    pub allowed: &'a [IpAddr],
    /// Our own source address (our own adverts are ignored, not counted).
    pub own: IpAddr,
    /// Our advert interval on the wire, centiseconds (v2: seconds x 100).
    pub interval_cs: u16,
    /// The checksum form we send (VRRPv3 over IPv4).
    pub checksum: ChecksumMode,
    /// Our VIPs (a different list in the advert is counted, not dropped).
    pub vips: &'a [IpAddr],
}

/// The TTL / hop limit range a unicast peer's adverts must arrive with (keepalived's
/// per-peer `min_ttl` / `max_ttl`): 255..=255 proves the peer is on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerTtl {
    /// The peer.
    pub peer: IpAddr,
    /// Lowest accepted TTL / hop limit.
    pub min: u8,
    /// Highest accepted TTL / hop limit.
    pub max: u8,
}

/// An advert accepted by the receive policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Index of the instance it is for.
    pub instance: usize,
    /// What the state machine gets.
    pub advert: RxAdvert,
    /// Whether its address list equals ours.
    pub addresses_match: bool,
    /// How many addresses it lists.
    pub addr_count: usize,
    /// The checksum form it used (VRRPv3 over IPv4; `None` otherwise).
    pub checksum: Option<ChecksumMode>,
}

/// Outcome of [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Hand it to the state machine.
    Accept(Accepted),
    /// Drop and count it (on the instance when known, else on the interface).
    Drop {
        /// The instance the VRID maps to, when the packet got that far.
        instance: Option<usize>,
        /// Why.
        reason: Drop,
        /// Its source, when the packet got that far.
        from: Option<IpAddr>,
    },
    /// An advert from our own source address: our own looped back (ignored silently), or
    /// another host using our address (the caller tells them apart with `priority`).
    Own {
        /// The instance the VRID maps to.
        instance: usize,
        /// The priority it advertised.
        priority: u8,
    },
}

fn drop(instance: Option<usize>, reason: Drop) -> Outcome {
    Outcome::Drop {
        instance,
        reason,
        from: None,
    }
}

fn drop_from(instance: usize, reason: Drop, src: IpAddr) -> Outcome {
    Outcome::Drop {
        instance: Some(instance),
        reason,
        from: Some(src),
    }
}

/// `auth_hmac`: checks the trailer of an advert [`classify`] accepted for an instance with
/// `cfg` (`slots`: senders remembered, see [`crate::auth::Verifier::verify`]). The message
/// and the trailer are found again in `pkt`, as the decoder split them.
pub fn authenticate(
    pkt: Received<'_>,
    a: &Accepted,
    cfg: &crate::auth::AuthHmac,
    verifier: &mut crate::auth::Verifier,
    utc: std::time::Duration,
    slots: usize,
) -> Result<(), crate::auth::AuthFail> {
    let payload = match pkt {
        Received::V4(bytes) => {
            let ihl = usize::from(bytes.first().map_or(0, |b| b & 0x0f)) * 4;
            bytes.get(ihl..).unwrap_or(&[])
        }
        Received::V6 { payload, .. } => payload,
    };
    let family = if a.advert.src.is_ipv4() {
        wire::Family::Ipv4
    } else {
        wire::Family::Ipv6
    };
    let (msg, trailer) = wire::auth::split_trailer(payload, family);
    let ctx = crate::auth::Context {
        version: a.advert.version,
        vrid: msg.get(1).copied().unwrap_or(0),
        src: a.advert.src,
    };
    verifier.verify(cfg, &ctx, msg, trailer, utc, slots)
}

/// The alarm a dropped advert raises about its sender's configuration, with its detail.
pub fn drop_alarm(reason: Drop, ours: Version) -> Option<(AlarmKind, String)> {
    match reason {
        Drop::VersionMismatch => {
            let theirs = match ours {
                Version::V2 => Version::V3,
                Version::V3 => Version::V2,
            };
            Some((AlarmKind::VersionMismatch, format!("{theirs}, ours {ours}")))
        }
        Drop::AuthMismatch => Some((AlarmKind::AuthMismatch, String::new())),
        _ => None,
    }
}

/// The alarms an accepted advert raises about its sender's configuration (empty: it
/// conforms), with their details.
pub fn accepted_alarms(a: &Accepted, view: &RxView<'_>) -> Vec<(AlarmKind, String)> {
    let mut out = Vec::new();
    if a.addr_count == 0 {
        out.push((AlarmKind::NoAddresses, String::new()));
    } else if !a.addresses_match {
        out.push((AlarmKind::AddressList, String::new()));
    }
    if let Some(theirs) = a.checksum
        && theirs != view.checksum
    {
        out.push((
            AlarmKind::ChecksumForm,
            format!("{}, ours {}", theirs.as_str(), view.checksum.as_str()),
        ));
    }
    if a.advert.version == Version::V3
        && a.advert.priority != 0
        && a.advert.max_advert_int_cs != view.interval_cs
    {
        out.push((
            AlarmKind::AdoptedInterval,
            format!(
                "{} ms, ours {} ms",
                u32::from(a.advert.max_advert_int_cs) * 10,
                u32::from(view.interval_cs) * 10
            ),
        ));
    }
    out
}

/// Applies the receive checks. `lookup` maps a VRID to the instance configured for it on
/// this socket's interface and family.
pub fn classify<'a>(
    pkt: Received<'_>,
    lookup: impl Fn(u8) -> Option<(usize, RxView<'a>)>,
) -> Outcome {
    let mut via_ah = false;
    let (src, ttl, repr, checksum): (IpAddr, u8, VrrpRepr<'_>, Option<ChecksumMode>) = match pkt {
        Received::V4(bytes) => match wire::decode_ipv4_datagram_with_trailer(bytes) {
            Ok((r, _)) => {
                let v3 = matches!(r.vrrp.version, VrrpVersion::V3 { .. });
                via_ah = r.ip.protocol == crate::ah::IP_PROTO_AH;
                (
                    IpAddr::V4(r.ip.src),
                    r.ip.ttl,
                    r.vrrp,
                    v3.then_some(r.checksum_mode),
                )
            }
            Err(e) => return drop(None, Drop::from_wire(e)),
        },
        Received::V6 {
            payload,
            src,
            dst,
            hop_limit,
        } => match wire::decode_ipv6_payload_with_trailer(payload, src, dst, hop_limit) {
            Ok((r, _)) => (IpAddr::V6(r.src), r.hop_limit, r.vrrp, None),
            Err(e) => return drop(None, Drop::from_wire(e)),
        },
    };
    let Some((idx, view)) = lookup(repr.vrid) else {
        return drop(None, Drop::UnknownVrid);
    };
    // TTL / hop limit 255 proves a multicast advert came from the link (RFC 9568 §7.1).
    // Unicast peers may sit behind a router, and keepalived neither checks it for them nor
    // sends IPv6 unicast adverts with hop limit 255: there the configured peer list (below)
    // is the check, as with keepalived's `check_unicast_src`.
    if view.peers.is_empty() && ttl != 255 {
        return drop_from(idx, Drop::TtlNot255, src);
    }
    if src == view.own {
        return Outcome::Own {
            instance: idx,
            priority: repr.priority,
        };
    }
    if !view.peers.is_empty() && !view.peers.contains(&src) {
        return drop_from(idx, Drop::UnknownPeer, src);
    }
    if let Some(limit) = view.peer_ttl.iter().find(|l| l.peer == src)
        && !(limit.min..=limit.max).contains(&ttl)
    {
        return drop_from(idx, Drop::TtlOutOfRange, src);
    }
    if view.peers.is_empty() && !view.allowed.is_empty() && !view.allowed.contains(&src) {
        return drop_from(idx, Drop::SourceNotAllowed, src);
    }
    let version = match repr.version {
        VrrpVersion::V2 { auth, .. } => {
            if view.version != Version::V2 {
                return drop_from(idx, Drop::VersionMismatch, src);
            }
            let ok = match (view.auth, auth) {
                // AH only inside an AH datagram (verified by the caller).
                (None, Auth::IpAh) if view.ah => via_ah,
                (_, Auth::IpAh) => return drop_from(idx, Drop::AuthAh, src),
                _ if view.ah || via_ah => false,
                (None, Auth::None) => true,
                (Some(ours), Auth::SimpleText(theirs)) => ours == theirs,
                _ => false,
            };
            if !ok {
                return drop_from(idx, Drop::AuthMismatch, src);
            }
            Version::V2
        }
        VrrpVersion::V3 { .. } => {
            if view.version != Version::V3 {
                return drop_from(idx, Drop::VersionMismatch, src);
            }
            Version::V3
        }
    };
    let interval_cs = repr.version.interval_cs();
    let addresses_match =
        repr.addrs.len() == view.vips.len() && view.vips.iter().all(|v| repr.addrs.contains(*v));
    Outcome::Accept(Accepted {
        instance: idx,
        advert: RxAdvert {
            src,
            version,
            priority: repr.priority,
            max_advert_int_cs: interval_cs,
        },
        addresses_match,
        addr_count: repr.addrs.len(),
        checksum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use vipd_wire::{Addrs, ChecksumMode, Ipv4Repr};

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 12);
    const OWN: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 11);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);

    fn datagram(ttl: u8, vrid: u8, version: VrrpVersion, src: Ipv4Addr) -> Vec<u8> {
        let vips = [VIP];
        let repr = VrrpRepr {
            vrid,
            priority: 100,
            version,
            addrs: Addrs::v4(&vips),
        };
        let ip = Ipv4Repr {
            src,
            dst: Ipv4Addr::new(224, 0, 0, 18),
            protocol: 112,
            ttl,
            tos: 0xc0,
            ident: 0,
            dont_frag: false,
            payload_len: 0,
        };
        let mut buf = vec![0u8; wire::ipv4_datagram_len(&repr)];
        wire::encode_ipv4_datagram(&mut buf, &ip, &repr, ChecksumMode::WithPseudoHeader).unwrap();
        buf
    }

    fn view<'a>(peers: &'a [IpAddr], vips: &'a [IpAddr], version: Version) -> RxView<'a> {
        RxView {
            ah: false,
            version,
            auth: None,
            peers,
            peer_ttl: &[],
            allowed: &[],
            own: IpAddr::V4(OWN),
            interval_cs: 100,
            checksum: ChecksumMode::WithPseudoHeader,
            vips,
        }
    }

    const V3: VrrpVersion = VrrpVersion::V3 { max_adver_int: 100 };

    /// IPsec-AH: an AH datagram reaches an `auth_ah` instance (the caller verifies the ICV),
    /// is refused by one without it, and a plain advert is refused by an `auth_ah` one.
    #[test]
    fn ah_adverts_only_for_ah_instances() {
        let v2 = VrrpVersion::V2 {
            auth: Auth::IpAh,
            adver_int: 1,
        };
        let plain = datagram(255, 7, v2, SRC);
        // The VRRP message of that datagram, wrapped in AH.
        let msg = &plain[20..];
        let mut buf = [0u8; 128];
        let key = *b"s3cr3t\0\0";
        let h = crate::ah::AhOut {
            src: SRC,
            dst: Ipv4Addr::new(224, 0, 0, 18),
            id: 1,
            seq: 9,
            unicast: false,
        };
        let n = crate::ah::build_datagram(&mut buf, msg, &h, &key).unwrap();
        let ah = &buf[..n];
        let vips = [IpAddr::V4(VIP)];
        let with_ah = |v: u8| {
            (v == 7).then(|| {
                (
                    0,
                    RxView {
                        ah: true,
                        ..view(&[], &vips, Version::V2)
                    },
                )
            })
        };
        let without = |v: u8| (v == 7).then(|| (0, view(&[], &vips, Version::V2)));
        assert!(matches!(
            classify(Received::V4(ah), with_ah),
            Outcome::Accept(_)
        ));
        assert_eq!(
            classify(Received::V4(ah), without),
            drop_from(0, Drop::AuthAh, IpAddr::V4(SRC))
        );
        // Auth type 2 claimed outside an AH datagram, and an unauthenticated advert.
        assert_eq!(
            classify(Received::V4(&plain), with_ah),
            drop_from(0, Drop::AuthMismatch, IpAddr::V4(SRC))
        );
        let none = datagram(
            255,
            7,
            VrrpVersion::V2 {
                auth: Auth::None,
                adver_int: 1,
            },
            SRC,
        );
        assert_eq!(
            classify(Received::V4(&none), with_ah),
            drop_from(0, Drop::AuthMismatch, IpAddr::V4(SRC))
        );
        assert_eq!(crate::ah::verify(ah, &key, false), Ok(9));
    }

    #[test]
    fn accepts_a_good_advert() {
        let vips = [IpAddr::V4(VIP)];
        let pkt = datagram(255, 7, V3, SRC);
        let out = classify(Received::V4(&pkt), |v| {
            (v == 7).then(|| (3, view(&[], &vips, Version::V3)))
        });
        let Outcome::Accept(a) = out else {
            panic!("{out:?}")
        };
        assert_eq!(a.instance, 3);
        assert_eq!(a.advert.priority, 100);
        assert_eq!(a.advert.max_advert_int_cs, 100);
        assert!(a.addresses_match);
    }

    #[test]
    fn drops_each_reason() {
        let vips = [IpAddr::V4(VIP)];
        let other = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 200))];
        let peers = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 13))];
        let v3 = |v: u8| (v == 7).then(|| (0, view(&[], &vips, Version::V3)));
        let cases: Vec<(Vec<u8>, Outcome)> = vec![
            (
                datagram(254, 7, V3, SRC),
                drop_from(0, Drop::TtlNot255, IpAddr::V4(SRC)),
            ),
            (datagram(255, 8, V3, SRC), drop(None, Drop::UnknownVrid)),
            (
                datagram(
                    255,
                    7,
                    VrrpVersion::V2 {
                        adver_int: 1,
                        auth: Auth::None,
                    },
                    SRC,
                ),
                drop_from(0, Drop::VersionMismatch, IpAddr::V4(SRC)),
            ),
            (
                datagram(255, 7, V3, OWN),
                Outcome::Own {
                    instance: 0,
                    priority: 100,
                },
            ),
        ];
        for (pkt, want) in cases {
            assert_eq!(classify(Received::V4(&pkt), v3), want);
        }
        // Truncated and corrupted.
        let good = datagram(255, 7, V3, SRC);
        assert_eq!(
            classify(Received::V4(&good[..good.len() - 1]), v3),
            drop(None, Drop::Truncated)
        );
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            classify(Received::V4(&bad), v3),
            drop(None, Drop::BadChecksum)
        );
        // Unicast: a stranger.
        let uni = |v: u8| (v == 7).then(|| (0, view(&peers, &vips, Version::V3)));
        assert_eq!(
            classify(Received::V4(&good), uni),
            drop_from(0, Drop::UnknownPeer, IpAddr::V4(SRC))
        );
        // Unicast: a configured peer's advert counts whatever its TTL (a routed peer, or
        // keepalived's IPv6 unicast with hop limit 64); a stranger's still does not.
        let peer = Ipv4Addr::new(10, 99, 0, 13);
        let Outcome::Accept(a) = classify(Received::V4(&datagram(64, 7, V3, peer)), uni) else {
            panic!("a unicast peer's advert with TTL 64 is accepted")
        };
        assert_eq!(a.advert.src, IpAddr::V4(peer));
        assert_eq!(
            classify(Received::V4(&datagram(64, 7, V3, SRC)), uni),
            drop_from(0, Drop::UnknownPeer, IpAddr::V4(SRC))
        );
        // Unicast with per-peer TTL limits: a routed spoofer using the peer's address
        // arrives with a lower TTL and is dropped; the peer itself (on the link, 255) is not.
        let limits = [PeerTtl {
            peer: IpAddr::V4(peer),
            min: 255,
            max: 255,
        }];
        let strict = |v: u8| {
            (v == 7).then(|| {
                (
                    0,
                    RxView {
                        peer_ttl: &limits,
                        ..view(&peers, &vips, Version::V3)
                    },
                )
            })
        };
        for ttl in [1, 64, 254] {
            assert_eq!(
                classify(Received::V4(&datagram(ttl, 7, V3, peer)), strict),
                drop_from(0, Drop::TtlOutOfRange, IpAddr::V4(peer)),
                "TTL {ttl}"
            );
        }
        assert!(matches!(
            classify(Received::V4(&datagram(255, 7, V3, peer)), strict),
            Outcome::Accept(_)
        ));
        // Multicast with an allowlist: another host on the link is dropped, a listed one
        // is accepted; TTL 255 is still required of both.
        let listed = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 13))];
        let allow = |v: u8| {
            (v == 7).then(|| {
                (
                    0,
                    RxView {
                        allowed: &listed,
                        ..view(&[], &vips, Version::V3)
                    },
                )
            })
        };
        assert_eq!(
            classify(Received::V4(&good), allow),
            drop_from(0, Drop::SourceNotAllowed, IpAddr::V4(SRC))
        );
        assert!(matches!(
            classify(Received::V4(&datagram(255, 7, V3, peer)), allow),
            Outcome::Accept(_)
        ));
        assert_eq!(
            classify(Received::V4(&datagram(254, 7, V3, peer)), allow),
            drop_from(0, Drop::TtlNot255, IpAddr::V4(peer))
        );
        // Address list differs: accepted, flagged.
        let diff = |v: u8| (v == 7).then(|| (0, view(&[], &other, Version::V3)));
        let Outcome::Accept(a) = classify(Received::V4(&good), diff) else {
            panic!()
        };
        assert!(!a.addresses_match);
    }

    #[test]
    fn v2_auth() {
        let vips = [IpAddr::V4(VIP)];
        let pass = *b"secret\0\0";
        let with = |auth: Auth| datagram(255, 7, VrrpVersion::V2 { adver_int: 1, auth }, SRC);
        let ours = |v: u8| {
            (v == 7).then(|| {
                (
                    0,
                    RxView {
                        auth: Some(pass),
                        ..view(&[], &vips, Version::V2)
                    },
                )
            })
        };
        let Outcome::Accept(a) = classify(Received::V4(&with(Auth::SimpleText(pass))), ours) else {
            panic!()
        };
        assert_eq!(a.advert.max_advert_int_cs, 100);
        assert_eq!(a.advert.version, Version::V2);
        assert_eq!(
            classify(Received::V4(&with(Auth::SimpleText(*b"wrong\0\0\0"))), ours),
            drop_from(0, Drop::AuthMismatch, IpAddr::V4(SRC))
        );
        assert_eq!(
            classify(Received::V4(&with(Auth::None)), ours),
            drop_from(0, Drop::AuthMismatch, IpAddr::V4(SRC))
        );
        assert_eq!(
            classify(Received::V4(&with(Auth::IpAh)), ours),
            drop_from(0, Drop::AuthAh, IpAddr::V4(SRC))
        );
    }

    /// What an advert says about its sender's configuration: the checksum form, the address
    /// list and the interval against ours; a version or auth drop names its kind.
    #[test]
    fn alarms_from_adverts() {
        let vips = [IpAddr::V4(VIP)];
        let v = view(&[], &vips, Version::V3);
        let pkt = datagram(255, 7, V3, SRC);
        let Outcome::Accept(a) = classify(Received::V4(&pkt), |_| Some((0, v))) else {
            panic!()
        };
        assert!(accepted_alarms(&a, &v).is_empty());
        let compat = RxView {
            checksum: ChecksumMode::WithoutPseudoHeader,
            interval_cs: 50,
            ..v
        };
        let kinds: Vec<AlarmKind> = accepted_alarms(&a, &compat)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kinds, [AlarmKind::ChecksumForm, AlarmKind::AdoptedInterval]);
        let other = [IpAddr::V4(Ipv4Addr::new(10, 99, 0, 200))];
        let v2 = view(&[], &other, Version::V3);
        let Outcome::Accept(b) = classify(Received::V4(&pkt), |_| Some((0, v2))) else {
            panic!()
        };
        assert_eq!(accepted_alarms(&b, &v2)[0].0, AlarmKind::AddressList);
        assert_eq!(
            drop_alarm(Drop::VersionMismatch, Version::V3),
            Some((AlarmKind::VersionMismatch, "VRRPv2, ours VRRPv3".into()))
        );
        assert_eq!(drop_alarm(Drop::TtlNot255, Version::V3), None);
    }
}
