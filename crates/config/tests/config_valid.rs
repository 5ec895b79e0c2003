//! Valid configurations: defaults, resolution, both VIP forms, warnings, rendering.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd_config::{
    ChecksumMode, Config, Diagnostic, Family, Garp, Loaded, Scope, Severity, Version, Vip,
    parse_str,
};

fn ok(text: &str) -> Loaded {
    match parse_str(text, Path::new("t.toml")) {
        Ok(l) => l,
        Err(d) => panic!("unexpected errors:\n{d}"),
    }
}

fn cfg(text: &str) -> Config {
    let l = ok(text);
    assert!(
        l.warnings.is_empty(),
        "unexpected warnings: {:?}",
        l.warnings
    );
    l.config
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn inst(extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"10.0.0.100/24\"]\n{extra}\n"
    )
}

#[track_caller]
fn one_warning(text: &str, line: usize, col: usize, msg: &str) -> Diagnostic {
    let l = ok(text);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = l.warnings[0].clone();
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!((w.line, w.column), (line, col), "{w}");
    assert!(w.message.contains(msg), "{:?} lacks {msg:?}", w.message);
    w
}

#[test]
fn defaults() {
    let c = cfg(&inst(""));
    assert_eq!(c.global.router_id, None);
    assert_eq!(
        c.global.control_socket,
        PathBuf::from("/run/vipd/vipd.sock")
    );
    assert_eq!(c.global.vrrp_version, Version::V3);
    assert_eq!(c.global.checksum, ChecksumMode::WithPseudoHeader);
    assert_eq!(
        c.global.garp,
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
            lower_prio_repeat: None,
            lower_prio_delay: None,
        }
    );
    assert_eq!(c.global.garp.lower_prio_repeat(), 5);
    assert_eq!(c.global.garp.lower_prio_delay(), Duration::from_secs(5));
    assert!(!c.global.lower_prio_no_advert);
    let i = c.instance("VI_1").unwrap();
    assert_eq!(i.interface, "eth0");
    assert_eq!(i.vrid, 51);
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.family, Family::Ipv4);
    assert_eq!(i.priority, 100);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert_eq!(i.advert_interval_wire(), 100);
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert!(
        i.accept,
        "accepts by default, as keepalived outside strict mode"
    );
    assert_eq!(i.source_address, None);
    assert!(i.unicast_peers.is_empty());
    assert!(!i.is_unicast());
    assert_eq!(i.auth_pass, None);
    assert_eq!(i.checksum, ChecksumMode::WithPseudoHeader);
    assert_eq!(i.garp, c.global.garp);
    assert!(c.sync_groups.is_empty());
    assert!(c.instance("nope").is_none());
    assert!(!c.global.effective_router_id().is_empty());
}

#[test]
fn empty_file_is_a_valid_empty_config() {
    let c = cfg("");
    assert!(c.instances.is_empty());
}

#[test]
fn global_defaults_flow_into_instances_and_can_be_overridden() {
    let text = "[global]\nvrrp_version = 2\nchecksum = \"without-pseudo-header\"\ngarp_master_delay = \"10s\"\ngarp_master_repeat = 3\ngarp_master_refresh = \"60s\"\ngarp_master_refresh_repeat = 2\ngarp_interval = \"10ms\"\n\n[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvips = [\"10.0.0.1/24\"]\n\n[[instance]]\nname = \"b\"\ninterface = \"eth0\"\nvrid = 2\nversion = 3\nchecksum = \"with-pseudo-header\"\ngarp_master_repeat = 1\ngarp_master_refresh = \"0s\"\nvips = [\"10.0.0.2/24\"]\n";
    let c = cfg(text);
    let a = c.instance("a").unwrap();
    assert_eq!(a.version, Version::V2);
    assert_eq!(a.advert_interval_wire(), 1);
    assert_eq!(a.checksum, ChecksumMode::WithoutPseudoHeader);
    assert_eq!(a.garp.master_delay, Duration::from_secs(10));
    assert_eq!(a.garp.master_repeat, 3);
    assert_eq!(a.garp.master_refresh, Some(Duration::from_secs(60)));
    assert_eq!(a.garp.master_refresh_repeat, 2);
    assert_eq!(a.garp.interval, Duration::from_millis(10));
    let b = c.instance("b").unwrap();
    assert_eq!(b.version, Version::V3);
    assert_eq!(b.checksum, ChecksumMode::WithPseudoHeader);
    assert_eq!(b.garp.master_repeat, 1);
    assert_eq!(b.garp.master_refresh, None);
    assert_eq!(b.garp.master_delay, Duration::from_secs(10));
}

