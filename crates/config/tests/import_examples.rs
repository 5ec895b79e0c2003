//! keepalived.conf importer: realistic configurations under tests/data/keepalived/.
//!
//! For each file: the key converted fields, and the exact set of keywords reported as not
//! converted (so nothing is dropped silently). Configurations without tracking/notify keys
//! must load with `vipd_config::parse_str` as they are.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd_config::import::{Conversion, NoteSeverity, convert, convert_file};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/keepalived")
        .join(name)
}

fn conv(name: &str) -> Conversion {
    let c = convert_file(&data(name)).unwrap_or_else(|e| panic!("{e}"));
    check_header(&c);
    c
}

/// Every note is listed as a comment at the top; the TOML is valid TOML.
fn check_header(c: &Conversion) {
    let header: Vec<&str> = c.toml.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(header[0].starts_with("# vipd configuration converted from "));
    for n in &c.notes {
        let loc = if n.line > 0 {
            format!("{}:{}", n.file.display(), n.line)
        } else {
            n.file.display().to_string()
        };
        let want = format!("# {}: {loc} {}: ", n.severity.label(), n.keyword);
        assert!(
            header.iter().any(|l| l.starts_with(&want)),
            "note not in header: {want}\n{}",
            c.toml
        );
    }
    assert_eq!(
        header
            .iter()
            .filter(|l| l.starts_with("# NOTE: ")
                || l.starts_with("# WARNING: ")
                || l.starts_with("# NOT CONVERTED: ")
                || l.starts_with("# SECURITY NOT CONVERTED: "))
            .count(),
        c.notes.len()
    );
    toml::from_str::<toml::Table>(&c.toml).unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
}

fn doc(c: &Conversion) -> toml::Table {
    toml::from_str(&c.toml).unwrap()
}

fn load(c: &Conversion) -> vipd_config::Config {
    match vipd_config::parse_str(&c.toml, Path::new("converted.toml")) {
        Ok(l) => l.config,
        Err(d) => panic!("{d}\n{}", c.toml),
    }
}

/// (line, keyword) of every NotConverted (or SecurityLost) note.
fn not_converted(c: &Conversion) -> BTreeSet<(usize, String)> {
    c.notes
        .iter()
        .filter(|n| n.severity >= NoteSeverity::NotConverted)
        .map(|n| (n.line, n.keyword.clone()))
        .collect()
}

fn set(items: &[(usize, &str)]) -> BTreeSet<(usize, String)> {
    items.iter().map(|(l, k)| (*l, k.to_string())).collect()
}

fn has_note(c: &Conversion, sev: NoteSeverity, keyword: &str, line: usize) -> bool {
    c.notes
        .iter()
        .any(|n| n.severity == sev && n.keyword == keyword && n.line == line)
}

fn array<'a>(t: &'a toml::Table, key: &str) -> &'a Vec<toml::Value> {
    t.get(key)
        .and_then(|v| v.as_array())
        .unwrap_or_else(|| panic!("no array `{key}` in {t:?}"))
}

fn tables<'a>(d: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    array(d, key).iter().filter_map(|v| v.as_table()).collect()
}

fn instance<'a>(d: &'a toml::Table, name: &str) -> &'a toml::Table {
    tables(d, "instance")
        .into_iter()
        .find(|t| t.get("name").and_then(|v| v.as_str()) == Some(name))
        .unwrap_or_else(|| panic!("no instance {name}"))
}

fn s<'a>(t: &'a toml::Table, key: &str) -> &'a str {
    t.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no string `{key}` in {t:?}"))
}

fn i(t: &toml::Table, key: &str) -> i64 {
    t.get(key)
        .and_then(|v| v.as_integer())
        .unwrap_or_else(|| panic!("no integer `{key}` in {t:?}"))
}

