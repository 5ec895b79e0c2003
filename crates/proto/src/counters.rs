//! Counters: adverts sent and received, and every dropped packet by reason.

use std::fmt;

/// Why a received VRRP packet was dropped. One variant per reason, so operators can tell a
/// misconfigured peer (auth, interval, version) from an attack (TTL, stranger) from noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drop {
    /// Shorter than its headers or declared lengths.
    Truncated,
    /// A length field disagrees with the bytes (including a count/length mismatch).
    LengthMismatch,
    /// IP or VRRP version we do not speak.
    BadVersion,
    /// Not an advertisement.
    BadType,
    /// IP header or VRRP checksum does not verify.
    BadChecksum,
    /// Malformed IP header (header length, fragment, protocol).
    BadIpHeader,
    /// TTL / hop limit other than 255 (RFC 9568 §7.1: possibly off-link).
    TtlNot255,
    /// No configured instance has this VRID on this interface and family.
    UnknownVrid,
    /// Unicast mode: the source is not one of the configured peers.
    UnknownPeer,
    /// Multicast mode with `allowed_sources`: the source is not in that list.
    SourceNotAllowed,
    /// Unicast mode: a configured peer's advert outside that peer's `min_ttl`..=`max_ttl`.
    TtlOutOfRange,
    /// The advert's version differs from the instance's.
    VersionMismatch,
    /// VRRPv2 authentication type or password differs from ours.
    AuthMismatch,
    /// VRRPv2 IP Authentication Header (type 2) for an instance without `auth_ah`.
    AuthAh,
    /// `auth_ah`: the ICV does not verify (another password, an altered advert), the SPI is
    /// not the sender, or the header is malformed.
    AhBad,
    /// `auth_ah`: the sequence number is not above the virtual router's counter.
    AhReplay,
    /// VRRPv2 advert interval differs from ours (RFC 3768 §7.1).
    IntervalMismatch,
    /// Address family of the advert does not match the instance.
    FamilyMismatch,
    /// VRRPv3 advert with a zero interval.
    ZeroInterval,
    /// The instance is in Fault or not running and ignores adverts.
    NotListening,
    /// The receive queue was full (the agent could not keep up).
    QueueFull,
    /// `auth_hmac` enforce: no trailer.
    HmacMissing,
    /// `auth_hmac`: a trailer of another kind, or with reserved bits set.
    HmacMalformed,
    /// `auth_hmac`: the trailer names a key we do not have.
    HmacUnknownKey,
    /// `auth_hmac`: the HMAC does not verify (wrong key, or the advert was altered).
    HmacBad,
    /// `auth_hmac`: the sequence's time is outside `time_window` of our clock.
    HmacStale,
    /// `auth_hmac`: the sequence is not after the last one accepted from that sender.
    HmacReplay,
    /// The kernel dropped datagrams because the socket's receive buffer was full
    /// (`SO_RXQ_OVFL`; counted per interface, by how many the kernel reports).
    RcvbufOverflow,
}

impl Drop {
    /// Every reason, in a stable order (for status and metrics).
    pub const ALL: [Drop; 28] = [
        Drop::Truncated,
        Drop::LengthMismatch,
        Drop::BadVersion,
        Drop::BadType,
        Drop::BadChecksum,
        Drop::BadIpHeader,
        Drop::TtlNot255,
        Drop::UnknownVrid,
        Drop::UnknownPeer,
        Drop::SourceNotAllowed,
        Drop::TtlOutOfRange,
        Drop::VersionMismatch,
        Drop::AuthMismatch,
        Drop::AuthAh,
        Drop::AhBad,
        Drop::AhReplay,
        Drop::IntervalMismatch,
        Drop::FamilyMismatch,
        Drop::ZeroInterval,
        Drop::NotListening,
        Drop::QueueFull,
        Drop::HmacMissing,
        Drop::HmacMalformed,
        Drop::HmacUnknownKey,
        Drop::HmacBad,
        Drop::HmacStale,
        Drop::HmacReplay,
        Drop::RcvbufOverflow,
    ];