#[test]
fn short_and_long_vip_forms_are_equivalent() {
    let short = cfg(&inst("").replace(
        "vips = [\"10.0.0.100/24\"]",
        "vips = [\"10.0.0.100/24\", \"10.0.0.101\"]",
    ));
    let long = cfg(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\n\
         [[instance.vip]]\naddress = \"10.0.0.100/24\"\n\
         [[instance.vip]]\naddress = \"10.0.0.101\"\nscope = \"global\"\n",
    );
    let mixed = cfg(&inst("[[instance.vip]]\naddress = \"10.0.0.101/32\""));
    assert_eq!(short, long);
    assert_eq!(short, mixed);
    let vips = &short.instances[0].vips;
    assert_eq!(
        vips[0],
        Vip {
            addr: ip("10.0.0.100"),
            prefix_len: 24,
            label: None,
            scope: Scope::Global,
            interface: None,
            excluded: false,
        }
    );
    assert_eq!(vips[1].prefix_len, 32);
    assert_eq!(vips[0].to_string(), "10.0.0.100/24");
}

#[test]
fn long_form_label_and_scope() {
    let c = cfg(&inst(
        "[[instance.vip]]\naddress = \"10.0.0.101/24\"\nlabel = \"eth0:vip\"\nscope = \"link\"",
    ));
    let v = &c.instances[0].vips[1];
    assert_eq!(v.label.as_deref(), Some("eth0:vip"));
    assert_eq!(v.scope, Scope::Link);
    assert_eq!(v.scope.rt_scope(), 253);
}

#[test]
fn ipv6_instance() {
    let c = cfg(
        "[[instance]]\nname = \"v6\"\ninterface = \"eth0\"\nvrid = 7\nadvert_interval = \"250ms\"\nvips = [\"fe80::7/64\", \"2001:db8::7\"]\nunicast_peers = [\"fe80::2\"]\n",
    );
    let i = &c.instances[0];
    assert_eq!(i.family, Family::Ipv6);
    assert_eq!(i.vips[1].prefix_len, 128);
    assert_eq!(i.advert_interval_wire(), 25);
    assert_eq!(i.unicast_peers, vec![ip("fe80::2")]);
}

#[test]
fn unicast_and_owner() {
    let text = inst(
        "priority = 255\nsource_address = \"10.0.0.11\"\nunicast_peers = [\"10.0.0.12\", \"10.0.0.13\"]",
    );
    let l = ok(&text);
    let i = &l.config.instances[0];
    assert!(i.is_owner());
    assert!(i.accept, "owners accept by default");
    assert!(i.is_unicast());
    assert_eq!(i.source_address, Some(ip("10.0.0.11")));
    assert_eq!(i.unicast_peers, vec![ip("10.0.0.12"), ip("10.0.0.13")]);
    // explicit accept wins
    let l = ok(&inst("priority = 255\naccept = false"));
    assert!(!l.config.instances[0].accept);
}

#[test]
fn vrrpv2_auth_pass() {
    let l = ok(&inst(
        "version = 2\nadvert_interval = \"3s\"\nauth_pass = \"pw\"",
    ));
    let i = &l.config.instances[0];
    let pass = i.auth_pass.as_ref().unwrap();
    assert_eq!(pass.as_str(), "pw");
    assert_eq!(pass.wire_bytes(), *b"pw\0\0\0\0\0\0");
    assert_eq!(format!("{pass:?}"), "AuthPass(<redacted>)");
    assert_eq!(i.advert_interval_wire(), 3);
}

#[test]
fn sync_groups_resolve() {
    let text = format!(
        "{}{}[[sync_group]]\nname = \"G1\"\ninstances = [\"VI_1\", \"VI_2\"]\n",
        inst(""),
        inst("")
            .replace("VI_1", "VI_2")
            .replace("vrid = 51", "vrid = 52")
            .replace(".100/", ".101/")
    );
    let c = cfg(&text);
    assert_eq!(c.sync_groups[0].instances, vec!["VI_1", "VI_2"]);
    assert_eq!(c.sync_group_of("VI_2").map(|g| g.name.as_str()), Some("G1"));
    assert_eq!(c.sync_group("G1"), c.sync_groups.first());
}

