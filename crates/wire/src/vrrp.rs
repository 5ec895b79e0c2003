//! VRRP advertisements: VRRPv3 (RFC 9568, ex 5798) over IPv4/IPv6 and VRRPv2 (RFC 3768) over
//! IPv4.
//!
//! ```text
//! VRRPv3:
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Ver  | Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            IPvX Address(es): Count x 4 or 16 bytes            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! VRRPv2 (IPv4 only):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |              IP Address(es): Count x 4 bytes                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Authentication Data (8 bytes)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Type is always 1 (advertisement). The v3 interval is in centiseconds (12 bits), the v2
//! interval in seconds (8 bits). The address count must account for every byte: a shortfall is
//! [`Error::CountMismatch`], trailing bytes are [`Error::LengthMismatch`].
//!
//! # Checksums
//!
//! - VRRPv2: over the VRRP message only.
//! - VRRPv3 over IPv6: over the IPv6 pseudo-header and the message (RFC 9568 section 5.2.8).
//! - VRRPv3 over IPv4: RFC 9568 specifies the IPv4 pseudo-header too
//!   ([`ChecksumMode::WithPseudoHeader`]); some older implementations omit it and sum the
//!   message alone as VRRPv2 does ([`ChecksumMode::WithoutPseudoHeader`]). A receiver may accept both
//!   ([`ChecksumPolicy::Any`]) and learns which one matched. **keepalived 2.2.7 uses the
//!   pseudo-header by default**: every VRRPv3/IPv4 capture in `tests/data` (multicast and
//!   unicast) verifies only with it.
//!
//! # Addresses without allocation
//!
//! [`Addrs`] is a borrowed list: a parsed advertisement borrows the raw address bytes of the
//! packet; one built for sending borrows a `&[Ipv4Addr]`, `&[Ipv6Addr]` or `&[IpAddr]`. Either
//! way [`Addrs::iter`] yields [`IpAddr`]s, and two lists compare equal when they hold the same
//! family and addresses in the same order.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ipv4::{self, Ipv4Packet, Ipv4Repr};
use super::{
    Error, IP_PROTO_AH, IP_PROTO_VRRP, Result, checksum, get_array, get_u8, get_u16, set_bytes,
    set_u8, set_u16,
};

/// Length of the fixed VRRP header (both versions).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data.
pub const AUTH_LEN: usize = 8;
/// The only VRRP message type: advertisement.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Largest v3 Max Advert Interval (12 bits, centiseconds).
pub const MAX_ADVER_INT_V3: u16 = 0x0fff;
/// Largest number of addresses in one advertisement.
pub const MAX_ADDRS: usize = 255;

/// IPv4 multicast group for VRRP (224.0.0.18).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group for VRRP (ff02::12).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Address family of the addresses an advertisement carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// 4-byte addresses.
    Ipv4,
    /// 16-byte addresses.
    Ipv6,
}

impl Family {
    /// Bytes per address.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }

    /// The family of an address.
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Longest prefix length for the family (32 or 128).
    pub const fn max_prefix_len(self) -> u8 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        }
    }
}

impl core::fmt::Display for Family {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// How a checksum covers the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumMode {
    /// Pseudo-header + message (VRRPv3 over IPv6 always; for VRRPv3 over IPv4 the default of
    /// keepalived and of FRR's `checksum-with-ipv4-pseudoheader`, what the field interoperates
    /// with).
    WithPseudoHeader,
    /// Message only (VRRPv2 always; VRRPv3 over IPv4 as RFC 9568 §5.2.8 defines it, which
    /// peers must be configured for: FRR `no vrrp N checksum-with-ipv4-pseudoheader`,
    /// keepalived 2.2.8+ `v3_checksum_as_v2`).
    WithoutPseudoHeader,
}

impl ChecksumMode {
    /// The configuration-file spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChecksumMode::WithPseudoHeader => "with-pseudo-header",
            ChecksumMode::WithoutPseudoHeader => "without-pseudo-header",
        }
    }
}

impl core::fmt::Display for ChecksumMode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which checksum modes a receiver accepts. Only consulted for VRRPv3 over IPv4; VRRPv2 is
/// always [`ChecksumMode::WithoutPseudoHeader`] and VRRPv3 over IPv6 always
/// [`ChecksumMode::WithPseudoHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumPolicy {
    /// Accept either mode (pseudo-header tried first); the parse reports which matched.
    Any,
    /// Accept only this mode.
    Only(ChecksumMode),
}

/// Source and destination of the enclosing IP header (the pseudo-header input). Its family is
/// the family of the advertisement's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpPair {
    /// IPv4 source and destination.
    V4 {
        /// Source.
        src: Ipv4Addr,
        /// Destination.
        dst: Ipv4Addr,
    },
    /// IPv6 source and destination.
    V6 {
        /// Source.
        src: Ipv6Addr,
        /// Destination.
        dst: Ipv6Addr,
    },
}

impl IpPair {
    /// The family.
    pub const fn family(&self) -> Family {
        match self {
            IpPair::V4 { .. } => Family::Ipv4,
            IpPair::V6 { .. } => Family::Ipv6,
        }
    }

