//! Trackers (`[[track_*]]`), the instances' `track_*` lists, notification programs and the
//! script-security rule.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::diag::{Reporter, did_you_mean};
use super::super::duration::format_duration;
use super::super::raw::{
    Int, NotifyTimeout, ProbeTime, RawCommand, RawConfig, RawGlobal, RawInstance, RawStatuses,
    RawSyncGroup, RawTrackRef, RiseFall, S, Weight,
};
use super::super::types::*;
use super::{Validator, check_name, duration_in, ifname_problem, ranged, shorten};
use crate::host::{ProgramSite, UserSite};

/// `PATH` scripts see, and where bare program names are looked up at load time.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MAX_STATUSES: usize = 16;
const MAX_ARGS: usize = 64;
const MAX_ARG_LEN: usize = 4096;

// ---------------------------------------------------------------------------------------------
// [global]

pub(super) fn global(g: &RawGlobal, r: &mut Reporter<'_>, out: &mut Global) {
    if let Some(v) = &g.script_user {
        let s = v.get_ref();
        if s.is_empty()
            || s.len() > 32
            || s.chars()
                .any(|c| c == ':' || c == '/' || c.is_whitespace() || c.is_control())
        {
            r.error_hint(
                v.span(),
                format!("script_user \"{}\" is not a valid user name", shorten(s)),
                "e.g. script_user = \"nobody\"",
            );
        } else {
            out.script_user = s.clone();
        }
    }
    if let Some(v) = &g.enable_script_security {
        out.enable_script_security = *v.get_ref();
    }
    if let Some(v) = &g.events_socket {
        let s = v.get_ref();
        if !s.starts_with('/') {
            r.error_hint(
                v.span(),
                format!("events_socket \"{}\" must be an absolute path", shorten(s)),
                "e.g. events_socket = \"/run/vipd/events.sock\"",
            );
        } else if s.len() > 107 || s.contains('\0') {
            r.error_hint(
                v.span(),
                format!(
                    "events_socket path is {} bytes; a Unix socket path holds at most 107",
                    s.len()
                ),
                "use a shorter path",
            );
        } else {
            out.events_socket = Some(PathBuf::from(s));
        }
    }
    if let Some(v) = &g.state_directory {
        let s = v.get_ref();
        if !s.starts_with('/') || s.contains('\0') || s.len() > 4096 {
            r.error_hint(
                v.span(),
                format!(
                    "state_directory \"{}\" must be an absolute path",
                    shorten(s)
                ),
                "e.g. state_directory = \"/var/lib/vipd\"",
            );
        } else {
            out.state_directory = Some(PathBuf::from(s));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Script security

/// keepalived's `enable_script_security` rule: `None` when `path` (after resolving symlinks)
/// and every directory above it are owned by root and not writable by anyone else (a
/// group-writable entry is accepted when its group is root; a world-writable directory is
/// accepted when it has the sticky bit, since others cannot then replace what root owns in it).
/// Otherwise the reason, naming the offending path.
pub fn insecure_path(path: &Path) -> Option<String> {
    let real = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) => return Some(format!("cannot resolve {}: {e}", path.display())),
    };
    let mut cur: Option<&Path> = Some(&real);
    while let Some(p) = cur {
        let md = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => return Some(format!("cannot stat {}: {e}", p.display())),
        };
        let mode = md.mode();
        if md.uid() != 0 {
            return Some(format!(
                "{} is owned by uid {}, not root",
                p.display(),
                md.uid()
            ));
        }
        let sticky_dir = md.is_dir() && mode & 0o1000 != 0;
        if mode & 0o002 != 0 && !sticky_dir {
            return Some(format!(
                "{} is writable by every user (mode {:04o})",
                p.display(),
                mode & 0o7777
            ));
        }
        if mode & 0o020 != 0 && md.gid() != 0 && !sticky_dir {
            return Some(format!(
                "{} is writable by group {} (mode {:04o})",
                p.display(),
                md.gid(),
                mode & 0o7777
            ));
        }
        cur = p.parent();
    }
    None
}