#[test]
fn reload_diff_by_name() {
    let old = cfg(&inst(""));
    let new = cfg(&inst("priority = 120"));
    assert_ne!(old.instance("VI_1"), new.instance("VI_1"));
    let same = cfg(&inst("# a comment changes nothing\npriority = 100"));
    assert_eq!(old, same);
}

#[test]
fn inline_tables_work_too() {
    let c = cfg(
        "instance = [{ name = \"a\", interface = \"eth0\", vrid = 1, vip = [{ address = \"10.0.0.1/24\" }] }]\n",
    );
    assert_eq!(c.instances[0].vips.len(), 1);
}

// ------------------------------------------------------------------------------------------
// Warnings

#[test]
fn warn_priority_255() {
    let w = one_warning(
        &inst("priority = 255"),
        6,
        12,
        "priority 255 claims address ownership; keepalived users usually mean 254",
    );
    assert!(w.hint.is_some());
}

#[test]
fn warn_v2_auth_pass_is_plain_text() {
    one_warning(
        &inst("version = 2\nauth_pass = \"secret\""),
        7,
        13,
        "clear text",
    );
}

#[test]
fn warn_very_short_v3_interval() {
    let w = one_warning(
        &inst("advert_interval = \"50ms\""),
        6,
        19,
        "advert_interval 50ms is very short",
    );
    assert!(w.message.contains("150ms"), "{}", w.message);
    // 100ms is fine
    cfg(&inst("advert_interval = \"100ms\""));
}

#[test]
fn warn_preempt_delay_without_preempt() {
    one_warning(
        &inst("preempt = false\npreempt_delay = \"10s\""),
        7,
        17,
        "preempt_delay has no effect with preempt = false",
    );
    cfg(&inst("preempt = false\npreempt_delay = \"0s\""));
}

#[test]
fn warn_vip_shared_between_instances() {
    let text = format!(
        "{}{}",
        inst(""),
        inst("").replace("VI_1", "VI_2").replace("eth0", "eth1")
    );
    one_warning(
        &text,
        11,
        9,
        "VIP 10.0.0.100 is also a VIP of instance `VI_1` (line 5)",
    );
}

#[test]
fn warnings_are_kept_alongside_errors() {
    let d = parse_str(&inst("priority = 255\nvrid2 = 1"), Path::new("t.toml")).unwrap_err();
    // the shape check stops before validation, so only the error is there
    assert_eq!(d.errors().count(), 1);
    let d = parse_str(
        &inst("priority = 255\nadvert_interval = \"15ms\""),
        Path::new("t.toml"),
    )
    .unwrap_err();
    assert_eq!(d.errors().count(), 1);
    assert_eq!(d.warnings().count(), 1);
    // errors render first, then warnings, then a summary
    let s = d.to_string();
    let e = s.find("error:").unwrap();
    let w = s.find("warning:").unwrap();
    assert!(e < w, "{s}");
    assert!(s.ends_with("1 error, 1 warning\n"), "{s}");
}

// ------------------------------------------------------------------------------------------
// Rendering

#[test]
fn rendering_matches_the_documented_format() {
    let text = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"10.0.0.100/24\"]\n# c\n# c\n# c\n# c\n# c\n# c\nadvert_interval = \"15ms\"\n";
    let d = parse_str(text, Path::new("/etc/vipd/vipd.toml")).unwrap_err();
    let e = d.errors().next().unwrap();
    assert_eq!(
        e.to_string(),
        "/etc/vipd/vipd.toml:12:19: error: advert_interval 15ms is not a multiple of 10ms (VRRPv3 counts centiseconds)\n   |\n12 | advert_interval = \"15ms\"\n   |                   ^^^^^^\n  hint: use 10ms or 20ms\n"
    );
}

