//! The loader never panics and stays fast on hostile input.

use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use vipd_config::parse_str;

const REFERENCE: &str = include_str!("../../../config/vipd.toml");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,400}") {
        let _ = parse_str(&s, Path::new("fuzz.toml"));
    }

    #[test]
    fn mutated_reference_never_panics(pos in 0usize..REFERENCE.len(), len in 0usize..8, ins in "[\\[\\]\"'=.,0-9a-z:/ \n#-]{0,8}") {
        let mut text = REFERENCE.to_string();
        let start = (0..=pos).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        text.replace_range(start..end, &ins);
        if let Err(d) = parse_str(&text, Path::new("fuzz.toml")) {
            prop_assert!(d.has_errors());
            for e in d.errors() {
                prop_assert!(e.line >= 1 && e.column >= 1, "{e}");
                let _ = e.to_string();
            }
        }
    }
}

#[test]
fn pathological_sizes_are_bounded() {
    // ~1 MiB of sync-group members that do not exist: many errors, but capped and quick.
    let mut text = String::from("[[sync_group]]\nname = \"G\"\ninstances = [");
    while text.len() < 1_000_000 {
        text.push_str("\"nope\",");
    }
    text.push_str("]\n");
    let t = Instant::now();
    let d = parse_str(&text, Path::new("big.toml")).unwrap_err();
    assert!(d.len() <= vipd_config::MAX_DIAGNOSTICS);
    assert!(t.elapsed().as_secs() < 10);

    // Lots of unknown keys.
    let mut text = String::from("[global]\n");
    let mut i = 0;
    while text.len() < 1_000_000 {
        text.push_str(&format!("k{i} = 1\n"));
        i += 1;
    }
    let t = Instant::now();
    let d = parse_str(&text, Path::new("big.toml")).unwrap_err();
    assert!(d.len() <= vipd_config::MAX_DIAGNOSTICS);
    assert!(d.dropped() > 0);
    assert!(d.to_string().contains("further diagnostics not shown"));
    assert!(t.elapsed().as_secs() < 10);

    // Many instances.
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 1_000_000 {
        text.push_str(&format!(
            "[[instance]]\nname = \"i{i}\"\ninterface = \"e\"\nvrid = 1\nvips = [\"10.0.0.1\"]\n"
        ));
        i += 1;
    }
    let t = Instant::now();
    let d = parse_str(&text, Path::new("big.toml")).unwrap_err();
    assert!(d.errors().any(|e| e.message.contains("too many instances")));
    assert!(t.elapsed().as_secs() < 10);
}
