//! Splitting a keepalived script string into an argv, the way a shell would for simple quoting.

/// The result of splitting a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Split {
    /// Plain words (with `'...'`, `"..."` and `\x` quoting resolved).
    Argv(Vec<String>),
    /// Needs a shell: pipes, `&&`, `;`, redirections, `$`, backquotes, globs, subshells, or
    /// unbalanced quotes. The caller runs the whole string with `/bin/sh -c`.
    Shell,
}

/// Splits `s` into words; anything beyond simple quoting yields [`Split::Shell`].
pub(crate) fn split(s: &str) -> Split {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Split::Shell,
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\')) => cur.push(n),
                            Some('$' | '`') => return Split::Shell,
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Split::Shell,
                        },
                        Some('$' | '`') => return Split::Shell,
                        Some(c) => cur.push(c),
                        None => return Split::Shell,
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(n) => {
                    in_word = true;
                    cur.push(n);
                }
                None => return Split::Shell,
            },
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[' => {
                return Split::Shell;
            }
            '~' if !in_word => return Split::Shell,
            '#' if !in_word => return Split::Shell,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Split::Argv(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        match split(s) {
            Split::Argv(v) => v,
            Split::Shell => panic!("{s} needs a shell"),
        }
    }

    #[test]
    fn simple_quoting() {
        assert_eq!(argv("killall -0 haproxy"), ["killall", "-0", "haproxy"]);
        assert_eq!(
            argv("/bin/notify.sh 'a b' \"c d\" e\\ f"),
            ["/bin/notify.sh", "a b", "c d", "e f"]
        );
        assert_eq!(argv("x ''"), ["x", ""]);
        assert_eq!(argv("  "), Vec::<String>::new());
    }

    #[test]
    fn shell_syntax() {
        for s in [
            "pidof haproxy || exit 1",
            "curl -sf http://x/ > /dev/null",
            "a; b",
            "echo $HOME",
            "test -f /tmp/x && true",
            "echo `id`",
            "ls /etc/*.conf",
            "x 'unterminated",
            "cat ~/x",
        ] {
            assert_eq!(split(s), Split::Shell, "{s}");
        }
    }
}