/// Absolute path of a program: as written when it contains '/', else looked up in
/// [`SCRIPT_PATH`]. Must be an executable regular file.
pub(crate) fn resolve_program(prog: &str) -> Result<PathBuf, (String, String)> {
    let path = if prog.contains('/') {
        if !prog.starts_with('/') {
            return Err((
                format!("program \"{}\" must be an absolute path", shorten(prog)),
                "relative paths depend on vipd's working directory; write the full path".into(),
            ));
        }
        PathBuf::from(prog)
    } else {
        match SCRIPT_PATH
            .split(':')
            .map(|d| Path::new(d).join(prog))
            .find(|p| p.is_file())
        {
            Some(p) => p,
            None => {
                return Err((
                    format!("program \"{}\" not found in {SCRIPT_PATH}", shorten(prog)),
                    "write the absolute path of the program".into(),
                ));
            }
        }
    };
    match std::fs::metadata(&path) {
        Ok(md) if md.is_file() && md.mode() & 0o111 != 0 => Ok(path),
        Ok(md) if md.is_file() => Err((
            format!("{} is not executable", path.display()),
            format!("chmod 755 {}", path.display()),
        )),
        Ok(_) => Err((
            format!("{} is not a regular file", path.display()),
            "name the program itself".into(),
        )),
        Err(e) => Err((
            format!("program {} cannot be used: {e}", path.display()),
            "check the path; vipd checks programs when it loads the configuration".into(),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Tracker definitions

struct Def {
    kind: TrackKind,
    weight: i32,
    weight_span: Option<Range<usize>>,
    name_span: Range<usize>,
    line: usize,
}

/// The trackers defined in the file, by name (unique across kinds).
#[derive(Default)]
pub(super) struct TrackerTable {
    by_name: HashMap<String, Def>,
    /// Names in file order.
    order: Vec<String>,
    used: HashSet<String>,
}

fn kind_table(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Script => "[[track_script]]",
        TrackKind::Http => "[[track_http]]",
        TrackKind::Tcp => "[[track_tcp]]",
        TrackKind::File => "[[track_file]]",
        TrackKind::Process => "[[track_process]]",
        TrackKind::Interface => "track_interfaces",
    }
}

type Trackers = (
    Vec<TrackScript>,
    Vec<TrackHttp>,
    Vec<TrackTcp>,
    Vec<TrackFile>,
    Vec<TrackProcess>,
);

/// Parses `http://host[:port][/path]`.
fn parse_url(s: &str) -> Result<HttpUrl, (String, String)> {
    if s.starts_with("https://") {
        return Err((
            "https is not supported by track_http".into(),
            format!(
                "use a [[track_script]] with command = [\"/usr/bin/curl\", \"-fsS\", \"--max-time\", \"1\", \"{}\"]",
                shorten(s)
            ),
        ));
    }
    let Some(rest) = s.strip_prefix("http://") else {
        return Err((
            format!("url \"{}\" must start with http://", shorten(s)),
            "e.g. url = \"http://127.0.0.1:80/healthz\"".into(),
        ));
    };
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err((
            format!("url \"{}\" contains whitespace", shorten(s)),
            "percent-encode spaces (%20)".into(),
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    if authority.contains('@') {
        return Err((
            "url must not contain credentials".into(),
            "track_http sends no authentication; use a [[track_script]] for that".into(),
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err((
                "url has an unclosed '[' in its host".into(),
                "e.g. http://[::1]:80/".into(),
            ));
        };
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => {
                return Err((
                    "url has junk after its IPv6 host".into(),
                    "e.g. http://[::1]:80/".into(),
                ));
            }
        };
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err((
                format!("\"{}\" is not an IPv6 address", shorten(h)),
                "e.g. http://[::1]:80/".into(),
            ));
        }
        (h, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err((
            format!(
                "url host \"{}\" is not a host name or address",
                shorten(host)
            ),
            "e.g. url = \"http://127.0.0.1:80/healthz\"".into(),
        ));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err((
                    format!("url port \"{}\" is not a port number", shorten(p)),
                    "1..=65535".into(),
                ));
            }
        },
    };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// The notification keys of an instance or a sync group.
pub(super) struct NotifyKeys<'a> {
    master: Option<&'a S<RawCommand>>,
    backup: Option<&'a S<RawCommand>>,
    fault: Option<&'a S<RawCommand>>,
    stop: Option<&'a S<RawCommand>>,
    any: Option<&'a S<RawCommand>>,
    timeout: Option<&'a S<NotifyTimeout>>,
}

impl<'a> NotifyKeys<'a> {
    pub(super) fn of_instance(raw: &'a RawInstance) -> Self {
        NotifyKeys {
            master: raw.notify_master.as_ref(),
            backup: raw.notify_backup.as_ref(),
            fault: raw.notify_fault.as_ref(),
            stop: raw.notify_stop.as_ref(),
            any: raw.notify.as_ref(),
            timeout: raw.notify_timeout.as_ref(),
        }
    }
    pub(super) fn of_group(raw: &'a RawSyncGroup) -> Self {
        NotifyKeys {
            master: raw.notify_master.as_ref(),
            backup: raw.notify_backup.as_ref(),
            fault: raw.notify_fault.as_ref(),
            stop: raw.notify_stop.as_ref(),
            any: raw.notify.as_ref(),
            timeout: raw.notify_timeout.as_ref(),
        }
    }
}

/// The six tracker lists of an instance or a sync group, with their kinds.
pub(super) type TrackLists<'a> = [(Option<&'a S<Vec<S<RawTrackRef>>>>, TrackKind); 6];

/// An instance's tracker lists.
pub(super) fn instance_lists(raw: &RawInstance) -> TrackLists<'_> {
    [
        (raw.track_scripts.as_ref(), TrackKind::Script),
        (raw.track_http.as_ref(), TrackKind::Http),
        (raw.track_tcp.as_ref(), TrackKind::Tcp),
        (raw.track_files.as_ref(), TrackKind::File),
        (raw.track_processes.as_ref(), TrackKind::Process),
        (raw.track_interfaces.as_ref(), TrackKind::Interface),
    ]
}

