//! Writes the model as commented, deterministic TOML.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::Note;
use super::convert::{Model, Table, Val};

/// One-line, printable text for comments: control characters escaped, at most `max` chars.
pub(crate) fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn value(v: &Val, out: &mut String) {
    match v {
        Val::Str(s) => out.push_str(&quote(s)),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Val::Arr(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| {
                    let mut s = String::new();
                    value(i, &mut s);
                    s
                })
                .collect();
            let one_line = parts.join(", ");
            if one_line.len() <= 80 {
                out.push('[');
                out.push_str(&one_line);
                out.push(']');
            } else {
                out.push_str("[\n");
                for p in parts {
                    out.push_str("    ");
                    out.push_str(&p);
                    out.push_str(",\n");
                }
                out.push(']');
            }
        }
        Val::Inline(kvs) => {
            out.push_str("{ ");
            for (i, (k, v)) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k.as_str());
                out.push_str(" = ");
                value(v, out);
            }
            out.push_str(" }");
        }
    }
}

fn table(header: &str, t: &Table, out: &mut String) {
    out.push('\n');
    if !t.comment.is_empty() {
        let _ = writeln!(out, "# keepalived: {}", clean(&t.comment, 120));
    }
    out.push_str(header);
    out.push('\n');
    for (k, v) in &t.entries {
        out.push_str(k.as_str());
        out.push_str(" = ");
        value(v, out);
        out.push('\n');
    }
}

pub(crate) fn emit(m: &Model, notes: &[Note], files: &[PathBuf]) -> String {
    let mut out = String::new();
    let main = files
        .first()
        .map(|p| clean(&p.display().to_string(), 200))
        .unwrap_or_default();
    let _ = writeln!(out, "# vipd configuration converted from {main}");
    out.push_str("# by `vipctl import-keepalived`. Review every note below, then check the file\n");
    out.push_str("# with `vipd --check`. Migration guide: docs/migration.md\n");
    for f in files.iter().skip(1) {
        let _ = writeln!(out, "# included: {}", clean(&f.display().to_string(), 200));
    }
    out.push_str("#\n");
    if notes.is_empty() {
        out.push_str("# Every keyword was converted.\n");
    }
    for n in notes {
        let mut loc = clean(&n.file.display().to_string(), 200);
        if n.line > 0 {
            let _ = write!(loc, ":{}", n.line);
        }
        let _ = writeln!(
            out,
            "# {}: {loc} {}: {}",
            n.severity.label(),
            clean(&n.keyword, 64),
            clean(&n.message, 1000)
        );
    }
    if !m.global.entries.is_empty() {
        table("[global]", &m.global, &mut out);
    }
    for t in &m.track_scripts {
        table("[[track_script]]", t, &mut out);
    }
    for t in &m.track_files {
        table("[[track_file]]", t, &mut out);
    }
    for t in &m.track_processes {
        table("[[track_process]]", t, &mut out);
    }
    for i in &m.instances {
        table("[[instance]]", &i.table, &mut out);
        for v in &i.vips {
            table("[[instance.vip]]", v, &mut out);
        }
        for r in &i.routes {
            table("[[instance.route]]", r, &mut out);
        }
        for r in &i.rules {
            table("[[instance.rule]]", r, &mut out);
        }
    }
    for g in &m.sync_groups {
        table("[[sync_group]]", g, &mut out);
    }
    out
}
