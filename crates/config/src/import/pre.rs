//! keepalived's configuration preprocessor, applied line by line before lexing, as keepalived
//! does (keepalived.conf(5), "ADVANCED CONFIGURATION"):
//!
//! - `@id line` / `@^id line`: the line counts only on the host whose config id is (is not)
//!   `id` (the config id: `--host`, default this host's name up to the first dot);
//! - `$NAME=value` defines a parameter (a value ending in `\` continues on the next line: a
//!   multi-line definition); `$NAME` followed by whitespace or the end of the line, and
//!   `${NAME}`, are replaced by its value at use, recursively; an undefined one is left as it
//!   is; `${_PWD}`, `${_INSTANCE}`, `${_HASH}`, `${_BANG}` and `${_ENV VAR}` are predefined;
//! - `~SEQ(var, start, step, end)`, `~SEQx(...)` (hexadecimal) and `~LST(var, v1, v2, ...)`
//!   (also `~LST({a, b}, {1, 2}, ...)`) repeat the rest of the line.
//!
//! Bounded: [`MAX_LINES`] lines produced, substitution and nesting depths, line length.

use std::collections::HashMap;
use std::path::Path;

/// Most lines the preprocessor produces for one conversion.
pub(crate) const MAX_LINES: usize = 200_000;
/// Deepest recursion (a parameter expanding to lines that use parameters ...).
const MAX_DEPTH: usize = 16;
/// Longest line after substitution.
const MAX_LINE: usize = 64 * 1024;
/// Most substitutions in one line.
const MAX_SUBST: usize = 1024;

/// What the preprocessor keeps across the files of one conversion.
#[derive(Debug, Default)]
pub(crate) struct Pre {
    /// The config id `@id` lines are compared against.
    pub(crate) config_id: String,
    defs: HashMap<String, String>,
    /// Environment for `${_ENV VAR}` (`None`: not read, the text is left).
    pub(crate) env: Option<HashMap<String, String>>,
    produced: usize,
    /// Problems, by source line: (line, message).
    pub(crate) problems: Vec<(usize, String)>,
    /// Whether the text used any preprocessor feature (worth a note).
    pub(crate) used: bool,
}

/// A multi-line definition being read: its name and the lines so far.
struct Pending {
    name: String,
    value: String,
}

impl Pre {
    /// A preprocessor for the host whose config id is `config_id`.
    pub(crate) fn new(config_id: &str) -> Pre {
        Pre {
            config_id: config_id.to_string(),
            ..Pre::default()
        }
    }

