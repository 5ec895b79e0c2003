//! `[instance.announce]`: what it turns into (VIPs on the device, host routes, no GARP) and
//! what it refuses.

use std::path::Path;

use vipd_config::{AnnouncePolicy, Config, Diagnostic, RouteType, Scope, parse_str};

fn ok(text: &str) -> (Config, Vec<Diagnostic>) {
    match parse_str(text, Path::new("t.toml")) {
        Ok(l) => (l.config, l.warnings),
        Err(d) => panic!("unexpected errors:\n{d}\nin:\n{text}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse_str(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(d) => d
            .errors()
            .map(|e| format!("{}:{} {}", e.line, e.column, e.message))
            .collect(),
    }
}

const ACTIVE_ACTIVE: &str = r#"
[[instance]]
name = "web"
interface = "eth0"
priority = 100
vips = ["203.0.113.10", "2001:db8::10/128"]
[instance.announce]
policy = "active-active"
table = 100
metric = 20
min_priority = 60
"#;

#[test]
fn active_active_places_vips_on_lo_with_host_routes_and_no_garp() {
    let (c, warnings) = ok(ACTIVE_ACTIVE);
    assert!(warnings.is_empty(), "{warnings:?}");
    let i = &c.instances[0];
    assert!(i.is_anycast());
    assert_eq!(i.vrid, 0);
    let a = i.announce.as_ref().unwrap();
    assert_eq!(a.policy, AnnouncePolicy::ActiveActive);
    assert_eq!(
        (a.device.as_str(), a.table, a.metric, a.min_priority),
        ("lo", Some(100), Some(20), 60)
    );
    assert_eq!(i.vips[0].interface.as_deref(), Some("lo"));
    assert_eq!(i.vips[1].interface.as_deref(), Some("lo"), "both families");
    assert_eq!(i.routes.len(), 2);
    assert_eq!(i.routes[1].to, ("2001:db8::10".parse().unwrap(), 128));
    let r = &i.routes[0];
    assert_eq!(r.to, ("203.0.113.10".parse().unwrap(), 32));
    assert_eq!(
        (r.table, r.metric, r.interface.as_deref()),
        (100, Some(20), Some("lo"))
    );
    assert_eq!(
        (r.kind, r.scope, r.track),
        (RouteType::Unicast, Scope::Link, true)
    );
    assert_eq!(i.garp.master_repeat, 0);
    assert_eq!(i.garp.master_refresh, None);
    assert_eq!(i.garp.lower_prio_repeat(), 0);
}

#[test]
fn active_standby_keeps_vrrp_and_an_explicit_device() {
    let (c, _) = ok(r#"
[[instance]]
name = "web"
interface = "eth0"
vrid = 7
unicast_peers = ["10.2.0.2"]
vips = ["203.0.113.10/32"]
[[instance.vip]]
address = "203.0.113.11"
interface = "dummy0"
[instance.announce]
"#);
    let i = &c.instances[0];
    assert!(!i.is_anycast());
    assert_eq!(i.vrid, 7);
    let a = i.announce.as_ref().unwrap();
    assert_eq!((a.policy, a.table), (AnnouncePolicy::ActiveStandby, None));
    assert_eq!(i.vips[0].interface.as_deref(), Some("lo"));
    assert_eq!(i.vips[1].interface.as_deref(), Some("dummy0"));
    assert!(i.routes.is_empty(), "no table: the address only");
}

#[test]
fn refusals() {
    // VRRP keys in an active-active instance.
    let e = errors(
        &ACTIVE_ACTIVE.replace("priority = 100", "vrid = 5\nunicast_peers = [\"10.0.0.2\"]"),
    );
    assert!(
        e.iter().any(|m| m.starts_with("5:8 vrid has no meaning")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("6:17 unicast_peers has no meaning")),
        "{e:?}"
    );
    // Not a host address.
    let e = errors(&ACTIVE_ACTIVE.replace("\"203.0.113.10\"", "\"203.0.113.10/24\""));
    assert!(
        e.iter().any(|m| m.contains("must be a host address (/32)")),
        "{e:?}"
    );
    // An unknown policy, a kernel table.
    let e = errors(
        &ACTIVE_ACTIVE
            .replace("active-active", "active-activ")
            .replace("table = 100", "table = 255"),
    );
    assert!(
        e.iter().any(|m| m.contains("unknown announce policy")),
        "{e:?}"
    );
    assert!(e.iter().any(|m| m.contains("the kernel's own")), "{e:?}");
    // vmac with announce; active-active in a sync group.
    let e = errors(&format!(
        "{}\n[[instance]]\nname = \"b\"\ninterface = \"eth0\"\nvrid = 1\nvips = [\"10.0.0.1\"]\nvmac = true\n[instance.announce]\n\
         [[sync_group]]\nname = \"g\"\ninstances = [\"web\", \"b\"]\n",
        ACTIVE_ACTIVE.replace(", \"2001:db8::10/128\"", "")
    ));
    assert!(
        e.iter().any(|m| m.contains("vmac cannot be combined")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("announces active-active and cannot be in")),
        "{e:?}"
    );
}

#[test]
fn warnings_for_keys_without_effect() {
    let (_, w) = ok(r#"
[[instance]]
name = "web"
interface = "eth0"
vrid = 7
vips = ["203.0.113.10"]
garp_master_repeat = 3
[instance.announce]
metric = 5
min_priority = 10
"#);
    let msgs: Vec<&str> = w.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("garp_master_repeat has no effect")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("metric has no effect without")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("min_priority has no effect")),
        "{msgs:?}"
    );
}
