//! The host pass: what a configuration means on *this* host, checked after the pure
//! validation (which depends on the file alone). Programs resolve to an executable file
//! (bare names through [`SCRIPT_PATH`]) and pass `enable_script_security`; the users scripts
//! and notify programs run as exist. The daemon always runs it; `vipd --check` runs it unless
//! told the file is for another host (`--no-host-checks`).

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use super::diag::Reporter;
use super::types::Config;
use super::validate::{insecure_path, resolve_program, shorten};

/// Whether to run the host pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostChecks {
    /// Check programs and users on this host (`vipctl check`, tests).
    #[default]
    Run,
    /// [`HostChecks::Run`], and that this process can run the programs as their users
    /// without sharing its identity ([`run_as_problem`]): the daemon, and `vipd --check` (the
    /// unit's ExecStartPre, with the daemon's identity).
    Daemon,
    /// Only what the file itself says (`vipd --check --no-host-checks`, for another host's
    /// file): programs keep the names written, users are not looked up.
    Skip,
}

/// A program the file names, where, and for what.
#[derive(Debug, Clone)]
pub(crate) struct ProgramSite {
    pub(crate) span: Range<usize>,
    pub(crate) what: String,
    /// `argv[0]` as written.
    pub(crate) first: String,
}

/// A user scripts or notify programs run as.
#[derive(Debug, Clone)]
pub(crate) struct UserSite {
    pub(crate) span: Range<usize>,
    pub(crate) what: String,
    pub(crate) user: String,
}