    fn pseudo_header_sum(&self, len: usize) -> u16 {
        match *self {
            IpPair::V4 { src, dst } => checksum::pseudo_header_v4(
                src,
                dst,
                IP_PROTO_VRRP,
                u16::try_from(len).unwrap_or(u16::MAX),
            ),
            IpPair::V6 { src, dst } => checksum::pseudo_header_v6(
                src,
                dst,
                IP_PROTO_VRRP,
                u32::try_from(len).unwrap_or(u32::MAX),
            ),
        }
    }
}

/// VRRPv2 authentication (RFC 2338; RFC 3768 keeps the field for compatibility).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0: no authentication; the data field is zero on send and ignored on receive.
    None,
    /// Type 1: simple text password, 8 bytes NUL-padded.
    SimpleText([u8; 8]),
    /// Type 2: IP Authentication Header. Decoded so a receiver can reject it with a clear
    /// reason ([`Error::UnsupportedAuthAh`]); never verified, emitted with zero data.
    IpAh,
}

impl Auth {
    /// The wire value of the type.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::SimpleText(_) => 1,
            Auth::IpAh => 2,
        }
    }

    /// A type-1 password: up to 8 bytes, NUL-padded. Longer is [`Error::ValueOutOfRange`].
    pub fn simple_text(password: &[u8]) -> Result<Auth> {
        let mut data = [0u8; 8];
        let dst = data
            .get_mut(..password.len())
            .ok_or(Error::ValueOutOfRange)?;
        dst.copy_from_slice(password);
        Ok(Auth::SimpleText(data))
    }

    /// The type-1 password with trailing NULs removed.
    pub fn password(&self) -> Option<&[u8]> {
        match self {
            Auth::SimpleText(data) => {
                let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                data.get(..end)
            }
            _ => None,
        }
    }

    fn data(&self) -> [u8; 8] {
        match self {
            Auth::SimpleText(d) => *d,
            Auth::None | Auth::IpAh => [0; 8],
        }
    }
}

/// Version-specific fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// VRRPv2 (IPv4 only).
    V2 {
        /// Adver Int in seconds.
        adver_int: u8,
        /// Authentication.
        auth: Auth,
    },
    /// VRRPv3.
    V3 {
        /// Max Adver Int in centiseconds (12 bits, at most 4095).
        max_adver_int: u16,
    },
}

impl VrrpVersion {
    /// The version number on the wire (2 or 3).
    pub const fn number(&self) -> u8 {
        match self {
            VrrpVersion::V2 { .. } => 2,
            VrrpVersion::V3 { .. } => 3,
        }
    }

    /// The advertisement interval in centiseconds (VRRPv2's seconds x 100).
    pub const fn interval_cs(&self) -> u16 {
        match *self {
            VrrpVersion::V2 { adver_int, .. } => adver_int as u16 * 100,
            VrrpVersion::V3 { max_adver_int } => max_adver_int,
        }
    }
}

// ---- Addrs ---------------------------------------------------------------------------------

/// A borrowed list of same-family addresses (see the module docs).
#[derive(Clone, Copy)]
pub struct Addrs<'a>(AddrsInner<'a>);

#[derive(Clone, Copy)]
enum AddrsInner<'a> {
    Raw { family: Family, bytes: &'a [u8] },
    V4(&'a [Ipv4Addr]),
    V6(&'a [Ipv6Addr]),
    Ip { family: Family, addrs: &'a [IpAddr] },
}

impl<'a> Addrs<'a> {
    /// IPv4 addresses.
    pub const fn v4(addrs: &'a [Ipv4Addr]) -> Self {
        Addrs(AddrsInner::V4(addrs))
    }

    /// IPv6 addresses.
    pub const fn v6(addrs: &'a [Ipv6Addr]) -> Self {
        Addrs(AddrsInner::V6(addrs))
    }

    /// Addresses of the given family; any address of the other family is
    /// [`Error::FamilyMismatch`].
    pub fn ip(family: Family, addrs: &'a [IpAddr]) -> Result<Self> {
        if addrs.iter().any(|a| Family::of(a) != family) {
            return Err(Error::FamilyMismatch);
        }
        Ok(Addrs(AddrsInner::Ip { family, addrs }))
    }

    /// Raw wire bytes (4 or 16 per address). A length that is not a multiple of the address
    /// size is [`Error::LengthMismatch`].
    pub fn from_raw(family: Family, bytes: &'a [u8]) -> Result<Self> {
        if !bytes.len().is_multiple_of(family.addr_len()) {
            return Err(Error::LengthMismatch);
        }
        Ok(Addrs(AddrsInner::Raw { family, bytes }))
    }

    /// The family.
    pub const fn family(&self) -> Family {
        match self.0 {
            AddrsInner::Raw { family, .. } | AddrsInner::Ip { family, .. } => family,
            AddrsInner::V4(_) => Family::Ipv4,
            AddrsInner::V6(_) => Family::Ipv6,
        }
    }

    /// Number of addresses.
    pub const fn len(&self) -> usize {
        match self.0 {
            AddrsInner::Raw { family, bytes } => bytes.len() / family.addr_len(),
            AddrsInner::V4(a) => a.len(),
            AddrsInner::V6(a) => a.len(),
            AddrsInner::Ip { addrs, .. } => addrs.len(),
        }
    }

    /// Whether the list is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw wire bytes, when the list was parsed from (or built over) them.
    pub const fn raw_bytes(&self) -> Option<&'a [u8]> {
        match self.0 {
            AddrsInner::Raw { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    /// The addresses, in wire order.
    pub fn iter(&self) -> AddrIter<'a> {
        AddrIter(match self.0 {
            AddrsInner::Raw { family, bytes } => IterInner::Raw {
                family,
                chunks: bytes.chunks_exact(family.addr_len()),
            },
            AddrsInner::V4(a) => IterInner::V4(a.iter()),
            AddrsInner::V6(a) => IterInner::V6(a.iter()),
            AddrsInner::Ip { addrs, .. } => IterInner::Ip(addrs.iter()),
        })
    }

    /// Whether `addr` is in the list.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.iter().any(|a| a == addr)
    }
}

impl<'a> IntoIterator for Addrs<'a> {
    type Item = IpAddr;
    type IntoIter = AddrIter<'a>;
    fn into_iter(self) -> AddrIter<'a> {
        self.iter()
    }
}

impl PartialEq for Addrs<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.family() == other.family() && self.iter().eq(other.iter())
    }
}