    /// The lines of `text` (the file at `path`) after preprocessing, each with the line number
    /// it came from. `Err`: the output would exceed [`MAX_LINES`].
    pub(crate) fn expand(
        &mut self,
        text: &str,
        path: &Path,
    ) -> Result<Vec<(usize, String)>, String> {
        // keepalived's ${_PWD} is absolute (the text of `convert` may have no real path).
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let pwd = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .display()
            .to_string();
        let mut out = Vec::new();
        let mut pending: Option<Pending> = None;
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if let Some(mut p) = pending.take() {
                match line.trim_end().strip_suffix('\\') {
                    Some(more) => {
                        p.value.push('\n');
                        p.value.push_str(more);
                        pending = Some(p);
                    }
                    None => {
                        p.value.push('\n');
                        p.value.push_str(line);
                        self.defs.insert(p.name, p.value);
                    }
                }
                continue;
            }
            // A multi-line definition starts with `$NAME=` and a trailing backslash.
            if let Some((name, value)) = definition(line)
                && let Some(first) = value.trim_end().strip_suffix('\\')
            {
                self.used = true;
                pending = Some(Pending {
                    name: name.to_string(),
                    value: first.trim().to_string(),
                });
                continue;
            }
            self.line(line, line_no, &pwd, 0, &mut out)?;
        }
        if let Some(p) = pending {
            self.defs.insert(p.name, p.value);
        }
        Ok(out)
    }

    /// Processes one logical line at recursion `depth`, appending what it produces.
    fn line(
        &mut self,
        line: &str,
        line_no: usize,
        pwd: &str,
        depth: usize,
        out: &mut Vec<(usize, String)>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            self.problems.push((
                line_no,
                format!("parameters nested deeper than {MAX_DEPTH} levels"),
            ));
            return Ok(());
        }
        let trimmed = line.trim_start();
        // Conditional lines.
        if let Some(rest) = trimmed.strip_prefix('@') {
            self.used = true;
            let (neg, rest) = match rest.strip_prefix('^') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let id_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (id, body) = rest.split_at(id_end);
            if (id == self.config_id) != neg {
                return self.line(body, line_no, pwd, depth + 1, out);
            }
            return Ok(());
        }
        // Sequence and list blocks.
        if let Some(rest) = trimmed.strip_prefix('~') {
            self.used = true;
            return self.repeat(rest, line_no, pwd, depth, out);
        }
        // Definitions (single line here; multi-line ones are read by `expand`).
        if let Some((name, value)) = definition(line) {
            self.used = true;
            let value = value.trim().to_string();
            self.defs.insert(name.to_string(), value);
            return Ok(());
        }
        let text = self.substitute(line, line_no, pwd);
        if text.contains('\n') {
            // A multi-line parameter: each of its lines is a line of its own.
            for l in text.split('\n') {
                self.line(l, line_no, pwd, depth + 1, out)?;
            }
            return Ok(());
        }
        if text != line && text.trim_start().starts_with(['@', '$', '~']) {
            // `$IF_MAIN priority 240` with `$IF_MAIN=@main`: the result is preprocessed again.
            return self.line(&text, line_no, pwd, depth + 1, out);
        }
        self.produced += 1;
        if self.produced > MAX_LINES {
            return Err(format!(
                "the preprocessor produced more than {MAX_LINES} lines; refusing to convert"
            ));
        }
        out.push((line_no, text));
        Ok(())
    }

    /// `SEQ(...) rest`, `SEQx(...) rest` or `LST(...) rest` (after the `~`).
    fn repeat(
        &mut self,
        spec: &str,
        line_no: usize,
        pwd: &str,
        depth: usize,
        out: &mut Vec<(usize, String)>,
    ) -> Result<(), String> {
        let (kind, after) = match spec.split_once('(') {
            Some((k, a)) => (k.trim(), a),
            None => {
                self.problems.push((
                    line_no,
                    format!("`~{}` is not a ~SEQ or ~LST block", short(spec)),
                ));
                return Ok(());
            }
        };
        let Some(close) = matching_paren(after) else {
            self.problems
                .push((line_no, format!("`~{kind}(` is not closed")));
            return Ok(());
        };
        let (args, rest) = (&after[..close], &after[close + 1..]);
        // The arguments may use parameters themselves.
        let args = self.substitute(args, line_no, pwd);
        let sets: Vec<Vec<(String, String)>> = match kind {
            "SEQ" | "SEQx" => match seq(&args, kind == "SEQx") {
                Some(s) => s,
                None => {
                    self.problems
                        .push((line_no, format!("`~{kind}({args})`: bad arguments")));
                    return Ok(());
                }
            },
            "LST" => match lst(&args) {
                Some(s) => s,
                None => {
                    self.problems
                        .push((line_no, format!("`~LST({args})`: bad arguments")));
                    return Ok(());
                }
            },
            other => {
                self.problems
                    .push((line_no, format!("`~{other}` is not a ~SEQ or ~LST block")));
                return Ok(());
            }
        };
        for set in sets {
            for (name, value) in set {
                self.defs.insert(name, value);
            }
            self.line(rest, line_no, pwd, depth + 1, out)?;
        }
        Ok(())
    }

    /// `line` with its parameters replaced (recursively, bounded).
    fn substitute(&mut self, line: &str, line_no: usize, pwd: &str) -> String {
        let mut s = line.to_string();
        let mut count = 0;
        let mut from = 0;
        while let Some(off) = s.get(from..).and_then(|t| t.find('$')) {
            let at = from + off;
            let Some((name, arg, end)) = reference(&s, at) else {
                from = at + 1;
                continue;
            };
            let value = match name.as_str() {
                "_PWD" => Some(pwd.to_string()),
                "_INSTANCE" => Some(self.config_id.clone()),
                "_HASH" => Some("#".into()),
                "_BANG" => Some("!".into()),
                "_ENV" => match (&self.env, arg.as_deref()) {
                    (Some(env), Some(var)) => {
                        Some(env.get(var.trim()).cloned().unwrap_or_default())
                    }
                    _ => None,
                },
                "_RANDOM" => {
                    self.problems.push((
                        line_no,
                        "${_RANDOM} gives each keepalived start another value; the lowest one is written".into(),
                    ));
                    Some(
                        arg.as_deref()
                            .and_then(|a| a.split_whitespace().next())
                            .unwrap_or("0")
                            .to_string(),
                    )
                }
                n => self.defs.get(n).cloned(),
            };
            match value {
                Some(v) => {
                    self.used = true;
                    s.replace_range(at..end, &v);
                    count += 1;
                    // Rescan from the same place: the value may hold parameters.
                    from = at;
                    if count > MAX_SUBST || s.len() > MAX_LINE {
                        self.problems
                            .push((line_no, "parameter substitution does not end".into()));
                        return line.to_string();
                    }
                }
                None => from = end,
            }
        }
        s
    }

    /// Parameters left unreplaced in an unquoted word of `line`: those a template needs.
    pub(crate) fn unresolved(word: &str) -> Option<String> {
        let at = word.find('$')?;
        reference(word, at).map(|(n, _, _)| n)
    }
}