    /// A stable snake_case name (metrics label, status key).
    pub const fn as_str(self) -> &'static str {
        match self {
            Drop::Truncated => "truncated",
            Drop::LengthMismatch => "length_mismatch",
            Drop::BadVersion => "bad_version",
            Drop::BadType => "bad_type",
            Drop::BadChecksum => "bad_checksum",
            Drop::BadIpHeader => "bad_ip_header",
            Drop::TtlNot255 => "ttl_not_255",
            Drop::UnknownVrid => "unknown_vrid",
            Drop::UnknownPeer => "unknown_peer",
            Drop::SourceNotAllowed => "source_not_allowed",
            Drop::TtlOutOfRange => "ttl_out_of_range",
            Drop::VersionMismatch => "version_mismatch",
            Drop::AuthMismatch => "auth_mismatch",
            Drop::AuthAh => "auth_ah_unsupported",
            Drop::AhBad => "ah_bad",
            Drop::AhReplay => "ah_replay",
            Drop::IntervalMismatch => "interval_mismatch",
            Drop::FamilyMismatch => "family_mismatch",
            Drop::ZeroInterval => "zero_interval",
            Drop::NotListening => "not_listening",
            Drop::QueueFull => "queue_full",
            Drop::HmacMissing => "hmac_missing",
            Drop::HmacMalformed => "hmac_malformed",
            Drop::HmacUnknownKey => "hmac_unknown_key",
            Drop::HmacBad => "hmac_bad",
            Drop::HmacStale => "hmac_stale",
            Drop::HmacReplay => "hmac_replay",
            Drop::RcvbufOverflow => "rcvbuf_overflow",
        }
    }

    /// The drop reason for an `auth_hmac` failure.
    pub fn from_auth(e: crate::auth::AuthFail) -> Drop {
        use crate::auth::AuthFail as A;
        match e {
            A::Missing => Drop::HmacMissing,
            A::Malformed => Drop::HmacMalformed,
            A::UnknownKey(_) => Drop::HmacUnknownKey,
            A::BadHmac => Drop::HmacBad,
            A::Stale { .. } => Drop::HmacStale,
            A::Replay => Drop::HmacReplay,
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// The drop reason for a codec error.
    pub fn from_wire(e: vipd_wire::Error) -> Drop {
        use vipd_wire::Error as E;
        match e {
            E::Truncated => Drop::Truncated,
            E::LengthMismatch | E::CountMismatch => Drop::LengthMismatch,
            E::BadVersion(_) => Drop::BadVersion,
            E::BadType(_) | E::BadCode(_) => Drop::BadType,
            E::BadChecksum => Drop::BadChecksum,
            E::UnsupportedAuthAh => Drop::AuthAh,
            E::BadAuthType(_) => Drop::AuthMismatch,
            E::FamilyMismatch => Drop::FamilyMismatch,
            E::BadHeaderLength
            | E::Fragmented
            | E::BadProtocol(_)
            | E::BadEtherType(_)
            | E::BadHardwareType
            | E::BadProtocolType
            | E::BadOperation(_)
            | E::BadOption
            | E::ValueOutOfRange
            | E::TooManyAddresses
            | E::BufferTooSmall => Drop::BadIpHeader,
        }
    }

    /// The drop reason for a state-machine refusal.
    pub fn from_proto(e: crate::DropReason) -> Drop {
        use crate::DropReason as R;
        match e {
            R::NotRunning | R::Faulted | R::OwnAdvert | R::UnknownInstance(_) => Drop::NotListening,
            R::VersionMismatch => Drop::VersionMismatch,
            R::AddressFamilyMismatch => Drop::FamilyMismatch,
            R::IntervalMismatch { .. } => Drop::IntervalMismatch,
            R::ZeroInterval => Drop::ZeroInterval,
        }
    }
}

impl fmt::Display for Drop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Drop counts by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drops([u64; Drop::ALL.len()]);

/// Serialized as a map from reason name to count (the nonzero ones): names stay stable
/// across versions where positions would not, and a reason this version does not know is
/// ignored.
#[cfg(feature = "serde")]
impl serde::Serialize for Drops {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(None)?;
        for (d, n) in self.nonzero() {
            m.serialize_entry(d.as_str(), &n)?;
        }
        m.end()
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Drops {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        let mut out = Drops::default();
        for (name, n) in m {
            if let Some(r) = Drop::ALL.iter().find(|r| r.as_str() == name)
                && let Some(c) = out.0.get_mut(r.index())
            {
                *c = n;
            }
        }
        Ok(out)
    }
}

impl Drops {
    /// Counts one drop.
    pub fn add(&mut self, reason: Drop) {
        self.add_n(reason, 1);
    }

    /// Counts `n` drops (the kernel reports its own drops as a running total).
    pub fn add_n(&mut self, reason: Drop, n: u64) {
        if let Some(c) = self.0.get_mut(reason.index()) {
            *c = c.saturating_add(n);
        }
    }

    /// The count for one reason.
    pub fn get(&self, reason: Drop) -> u64 {
        self.0.get(reason.index()).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Non-zero reasons with their counts.
    pub fn nonzero(&self) -> impl Iterator<Item = (Drop, u64)> + '_ {
        Drop::ALL
            .iter()
            .map(|d| (*d, self.get(*d)))
            .filter(|(_, n)| *n > 0)
    }
}

/// What the I/O shell counts per instance: packets and frames as they went out, and what the
/// receive policy dropped. What the state machine saw (adverts accepted, priority 0 received,
/// transitions into master) it counts itself, once: [`crate::Stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct Counters {
    /// Advertisements sent (each unicast copy counts).
    pub adverts_sent: u64,
    /// Priority-0 advertisements sent.
    pub priority_zero_sent: u64,
    /// Send errors.
    pub send_errors: u64,
    /// State transitions.
    pub transitions: u64,
    /// Gratuitous ARP / unsolicited NA frames sent.
    pub gratuitous_sent: u64,
    /// VIPs put back after something else removed them while we were master.
    pub vips_restored: u64,
    /// Routes and rules put back after being deleted while master.
    pub routes_restored: u64,
    /// Adverts whose address list differs from ours (processed anyway, RFC 9568 §7.1 "MAY").
    pub address_list_mismatch: u64,
    /// Times the master this node knows of changed (another router, or itself).
    pub master_changes: u64,
    /// Dropped packets by reason.
    pub drops: Drops,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexes_dense() {
        let mut names: Vec<_> = Drop::ALL.iter().map(|d| d.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Drop::ALL.len());
        for (i, d) in Drop::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
        }
    }

    #[test]
    fn counting() {
        let mut d = Drops::default();
        d.add(Drop::TtlNot255);
        d.add(Drop::TtlNot255);
        d.add(Drop::QueueFull);
        assert_eq!(d.get(Drop::TtlNot255), 2);
        assert_eq!(d.total(), 3);
        assert_eq!(d.nonzero().count(), 2);
    }
}
