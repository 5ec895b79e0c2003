//! Independent decoding: what vipd puts on the wire decodes cleanly in tshark and in scapy,
//! checksums included: VRRPv2 (with and without PASS authentication), VRRPv3 over IPv4 in both
//! checksum modes, VRRPv3 over IPv6, gratuitous ARPs and unsolicited NAs. keepalived's adverts
//! on the same LAN are the control: both decoders must find them good too.
//!
//! Needs root, tshark, keepalived and Debian's python3-scapy (scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Capture, Lan, TempDir};
use vipd_lab::keepalived::{self, Keepalived, Spec};

const V2: u8 = 10;
const V2_AUTH: u8 = 11;
const V3_PSEUDO: u8 = 12;
const V3_NO_PSEUDO: u8 = 13;
const V3_V6: u8 = 14;
const KA_V3: u8 = 20;

/// `tshark -r PCAP [-o PREF] -Y vrrp -T fields`: VRID -> every checksum status seen
/// (1 good, 0 bad, 2 unverified).
fn tshark_status(pcap: &Path, prefs: &[&str]) -> BTreeMap<u8, Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap);
    for p in prefs {
        cmd.args(["-o", p]);
    }
    cmd.args([
        "-Y",
        "vrrp",
        "-T",
        "fields",
        "-e",
        "vrrp.virt_rtr_id",
        "-e",
        "vrrp.checksum.status",
    ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split('\t');
        let vrid: u8 = f.next().unwrap().parse().unwrap();
        let status = f.next().unwrap_or("").to_owned();
        let e = m.entry(vrid).or_default();
        if !e.contains(&status) {
            e.push(status);
        }
    }
    m
}

