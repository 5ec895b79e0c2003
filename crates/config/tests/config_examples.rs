//! Every example in config/ must load without errors.

use std::path::Path;

#[test]
fn every_example_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        match vipd_config::load(&path) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprint!("{w}");
                }
                assert!(!loaded.config.instances.is_empty(), "{}", path.display());
            }
            Err(d) => panic!("{}:\n{d}", path.display()),
        }
        seen += 1;
    }
    assert!(seen >= 6, "expected the six examples, found {seen}");
}

#[test]
fn reference_example_sets_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/vipd.toml");
    let cfg = vipd_config::load(&path).unwrap().config;
    let vi = cfg.instance("VI_1").unwrap();
    assert_eq!(vi.vips.len(), 2);
    assert_eq!(vi.vips[1].label.as_deref(), Some("eth0:vip"));
    assert_eq!(vi.unicast_peers.len(), 1);
    assert_eq!(vi.peer_ttl.len(), 1);
    assert!(vi.source_address.is_some());
    assert_eq!(cfg.sync_groups.len(), 1);
    assert_eq!(cfg.global.router_id.as_deref(), Some("lb1"));
    let legacy = cfg.instance("VI_LEGACY").unwrap();
    assert_eq!(legacy.version, vipd_config::Version::V2);
    assert_eq!(
        legacy.auth_pass.as_ref().map(|a| a.as_str()),
        Some("s3cret")
    );
}