/// Where an `auth_hmac` key is kept on the host.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// A file (refused if group or others can read it).
    File(PathBuf),
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/<name>`.
    Credential(String),
}

/// An `auth_hmac` key read by the host pass.
#[derive(Debug, Clone)]
pub(crate) struct KeySite {
    pub(crate) span: Range<usize>,
    pub(crate) instance: String,
    pub(crate) id: u8,
    pub(crate) source: KeySource,
}

/// A file a tracker reads.
#[derive(Debug, Clone)]
pub(crate) struct FileSite {
    pub(crate) span: Range<usize>,
    pub(crate) what: String,
    pub(crate) path: PathBuf,
}

/// What the pure pass found that depends on the host.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostSites {
    pub(crate) programs: Vec<ProgramSite>,
    pub(crate) users: Vec<UserSite>,
    pub(crate) keys: Vec<KeySite>,
    pub(crate) files: Vec<FileSite>,
}

/// CAP_SETGID and CAP_SETUID (capability numbers 6 and 7).
const CAP_SETID: u64 = (1 << 6) | (1 << 7);

/// This process's effective capabilities (`CapEff` of /proc/self/status).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Why this process cannot run programs as `uid` without sharing its own identity, if it
/// cannot: the programs would run as vipd's own user (they could stop vipd or replace its
/// control socket), or vipd lacks CAP_SETUID/CAP_SETGID to switch to the user.
pub fn run_as_problem(user: &str, uid: u32) -> Option<(String, &'static str)> {
    let me = nix::unistd::Uid::effective().as_raw();
    if uid == me {
        if me == 0 {
            return None; // root runs root's programs: keepalived's default, the operator's choice
        }
        return Some((
            format!(
                "runs as user `{}`, which is vipd's own user: a script could stop vipd or replace its control socket",
                shorten(user)
            ),
            "set script_user (or the tracker's user) to a user of its own, e.g. nobody (the default)",
        ));
    }
    if effective_caps() & CAP_SETID != CAP_SETID {
        return Some((
            format!(
                "runs as user `{}`, but vipd cannot switch to it: it lacks CAP_SETUID and CAP_SETGID",
                shorten(user)
            ),
            "run vipd with CAP_SETUID and CAP_SETGID (the shipped unit grants them: AmbientCapabilities=), or as root",
        ));
    }
    None
}

/// Why anyone other than root and the file's owner could set the value of a tracked file,
/// if they could: its directory is writable by every user, or by a group other than root's
/// (a sticky bit does not help: the file may not exist yet, and whoever creates it owns it).
fn open_file_dir(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let dir = path.parent()?;
    let m = std::fs::metadata(dir).ok()?;
    let mode = m.mode();
    if mode & 0o002 != 0 {
        return Some(format!(
            "its directory {} is writable by every user (mode {:o}): anyone could set this tracker's value",
            dir.display(),
            mode & 0o7777
        ));
    }
    if mode & 0o020 != 0 && m.gid() != 0 {
        return Some(format!(
            "its directory {} is writable by group {} (mode {:o}): its members could set this tracker's value",
            dir.display(),
            m.gid(),
            mode & 0o7777
        ));
    }
    None
}

/// Reads an `auth_hmac` key from the host: the file's mode first (no group or other
/// access), then at most 1 KiB of it, in the forms of `value`.
pub(crate) fn read_key(source: &KeySource) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let path = match source {
        KeySource::File(p) => p.clone(),
        KeySource::Credential(name) => {
            if name.is_empty() || name.contains('/') || name == ".." {
                return Err(format!("`{name}` is not a credential name"));
            }
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                "no $CREDENTIALS_DIRECTORY (set LoadCredential= in the unit, or use file = \"...\")"
                    .to_string()
            })?;
            PathBuf::from(dir).join(name)
        }
    };
    let f =
        std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if matches!(source, KeySource::File(_)) && meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable or writable by group or others (mode {:o}): chmod 600 it",
            path.display(),
            meta.mode() & 0o777
        ));
    }
    let mut text = String::new();
    f.take(2048)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    super::validate::key_bytes(text.trim()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the host pass: reports at each site, and rewrites every program's `argv[0]` to the
/// path it resolved to (what the daemon executes).
pub(crate) fn check(config: &mut Config, sites: &HostSites, as_daemon: bool, r: &mut Reporter<'_>) {
    let mut resolved: HashMap<&str, PathBuf> = HashMap::new();
    for p in &sites.programs {
        let path = match resolve_program(&p.first) {
            Ok(path) => path,
            Err((msg, hint)) => {
                r.error_hint(p.span.clone(), format!("{}: {msg}", p.what), hint);
                continue;
            }
        };
        if config.global.enable_script_security
            && let Some(why) = insecure_path(&path)
        {
            r.error_hint(
                p.span.clone(),
                format!("{}: refusing {}: {why}", p.what, path.display()),
                "enable_script_security (on by default) runs only programs that non-root users cannot modify: fix the owner/mode, or set enable_script_security = false in [global]",
            );
            continue;
        }
        resolved.insert(p.first.as_str(), path);
    }
    for f in &sites.files {
        if config.global.enable_script_security
            && let Some(why) = open_file_dir(&f.path)
        {
            r.error_hint(
                f.span.clone(),
                format!("{}: refusing {}: {why}", f.what, f.path.display()),
                "keep tracked files in a directory only root (or vipd's user) can write, e.g. /run/vipd, or set enable_script_security = false in [global]",
            );
        }
    }
    let mut users: HashMap<&str, Option<u32>> = HashMap::new();
    for u in &sites.users {
        let uid =
            *users.entry(u.user.as_str()).or_insert_with(|| {
                match nix::unistd::User::from_name(&u.user) {
                    Ok(Some(user)) => Some(user.uid.as_raw()),
                    _ => None,
                }
            });
        if let Some(uid) = uid
            && as_daemon
            && let Some((why, hint)) = run_as_problem(&u.user, uid)
        {
            r.error_hint(u.span.clone(), format!("{} {why}", u.what), hint);
            continue;
        }
        if uid.is_none() {
            r.error_hint(
                u.span.clone(),
                format!(
                    "{} runs as user `{}`, which does not exist on this host",
                    u.what,
                    shorten(&u.user)
                ),
                "create the user, or set script_user in [global] (or user in the tracker)",
            );
        }
    }
    for k in &sites.keys {
        match read_key(&k.source) {
            Ok(secret) => {
                if let Some(key) = config
                    .instances
                    .iter_mut()
                    .filter(|i| i.name == k.instance)
                    .filter_map(|i| i.auth_hmac.as_mut())
                    .flat_map(|a| a.keys.iter_mut())
                    .find(|x| x.id == k.id)
                {
                    key.secret = secret;
                }
            }
            Err(e) => r.error(k.span.clone(), format!("auth_hmac key {}: {e}", k.id)),
        }
    }
    if resolved.is_empty() {
        return;
    }
    let rewrite = |argv: &mut Vec<String>| {
        if let Some(first) = argv.first_mut()
            && let Some(path) = resolved.get(first.as_str())
        {
            *first = path.to_string_lossy().into_owned();
        }
    };
    config.for_each_program(rewrite);
}