impl Eq for Addrs<'_> {}

impl fmt::Debug for Addrs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`Addrs`].
#[derive(Debug, Clone)]
pub struct AddrIter<'a>(IterInner<'a>);

#[derive(Debug, Clone)]
enum IterInner<'a> {
    Raw {
        family: Family,
        chunks: core::slice::ChunksExact<'a, u8>,
    },
    V4(core::slice::Iter<'a, Ipv4Addr>),
    V6(core::slice::Iter<'a, Ipv6Addr>),
    Ip(core::slice::Iter<'a, IpAddr>),
}

impl Iterator for AddrIter<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        match &mut self.0 {
            IterInner::Raw { family, chunks } => {
                let c = chunks.next()?;
                match family {
                    Family::Ipv4 => c.first_chunk::<4>().map(|b| IpAddr::from(*b)),
                    Family::Ipv6 => c.first_chunk::<16>().map(|b| IpAddr::from(*b)),
                }
            }
            IterInner::V4(it) => it.next().map(|a| IpAddr::V4(*a)),
            IterInner::V6(it) => it.next().map(|a| IpAddr::V6(*a)),
            IterInner::Ip(it) => it.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterInner::Raw { chunks, .. } => chunks.size_hint(),
            IterInner::V4(it) => it.size_hint(),
            IterInner::V6(it) => it.size_hint(),
            IterInner::Ip(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for AddrIter<'_> {}

// ---- Packet --------------------------------------------------------------------------------

/// A view of a VRRP message (the IP payload). The family is stated by the caller since the
/// message does not carry it.
#[derive(Debug, Clone)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T, family: Family) -> Self {
        VrrpPacket { buffer, family }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T, family: Family) -> Result<Self> {
        let p = VrrpPacket { buffer, family };
        p.check_len()?;
        Ok(p)
    }

    /// Checks the version (2 or 3; 2 only over IPv4) and that header, `count` addresses and
    /// (v2) authentication data account for exactly the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let auth_len = match (self.version(), self.family) {
            (3, _) => 0,
            (2, Family::Ipv4) => AUTH_LEN,
            (2, Family::Ipv6) => return Err(Error::FamilyMismatch),
            (v, _) => return Err(Error::BadVersion(v)),
        };
        if len < HEADER_LEN + auth_len {
            return Err(Error::Truncated);
        }
        let expected =
            HEADER_LEN + usize::from(self.addr_count()) * self.family.addr_len() + auth_len;
        if len < expected {
            Err(Error::CountMismatch)
        } else if len > expected {
            Err(Error::LengthMismatch)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The family stated at construction.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// Version (2 or 3).
    pub fn version(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0) >> 4
    }

    /// Type (1 = advertisement).
    pub fn msg_type(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0) & 0x0f
    }

    /// Virtual Router ID.
    pub fn vrid(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 1)
    }

    /// Priority.
    pub fn priority(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 2)
    }

    /// Count of addresses.
    pub fn addr_count(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 3)
    }

    /// v2: Auth Type.
    pub fn auth_type(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 4)
    }

    /// v2: Adver Int (seconds).
    pub fn adver_int(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 5)
    }

    /// v3: the 4 reserved bits.
    pub fn reserved(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 4) >> 4
    }

    /// v3: Max Adver Int (centiseconds, 12 bits).
    pub fn max_adver_int(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4) & MAX_ADVER_INT_V3
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// v2: the 8 bytes of authentication data (after the addresses).
    pub fn auth_data(&self) -> [u8; 8] {
        let at = HEADER_LEN + usize::from(self.addr_count()) * self.family.addr_len();
        get_array(self.buffer.as_ref(), at)
    }

    /// Whether the checksum verifies in `mode` (the whole buffer is the message).
    pub fn verify_checksum(&self, ip: &IpPair, mode: ChecksumMode) -> bool {
        let msg = self.buffer.as_ref();
        let body = checksum::data(msg);
        let sum = match mode {
            ChecksumMode::WithoutPseudoHeader => body,
            ChecksumMode::WithPseudoHeader => {
                checksum::combine(&[ip.pseudo_header_sum(msg.len()), body])
            }
        };
        checksum::is_valid(sum)
    }

    /// The checksum mode that verifies under `policy` (see [`ChecksumPolicy`] for the fixed
    /// modes of v2 and IPv6), or `None`.
    pub fn verify_checksum_any(&self, ip: &IpPair, policy: ChecksumPolicy) -> Option<ChecksumMode> {
        let candidates: &[ChecksumMode] = match (self.version(), ip.family(), policy) {
            (2, _, _) => &[ChecksumMode::WithoutPseudoHeader],
            (_, Family::Ipv6, _) => &[ChecksumMode::WithPseudoHeader],
            (_, Family::Ipv4, ChecksumPolicy::Any) => &[
                ChecksumMode::WithPseudoHeader,
                ChecksumMode::WithoutPseudoHeader,
            ],
            (_, Family::Ipv4, ChecksumPolicy::Only(ChecksumMode::WithPseudoHeader)) => {
                &[ChecksumMode::WithPseudoHeader]
            }
            (_, Family::Ipv4, ChecksumPolicy::Only(ChecksumMode::WithoutPseudoHeader)) => {
                &[ChecksumMode::WithoutPseudoHeader]
            }
        };
        candidates
            .iter()
            .copied()
            .find(|&m| self.verify_checksum(ip, m))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VrrpPacket<&'a T> {
    /// The raw address bytes (`count` x 4 or 16), clamped to the buffer.
    pub fn addr_bytes(&self) -> &'a [u8] {
        let buf = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(self.addr_count()) * self.family.addr_len();
        buf.get(HEADER_LEN..end.min(buf.len())).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    /// Sets version and type.
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        set_u8(self.buffer.as_mut(), 0, (version << 4) | (msg_type & 0x0f));
    }

    /// Sets the Virtual Router ID.
    pub fn set_vrid(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 1, v);
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 2, v);
    }

    /// Sets the address count.
    pub fn set_addr_count(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), 3, v);
    }

    /// v2: sets Auth Type and Adver Int.
    pub fn set_auth_type_adver_int(&mut self, auth_type: u8, adver_int: u8) {
        set_u8(self.buffer.as_mut(), 4, auth_type);
        set_u8(self.buffer.as_mut(), 5, adver_int);
    }

    /// v3: sets zero reserved bits and Max Adver Int (masked to 12 bits).
    pub fn set_max_adver_int(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v & MAX_ADVER_INT_V3);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }

    /// Computes and stores the checksum over the whole buffer in `mode`.
    pub fn fill_checksum(&mut self, ip: &IpPair, mode: ChecksumMode) {
        self.set_checksum(0);
        let msg = self.buffer.as_ref();
        let body = checksum::data(msg);
        let sum = match mode {
            ChecksumMode::WithoutPseudoHeader => body,
            ChecksumMode::WithPseudoHeader => {
                checksum::combine(&[ip.pseudo_header_sum(msg.len()), body])
            }
        };
        self.set_checksum(checksum::finish(sum));
    }
}

