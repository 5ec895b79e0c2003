//! TOML configuration: parsing, validation, and compiler-style diagnostics.
//!
//! Entry points: [`load`] (a file) and [`parse_str`] (text, with the path used in messages).
//! Both return a [`Loaded`] — the validated, span-free [`Config`] plus any warnings — or a
//! [`Diagnostics`] holding at least one error (and the warnings found so far). Every
//! diagnostic carries `file:line:column` and renders like a compiler message:
//!
//! ```text
//! /etc/vipd/vipd.toml:12:19: error: advert_interval 15ms is not a multiple of 10ms (VRRPv3 counts centiseconds)
//!    |
//! 12 | advert_interval = "15ms"
//!    |                   ^^^^^^
//!   hint: use 10ms or 20ms
//! ```
//!
//! Pipeline: read (≤ [`MAX_FILE_SIZE`], UTF-8) → TOML parse (all syntax errors) → shape check
//! (unknown keys with "did you mean", value types) → serde into spanned raw structs
//! (`deny_unknown_fields`) → semantic validation (ranges, families, uniqueness, limits).
//! The key reference is `docs/config.md`; a commented example is `config/vipd.toml`.
//!
//! ```
//! use std::path::Path;
//! let text = r#"
//! [[instance]]
//! name = "VI_1"
//! interface = "eth0"
//! vrid = 51
//! vips = ["10.0.0.100/24"]
//! "#;
//! let loaded = vipd_config::parse_str(text, Path::new("vipd.toml")).unwrap();
//! let vi = loaded.config.instance("VI_1").unwrap();
//! assert_eq!(vi.priority, 100);
//! assert!(loaded.warnings.is_empty());
//! ```

#![warn(missing_docs, unreachable_pub)]

mod cross;
mod diag;
mod duration;
mod field;
mod host;
pub mod import;
mod raw;
mod schema;
mod types;
mod validate;

use std::io::Read;
use std::path::Path;

use toml::de::DeTable;

pub use cross::{cross_check, pair_check};

/// Every key of the file, as constants generated from the configuration types: code that
/// writes vipd.toml (the importer, the lab, the drill) names keys only through these, so a
/// renamed key is a compile error there. `keys::instance::vrid.as_str() == "vrid"`.
pub mod keys {
    pub use crate::raw::Key;
    pub use crate::raw::announce_keys as announce;
    pub use crate::raw::auth_hmac_keys as auth_hmac;
    pub use crate::raw::file_keys as file;
    pub use crate::raw::global_keys as global;
    pub use crate::raw::hmac_key_keys as hmac_key;
    pub use crate::raw::instance_keys as instance;
    pub use crate::raw::peer_keys as peer;
    pub use crate::raw::route_keys as route;
    pub use crate::raw::rule_keys as rule;
    pub use crate::raw::sync_group_keys as sync_group;
    pub use crate::raw::track_file_keys as track_file;
    pub use crate::raw::track_http_keys as track_http;
    pub use crate::raw::track_process_keys as track_process;
    pub use crate::raw::track_ref_keys as track_ref;
    pub use crate::raw::track_script_keys as track_script;
    pub use crate::raw::track_tcp_keys as track_tcp;
    pub use crate::raw::vip_keys as vip;
}
pub use diag::{Diagnostic, Diagnostics, MAX_DIAGNOSTICS, Severity};
pub use duration::{DurationError, format_duration, parse_duration};
pub use host::{HostChecks, run_as_problem};
pub use schema::json_schema;
pub use types::{
    Announce, AnnouncePolicy, AuthPass, ChecksumMode, Config, DEFAULT_ADVERT_INTERVAL,
    DEFAULT_CONTROL_SOCKET, DEFAULT_PRIORITY, DEFAULT_RECEIVE_BUFFER, Family, Garp, Global,
    Instance, Loaded, MAIN_TABLE, MAX_FILE_SIZE, MAX_INSTANCES, MAX_PEERS, MAX_SYNC_GROUPS,
    MAX_VIPS, Route, RouteType, Rule, Scope, SyncGroup, Version, Vip,
};
pub use types::{
    ArgsMatch, DEFAULT_NOTIFY_TIMEOUT, DEFAULT_SCRIPT_USER, HttpUrl, MAX_TRACK_REFS, MAX_TRACKERS,
    MAX_WEIGHT, Notify, Probe, TrackFile, TrackHttp, TrackKind, TrackProcess, TrackRef,
    TrackScript, TrackTcp, WeightSite,
};
pub use validate::{SCRIPT_PATH, insecure_path};

use diag::Reporter;

/// Reads, parses and validates the configuration file at `path`, as the daemon does (the host
/// pass with [`HostChecks::Daemon`]).
///
/// Errors (as [`Diagnostics`]) when the file cannot be read, is larger than
/// [`MAX_FILE_SIZE`], is not UTF-8, or does not parse/validate.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    load_with(path, HostChecks::Daemon)
}

/// [`load`], with or without the host pass ([`HostChecks`]).
pub fn load_with(path: &Path, host: HostChecks) -> Result<Loaded, Diagnostics> {
    let text = read_capped(path)?;
    parse_str_with(&text, path, host)
}

/// Parses and validates configuration `text`; `origin` is the path shown in diagnostics.
/// Runs the host pass too (programs and users must exist here).
pub fn parse_str(text: &str, origin: &Path) -> Result<Loaded, Diagnostics> {
    parse_str_with(text, origin, HostChecks::Run)
}