#[test]
fn warn_ipv6_first_vip_not_link_local() {
    let text = "[[instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvrid = 61\nvips = [\"2001:db8::100/64\", \"fe80::100/64\"]\n";
    let w = one_warning(text, 5, 9, "not a link-local address");
    assert!(w.hint.as_deref().is_some_and(|h| h.contains("fe80::")));
    // Link-local first: no warning.
    let ok_text = "[[instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvrid = 61\nvips = [\"fe80::100/64\", \"2001:db8::100/64\"]\n";
    assert!(ok(ok_text).warnings.is_empty());
}

#[test]
fn changed_keys_name_each_differing_key_once() {
    use vipd_config::keys::instance as k;
    let base = cfg(&inst(
        "priority = 100\nunicast_peers = [\"10.0.0.2\", \"10.0.0.3\"]",
    ));
    let same_peers_reordered = cfg(&inst(
        "priority = 100\nunicast_peers = [\"10.0.0.3\", \"10.0.0.2\"]",
    ));
    let a = &base.instances[0];
    assert!(
        a.changed_keys(&same_peers_reordered.instances[0])
            .is_empty()
    );
    assert!(a.changed_keys(a).is_empty());
    let changed = cfg(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth1\"\nvrid = 51\nvips = [\"10.0.0.101/24\"]\n\
         priority = 120\npreempt_delay = \"5s\"\ngarp_master_repeat = 2\nnotify_master = \"/bin/true\"\n\
         unicast_peers = [\"10.0.0.2\"]\n",
    );
    assert_eq!(
        a.changed_keys(&changed.instances[0]),
        vec![
            k::interface,
            k::vips,
            k::priority,
            k::preempt_delay,
            k::unicast_peers,
            k::garp_master_repeat,
            k::notify_master,
        ]
    );
}

#[test]
fn lower_priority_answer_keys_default_to_the_master_ones_and_override_per_instance() {
    let c = cfg(&format!(
        "[global]\ngarp_master_repeat = 3\ngarp_master_delay = \"2s\"\nlower_prio_no_advert = true\n{}",
        inst("garp_lower_prio_repeat = 7\nlower_prio_no_advert = false")
    ));
    let i = &c.instances[0];
    assert_eq!(i.garp.lower_prio_repeat(), 7);
    assert_eq!(
        i.garp.lower_prio_delay(),
        Duration::from_secs(2),
        "follows garp_master_delay"
    );
    assert!(
        !i.lower_prio_no_advert,
        "the instance overrides the global default"
    );
    let c = cfg(&format!(
        "[global]\nlower_prio_no_advert = true\ngarp_lower_prio_delay = \"0s\"\n{}",
        inst("")
    ));
    assert!(c.instances[0].lower_prio_no_advert);
    assert_eq!(c.instances[0].garp.lower_prio_delay(), Duration::ZERO);
}

#[test]
fn fast_preempt_defaults_from_global_and_warns_without_preempt() {
    let c = cfg(&format!("[global]\nfast_preempt = true\n{}", inst("")));
    assert!(c.instances[0].fast_preempt);
    let c = cfg(&inst("fast_preempt = false"));
    assert!(!c.instances[0].fast_preempt);
    let l = ok(&inst("preempt = false\nfast_preempt = true"));
    assert!(
        l.warnings.iter().any(|w| w
            .to_string()
            .contains("fast_preempt has no effect with preempt = false")),
        "{:?}",
        l.warnings
    );
}

const GROUP_TRACKING: &str = r#"
[[track_file]]
name = "lb"
path = "/run/lb-health"
weight = -30

[[track_file]]
name = "uplink"
path = "/run/uplink"
weight = -10

[[instance]]
name = "VI_A"
interface = "eth0"
vrid = 51
vips = ["10.0.0.100/24"]
track_files = ["lb"]

[[instance]]
name = "VI_B"
interface = "eth1"
vrid = 52
vips = ["10.0.1.100/24"]

[[sync_group]]
name = "G1"
instances = ["VI_A", "VI_B"]
track_files = ["uplink"]
"#;

