//! `include` patterns, expanded with the `glob` crate (glob(3): `*`, `?` and `[...]` within
//! path components; dotfiles only when the pattern says so), bounded in results.

use std::path::{Path, PathBuf};

/// Expands `pattern` (already joined to a base directory if it was relative), sorted like
/// glob(3). A pattern without wildcards yields itself if it exists; a pattern that is not
/// valid UTF-8 or not a valid glob is taken literally. At most `max` results.
pub(crate) fn expand(pattern: &Path, max: usize) -> Vec<PathBuf> {
    let literal = || {
        if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        }
    };
    let Some(text) = pattern.to_str() else {
        return literal();
    };
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    match glob::glob_with(text, options) {
        Ok(paths) => paths.filter_map(Result::ok).take(max).collect(),
        Err(_) => literal(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn expands_sorted_bounded_and_skips_dotfiles() {
        let dir = std::env::temp_dir().join(format!("vipd-glob-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.conf", "a.conf", ".hidden.conf", "c.txt", "vi_1.conf"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let got = expand(&dir.join("*.conf"), 10);
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.conf", "b.conf", "vi_1.conf"]);
        assert_eq!(expand(&dir.join("*.conf"), 2).len(), 2);
        assert_eq!(expand(&dir.join("vi_?.conf"), 10).len(), 1);
        assert_eq!(expand(&dir.join("[ab].conf"), 10).len(), 2);
        assert_eq!(expand(&dir.join("c.txt"), 10).len(), 1);
        assert!(expand(&dir.join("missing"), 10).is_empty());
        // An invalid pattern is a literal name (here: missing).
        assert!(expand(&dir.join("a[.conf"), 10).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