// ---- Repr ----------------------------------------------------------------------------------

/// A VRRP advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpRepr<'a> {
    /// Virtual Router ID.
    pub vrid: u8,
    /// Priority (0 = master stopping, 255 = address owner).
    pub priority: u8,
    /// Version-specific fields.
    pub version: VrrpVersion,
    /// The virtual addresses; their family is the advertisement's family.
    pub addrs: Addrs<'a>,
}

impl<'a> VrrpRepr<'a> {
    /// Parses a message: the version and lengths ([`VrrpPacket::check_len`]), type 1, the
    /// checksum under `policy`, and (v2) the auth type. Returns the advertisement and the
    /// checksum mode that matched. `ip.family()` must be the packet's family.
    ///
    /// VRRPv3 reserved bits are ignored; VRRPv2 type-0 auth data is ignored.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &VrrpPacket<&'a T>,
        ip: &IpPair,
        policy: ChecksumPolicy,
    ) -> Result<(VrrpRepr<'a>, ChecksumMode)> {
        if ip.family() != packet.family {
            return Err(Error::FamilyMismatch);
        }
        packet.check_len()?;
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::BadType(packet.msg_type()));
        }
        let mode = packet
            .verify_checksum_any(ip, policy)
            .ok_or(Error::BadChecksum)?;
        Ok((Self::fields(packet)?, mode))
    }

    /// The fields of a length- and type-checked packet whose checksum the caller verified.
    fn fields<T: AsRef<[u8]> + ?Sized>(packet: &VrrpPacket<&'a T>) -> Result<VrrpRepr<'a>> {
        let version = if packet.version() == 2 {
            let auth = match packet.auth_type() {
                0 => Auth::None,
                1 => Auth::SimpleText(packet.auth_data()),
                2 => Auth::IpAh,
                t => return Err(Error::BadAuthType(t)),
            };
            VrrpVersion::V2 {
                adver_int: packet.adver_int(),
                auth,
            }
        } else {
            VrrpVersion::V3 {
                max_adver_int: packet.max_adver_int(),
            }
        };
        let addrs = Addrs::from_raw(packet.family, packet.addr_bytes())?;
        Ok(VrrpRepr {
            vrid: packet.vrid(),
            priority: packet.priority(),
            version,
            addrs,
        })
    }

    /// The advertisement's family.
    pub const fn family(&self) -> Family {
        self.addrs.family()
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        let auth = match self.version {
            VrrpVersion::V2 { .. } => AUTH_LEN,
            VrrpVersion::V3 { .. } => 0,
        };
        HEADER_LEN + self.addrs.len() * self.addrs.family().addr_len() + auth
    }

    /// Writes the advertisement into the first [`buffer_len`](Self::buffer_len) bytes of
    /// `packet` and fills in the checksum. `mode` only matters for VRRPv3 over IPv4 (v2 is
    /// always without, v3/IPv6 always with the pseudo-header). With the IPv6 pseudo-header the
    /// source must be the one the kernel will use (or let the kernel checksum with
    /// `IPV6_CHECKSUM` at offset 6).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut VrrpPacket<T>,
        ip: &IpPair,
        mode: ChecksumMode,
    ) -> Result<()> {
        let family = self.family();
        if ip.family() != family || packet.family != family {
            return Err(Error::FamilyMismatch);
        }
        let count = u8::try_from(self.addrs.len()).map_err(|_| Error::TooManyAddresses)?;
        let len = self.buffer_len();
        let mode = match (self.version, family) {
            (VrrpVersion::V2 { .. }, Family::Ipv6) => return Err(Error::FamilyMismatch),
            (VrrpVersion::V2 { .. }, Family::Ipv4) => ChecksumMode::WithoutPseudoHeader,
            (VrrpVersion::V3 { max_adver_int }, _) if max_adver_int > MAX_ADVER_INT_V3 => {
                return Err(Error::ValueOutOfRange);
            }
            (VrrpVersion::V3 { .. }, Family::Ipv6) => ChecksumMode::WithPseudoHeader,
            (VrrpVersion::V3 { .. }, Family::Ipv4) => mode,
        };
        let buf = packet
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)?;
        let mut out = VrrpPacket::new_unchecked(buf, family);
        out.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        out.set_vrid(self.vrid);
        out.set_priority(self.priority);
        out.set_addr_count(count);
        let alen = family.addr_len();
        let mut at = HEADER_LEN;
        for a in self.addrs.iter() {
            match a {
                IpAddr::V4(a) => set_bytes(out.buffer, at, &a.octets()),
                IpAddr::V6(a) => set_bytes(out.buffer, at, &a.octets()),
            }
            at += alen;
        }
        match self.version {
            VrrpVersion::V2 { adver_int, auth } => {
                out.set_auth_type_adver_int(auth.auth_type(), adver_int);
                set_bytes(out.buffer, at, &auth.data());
            }
            VrrpVersion::V3 { max_adver_int } => out.set_max_adver_int(max_adver_int),
        }
        out.fill_checksum(ip, mode);
        Ok(())
    }
}