/// keepalived's sync-group tracking: the group's trackers are followed by every member, and
/// members' weights act as 0 (FAULT of the group) unless `tracking_weight = true`; the
/// validator says which weights it ignores.
#[test]
fn sync_group_trackers_and_ignored_member_weights() {
    let weights = |c: &Config, inst: &str| -> Vec<(String, i32)> {
        c.instances
            .iter()
            .find(|i| i.name == inst)
            .map(|i| i.track.iter().map(|t| (t.name.clone(), t.weight)).collect())
            .unwrap_or_default()
    };
    let l = ok(GROUP_TRACKING);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = &l.warnings[0];
    assert!(
        w.message
            .contains("sync_group `G1`: tracker weights of its members are ignored")
            && w.message.contains("VI_A: lb -30")
            && w.message.contains("VI_B: uplink -10"),
        "{w}"
    );
    assert_eq!(
        weights(&l.config, "VI_A"),
        [("lb".to_string(), 0), ("uplink".to_string(), 0)]
    );
    assert_eq!(weights(&l.config, "VI_B"), [("uplink".to_string(), 0)]);
    // Kept with tracking_weight = true.
    let kept = cfg(&GROUP_TRACKING.replace(
        "instances = [\"VI_A\", \"VI_B\"]",
        "instances = [\"VI_A\", \"VI_B\"]\ntracking_weight = true",
    ));
    assert_eq!(
        weights(&kept, "VI_A"),
        [("lb".to_string(), -30), ("uplink".to_string(), -10)]
    );
    assert_eq!(weights(&kept, "VI_B"), [("uplink".to_string(), -10)]);
    assert!(kept.sync_groups[0].tracking_weight);
}

