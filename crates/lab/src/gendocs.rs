//! Man pages and shell completions, generated from the one definition of each fact: the clap
//! command lines (`vipd::cli`) and the configuration's types (through their JSON schema, which
//! derives from them). See `src/bin/vipd-gen-docs.rs`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::Shell;
use serde_json::Value;

/// Escapes text for roff (backslashes, hyphens, a leading dot or quote).
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// Follows a local `$ref`.
fn resolve<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or(r);
            root.get("$defs").and_then(|d| d.get(name)).unwrap_or(v)
        }
        None => v,
    }
}

/// The table a key holds, if it is one (an object, or an array of objects).
fn table_of<'a>(root: &'a Value, v: &'a Value) -> Option<(&'a Value, bool)> {
    let v = resolve(root, v);
    match v.get("type").and_then(Value::as_str) {
        Some("object") if v.get("properties").is_some() => Some((v, false)),
        Some("array") => {
            let items = resolve(root, v.get("items")?);
            items.get("properties").map(|_| (items, true))
        }
        _ => v
            .get("anyOf")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find_map(|x| table_of(root, x))),
    }
}

/// "integer 1..=255", "duration", "string (one of: a, b)", "list of strings".
fn type_of(root: &Value, v: &Value) -> String {
    let v = resolve(root, v);
    if let Some(any) = v.get("anyOf").and_then(Value::as_array) {
        let kinds: Vec<String> = any
            .iter()
            .map(|x| type_of(root, x))
            .filter(|k| k != "null" && !k.is_empty())
            .collect();
        return kinds.join(" or ");
    }
    let ty = match v.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    let mut out = match ty.as_str() {
        "string" if v.get("format").and_then(Value::as_str) == Some("duration") => {
            "duration".to_string()
        }
        "array" => match v.get("items").map(|i| type_of(root, i)) {
            Some(t) if !t.is_empty() => format!("list of {t}s"),
            _ => "list".to_string(),
        },
        "" => String::new(),
        t => t.to_string(),
    };
    if let (Some(lo), Some(hi)) = (v.get("minimum"), v.get("maximum")) {
        let _ = write!(out, " {lo}..={hi}");
    }
    if let Some(e) = v.get("enum").and_then(Value::as_array) {
        let names: Vec<&str> = e.iter().filter_map(Value::as_str).collect();
        let _ = write!(out, " (one of: {})", names.join(", "));
    }
    out
}

fn description(v: &Value) -> String {
    v.get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .replace('\n', " ")
        .replace('`', "")
}

/// The keys of one table, then its sub-tables, as man-page sections.
fn section(root: &Value, header: &str, table: &Value, out: &mut String) {
    let _ = writeln!(out, ".SS {}", roff(header));
    let Some(props) = table.get("properties").and_then(Value::as_object) else {
        return;
    };
    let mut subs = Vec::new();
    for (key, v) in props {
        if let Some((sub, many)) = table_of(root, v) {
            let name = header.trim_matches(|c| c == '[' || c == ']');
            let h = if many {
                format!("[[{name}.{key}]]")
            } else {
                format!("[{name}.{key}]")
            };
            subs.push((h, sub));
            continue;
        }
        let _ = writeln!(
            out,
            ".TP\n\\fB{}\\fR ({})",
            roff(key),
            roff(&type_of(root, v))
        );
        let _ = writeln!(out, "{}", roff(&description(v)));
    }
    for (h, sub) in subs {
        section(root, &h, sub, out);
    }
}

/// vipd.toml(5), from the configuration's JSON schema.
pub fn config_man(schema: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH VIPD.TOML 5 \"\" \"vipd {}\" \"File Formats\"",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        ".SH NAME\nvipd.toml \\- configuration of vipd, the VRRP virtual\\-IP failover agent"
    );
    let _ = writeln!(
        out,
        ".SH SYNOPSIS\n/etc/vipd/vipd.toml\n.SH DESCRIPTION\nA TOML file: a \\fB[global]\\fR table, one \\fB[[instance]]\\fR table per virtual router, \\fB[[sync_group]]\\fR tables, and tracker tables. Check it with \\fBvipd \\-\\-check\\fR; give every peer's file to compare them. Durations are strings with a unit (\\fB\"1s\"\\fR, \\fB\"100ms\"\\fR). The full reference with defaults and keepalived equivalents is /usr/share/doc/vipd/docs/config.md; the JSON schema is /usr/share/vipd/vipd.schema.json."
    );
    let _ = writeln!(out, ".SH KEYS");
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, v) in props {
            if let Some((table, many)) = table_of(schema, v) {
                let h = if many {
                    format!("[[{key}]]")
                } else {
                    format!("[{key}]")
                };
                section(schema, &h, table, &mut out);
            }
        }
    }
    let _ = writeln!(
        out,
        ".SH FILES\n/etc/vipd/vipd.toml\n.SH SEE ALSO\n\\fBvipd\\fR(8), \\fBvipctl\\fR(8), \\fBkeepalived.conf\\fR(5)"
    );
    out
}