fn tshark_lines(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Debian's python (python3-scapy lives there), not a pyenv/venv one earlier on the PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vipd_adverts_garps_and_nas_decode_in_tshark_and_scapy() {
    common::require_root();
    let mut lan = Lan::new("decode", 2).unwrap();
    lan.add_client().unwrap();
    let dir = TempDir::new("decode");
    let v4 = |last: u8| IpAddr::V4(lan.addr_v4(last));
    let v6 = |last: u16| IpAddr::V6(lan.addr_v6(last));
    let ms100 = Duration::from_millis(100);
    let mut specs = Vec::new();
    let mut s = Spec::new(V2, 200, Duration::from_secs(1), v4(110), 24);
    s.version = 2;
    specs.push(s);
    let mut s = Spec::new(V2_AUTH, 200, Duration::from_secs(1), v4(111), 24);
    s.version = 2;
    s.auth_pass = Some("s3cret".to_owned());
    specs.push(s);
    let mut s = Spec::new(V3_PSEUDO, 200, ms100, v4(112), 24);
    s.checksum = Some("with-pseudo-header".to_owned());
    specs.push(s);
    let mut s = Spec::new(V3_NO_PSEUDO, 200, ms100, v4(113), 24);
    s.checksum = Some("without-pseudo-header".to_owned());
    specs.push(s);
    specs.push(Spec::new(V3_V6, 200, ms100, v6(0x114), 64));
    let vips: Vec<IpAddr> = specs.iter().map(|s| s.vips[0].0).collect();

    let mut cap = Capture::start(
        lan.client(0),
        "eth0",
        "ip proto 112 or ip6 proto 112 or arp or icmp6",
    )
    .unwrap();
    let cfg = dir.path().join("vipd.toml");
    std::fs::write(
        &cfg,
        keepalived::vipd_toml("decode", &dir.path().join("vipd.sock"), &specs),
    )
    .unwrap();
    let vipd = lan
        .host(0)
        .spawn(&[
            env!("CARGO_BIN_EXE_vipd"),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .unwrap();
    let ka_spec = Spec::new(KA_V3, 200, ms100, v4(120), 24);
    let ka = Keepalived::start(
        &lan.host(1).ns,
        dir.path(),
        "ka",
        &keepalived::keepalived_conf("ka", &[ka_spec]),
    )
    .unwrap();
    let up = common::wait_until(Duration::from_secs(10), || {
        vips.iter()
            .all(|v| lan.host(0).has_addr("eth0", *v).unwrap())
            && lan.host(1).has_addr("eth0", v4(120)).unwrap()
    });
    assert!(
        up.is_some(),
        "VIPs did not come up\n{}\n{}",
        vipd.log(),
        ka.log()
    );
    // A few adverts of every instance (v2: 1 s) and the second GARP burst (1 s later).
    std::thread::sleep(Duration::from_millis(2500));
    drop(ka);
    drop(vipd);
    cap.stop().unwrap();
    let pcap = cap.pcap_path().to_path_buf();

    // tshark, default preferences: the pseudo-header variant is the good one.
    let st = tshark_status(&pcap, &[]);
    eprintln!("tshark checksum status by VRID (default): {st:?}");
    for vrid in [V2, V2_AUTH, V3_PSEUDO, V3_V6, KA_V3] {
        assert_eq!(
            st.get(&vrid).map(Vec::as_slice),
            Some(&["1".to_owned()][..]),
            "VRID {vrid}: tshark checksum status {:?} (1 = good)",
            st.get(&vrid)
        );
    }
    assert_eq!(
        st.get(&V3_NO_PSEUDO).map(Vec::as_slice),
        Some(&["0".to_owned()][..]),
        "without-pseudo-header adverts must look bad to tshark's default rule"
    );
    // ... and with `vrrp.v3_checksum_as_in_v2`, the message-only variant is the good one.
    let st = tshark_status(&pcap, &["vrrp.v3_checksum_as_in_v2:TRUE"]);
    eprintln!("tshark checksum status by VRID (v3_checksum_as_in_v2): {st:?}");
    assert_eq!(
        st.get(&V3_NO_PSEUDO).map(Vec::as_slice),
        Some(&["1".to_owned()][..]),
        "without-pseudo-header adverts: tshark with v3_checksum_as_in_v2 {:?}",
        st.get(&V3_NO_PSEUDO)
    );
    // Fields tshark decodes: version, priority, interval, addresses, auth string.
    let rows = tshark_lines(
        &pcap,
        "vrrp && vrrp.prio == 200",
        &[
            "vrrp.virt_rtr_id",
            "vrrp.version",
            "vrrp.adver_int",
            "vrrp.short_adver_int",
            "vrrp.ip_addr",
            "vrrp.ipv6_addr",
            "vrrp.auth_string",
            "ip.ttl",
            "ipv6.hlim",
        ],
    );
    let row = |vrid: u8| -> Vec<String> {
        rows.iter()
            .map(|l| l.split('\t').map(str::to_owned).collect::<Vec<_>>())
            .find(|f| f[0] == vrid.to_string())
            .unwrap_or_else(|| panic!("no advert for VRID {vrid} in tshark"))
    };
    let r = row(V2);
    assert_eq!((r[1].as_str(), r[2].as_str()), ("2", "1"), "{r:?}");
    assert_eq!(r[4], vips[0].to_string(), "{r:?}");
    assert_eq!(r[7], "255", "{r:?}");
    let r = row(V2_AUTH);
    assert_eq!(r[6], "s3cret", "{r:?}");
    let r = row(V3_PSEUDO);
    assert_eq!((r[1].as_str(), r[3].as_str()), ("3", "10"), "{r:?}");
    let r = row(V3_V6);
    assert_eq!((r[1].as_str(), r[3].as_str()), ("3", "10"), "{r:?}");
    assert_eq!(r[5], vips[4].to_string(), "{r:?}");
    assert_eq!(r[8], "255", "{r:?}");
    // Nothing malformed anywhere.
    let bad = tshark_lines(
        &pcap,
        "_ws.malformed || _ws.expert.severity >= error",
        &["frame.number", "_ws.col.Info"],
    );
    assert!(bad.is_empty(), "tshark finds malformed frames: {bad:?}");
    // Gratuitous ARPs for every IPv4 VIP, unsolicited NA (good ICMPv6 checksum) for the v6 one.
    let garps = tshark_lines(&pcap, "arp.isgratuitous == 1", &["arp.src.proto_ipv4"]);
    for v in &vips[..4] {
        assert!(
            garps.iter().any(|g| g == &v.to_string()),
            "no gratuitous ARP for {v}"
        );
    }
    let nas = tshark_lines(
        &pcap,
        "icmpv6.type == 136 && icmpv6.nd.na.flag.s == 0",
        &["icmpv6.nd.na.target_address", "icmpv6.checksum.status"],
    );
    let want = format!("{}\t1", vips[4]);
    assert!(
        nas.iter().any(|l| l == &want),
        "no unsolicited NA for {} with a good checksum: {nas:?}",
        vips[4]
    );

    // scapy recomputes every checksum by its own rules.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vrrp_check.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script).arg(&pcap);
    for (vrid, mode) in [
        (V2, "v2"),
        (V2_AUTH, "v2"),
        (V3_PSEUDO, "pseudo"),
        (V3_NO_PSEUDO, "nopseudo"),
        (V3_V6, "pseudo"),
        (KA_V3, "pseudo"),
    ] {
        cmd.args(["--expect", &format!("{vrid}:{mode}")]);
    }
    for v in &vips[..4] {
        cmd.args(["--garp", &v.to_string()]);
    }
    cmd.args(["--na", &vips[4].to_string()]);
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "scapy check failed:\n{text}");
    // The checker can fail: the message-only adverts do not pass as pseudo-header ones.
    let out = Command::new(python())
        .arg(&script)
        .arg(&pcap)
        .args(["--expect", &format!("{V3_NO_PSEUDO}:pseudo")])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "scapy check accepts a wrong checksum mode: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