/// `[instance.auth_hmac]`: keys inline (with a warning), from a 0600 file (read by the host
/// pass), not from a group-readable one; several keys need active_key; auth_pass excludes it.
#[test]
fn auth_hmac_keys_and_rules() {
    use std::os::unix::fs::PermissionsExt;
    use vipd_proto::auth::{AntiReplay, Mode};
    let secret = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let l = ok(&inst(&format!(
        "advert_interval = \"1s\"\n[instance.auth_hmac]\nkeys = [{{ id = 1, value = \"{secret}\" }}]\n"
    )));
    let a = l.config.instances[0].auth_hmac.clone().expect("auth_hmac");
    assert_eq!((a.mode, a.active), (Mode::Enforce, 1));
    assert_eq!(a.keys[0].secret, (0u8..32).collect::<Vec<u8>>());
    assert_eq!(
        a.anti_replay,
        AntiReplay::Time {
            window: Duration::from_secs(5)
        }
    );
    assert!(
        l.warnings.iter().any(|w| w
            .message
            .contains("the key is written in the configuration file")),
        "{:?}",
        l.warnings
    );
    // From a file: 0600 is read, 0644 refused.
    let dir = std::env::temp_dir().join(format!("vipd-hmac-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k1");
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = inst(&format!(
        "[instance.auth_hmac]\nmode = \"permissive\"\nanti_replay = \"monotonic\"\nkeys = [{{ id = 7, file = \"{}\" }}]\n",
        key.display()
    ));
    let a = cfg(&text).instances[0]
        .auth_hmac
        .clone()
        .expect("auth_hmac");
    assert_eq!(
        (a.mode, a.active, a.anti_replay),
        (Mode::Permissive, 7, AntiReplay::Monotonic)
    );
    assert_eq!(a.keys[0].secret.len(), 32);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = parse_str(&text, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("readable or writable by group or others"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
    // Two keys without active_key; a short key; auth_pass with it.
    let two = inst(&format!(
        "[instance.auth_hmac]\nkeys = [{{ id = 1, value = \"{secret}\" }}, {{ id = 2, value = \"{secret}\" }}]\n"
    ));
    let e = parse_str(&two, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("say which one signs"), "{e}");
    let short = inst("[instance.auth_hmac]\nkeys = [{ id = 1, value = \"too short\" }]\n");
    let e = parse_str(&short, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 32 bytes"), "{e}");
    let both = inst(&format!(
        "version = 2\nadvert_interval = \"1s\"\nauth_pass = \"x\"\n[instance.auth_hmac]\nkeys = [{{ id = 1, value = \"{secret}\" }}]\n"
    ));
    let e = parse_str(&both, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("auth_pass and auth_hmac exclude each other"),
        "{e}"
    );
}

#[test]
fn receive_buffer() {
    assert_eq!(
        cfg(&inst("")).global.receive_buffer,
        vipd_config::DEFAULT_RECEIVE_BUFFER
    );
    let c = cfg(&format!("[global]\nreceive_buffer = 4194304\n{}", inst("")));
    assert_eq!(c.global.receive_buffer, 4 << 20);
}

#[test]
fn source_limits() {
    let c = cfg(&inst(
        "unicast_min_ttl = 255\nunicast_peers = [\"10.0.0.2\"]\nmax_adopted_interval = \"3s\"\n[[instance.unicast_peer]]\naddress = \"10.1.0.3\"\nmin_ttl = 250\n[[instance.unicast_peer]]\naddress = \"10.1.0.4\"\nmin_ttl = 1\nmax_ttl = 64",
    ));
    let i = &c.instances[0];
    assert_eq!(
        i.unicast_peers,
        vec![ip("10.0.0.2"), ip("10.1.0.3"), ip("10.1.0.4")]
    );
    let ttl = |p: &str, min: u8, max: u8| vipd_proto::rx::PeerTtl {
        peer: ip(p),
        min,
        max,
    };
    assert_eq!(
        i.peer_ttl,
        vec![
            ttl("10.0.0.2", 255, 255),
            ttl("10.1.0.3", 250, 255),
            ttl("10.1.0.4", 1, 64)
        ]
    );
    assert_eq!(i.max_adopted_interval, Some(Duration::from_secs(3)));
    // Without limits: no entries (any TTL), and multicast's allowlist.
    let c = cfg(&inst("allowed_sources = [\"10.0.0.2\", \"10.0.0.3\"]"));
    assert!(c.instances[0].peer_ttl.is_empty());
    assert_eq!(
        c.instances[0].allowed_sources,
        vec![ip("10.0.0.2"), ip("10.0.0.3")]
    );
}

/// keepalived's sync-group rules: an unknown member is ignored, a group of one is kept, a
/// group without (known) members is removed; each with a warning, never an error.
#[test]
fn sync_groups_as_keepalived_accepts_them() {
    let two = format!(
        "{}{}",
        inst(""),
        inst("")
            .replace("VI_1", "VI_2")
            .replace("vrid = 51", "vrid = 52")
    );
    let l = ok(&format!(
        "{two}[[sync_group]]\nname = \"ONE\"\ninstances = [\"VI_1\", \"VI_3\"]\n[[sync_group]]\nname = \"NONE\"\ninstances = [\"VI_9\"]\n"
    ));
    let msgs: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        msgs.contains(&"sync_group `ONE` refers to unknown instance `VI_3`: ignored"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("sync_group `ONE` has only one instance")),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"sync_group `NONE` has no instances: ignored"),
        "{msgs:?}"
    );
    assert_eq!(l.config.sync_groups.len(), 1);
    assert_eq!(l.config.sync_groups[0].name, "ONE");
    assert_eq!(l.config.sync_groups[0].instances, ["VI_1"]);
}

/// keepalived's label rule: any label of up to 15 bytes (OpenShift writes `label vip`).
#[test]
fn labels_without_the_interface_prefix() {
    let c = cfg(&format!(
        "{}[[instance.vip]]\naddress = \"10.0.0.101/24\"\nlabel = \"vip\"\n",
        inst("")
    ));
    assert_eq!(c.instances[0].vips[1].label.as_deref(), Some("vip"));
}

#[test]
fn startup_delay() {
    assert_eq!(cfg(&inst("")).global.startup_delay, Duration::ZERO);
    let c = cfg(&format!("[global]\nstartup_delay = \"5s\"\n{}", inst("")));
    assert_eq!(c.global.startup_delay, Duration::from_secs(5));
}

#[test]
fn vip_on_another_device_and_excluded_vips() {
    let c = cfg(&inst(
        "excluded_vips = [\"2001:db8::5/64\", \"192.0.2.7/24\"]\n\
         [[instance.vip]]\naddress = \"198.51.100.1/24\"\ninterface = \"qg-1\"\n\
         [[instance.vip]]\naddress = \"10.0.0.101\"\ninterface = \"eth0\"\n\
         [[instance.vip]]\naddress = \"203.0.113.9/24\"\ninterface = \"qr-2\"\nexcluded = true",
    ));
    let i = &c.instances[0];
    assert_eq!(i.family, Family::Ipv4);
    let shown: Vec<(String, Option<&str>, bool)> = i
        .vips
        .iter()
        .map(|v| (v.to_string(), v.interface.as_deref(), v.excluded))
        .collect();
    assert_eq!(
        shown,
        [
            ("10.0.0.100/24".to_string(), None, false),
            ("198.51.100.1/24".to_string(), Some("qg-1"), false),
            // The instance's own interface is the default.
            ("10.0.0.101/32".to_string(), None, false),
            ("203.0.113.9/24".to_string(), Some("qr-2"), true),
            ("2001:db8::5/64".to_string(), None, true),
            ("192.0.2.7/24".to_string(), None, true),
        ]
    );
    let adv: Vec<String> = i.advertised_vips().map(ToString::to_string).collect();
    assert_eq!(adv, ["10.0.0.100/24", "198.51.100.1/24", "10.0.0.101/32"]);
}

#[test]
fn more_than_255_vips_fit_when_the_rest_are_excluded() {
    let excluded: Vec<String> = (0..300)
        .map(|n| format!("\"10.1.{}.{}\"", n / 200, n % 200 + 1))
        .collect();
    let c = cfg(&inst(&format!("excluded_vips = [{}]", excluded.join(", "))));
    assert_eq!(c.instances[0].vips.len(), 301);
    assert_eq!(c.instances[0].advertised_vips().count(), 1);
}

#[test]
fn instances_without_vips_as_keepalived_accepts_them() {
    // VRRPv2 without VIPs: a warning (keepalived: "at least one is sensible").
    let text = "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\n";
    let w = one_warning(text, 1, 1, "has no virtual addresses");
    assert!(w.hint.as_deref().unwrap_or("").contains("no_vips"), "{w}");
    // no_vips: any version, no warning; the family comes from the source address or a peer.
    let c = cfg(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nno_vips = true\nunicast_peers = [\"2001:db8::2\"]\n",
    );
    assert!(c.instances[0].vips.is_empty());
    assert_eq!(c.instances[0].family, Family::Ipv6);
    let c = cfg("[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nno_vips = true\n");
    assert_eq!(c.instances[0].family, Family::Ipv4);
    // Excluded VIPs only, VRRPv2: held, adverts carry none.
    let c = cfg(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\nexcluded_vips = [\"10.0.0.9\"]\n",
    );
    assert_eq!(c.instances[0].advertised_vips().count(), 0);
}

#[test]
fn routes_and_rules() {
    let c = cfg(&inst(
        "[[instance.route]]\nto = \"default\"\nvia = \"10.0.0.254\"\ntable = 100\n\
         [[instance.route]]\nto = \"192.0.2.0/24\"\ninterface = \"eth1\"\nsrc = \"10.0.0.100\"\nmetric = 5\n\
         [[instance.route]]\nto = \"2001:db8::/32\"\ntype = \"blackhole\"\ntrack = false\n\
         [[instance.route]]\nto = \"default\"\nvia = \"fe80::1\"\ninterface = \"eth0\"\n\
         [[instance.rule]]\nfrom = \"10.0.0.100\"\ntable = 100\npriority = 1000\n\
         [[instance.rule]]\nto = \"2001:db8:1::/48\"\ntype = \"prohibit\"\n\
         [[instance.rule]]\niif = \"eth1\"\nfwmark = 3\nfamily = \"ipv6\"\ntable = 7\n",
    ));
    let i = &c.instances[0];
    let shown: Vec<String> = i.routes.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "default via 10.0.0.254 table 100",
            "192.0.2.0/24 dev eth1 src 10.0.0.100 metric 5",
            "blackhole 2001:db8::/32",
            "default via fe80::1 dev eth0",
        ]
    );
    assert_eq!(i.routes[3].family(), Family::Ipv6);
    assert_eq!(i.routes[1].scope, Scope::Link);
    assert_eq!(i.routes[0].scope, Scope::Global);
    assert!(!i.routes[2].track && i.routes[0].track);
    let rules: Vec<String> = i.rules.iter().map(ToString::to_string).collect();
    assert_eq!(
        rules,
        [
            "pref 1000 from 10.0.0.100/32 lookup 100",
            "from all to 2001:db8:1::/48 prohibit",
            "from all iif eth1 fwmark 0x3/0xffffffff lookup 7",
        ]
    );
    assert_eq!(i.rules[2].family, Family::Ipv6);
}
