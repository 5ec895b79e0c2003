//! Logs read like an operator's sentence, never Rust Debug output: no log macro of the daemon
//! (`trace!` .. `error!`) formats a field or an argument with Debug (`?field`, `{:?}`,
//! `{x:?}`). Scanning the source covers every log line, those no integration test reaches too.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of each log macro call in `src`: (line, call).
fn log_calls(src: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for mac in ["trace!(", "debug!(", "info!(", "warn!(", "error!("] {
        let mut from = 0;
        while let Some(at) = src[from..].find(mac) {
            let start = from + at;
            let open = start + mac.len() - 1;
            let mut depth = 0usize;
            let mut end = open;
            for (i, c) in src[open..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let line = src[..start].matches('\n').count() + 1;
            out.push((line, &src[start..=end.max(open)]));
            from = end.max(open) + 1;
        }
    }
    out
}

#[test]
fn no_log_line_formats_with_debug() {
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src_dir, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (line, call) in log_calls(&text) {
            let debug_field = call.contains("= ?") || call.contains(", ?") || call.contains("(?");
            let debug_arg = call.contains(":?}") || call.contains(":#?}");
            if debug_field || debug_arg {
                bad.push(format!(
                    "{}:{line}: {}",
                    f.display(),
                    call.lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "log lines with Debug formatting:\n{}",
        bad.join("\n")
    );
    assert!(files.len() > 20, "found the sources");
}