/// A sync group's tracker lists (the same keys as an instance's).
pub(super) fn group_lists(raw: &RawSyncGroup) -> TrackLists<'_> {
    [
        (raw.track_scripts.as_ref(), TrackKind::Script),
        (raw.track_http.as_ref(), TrackKind::Http),
        (raw.track_tcp.as_ref(), TrackKind::Tcp),
        (raw.track_files.as_ref(), TrackKind::File),
        (raw.track_processes.as_ref(), TrackKind::Process),
        (raw.track_interfaces.as_ref(), TrackKind::Interface),
    ]
}

impl Validator<'_, '_> {
    fn weight(&mut self, v: Option<&S<Weight>>) -> Option<i32> {
        let Some(v) = v else { return Some(0) };
        ranged(
            self.r,
            v,
            "weight",
            Some("weight > 0 is added while healthy, < 0 is added while failing, 0 = FAULT while failing".into()),
        )
        .and_then(|n| i32::try_from(n).ok())
    }

    fn count<const LO: i64, const HI: i64>(
        &mut self,
        v: Option<&S<Int<LO, HI>>>,
        name: &str,
        default: u32,
    ) -> Option<u32> {
        match v {
            None => Some(default),
            Some(v) => ranged(self.r, v, name, None).and_then(|n| u32::try_from(n).ok()),
        }
    }

    fn probe_duration(&mut self, v: &S<ProbeTime>, name: &str) -> Option<Duration> {
        let d = duration_in(self.r, v, name)?;
        if d.subsec_nanos() % 1_000_000 != 0 {
            self.r.error_hint(
                v.span(),
                format!("{name} {} is finer than a millisecond", format_duration(d)),
                "trackers are scheduled with millisecond resolution",
            );
            return None;
        }
        Some(d)
    }

    fn probe(
        &mut self,
        interval: Option<&S<ProbeTime>>,
        timeout: Option<&S<ProbeTime>>,
        rise: Option<&S<RiseFall>>,
        fall: Option<&S<RiseFall>>,
    ) -> Option<Probe> {
        let interval = match interval {
            Some(v) => self.probe_duration(v, "interval"),
            None => Some(Duration::from_secs(1)),
        };
        let timeout = match timeout {
            Some(v) => self.probe_duration(v, "timeout").map(Some),
            None => Some(None),
        };
        let rise = self.count(rise, "rise", 1);
        let fall = self.count(fall, "fall", 1);
        let interval = interval?;
        Some(Probe {
            interval,
            timeout: timeout?.unwrap_or(interval.min(Duration::from_secs(5))),
            rise: rise?,
            fall: fall?,
        })
    }

    /// Records that something runs as `user`: the host pass checks it exists.
    fn check_user(&mut self, user: &str, span: Range<usize>, what: &str) {
        self.host.users.push(UserSite {
            span,
            what: what.to_string(),
            user: user.to_string(),
        });
    }

    /// Validates a program's argv (what the file alone can tell); the host pass resolves
    /// `argv[0]` and applies the script-security rule.
    fn program(&mut self, argv: &[String], span: Range<usize>, what: &str) -> Option<Vec<String>> {
        let Some(first) = argv.first() else {
            self.r.error_hint(
                span,
                format!("{what} is empty"),
                "name a program, e.g. [\"/usr/local/bin/check\", \"arg\"]",
            );
            return None;
        };
        if argv.len() > MAX_ARGS
            || argv
                .iter()
                .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
        {
            self.r.error(
                span,
                format!("{what}: at most {MAX_ARGS} arguments of at most {MAX_ARG_LEN} bytes, without NUL"),
            );
            return None;
        }
        self.host.programs.push(ProgramSite {
            span,
            what: what.to_string(),
            first: first.clone(),
        });
        Some(argv.to_vec())
    }

    fn tracker_name(
        &mut self,
        name: Option<&S<String>>,
        table: Range<usize>,
        kind: TrackKind,
        index: usize,
        weight: Option<&S<Weight>>,
        default_weight: i32,
    ) -> Option<String> {
        let Some(n) = name else {
            self.r.error_hint(
                table,
                format!("{} #{} has no name", kind_table(kind), index + 1),
                "add name = \"chk_nginx\" (unique among trackers)",
            );
            return None;
        };
        if !check_name(self.r, n, "tracker") {
            return None;
        }
        let s = n.get_ref().clone();
        if let Some(d) = self.trackers.by_name.get(&s) {
            self.r.error_hint(
                n.span(),
                format!("duplicate tracker name `{s}` (first defined at line {})", d.line),
                "tracker names are unique across track_script, track_http, track_tcp, track_file and track_process",
            );
            return None;
        }
        let line = self.r.line_of(n.span().start);
        self.trackers.by_name.insert(
            s.clone(),
            Def {
                kind,
                weight: default_weight,
                weight_span: weight.map(|w| w.span()),
                name_span: n.span(),
                line,
            },
        );
        self.trackers.order.push(s.clone());
        Some(s)
    }