fn strs(v: &toml::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

#[test]
fn haproxy_pair_master() {
    let c = conv("haproxy-pair-master.conf");
    let d = doc(&c);
    let g = d["global"].as_table().unwrap();
    assert_eq!(s(g, "router_id"), "LB1");
    assert_eq!(
        i(g, "vrrp_version"),
        2,
        "keepalived's default version made explicit"
    );
    assert_eq!(s(g, "script_user"), "keepalived_script");
    assert_eq!(g["enable_script_security"].as_bool(), Some(true));
    assert_eq!(s(g, "garp_interval"), "0s");
    let ts = tables(&d, "track_script");
    assert_eq!(s(ts[0], "name"), "chk_haproxy");
    assert_eq!(strs(&ts[0]["command"]), ["killall", "-0", "haproxy"]);
    assert_eq!(s(ts[0], "interval"), "2s");
    assert_eq!(
        (i(ts[0], "weight"), i(ts[0], "fall"), i(ts[0], "rise")),
        (2, 2, 2)
    );
    let vi = instance(&d, "VI_1");
    assert_eq!(s(vi, "interface"), "eth0");
    assert_eq!((i(vi, "vrid"), i(vi, "priority")), (51, 101));
    assert_eq!(s(vi, "advert_interval"), "1s");
    assert_eq!(s(vi, "auth_pass"), "1111");
    assert_eq!(
        vi.get("accept"),
        None,
        "keepalived's default (accept) is vipd's"
    );
    assert_eq!(strs(&vi["vips"]), ["192.168.10.100/24"]);
    assert_eq!(strs(&vi["track_scripts"]), ["chk_haproxy"]);
    assert!(vi.get("state").is_none());
    assert!(has_note(&c, NoteSeverity::Info, "state", 28));
    assert!(has_note(
        &c,
        NoteSeverity::Info,
        "vrrp_skip_check_adv_addr",
        12
    ));
    assert_eq!(
        not_converted(&c),
        set(&[
            (5, "notification_email"),
            (8, "notification_email_from"),
            (9, "smtp_server"),
            (10, "smtp_connect_timeout"),
        ])
    );
    // vrrp_garp_interval 0 and vrrp_gna_interval 0: the same one interval in vipd (a note).
    assert!(has_note(&c, NoteSeverity::Info, "vrrp_gna_interval", 14));
}

#[test]
fn haproxy_pair_backup() {
    let c = conv("haproxy-pair-backup.conf");
    let d = doc(&c);
    let g = d["global"].as_table().unwrap();
    assert_eq!(s(g, "garp_master_delay"), "10s");
    assert_eq!(i(g, "garp_master_repeat"), 3);
    assert_eq!(s(g, "garp_master_refresh"), "1m");
    assert_eq!(i(g, "garp_master_refresh_repeat"), 2);
    assert_eq!(s(g, "garp_interval"), "1ms");
    let ts = tables(&d, "track_script");
    assert_eq!(
        strs(&ts[0]["command"]),
        ["/usr/bin/systemctl", "is-active", "--quiet", "haproxy"]
    );
    assert_eq!(s(ts[0], "timeout"), "1s");
    assert_eq!(i(ts[0], "weight"), -20);
    assert_eq!(s(ts[0], "user"), "haproxy");
    let vi = instance(&d, "VI_1");
    assert_eq!(vi["preempt"].as_bool(), Some(false));
    assert!(vi.get("vips").is_none());
    let vip = tables(vi, "vip");
    assert_eq!(s(vip[0], "address"), "192.168.10.100/24");
    assert_eq!(s(vip[0], "label"), "eth0:vip");
    let tr = array(vi, "track_scripts")[0].as_table().unwrap();
    assert_eq!((s(tr, "name"), i(tr, "weight")), ("chk_haproxy", -30));
    assert_eq!(not_converted(&c), set(&[(11, "script_user")]));
}

#[test]
fn nginx_pair_with_curl_check() {
    let c = conv("nginx-pair.conf");
    let d = doc(&c);
    let ts = tables(&d, "track_script");
    assert_eq!(
        strs(&ts[0]["command"]),
        [
            "/usr/bin/curl",
            "-sf",
            "-o",
            "/dev/null",
            "http://127.0.0.1/healthz"
        ]
    );
    assert_eq!((s(ts[0], "interval"), s(ts[0], "timeout")), ("3s", "2s"));
    assert!(ts[1].get("command").is_none());
    assert_eq!(s(ts[1], "shell"), "pidof nginx || exit 1");
    assert!(has_note(&c, NoteSeverity::Warning, "script", 16));
    let web = instance(&d, "WEB");
    assert_eq!(s(web, "preempt_delay"), "30s");
    assert_eq!(web["accept"].as_bool(), Some(false), "no_accept");
    assert_eq!(strs(&web["vips"]), ["10.20.0.80/24", "10.20.0.81/24"]);
    let tr = array(web, "track_scripts");
    assert_eq!(tr[0].as_str(), Some("chk_nginx"));
    assert_eq!(i(tr[1].as_table().unwrap(), "weight"), -60);
    assert_eq!(
        strs(&web["notify_master"]),
        ["/usr/local/bin/vip-notify.sh", "master", "WEB"]
    );
    assert_eq!(not_converted(&c), set(&[]));
}

#[test]
fn unicast_in_a_cloud_loads() {
    let c = conv("unicast-cloud.conf");
    let cfg = load(&c);
    let vi = cfg.instance("edge").unwrap();
    assert_eq!(vi.vrid, 10);
    assert_eq!(vi.priority, 120);
    assert_eq!(vi.advert_interval, Duration::from_millis(500));
    assert_eq!(vi.preempt_delay, Duration::from_secs(30));
    assert!(vi.accept);
    assert_eq!(vi.source_address, Some("10.0.1.11".parse().unwrap()));
    assert_eq!(vi.unicast_peers.len(), 2);
    assert_eq!(vi.version, vipd_config::Version::V3);
    assert_eq!(cfg.global.router_id.as_deref(), Some("edge-a"));
    assert!(has_note(
        &c,
        NoteSeverity::Info,
        "vrrp_check_unicast_src",
        5
    ));
    assert_eq!(not_converted(&c), set(&[]));
}

#[test]
fn ipv6_dual_stack_loads() {
    let c = conv("ipv6-dual-stack.conf");
    let cfg = load(&c);
    let w4 = cfg.instance("web4").unwrap();
    let w6 = cfg.instance("web6").unwrap();
    assert_eq!(w4.version, vipd_config::Version::V2, "keepalived default");
    assert_eq!(w6.version, vipd_config::Version::V3, "IPv6 is VRRPv3");
    let addrs: Vec<String> = w6.vips.iter().map(|v| v.addr.to_string()).collect();
    assert_eq!(addrs, ["fe80::60", "2001:db8::80", "2001:db8::81"]);
    assert_eq!(cfg.sync_groups.len(), 1);
    assert_eq!(cfg.sync_groups[0].instances, ["web4", "web6"]);
    assert!(has_note(&c, NoteSeverity::Info, "version", 17));
    assert_eq!(not_converted(&c), set(&[]));
}

#[test]
fn vrrpv2_auth_pass_loads() {
    let c = conv("vrrpv2-auth.conf");
    let cfg = load(&c);
    let legacy = cfg.instance("VI_LEGACY").unwrap();
    assert_eq!(legacy.version, vipd_config::Version::V2);
    assert_eq!(legacy.advert_interval, Duration::from_secs(2), "1.5 rounds");
    assert!(has_note(&c, NoteSeverity::Warning, "advert_int", 12));
    // vrrp_strict: keepalived ignores authentication, and so does the conversion
    assert!(legacy.auth_pass.is_none());
    assert!(!legacy.accept, "strict keeps Accept_Mode off");
    // VIP order is kept even though only the first has a label
    assert_eq!(legacy.vips.len(), 2);
    assert_eq!(legacy.vips[0].addr.to_string(), "172.16.0.100");
    assert_eq!(legacy.vips[0].label.as_deref(), Some("eth2:1"));
    assert_eq!(legacy.vips[1].addr.to_string(), "172.16.0.101");
    assert!(
        has_note(&c, NoteSeverity::Warning, "virtual_ipaddress", 18),
        "brd"
    );
    assert!(
        has_note(&c, NoteSeverity::Warning, "virtual_ipaddress", 19),
        "noprefixroute"
    );
    let ns = cfg.instance("VI_NOSTRICT").unwrap();
    assert_eq!(
        ns.auth_pass.as_ref().map(|a| a.as_str()),
        Some("s3cret-t"),
        "keepalived sends the first 8 bytes"
    );
    assert!(has_note(&c, NoteSeverity::Warning, "auth_pass", 30));
    assert!(ns.accept);
    assert_eq!(not_converted(&c), set(&[(15, "authentication")]));
}

#[test]
fn sync_group_with_notify_scripts() {
    let c = conv("sync-group-notify.conf");
    let d = doc(&c);
    let g = tables(&d, "sync_group");
    assert_eq!(s(g[0], "name"), "G_GW");
    assert_eq!(strs(&g[0]["instances"]), ["OUTSIDE", "INSIDE"]);
    assert_eq!(
        strs(&g[0]["notify_master"]),
        ["/etc/keepalived/notify.sh", "GROUP", "master"]
    );
    assert_eq!(strs(&g[0]["notify_backup"])[2], "backup");
    assert_eq!(strs(&g[0]["notify_fault"])[2], "fault");
    assert_eq!(strs(&g[0]["notify"]), ["/etc/keepalived/notify-any.sh"]);
    let out = instance(&d, "OUTSIDE");
    assert_eq!(
        strs(&out["notify_master"]),
        ["/etc/keepalived/notify.sh", "OUTSIDE up", "master"]
    );
    assert_eq!(strs(&out["notify_stop"]).len(), 3);
    let ins = instance(&d, "INSIDE");
    assert_eq!(strs(&ins["notify"]), ["/usr/bin/logger", "-t", "vrrp"]);
    assert_eq!(
        strs(&ins["notify_fault"]),
        ["/bin/sh", "-c", "/bin/echo fault > /run/vrrp.state"]
    );
    assert!(has_note(&c, NoteSeverity::Warning, "notify_fault", 45));
    assert_eq!(
        not_converted(&c),
        set(&[
            (5, "notification_email"),
            (20, "smtp_alert"),
            (32, "notify_stop"),
            (33, "smtp_alert"),
        ])
    );
}

#[test]
fn lvs_blocks_are_listed_as_not_converted() {
    let c = conv("lvs-director.conf");
    let cfg = load(&c);
    assert_eq!(cfg.instances.len(), 1);
    assert_eq!(cfg.instance("VI_1").unwrap().priority, 150);
    // one note per block; nothing inside virtual_server (real_server, HTTP_GET...) adds more
    assert_eq!(
        not_converted(&c),
        set(&[
            (4, "lvs_id"),
            (5, "lvs_sync_daemon"),
            (8, "static_ipaddress"),
            (12, "static_routes"),
            (27, "virtual_server_group"),
            (32, "virtual_server"),
            (59, "virtual_server"),
        ])
    );
    for n in c.notes.iter().filter(|n| n.keyword == "virtual_server") {
        assert!(n.message.contains("docs/migration.md"), "{n}");
    }
    assert!(!c.toml.contains("real_server ="));
}

#[test]
fn includes_are_followed_in_order() {
    let c = conv("includes/keepalived.conf");
    let cfg = load(&c);
    let names: Vec<&str> = cfg.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["WEB", "DB"]);
    assert!(c.toml.contains("# included: "));
    assert!(c.toml.contains("10-web.conf"));
    assert!(!c.toml.contains("README"));
    let smtp = c
        .notes
        .iter()
        .find(|n| n.keyword == "smtp_alert")
        .expect("smtp_alert noted");
    assert!(smtp.file.ends_with("conf.d/20-db.conf"));
    assert_eq!(smtp.line, 9);
    assert!(
        has_note(&c, NoteSeverity::Warning, "include", 8),
        "no match"
    );
    assert_eq!(not_converted(&c), set(&[(9, "smtp_alert")]));

    // Converting the text alone does not read files: the includes are reported.
    let text = std::fs::read_to_string(data("includes/keepalived.conf")).unwrap();
    let t = convert(&text, Path::new("keepalived.conf")).unwrap();
    assert_eq!(not_converted(&t), set(&[(7, "include"), (8, "include")]));
}

