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
    /// Check programs and users on this host (the daemon, `vipd --check`).
    #[default]
    Run,
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

/// What the pure pass found that depends on the host.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostSites {
    pub(crate) programs: Vec<ProgramSite>,
    pub(crate) users: Vec<UserSite>,
}

/// Runs the host pass: reports at each site, and rewrites every program's `argv[0]` to the
/// path it resolved to (what the daemon executes).
pub(crate) fn check(config: &mut Config, sites: &HostSites, r: &mut Reporter<'_>) {
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
    let mut users: HashMap<&str, bool> = HashMap::new();
    for u in &sites.users {
        let exists = *users
            .entry(u.user.as_str())
            .or_insert_with(|| matches!(nix::unistd::User::from_name(&u.user), Ok(Some(_))));
        if !exists {
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