// ---- receive / send helpers ----------------------------------------------------------------

/// A VRRP advertisement received on a raw IPv4 socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedV4<'a> {
    /// The IPv4 header fields (src, dst, ttl, ...). TTL policy is the caller's.
    pub ip: Ipv4Repr,
    /// The advertisement.
    pub vrrp: VrrpRepr<'a>,
    /// Which checksum mode matched.
    pub checksum_mode: ChecksumMode,
}

/// Decodes a datagram as a raw IPv4 socket returns it (IPv4 header included): the IPv4 header
/// ([`Ipv4Repr::parse`]: checksum, no fragments), protocol 112 (protocol 51 is
/// [`Error::UnsupportedAuthAh`]), then the VRRP message accepting either checksum mode.
pub fn decode_ipv4_datagram(bytes: &[u8]) -> Result<ReceivedV4<'_>> {
    match decode_ipv4_datagram_with_trailer(bytes)? {
        (r, None) => Ok(r),
        // Bytes after the message: a length the header does not declare.
        (_, Some(_)) => Err(Error::LengthMismatch),
    }
}

/// A VRRPv3 advertisement received on a raw IPv6 socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedV6<'a> {
    /// Source (from the socket's peer address).
    pub src: Ipv6Addr,
    /// Destination (from `IPV6_PKTINFO`).
    pub dst: Ipv6Addr,
    /// Hop limit (from `IPV6_HOPLIMIT`); policy is the caller's.
    pub hop_limit: u8,
    /// The advertisement.
    pub vrrp: VrrpRepr<'a>,
}

/// Decodes a VRRP message as a raw IPv6 socket returns it (no IPv6 header: `src`, `dst` and
/// `hop_limit` come from the socket's ancillary data). The checksum always includes the IPv6
/// pseudo-header.
pub fn decode_ipv6_payload(
    bytes: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
) -> Result<ReceivedV6<'_>> {
    let packet = VrrpPacket::new_checked(bytes, Family::Ipv6)?;
    let (vrrp, _) = VrrpRepr::parse(&packet, &IpPair::V6 { src, dst }, ChecksumPolicy::Any)?;
    Ok(ReceivedV6 {
        src,
        dst,
        hop_limit,
        vrrp,
    })
}

/// Length of a VRRP IPsec Authentication Header with a 96-bit ICV.
pub const AH_HEADER_LEN: usize = 24;