/// [`parse_str`], with or without the host pass: with [`HostChecks::Skip`] only what the
/// file itself says is checked (another host's file), and programs keep the names written.
pub fn parse_str_with(text: &str, origin: &Path, host: HostChecks) -> Result<Loaded, Diagnostics> {
    let mut r = Reporter::new(text, origin);
    if text.len() as u64 > MAX_FILE_SIZE {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::whole_file(
            Severity::Error,
            origin,
            format!(
                "configuration is {} bytes; the limit is {MAX_FILE_SIZE} bytes",
                text.len()
            ),
        ));
        return Err(d);
    }

    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            let (message, hint) = syntax_message(e.message(), text.get(span.clone()).unwrap_or(""));
            r.error_opt(span, message, hint);
        }
        return Err(finish(r));
    }

    if !schema::check(&doc, &mut r) {
        return Err(finish(r));
    }

    let raw: raw::RawConfig =
        match serde::Deserialize::deserialize(toml::de::Deserializer::from(doc)) {
            Ok(raw) => raw,
            Err(e) => {
                // The shape check above should have caught this; report serde's view anyway.
                let span = e.span().unwrap_or(0..0);
                r.error_opt(span, e.message().to_string(), None);
                return Err(finish(r));
            }
        };

    let (mut config, weight_sites, key_sites, host_sites) = validate::validate(raw, &mut r);
    if r.has_errors() {
        return Err(finish(r));
    }
    if host != HostChecks::Skip {
        host::check(&mut config, &host_sites, host == HostChecks::Daemon, &mut r);
        if r.has_errors() {
            return Err(finish(r));
        }
    }
    let mut diags = r.diags;
    diags.sort();
    Ok(Loaded {
        config,
        warnings: diags.take_warnings(),
        weight_sites,
        key_sites,
    })
}

/// Our wording for toml's syntax errors, with a hint for the common slips.
fn syntax_message(msg: &str, at: &str) -> (String, Option<String>) {
    let at: String = at.chars().take(40).collect();
    if msg.starts_with("duplicate key") {
        return (
            format!("TOML syntax: duplicate key `{at}`"),
            Some("each key may appear once per table".to_string()),
        );
    }
    if msg.starts_with("string values must be quoted") {
        // A digit typed as a letter (`15O`, `l50`) is a number gone wrong, not a string.
        let digits = at.chars().filter(char::is_ascii_digit).count();
        let near: String = at
            .chars()
            .map(|c| match c {
                'O' | 'o' => '0',
                'l' | 'I' => '1',
                c => c,
            })
            .collect();
        let hint = if digits > 0 && near.chars().all(|c| c.is_ascii_digit()) {
            format!("a number has letters in it: did you mean {near}?")
        } else {
            format!("write \"{}\"", at.escape_default())
        };
        return (
            "TOML syntax: string values must be quoted".to_string(),
            Some(hint),
        );
    }
    if msg.starts_with("invalid basic string") || msg.starts_with("invalid literal string") {
        return (
            format!("TOML syntax: {msg}"),
            Some("close the string on the same line".to_string()),
        );
    }
    (format!("TOML syntax: {msg}"), None)
}

fn finish(r: Reporter<'_>) -> Diagnostics {
    let mut d = r.diags;
    d.sort();
    d
}

fn read_capped(path: &Path) -> Result<String, Diagnostics> {
    let fail = |msg: String| {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::whole_file(Severity::Error, path, msg));
        d
    };
    let file = std::fs::File::open(path)
        .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
    if let Ok(meta) = file.metadata() {
        if meta.is_dir() {
            return Err(fail(format!(
                "cannot read {}: it is a directory",
                path.display()
            )));
        }
        if meta.len() > MAX_FILE_SIZE {
            return Err(fail(format!(
                "{} is {} bytes; the limit is {MAX_FILE_SIZE} bytes",
                path.display(),
                meta.len()
            )));
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(fail(format!(
            "{} is larger than the limit of {MAX_FILE_SIZE} bytes",
            path.display()
        )));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let prefix = String::from_utf8_lossy(bytes.get(..valid).unwrap_or(&[])).into_owned();
            let r = Reporter::new(&prefix, path);
            let mut d = Diagnostics::new();
            d.push(r.make(
                Severity::Error,
                valid..valid,
                "file is not valid UTF-8".to_string(),
                Some("save the configuration as UTF-8".to_string()),
            ));
            Err(d)
        }
    }
}

/// `vipd --check` and `vipctl check`: loads every file, cross-checks the instances they share
/// (weights that can never move the VIP between peers, and everything two routers of one
/// virtual router must agree on: [`pair_check`]), writes diagnostics to `err` and one summary
/// line per valid file to `out`. Returns false if any file has errors, or, with `strict`,
/// any warning.
pub fn check_files(
    paths: &[std::path::PathBuf],
    host: HostChecks,
    strict: bool,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> bool {
    let mut ok = Vec::new();
    let mut failed = false;
    let mut warnings = 0;
    for path in paths {
        match load_with(path, host) {
            Ok(loaded) => ok.push((path.clone(), loaded)),
            Err(diags) => {
                let _ = writeln!(err, "{diags}");
                failed = true;
            }
        }
    }
    let mut cross = cross_check(&ok);
    cross.extend(pair_check(&ok));
    for (path, loaded) in &ok {
        for w in &loaded.warnings {
            let _ = writeln!(err, "{w}");
        }
        let mine: Vec<_> = cross.iter().filter(|d| &d.file == path).collect();
        for w in &mine {
            let _ = writeln!(err, "{w}");
        }
        let _ = writeln!(
            out,
            "{}: ok ({} instance(s), {} warning(s))",
            path.display(),
            loaded.config.instances.len(),
            loaded.warnings.len() + mine.len()
        );
        warnings += loaded.warnings.len() + mine.len();
    }
    if strict && warnings > 0 {
        let _ = writeln!(err, "--strict: {warnings} warning(s), failing");
        return false;
    }
    !failed
}
