#!/usr/bin/python3
"""Independent check of VRRP adverts, gratuitous ARPs and unsolicited NAs in a pcap, with scapy.

usage: vrrp_check.py PCAP [--expect VRID:MODE]... [--garp IPV4]... [--na IPV6]...

MODE is how the VRRP checksum of that VRID must be computed:
  v2        VRRPv2: over the message only (scapy's VRRP)
  pseudo    VRRPv3 with the IPv4/IPv6 pseudo-header (scapy's VRRPv3, RFC 9568)
  nopseudo  VRRPv3 over IPv4 without the pseudo-header (over the message only); the
            pseudo-header variant must then NOT match

Every VRRP packet of an expected VRID must verify (and at least one must be present); every
--garp address needs a gratuitous ARP, every --na address an unsolicited NA with a correct
ICMPv6 checksum. Exits 1 on any mismatch, printing what was wrong.
"""

import sys

from scapy.all import ARP, IP, IPv6, ICMPv6ND_NA, rdpcap  # noqa: E402
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.utils import checksum


def recomputed(layer):
    """The checksum scapy computes for `layer` (rebuilt inside its packet with chksum unset)."""
    pkt = layer.firstlayer().copy()
    cls = type(layer)
    inner = pkt[cls]
    if hasattr(inner, "chksum"):
        inner.chksum = None
    else:
        inner.cksum = None
    rebuilt = pkt.__class__(bytes(pkt))
    got = rebuilt[cls]
    return got.chksum if hasattr(got, "chksum") else got.cksum


def plain(layer):
    """RFC 1071 checksum over the message alone (checksum field zeroed)."""
    raw = bytearray(bytes(layer))
    raw[6:8] = b"\x00\x00"
    return checksum(bytes(raw))


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    pcap = argv[1]
    expect, garps, nas = {}, set(), set()
    args = argv[2:]
    while args:
        opt, val, args = args[0], args[1], args[2:]
        if opt == "--expect":
            vrid, mode = val.split(":")
            expect[int(vrid)] = mode
        elif opt == "--garp":
            garps.add(val)
        elif opt == "--na":
            nas.add(val)
        else:
            print(f"unknown option {opt}")
            return 2
    errors, counts = [], {v: 0 for v in expect}
    for n, pkt in enumerate(rdpcap(pcap), 1):
        if VRRP in pkt or VRRPv3 in pkt:
            layer = pkt[VRRPv3] if VRRPv3 in pkt else pkt[VRRP]
            vrid = layer.vrid
            mode = expect.get(vrid)
            if mode is None:
                continue
            counts[vrid] += 1
            have = layer.chksum
            if mode == "v2":
                ok = isinstance(layer, VRRP) and layer.version == 2 and recomputed(layer) == have
            elif mode == "pseudo":
                ok = isinstance(layer, VRRPv3) and recomputed(layer) == have
            elif mode == "nopseudo":
                ok = (
                    isinstance(layer, VRRPv3)
                    and IP in pkt
                    and plain(layer) == have
                    and recomputed(layer) != have
                )
            else:
                errors.append(f"bad mode {mode}")
                ok = False
            if not ok:
                errors.append(
                    f"frame {n}: VRID {vrid} ({mode}) checksum {have:#06x}: scapy computes "
                    f"{recomputed(layer):#06x} with its own rule, {plain(layer):#06x} over the message"
                )
        if ARP in pkt and pkt[ARP].op in (1, 2) and pkt[ARP].psrc == pkt[ARP].pdst:
            garps.discard(pkt[ARP].psrc)
        if ICMPv6ND_NA in pkt:
            na = pkt[ICMPv6ND_NA]
            if na.S == 0 and str(na.tgt) in nas:
                if recomputed(na) != na.cksum:
                    errors.append(f"frame {n}: NA for {na.tgt}: bad ICMPv6 checksum {na.cksum:#06x}")
                else:
                    nas.discard(str(na.tgt))
    for vrid, c in counts.items():
        if c == 0:
            errors.append(f"no advert for VRID {vrid}")
    errors += [f"no gratuitous ARP for {g}" for g in sorted(garps)]
    errors += [f"no valid unsolicited NA for {a}" for a in sorted(nas)]
    for e in errors:
        print(e)
    print(f"scapy: checked {sum(counts.values())} adverts {counts}; {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