fn command_man(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).section("8").render(&mut buf)?;
    Ok(buf)
}

/// A page per subcommand (`vipctl-status(8)`, `vipctl-drill-failover(8)`), as the parent's
/// page refers to them.
fn subcommand_pages(
    cmd: &clap::Command,
    prefix: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> io::Result<()> {
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("{prefix}-{}", sub.get_name());
        // clap takes 'static names (without its `string` feature); a generator may leak.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let page = sub.clone().name(leaked).bin_name(name.replace('-', " "));
        out.push((name.clone(), command_man(page)?));
        subcommand_pages(sub, &name, out)?;
    }
    Ok(())
}

/// Writes everything into `dir`; returns the files written.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let mut written = Vec::new();
    let mut write = |path: PathBuf, bytes: &[u8]| -> io::Result<()> {
        std::fs::write(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    write(
        man.join("vipd.8"),
        &command_man(vipd::cli::vipd::Cli::command())?,
    )?;
    write(
        man.join("vipctl.8"),
        &command_man(vipd::cli::vipctl::Cli::command())?,
    )?;
    let mut subs = Vec::new();
    let mut vipctl = vipd::cli::vipctl::Cli::command();
    vipctl.build();
    subcommand_pages(&vipctl, "vipctl", &mut subs)?;
    for (name, page) in subs {
        write(man.join(format!("{name}.8")), &page)?;
    }
    write(
        man.join("vipd.toml.5"),
        config_man(vipd_config::json_schema()).as_bytes(),
    )?;
    for (name, mut cmd) in [
        ("vipd", vipd::cli::vipd::Cli::command()),
        ("vipctl", vipd::cli::vipctl::Cli::command()),
    ] {
        for (shell, file) in [
            (Shell::Bash, name.to_string()),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut buf);
            write(comp.join(file), &buf)?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_page_lists_every_table_and_key() {
        let page = config_man(vipd_config::json_schema());
        for h in [
            ".SS [global]",
            ".SS [[instance]]",
            ".SS [[instance.vip]]",
            ".SS [[instance.unicast_peer]]",
            ".SS [instance.auth_hmac]",
            ".SS [[sync_group]]",
            ".SS [[track_script]]",
        ] {
            assert!(page.contains(h), "{h} missing");
        }
        for key in [
            "unicast_min_ttl",
            "max_adopted_interval",
            "receive_buffer",
            "script_user",
            "advert_interval",
        ] {
            assert!(
                page.contains(&format!("\\fB{}\\fR", roff(key))),
                "{key} missing"
            );
        }
        assert!(
            page.contains("\\fBpriority\\fR (integer 1..=255)"),
            "{page}"
        );
    }

    #[test]
    fn the_command_pages_and_completions() {
        let dir = std::env::temp_dir().join(format!("vipd-gendocs-{}", std::process::id()));
        let files = write_all(&dir).unwrap();
        // vipd, vipctl, vipd.toml, 8 subcommand pages, 6 completion files.
        assert!(dir.join("man/vipctl-status.8").exists());
        assert!(dir.join("man/vipctl-drill-failover.8").exists());
        assert_eq!(files.len(), 3 + 8 + 6, "{files:#?}");
        let vipctl = std::fs::read_to_string(dir.join("man/vipctl.8")).unwrap();
        for sub in [
            "status",
            "drill",
            "maintenance",
            "reload",
            "upgrade",
            "import\\-keepalived",
            "check",
        ] {
            assert!(vipctl.contains(sub), "vipctl(8) lacks {sub}");
        }
        let vipd = std::fs::read_to_string(dir.join("man/vipd.8")).unwrap();
        assert!(vipd.contains("\\-\\-check") && vipd.contains("\\-\\-strict"));
        assert!(!vipd.contains("handover"), "hidden options stay hidden");
        let bash = std::fs::read_to_string(dir.join("completions/vipctl")).unwrap();
        assert!(bash.contains("import-keepalived"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
