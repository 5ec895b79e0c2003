//! A small, bounded glob(3) for `include` patterns: `*`, `?` and `[...]` within path components.

use std::path::{Component, Path, PathBuf};

/// Most directory entries examined while expanding one pattern.
const MAX_ENTRIES: usize = 10_000;

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands `pattern` (already joined to a base directory if it was relative), sorted like
/// glob(3). A pattern without wildcards yields itself if it exists. At most `max` results.
pub(crate) fn expand(pattern: &Path, max: usize) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    let mut budget = MAX_ENTRIES;
    for comp in pattern.components() {
        let mut next = Vec::new();
        match comp {
            Component::Normal(os) => {
                let part = os.to_string_lossy();
                if has_magic(&part) {
                    for dir in &current {
                        let read_from = if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir.as_path()
                        };
                        let Ok(rd) = std::fs::read_dir(read_from) else {
                            continue;
                        };
                        let mut names = Vec::new();
                        for entry in rd {
                            if budget == 0 {
                                break;
                            }
                            budget -= 1;
                            let Ok(entry) = entry else { continue };
                            let name = entry.file_name();
                            let name = name.to_string_lossy();
                            if name.starts_with('.') && !part.starts_with('.') {
                                continue;
                            }
                            if matches(&part, &name) {
                                names.push(name.into_owned());
                            }
                        }
                        names.sort();
                        next.extend(names.into_iter().map(|n| dir.join(n)));
                        if next.len() > max {
                            break;
                        }
                    }
                } else {
                    next = current.iter().map(|d| d.join(os)).collect();
                }
            }
            other => next = current.iter().map(|d| d.join(other.as_os_str())).collect(),
        }
        next.truncate(max.saturating_add(1));
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current.retain(|p| !p.as_os_str().is_empty() && p.exists());
    current.truncate(max);
    current
}

/// fnmatch(3) without flags: `*`, `?`, `[abc]`, `[a-z]`, `[!x]` / `[^x]`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(&p, pi, n.get(ni).copied().unwrap_or('\0')),
            Some(&c) if n.get(ni) == Some(&c) => Some(pi + 1),
            _ => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Matches `c` against the bracket expression at `p[start]`; returns the index after it.
/// An unterminated `[` matches a literal `[`.
fn class(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let Some(&lo) = p.get(i) else {
            // unterminated: treat `[` literally
            return (c == '[').then_some(start + 1);
        };
        if lo == ']' && !first {
            break;
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p.get(i + 2).copied().unwrap_or(lo);
            found |= lo <= c && c <= hi;
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
    (found != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch() {
        assert!(matches("*.conf", "a.conf"));
        assert!(!matches("*.conf", "a.conf.bak"));
        assert!(matches("vi_?.conf", "vi_1.conf"));
        assert!(matches("[a-c]*", "beta"));
        assert!(!matches("[!a-c]*", "beta"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(matches("[", "["));
        assert!(!matches("x", "xy"));
        // pathological pattern stays fast
        let p = "*a".repeat(100);
        assert!(!matches(&p, &"a".repeat(50)));
    }
}
