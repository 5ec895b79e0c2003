//! The pair linter (`vipd --check lb1.toml lb2.toml`): one test per kind of disagreement
//! between two routers of one virtual router, each located in the first file and naming the
//! line in the second; and a pair that agrees gives no finding.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::path::{Path, PathBuf};

use vipd_config::{Diagnostic, Loaded, pair_check, parse_str};

fn load(name: &str, text: &str) -> (PathBuf, Loaded) {
    let path = PathBuf::from(name);
    match parse_str(text, Path::new(name)) {
        Ok(l) => (path, l),
        Err(d) => panic!("{d}\n{text}"),
    }
}

/// lb1's and lb2's files: the same pair, with `a_extra` / `b_extra` appended to each
/// instance (so the key lines are: 1 [[instance]], 2 name, 3 interface, 4 vrid..., then the
/// extras from line 8).
fn pair(a: &str, b: &str) -> Vec<Diagnostic> {
    let inst = |prio: u8, vrid: u8, vip: &str, extra: &str| {
        format!(
            "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {prio}\nadvert_interval = \"1s\"\nvips = [\"{vip}\"]\n{extra}\n"
        )
    };
    let field = |s: &str, key: &str, default: &str| -> String {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or(default)
            .to_string()
    };
    // `vrid=`, `vip=` and `prio=` lines of the extras set those; the rest is appended.
    let rest = |s: &str| -> String {
        s.lines()
            .filter(|l| {
                !l.starts_with("vrid=") && !l.starts_with("vip=") && !l.starts_with("prio=")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ta = inst(
        field(a, "prio", "150").parse().unwrap(),
        field(a, "vrid", "51").parse().unwrap(),
        &field(a, "vip", "10.0.0.100/24"),
        &rest(a),
    );
    let tb = inst(
        field(b, "prio", "100").parse().unwrap(),
        field(b, "vrid", "51").parse().unwrap(),
        &field(b, "vip", "10.0.0.100/24"),
        &rest(b),
    );
    pair_check(&[load("lb1.toml", &ta), load("lb2.toml", &tb)])
}

#[track_caller]
fn one(d: &[Diagnostic], line: usize, msg: &str, other: &str) {
    assert_eq!(d.len(), 1, "{d:#?}");
    let f = &d[0];
    assert_eq!(f.file, Path::new("lb1.toml"));
    assert_eq!(f.line, line, "{f}");
    assert!(f.message.contains(msg), "{f}");
    assert!(f.message.contains(other), "{f}");
}

#[test]
fn a_pair_that_agrees_has_no_finding() {
    assert!(pair("", "").is_empty());
    let both = "version = 2\nauth_pass = \"s3cret\"";
    assert!(pair(both, both).is_empty());
}

#[test]
fn version_v2_with_auth_against_v3() {
    let d = pair("version = 2\nauth_pass = \"s3cret\"", "version = 3");
    one(
        &d,
        8,
        "speaks VRRPv2",
        "`VI_1` on lb2.toml:8 (shares VIP 10.0.0.100) speaks VRRPv3",
    );
}

#[test]
fn different_passwords() {
    let d = pair(
        "version = 2\nauth_pass = \"s3cret\"",
        "version = 2\nauth_pass = \"other\"",
    );
    one(&d, 9, "auth_pass differs", "lb2.toml:9");
    let d = pair("version = 2\nauth_pass = \"s3cret\"", "version = 2");
    one(&d, 9, "has an auth_pass", "has none");
}

#[test]
fn unicast_peers_pointing_at_a_third_address() {
    let d = pair(
        "source_address = \"10.0.0.11\"\nunicast_peers = [\"10.0.0.13\"]",
        "source_address = \"10.0.0.12\"\nunicast_peers = [\"10.0.0.11\"]",
    );
    one(
        &d,
        9,
        "lists unicast peers 10.0.0.13, not the other's source_address 10.0.0.12",
        "lb2.toml:9",
    );
    let d = pair("unicast_peers = [\"10.0.0.12\"]", "");
    one(&d, 8, "has unicast_peers", "has none");
}

#[test]
fn vrid_51_against_52() {
    let d = pair("", "vrid=52");
    one(
        &d,
        4,
        "has vrid 51",
        "`VI_1` on lb2.toml:4 (shares VIP 10.0.0.100) has vrid 52",
    );
}

#[test]
fn vip_100_against_101() {
    let d = pair("", "vip=10.0.0.101/24");
    one(
        &d,
        7,
        "VIPs (10.0.0.100) differ",
        "lb2.toml:7 (vrid 51) (10.0.0.101)",
    );
}

#[test]
fn intervals_1s_against_2s() {
    let d = pair_check(&[
        load(
            "lb1.toml",
            "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 150\nadvert_interval = \"1s\"\nvips = [\"10.0.0.100/24\"]\n",
        ),
        load(
            "lb2.toml",
            "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 100\nadvert_interval = \"2s\"\nvips = [\"10.0.0.100/24\"]\n",
        ),
    ]);
    one(
        &d,
        6,
        "advertises every 1s",
        "lb2.toml:6 (shares VIP 10.0.0.100) every 2s",
    );
}

#[test]
fn both_at_priority_150() {
    let d = pair("", "prio=150");
    one(&d, 5, "both have priority 150", "lb2.toml:5");
}

#[test]
fn auth_hmac_on_one_side_only_or_with_an_unknown_active_key() {
    let hmac = |active: u8, keys: &str| {
        format!("[instance.auth_hmac]\nactive_key = {active}\nkeys = [{keys}]")
    };
    let k1 = "{ id = 1, value = \"0123456789abcdef0123456789abcdef\" }";
    let k2 = "{ id = 2, value = \"fedcba9876543210fedcba9876543210\" }";
    let d = pair(&hmac(1, k1), "");
    one(&d, 8, "only one of `VI_1` and", "hmac_missing");
    let d = pair(&hmac(2, &format!("{k1}, {k2}")), &hmac(1, k1));
    one(
        &d,
        8,
        "this one signs with key 2, which the other does not have",
        "lb2.toml:8",
    );
}

#[test]
fn checksum_forms() {
    let d = pair("checksum = \"without-pseudo-header\"", "");
    one(
        &d,
        8,
        "sends checksums without-pseudo-header",
        "with-pseudo-header",
    );
}

/// `[instance.announce]`: the two nodes must place the VIP the same way; active-active nodes
/// run no VRRP, so equal priorities and a missing vrid are not findings, but differing VIP
/// sets are.
#[test]
fn announce_policies_and_active_active_vips() {
    let aa = |vips: &str| {
        format!(
            "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\npriority = 100\nvips = [{vips}]\n[instance.announce]\npolicy = \"active-active\"\n"
        )
    };
    let same = pair_check(&[
        load("lb1.toml", &aa("\"203.0.113.10\"")),
        load("lb2.toml", &aa("\"203.0.113.10\"")),
    ]);
    assert!(same.is_empty(), "{same:#?}");
    let differ = pair_check(&[
        load("lb1.toml", &aa("\"203.0.113.10\"")),
        load("lb2.toml", &aa("\"203.0.113.10\", \"203.0.113.11\"")),
    ]);
    assert_eq!(differ.len(), 1, "{differ:#?}");
    assert!(
        differ[0]
            .message
            .contains("announces 203.0.113.10, `web` on lb2.toml"),
        "{differ:#?}"
    );
    // One node announces by BGP, the other holds the VIP on the link.
    let d = pair(
        "vip=203.0.113.10/32\n[instance.announce]",
        "vip=203.0.113.10/32",
    );
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].message.contains("announces by BGP (active-standby)")
            && d[0].message.contains("holds its VIPs on the link"),
        "{d:#?}"
    );
}

/// keepalived parity settings both routers must share: AH, the multicast group, the VMAC.
#[test]
fn auth_ah_multicast_group_and_vmac() {
    let v2 = "version = 2\n";
    let d = pair(
        &format!("{v2}auth_ah = \"s3cr3t\""),
        &format!("{v2}auth_ah = \"other\""),
    );
    assert!(
        d.iter()
            .any(|x| x.message.contains("auth_ah password differs")),
        "{d:#?}"
    );
    let d = pair(&format!("{v2}auth_ah = \"s3cr3t\""), v2);
    assert!(
        d.iter().any(|x| x.message.contains("uses IPsec AH")),
        "{d:#?}"
    );
    let d = pair("multicast_group = \"224.0.0.19\"", "");
    one(&d, 8, "sends its adverts to 224.0.0.19", "224.0.0.18");
    let d = pair("vmac = true", "");
    one(&d, 8, "uses the virtual MAC", "does not");
    let d = pair("vmac = true\nvmac_interface = \"vr51\"", "vmac = true");
    assert!(d.is_empty(), "the device's name is each host's own: {d:#?}");
}