/// `$NAME=value` with only whitespace before the `$`: (name, value).
fn definition(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start().strip_prefix('$')?;
    let eq = t.find('=')?;
    let name = &t[..eq];
    valid_name(name).then(|| (name, &t[eq + 1..]))
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The parameter reference at byte `at` (a `$`) of `s`: (name, argument of `${_ENV X}`-style
/// forms, end). `$NAME` must be followed by whitespace or the end of the line.
fn reference(s: &str, at: usize) -> Option<(String, Option<String>, usize)> {
    let rest = s.get(at + 1..)?;
    if let Some(inner) = rest.strip_prefix('{') {
        let close = inner.find('}')?;
        let body = &inner[..close];
        let (name, arg) = match body.split_once(char::is_whitespace) {
            Some((n, a)) => (n, Some(a.to_string())),
            None => (body, None),
        };
        return valid_name(name).then(|| (name.to_string(), arg, at + 2 + close + 1));
    }
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..len];
    let next = rest[len..].chars().next();
    (valid_name(name) && next.is_none_or(char::is_whitespace))
        .then(|| (name.to_string(), None, at + 1 + len))
}

/// The index of the `)` closing the `(` just before `s`.
fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn number(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let n = match s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        Some(h) => i64::from_str_radix(h, 16).ok()?,
        None => s.parse::<i64>().ok()?,
    };
    Some(if neg { -n } else { n })
}

/// `var, [start, [step,]] end` as keepalived reads it; each value as one set.
fn seq(args: &str, hex: bool) -> Option<Vec<Vec<(String, String)>>> {
    let parts: Vec<&str> = args.split(',').map(str::trim).collect();
    let var = parts.first().filter(|v| valid_name(v))?.to_string();
    let nums: Vec<i64> = parts[1..]
        .iter()
        .map(|p| number(p))
        .collect::<Option<_>>()?;
    let (start, step, end) = match nums.as_slice() {
        [end] => (if *end >= 0 { 1 } else { -1 }, None, *end),
        [start, end] => (*start, None, *end),
        [start, step, end] => (*start, Some(*step), *end),
        _ => return None,
    };
    let step = step.unwrap_or(if end >= start { 1 } else { -1 });
    if step == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut v = start;
    while (step > 0 && v <= end) || (step < 0 && v >= end) {
        let shown = if hex { format!("{v:x}") } else { v.to_string() };
        out.push(vec![(var.clone(), shown)]);
        if out.len() > MAX_LINES {
            return None;
        }
        v = v.checked_add(step)?;
    }
    Some(out)
}

