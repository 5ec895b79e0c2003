//! Every error kind of the configuration layer, located to line:column.

use std::path::Path;

use vipd_config::{Diagnostic, Severity, parse_str};

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse_str(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(d) => {
            assert!(d.has_errors());
            d.errors().cloned().collect()
        }
    }
}

/// Asserts there is an error at `line:col` whose message contains `msg` (and hint contains `hint`).
#[track_caller]
fn expect(text: &str, line: usize, col: usize, msg: &str, hint: Option<&str>) {
    let errs = errors(text);
    let found = errs
        .iter()
        .find(|d| d.line == line && d.column == col && d.message.contains(msg));
    let Some(d) = found else {
        let all: String = errs.iter().map(|d| d.to_string()).collect();
        panic!("no error at {line}:{col}; got:\n{all}");
    };
    assert_eq!(d.severity, Severity::Error);
    assert!(
        d.message.contains(msg),
        "message {:?} lacks {msg:?}",
        d.message
    );
    if let Some(h) = hint {
        let got = d.hint.as_deref().unwrap_or("");
        assert!(got.contains(h), "hint {got:?} lacks {h:?}");
    }
}

/// A valid instance; `extra` lands on line 6 onwards.
fn inst(extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"10.0.0.100/24\"]\n{extra}\n"
    )
}

// ------------------------------------------------------------------------------------------
// Syntax

#[test]
fn syntax_unterminated_string() {
    expect(
        "[global]\nrouter_id = \"lb1\n",
        2,
        17,
        "TOML syntax",
        Some("close the string"),
    );
}

#[test]
fn syntax_unquoted_string() {
    expect(
        "[[instance]]\nname = VI_1\n",
        2,
        8,
        "string values must be quoted",
        Some("\"VI_1\""),
    );
}

/// A number with a letter typed for a digit is not to be quoted: say which number.
#[test]
fn syntax_letter_in_a_number() {
    expect(
        &inst("priority = 15O"),
        6,
        12,
        "string values must be quoted",
        Some("did you mean 150?"),
    );
}

/// A command written as one string: the hint splits it into arguments (a one-element list
/// would fail as "must be an absolute path"), or offers `shell`.
#[test]
fn command_as_a_string_suggests_the_argv_or_shell() {
    expect(
        "[[track_script]]\nname = \"chk\"\ncommand = \"curl -fs http://127.0.0.1/\"\n",
        3,
        11,
        "`command` must be a list of strings",
        Some(
            "command = [\"curl\", \"-fs\", \"http://127.0.0.1/\"] (one string per argument), or shell = \"curl -fs http://127.0.0.1/\"",
        ),
    );
}

#[test]
fn syntax_duplicate_key() {
    expect(&inst("vrid = 52"), 6, 1, "duplicate key `vrid`", None);
}

#[test]
fn syntax_errors_render_with_location() {
    let d = parse_str("a = \n", Path::new("/etc/vipd/vipd.toml")).unwrap_err();
    let s = d.to_string();
    assert!(
        s.starts_with("/etc/vipd/vipd.toml:1:5: error: TOML syntax"),
        "{s}"
    );
}

// ------------------------------------------------------------------------------------------
// Unknown keys and types

#[test]
fn unknown_key_did_you_mean() {
    expect(
        &inst("prioirty = 100"),
        6,
        1,
        "unknown key `prioirty` in `instance`",
        Some("did you mean `priority`?"),
    );
    expect(
        "[global]\nvrrp_verison = 3\n",
        2,
        1,
        "unknown key `vrrp_verison` in `global`",
        Some("did you mean `vrrp_version`?"),
    );
    expect(
        &inst("[[instance.vip]]\naddress = \"10.0.0.1\"\nlabl = \"eth0:x\""),
        8,
        1,
        "unknown key `labl` in `instance.vip`",
        Some("did you mean `label`?"),
    );
    expect(
        "instances = []\n",
        1,
        1,
        "unknown top-level key `instances`",
        Some("did you mean `instance`?"),
    );
    // global-only name used in an instance
    expect(
        &inst("vrrp_version = 2"),
        6,
        1,
        "unknown key",
        Some("did you mean `version`?"),
    );
    // and the reverse
    expect(
        "[global]\nversion = 2\n",
        2,
        1,
        "unknown key",
        Some("did you mean `vrrp_version`?"),
    );
}