/// Like [`decode_ipv4_datagram`], for a datagram that may carry an `auth_hmac` trailer after
/// the message ([`crate::auth`]: told by length). The VRRP checksum covers the message only
/// (as keepalived computes it), so the message decodes as without a trailer.
pub fn decode_ipv4_datagram_with_trailer(bytes: &[u8]) -> Result<(ReceivedV4<'_>, Option<&[u8]>)> {
    let packet = Ipv4Packet::new_checked(bytes)?;
    let ip = Ipv4Repr::parse(&packet)?;
    let (msg, trailer) = match ip.protocol {
        IP_PROTO_VRRP => crate::auth::split_trailer(packet.payload(), Family::Ipv4),
        // VRRPv2 with an IPsec Authentication Header: 24 bytes (next header VRRP, a 96-bit
        // ICV) before the message; verifying it is the caller's (it needs the key).
        IP_PROTO_AH => {
            let p = packet.payload();
            match (p.first(), p.get(1), p.get(AH_HEADER_LEN..)) {
                (Some(&IP_PROTO_VRRP), Some(&4), Some(msg)) => (msg, None),
                _ => return Err(Error::UnsupportedAuthAh),
            }
        }
        p => return Err(Error::BadProtocol(p)),
    };
    let vrrp = VrrpPacket::new_checked(msg, Family::Ipv4)?;
    let pair = IpPair::V4 {
        src: ip.src,
        dst: ip.dst,
    };
    let (vrrp, checksum_mode) = VrrpRepr::parse(&vrrp, &pair, ChecksumPolicy::Any)?;
    Ok((
        ReceivedV4 {
            ip,
            vrrp,
            checksum_mode,
        },
        trailer,
    ))
}

/// Like [`decode_ipv6_payload`], for a payload that may carry an `auth_hmac` trailer: the
/// checksum then covers the message and the trailer (with the IPv6 pseudo-header over the
/// whole payload, what the kernel computes with IPV6_CHECKSUM).
pub fn decode_ipv6_payload_with_trailer(
    bytes: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
) -> Result<(ReceivedV6<'_>, Option<&[u8]>)> {
    let (msg, trailer) = crate::auth::split_trailer(bytes, Family::Ipv6);
    let Some(trailer) = trailer else {
        return decode_ipv6_payload(bytes, src, dst, hop_limit).map(|r| (r, None));
    };
    let packet = VrrpPacket::new_checked(msg, Family::Ipv6)?;
    packet.check_len()?;
    if packet.msg_type() != TYPE_ADVERTISEMENT {
        return Err(Error::BadType(packet.msg_type()));
    }
    if !ipv6_checksum_valid(bytes, src, dst) {
        return Err(Error::BadChecksum);
    }
    let vrrp = VrrpRepr::fields(&packet)?;
    Ok((
        ReceivedV6 {
            src,
            dst,
            hop_limit,
            vrrp,
        },
        Some(trailer),
    ))
}

/// Whether the checksum at offset 6 of `payload` (message and trailer) verifies with the IPv6
/// pseudo-header.
fn ipv6_checksum_valid(payload: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> bool {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    checksum::is_valid(checksum::combine(&[
        checksum::pseudo_header_v6(src, dst, IP_PROTO_VRRP, len),
        checksum::data(payload),
    ]))
}

/// Writes the IPv6 checksum of `payload` (message and `auth_hmac` trailer, the pseudo-header
/// over all of it) into its checksum field.
pub fn fill_ipv6_checksum(payload: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| Error::ValueOutOfRange)?;
    let field = payload.get_mut(6..8).ok_or(Error::Truncated)?;
    field.copy_from_slice(&[0, 0]);
    let sum = checksum::combine(&[
        checksum::pseudo_header_v6(src, dst, IP_PROTO_VRRP, len),
        checksum::data(payload),
    ]);
    let value = checksum::finish(sum).to_be_bytes();
    payload
        .get_mut(6..8)
        .ok_or(Error::Truncated)?
        .copy_from_slice(&value);
    Ok(())
}

/// Length of the datagram [`encode_ipv4_datagram`] writes.
pub const fn ipv4_datagram_len(vrrp: &VrrpRepr<'_>) -> usize {
    ipv4::HEADER_LEN + vrrp.buffer_len()
}

