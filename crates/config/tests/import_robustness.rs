//! The keepalived importer never panics, always emits valid TOML, and stays fast and
//! bounded on hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vipd_config::import::{MAX_NOTES, convert};

const SAMPLE: &str = include_str!("../../../tests/data/keepalived/manpage-example.conf");

/// keepalived-looking words, to reach deep into the converter.
const WORDS: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_script",
    "vrrp_track_file",
    "vrrp_track_process",
    "virtual_server",
    "real_server",
    "include",
    "{",
    "}",
    "\"",
    "#",
    "!",
    "state",
    "MASTER",
    "BACKUP",
    "interface",
    "eth0",
    "eth1",
    "virtual_router_id",
    "priority",
    "advert_int",
    "nopreempt",
    "preempt_delay",
    "accept",
    "no_accept",
    "version",
    "2",
    "3",
    "0",
    "255",
    "256",
    "-1",
    "0.5",
    "1.5",
    "0.015",
    "1e3",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "10.0.0.1/24",
    "10.0.0.2",
    "fe80::1/64",
    "2001:db8::1",
    "dev",
    "label",
    "eth0:1",
    "scope",
    "link",
    "brd",
    "unicast_peer",
    "unicast_src_ip",
    "mcast_src_ip",
    "authentication",
    "auth_type",
    "PASS",
    "AH",
    "auth_pass",
    "secret123456",
    "track_script",
    "track_interface",
    "track_file",
    "track_process",
    "weight",
    "reverse",
    "notify",
    "notify_master",
    "notify_fault",
    "\"/bin/x a|b\"",
    "\"/bin/y 'q r'\"",
    "group",
    "script",
    "interval",
    "timeout",
    "rise",
    "fall",
    "user",
    "process",
    "quorum",
    "file",
    "router_id",
    "vrrp_version",
    "vrrp_strict",
    "script_user",
    "enable_script_security",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "use_vmac",
    "strict_mode",
    "\\",
    "\u{0}",
    "é",
    "\n",
    "\n",
    "\n",
    "\n",
];

fn fast(text: &str) {
    let t0 = Instant::now();
    match convert(text, Path::new("fuzz.conf")) {
        Ok(c) => {
            // The emitter always writes valid TOML, whatever the input.
            if let Err(e) = toml::from_str::<toml::Table>(&c.toml) {
                panic!("invalid TOML: {e}\n{}\n--- from ---\n{text}", c.toml);
            }
            assert!(c.notes.len() <= MAX_NOTES);
            for n in &c.notes {
                let _ = n.to_string();
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            let _ = e.to_string();
        }
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "slow: {:?}",
        t0.elapsed()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        fast(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,400}") {
        fast(&s);
    }

    #[test]
    fn keyword_soup_converts_to_valid_toml(idx in proptest::collection::vec(0..WORDS.len(), 0..200)) {
        let text: Vec<&str> = idx.iter().map(|&i| WORDS[i]).collect();
        fast(&text.join(" "));
    }

    #[test]
    fn mutated_sample_never_panics(pos in 0usize..SAMPLE.len(), len in 0usize..12, ins in "[{}\"'#!a-z0-9_./: \n-]{0,10}") {
        let mut text = SAMPLE.to_string();
        let start = (0..=pos).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        text.replace_range(start..end, &ins);
        fast(&text);
    }
}

#[test]
fn deeply_nested_braces_are_rejected_quickly() {
    for text in [
        "{".repeat(200_000),
        "a {\n".repeat(100_000),
        format!("{}{}", "x { ".repeat(50_000), "} ".repeat(50_000)),
    ] {
        let t0 = Instant::now();
        let e = convert(&text, Path::new("deep.conf")).unwrap_err();
        assert!(e.message.contains("nested"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3));
    }
    // 16 levels are fine (keepalived needs 4)
    let ok = format!("{}{}", "x {\n".repeat(16), "}\n".repeat(16));
    assert!(convert(&ok, Path::new("ok.conf")).is_ok());
}

#[test]
fn unbalanced_close_is_an_error() {
    let e = convert(&"}".repeat(100_000), Path::new("c.conf")).unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
}

#[test]
fn huge_inputs_are_bounded() {
    // Over the size cap.
    let big = "# x\n".repeat(300_000);
    assert!(convert(&big, Path::new("big.conf")).is_err());
    // Too many tokens (one-letter words).
    let many = "a ".repeat(400_000);
    let t0 = Instant::now();
    let e = convert(&many, Path::new("many.conf")).unwrap_err();
    assert!(e.message.contains("tokens"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Lots of unknown keywords: notes are capped, with a final summary note.
    let unknown = "bogus\n".repeat(100_000);
    let t0 = Instant::now();
    let c = convert(&unknown, Path::new("unknown.conf")).unwrap();
    assert_eq!(c.notes.len(), MAX_NOTES);
    assert!(
        c.notes
            .last()
            .unwrap()
            .message
            .contains("further notes omitted")
    );
    assert!(c.toml.len() < 1_000_000);
    assert!(t0.elapsed() < Duration::from_secs(5));
    // A huge VIP list and a long quoted string still convert.
    let mut vips = String::from(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n",
    );
    for n in 0..20_000u32 {
        vips.push_str(&format!(
            "  10.{}.{}.{}/8\n",
            n >> 16,
            (n >> 8) & 255,
            n & 255
        ));
    }
    vips.push_str(" }\n notify \"");
    vips.push_str(&"x".repeat(200_000));
    vips.push_str("\"\n}\n");
    let t0 = Instant::now();
    let c = convert(&vips, Path::new("vips.conf")).unwrap();
    toml::from_str::<toml::Table>(&c.toml).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn hostile_strings_are_escaped() {
    let text = "global_defs { router_id \"a\\\"b\u{7}\\\\ \" }\nbo\u{1b}[31mgus \"x\ny\"\n";
    // a newline inside quotes is a syntax error (quotes close on the same line)
    assert!(convert(text, Path::new("h.conf")).is_err());
    let text = "global_defs { router_id \"a\\\"b\u{7}\\\\ ]] [x]\" }\nbo\u{1b}[31mgus \u{85}\n";
    let c = convert(text, Path::new("h\nx.conf")).unwrap();
    let d: toml::Table = toml::from_str(&c.toml).unwrap();
    assert_eq!(
        d["global"]["router_id"].as_str(),
        Some("a\"b\u{7}\\ ]] [x]")
    );
    for line in c.toml.lines().filter(|l| l.starts_with('#')) {
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    }
}
