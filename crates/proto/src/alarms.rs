//! Alarms: what a peer's adverts say about a configuration that disagrees with ours. Each is
//! kept per (kind, peer) with when it began, when it was last seen and how often, logged when
//! it is raised or its detail changes, shown in status and metrics until it clears: the peer
//! sends an advert that conforms, or nothing that matches for a while. Pure: the caller gives
//! `now`; bounded: at most [`MAX_ALARMS`] per instance (the rest are counted).

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What disagrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlarmKind {
    /// The peer speaks another VRRP version on our VRID: each side drops the other's adverts.
    VersionMismatch,
    /// VRRPv2: the peer's advert interval differs from ours (RFC 3768 drops its adverts).
    IntervalMismatch,
    /// VRRPv2: the peer's authentication differs from ours (its adverts are dropped).
    AuthMismatch,
    /// VRRPv3 over IPv4: the peer computes the checksum the other way (with or without the
    /// pseudo-header). vipd accepts both; keepalived and FRR drop the other form, so that
    /// peer most likely drops our adverts.
    ChecksumForm,
    /// The peer's adverts list other virtual addresses than ours.
    AddressList,
    /// The peer's adverts list no address at all (count 0).
    NoAddresses,
    /// Another host sends adverts from our own source address.
    OwnAddress,
    /// VRRPv3: the master's advert interval differs from ours (we adopt it while backup).
    AdoptedInterval,
    /// Another router claims to be the address owner (priority 255) of our VRID.
    OwnerConflict,
}

impl AlarmKind {
    /// Every kind, in a stable order (metrics).
    pub const ALL: [AlarmKind; 9] = [
        AlarmKind::VersionMismatch,
        AlarmKind::IntervalMismatch,
        AlarmKind::AuthMismatch,
        AlarmKind::ChecksumForm,
        AlarmKind::AddressList,
        AlarmKind::NoAddresses,
        AlarmKind::OwnAddress,
        AlarmKind::AdoptedInterval,
        AlarmKind::OwnerConflict,
    ];

    /// A stable snake_case name (status, metrics label, events).
    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmKind::VersionMismatch => "version_mismatch",
            AlarmKind::IntervalMismatch => "interval_mismatch",
            AlarmKind::AuthMismatch => "auth_mismatch",
            AlarmKind::ChecksumForm => "checksum_form",
            AlarmKind::AddressList => "address_list",
            AlarmKind::NoAddresses => "no_addresses",
            AlarmKind::OwnAddress => "own_address",
            AlarmKind::AdoptedInterval => "adopted_interval",
            AlarmKind::OwnerConflict => "owner_conflict",
        }
    }

    /// What an operator should know, as a sentence part ("<peer> <this>").
    pub const fn meaning(self) -> &'static str {
        match self {
            AlarmKind::VersionMismatch => {
                "speaks another VRRP version on this VRID: each side drops the other's adverts"
            }
            AlarmKind::IntervalMismatch => {
                "advertises another interval (VRRPv2 drops adverts whose interval differs)"
            }
            AlarmKind::AuthMismatch => {
                "uses other authentication: its adverts are dropped, it drops ours"
            }
            AlarmKind::ChecksumForm => {
                "computes the VRRPv3 checksum the other way (pseudo-header): keepalived and FRR drop such adverts, so it most likely drops ours"
            }
            AlarmKind::AddressList => "lists other virtual addresses than ours",
            AlarmKind::NoAddresses => "sends adverts that list no virtual address",
            AlarmKind::OwnAddress => "sends adverts from our own source address",
            AlarmKind::AdoptedInterval => {
                "advertises another interval than ours (we use it while backup)"
            }
            AlarmKind::OwnerConflict => {
                "is configured as address owner (priority 255) of our VRID too"
            }
        }
    }

    /// The kind named `s` ([`AlarmKind::as_str`]).
    pub fn parse(s: &str) -> Option<AlarmKind> {
        AlarmKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds that an advert from the same peer without that problem clears.
    const fn cleared_by_conforming_advert(self) -> bool {
        !matches!(self, AlarmKind::OwnAddress | AlarmKind::OwnerConflict)
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One raised alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    /// What disagrees.
    pub kind: AlarmKind,
    /// Who.
    pub peer: IpAddr,
    /// Theirs against ours, for the operator ("VRRPv2, ours VRRPv3").
    pub detail: String,
    /// Raised at.
    pub since: Instant,
    /// Last evidence.
    pub last: Instant,
    /// Pieces of evidence (packets) since it was raised.
    pub count: u64,
}

/// Most alarms kept per instance; more are counted in [`Alarms::overflow`].
pub const MAX_ALARMS: usize = 16;

/// The alarms of one instance.
#[derive(Debug, Clone, Default)]
pub struct Alarms {
    list: Vec<Alarm>,
    overflow: u64,
}

/// What [`Alarms::raise`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raised {
    /// A new alarm (log it).
    New(Alarm),
    /// The same alarm with another detail (log it).
    Changed(Alarm),
    /// Already raised with this detail: counted only.
    Again,
    /// No room: counted in [`Alarms::overflow`].
    Full,
}