    pub(super) fn trackers(&mut self, raw: &RawConfig) -> Trackers {
        let total = raw.track_script.len()
            + raw.track_http.len()
            + raw.track_tcp.len()
            + raw.track_file.len()
            + raw.track_process.len();
        let mut budget = MAX_TRACKERS;
        if total > MAX_TRACKERS {
            let span = [
                raw.track_script.last().map(|t| t.span()),
                raw.track_http.last().map(|t| t.span()),
                raw.track_tcp.last().map(|t| t.span()),
                raw.track_file.last().map(|t| t.span()),
                raw.track_process.last().map(|t| t.span()),
            ]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(0..0);
            self.r.error_hint(
                span,
                format!("too many trackers ({total}): at most {MAX_TRACKERS}"),
                "several instances can share one tracker",
            );
        }
        let mut take = |n: usize| {
            let t = n.min(budget);
            budget -= t;
            t
        };
        let (ns, nh, nt, nf, np) = (
            take(raw.track_script.len()),
            take(raw.track_http.len()),
            take(raw.track_tcp.len()),
            take(raw.track_file.len()),
            take(raw.track_process.len()),
        );

        let mut scripts = Vec::new();
        for (i, t) in raw.track_script.iter().take(ns).enumerate() {
            let raw = t.get_ref();
            let before = self.r.diags.errors().count();
            let weight = self.weight(raw.weight.as_ref());
            let name = self.tracker_name(
                raw.name.as_ref(),
                t.span(),
                TrackKind::Script,
                i,
                raw.weight.as_ref(),
                weight.unwrap_or(0),
            );
            let probe = self.probe(
                raw.interval.as_ref(),
                raw.timeout.as_ref(),
                raw.rise.as_ref(),
                raw.fall.as_ref(),
            );
            let what = name.as_ref().map_or_else(
                || format!("track_script #{}", i + 1),
                |n| format!("track_script `{n}`"),
            );
            let (argv, shell) = match (&raw.command, &raw.shell) {
                (Some(c), None) => {
                    let argv: Vec<String> =
                        c.get_ref().iter().map(|s| s.get_ref().clone()).collect();
                    (self.program(&argv, c.span(), &what), false)
                }
                (None, Some(sh)) => {
                    let argv = vec![
                        "/bin/sh".to_string(),
                        "-c".to_string(),
                        sh.get_ref().clone(),
                    ];
                    if sh.get_ref().trim().is_empty() {
                        self.r.error(sh.span(), format!("{what}: shell is empty"));
                        (None, true)
                    } else {
                        (self.program(&argv, sh.span(), &what), true)
                    }
                }
                (Some(_), Some(sh)) => {
                    self.r.error_hint(
                        sh.span(),
                        format!("{what} has both command and shell"),
                        "use command = [...] (run directly) or shell = \"...\" (run with /bin/sh -c), not both",
                    );
                    (None, false)
                }
                (None, None) => {
                    self.r.error_hint(
                        t.span(),
                        format!("{what} has no command"),
                        "add command = [\"/usr/bin/curl\", \"-fs\", \"http://127.0.0.1/healthz\"] or shell = \"...\"",
                    );
                    (None, false)
                }
            };
            let user = match &raw.user {
                Some(u) => {
                    self.check_user(u.get_ref(), u.span(), &what);
                    Some(u.get_ref().clone())
                }
                None => {
                    let u = self.global.script_user.clone();
                    let span = raw
                        .command
                        .as_ref()
                        .map(|c| c.span())
                        .or(raw.shell.as_ref().map(|s| s.span()))
                        .unwrap_or(t.span());
                    self.check_user(&u, span, &what);
                    None
                }
            };
            if self.r.diags.errors().count() != before {
                continue;
            }
            if let (Some(name), Some(probe), Some(argv), Some(weight)) = (name, probe, argv, weight)
            {
                if probe.timeout > probe.interval
                    && let Some(v) = &raw.timeout
                {
                    self.r.warn(
                            v.span(),
                            format!(
                                "timeout {} is longer than the interval {}: runs never overlap, so checks happen less often than the interval",
                                format_duration(probe.timeout),
                                format_duration(probe.interval)
                            ),
                            None,
                        );
                }
                scripts.push(TrackScript {
                    name,
                    argv,
                    shell,
                    probe,
                    weight,
                    user,
                });
            }
        }

        let mut http = Vec::new();
        for (i, t) in raw.track_http.iter().take(nh).enumerate() {
            let raw = t.get_ref();
            let before = self.r.diags.errors().count();
            let weight = self.weight(raw.weight.as_ref());
            let name = self.tracker_name(
                raw.name.as_ref(),
                t.span(),
                TrackKind::Http,
                i,
                raw.weight.as_ref(),
                weight.unwrap_or(0),
            );
            let probe = self.probe(
                raw.interval.as_ref(),
                raw.timeout.as_ref(),
                raw.rise.as_ref(),
                raw.fall.as_ref(),
            );
            let url = match &raw.url {
                Some(u) => match parse_url(u.get_ref()) {
                    Ok(url) => Some(url),
                    Err((msg, hint)) => {
                        self.r.error_hint(u.span(), msg, hint);
                        None
                    }
                },
                None => {
                    self.r.error_hint(
                        t.span(),
                        "[[track_http]] has no url",
                        "add url = \"http://127.0.0.1:80/healthz\"",
                    );
                    None
                }
            };
            let expect = match &raw.expect_status {
                None => vec![200],
                Some(v) => {
                    let RawStatuses(list) = v.get_ref();
                    if list.is_empty() || list.len() > MAX_STATUSES {
                        self.r.error(
                            v.span(),
                            format!("expect_status needs 1 to {MAX_STATUSES} status codes"),
                        );
                    }
                    let mut out = Vec::new();
                    for &n in list.iter().take(MAX_STATUSES) {
                        match u16::try_from(n) {
                            Ok(c) if (100..=599).contains(&c) => out.push(c),
                            _ => self.r.error(
                                v.span(),
                                format!("expect_status {n} is not an HTTP status (100..=599)"),
                            ),
                        }
                    }
                    out
                }
            };
            if self.r.diags.errors().count() != before {
                continue;
            }
            if let (Some(name), Some(probe), Some(url), Some(weight)) = (name, probe, url, weight) {
                http.push(TrackHttp {
                    name,
                    url,
                    expect_status: expect,
                    probe,
                    weight,
                });
            }
        }

        let mut tcp = Vec::new();
        for (i, t) in raw.track_tcp.iter().take(nt).enumerate() {
            let raw = t.get_ref();
            let before = self.r.diags.errors().count();
            let weight = self.weight(raw.weight.as_ref());
            let name = self.tracker_name(
                raw.name.as_ref(),
                t.span(),
                TrackKind::Tcp,
                i,
                raw.weight.as_ref(),
                weight.unwrap_or(0),
            );
            let probe = self.probe(
                raw.interval.as_ref(),
                raw.timeout.as_ref(),
                raw.rise.as_ref(),
                raw.fall.as_ref(),
            );
            let address = match &raw.address {
                Some(a) => match a.get_ref().parse::<std::net::SocketAddr>() {
                    Ok(sa) if sa.port() != 0 => Some(sa.to_string()),
                    _ => {
                        self.r.error_hint(
                            a.span(),
                            format!("address \"{}\" is not IP:port", shorten(a.get_ref())),
                            "e.g. address = \"127.0.0.1:443\" or \"[::1]:443\"",
                        );
                        None
                    }
                },
                None => {
                    self.r.error_hint(
                        t.span(),
                        "[[track_tcp]] has no address",
                        "add address = \"127.0.0.1:443\"",
                    );
                    None
                }
            };
            if self.r.diags.errors().count() != before {
                continue;
            }
            if let (Some(name), Some(probe), Some(address), Some(weight)) =
                (name, probe, address, weight)
            {
                tcp.push(TrackTcp {
                    name,
                    address,
                    probe,
                    weight,
                });
            }
        }

        let mut files = Vec::new();
        for (i, t) in raw.track_file.iter().take(nf).enumerate() {
            let raw = t.get_ref();
            let before = self.r.diags.errors().count();
            let weight = self.weight(raw.weight.as_ref());
            let name = self.tracker_name(
                raw.name.as_ref(),
                t.span(),
                TrackKind::File,
                i,
                raw.weight.as_ref(),
                weight.unwrap_or(0),
            );
            let path = match &raw.path {
                Some(p)
                    if p.get_ref().starts_with('/')
                        && p.get_ref().len() > 1
                        && !p.get_ref().ends_with('/')
                        && !p.get_ref().contains('\0') =>
                {
                    Some(PathBuf::from(p.get_ref()))
                }
                Some(p) => {
                    self.r.error_hint(
                        p.span(),
                        format!(
                            "path \"{}\" must be an absolute path to a file",
                            shorten(p.get_ref())
                        ),
                        "e.g. path = \"/run/vipd/weight\"",
                    );
                    None
                }
                None => {
                    self.r.error_hint(
                        t.span(),
                        "[[track_file]] has no path",
                        "add path = \"/run/vipd/weight\"",
                    );
                    None
                }
            };
            if self.r.diags.errors().count() != before {
                continue;
            }
            if let (Some(name), Some(path), Some(weight)) = (name, path, weight) {
                if let Some(p) = &raw.path {
                    self.host.files.push(crate::host::FileSite {
                        span: p.span(),
                        what: format!("track_file `{name}`"),
                        path: path.clone(),
                    });
                }
                let init = raw.init.as_ref().map(|v| *v.get_ref());
                let init_overwrite = raw.init_overwrite.as_ref().is_some_and(|v| *v.get_ref());
                if let (None, Some(v)) = (init, &raw.init_overwrite) {
                    self.r
                        .warn(v.span(), "init_overwrite without init has no effect", None);
                }
                files.push(TrackFile {
                    name,
                    path,
                    weight,
                    init,
                    init_overwrite,
                });
            }
        }

        let mut procs = Vec::new();
        for (i, t) in raw.track_process.iter().take(np).enumerate() {
            let raw = t.get_ref();
            let before = self.r.diags.errors().count();
            let weight = self.weight(raw.weight.as_ref());
            let name = self.tracker_name(
                raw.name.as_ref(),
                t.span(),
                TrackKind::Process,
                i,
                raw.weight.as_ref(),
                weight.unwrap_or(0),
            );
            let full_command = raw.full_command.as_ref().is_some_and(|v| *v.get_ref());
            let with_path = full_command || raw.args.is_some();
            let process = match &raw.process {
                Some(p)
                    if !p.get_ref().is_empty()
                        && p.get_ref().len() <= 4096
                        && (with_path
                            || (p.get_ref().len() <= 255 && !p.get_ref().contains('/')))
                        && !p.get_ref().contains('\0') =>
                {
                    Some(p.get_ref().clone())
                }
                Some(p) => {
                    self.r.error_hint(
                        p.span(),
                        format!("process \"{}\" is not a process name", shorten(p.get_ref())),
                        "the name as in /proc/PID/comm or the base name of argv[0], e.g. process = \"haproxy\" (a path or a whole command line needs args or full_command)",
                    );
                    None
                }
                None => {
                    self.r.error_hint(
                        t.span(),
                        "[[track_process]] has no process",
                        "add process = \"haproxy\"",
                    );
                    None
                }
            };
            let min = self.count(raw.min.as_ref(), "min", 1);
            let max = match &raw.max {
                None => Some(None),
                Some(v) => self.count(Some(v), "max", 0).map(Some),
            };
            if let (Some(m), Some(Some(x)), Some(v)) = (min, max, &raw.max)
                && m > x
            {
                self.r
                    .error(v.span(), format!("max {x} is below min {m}: never up"));
            }
            if let (Some(0), None, Some(v)) = (min, max.flatten(), &raw.min) {
                self.r.warn(
                    v.span(),
                    "min = 0 without max: always up",
                    Some("use max = 0 for \"up while none runs\"".into()),
                );
            }
            let args = match &raw.args {
                None => Some(None),
                Some(list) => {
                    let v: Vec<String> =
                        list.get_ref().iter().map(|a| a.get_ref().clone()).collect();
                    if v.len() > 64 || v.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
                        self.r.error(
                            list.span(),
                            "args: at most 64 arguments of at most 4096 bytes",
                        );
                        None
                    } else {
                        Some(Some(v))
                    }
                }
            };
            let args_match = match &raw.args_match {
                None => Some(ArgsMatch::Exact),
                Some(v) => match v.get_ref().as_str() {
                    "exact" => Some(ArgsMatch::Exact),
                    "partial" => Some(ArgsMatch::Partial),
                    "initial" => Some(ArgsMatch::Initial),
                    other => {
                        self.r.error_hint(
                            v.span(),
                            format!(
                                "args_match \"{}\" is not one of exact, partial, initial",
                                shorten(other)
                            ),
                            "keepalived's param_match: partial or initial",
                        );
                        None
                    }
                },
            };
            if let (true, Some(v)) = (full_command, &raw.args) {
                self.r.error(v.span(), "args and full_command exclude each other: full_command's process is the whole command line");
            }
            let up_delay = match &raw.up_delay {
                None => Some(Duration::ZERO),
                Some(v) => duration_in(self.r, v, "up_delay"),
            };
            let down_delay = match &raw.down_delay {
                None => Some(Duration::ZERO),
                Some(v) => duration_in(self.r, v, "down_delay"),
            };
            if self.r.diags.errors().count() != before {
                continue;
            }
            if let (
                Some(name),
                Some(process),
                Some(min),
                Some(max),
                Some(args),
                Some(args_match),
                Some(up_delay),
                Some(down_delay),
                Some(weight),
            ) = (
                name, process, min, max, args, args_match, up_delay, down_delay, weight,
            ) {
                procs.push(TrackProcess {
                    name,
                    process,
                    min,
                    max,
                    args,
                    args_match,
                    full_command,
                    up_delay,
                    down_delay,
                    weight,
                });
            }
        }
        (scripts, http, tcp, files, procs)
    }

    /// Warns about trackers no instance follows (they are not run).
    pub(super) fn unused_trackers(&mut self) {
        let order = std::mem::take(&mut self.trackers.order);
        for name in &order {
            if self.trackers.used.contains(name) {
                continue;
            }
            if let Some(d) = self.trackers.by_name.get(name) {
                let (kind, span) = (d.kind, d.name_span.clone());
                self.r.warn(
                    span,
                    format!(
                        "{} `{name}` is not used by any instance, so it does not run",
                        kind_table(kind)
                    ),
                    Some(format!(
                        "add it to an instance: {} = [\"{name}\"]",
                        kind.instance_key()
                    )),
                );
            }
        }
        self.trackers.order = order;
    }

    // -----------------------------------------------------------------------------------------
    // Instance references

    pub(super) fn track_refs(
        &mut self,
        lists: TrackLists<'_>,
        inst: Option<&str>,
        priority: Option<u8>,
        label: &str,
    ) -> Vec<TrackRef> {
        let mut out: Vec<TrackRef> = Vec::new();
        // (weight, span) per ref, for the clamping warnings.
        let mut spans: Vec<Range<usize>> = Vec::new();
        let mut seen: HashSet<(TrackKind, String)> = HashSet::new();
        let mut count = 0usize;
        for (list, kind) in lists {
            let Some(list) = list else { continue };
            for entry in list.get_ref() {
                count += 1;
                if count == MAX_TRACK_REFS + 1 {
                    self.r.error(
                        entry.span(),
                        format!("{label} follows more than {MAX_TRACK_REFS} trackers"),
                    );
                }
                if count > MAX_TRACK_REFS {
                    continue;
                }
                let e = entry.get_ref();
                let (name, name_span) = match (&e.short, &e.name) {
                    (Some(s), _) => (s.clone(), entry.span()),
                    (None, Some(n)) => (n.get_ref().clone(), n.span()),
                    (None, None) => {
                        self.r.error_hint(
                            entry.span(),
                            format!("{} entry has no name", kind.instance_key()),
                            "write { name = \"chk_x\", weight = -30 }",
                        );
                        continue;
                    }
                };
                let override_weight = match &e.weight {
                    Some(w) => match self.weight(Some(w)) {
                        Some(n) => Some((n, w.span())),
                        None => continue,
                    },
                    None => None,
                };
                let (weight, span) = if kind == TrackKind::Interface {
                    if let Some(msg) = ifname_problem(&name) {
                        self.r.error(name_span, msg);
                        continue;
                    }
                    override_weight.unwrap_or((0, name_span.clone()))
                } else {
                    let Some(def) = self.trackers.by_name.get(&name) else {
                        let names: Vec<&str> = self
                            .trackers
                            .order
                            .iter()
                            .filter(|n| {
                                self.trackers
                                    .by_name
                                    .get(*n)
                                    .is_some_and(|d| d.kind == kind)
                            })
                            .map(String::as_str)
                            .collect();
                        let hint = (!self.r.is_full())
                            .then(|| did_you_mean(&name, names.iter().copied()))
                            .flatten()
                            .map(|k| format!("did you mean `{k}`?"))
                            .unwrap_or_else(|| {
                                format!("define it with a {} table", kind_table(kind))
                            });
                        self.r.error_hint(
                            name_span,
                            format!(
                                "{label}: no {} called `{}`",
                                kind_table(kind),
                                shorten(&name)
                            ),
                            hint,
                        );
                        continue;
                    };
                    if def.kind != kind {
                        let other = def.kind;
                        self.r.error_hint(
                            name_span,
                            format!(
                                "{label}: `{name}` is a {}, not a {}",
                                kind_table(other),
                                kind_table(kind)
                            ),
                            format!("list it in {} instead", other.instance_key()),
                        );
                        continue;
                    }
                    self.trackers.used.insert(name.clone());
                    match override_weight {
                        Some(w) => w,
                        None => (
                            def.weight,
                            def.weight_span.clone().unwrap_or(name_span.clone()),
                        ),
                    }
                };
                if !seen.insert((kind, name.clone())) {
                    self.r.error(
                        name_span,
                        format!("{label} lists `{name}` twice in {}", kind.instance_key()),
                    );
                    continue;
                }
                if let Some(inst) = inst {
                    let d = self.r.make(
                        super::super::diag::Severity::Warning,
                        span.clone(),
                        String::new(),
                        None,
                    );
                    self.weight_sites.push(WeightSite {
                        instance: inst.to_string(),
                        kind,
                        tracker: name.clone(),
                        weight,
                        line: d.line,
                        column: d.column,
                        width: d.width,
                        source_line: d.source_line,
                    });
                }
                spans.push(span);
                out.push(TrackRef { kind, name, weight });
            }
        }
        if let Some(p) = priority {
            self.weight_warnings(&out, &spans, p, label);
        }
        out
    }

    fn weight_warnings(&mut self, refs: &[TrackRef], spans: &[Range<usize>], p: u8, label: &str) {
        let weighted = refs.iter().any(|t| t.weight != 0);
        if p == 255 {
            if let Some((_, span)) = refs.iter().zip(spans).find(|(t, _)| t.weight != 0) {
                self.r.warn(
                    span.clone(),
                    format!("{label} has priority 255 (address owner), whose priority never changes: tracker weights have no effect"),
                    Some("only weight-0 trackers (FAULT while failing) act on an owner; or use priority 254".into()),
                );
            }
            return;
        }
        if !weighted {
            return;
        }
        let pos: i64 = refs
            .iter()
            .filter(|t| t.weight > 0 && t.kind != TrackKind::File)
            .map(|t| i64::from(t.weight))
            .sum();
        if i64::from(p) + pos > 254
            && let Some((_, span)) = refs
                .iter()
                .zip(spans)
                .rev()
                .find(|(t, _)| t.weight > 0 && t.kind != TrackKind::File)
        {
            self.r.warn(
                    span.clone(),
                    format!("priority {p} + {pos} (positive weights) = {} exceeds 254: the effective priority stops at 254", i64::from(p) + pos),
                    Some("lower the weights or the priority so that the sum stays within 254".into()),
                );
        }
        for (t, span) in refs.iter().zip(spans) {
            if t.weight < 0 && t.kind != TrackKind::File && i64::from(p) + i64::from(t.weight) < 1 {
                self.r.warn(
                    span.clone(),
                    format!(
                        "priority {p} - {} = {} is below 1: the effective priority stops at 1",
                        -t.weight,
                        i64::from(p) + i64::from(t.weight)
                    ),
                    Some(format!(
                        "weight = -{} is enough to reach 1",
                        p.saturating_sub(1)
                    )),
                );
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Notifications

    /// `[global]` notify_fifo and its reader.
    pub(super) fn notify_fifo(&mut self, g: &RawGlobal) {
        if let Some(v) = &g.notify_fifo {
            let s = v.get_ref();
            if !s.starts_with('/') || s.contains('\0') || s.len() > 4096 {
                self.r.error_hint(
                    v.span(),
                    format!("notify_fifo \"{}\" must be an absolute path", shorten(s)),
                    "e.g. notify_fifo = \"/run/vipd/notify.fifo\"",
                );
            } else {
                self.global.notify_fifo = Some(PathBuf::from(s));
            }
        }
        if let Some(v) = &g.notify_fifo_script {
            if g.notify_fifo.is_none() {
                self.r.error_hint(
                    v.span(),
                    "notify_fifo_script without notify_fifo",
                    "add notify_fifo = \"/run/vipd/notify.fifo\"",
                );
            }
            let argv: Vec<String> = match v.get_ref() {
                RawCommand::Line(s) => s.split_whitespace().map(str::to_string).collect(),
                RawCommand::Argv(a) => a.clone(),
            };
            self.global.notify_fifo_script = self.program(&argv, v.span(), "notify_fifo_script");
        }
    }

    pub(super) fn notify(&mut self, k: &NotifyKeys<'_>) -> Notify {
        let mut out = Notify::default();
        let keys = [
            ("notify_master", k.master),
            ("notify_backup", k.backup),
            ("notify_fault", k.fault),
            ("notify_stop", k.stop),
            ("notify", k.any),
        ];
        let mut any = false;
        for (key, v) in keys {
            let Some(v) = v else { continue };
            any = true;
            let argv: Vec<String> = match v.get_ref() {
                RawCommand::Line(s) => s.split_whitespace().map(str::to_string).collect(),
                RawCommand::Argv(a) => a.clone(),
            };
            let prog = self.program(&argv, v.span(), key);
            match key {
                "notify_master" => out.master = prog,
                "notify_backup" => out.backup = prog,
                "notify_fault" => out.fault = prog,
                "notify_stop" => out.stop = prog,
                _ => out.any = prog,
            }
        }
        if any {
            let user = self.global.script_user.clone();
            let span = keys
                .iter()
                .find_map(|(_, v)| v.map(|v| v.span()))
                .unwrap_or(0..0);
            self.check_user(&user, span, "notify");
        }
        if let Some(v) = k.timeout
            && let Some(d) = duration_in(self.r, v, "notify_timeout")
        {
            out.timeout = d;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:8080/healthz?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/healthz?x=1")
        );
        let u = parse_url("http://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 80, "/"));
        let u = parse_url("http://lb.local").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(u.to_string(), "http://lb.local:80/");
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http://x:0/").is_err());
        assert!(parse_url("http://a b/").is_err());
        assert!(parse_url("http://u:p@x/").is_err());
        assert!(parse_url("ftp://x/").is_err());
    }

    #[test]
    fn security_rule() {
        assert_eq!(insecure_path(Path::new("/bin/sh")), None);
        let dir = std::env::temp_dir().join(format!("vipd-sec-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let f = dir.join("s.sh");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
        let running_as_root = nix::unistd::geteuid().is_root();
        let why = insecure_path(&f).unwrap();
        if running_as_root {
            assert!(why.contains("writable by every user"), "{why}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