#[test]
fn include_cycle_is_an_error() {
    let e = convert_file(&data("cycle/a.conf")).unwrap_err();
    assert!(e.message.contains("include cycle"), "{e}");
    assert!(e.file.ends_with("cycle/b.conf"));
    assert_eq!((e.line, e.column), (1, 1));
}

#[test]
fn include_depth_is_bounded() {
    let dir = std::env::temp_dir().join(format!("vipd-import-depth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..12 {
        let body = format!("include f{}.conf\n", n + 1);
        std::fs::write(dir.join(format!("f{n}.conf")), body).unwrap();
    }
    std::fs::write(dir.join("f12.conf"), "").unwrap();
    let e = convert_file(&dir.join("f0.conf")).unwrap_err();
    assert!(e.message.contains("deeper than 8"), "{e}");
    // exactly 8 levels is fine
    let ok = convert_file(&dir.join("f4.conf")).unwrap();
    assert!(ok.toml.contains("f12.conf"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn comments_and_quoting() {
    let c = conv("comments-quoting.conf");
    let d = doc(&c);
    assert_eq!(s(d["global"].as_table().unwrap(), "router_id"), "lb one");
    let vi = instance(&d, "VI_Q");
    assert_eq!((i(vi, "vrid"), i(vi, "priority")), (70, 90));
    assert_eq!(strs(&vi["vips"]), ["10.7.0.1/24"]);
    assert_eq!(strs(&vi["unicast_peers"]), ["10.7.0.3"]);
    assert_eq!(s(vi, "source_address"), "10.7.0.2");
    assert_eq!(
        strs(&vi["notify_master"]),
        [
            "/usr/local/bin/say",
            "hello world",
            "single quoted",
            "backslash"
        ]
    );
    let ti = array(vi, "track_interfaces")[0].as_table().unwrap();
    assert_eq!((s(ti, "name"), i(ti, "weight")), ("eth1", -10));
    assert_eq!(not_converted(&c), set(&[]));
}

#[test]
fn vrrpv3_subsecond_adverts_load() {
    let c = conv("vrrpv3-fast.conf");
    let cfg = load(&c);
    assert_eq!(
        cfg.instance("FAST").unwrap().advert_interval,
        Duration::from_millis(500)
    );
    assert_eq!(
        cfg.instance("ODD").unwrap().advert_interval,
        Duration::from_millis(20)
    );
    assert!(has_note(&c, NoteSeverity::Warning, "advert_int", 18));
    let v2 = cfg.instance("V2_ROUNDED").unwrap();
    assert_eq!(v2.version, vipd_config::Version::V2);
    assert_eq!(v2.advert_interval, Duration::from_secs(2));
    assert_eq!(not_converted(&c), set(&[]));
}

#[test]
fn every_tracking_flavour() {
    let c = conv("tracking-full.conf");
    let d = doc(&c);
    let files = tables(&d, "track_file");
    assert_eq!(
        (
            s(files[0], "name"),
            s(files[0], "path"),
            i(files[0], "weight")
        ),
        ("maint", "/etc/keepalived/maintenance", -100)
    );
    assert_eq!(s(files[1], "name"), "drain");
    let procs = tables(&d, "track_process");
    assert_eq!(
        (
            s(procs[0], "process"),
            i(procs[0], "min"),
            i(procs[0], "weight")
        ),
        ("haproxy", 2, -40)
    );
    let trk = instance(&d, "TRK");
    assert_eq!(strs(&trk["vips"]), ["10.3.3.3/24"]);
    let ex = tables(trk, "vip");
    // `dev eth1`: on its own device; the excluded VIP with its label, not advertised.
    assert_eq!(
        (s(ex[0], "address"), s(ex[0], "interface")),
        ("10.3.4.3/24", "eth1")
    );
    assert_eq!(
        (s(ex[1], "address"), s(ex[1], "label")),
        ("10.3.5.0/24", "eth0:ex"),
        "excluded VIPs converted"
    );
    assert_eq!(ex[1]["excluded"].as_bool(), Some(true));
    assert_eq!(array(trk, "track_interfaces").len(), 2);
    assert_eq!(array(trk, "track_files").len(), 2);
    assert_eq!(
        array(trk, "track_processes")[0].as_str(),
        Some("haproxy_proc")
    );
    assert_eq!(s(trk, "garp_master_delay"), "2s");
    assert_eq!(i(trk, "garp_master_repeat"), 4);
    // Excluded VIPs and `dev` convert with nothing to say; an IPv6 VIP advertised by an
    // IPv4 instance is left out as keepalived ignores it (a note).
    assert!(
        !c.notes
            .iter()
            .any(|n| n.keyword == "virtual_ipaddress_excluded"
                || (n.keyword == "virtual_ipaddress" && n.line != 43)),
        "{:?}",
        c.notes
    );
    assert!(has_note(&c, NoteSeverity::Info, "virtual_ipaddress", 43));
    assert!(has_note(&c, NoteSeverity::Info, "init_fail", 32));
    // keepalived's `reverse` has no vipd equivalent: not converted (the plain weight would do
    // the opposite), at both places it is written.
    assert!(
        has_note(&c, NoteSeverity::NotConverted, "track_script", 63),
        "reverse"
    );
    assert!(
        has_note(&c, NoteSeverity::NotConverted, "weight", 18),
        "reverse"
    );
    assert_eq!(
        s(
            &d["global"].as_table().unwrap().clone(),
            "multicast_group_v4"
        ),
        "224.0.0.19"
    );
    assert_eq!(
        not_converted(&c),
        set(&[(18, "weight"), (63, "track_script")])
    );
    // init_file 0 overwrite.
    let maint = tables(&d, "track_file")
        .into_iter()
        .find(|t| s(t, "name") == "maint")
        .unwrap();
    assert_eq!(
        (i(maint, "init"), maint["init_overwrite"].as_bool()),
        (0, Some(true))
    );
}

#[test]
fn manpage_example() {
    let c = conv("manpage-example.conf");
    // dont_track_primary is vipd's fault_on_link_down = false.
    assert_eq!(
        instance(&doc(&c), "inside_network")["fault_on_link_down"].as_bool(),
        Some(false)
    );
    // The IANA groups are vipd's own: a note, not "not converted".
    assert!(has_note(&c, NoteSeverity::Info, "vrrp_mcast_group4", 11));
    assert!(has_note(&c, NoteSeverity::Info, "vrrp_mcast_group6", 12));
    let d = doc(&c);
    let vi = instance(&d, "inside_network");
    assert_eq!(s(vi, "source_address"), "192.168.1.2", "mcast_src_ip");
    assert_eq!(vi["preempt"].as_bool(), Some(false));
    assert!(
        vi.get("preempt_delay").is_none(),
        "keepalived ignores it with nopreempt"
    );
    assert!(vi.get("auth_pass").is_none(), "AH");
    assert_eq!(strs(&vi["vips"]), ["192.168.200.17/24"]);
    assert_eq!(s(tables(vi, "vip")[0], "label"), "eth0:2");
    assert_eq!(strs(&vi["notify_master"]), ["/path/to_master.sh"]);
    assert_eq!(
        strs(&vi["notify_backup"]),
        ["/path/to_backup.sh", "arg1", "arg2"]
    );
    assert_eq!(
        not_converted(&c),
        set(&[
            (3, "notification_email"),
            (6, "notification_email_from"),
            (7, "smtp_server"),
            (8, "smtp_helo_name"),
            (9, "smtp_connect_timeout"),
            (15, "lvs_timeouts"),
            (16, "enable_snmp_vrrp"),
            (17, "vrrp_priority"),
            (18, "vrrp_no_swap"),
            (38, "lvs_sync_daemon_interface"),
            (59, "debug"),
            (62, "smtp_alert"),
        ])
    );
}

#[test]
fn every_example_converts_and_parses_as_toml() {
    let dir = data("");
    let mut seen = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    paths.sort();
    for p in paths {
        let c = convert_file(&p).unwrap_or_else(|e| panic!("{e}"));
        check_header(&c);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(c.toml.contains(&name), "header names the source");
        seen += 1;
    }
    assert!(seen >= 10, "{seen}");
}

#[test]
fn master_without_priority_becomes_owner_with_a_warning() {
    let text = "vrrp_instance X {\n state MASTER\n interface eth0\n virtual_router_id 7\n nopreempt\n virtual_ipaddress { 10.0.0.7 }\n}\n";
    let c = convert(text, Path::new("k.conf")).unwrap();
    let cfg = load(&c);
    let x = cfg.instance("X").unwrap();
    assert_eq!(x.priority, 255);
    assert!(x.preempt, "keepalived ignores nopreempt with state MASTER");
    assert!(has_note(&c, NoteSeverity::Warning, "priority", 1));
    assert!(has_note(&c, NoteSeverity::Warning, "nopreempt", 5));
}

#[test]
fn syntax_errors_carry_positions() {
    let e = convert("global_defs {\n router_id x\n", Path::new("k.conf")).unwrap_err();
    assert_eq!((e.line, e.column), (1, 13));
    assert!(e.message.contains("unbalanced"), "{e}");
    assert_eq!(e.to_string(), format!("k.conf:1:13: error: {}", e.message));
    let e = convert("a }\n", Path::new("k.conf")).unwrap_err();
    assert_eq!((e.line, e.column), (1, 3));
    let e = convert("x {\n  y \"open\n}\n", Path::new("k.conf")).unwrap_err();
    assert_eq!((e.line, e.column), (2, 5));
    assert!(e.message.contains("unterminated"));
    let e = convert_file(&data("does-not-exist.conf")).unwrap_err();
    assert_eq!(e.line, 0);
}

#[test]
fn unknown_keywords_everywhere_are_noted() {
    let text = "bogus_top 1\nglobal_defs {\n bogus_global\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n bogus_inst { a }\n virtual_ipaddress { 10.0.0.1 bogus_opt }\n}\nvrrp_script S {\n script /bin/true\n bogus_script\n}\nvrrp_sync_group G {\n group { V }\n bogus_group\n}\n";
    let c = convert(text, Path::new("k.conf")).unwrap();
    assert_eq!(
        not_converted(&c),
        set(&[
            (1, "bogus_top"),
            (3, "bogus_global"),
            (8, "bogus_inst"),
            (9, "virtual_ipaddress"),
            (13, "bogus_script"),
            (17, "bogus_group"),
        ])
    );
}

#[test]
fn repeated_keywords_warn_and_the_last_wins() {
    let text = "global_defs {\n router_id a\n router_id b\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 10\n priority 20\n virtual_ipaddress { 10.0.0.1 }\n virtual_ipaddress { 10.0.0.2 }\n}\n";
    let c = convert(text, Path::new("k.conf")).unwrap();
    let cfg = load(&c);
    assert_eq!(cfg.global.router_id.as_deref(), Some("b"));
    let v = cfg.instance("V").unwrap();
    assert_eq!(v.priority, 20);
    assert_eq!(v.vips.len(), 2, "virtual_ipaddress blocks add up");
    assert!(has_note(&c, NoteSeverity::Warning, "router_id", 3));
    assert!(has_note(&c, NoteSeverity::Warning, "priority", 9));
    assert!(!has_note(
        &c,
        NoteSeverity::Warning,
        "virtual_ipaddress",
        11
    ));
}

#[test]
fn dynamic_interfaces_is_noted_as_built_in() {
    let text = "global_defs {\n dynamic_interfaces\n}\nvrrp_instance X {\n interface vlan42\n virtual_router_id 7\n priority 100\n virtual_ipaddress { 10.0.0.7 }\n}\n";
    let c = convert(text, Path::new("k.conf")).unwrap();
    check_header(&c);
    load(&c);
    assert!(has_note(&c, NoteSeverity::Info, "dynamic_interfaces", 2));
    assert_eq!(not_converted(&c), set(&[]));
}

/// A vrrp_sync_group's own trackers and `sync_group_tracking_weight` are converted (not
/// dropped): the group lists its trackers, every member follows them, and the weights are
/// kept as keepalived keeps them with that keyword.
#[test]
fn sync_group_trackers_and_tracking_weight_convert() {
    let text = r#"
vrrp_script chk_lb {
    script "/usr/bin/true"
    weight -20
}
vrrp_instance VI_A {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress { 10.0.0.100/24 }
}
vrrp_instance VI_B {
    interface eth1
    virtual_router_id 52
    priority 100
    virtual_ipaddress { 10.0.1.100/24 }
}
vrrp_sync_group G1 {
    group { VI_A VI_B }
    track_script { chk_lb }
    track_interface { eth2 weight -10 }
    sync_group_tracking_weight
}
"#;
    let c = convert(text, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    let d = doc(&c);
    let g = tables(&d, "sync_group");
    assert_eq!(g[0]["tracking_weight"].as_bool(), Some(true));
    assert!(g[0].contains_key("track_scripts"), "{}", c.toml);
    assert!(g[0].contains_key("track_interfaces"), "{}", c.toml);
    assert!(not_converted(&c).is_empty(), "{:?}", c.notes);
    let cfg = load(&c);
    for inst in &cfg.instances {
        let w: Vec<(&str, i32)> = inst
            .track
            .iter()
            .map(|t| (t.name.as_str(), t.weight))
            .collect();
        assert_eq!(w, [("chk_lb", -20), ("eth2", -10)], "{}", inst.name);
    }
}

/// keepalived 2.2.8's `v3_checksum_as_v2` (global and per instance) is vipd's
/// `checksum = "without-pseudo-header"`, not dropped.
#[test]
fn v3_checksum_as_v2_converts() {
    let text = r#"
global_defs {
    v3_checksum_as_v2
}
vrrp_instance VI_A {
    interface eth0
    virtual_router_id 51
    version 3
    priority 100
    virtual_ipaddress { 10.0.0.100/24 }
}
vrrp_instance VI_B {
    interface eth0
    virtual_router_id 52
    version 3
    priority 100
    v3_checksum_as_v2 false
    virtual_ipaddress { 10.0.0.101/24 }
}
"#;
    let c = convert(text, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    assert!(not_converted(&c).is_empty(), "{:?}", c.notes);
    let cfg = load(&c);
    let mode = |n: &str| {
        cfg.instances
            .iter()
            .find(|i| i.name == n)
            .map(|i| i.checksum.as_str())
    };
    assert_eq!(mode("VI_A"), Some("without-pseudo-header"));
    assert_eq!(mode("VI_B"), Some("with-pseudo-header"));
}

/// keepalived's `auth_hmac` block converts (not dropped): mode, keys (inline and `file:`),
/// active_key, anti_replay, time_window; the result loads (the file key read by the host pass).
#[test]
fn auth_hmac_block_converts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("vipd-import-hmac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k2");
    std::fs::write(&key, "a passphrase that is long enough for a key\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        r#"
vrrp_instance VI_A {{
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {{ 10.0.0.100/24 }}
    auth_hmac {{
        mode permissive
        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
        key 2 file:{}
        active_key 2
        anti_replay monotonic
        time_window 10
    }}
}}
"#,
        key.display()
    );
    let c = convert(&text, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    assert!(not_converted(&c).is_empty(), "{:?}", c.notes);
    let cfg = load(&c);
    let a = cfg.instances[0].auth_hmac.clone().expect("auth_hmac");
    assert_eq!(a.mode, vipd_proto::auth::Mode::Permissive);
    assert_eq!(a.active, 2);
    assert_eq!(a.anti_replay, vipd_proto::auth::AntiReplay::Monotonic);
    assert_eq!(
        a.keys
            .iter()
            .map(|k| (k.id, k.secret.len()))
            .collect::<Vec<_>>(),
        [(1, 32), (2, 42)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived's per-peer `min_ttl`/`max_ttl` become vipd's per-peer limits (keepalived's
/// defaults, 0 and 255, are left out); an option the importer cannot read leaves the peer
/// out and is a security note, so `vipctl import-keepalived` refuses the weaker result.
#[test]
fn unicast_peer_ttl_limits_are_converted() {
    let text = r#"
vrrp_instance VI_A {
    interface eth0
    virtual_router_id 51
    priority 100
    unicast_src_ip 10.0.0.11
    unicast_peer {
        10.0.0.12 min_ttl 255 max_ttl 255
        10.0.0.13 min_ttl 250
        10.0.0.14 min_ttl 0 max_ttl 255
    }
    virtual_ipaddress { 10.0.0.100/24 }
}
"#;
    let c = convert(text, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    assert!(
        c.notes.iter().all(|n| n.keyword != "unicast_peer"),
        "{:?}",
        c.notes
    );
    assert!(!c.weakens_security());
    let cfg = load(&c);
    let i = &cfg.instances[0];
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(
        i.unicast_peers,
        [ip("10.0.0.14"), ip("10.0.0.12"), ip("10.0.0.13")]
    );
    let ttl = |p: &str, min: u8, max: u8| vipd_proto::rx::PeerTtl {
        peer: ip(p),
        min,
        max,
    };
    assert_eq!(
        i.peer_ttl,
        [ttl("10.0.0.12", 255, 255), ttl("10.0.0.13", 250, 255)]
    );

    let bad = text.replace("min_ttl 250", "min_hops 250");
    let c = convert(&bad, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    let note = c
        .notes
        .iter()
        .find(|n| n.keyword == "10.0.0.13")
        .unwrap_or_else(|| panic!("a note about the peer: {:?}", c.notes));
    assert_eq!(note.severity, NoteSeverity::SecurityLost);
    assert!(c.weakens_security());
}

/// Security settings the importer cannot carry are marked as such (the CLI refuses them
/// without --accept-weaker).
#[test]
fn lost_security_settings_are_marked() {
    let base = r#"
vrrp_instance VI_A {
    interface eth0
    virtual_router_id 51
    priority 100
    version 2
    AUTH
    virtual_ipaddress { 10.0.0.100/24 }
}
"#;
    for (auth, keyword) in [
        ("authentication {\n auth_type AH\n }", "auth_type"),
        (
            "authentication {\n auth_type XYZ\n auth_pass secret\n }",
            "auth_type",
        ),
        ("auth_hmac {\n mode enforce\n }", "auth_hmac"),
        ("auth_hmac {\n key one abcdef\n }", "key"),
    ] {
        let text = base.replace("AUTH", auth);
        let c = convert(&text, Path::new("keepalived.conf")).unwrap();
        check_header(&c);
        assert!(c.weakens_security(), "{auth}: {:?}", c.notes);
        assert!(
            c.notes
                .iter()
                .any(|n| n.severity == NoteSeverity::SecurityLost && n.keyword == keyword),
            "{auth}: {:?}",
            c.notes
        );
    }
    // AH with its password converts (legacy, keepalived-compatible).
    let ah = convert(
        &base.replace(
            "AUTH",
            "authentication {\n auth_type AH\n auth_pass secret\n }",
        ),
        Path::new("keepalived.conf"),
    )
    .unwrap();
    assert!(!ah.weakens_security(), "{:?}", ah.notes);
    assert_eq!(
        load(&ah).instances[0].auth_ah.as_ref().map(|p| p.as_str()),
        Some("secret")
    );
    let text = base.replace(
        "AUTH",
        "authentication {\n auth_type PASS\n auth_pass secret\n }",
    );
    assert!(
        !convert(&text, Path::new("keepalived.conf"))
            .unwrap()
            .weakens_security()
    );
}

/// What keepalived does, the conversion does too (no silent change): several `track_script`
/// blocks are all followed, the first of two `notify_master` lines is used, a `track_file`
/// without a weight has keepalived's weight 1, and peers / source written with a prefix
/// length keep their address (the instance stays unicast).
#[test]
fn keepalived_semantics_kept_for_repeated_blocks_defaults_and_prefixes() {
    let text = r#"
vrrp_track_file maint {
    file /run/lb/maint
}
vrrp_script chk_a {
    script "/bin/true"
}
vrrp_script chk_b {
    script "/bin/true"
}
vrrp_instance VI_A {
    interface eth0
    virtual_router_id 51
    priority 100
    unicast_src_ip 10.0.0.11/24
    unicast_peer {
        10.0.0.12/24
    }
    track_script {
        chk_a
    }
    track_script {
        chk_b
    }
    track_file {
        maint
    }
    notify_master "/bin/echo first"
    notify_master "/bin/echo second"
    virtual_ipaddress { 10.0.0.100/24 }
}
"#;
    let c = convert(text, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    let d = doc(&c);
    let inst = &d["instance"].as_array().unwrap()[0];
    let names: Vec<&str> = inst["track_scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, ["chk_a", "chk_b"], "{}", c.toml);
    assert_eq!(
        inst["notify_master"].as_array().unwrap()[1].as_str(),
        Some("first"),
        "{}",
        c.toml
    );
    assert_eq!(inst["source_address"].as_str(), Some("10.0.0.11"));
    assert_eq!(
        inst["unicast_peers"].as_array().unwrap()[0].as_str(),
        Some("10.0.0.12")
    );
    // No script_user: keepalived runs its scripts as root; so does the conversion, and says so.
    assert_eq!(
        d["global"]["script_user"].as_str(),
        Some("root"),
        "{}",
        c.toml
    );
    assert!(
        has_note(&c, NoteSeverity::Warning, "script_user", 0),
        "{:?}",
        c.notes
    );
    let tf = &d["track_file"].as_array().unwrap()[0];
    assert_eq!(tf["weight"].as_integer(), Some(1), "{}", c.toml);
    assert!(
        c.notes
            .iter()
            .any(|n| n.severity == NoteSeverity::Warning
                && n.message.contains("the first one is used")),
        "{:?}",
        c.notes
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.message.contains("weight = 1, keepalived's default"))
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.message.contains("prefix length is ignored"))
    );
    // The result loads (with host checks off: the scripts need not exist here).
    let cfg = load(&c);
    assert!(cfg.instances[0].is_unicast());
}

/// keepalived's labels: any IPv4 label is kept (OpenShift's `label vip`), an IPv6 one is
/// dropped with a note (Linux has none); a duplicate VIP is kept once.
#[test]
fn labels_as_keepalived_has_them() {
    let text = r#"
vrrp_instance VI_A {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.100/24 label vip
        10.0.0.100/24
    }
}
vrrp_instance VI_B {
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        fe80::100/64 label vip6
        2001:db8::100/64
    }
}
"#;
    let c = convert(text, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    let cfg = load(&c);
    assert_eq!(cfg.instances[0].vips[0].label.as_deref(), Some("vip"));
    // A VIP listed twice (keepalived's own sample does it) is kept once.
    assert_eq!(cfg.instances[0].vips.len(), 1);
    assert!(c.notes.iter().any(|n| n.message.contains("listed twice")));
    assert!(cfg.instances[1].vips.iter().all(|v| v.label.is_none()));
    assert!(
        c.notes
            .iter()
            .any(|n| n.severity == NoteSeverity::Info
                && n.message.contains("no IPv6 address labels")),
        "{:?}",
        c.notes
    );
}

/// keepalived's `vrrp_startup_delay` becomes `startup_delay`.
#[test]
fn startup_delay_converts() {
    let text = "global_defs {\n    vrrp_startup_delay 5.5\n}\nvrrp_instance VI_A {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress { 10.0.0.100/24 }\n}\n";
    let c = convert(text, Path::new("keepalived.conf")).unwrap();
    check_header(&c);
    assert!(not_converted(&c).is_empty(), "{:?}", c.notes);
    assert_eq!(load(&c).global.startup_delay, Duration::from_millis(5500));
}

/// keepalived's VIP placement converts with nothing lost: `dev`, excluded VIPs of either
/// family, more VIPs than an advert holds (the rest become excluded, as keepalived moves
/// them), `no_virtual_ipaddress`, and a VRRPv2 instance without VIPs.
#[test]
fn vip_placement_converts_and_loads() {
    let many: String = (0..100)
        .map(|n| format!("        2001:db8::{:x}/64\n", n + 1))
        .collect();
    let text = format!(
        "vrrp_instance NEUTRON {{\n    interface ha-1\n    virtual_router_id 1\n    priority 50\n    virtual_ipaddress {{\n        169.254.0.1/24 dev ha-1\n    }}\n    virtual_ipaddress_excluded {{\n        10.0.0.1/24 dev qr-1\n        2001:db8:1::1/64 dev qg-1\n        192.0.2.9/24\n    }}\n}}\n\
         vrrp_instance MANY6 {{\n    interface eth0\n    virtual_router_id 2\n    virtual_ipaddress {{\n{many}    }}\n}}\n\
         vrrp_instance CLOUD {{\n    interface eth0\n    virtual_router_id 3\n    version 3\n    no_virtual_ipaddress\n}}\n\
         vrrp_instance BARE {{\n    interface eth0\n    virtual_router_id 4\n}}\n"
    );
    let c = convert(&text, Path::new("k.conf")).unwrap();
    check_header(&c);
    let cfg = load(&c);
    let n = cfg.instance("NEUTRON").unwrap();
    let shown: Vec<(String, Option<&str>, bool)> = n
        .vips
        .iter()
        .map(|v| (v.to_string(), v.interface.as_deref(), v.excluded))
        .collect();
    assert_eq!(
        shown,
        [
            ("169.254.0.1/24".to_string(), None, false),
            ("10.0.0.1/24".to_string(), Some("qr-1"), true),
            ("2001:db8:1::1/64".to_string(), Some("qg-1"), true),
            ("192.0.2.9/24".to_string(), None, true),
        ]
    );
    let m = cfg.instance("MANY6").unwrap();
    assert_eq!((m.vips.len(), m.advertised_vips().count()), (100, 90));
    assert!(
        has_note(&c, NoteSeverity::Warning, "virtual_ipaddress", 108),
        "{:?}",
        c.notes
    );
    assert!(cfg.instance("CLOUD").unwrap().vips.is_empty());
    assert!(cfg.instance("BARE").unwrap().vips.is_empty());
    assert!(
        !c.notes
            .iter()
            .any(|n| n.severity == NoteSeverity::NotConverted),
        "{:?}",
        c.notes
    );
}

/// keepalived's own examples of virtual_routes / virtual_rules (keepalived.conf(5)) convert,
/// load, and what vipd cannot carry is left out line by line, with a note.
#[test]
fn virtual_routes_and_rules_convert() {
    let text = "vrrp_instance VI_1 {\n    interface eth1\n    virtual_router_id 1\n    virtual_ipaddress {\n        192.168.200.17/24\n    }\n\
    virtual_routes {\n\
        src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1\n\
        192.168.110.0/24 via 192.168.200.254 dev eth1\n\
        192.168.111.0/24 dev eth2 no_track\n\
        192.168.112.0/24 via 192.168.100.254\n\
        192.168.113.0/24 via 192.168.200.254 or 192.168.100.254 dev eth1\n\
        blackhole 192.168.114.0/24\n\
        0.0.0.0/0 gw 192.168.0.1 table 100\n\
        default via 192.168.200.1 table main metric 50 onlink\n\
        10.9.0.0/16 via 192.168.200.1 table ha\n\
    }\n\
    virtual_rules {\n\
        from 192.168.2.0/24 table 1\n\
        to 192.168.2.0/24 table 1 no_track\n\
        from all fwmark 0x10/0xff lookup 5 priority 100\n\
        from 10.0.0.0/8 iif eth1 prohibit\n\
        from 10.1.0.0/16 uidrange 1000-2000 table 7\n\
    }\n}\n";
    let c = convert(text, Path::new("k.conf")).unwrap();
    check_header(&c);
    let cfg = load(&c);
    let i = cfg.instance("VI_1").unwrap();
    let routes: Vec<String> = i.routes.iter().map(ToString::to_string).collect();
    assert_eq!(
        routes,
        [
            "192.168.109.0/24 via 192.168.200.254 dev eth1 src 192.168.100.1",
            "192.168.110.0/24 via 192.168.200.254 dev eth1",
            "192.168.111.0/24 dev eth2",
            "192.168.112.0/24 via 192.168.100.254",
            "blackhole 192.168.114.0/24",
            "default via 192.168.0.1 table 100",
            "default via 192.168.200.1 metric 50",
        ]
    );
    assert!(!i.routes[2].track && i.routes[0].track && i.routes[6].onlink);
    let rules: Vec<String> = i.rules.iter().map(ToString::to_string).collect();
    assert_eq!(
        rules,
        [
            "from 192.168.2.0/24 lookup 1",
            "from all to 192.168.2.0/24 lookup 1",
            "pref 100 from all fwmark 0x10/0xff lookup 5",
            "from 10.0.0.0/8 iif eth1 prohibit",
        ]
    );
    assert!(!i.rules[1].track);
    // Multipath (`or`), a table name, a uidrange: the line is left out, visibly.
    assert_eq!(
        not_converted(&c),
        set(&[
            (12, "virtual_routes"),
            (16, "virtual_routes"),
            (23, "virtual_rules")
        ])
    );
}

/// keepalived's preprocessor: one template, converted per host (`--host`), with parameters,
/// a multi-line definition, `@host` / `@^host` lines, `~SEQ`, and `include ${_PWD}/...`; a
/// host the template has no values for is an error, not a file with `$PRIO` in it.
#[test]
fn a_template_converts_once_per_host() {
    use vipd_config::import::{Options, convert_file_with};
    let path = data("template/keepalived.conf");
    for (host, prio, src, peer) in [
        ("lb1", 150, "10.20.0.11", "10.20.0.12"),
        ("lb2", 100, "10.20.0.12", "10.20.0.11"),
    ] {
        let opts = Options {
            host: Some(host.into()),
            env: None,
        };
        let c = convert_file_with(&path, &opts).unwrap_or_else(|e| panic!("{e}"));
        check_header(&c);
        assert_eq!(not_converted(&c), set(&[]), "{:?}", c.notes);
        let cfg = load(&c);
        assert_eq!(cfg.global.router_id.as_deref(), Some(host));
        let names: Vec<&str> = cfg.instances.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["VI_1", "VI_2", "VI_9"]);
        for (i, vrid) in [(0, 51), (1, 52)] {
            let inst = &cfg.instances[i];
            assert_eq!((inst.vrid, inst.priority), (vrid, prio));
            assert_eq!(inst.source_address, Some(src.parse().unwrap()));
            assert_eq!(
                inst.unicast_peers,
                [peer.parse::<std::net::IpAddr>().unwrap()]
            );
            assert_eq!(inst.vips[0].to_string(), format!("10.20.0.10{}/24", i + 1));
        }
        let vips: Vec<String> = cfg.instances[2]
            .vips
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(vips, ["10.20.0.201/24", "10.20.0.202/24", "10.20.0.203/24"]);
    }
    let e = convert_file_with(
        &path,
        &Options {
            host: Some("lb3".into()),
            env: None,
        },
    )
    .unwrap_err();
    assert!(
        e.message.contains("$PRIO") && e.message.contains("--host"),
        "{e}"
    );
}