impl Alarms {
    /// Evidence of `kind` from `peer`.
    pub fn raise(&mut self, now: Instant, kind: AlarmKind, peer: IpAddr, detail: &str) -> Raised {
        if let Some(a) = self
            .list
            .iter_mut()
            .find(|a| a.kind == kind && a.peer == peer)
        {
            a.last = now;
            a.count = a.count.saturating_add(1);
            if a.detail != detail {
                a.detail = detail.to_owned();
                return Raised::Changed(a.clone());
            }
            return Raised::Again;
        }
        if self.list.len() >= MAX_ALARMS {
            self.overflow = self.overflow.saturating_add(1);
            return Raised::Full;
        }
        let a = Alarm {
            kind,
            peer,
            detail: detail.to_owned(),
            since: now,
            last: now,
            count: 1,
        };
        self.list.push(a.clone());
        Raised::New(a)
    }

    /// `peer` sent an advert without the problems in `still` (the kinds it does show):
    /// its other advert-shape alarms clear. Returns the cleared ones.
    pub fn conforming(&mut self, peer: IpAddr, still: &[AlarmKind]) -> Vec<Alarm> {
        self.take(|a| {
            a.peer == peer && a.kind.cleared_by_conforming_advert() && !still.contains(&a.kind)
        })
    }

    /// Clears every alarm of `kind` (for example an owner conflict that was resolved).
    /// Returns them.
    pub fn clear_kind(&mut self, kind: AlarmKind) -> Vec<Alarm> {
        self.take(|a| a.kind == kind)
    }

    /// Alarms without evidence for `quiet` clear. Returns them.
    pub fn expire(&mut self, now: Instant, quiet: Duration) -> Vec<Alarm> {
        self.take(|a| now.saturating_duration_since(a.last) >= quiet)
    }

    /// Removes the alarms `clear` selects, in order; returns them.
    fn take(&mut self, clear: impl Fn(&Alarm) -> bool) -> Vec<Alarm> {
        let (cleared, kept) = std::mem::take(&mut self.list).into_iter().partition(clear);
        self.list = kept;
        cleared
    }

    /// Puts back an alarm handed over by the previous binary of an upgrade (bounded like
    /// [`Alarms::raise`]; a second one of the same kind and peer is ignored).
    pub fn restore(&mut self, a: Alarm) {
        if self.list.len() >= MAX_ALARMS
            || self
                .list
                .iter()
                .any(|x| x.kind == a.kind && x.peer == a.peer)
        {
            return;
        }
        self.list.push(a);
    }

    /// The raised alarms, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Alarm> {
        self.list.iter()
    }

    /// Evidence that found no room (more than [`MAX_ALARMS`] at once).
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Whether none is raised.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn raised_once_counted_then_cleared_by_a_conforming_advert() {
        let t = Instant::now();
        let mut a = Alarms::default();
        assert!(matches!(
            a.raise(t, AlarmKind::ChecksumForm, ip(2), "x"),
            Raised::New(_)
        ));
        assert_eq!(
            a.raise(t, AlarmKind::ChecksumForm, ip(2), "x"),
            Raised::Again
        );
        assert!(matches!(
            a.raise(t, AlarmKind::ChecksumForm, ip(2), "y"),
            Raised::Changed(_)
        ));
        assert!(matches!(
            a.raise(t, AlarmKind::OwnAddress, ip(2), ""),
            Raised::New(_)
        ));
        assert_eq!(a.iter().next().map(|x| x.count), Some(3));
        // Another peer's conforming advert clears nothing of ip(2).
        assert!(a.conforming(ip(3), &[]).is_empty());
        // Its own clears the advert-shape alarm, not the own-address one.
        let c = a.conforming(ip(2), &[]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, AlarmKind::ChecksumForm);
        assert_eq!(a.iter().count(), 1);
        // Quiet long enough: cleared.
        assert!(
            a.expire(t + Duration::from_secs(1), Duration::from_secs(5))
                .is_empty()
        );
        assert_eq!(
            a.expire(t + Duration::from_secs(5), Duration::from_secs(5))
                .len(),
            1
        );
        assert!(a.is_empty());
    }

    #[test]
    fn bounded_against_a_flood_of_sources() {
        let t = Instant::now();
        let mut a = Alarms::default();
        for i in 0..=255u8 {
            a.raise(t, AlarmKind::AddressList, ip(i), "");
        }
        assert_eq!(a.iter().count(), MAX_ALARMS);
        assert_eq!(a.overflow(), 256 - MAX_ALARMS as u64);
    }
}
