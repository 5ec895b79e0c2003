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

/// The file the README tells you to copy is the pair docs/operations.md walks through: its
/// lb1 block loads to the same configuration as config/lb1.toml (and lb2.toml differs only in
/// priority and router_id).
#[test]
fn the_walkthrough_pair_is_the_shipped_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ops = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let at = ops.find("## A first pair of load balancers").unwrap();
    let start = ops[at..].find("```toml\n").unwrap() + at + 8;
    let end = ops[start..].find("```").unwrap() + start;
    let doc = vipd_config::parse_str(&ops[start..end], Path::new("operations.md"))
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let lb1 = vipd_config::parse_str(
        &std::fs::read_to_string(root.join("config/lb1.toml")).unwrap(),
        Path::new("lb1.toml"),
    )
    .unwrap()
    .config;
    assert_eq!(
        doc, lb1,
        "docs/operations.md's pair and config/lb1.toml differ"
    );
    let mut lb2 = vipd_config::parse_str(
        &std::fs::read_to_string(root.join("config/lb2.toml")).unwrap(),
        Path::new("lb2.toml"),
    )
    .unwrap()
    .config;
    assert_eq!(lb2.instances[0].priority, 100);
    lb2.instances[0].priority = 150;
    lb2.global.router_id = Some("lb1".into());
    assert_eq!(lb2, lb1);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("examples/lb1.toml"),
        "the README copies lb1.toml"
    );
}