/// Writes a full IPv4 datagram (20-byte header + advertisement) for an `IP_HDRINCL` socket and
/// returns its length. `ip` gives src, dst, ttl, tos, ident and DF; its `protocol` and
/// `payload_len` are ignored (112 and the advertisement's length are written).
pub fn encode_ipv4_datagram(
    buf: &mut [u8],
    ip: &Ipv4Repr,
    vrrp: &VrrpRepr<'_>,
    mode: ChecksumMode,
) -> Result<usize> {
    let total = ipv4_datagram_len(vrrp);
    let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    let header = Ipv4Repr {
        protocol: IP_PROTO_VRRP,
        payload_len: vrrp.buffer_len(),
        ..*ip
    };
    let (hdr, payload) = buf.split_at_mut(ipv4::HEADER_LEN);
    header.emit(&mut Ipv4Packet::new_unchecked(hdr))?;
    let pair = IpPair::V4 {
        src: ip.src,
        dst: ip.dst,
    };
    vrrp.emit(
        &mut VrrpPacket::new_unchecked(payload, Family::Ipv4),
        &pair,
        mode,
    )?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 11);

    fn pair4() -> IpPair {
        IpPair::V4 {
            src: SRC4,
            dst: MCAST_V4,
        }
    }

    // keepalived 2.2.7, VRRPv3/IPv4 vrid 31 prio 150, 100 cs, vip 10.99.0.131.
    static V3_V4: [u8; 12] = [
        0x31, 0x1f, 0x96, 0x01, 0x00, 0x64, 0x42, 0x98, 0x0a, 0x63, 0x00, 0x83,
    ];
    // keepalived 2.2.7, VRRPv2 vrid 21 prio 150, 1 s, auth "lab-pass", vip 10.99.0.121.
    static V2_PASS: [u8; 20] = [
        0x21, 0x15, 0x96, 0x01, 0x01, 0x01, 0x8a, 0xa8, 0x0a, 0x63, 0x00, 0x79, b'l', b'a', b'b',
        b'-', b'p', b'a', b's', b's',
    ];

    #[test]
    fn parse_v3_v4() {
        let p = VrrpPacket::new_checked(&V3_V4[..], Family::Ipv4).unwrap();
        assert_eq!(p.version(), 3);
        assert_eq!(p.max_adver_int(), 100);
        assert_eq!(p.checksum(), 0x4298);
        let (r, mode) = VrrpRepr::parse(&p, &pair4(), ChecksumPolicy::Any).unwrap();
        assert_eq!(mode, ChecksumMode::WithPseudoHeader);
        assert_eq!(r.vrid, 31);
        assert_eq!(r.priority, 150);
        assert_eq!(r.version, VrrpVersion::V3 { max_adver_int: 100 });
        let vip = [Ipv4Addr::new(10, 99, 0, 131)];
        assert_eq!(r.addrs, Addrs::v4(&vip));
        assert_eq!(
            VrrpRepr::parse(
                &p,
                &pair4(),
                ChecksumPolicy::Only(ChecksumMode::WithoutPseudoHeader)
            ),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn emit_v3_v4_both_modes() {
        let vip = [Ipv4Addr::new(10, 99, 0, 131)];
        let r = VrrpRepr {
            vrid: 31,
            priority: 150,
            version: VrrpVersion::V3 { max_adver_int: 100 },
            addrs: Addrs::v4(&vip),
        };
        assert_eq!(r.buffer_len(), 12);
        let mut out = [0u8; 12];
        let mut p = VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4);
        r.emit(&mut p, &pair4(), ChecksumMode::WithPseudoHeader)
            .unwrap();
        assert_eq!(out, V3_V4);

        let mut p = VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4);
        r.emit(&mut p, &pair4(), ChecksumMode::WithoutPseudoHeader)
            .unwrap();
        let p = VrrpPacket::new_checked(&out[..], Family::Ipv4).unwrap();
        assert_eq!(
            p.verify_checksum_any(&pair4(), ChecksumPolicy::Any),
            Some(ChecksumMode::WithoutPseudoHeader)
        );
    }

    #[test]
    fn v2_password() {
        let p = VrrpPacket::new_checked(&V2_PASS[..], Family::Ipv4).unwrap();
        let (r, mode) = VrrpRepr::parse(&p, &pair4(), ChecksumPolicy::Any).unwrap();
        assert_eq!(mode, ChecksumMode::WithoutPseudoHeader);
        let auth = Auth::simple_text(b"lab-pass").unwrap();
        assert_eq!(r.version, VrrpVersion::V2 { adver_int: 1, auth });
        assert_eq!(auth.password(), Some(&b"lab-pass"[..]));
        let mut out = [0u8; 20];
        r.emit(
            &mut VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4),
            &pair4(),
            ChecksumMode::WithPseudoHeader, // ignored for v2
        )
        .unwrap();
        assert_eq!(out, V2_PASS);
    }

    #[test]
    fn auth_types() {
        assert_eq!(Auth::simple_text(b"123456789"), Err(Error::ValueOutOfRange));
        assert_eq!(
            Auth::simple_text(b"ab").unwrap().password(),
            Some(&b"ab"[..])
        );
        let mut out = V2_PASS;
        out[4] = 3;
        let mut q = VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4);
        q.fill_checksum(&pair4(), ChecksumMode::WithoutPseudoHeader);
        let p = VrrpPacket::new_checked(&out[..], Family::Ipv4).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &pair4(), ChecksumPolicy::Any),
            Err(Error::BadAuthType(3))
        );
        out[4] = 2;
        let mut q = VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4);
        q.fill_checksum(&pair4(), ChecksumMode::WithoutPseudoHeader);
        let p = VrrpPacket::new_checked(&out[..], Family::Ipv4).unwrap();
        let (r, _) = VrrpRepr::parse(&p, &pair4(), ChecksumPolicy::Any).unwrap();
        assert!(matches!(
            r.version,
            VrrpVersion::V2 {
                auth: Auth::IpAh,
                ..
            }
        ));
    }

    #[test]
    fn length_errors() {
        assert_eq!(
            VrrpPacket::new_checked(&V3_V4[..7], Family::Ipv4).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            VrrpPacket::new_checked(&V3_V4[..11], Family::Ipv4).err(),
            Some(Error::CountMismatch)
        );
        let mut long = [0u8; 13];
        long[..12].copy_from_slice(&V3_V4);
        assert_eq!(
            VrrpPacket::new_checked(&long[..], Family::Ipv4).err(),
            Some(Error::LengthMismatch)
        );
        assert_eq!(
            VrrpPacket::new_checked(&V3_V4[..], Family::Ipv6).err(),
            Some(Error::CountMismatch)
        );
        assert_eq!(
            VrrpPacket::new_checked(&V2_PASS[..], Family::Ipv6).err(),
            Some(Error::FamilyMismatch)
        );
        assert_eq!(
            VrrpPacket::new_checked(&V2_PASS[..19], Family::Ipv4).err(),
            Some(Error::CountMismatch)
        );
        let mut b = V3_V4;
        b[0] = 0x41;
        assert_eq!(
            VrrpPacket::new_checked(&b[..], Family::Ipv4).err(),
            Some(Error::BadVersion(4))
        );
        let mut b = V3_V4;
        b[0] = 0x32;
        let p = VrrpPacket::new_checked(&b[..], Family::Ipv4).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, &pair4(), ChecksumPolicy::Any),
            Err(Error::BadType(2))
        );
    }

    #[test]
    fn emit_errors() {
        let vip = [Ipv4Addr::new(10, 0, 0, 1)];
        let mut r = VrrpRepr {
            vrid: 1,
            priority: 100,
            version: VrrpVersion::V3 {
                max_adver_int: 4096,
            },
            addrs: Addrs::v4(&vip),
        };
        let mut out = [0u8; 64];
        let mut p = VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4);
        assert_eq!(
            r.emit(&mut p, &pair4(), ChecksumMode::WithPseudoHeader),
            Err(Error::ValueOutOfRange)
        );
        r.version = VrrpVersion::V3 { max_adver_int: 100 };
        let mut short = [0u8; 11];
        let mut p = VrrpPacket::new_unchecked(&mut short[..], Family::Ipv4);
        assert_eq!(
            r.emit(&mut p, &pair4(), ChecksumMode::WithPseudoHeader),
            Err(Error::BufferTooSmall)
        );
        let pair6 = IpPair::V6 {
            src: Ipv6Addr::LOCALHOST,
            dst: MCAST_V6,
        };
        let mut p = VrrpPacket::new_unchecked(&mut out[..], Family::Ipv4);
        assert_eq!(
            r.emit(&mut p, &pair6, ChecksumMode::WithPseudoHeader),
            Err(Error::FamilyMismatch)
        );
        let many = [Ipv4Addr::UNSPECIFIED; 256];
        r.addrs = Addrs::v4(&many);
        let mut big = [0u8; 2048];
        let mut p = VrrpPacket::new_unchecked(&mut big[..], Family::Ipv4);
        assert_eq!(
            r.emit(&mut p, &pair4(), ChecksumMode::WithPseudoHeader),
            Err(Error::TooManyAddresses)
        );
        let mixed = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        assert_eq!(
            Addrs::ip(Family::Ipv4, &mixed).err(),
            Some(Error::FamilyMismatch)
        );
    }

    #[test]
    fn addrs_equality_across_representations() {
        let v4 = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        let ip = [IpAddr::V4(v4[0]), IpAddr::V4(v4[1])];
        let raw = [10, 0, 0, 1, 10, 0, 0, 2];
        let a = Addrs::v4(&v4);
        assert_eq!(a, Addrs::ip(Family::Ipv4, &ip).unwrap());
        assert_eq!(a, Addrs::from_raw(Family::Ipv4, &raw).unwrap());
        assert_ne!(a, Addrs::v4(&v4[..1]));
        assert_eq!(a.len(), 2);
        assert!(a.contains(IpAddr::V4(v4[1])));
        assert_eq!(
            Addrs::from_raw(Family::Ipv6, &raw).err(),
            Some(Error::LengthMismatch)
        );
        assert_eq!(Addrs::v6(&[]), Addrs::from_raw(Family::Ipv6, &[]).unwrap());
        assert_ne!(Addrs::v6(&[]), Addrs::v4(&[]));
        assert_eq!(format!("{a:?}"), "[10.0.0.1, 10.0.0.2]");
    }

    #[test]
    fn datagram_helpers_roundtrip() {
        let vip = [Ipv4Addr::new(10, 99, 0, 131)];
        let vrrp = VrrpRepr {
            vrid: 31,
            priority: 150,
            version: VrrpVersion::V3 { max_adver_int: 100 },
            addrs: Addrs::v4(&vip),
        };
        let ip = Ipv4Repr {
            src: SRC4,
            dst: MCAST_V4,
            protocol: 0,
            ttl: 255,
            tos: ipv4::TOS_CS6,
            ident: 1,
            dont_frag: false,
            payload_len: 0,
        };
        let mut buf = [0u8; 64];
        let n = encode_ipv4_datagram(&mut buf, &ip, &vrrp, ChecksumMode::WithPseudoHeader).unwrap();
        assert_eq!(n, 32);
        let rx = decode_ipv4_datagram(&buf[..n]).unwrap();
        assert_eq!(rx.vrrp, vrrp);
        assert_eq!(rx.ip.ttl, 255);
        assert_eq!(rx.ip.payload_len, 12);
        assert_eq!(rx.checksum_mode, ChecksumMode::WithPseudoHeader);
        assert_eq!(&buf[20..32], &V3_V4);

        buf[9] = 51;
        Ipv4Packet::new_unchecked(&mut buf[..20]).fill_checksum();
        assert_eq!(
            decode_ipv4_datagram(&buf[..n]).err(),
            Some(Error::UnsupportedAuthAh)
        );
        assert_eq!(
            encode_ipv4_datagram(&mut buf[..31], &ip, &vrrp, ChecksumMode::WithPseudoHeader),
            Err(Error::BufferTooSmall)
        );
    }
}