/// `var, v1, v2, ...` or `{a, b}, {1, 2}, {3, 4}`.
fn lst(args: &str) -> Option<Vec<Vec<(String, String)>>> {
    let args = args.trim();
    if let Some(rest) = args.strip_prefix('{') {
        let close = rest.find('}')?;
        let vars: Vec<String> = rest[..close]
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        if !vars.iter().all(|v| valid_name(v)) {
            return None;
        }
        let mut out = Vec::new();
        let mut tail = &rest[close + 1..];
        while let Some(open) = tail.find('{') {
            let close = tail[open..].find('}')? + open;
            let vals: Vec<&str> = tail[open + 1..close].split(',').map(str::trim).collect();
            if vals.len() != vars.len() {
                return None;
            }
            out.push(
                vars.iter()
                    .cloned()
                    .zip(vals.iter().map(|v| v.to_string()))
                    .collect(),
            );
            tail = &tail[close + 1..];
        }
        return (!out.is_empty()).then_some(out);
    }
    let mut parts = args.split(',').map(str::trim);
    let var = parts.next().filter(|v| valid_name(v))?.to_string();
    let out: Vec<Vec<(String, String)>> =
        parts.map(|v| vec![(var.clone(), v.to_string())]).collect();
    (!out.is_empty()).then_some(out)
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, text: &str) -> Vec<String> {
        let mut p = Pre::new(id);
        p.expand(text, Path::new("/etc/keepalived/keepalived.conf"))
            .unwrap()
            .into_iter()
            .map(|(_, l)| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn the_manual_examples() {
        // Conditional lines.
        let t = "@main router_id main_router\n@backup router_id backup_router\n@^main 1.2.3.4\n@^backup 1.2.3.5\n";
        assert_eq!(run("main", t), ["router_id main_router", "1.2.3.5"]);
        assert_eq!(run("other", t), ["1.2.3.4", "1.2.3.5"]);
        // Substitution at use time, recursive, braces.
        let t = "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n${ADDRESS_BASE}.100/32\n$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32\n";
        assert_eq!(run("x", t), ["10.2.0.100/32", "10.2.10.100/32"]);
        // Undefined: left as it is. `$NAME` needs whitespace or the end after it.
        assert_eq!(
            run("x", "$A=1\npriority $A\n${UNDEF} $Ax\n"),
            ["priority 1", "${UNDEF} $Ax"]
        );
        // With conditions, and a parameter that is a condition.
        let t = "@main $PRIORITY=240\n@backup $PRIORITY=200\npriority $PRIORITY\n$IF_MAIN=@main\n$IF_MAIN priority 240\n";
        assert_eq!(run("backup", t), ["priority 200"]);
        assert_eq!(run("main", t), ["priority 240", "priority 240"]);
        // Multi-line definitions, nested definitions inside.
        let t = "$INSTANCE= \\\nvrrp_instance VI_${NUM} { \\\n    interface eth0.${NUM} \\\n    @high priority 130 \\\n    @low priority 120 \\\n}\n$NUM=0\n$INSTANCE\n$NUM=1\n$INSTANCE\n";
        assert_eq!(
            run("low", t),
            [
                "vrrp_instance VI_0 {",
                "interface eth0.0",
                "priority 120",
                "}",
                "vrrp_instance VI_1 {",
                "interface eth0.1",
                "priority 120",
                "}"
            ]
        );
        // Predefined.
        assert_eq!(
            run(
                "lb1",
                "include ${_PWD}/conf.d/*.conf\nrouter_id ${_INSTANCE}\nx ${_HASH}${_BANG}\n"
            ),
            [
                "include /etc/keepalived/conf.d/*.conf",
                "router_id lb1",
                "x #!"
            ]
        );
    }

    #[test]
    fn sequences_and_lists() {
        assert_eq!(
            run("x", "~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1\n"),
            [
                "ip_address 10.0.0.1",
                "ip_address 10.0.1.1",
                "ip_address 10.0.2.1",
                "ip_address 10.0.3.1"
            ]
        );
        assert_eq!(
            run(
                "x",
                "~SEQx(SUBNET, 0x90, 0x10, 0xc0) fe80::20:${SUBNET}:1\n"
            ),
            [
                "fe80::20:90:1",
                "fe80::20:a0:1",
                "fe80::20:b0:1",
                "fe80::20:c0:1"
            ]
        );
        assert_eq!(run("x", "~SEQ(N, 3) n${N}\n"), ["n1", "n2", "n3"]);
        assert_eq!(run("x", "~SEQ(N, 3, 1) n${N}\n"), ["n3", "n2", "n1"]);
        assert_eq!(
            run("x", "~LST({IP, IP1}, {10,1},{20,4}) 192.168.${IP}.${IP1}\n"),
            ["192.168.10.1", "192.168.20.4"]
        );
        assert_eq!(
            run("x", "~LST(IP, 1, 2) ~LST(IP1, 5,6) 192.169.${IP}.${IP1}\n"),
            ["192.169.1.5", "192.169.1.6", "192.169.2.5", "192.169.2.6"]
        );
    }

    #[test]
    fn bounded() {
        let mut p = Pre::new("x");
        let e = p.expand("~SEQ(A, 0, 1000) ~SEQ(B, 0, 1000) x\n", Path::new("k.conf"));
        assert!(e.is_err());
        let mut p = Pre::new("x");
        let out = p.expand("$A=$A $A\nv $A", Path::new("k.conf")).unwrap();
        assert_eq!(out.len(), 1);
        assert!(!p.problems.is_empty());
        let mut p = Pre::new("x");
        let out = p.expand("$L= \\\n$L\n$L", Path::new("k.conf")).unwrap();
        assert!(out.len() <= 1, "{out:?}");
        assert!(!p.problems.is_empty());
    }
}
