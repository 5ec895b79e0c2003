#!/usr/bin/env python3
"""Seed fuzz/corpus/<target>/ from the keepalived captures in tests/data (run from fuzz/)."""
import pathlib

data = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data"
corpus = pathlib.Path(__file__).resolve().parent / "corpus"


def load(path):
    return bytes.fromhex("".join(l.strip() for l in path.read_text().splitlines() if not l.startswith("#")))


def put(target, name, blob):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(blob)


for f in sorted(data.glob("*.hex")):
    b = load(f)
    if f.name.startswith("garp"):
        put("arp", f.stem, b)
        put("arp", f.stem + "-frame", b"\xff" * 6 + bytes.fromhex("1233ded8f4a9") + b"\x08\x06" + b)
    elif "-na" in f.name:
        put("ndisc", f.stem, b)
        put("ndisc", f.stem + "-frame", bytes.fromhex("333300000001" "1233ded8f4a9" "86dd") + b)
    elif "ipv6" in f.name:
        put("vrrp_v6", f.stem, b[8:40] + b[40:])
        # rx_classify: selector (IPv6), src+dst, hop limit, then the VRRP message.
        put("rx_classify", f.stem, bytes([0x80]) + b[8:40] + bytes([b[7]]) + b[40:])
    else:
        put("ipv4_datagram", f.stem, b)
        put("vrrp_v4", f.stem, b[12:20] + b[20:])
        # rx_classify: selector byte (family v4, v3/v2, auth, VRID bits) + the datagram.
        for sel in (0x00, 0x01, 0x03, 0x04):
            put("rx_classify", f"{f.stem}-{sel:02x}", bytes([sel]) + b)
print("seeded", corpus)