#[test]
fn unknown_key_keepalived_names() {
    expect(
        &inst("virtual_router_id = 51"),
        6,
        1,
        "unknown key",
        Some("`vrid`"),
    );
    expect(
        &inst("nopreempt = true"),
        6,
        1,
        "unknown key",
        Some("preempt = false"),
    );
    expect(
        &inst("state = \"MASTER\""),
        6,
        1,
        "unknown key",
        Some("highest priority"),
    );
    expect(
        &inst("unicast_src_ip = \"10.0.0.1\""),
        6,
        1,
        "unknown key",
        Some("`source_address`"),
    );
    expect(
        "[vrrp_instance]\n",
        1,
        2,
        "unknown top-level key `vrrp_instance`",
        Some("[[instance]]"),
    );
}

#[test]
fn unknown_key_lists_known_keys_when_nothing_is_close() {
    expect(
        "[[sync_group]]\nname = \"G\"\nzzz = 1\n",
        3,
        1,
        "unknown key `zzz`",
        Some("known keys here: instances, name"),
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let errs = errors(&inst("foo = 1\nbar = 2"));
    assert_eq!(errs.len(), 2);
    // sorted by position
    assert_eq!((errs[0].line, errs[1].line), (6, 7));
}

#[test]
fn wrong_types() {
    expect(
        &inst("priority = \"150\""),
        6,
        12,
        "`priority` must be an integer, found a string",
        Some("remove the quotes: priority = 150"),
    );
    expect(
        &inst("preempt = \"no\""),
        6,
        11,
        "`preempt` must be true or false",
        Some("preempt = false"),
    );
    expect(
        &inst("advert_interval = 1"),
        6,
        19,
        "must be a duration string, found a bare number",
        Some("advert_interval = \"1s\""),
    );
    expect(
        &inst("unicast_peers = \"10.0.0.2\""),
        6,
        17,
        "`unicast_peers` must be a list of strings",
        Some("unicast_peers = [\"10.0.0.2\"]"),
    );
    expect(
        &inst("unicast_peers = [\"10.0.0.2\", 3]"),
        6,
        30,
        "found an integer in it",
        None,
    );
    expect(
        "[instance]\nname = \"x\"\n",
        1,
        1,
        "`instance` must be an array of tables",
        Some("[[instance]]"),
    );
    expect(
        "[[global]]\n",
        1,
        1,
        "`global` must be a single table",
        Some("[global]"),
    );
    expect(
        "[[instance]]\nname = \"VI_1\"\nvip = [\"10.0.0.1/24\"]\n",
        3,
        8,
        "`vip` must be a list of tables, found a string in it",
        None,
    );
    expect(
        &inst("name2 = 1\ninterface2 = 2").replace("name = \"VI_1\"", "name = 5"),
        2,
        8,
        "`name` must be a string, found an integer",
        Some("name = \"5\""),
    );
}

// ------------------------------------------------------------------------------------------
// [global]

#[test]
fn global_values() {
    expect(
        "[global]\nvrrp_version = 4\n",
        2,
        16,
        "vrrp_version must be 2 or 3, found 4",
        None,
    );
    expect(
        "[global]\nchecksum = \"with-pseudoheader\"\n",
        2,
        12,
        "unknown checksum mode",
        Some("did you mean \"with-pseudo-header\"?"),
    );
    expect(
        "[global]\ncontrol_socket = \"vipd.sock\"\n",
        2,
        18,
        "must be an absolute path",
        None,
    );
    let long = format!("[global]\ncontrol_socket = \"/{}\"\n", "a".repeat(120));
    expect(&long, 2, 18, "at most 107", None);
    expect(
        "[global]\nrouter_id = \"\"\n",
        2,
        13,
        "router_id must be",
        None,
    );
}

#[test]
fn garp_ranges() {
    expect(
        "[global]\ngarp_master_repeat = 0\n",
        2,
        22,
        "garp_master_repeat 0 is out of range (1..=255)",
        None,
    );
    expect(
        "[global]\ngarp_master_refresh = \"500ms\"\n",
        2,
        23,
        "garp_master_refresh 500ms is out of range",
        None,
    );
    expect(
        "[global]\ngarp_master_delay = \"2h\"\n",
        2,
        21,
        "garp_master_delay 2h is out of range (0s..=1h)",
        None,
    );
    expect(
        &inst("garp_interval = \"11s\""),
        6,
        17,
        "garp_interval 11s is out of range",
        None,
    );
    expect(
        &inst("garp_master_refresh_repeat = 300"),
        6,
        30,
        "garp_master_refresh_repeat 300 is out of range",
        None,
    );
}

// ------------------------------------------------------------------------------------------
// Instance basics

#[test]
fn missing_required_keys_point_at_the_header() {
    let text = "[global]\n\n[[instance]]\nname = \"VI_1\"\n";
    expect(
        text,
        3,
        1,
        "instance `VI_1` has no interface",
        Some("interface = \"eth0\""),
    );
    expect(text, 3, 1, "instance `VI_1` has no vrid", Some("vrid = 51"));
    expect(text, 3, 1, "has no virtual addresses", Some("vips = ["));
    expect(
        "[[instance]]\ninterface = \"eth0\"\nvrid = 1\nvips = [\"10.0.0.1\"]\n",
        1,
        1,
        "instance #1 has no name",
        None,
    );
}

#[test]
fn instance_names() {
    let text = format!("{}{}", inst(""), inst("").replace("vrid = 51", "vrid = 52"));
    expect(
        &text,
        8,
        8,
        "duplicate instance name `VI_1` (first defined at line 2)",
        None,
    );
    expect(
        &inst("").replace("VI_1", "VI 1"),
        2,
        8,
        "instance name \"VI 1\" contains ' '",
        None,
    );
    let long = inst("").replace("VI_1", &"x".repeat(65));
    expect(&long, 2, 8, "1 to 64 characters long (found 65)", None);
}

#[test]
fn interface_names() {
    expect(
        &inst("").replace("eth0", "averyveryverylongname"),
        3,
        13,
        "Linux allows at most 15",
        None,
    );
    expect(
        &inst("").replace("eth0", "eth/0"),
        3,
        13,
        "contains '/'",
        None,
    );
    expect(
        &inst("").replace("eth0", "eth0:1"),
        3,
        13,
        "contains ':'",
        None,
    );
    expect(&inst("").replace("\"eth0\"", "\"\""), 3, 13, "empty", None);
}

#[test]
fn vrid_range() {
    expect(
        &inst("").replace("vrid = 51", "vrid = 0"),
        4,
        8,
        "vrid 0 is out of range (1..=255)",
        None,
    );
    expect(
        &inst("").replace("vrid = 51", "vrid = 256"),
        4,
        8,
        "vrid 256 is out of range",
        None,
    );
}

#[test]
fn vrid_unique_per_interface_and_family() {
    let second = inst("").replace("VI_1", "VI_2");
    let text = format!("{}{second}", inst(""));
    expect(
        &text,
        10,
        8,
        "vrid 51 is already used on eth0 (IPv4) by instance `VI_1` (line 4)",
        Some("52 is free on eth0"),
    );
    // other interface: fine
    let other_if = second.replace("eth0", "eth1");
    parse_str(&format!("{}{other_if}", inst("")), Path::new("t")).unwrap();
    // other family: fine
    let v6 = second.replace("10.0.0.100/24", "fd00::100/64");
    parse_str(&format!("{}{v6}", inst("")), Path::new("t")).unwrap();
}

#[test]
fn priority_range() {
    expect(
        &inst("priority = 0"),
        6,
        12,
        "priority 0 is reserved",
        Some("1..=254"),
    );
    expect(
        &inst("priority = 256"),
        6,
        12,
        "priority 256 is out of range (1..=255)",
        None,
    );
}

#[test]
fn version_value() {
    expect(
        &inst("version = 1"),
        6,
        11,
        "version must be 2 or 3, found 1",
        None,
    );
}

// ------------------------------------------------------------------------------------------
// Intervals and durations

#[test]
fn v3_interval_granularity() {
    expect(
        &inst("advert_interval = \"15ms\""),
        6,
        19,
        "advert_interval 15ms is not a multiple of 10ms (VRRPv3 counts centiseconds)",
        Some("use 10ms or 20ms"),
    );
    expect(
        &inst("advert_interval = \"1.005s\""),
        6,
        19,
        "not a multiple of 10ms",
        Some("use 1s or 1.01s"),
    );
}

#[test]
fn v3_interval_range() {
    expect(
        &inst("advert_interval = \"41s\""),
        6,
        19,
        "advert_interval 41s is out of range for VRRPv3 (10ms..=40.95s)",
        None,
    );
    expect(
        &inst("advert_interval = \"5ms\""),
        6,
        19,
        "advert_interval 5ms is out of range for VRRPv3",
        None,
    );
    expect(
        &inst("advert_interval = \"0s\""),
        6,
        19,
        "out of range for VRRPv3",
        None,
    );
}

#[test]
fn v2_interval_whole_seconds() {
    expect(
        &inst("version = 2\nadvert_interval = \"1.5s\""),
        7,
        19,
        "advert_interval 1.5s is not a whole number of seconds (VRRPv2 counts seconds)",
        Some("use 1s or 2s, or version = 3"),
    );
    expect(
        &inst("version = 2\nadvert_interval = \"500ms\""),
        7,
        19,
        "below VRRPv2's minimum of 1s",
        Some("version = 3"),
    );
    expect(
        &inst("version = 2\nadvert_interval = \"256s\""),
        7,
        19,
        "advert_interval 256s is out of range for VRRPv2 (1s..=255s)",
        None,
    );
}

#[test]
fn duration_syntax_errors() {
    expect(
        &inst("preempt_delay = \"-1s\""),
        6,
        17,
        "preempt_delay: durations cannot be negative",
        None,
    );
    expect(
        &inst("preempt_delay = \"1x\""),
        6,
        17,
        "unknown duration unit `x`",
        Some("ms, s, m or h"),
    );
    expect(
        &inst("preempt_delay = \"1e9s\""),
        6,
        17,
        "exponent notation",
        Some("write the number out"),
    );
    expect(
        &inst("preempt_delay = \"99999999999999999999s\""),
        6,
        17,
        "duration is too large",
        None,
    );
    expect(
        &inst("preempt_delay = \"30\""),
        6,
        17,
        "duration `30` has no unit",
        Some("\"30s\""),
    );
    expect(
        &inst("preempt_delay = \"1001s\""),
        6,
        17,
        "preempt_delay 1001s is out of range (0s..=1000s)",
        None,
    )
}

// ------------------------------------------------------------------------------------------
// VIPs

fn with_vips(vips: &str) -> String {
    format!("[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvips = {vips}\n")
}

#[test]
fn vip_prefix_length() {
    // points at the "/33" inside the string
    expect(
        &with_vips("[\"10.0.0.100/33\"]"),
        5,
        20,
        "prefix length /33 is out of range for IPv4 (0..=32)",
        Some("10.0.0.100/24"),
    );
    expect(
        &with_vips("[\"fd00::1/129\"]"),
        5,
        17,
        "prefix length /129 is out of range for IPv6 (0..=128)",
        None,
    );
    expect(
        &with_vips("[\"10.0.0.1/ab\"]"),
        5,
        18,
        "\"/ab\" is not a prefix length",
        None,
    );
    expect(
        &with_vips("[\"10.0.0.1/\"]"),
        5,
        18,
        "is not a prefix length",
        None,
    );
}

#[test]
fn vip_address_kinds() {
    expect(
        &with_vips("[\"10.0.0.300/24\"]"),
        5,
        10,
        "VIP \"10.0.0.300\" is not an IP address",
        None,
    );
    expect(
        &with_vips("[\"224.0.0.18\"]"),
        5,
        10,
        "VIP 224.0.0.18 is a multicast address",
        None,
    );
    expect(
        &with_vips("[\"127.0.0.2/8\"]"),
        5,
        10,
        "is a loopback address",
        None,
    );
    expect(
        &with_vips("[\"::/0\"]"),
        5,
        10,
        "is the unspecified address",
        None,
    );
    expect(
        &with_vips("[\"255.255.255.255\"]"),
        5,
        10,
        "is the broadcast address",
        None,
    );
    expect(
        &with_vips("[\"10.0.0.1/24 dev eth0 label eth0:1\"]"),
        5,
        9,
        "is not an address",
        Some("[[instance.vip]]"),
    );
}

#[test]
fn vip_one_family() {
    expect(
        &with_vips("[\"10.0.0.100/24\",\n  \"fd00::100/64\"]"),
        6,
        3,
        "VIP fd00::100/64 is IPv6 but instance `VI_1` is IPv4 (first VIP 10.0.0.100/24 at line 5)",
        Some("its own [[instance]]"),
    );
}

#[test]
fn vip_duplicates() {
    expect(
        &with_vips("[\"10.0.0.1/24\", \"10.0.0.1/32\"]"),
        5,
        24,
        "VIP 10.0.0.1 is listed twice in instance `VI_1` (also at line 5)",
        None,
    );
}

#[test]
fn long_form_vip_errors() {
    let base = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n";
    expect(
        &format!("{base}[[instance.vip]]\nlabel = \"eth0:a\"\n"),
        5,
        1,
        "[[instance.vip]] has no address",
        None,
    );
    expect(
        &format!("{base}[[instance.vip]]\naddress = \"fd00::1/64\"\nlabel = \"eth0:a\"\n"),
        7,
        9,
        "labels exist for IPv4 addresses only",
        None,
    );
    expect(
        &format!("{base}[[instance.vip]]\naddress = \"10.0.0.1/24\"\nlabel = \"\"\n"),
        7,
        9,
        "label \"\" is not a valid interface label",
        None,
    );
    expect(
        &format!(
            "{base}[[instance.vip]]\naddress = \"10.0.0.1/24\"\nlabel = \"eth0:verylongname\"\n"
        ),
        7,
        9,
        "is not a valid interface label",
        Some("at most 15 bytes"),
    );
    expect(
        &format!("{base}[[instance.vip]]\naddress = \"10.0.0.1/24\"\nscope = \"globl\"\n"),
        7,
        9,
        "unknown scope \"globl\"",
        Some("did you mean \"global\"?"),
    );
    // mixed family across short and long forms
    expect(
        &format!("{base}vips = [\"10.0.0.1/24\"]\n[[instance.vip]]\naddress = \"fd00::1/64\"\n"),
        7,
        11,
        "is IPv6 but instance `VI_1` is IPv4",
        None,
    );
}

#[test]
fn v2_requires_ipv4() {
    expect(
        &with_vips("[\"fd00::1/64\"]\nversion = 2"),
        6,
        11,
        "VRRPv2 supports IPv4 only",
        Some("use version = 3"),
    );
    // inherited from [global]: blame the VIP
    expect(
        &format!(
            "[global]\nvrrp_version = 2\n{}",
            with_vips("[\"fd00::1/64\"]")
        ),
        7,
        9,
        "VRRPv2 supports IPv4 only",
        Some("set version = 3 in this instance"),
    );
}

// ------------------------------------------------------------------------------------------
// Source address and peers

#[test]
fn source_address_errors() {
    expect(
        &inst("source_address = \"fd00::1\""),
        6,
        18,
        "source_address fd00::1 is IPv6 but instance `VI_1`'s VIPs are IPv4",
        None,
    );
    expect(
        &inst("source_address = \"10.0.0.100\""),
        6,
        18,
        "source_address 10.0.0.100 is one of instance `VI_1`'s VIPs",
        None,
    );
    expect(
        &inst("source_address = \"10.0.0.1/24\""),
        6,
        18,
        "source_address must be a plain address",
        Some("\"10.0.0.1\""),
    );
    expect(
        &inst("source_address = \"224.0.0.18\""),
        6,
        18,
        "is a multicast address",
        None,
    );
}

#[test]
fn unicast_peer_errors() {
    expect(
        &inst("unicast_peers = [\"10.0.0.2\", \"10.0.0.2\"]"),
        6,
        30,
        "unicast peer 10.0.0.2 is listed twice (also at line 6)",
        None,
    );
    expect(
        &inst("unicast_peers = [\"fd00::2\"]"),
        6,
        18,
        "unicast peer fd00::2 is IPv6",
        None,
    );
    expect(
        &inst("source_address = \"10.0.0.1\"\nunicast_peers = [\"10.0.0.1\"]"),
        7,
        18,
        "unicast peer 10.0.0.1 is this router's own source_address",
        None,
    );
    expect(
        &inst("unicast_peers = [\"peer-b\"]"),
        6,
        18,
        "unicast peer \"peer-b\" is not an IP address",
        None,
    );
}

#[test]
fn receive_buffer_range() {
    expect(
        "[global]\nreceive_buffer = 1024\n",
        2,
        18,
        "receive_buffer 1024 is out of range (65536..=67108864)",
        None,
    );
}

#[test]
fn source_limit_errors() {
    expect(
        &inst(
            "unicast_peers = [\"10.0.0.2\"]\n[[instance.unicast_peer]]\naddress = \"10.0.0.3\"\nmin_ttl = 255\nmax_ttl = 64",
        ),
        7,
        1,
        "unicast peer 10.0.0.3: min_ttl 255 is above max_ttl 64",
        None,
    );
    expect(
        &inst("[[instance.unicast_peer]]\nmin_ttl = 255"),
        6,
        1,
        "[[instance.unicast_peer]] has no address",
        Some("address = "),
    );
    expect(
        &inst("unicast_peers = [\"10.0.0.2\"]\n[[instance.unicast_peer]]\naddress = \"10.0.0.2\""),
        8,
        11,
        "unicast peer 10.0.0.2 is listed twice (also at line 6)",
        None,
    );
    expect(
        &inst("unicast_min_ttl = 255"),
        6,
        19,
        "unicast_min_ttl in instance `VI_1`, which has no unicast peers",
        Some("TTL 255"),
    );
    expect(
        &inst("unicast_peers = [\"10.0.0.2\"]\nunicast_min_ttl = 0"),
        7,
        19,
        "unicast_min_ttl 0 is out of range (1..=255)",
        None,
    );
    expect(
        &inst("unicast_peers = [\"10.0.0.2\"]\nallowed_sources = [\"10.0.0.2\"]"),
        7,
        19,
        "allowed_sources in instance `VI_1`, which has unicast peers",
        None,
    );
    expect(
        &inst("allowed_sources = [\"fd00::2\"]"),
        6,
        20,
        "allowed source fd00::2 is IPv6",
        None,
    );
    expect(
        &inst("allowed_sources = []"),
        6,
        19,
        "allowed_sources in instance `VI_1` is empty",
        None,
    );
    expect(
        &inst("max_adopted_interval = \"500ms\""),
        6,
        24,
        "max_adopted_interval 500ms is below instance `VI_1`'s own advert_interval 1s",
        None,
    );
    expect(
        &inst("version = 2\nmax_adopted_interval = \"3s\""),
        7,
        24,
        "max_adopted_interval is VRRPv3-only",
        None,
    );
    expect(
        &inst("max_adopted_interval = \"41s\""),
        6,
        24,
        "max_adopted_interval 41s is out of range",
        None,
    );
}

// ------------------------------------------------------------------------------------------
// auth_pass and checksum

#[test]
fn auth_pass_errors() {
    expect(
        &inst("auth_pass = \"secret\""),
        6,
        13,
        "auth_pass is VRRPv2-only",
        Some("set version = 2"),
    );
    expect(
        &inst("version = 2\nauth_pass = \"123456789\""),
        7,
        13,
        "auth_pass must be 1 to 8 printable ASCII characters (found 9 bytes)",
        None,
    );
    expect(
        &inst("version = 2\nauth_pass = \"pässe\""),
        7,
        13,
        "printable ASCII",
        None,
    );
    expect(
        &inst("version = 2\nauth_pass = \"\""),
        7,
        13,
        "found 0 bytes",
        None,
    );
}

#[test]
fn instance_checksum_only_for_v3_ipv4() {
    expect(
        &inst("version = 2\nchecksum = \"without-pseudo-header\""),
        7,
        12,
        "VRRPv2 checksums never include a pseudo-header",
        Some("remove checksum"),
    );
    expect(
        &with_vips("[\"fd00::1/64\"]\nchecksum = \"with-pseudo-header\""),
        6,
        12,
        "over IPv6 the pseudo-header is always included",
        None,
    );
    expect(
        &inst("checksum = \"pseudo\""),
        6,
        12,
        "unknown checksum mode \"pseudo\"",
        None,
    );
}

// ------------------------------------------------------------------------------------------
// Sync groups

fn two() -> String {
    format!(
        "{}{}",
        inst(""),
        inst("")
            .replace("VI_1", "VI_2")
            .replace("vrid = 51", "vrid = 52")
    )
}

#[test]
fn sync_group_shared_member() {
    let text = format!(
        "{}[[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\", \"VI_2\"]\n[[sync_group]]\nname = \"H\"\ninstances = [\"VI_2\", \"VI_1\"]\n",
        two()
    );
    expect(
        &text,
        18,
        14,
        "instance `VI_2` is already in sync_group `G` (line 15)",
        Some("one sync group only"),
    );
}

#[test]
fn sync_group_duplicates_and_missing_keys() {
    let text = format!(
        "{}[[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\", \"VI_1\"]\n[[sync_group]]\nname = \"G\"\ninstances = [\"VI_2\"]\n[[sync_group]]\n",
        two()
    );
    expect(
        &text,
        15,
        22,
        "instance `VI_1` is listed twice in sync_group `G`",
        None,
    );
    expect(
        &text,
        17,
        8,
        "duplicate sync_group name `G` (first defined at line 14)",
        None,
    );
    expect(&text, 19, 1, "sync_group #3 has no name", None);
}

// ------------------------------------------------------------------------------------------
// Limits

#[test]
fn too_many_instances() {
    let mut text = String::new();
    for i in 0..1025 {
        text.push_str(&format!(
            "[[instance]]\nname = \"i{i}\"\ninterface = \"e{}\"\nvrid = {}\nvips = [\"10.{}.{}.1/24\"]\n",
            i / 200,
            i % 200 + 1,
            i / 200,
            i % 200
        ));
    }
    // instance #1025 starts at line 1024 * 5 + 1
    expect(
        &text,
        1024 * 5 + 1,
        1,
        "too many instances (1025): at most 1024",
        None,
    );
}

#[test]
fn too_many_vips() {
    let list: Vec<String> = (0..256)
        .map(|i| format!("\"10.0.{}.{}/16\"", i / 250, i % 250 + 1))
        .collect();
    let text = with_vips(&format!("[\n{}\n]", list.join(",\n")));
    // the 256th VIP is on line 5 + 256
    expect(
        &text,
        261,
        1,
        "too many advertised VIPs in instance `VI_1`: at most 255",
        None,
    );
    // 255 is fine
    let ok = with_vips(&format!("[\n{}\n]", list[..255].join(",\n")));
    let cfg = parse_str(&ok, Path::new("t")).unwrap().config;
    assert_eq!(cfg.instances[0].vips.len(), 255);
}

#[test]
fn too_many_peers() {
    let list: Vec<String> = (0..65).map(|i| format!("\"10.1.0.{}\"", i + 1)).collect();
    let text = inst(&format!("unicast_peers = [\n{}\n]", list.join(",\n")));
    expect(
        &text,
        7 + 64,
        1,
        "too many unicast_peers in instance `VI_1`: at most 64",
        None,
    );
}

// ------------------------------------------------------------------------------------------
// Files

#[test]
fn missing_file_names_the_path() {
    let p = Path::new("/nonexistent/vipd/vipd.toml");
    let d = vipd_config::load(p).unwrap_err();
    let e = d.errors().next().unwrap();
    assert_eq!((e.line, e.column), (0, 0));
    assert!(
        e.message.contains("/nonexistent/vipd/vipd.toml"),
        "{}",
        e.message
    );
    assert!(
        d.to_string().starts_with(
            "/nonexistent/vipd/vipd.toml: error: cannot open /nonexistent/vipd/vipd.toml:"
        ),
        "{d}"
    );
}

/// A scratch file, removed (with its directory, once empty) when dropped, also on panic.
struct TmpFile(std::path::PathBuf);

impl std::ops::Deref for TmpFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TmpFile {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn tmp(name: &str) -> TmpFile {
    // One directory per file: tests run in parallel, and each removes its own.
    let dir = std::env::temp_dir().join(format!("vipd-config-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    TmpFile(dir.join(name))
}

#[test]
fn directory_is_an_error() {
    let d = vipd_config::load(&std::env::temp_dir()).unwrap_err();
    assert!(d.errors().next().unwrap().message.contains("directory"));
}

#[test]
fn oversized_file_is_rejected() {
    let p = tmp("big.toml");
    let mut text = String::from("# filler\n");
    while text.len() <= 1024 * 1024 {
        text.push_str("# 0123456789012345678901234567890123456789012345678901234567890123456789\n");
    }
    std::fs::write(&p, &text).unwrap();
    let d = vipd_config::load(&p).unwrap_err();
    assert!(
        d.errors()
            .next()
            .unwrap()
            .message
            .contains("the limit is 1048576 bytes")
    );
    let d = parse_str(&text, &p).unwrap_err();
    assert!(d.errors().next().unwrap().message.contains("limit"));
}

#[test]
fn non_utf8_is_located() {
    let p = tmp("latin1.toml");
    std::fs::write(&p, b"[global]\nrouter_id = \"caf\xe9\"\n").unwrap();
    let d = vipd_config::load(&p).unwrap_err();
    let e = d.errors().next().unwrap();
    assert_eq!((e.line, e.column), (2, 17));
    assert!(e.message.contains("not valid UTF-8"));
}

#[test]
fn load_reads_a_valid_file() {
    let p = tmp("ok.toml");
    std::fs::write(&p, inst("")).unwrap();
    let loaded = vipd_config::load(&p).unwrap();
    assert_eq!(loaded.config.instances.len(), 1);
}

#[test]
fn vip_sets_that_cannot_be_advertised() {
    let head = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n";
    // VRRPv3 without VIPs.
    expect(
        head,
        1,
        1,
        "has no virtual addresses",
        Some("no_vips = true"),
    );
    // VRRPv3 with excluded VIPs only.
    expect(
        &format!("{head}excluded_vips = [\"10.0.0.9\"]\n"),
        1,
        1,
        "only excluded VIPs",
        Some("no_vips"),
    );
    // 256 advertised: the hint names excluded VIPs.
    let many: Vec<String> = (0..256)
        .map(|n| format!("\"10.1.{}.{}\"", n / 200, n % 200 + 1))
        .collect();
    let errs = errors(&format!("{head}vips = [{}]\n", many.join(", ")));
    assert!(
        errs.iter()
            .any(|d| d.message.contains("too many advertised VIPs")
                && d.hint.as_deref().unwrap_or("").contains("excluded")),
        "{errs:?}"
    );
    // Mixed families among advertised VIPs (excluded ones may mix).
    expect(
        &format!("{head}vips = [\"10.0.0.1\", \"2001:db8::1\"]\n"),
        5,
        21,
        "is IPv6 but",
        Some("excluded"),
    );
    // A bad device name.
    expect(
        &format!(
            "{head}vips = [\"10.0.0.1\"]\n[[instance.vip]]\naddress = \"10.0.0.2\"\ninterface = \"a/b\"\n"
        ),
        8,
        13,
        "",
        None,
    );
    // The same address advertised and excluded.
    expect(
        &format!("{head}vips = [\"10.0.0.1\"]\nexcluded_vips = [\"10.0.0.1/24\"]\n"),
        6,
        18,
        "listed twice",
        None,
    );
}

#[test]
fn routes_and_rules_that_cannot_be_installed() {
    let head =
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"10.0.0.1\"]\n";
    // Line 6 is the table header, 7 the first key.
    expect(
        &format!("{head}[[instance.route]]\nvia = \"10.0.0.254\"\n"),
        6,
        1,
        "has no destination",
        Some("default"),
    );
    expect(
        &format!("{head}[[instance.route]]\nto = \"10.1.2.3/16\"\nvia = \"10.0.0.254\"\n"),
        7,
        6,
        "has host bits set",
        Some("10.1.0.0/16"),
    );
    expect(
        &format!("{head}[[instance.route]]\nto = \"10.1.0.0/16\"\n"),
        6,
        1,
        "neither via nor interface",
        None,
    );
    expect(
        &format!("{head}[[instance.route]]\nto = \"10.1.0.0/16\"\nvia = \"2001:db8::1\"\n"),
        8,
        7,
        "is IPv6 but the route is IPv4",
        None,
    );
    expect(
        &format!("{head}[[instance.route]]\nto = \"10.1.0.0/16\"\ntype = \"blackhol\"\n"),
        8,
        8,
        "unknown type",
        Some("blackhole"),
    );
    expect(
        &format!(
            "{head}[[instance.route]]\nto = \"10.1.0.0/16\"\ntype = \"blackhole\"\nvia = \"10.0.0.254\"\n"
        ),
        6,
        1,
        "has no via or interface",
        None,
    );
    expect(
        &format!(
            "{head}[[instance.route]]\nto = \"10.1.0.0/16\"\nvia = \"10.0.0.254\"\ntable = 0\n"
        ),
        9,
        9,
        "table 0",
        None,
    );
    expect(
        &format!(
            "{head}[[instance.route]]\nto = \"10.1.0.0/16\"\nvia = \"10.0.0.254\"\n[[instance.route]]\nto = \"10.1.0.0/16\"\nvia = \"10.0.0.254\"\n"
        ),
        9,
        1,
        "listed twice",
        None,
    );
    expect(
        &format!("{head}[[instance.rule]]\nfrom = \"10.0.0.0/8\"\n"),
        6,
        1,
        "neither table nor type",
        None,
    );
    expect(
        &format!(
            "{head}[[instance.rule]]\nfrom = \"10.0.0.0/8\"\ntable = 5\ntype = \"prohibit\"\n"
        ),
        9,
        8,
        "either a table or a type",
        None,
    );
    expect(
        &format!(
            "{head}[[instance.rule]]\nfrom = \"10.0.0.0/8\"\nto = \"2001:db8::/32\"\ntable = 5\n"
        ),
        8,
        6,
        "but the rule is IPv4",
        None,
    );
}
