//! keepalived statement tree -> vipd model, with a note for everything not converted as is.

use std::net::IpAddr;
use std::time::Duration;

use super::NoteSeverity::{self, Info, NotConverted, SecurityLost, Warning};
use super::RawNote;
use super::lex::{Node, Token};
use super::shell::{self, Split};
use crate::format_duration;
use crate::keys::{self, Key};

/// A TOML value (durations are strings).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    Arr(Vec<Val>),
    Inline(Vec<(Key, Val)>),
}

/// One TOML table: a comment line above the header, then `key = value` lines in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) comment: String,
    /// Keys come from [`crate::keys`] only: a key the configuration types do not have
    /// cannot be written.
    pub(crate) entries: Vec<(Key, Val)>,
}

impl Table {
    pub(crate) fn set(&mut self, key: Key, v: Val) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = v,
            None => self.entries.push((key, v)),
        }
    }
    fn has(&self, key: Key) -> bool {
        self.entries.iter().any(|(k, _)| *k == key)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Instance {
    pub(crate) table: Table,
    /// `[[instance.vip]]` tables (VIPs with a label or scope).
    pub(crate) vips: Vec<Table>,
    /// `[[instance.route]]` and `[[instance.rule]]` tables.
    pub(crate) routes: Vec<Table>,
    pub(crate) rules: Vec<Table>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    pub(crate) global: Table,
    pub(crate) track_scripts: Vec<Table>,
    pub(crate) track_files: Vec<Table>,
    pub(crate) track_processes: Vec<Table>,
    pub(crate) instances: Vec<Instance>,
    pub(crate) sync_groups: Vec<Table>,
}

const MIGRATION: &str = "see docs/migration.md";

pub(crate) fn convert(nodes: &[Node]) -> (Model, Vec<RawNote>) {
    let mut cx = Cx::default();
    let mut m = Model::default();
    // global_defs first: instances depend on vrrp_version / vrrp_strict wherever they are.
    for n in nodes.iter().filter(|n| n.key.is("global_defs")) {
        cx.global_defs(n, &mut m.global);
    }
    if cx.global_version.is_none() && nodes.iter().any(|n| n.key.is("vrrp_instance")) {
        m.global.set(keys::global::vrrp_version, Val::Int(2));
        cx.note(
            Info,
            &Token::default(),
            "vrrp_version",
            "keepalived defaults to VRRPv2 and vipd to VRRPv3: written as vrrp_version = 2 so the converted routers keep talking to the keepalived ones; switch all routers to 3 together later",
        );
    }
    for n in nodes {
        let kw = n.name();
        match kw {
            _ if n.key.quoted => cx.nc(n, "a quoted string where a keyword was expected"),
            "global_defs" => {}
            "vrrp_instance" => {
                if let Some(i) = cx.instance(n) {
                    m.instances.push(i);
                }
            }
            "vrrp_sync_group" => {
                if let Some(g) = cx.sync_group(n) {
                    m.sync_groups.push(g);
                }
            }
            "vrrp_script" => {
                if let Some(t) = cx.script(n) {
                    m.track_scripts.push(t);
                }
            }
            "vrrp_track_file" | "track_file" => {
                if let Some(t) = cx.track_file(n) {
                    m.track_files.push(t);
                }
            }
            "vrrp_track_process" | "track_process" => {
                if let Some(t) = cx.track_process(n) {
                    m.track_processes.push(t);
                }
            }
            "virtual_server" | "virtual_server_group" | "real_server" => cx.nc(
                n,
                &format!("LVS load balancing is not part of vipd (VRRP only); keep running it with keepalived's checker or ipvsadm/ldirectord, {MIGRATION}"),
            ),
            "static_ipaddress" | "static_routes" | "static_rules" => cx.nc(
                n,
                &format!("vipd manages only virtual addresses; configure static addresses, routes and rules with the OS network configuration, {MIGRATION}"),
            ),
            "bfd_instance" | "vrrp_track_bfd" => cx.nc(
                n,
                &format!("vipd has no BFD support, {MIGRATION}"),
            ),
            "linkbeat_interfaces" | "garp_group" | "net_namespace" | "net_namespace_ipvs"
            | "instance" | "use_pid_dir" | "namespace_with_ipsets" | "child_wait_time" => {
                let why = super::keywords::reason("top", kw)
                    .or_else(|| super::keywords::reason("global_defs", kw))
                    .unwrap_or(super::keywords::UNKNOWN);
                cx.nc(n, &format!("{why}, {MIGRATION}"))
            }
            "{" => cx.nc(n, "a block without a keyword"),
            _ if kw.starts_with('@') || kw.starts_with('$') || kw.starts_with('~') => cx.nc(
                n,
                "left over from keepalived's preprocessor (a malformed ~SEQ/~LST or definition)",
            ),
            _ => match super::keywords::reason("top", kw) {
                Some(r) => cx.nc(n, r),
                None => cx.nc(n, &format!("{}; {MIGRATION}", super::keywords::UNKNOWN)),
            },
        }
    }
    // keepalived runs scripts and notify programs as root (or as `keepalived_script` when
    // that user exists) unless told otherwise; vipd's default is nobody. Keep keepalived's.
    let runs_programs = !m.track_scripts.is_empty()
        || m.instances.iter().any(|i| {
            i.table
                .entries
                .iter()
                .any(|(k, _)| INSTANCE_NOTIFY.contains(k))
        })
        || m.sync_groups
            .iter()
            .any(|g| g.entries.iter().any(|(k, _)| GROUP_NOTIFY.contains(k)));
    if runs_programs && !m.global.has(keys::global::script_user) {
        m.global
            .set(keys::global::script_user, Val::Str("root".to_owned()));
        cx.note(
            Warning,
            &Token::default(),
            "script_user",
            "no script_user: keepalived runs scripts and notify programs as root (or as keepalived_script when that user exists), so script_user = \"root\" is written (vipd's own default is nobody); a user of their own is safer (adduser --system vipd-script, script_user = \"vipd-script\")",
        );
    }
    (m, cx.notes)
}

#[derive(Default)]
struct Cx {
    notes: Vec<RawNote>,
    /// `vrrp_strict` in global_defs.
    strict: bool,
    /// Effective global VRRP version (keepalived's default is 2).
    global_version: Option<u8>,
    /// global_defs' `script_user`, once read (a notify program's own user equal to it needs
    /// nothing).
    script_user: Option<String>,
}

/// Seconds (decimals allowed) as a duration; `None` if malformed or above ~11 days.
fn parse_secs(s: &str) -> Option<Duration> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int.len() > 6 || frac.len() > 9 || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos))
}

fn dur(d: Duration) -> Val {
    Val::Str(format_duration(d))
}

fn texts(toks: &[Token]) -> String {
    toks.iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cx {
    fn note(&mut self, sev: NoteSeverity, at: &Token, keyword: &str, msg: impl Into<String>) {
        self.notes.push(RawNote::at(sev, at, keyword, msg.into()));
    }

    /// The whole statement (and its block, if any) is not converted.
    fn nc(&mut self, n: &Node, reason: &str) {
        self.nc_as(NotConverted, n, reason);
    }

    /// A security statement is not converted: the result is weaker than the original.
    fn nc_security(&mut self, n: &Node, reason: &str) {
        self.nc_as(SecurityLost, n, reason);
    }

    fn nc_as(&mut self, sev: NoteSeverity, n: &Node, reason: &str) {
        let what = if n.block.is_some() {
            "block"
        } else {
            "keyword"
        };
        let mut head = n.name().to_string();
        if let Some(a) = n.arg(0) {
            head.push(' ');
            head.push_str(&a.text);
        }
        self.note(
            sev,
            &n.key,
            n.name(),
            format!("{what} `{}`: {reason}", super::emit::clean(&head, 80)),
        );
    }

    /// Notes a second occurrence of a single-valued keyword: the last one wins, as in keepalived.
    fn dup(&mut self, seen: &mut Vec<String>, c: &Node, single: &[&str]) {
        let kw = c.name();
        if !single.contains(&kw) {
            return;
        }
        if seen.iter().any(|k| k == kw) {
            self.note(
                Warning,
                &c.key,
                kw,
                "given more than once in this block: the last one wins, as in keepalived",
            );
        } else {
            seen.push(kw.to_string());
        }
    }

    /// The single argument of `n`; notes a missing value, extra arguments or a stray block.
    fn one<'n>(&mut self, n: &'n Node) -> Option<&'n Token> {
        self.no_block(n);
        let Some((first, rest)) = n.args.split_first() else {
            self.nc(n, "missing value");
            return None;
        };
        if !rest.is_empty() {
            self.note(
                NotConverted,
                &n.key,
                n.name(),
                format!("extra arguments `{}` ignored", texts(rest)),
            );
        }
        Some(first)
    }

    fn no_block(&mut self, n: &Node) {
        if n.block.is_some() {
            self.note(
                NotConverted,
                &n.key,
                n.name(),
                "unexpected `{ }` block after this keyword; its contents were ignored",
            );
        }
    }

    fn int(&mut self, n: &Node, lo: i64, hi: i64) -> Option<i64> {
        let t = self.one(n)?;
        match t.text.parse::<i64>() {
            Ok(v) if (lo..=hi).contains(&v) => Some(v),
            _ => {
                self.nc(n, &format!("`{}` is not an integer in {lo}..={hi}", t.text));
                None
            }
        }
    }

    fn secs(&mut self, n: &Node) -> Option<Duration> {
        let t = self.one(n)?;
        let d = parse_secs(&t.text);
        if d.is_none() {
            self.nc(n, &format!("`{}` is not a number of seconds", t.text));
        }
        d
    }

    /// keepalived boolean keywords: bare, or followed by on|off|true|false|yes|no.
    fn flag(&mut self, n: &Node) -> Option<bool> {
        self.no_block(n);
        match n.args.as_slice() {
            [] => Some(true),
            [t] => match t.text.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" => Some(true),
                "off" | "false" | "no" => Some(false),
                _ => {
                    self.nc(n, &format!("`{}` is not a boolean", t.text));
                    None
                }
            },
            _ => {
                self.nc(n, "expects at most one of on|off|true|false|yes|no");
                None
            }
        }
    }

    /// `weight W [reverse]` following a name (track lists, vrrp_script, track files...).
    fn weight(&mut self, n: &Node, args: &[Token], lo: i64, hi: i64) -> Option<i64> {
        let (first, rest) = args.split_first()?;
        if !first.is("weight") {
            self.note(
                NotConverted,
                first,
                n.name(),
                format!("unknown option(s) `{}` ignored", texts(args)),
            );
            return None;
        }
        let Some(w) = rest.first() else {
            self.note(NotConverted, first, n.name(), "`weight` without a value");
            return None;
        };
        let Some(w) = w.text.parse::<i64>().ok().filter(|w| (lo..=hi).contains(w)) else {
            self.note(
                NotConverted,
                w,
                n.name(),
                format!("weight `{}` is not an integer in {lo}..={hi}", w.text),
            );
            return None;
        };
        match rest.get(1..).unwrap_or(&[]) {
            [] => {}
            [r] if r.is("reverse") => {
                // keepalived's reverse lowers the priority while the check is *up* (or raises it
                // while down): vipd's weights cannot say that, and the plain weight would do the
                // opposite. Not converted, visibly.
                self.note(
                    NotConverted,
                    r,
                    n.name(),
                    format!("`weight {} reverse` not converted: vipd has no reversed weights (keepalived's lowers the priority while the check is up), and the plain weight would do the opposite; invert the check (succeed when the service is down) and use weight {}", w, -w),
                );
                return None;
            }
            more => self.note(
                NotConverted,
                first,
                n.name(),
                format!("unknown option(s) `{}` ignored", texts(more)),
            ),
        }
        Some(w)
    }

    /// A command line for notify keys (always an argv array).
    fn notify_argv(&mut self, n: &Node) -> Option<Val> {
        self.no_block(n);
        let Some((first, rest)) = n.args.split_first() else {
            self.nc(n, "missing script");
            return None;
        };
        let same_user = matches!(rest, [u] if self.script_user.as_deref() == Some(u.text.as_str()));
        if same_user {
            self.note(
                Info,
                &n.key,
                n.name(),
                format!(
                    "run-as user `{}` is the script_user: nothing to convert",
                    texts(rest)
                ),
            );
        } else if !rest.is_empty() {
            self.note(
                NotConverted,
                &n.key,
                n.name(),
                format!(
                    "run-as user/group `{}` not converted: vipd runs every script as [global] script_user",
                    texts(rest)
                ),
            );
        }
        let argv = match shell::split(&first.text) {
            Split::Argv(v) if !v.is_empty() => v,
            Split::Argv(_) => {
                self.nc(n, "empty script");
                return None;
            }
            Split::Shell => {
                self.note(
                    Warning,
                    first,
                    n.name(),
                    "contains shell syntax: converted to [\"/bin/sh\", \"-c\", ...]",
                );
                vec!["/bin/sh".to_string(), "-c".to_string(), first.text.clone()]
            }
        };
        Some(Val::Arr(argv.into_iter().map(Val::Str).collect()))
    }

    fn global_defs(&mut self, n: &Node, g: &mut Table) {
        if !n.args.is_empty() {
            self.note(
                NotConverted,
                &n.key,
                "global_defs",
                format!("arguments `{}` ignored", texts(&n.args)),
            );
        }
        let Some(block) = &n.block else {
            self.nc(n, "expects a `{ }` block");
            return;
        };
        let mut gna: Option<(Duration, &Node)> = None;
        let mut seen = Vec::new();
        for c in block {
            self.dup(&mut seen, c, GLOBAL_SINGLE);
            let kw = c.name();
            match kw {
                "router_id" => {
                    if let Some(t) = self.one(c) {
                        g.set(keys::global::router_id, Val::Str(t.text.clone()));
                    }
                }
                "vrrp_version" => {
                    if let Some(v) = self.int(c, 2, 3) {
                        g.set(keys::global::vrrp_version, Val::Int(v));
                        self.global_version = Some(if v == 3 { 3 } else { 2 });
                    }
                }
                "vrrp_garp_master_delay" => {
                    if let Some(d) = self.secs(c) {
                        g.set(keys::global::garp_master_delay, dur(d));
                    }
                }
                "vrrp_garp_master_repeat" => {
                    if let Some(v) = self.int(c, 1, 255) {
                        g.set(keys::global::garp_master_repeat, Val::Int(v));
                    }
                }
                "vrrp_garp_master_refresh" => {
                    if let Some(d) = self.secs(c) {
                        g.set(keys::global::garp_master_refresh, dur(d));
                    }
                }
                "vrrp_garp_master_refresh_repeat" => {
                    if let Some(v) = self.int(c, 1, 255) {
                        g.set(keys::global::garp_master_refresh_repeat, Val::Int(v));
                    }
                }
                "vrrp_garp_interval" => {
                    if let Some(d) = self.secs(c) {
                        g.set(keys::global::garp_interval, dur(d));
                    }
                }
                "vrrp_gna_interval" => {
                    if let Some(d) = self.secs(c) {
                        gna = Some((d, c));
                    }
                }
                "vrrp_startup_delay" => {
                    if let Some(d) = self.secs(c) {
                        let max = Duration::from_secs(60);
                        if d > max {
                            self.note(
                                Warning,
                                &c.key,
                                kw,
                                format!("{} is longer than vipd's limit: written as 60s", format_duration(d)),
                            );
                        }
                        g.set(keys::global::startup_delay, dur(d.min(max)));
                    }
                }
                "vrrp_garp_lower_prio_delay" => {
                    if let Some(d) = self.secs(c) {
                        g.set(keys::global::garp_lower_prio_delay, dur(d));
                    }
                }
                "vrrp_garp_lower_prio_repeat" => {
                    if let Some(v) = self.int(c, 1, 255) {
                        g.set(keys::global::garp_lower_prio_repeat, Val::Int(v));
                    }
                }
                "vrrp_lower_prio_no_advert" => {
                    if let Some(b) = self.flag(c) {
                        g.set(keys::global::lower_prio_no_advert, Val::Bool(b));
                    }
                }
                "script_user" => {
                    self.no_block(c);
                    match c.args.as_slice() {
                        [] => self.nc(c, "missing user name"),
                        [u, rest @ ..] => {
                            g.set(keys::global::script_user, Val::Str(u.text.clone()));
                            self.script_user = Some(u.text.clone());
                            if !rest.is_empty() {
                                self.note(
                                    NotConverted,
                                    &c.key,
                                    kw,
                                    format!(
                                        "group `{}` not converted: vipd runs scripts with the user's primary group",
                                        texts(rest)
                                    ),
                                );
                            }
                        }
                    }
                }
                "enable_script_security" => {
                    if let Some(b) = self.flag(c) {
                        g.set(keys::global::enable_script_security, Val::Bool(b));
                    }
                }
                "v3_checksum_as_v2" => {
                    if let Some(b) = self.flag(c) {
                        g.set(keys::global::checksum, Val::Str(checksum_word(b).into()));
                    }
                }
                "vrrp_strict" => {
                    if self.flag(c) == Some(true) {
                        self.strict = true;
                        self.note(
                            Info,
                            &c.key,
                            kw,
                            "vipd has no strict switch: it always rejects what strict mode forbids at configuration time (authentication with VRRPv3, VRRPv2 over IPv6); instances without `accept` are written with accept = false, as strict mode implies",
                        );
                    }
                }
                "vrrp_check_unicast_src" => self.note(
                    Info,
                    &c.key,
                    kw,
                    "not needed: vipd always accepts unicast adverts only from the instance's unicast_peers",
                ),
                "vrrp_skip_check_adv_addr" => self.note(
                    Info,
                    &c.key,
                    kw,
                    "not needed: vipd accepts adverts whose address list differs from its own and logs the mismatch",
                ),
                "dynamic_interfaces" => self.note(
                    Info,
                    &c.key,
                    kw,
                    "not needed: vipd always keeps an instance whose interface is missing (or has no address) in FAULT until it is usable, and re-opens re-created interfaces",
                ),
                "vrrp_mcast_group4" | "vrrp_mcast_group6"
                    if c.arg(0).is_some_and(|a| {
                        matches!(a.text.as_str(), "224.0.0.18" | "ff02::12" | "FF02::12")
                    }) =>
                {
                    self.note(
                        Info,
                        &c.key,
                        kw,
                        "the IANA group, vipd's default: nothing to convert",
                    );
                }
                "notify_fifo" | "vrrp_notify_fifo" => {
                    self.no_block(c);
                    match c.args.as_slice() {
                        [] => self.nc(c, "missing FIFO path"),
                        [path, rest @ ..] => {
                            if g.has(keys::global::notify_fifo) {
                                self.nc(c, "vipd writes one notify FIFO (the first one given); read the same lines from it");
                            } else {
                                g.set(keys::global::notify_fifo, Val::Str(path.text.clone()));
                                if !rest.is_empty() {
                                    self.note(Info, &c.key, kw, format!("owner `{}` not converted: vipd creates the FIFO 0600 as its own user; its reader runs as script_user", texts(rest)));
                                }
                            }
                        }
                    }
                }
                "notify_fifo_script" | "vrrp_notify_fifo_script" => {
                    if g.has(keys::global::notify_fifo_script) {
                        self.nc(c, "vipd runs one FIFO reader (the first one given)");
                    } else if let Some(v) = self.notify_argv(c) {
                        g.set(keys::global::notify_fifo_script, v);
                    }
                }
                "vrrp_mcast_group4" | "vrrp_mcast_group6" => {
                    if let Some(a) = self.one(c).cloned() {
                        let key = if kw == "vrrp_mcast_group4" {
                            keys::global::multicast_group_v4
                        } else {
                            keys::global::multicast_group_v6
                        };
                        g.set(key, Val::Str(a.text));
                    }
                }
                _ => self.nc(c, global_reason(kw)),
            }
        }
        let garp_now = g
            .entries
            .iter()
            .find(|(k, _)| *k == keys::global::garp_interval)
            .map(|(_, v)| v.clone());
        if let Some((d, c)) = gna {
            // The same interval as vipd's one (given, or its default 0): nothing changes.
            let same = match &garp_now {
                Some(Val::Str(v)) => *v == format_duration(d),
                _ => d.is_zero(),
            };
            if same {
                self.note(
                    Info,
                    &c.key,
                    c.name(),
                    "the same interval as vipd's garp_interval, which paces unsolicited NAs too: nothing to convert",
                );
            } else if g.has(keys::global::garp_interval) {
                self.note(
                    Warning,
                    &c.key,
                    c.name(),
                    "vipd has one interval for gratuitous ARPs and unsolicited NAs; vrrp_garp_interval is used for both",
                );
            } else {
                g.set(keys::global::garp_interval, dur(d));
                self.note(
                    Warning,
                    &c.key,
                    "vrrp_gna_interval",
                    "converted to garp_interval, which vipd uses for IPv4 gratuitous ARPs as well",
                );
            }
        }
    }

    fn name_of(&mut self, n: &Node) -> Option<String> {
        match n.args.as_slice() {
            [name] => Some(name.text.clone()),
            [name, rest @ ..] => {
                self.note(
                    NotConverted,
                    &n.key,
                    n.name(),
                    format!("extra arguments `{}` after the name ignored", texts(rest)),
                );
                Some(name.text.clone())
            }
            [] => {
                self.nc(n, "missing name");
                None
            }
        }
    }

    fn block<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        match &n.block {
            Some(b) => b,
            None => {
                self.note(
                    NotConverted,
                    &n.key,
                    n.name(),
                    "expects a `{ }` block; nothing converted",
                );
                &[]
            }
        }
    }

    /// `{ name [weight W] ... }` lists of tracked scripts / interfaces / files / processes.
    fn track_list(&mut self, n: &Node, lo: i64, hi: i64) -> Option<Val> {
        if !n.args.is_empty() {
            self.note(
                NotConverted,
                &n.key,
                n.name(),
                format!("arguments `{}` ignored", texts(&n.args)),
            );
        }
        let mut items = Vec::new();
        for c in self.block(n) {
            if c.block.is_some() {
                self.nc(c, "unexpected block inside a track list");
                continue;
            }
            let name = Val::Str(c.key.text.clone());
            match self.weight(n, &c.args, lo, hi) {
                Some(w) => items.push(Val::Inline(vec![
                    (keys::track_ref::name, name),
                    (keys::track_ref::weight, Val::Int(w)),
                ])),
                None => items.push(name),
            }
        }
        (!items.is_empty()).then_some(Val::Arr(items))
    }

    fn instance(&mut self, n: &Node) -> Option<Instance> {
        let name = self.name_of(n)?;
        let mut d = Draft {
            name,
            at: n.key.clone(),
            ..Draft::default()
        };
        let mut seen = Vec::new();
        for c in self.block(n) {
            self.dup(&mut seen, c, INSTANCE_SINGLE);
            self.instance_key(c, &mut d);
        }
        Some(self.finish_instance(d))
    }

    fn instance_key(&mut self, c: &Node, d: &mut Draft) {
        let kw = c.name();
        match kw {
            "state" => {
                if let Some(t) = self.one(c) {
                    let s = t.text.to_ascii_uppercase();
                    if s == "MASTER" || s == "BACKUP" {
                        d.master = s == "MASTER";
                        self.note(
                            Info,
                            &c.key,
                            kw,
                            format!("`state {s}` has no vipd equivalent: vipd starts as backup and elects the master by priority"),
                        );
                    } else {
                        self.nc(c, "state must be MASTER or BACKUP");
                    }
                }
            }
            "interface" => {
                if let Some(t) = self.one(c) {
                    d.interface = Some(t.text.clone());
                }
            }
            "virtual_router_id" => {
                if let Some(v) = self.int(c, 1, 255) {
                    d.t.set(keys::instance::vrid, Val::Int(v));
                }
            }
            "priority" => {
                if let Some(v) = self.int(c, 1, 255) {
                    d.priority = Some((v, c.key.clone()));
                }
            }
            "advert_int" => {
                if let Some(v) = self.secs(c) {
                    d.advert = Some((v, c.key.clone()));
                }
            }
            "nopreempt" => {
                if self.flag(c) == Some(true) {
                    d.nopreempt = Some(c.key.clone());
                }
            }
            "preempt" => self.note(Info, &c.key, kw, "preemption is vipd's default"),
            "preempt_delay" => {
                if let Some(v) = self.secs(c) {
                    d.preempt_delay = Some((v, c.key.clone()));
                }
            }
            "accept" => {
                if let Some(b) = self.flag(c) {
                    d.accept = Some(b);
                }
            }
            "no_accept" => {
                if let Some(b) = self.flag(c) {
                    d.accept = Some(!b);
                }
            }
            "strict_mode" => {
                if let Some(b) = self.flag(c) {
                    d.strict = Some(b);
                    self.note(
                        Info,
                        &c.key,
                        kw,
                        "vipd has no strict switch; only its effect on the Accept_Mode default is kept",
                    );
                }
            }
            "version" => {
                if let Some(v) = self.int(c, 2, 3) {
                    d.version = Some((if v == 3 { 3 } else { 2 }, c.key.clone()));
                }
            }
            "virtual_ipaddress" => self.vip_block(c, d, false),
            "virtual_ipaddress_excluded" => self.vip_block(c, d, true),
            "no_virtual_ipaddress" => {
                if self.flag(c) == Some(true) {
                    d.no_vips = true;
                }
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                if let Some(mut t) = self.one(c).cloned() {
                    if let Some((a, _)) = t.text.split_once('/')
                        && a.parse::<IpAddr>().is_ok()
                    {
                        self.note(
                            Info,
                            &c.key,
                            kw,
                            format!("`{}`: the prefix length is ignored, as keepalived does; written as {a}", t.text),
                        );
                        t.text = a.to_string();
                    }
                    if t.text.parse::<IpAddr>().is_err() {
                        self.nc(c, &format!("`{}` is not an IP address", t.text));
                    } else {
                        if d.t.has(keys::instance::source_address) {
                            self.note(
                                Warning,
                                &c.key,
                                kw,
                                "a source address was already given; this one replaces it",
                            );
                        }
                        d.t.set(keys::instance::source_address, Val::Str(t.text.clone()));
                    }
                }
            }
            "unicast_peer" => {
                for p in self.block(c) {
                    let addr = match p.key.text.split_once('/') {
                        Some((a, _)) if a.parse::<IpAddr>().is_ok() => {
                            self.note(
                                Info,
                                &p.key,
                                "unicast_peer",
                                format!("`{}`: the prefix length is ignored, as keepalived does; written as {a}", p.key.text),
                            );
                            a.to_string()
                        }
                        _ => p.key.text.clone(),
                    };
                    if addr.parse::<IpAddr>().is_err() {
                        self.nc_security(p, "not an IP address");
                        continue;
                    }
                    match self.peer_ttl(p) {
                        None => continue,
                        Some(ttl) if ttl.is_empty() => {
                            d.peers.push(Val::Str(addr.clone()));
                        }
                        Some(mut ttl) => {
                            ttl.insert(0, (keys::peer::address, Val::Str(addr)));
                            d.peer_tables.push(Val::Inline(ttl));
                        }
                    }
                }
            }
            "auth_hmac" => {
                if let Some(v) = self.auth_hmac(c) {
                    d.garp.push((keys::instance::auth_hmac, v));
                }
            }
            "authentication" => {
                let mut ty: Option<(String, Token)> = None;
                let mut pass: Option<(String, Token)> = None;
                for a in self.block(c) {
                    match a.name() {
                        "auth_type" => {
                            if let Some(t) = self.one(a) {
                                ty = Some((t.text.to_ascii_uppercase(), a.key.clone()));
                            }
                        }
                        "auth_pass" => {
                            if let Some(t) = self.one(a) {
                                pass = Some((t.text.clone(), a.key.clone()));
                            }
                        }
                        _ => self.nc_security(a, "unknown authentication keyword"),
                    }
                }
                match (ty, pass) {
                    (Some((ty, _)), Some(p)) if ty == "AH" => {
                        d.auth = Some(p);
                        d.auth_ah = true;
                    }
                    (Some((ty, at)), None) if ty == "AH" => self.note(
                        SecurityLost,
                        &at,
                        "auth_type",
                        "auth_type AH without auth_pass: no key to convert; the instance is converted without authentication",
                    ),
                    (Some((ty, _)), Some(p)) if ty == "PASS" => d.auth = Some(p),
                    (Some((ty, at)), _) if ty != "PASS" => self.note(
                        SecurityLost,
                        &at,
                        "auth_type",
                        format!("unknown auth_type `{ty}`"),
                    ),
                    (_, Some((_, at))) => self.note(
                        NotConverted,
                        &at,
                        "auth_pass",
                        "auth_pass without `auth_type PASS`: keepalived ignores it",
                    ),
                    (Some((_, at)), None) => self.note(
                        NotConverted,
                        &at,
                        "auth_type",
                        "authentication without auth_pass: keepalived ignores it",
                    ),
                    (None, None) => {}
                }
            }
            "track_script" => {
                if let Some(v) = self.track_list(c, -253, 253) {
                    d.tracks.push((keys::instance::track_scripts, v));
                }
            }
            "track_interface" => {
                if let Some(v) = self.track_list(c, -254, 254) {
                    d.tracks.push((keys::instance::track_interfaces, v));
                }
            }
            "track_file" => {
                if let Some(v) = self.track_list(c, -254, 254) {
                    d.tracks.push((keys::instance::track_files, v));
                }
            }
            "track_process" => {
                if let Some(v) = self.track_list(c, -254, 254) {
                    d.tracks.push((keys::instance::track_processes, v));
                }
            }
            "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                if let Some(v) = self.notify_argv(c) {
                    d.tracks.push((notify_key(kw, INSTANCE_NOTIFY), v));
                }
            }
            "garp_master_delay" | "garp_master_refresh" | "garp_interval" | "garp_lower_prio_delay" => {
                if let Some(v) = self.secs(c) {
                    let key = match kw {
                        "garp_master_delay" => keys::instance::garp_master_delay,
                        "garp_master_refresh" => keys::instance::garp_master_refresh,
                        "garp_lower_prio_delay" => keys::instance::garp_lower_prio_delay,
                        _ => keys::instance::garp_interval,
                    };
                    d.garp.push((key, dur(v)));
                }
            }
            "garp_master_repeat" | "garp_master_refresh_repeat" | "garp_lower_prio_repeat" => {
                if let Some(v) = self.int(c, 1, 255) {
                    let key = match kw {
                        "garp_master_repeat" => keys::instance::garp_master_repeat,
                        "garp_lower_prio_repeat" => keys::instance::garp_lower_prio_repeat,
                        _ => keys::instance::garp_master_refresh_repeat,
                    };
                    d.garp.push((key, Val::Int(v)));
                }
            }
            "lower_prio_no_advert" => {
                if let Some(b) = self.flag(c) {
                    d.garp.push((keys::instance::lower_prio_no_advert, Val::Bool(b)));
                }
            }
            "v3_checksum_as_v2" => {
                if let Some(b) = self.flag(c) {
                    d.garp
                        .push((keys::instance::checksum, Val::Str(checksum_word(b).into())));
                }
            }
            "mcast_dst_ip" => {
                if let Some(a) = self.one(c).cloned() {
                    d.garp.push((keys::instance::multicast_group, Val::Str(a.text)));
                }
            }
            "virtual_routes" => {
                let lines = self.block(c);
                let t = super::routes::block(lines, super::routes::route, &mut self.notes, kw_routes(c));
                d.routes.extend(t);
            }
            "virtual_rules" => {
                let lines = self.block(c);
                let t = super::routes::block(lines, super::routes::rule, &mut self.notes, kw_routes(c));
                d.rules.extend(t);
            }
            "use_vmac" => {
                self.no_block(c);
                d.garp.push((keys::instance::vmac, Val::Bool(true)));
                let mut args = c.args.iter().peekable();
                while let Some(a) = args.next() {
                    match a.text.as_str() {
                        "name" => {
                            if let Some(n) = args.next() {
                                d.garp.push((keys::instance::vmac_interface, Val::Str(n.text.clone())));
                            }
                        }
                        "netlink_notify_msg" => {}
                        "group" => {
                            args.next();
                            self.note(Info, a, kw, "`group` (the VMAC's interface group) not converted: vipd's VMAC devices are in the default group");
                        }
                        t if t.contains(':') => self.note(
                            NotConverted,
                            a,
                            kw,
                            format!("MAC address `{t}` not converted: vipd's VMAC is RFC 9568's 00:00:5e:00:01:VRID"),
                        ),
                        t => d.garp.push((keys::instance::vmac_interface, Val::Str(t.to_string()))),
                    }
                }
            }
            "vmac_xmit_base" => {
                if self.flag(c) != Some(false) {
                    d.garp.push((keys::instance::vmac_xmit_base, Val::Bool(true)));
                }
            }
            "use_ipvlan" => self.nc(c, "vipd makes macvlan VMAC devices only (use_vmac); an ipvlan keeps the interface's MAC anyway"),
            "smtp_alert" => self.nc(c, "vipd sends no e-mail; send it from a notify script"),
            "skip_check_adv_addr" => self.note(
                Info,
                &c.key,
                kw,
                "not needed: vipd accepts adverts whose address list differs from its own and logs the mismatch",
            ),
            "check_unicast_src" => self.note(
                Info,
                &c.key,
                kw,
                "not needed: vipd always accepts unicast adverts only from unicast_peers",
            ),
            "track_bfd" => self.nc(c, "vipd has no BFD support"),
            "dont_track_primary" => {
                d.garp.push((keys::instance::fault_on_link_down, Val::Bool(false)));
            }
            "lvs_sync_daemon_interface" => self.nc(c, "LVS is not part of vipd"),
            "debug" => self.nc(c, "use vipd's log level instead"),
            _ => self.nc(c, super::keywords::reason("vrrp_instance", c.name()).unwrap_or(super::keywords::UNKNOWN)),
        }
    }

    fn vip_block(&mut self, c: &Node, d: &mut Draft, excluded: bool) {
        if !c.args.is_empty() {
            self.note(
                NotConverted,
                &c.key,
                c.name(),
                format!("arguments `{}` ignored", texts(&c.args)),
            );
        }
        for line in self.block(c) {
            if let Some(mut v) = self.vip_line(line) {
                v.excluded = excluded;
                d.vips.push(v);
            }
        }
    }

    fn vip_line(&mut self, n: &Node) -> Option<VipDraft> {
        let kw = "virtual_ipaddress";
        self.no_block(n);
        let addr = n.key.text.clone();
        let ip = addr.split_once('/').map_or(addr.as_str(), |(a, _)| a);
        let Ok(ip) = ip.parse::<IpAddr>() else {
            self.nc(n, "not an IP address");
            return None;
        };
        if let Some((_, p)) = addr.split_once('/') {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if p.parse::<u8>().ok().is_none_or(|p| p > max) {
                self.nc(n, &format!("bad prefix length `/{p}`"));
                return None;
            }
        }
        let mut v = VipDraft {
            addr,
            v6: ip.is_ipv6(),
            at: n.key.clone(),
            ..VipDraft::default()
        };
        let mut args = n.args.iter();
        while let Some(o) = args.next() {
            let opt = o.text.as_str();
            let needs_value = matches!(
                opt,
                "brd"
                    | "broadcast"
                    | "dev"
                    | "scope"
                    | "label"
                    | "peer"
                    | "track_group"
                    | "preferred_lft"
                    | "metric"
            );
            let value = if needs_value {
                match args.next() {
                    Some(val) => val.text.clone(),
                    None => {
                        self.note(NotConverted, o, kw, format!("`{opt}` without a value"));
                        continue;
                    }
                }
            } else {
                String::new()
            };
            match opt {
                "dev" => v.dev = Some((value, o.clone())),
                "label" if v.v6 => self.note(
                    Info,
                    o,
                    kw,
                    format!("label `{value}` on an IPv6 VIP dropped: Linux has no IPv6 address labels (keepalived ignores it too)"),
                ),
                "label" => v.label = Some(value),
                "scope" => match value.as_str() {
                    "global" | "site" | "link" | "host" => v.scope = Some(value),
                    _ => self.note(
                        Warning,
                        o,
                        kw,
                        format!("scope `{value}` is not supported by vipd (global, site, link, host); the default (global) is used"),
                    ),
                },
                "brd" | "broadcast" => self.note(
                    Warning,
                    o,
                    kw,
                    format!("`{opt} {value}` dropped: vipd does not set an explicit broadcast address"),
                ),
                "noprefixroute" => self.note(
                    Warning,
                    o,
                    kw,
                    "`noprefixroute` dropped: the kernel adds the prefix route for the VIP",
                ),
                "home" | "-nodad" | "nodad" | "autojoin" | "no_track" => self.note(
                    Warning,
                    o,
                    kw,
                    format!("address flag `{opt}` dropped (no vipd equivalent)"),
                ),
                "peer" | "track_group" | "preferred_lft" | "metric" => self.note(
                    NotConverted,
                    o,
                    kw,
                    format!("`{opt} {value}` not converted (no vipd equivalent)"),
                ),
                _ => self.note(NotConverted, o, kw, format!("unknown address option `{opt}`")),
            }
        }
        Some(v)
    }

    fn finish_instance(&mut self, d: Draft) -> Instance {
        let Draft {
            name,
            at,
            mut t,
            interface,
            master,
            priority,
            advert,
            nopreempt,
            preempt_delay,
            accept,
            strict,
            version,
            vips,
            no_vips,
            routes,
            rules,
            peers,
            peer_tables,
            auth,
            auth_ah,
            tracks,
            garp,
        } = d;
        let kw = "vrrp_instance";
        let mut out = Table {
            comment: format!("vrrp_instance {name}"),
            entries: vec![(keys::instance::name, Val::Str(name.clone()))],
        };
        match &interface {
            Some(i) => out.set(keys::instance::interface, Val::Str(i.clone())),
            None => self.note(
                NotConverted,
                &at,
                kw,
                format!("instance `{name}` has no `interface`; vipd requires one: add it by hand"),
            ),
        }
        if let Some(v) = t.entries.iter().find(|(k, _)| *k == keys::instance::vrid) {
            out.entries.push(v.clone());
        } else {
            self.note(
                NotConverted,
                &at,
                kw,
                format!("instance `{name}` has no `virtual_router_id`; vipd requires a vrid"),
            );
        }

        // The family is the first advertised VIP's (excluded ones may be of either).
        let v6 = vips.iter().find(|v| !v.excluded).is_some_and(|v| v.v6);
        let global_version = self.global_version.unwrap_or(2);
        let version_eff = match (&version, v6) {
            (Some((2, vt)), true) => {
                self.note(Warning, vt, "version", "VRRPv2 cannot carry IPv6 addresses; written as version = 3 (keepalived only allows this outside strict mode)");
                out.set(keys::instance::version, Val::Int(3));
                3
            }
            (Some((v, _)), _) => {
                out.set(keys::instance::version, Val::Int(i64::from(*v)));
                *v
            }
            (None, true) => {
                if global_version != 3 {
                    out.set(keys::instance::version, Val::Int(3));
                    self.note(Info, &at, "version", format!("IPv6 instance `{name}`: keepalived runs IPv6 instances as VRRPv3; written as version = 3"));
                }
                3
            }
            (None, false) => global_version,
        };

        let prio = match &priority {
            Some((p, _)) => Some(*p),
            None if master => {
                self.note(Warning, &at, "priority", format!("instance `{name}` is `state MASTER` without a priority: keepalived then uses 255 (address owner), so priority = 255 is written; you probably want 254 or lower"));
                Some(255)
            }
            None => None,
        };
        if let Some(p) = prio {
            out.set(keys::instance::priority, Val::Int(p));
        }
        let owner = prio == Some(255);

        if let Some((a, at)) = advert {
            let (step, lo, hi) = if version_eff == 2 {
                (
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                    Duration::from_secs(255),
                )
            } else {
                (
                    Duration::from_millis(10),
                    Duration::from_millis(10),
                    Duration::from_millis(40_950),
                )
            };
            let rounded = round_to(a, step).clamp(lo, hi);
            if rounded != a {
                self.note(
                    Warning,
                    &at,
                    "advert_int",
                    format!(
                        "VRRPv{version_eff} advert_int {} adjusted to {} as keepalived does (v2: whole seconds 1..=255, v3: 10ms steps up to 40.95s)",
                        format_duration(a),
                        format_duration(rounded)
                    ),
                );
            }
            out.set(keys::instance::advert_interval, dur(rounded));
        }

        let mut preempting = true;
        if let Some(np) = nopreempt {
            if master || owner {
                self.note(
                    Warning,
                    &np,
                    "nopreempt",
                    format!(
                        "ignored as keepalived does: `nopreempt` has no effect with {}",
                        if owner {
                            "priority 255"
                        } else {
                            "state MASTER"
                        }
                    ),
                );
            } else {
                out.set(keys::instance::preempt, Val::Bool(false));
                preempting = false;
            }
        }
        if let Some((pd, at)) = preempt_delay {
            let strict = strict.unwrap_or(self.strict);
            if master || !preempting || strict {
                let why = if master {
                    "state MASTER"
                } else if !preempting {
                    "nopreempt"
                } else {
                    "strict mode"
                };
                self.note(
                    Warning,
                    &at,
                    "preempt_delay",
                    format!("ignored as keepalived does with {why}"),
                );
            } else if pd > Duration::from_secs(1000) {
                self.note(
                    NotConverted,
                    &at,
                    "preempt_delay",
                    "more than 1000 seconds; keepalived rejects it",
                );
            } else {
                out.set(keys::instance::preempt_delay, dur(pd));
            }
        }

        let strict = strict.unwrap_or(self.strict);
        match accept {
            Some(a) => out.set(keys::instance::accept, Val::Bool(a)),
            None if strict && !owner => {
                out.set(keys::instance::accept, Val::Bool(false));
                self.note(Info, &at, "accept", format!("instance `{name}`: keepalived in strict mode does not accept traffic to the VIPs; written as accept = false (vipd's default, as keepalived's outside strict mode, is true)"));
            }
            None => {}
        }

        // VIPs: the short lists for plain addresses, tables for those with a label, scope or
        // device.
        let mut short = Vec::new();
        let mut excluded_short = Vec::new();
        let mut long = Vec::new();
        let mut count = 0usize;
        let mut seen: Vec<IpAddr> = Vec::new();
        // What keepalived fits in an advert at a 1500-byte MTU; it moves the rest to the
        // excluded VIPs, and so does the conversion.
        let max_addr = if v6 { (1500 - 48) / 16 } else { 255 };
        for mut v in vips {
            // keepalived keeps one of an address listed twice (its own sample does it).
            let ip = v
                .addr
                .split('/')
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok());
            if let Some(ip) = ip {
                if seen.contains(&ip) {
                    self.note(
                        Info,
                        &v.at,
                        "virtual_ipaddress",
                        format!("VIP {} is listed twice in instance `{name}`: kept once, as keepalived does", v.addr),
                    );
                    continue;
                }
                seen.push(ip);
            }
            if !v.excluded && v.v6 != v6 {
                self.note(Info, &v.at, "virtual_ipaddress", format!("VIP {} left out, as keepalived ignores it: an advertised VIP must be of the instance's address family (the first VIP's); put it in virtual_ipaddress_excluded (vipd: excluded_vips) or in a separate instance", v.addr));
                continue;
            }
            if !v.excluded {
                count += 1;
                if count == max_addr + 1 {
                    self.note(Warning, &v.at, "virtual_ipaddress", format!("instance `{name}` has more VIPs than an advert holds ({max_addr} at a 1500-byte MTU): this one and the rest are written as excluded (held, not advertised), as keepalived moves them to its excluded VIPs"));
                }
                if count > max_addr {
                    v.excluded = true;
                }
            }
            let dev = v
                .dev
                .map(|(d, _)| d)
                .filter(|d| interface.as_deref() != Some(d.as_str()));
            let plain = v.label.is_none() && v.scope.is_none() && dev.is_none();
            if v.excluded && plain {
                excluded_short.push(Val::Str(v.addr));
            } else if !v.excluded && plain && long.is_empty() {
                // The short list comes first in vipd, so once one advertised VIP needs a
                // table, the rest follow as tables too: the order is kept (IPv6 wants the
                // link-local one first).
                short.push(Val::Str(v.addr));
            } else {
                let mut vt = Table::default();
                vt.set(keys::vip::address, Val::Str(v.addr));
                if let Some(l) = v.label {
                    vt.set(keys::vip::label, Val::Str(l));
                }
                if let Some(s) = v.scope {
                    vt.set(keys::vip::scope, Val::Str(s));
                }
                if let Some(d) = dev {
                    vt.set(keys::vip::interface, Val::Str(d));
                }
                if v.excluded {
                    vt.set(keys::vip::excluded, Val::Bool(true));
                }
                long.push(vt);
            }
        }
        let version_written = version.as_ref().map_or(global_version, |(v, _)| *v);
        if no_vips {
            out.set(keys::instance::no_vips, Val::Bool(true));
        } else if count == 0 && version_written == 2 && !v6 {
            self.note(
                Info,
                &at,
                kw,
                format!("instance `{name}` advertises no VIP: accepted for VRRPv2 (with a warning), as keepalived does"),
            );
        } else if count == 0 {
            self.note(
                NotConverted,
                &at,
                kw,
                format!("instance `{name}` has no convertible advertised VIP; VRRPv3 requires one (keepalived refuses it too), unless no_virtual_ipaddress"),
            );
        }
        if !short.is_empty() {
            out.set(keys::instance::vips, Val::Arr(short));
        }
        if !excluded_short.is_empty() {
            out.set(keys::instance::excluded_vips, Val::Arr(excluded_short));
        }

        if !peers.is_empty() {
            out.set(keys::instance::unicast_peers, Val::Arr(peers));
        }
        if !peer_tables.is_empty() {
            out.set(keys::instance::unicast_peer, Val::Arr(peer_tables));
        }
        if let Some(v) = t
            .entries
            .iter()
            .find(|(k, _)| *k == keys::instance::source_address)
        {
            out.entries.push(v.clone());
        }
        t.entries.clear();

        if let Some((pass, pat)) = auth {
            if version_eff == 3 {
                self.note(Info, &pat, "authentication", "VRRPv3 has no authentication; keepalived ignores it, and so does the conversion");
            } else if strict {
                self.note(
                    NotConverted,
                    &pat,
                    "authentication",
                    "keepalived ignores authentication in strict mode; not converted",
                );
            } else {
                let mut p = pass.clone();
                if p.len() > 8 {
                    let mut cut = 8;
                    while !p.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    p.truncate(cut);
                    self.note(
                        Warning,
                        &pat,
                        "auth_pass",
                        "longer than 8 bytes: truncated to the 8 bytes keepalived actually sends",
                    );
                }
                if !auth_ah {
                    out.set(keys::instance::auth_pass, Val::Str(p));
                } else if v6 {
                    self.note(
                        SecurityLost,
                        &pat,
                        "auth_type",
                        "IPsec AH over IPv6 is not supported (nor by keepalived's AH); the instance is converted without authentication",
                    );
                } else {
                    self.note(
                        Info,
                        &pat,
                        "auth_type",
                        "IPsec AH converted to auth_ah (legacy, keepalived-compatible); move the pair to auth_hmac once every router runs it",
                    );
                    out.set(keys::instance::auth_ah, Val::Str(p));
                }
            }
        }
        for (k, v) in garp {
            out.set(k, v);
        }
        for (k, v) in tracks {
            let notify = INSTANCE_NOTIFY.contains(&k) || k == keys::instance::notify_timeout;
            let existing = out.entries.iter_mut().find(|(key, _)| *key == k);
            match (existing, v) {
                // Several track_* blocks: keepalived follows them all.
                (Some((_, Val::Arr(have))), Val::Arr(more)) if !notify => have.extend(more),
                // A second notify line of a kind: keepalived keeps the first.
                (Some(_), _) => self.note(
                    Warning,
                    &at,
                    k.as_str(),
                    format!("`{k}` given twice in instance `{name}`; the first one is used, as keepalived does"),
                ),
                (None, v) => out.set(k, v),
            }
        }
        Instance {
            table: out,
            vips: long,
            routes,
            rules,
        }
    }

    fn sync_group(&mut self, n: &Node) -> Option<Table> {
        let name = self.name_of(n)?;
        let mut t = Table {
            comment: format!("vrrp_sync_group {name}"),
            entries: vec![(keys::sync_group::name, Val::Str(name))],
        };
        for c in self.block(n) {
            let kw = c.name();
            match kw {
                "group" => {
                    let mut members: Vec<Val> =
                        c.args.iter().map(|a| Val::Str(a.text.clone())).collect();
                    for m in self.block(c) {
                        members.push(Val::Str(m.key.text.clone()));
                        members.extend(m.args.iter().map(|a| Val::Str(a.text.clone())));
                        if m.block.is_some() {
                            self.nc(m, "unexpected block inside `group`");
                        }
                    }
                    t.set(keys::sync_group::instances, Val::Arr(members));
                }
                "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                    if let Some(v) = self.notify_argv(c) {
                        t.set(notify_key(kw, GROUP_NOTIFY), v);
                    }
                }
                "smtp_alert" => self.nc(c, "vipd sends no e-mail; send it from a notify script"),
                "track_script" | "track_interface" | "track_file" | "track_process" => {
                    let (key, lo, hi) = match kw {
                        "track_script" => (keys::sync_group::track_scripts, -253, 253),
                        "track_interface" => (keys::sync_group::track_interfaces, -254, 254),
                        "track_file" => (keys::sync_group::track_files, -254, 254),
                        _ => (keys::sync_group::track_processes, -254, 254),
                    };
                    if let Some(v) = self.track_list(c, lo, hi) {
                        t.set(key, v);
                    }
                }
                "sync_group_tracking_weight" | "global_tracking" => {
                    self.no_block(c);
                    t.set(keys::sync_group::tracking_weight, Val::Bool(true));
                }
                "track_bfd" => self.nc(c, "vipd has no BFD tracker"),
                _ => self.nc(
                    c,
                    super::keywords::reason("vrrp_sync_group", c.name())
                        .unwrap_or(super::keywords::UNKNOWN),
                ),
            }
        }
        Some(t)
    }

    fn script(&mut self, n: &Node) -> Option<Table> {
        let name = self.name_of(n)?;
        let mut t = Table {
            comment: format!("vrrp_script {name}"),
            entries: vec![(keys::track_script::name, Val::Str(name))],
        };
        let mut seen = Vec::new();
        for c in self.block(n) {
            self.dup(&mut seen, c, SCRIPT_SINGLE);
            let kw = c.name();
            match kw {
                "script" => {
                    self.no_block(c);
                    if c.args.is_empty() {
                        self.nc(c, "missing command");
                        continue;
                    }
                    let cmd = texts(&c.args);
                    match shell::split(&cmd) {
                        Split::Argv(v) if !v.is_empty() => {
                            t.set(
                                keys::track_script::command,
                                Val::Arr(v.into_iter().map(Val::Str).collect()),
                            );
                        }
                        Split::Argv(_) => self.nc(c, "empty command"),
                        Split::Shell => {
                            t.set(keys::track_script::shell, Val::Str(cmd));
                            self.note(Warning, &c.key, kw, "contains shell syntax (pipes, &&, redirections, $...): converted to `shell = \"...\"`, run by /bin/sh -c (keepalived 2.x runs scripts without a shell)");
                        }
                    }
                }
                "interval" => {
                    if let Some(d) = self.secs(c) {
                        t.set(keys::track_script::interval, dur(d));
                    }
                }
                "timeout" => {
                    if let Some(d) = self.secs(c) {
                        t.set(keys::track_script::timeout, dur(d));
                    }
                }
                "rise" => {
                    if let Some(v) = self.int(c, 1, i64::from(u32::MAX)) {
                        t.set(keys::track_script::rise, Val::Int(v));
                    }
                }
                "fall" => {
                    if let Some(v) = self.int(c, 1, i64::from(u32::MAX)) {
                        t.set(keys::track_script::fall, Val::Int(v));
                    }
                }
                "weight" => {
                    self.no_block(c);
                    let mut args = vec![c.key.clone()];
                    args.extend(c.args.iter().cloned());
                    if let Some(w) = self.weight(c, &args, -253, 253) {
                        t.set(keys::track_script::weight, Val::Int(w));
                    }
                }
                "user" => {
                    self.no_block(c);
                    match c.args.as_slice() {
                        [] => self.nc(c, "missing user name"),
                        [u, rest @ ..] => {
                            t.set(keys::track_script::user, Val::Str(u.text.clone()));
                            if !rest.is_empty() {
                                self.note(NotConverted, &c.key, kw, format!("group `{}` not converted: vipd uses the user's primary group", texts(rest)));
                            }
                        }
                    }
                }
                "init_fail" => self.note(
                    Info,
                    &c.key,
                    "init_fail",
                    "not needed: vipd waits (at most 2 s) for every check's first result before the state machines start, and that result decides at once, failed or not",
                ),
                _ => self.nc(c, super::keywords::reason("vrrp_script", c.name()).unwrap_or(super::keywords::UNKNOWN)),
            }
        }
        if !t.has(keys::track_script::command) && !t.has(keys::track_script::shell) {
            self.note(
                NotConverted,
                &n.key,
                n.name(),
                "no `script` command; vipd requires one",
            );
        }
        Some(t)
    }

    fn track_file(&mut self, n: &Node) -> Option<Table> {
        let name = self.name_of(n)?;
        let mut t = Table {
            comment: format!("{} {name}", n.name()),
            entries: vec![(keys::track_file::name, Val::Str(name))],
        };
        for c in self.block(n) {
            match c.name() {
                "file" => {
                    if let Some(p) = self.one(c) {
                        t.set(keys::track_file::path, Val::Str(p.text.clone()));
                    }
                }
                "weight" => {
                    let mut args = vec![c.key.clone()];
                    args.extend(c.args.iter().cloned());
                    if let Some(w) = self.weight(c, &args, -254, 254) {
                        t.set(keys::track_file::weight, Val::Int(w));
                    }
                }
                "init_file" => {
                    self.no_block(c);
                    let mut value = 0i64;
                    for a in &c.args {
                        match (a.text.as_str(), a.text.parse::<i64>()) {
                            ("overwrite", _) => {
                                t.set(keys::track_file::init_overwrite, Val::Bool(true))
                            }
                            (_, Ok(v)) => value = v,
                            (w, Err(_)) => {
                                self.nc(c, &format!("`{w}` is not a number"));
                            }
                        }
                    }
                    t.set(keys::track_file::init, Val::Int(value));
                }
                _ => self.nc(
                    c,
                    super::keywords::reason("vrrp_track_file", c.name())
                        .unwrap_or(super::keywords::UNKNOWN),
                ),
            }
        }
        if !t.has(keys::track_file::weight) {
            // keepalived's default is 1 (value x 1 added to the priority); vipd's is 0 (a
            // non-zero value means FAULT): write keepalived's.
            t.set(keys::track_file::weight, Val::Int(1));
            self.note(
                Info,
                &n.key,
                n.name(),
                "no weight: written as weight = 1, keepalived's default (vipd's own default, 0, would put the instance in FAULT on any non-zero value)",
            );
        }
        Some(t)
    }

    fn track_process(&mut self, n: &Node) -> Option<Table> {
        let name = self.name_of(n)?;
        let mut t = Table {
            comment: format!("{} {name}", n.name()),
            entries: vec![(keys::track_process::name, Val::Str(name))],
        };
        for c in self.block(n) {
            let kw = c.name();
            match kw {
                "process" => {
                    self.no_block(c);
                    match c.args.as_slice() {
                        [] => self.nc(c, "missing process name"),
                        [p, rest @ ..] => {
                            t.set(keys::track_process::process, Val::Str(p.text.clone()));
                            if !rest.is_empty() {
                                let args = rest.iter().map(|a| Val::Str(a.text.clone())).collect();
                                t.set(keys::track_process::args, Val::Arr(args));
                            }
                        }
                    }
                }
                "param_match" => {
                    let m = match c.arg(0).map(|a| a.text.as_str()) {
                        None => Some("exact"),
                        Some("partial") => Some("partial"),
                        Some("initial") => Some("initial"),
                        Some(_) => None,
                    };
                    match m {
                        Some(m) => {
                            t.set(keys::track_process::args_match, Val::Str(m.into()));
                            // `param_match` without parameters: the command has none.
                            if !t.has(keys::track_process::args) {
                                t.set(keys::track_process::args, Val::Arr(Vec::new()));
                            }
                        }
                        None => self.nc(c, "param_match is initial or partial"),
                    }
                }
                "full_command" => t.set(keys::track_process::full_command, Val::Bool(true)),
                "quorum" => {
                    if let Some(v) = self.int(c, 0, 65_535) {
                        t.set(keys::track_process::min, Val::Int(v));
                    }
                }
                "quorum_max" => {
                    if let Some(v) = self.int(c, 0, 65_535) {
                        t.set(keys::track_process::max, Val::Int(v));
                    }
                }
                "delay" | "fork_delay" | "terminate_delay" => {
                    if let Some(d) = self.secs(c) {
                        if kw != "terminate_delay" {
                            t.set(keys::track_process::up_delay, dur(d));
                        }
                        if kw != "fork_delay" {
                            t.set(keys::track_process::down_delay, dur(d));
                        }
                    }
                }
                "weight" => {
                    let mut args = vec![c.key.clone()];
                    args.extend(c.args.iter().cloned());
                    if let Some(w) = self.weight(c, &args, -254, 254) {
                        t.set(keys::track_process::weight, Val::Int(w));
                    }
                }
                _ => self.nc(
                    c,
                    super::keywords::reason("vrrp_track_process", c.name())
                        .unwrap_or(super::keywords::UNKNOWN),
                ),
            }
        }
        if !t.has(keys::track_process::process) {
            self.note(
                NotConverted,
                &n.key,
                n.name(),
                "no `process` given; vipd requires one",
            );
        }
        Some(t)
    }
}

const GLOBAL_SINGLE: &[&str] = &[
    "router_id",
    "vrrp_version",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_lower_prio_no_advert",
    "script_user",
];

const INSTANCE_SINGLE: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "preempt_delay",
    "version",
    "authentication",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "garp_interval",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "lower_prio_no_advert",
];

impl Cx {
    /// keepalived's `auth_hmac { mode, key ID VALUE, active_key, anti_replay, time_window }` as
    /// vipd's `auth_hmac` table; `key ID file:PATH` becomes `{ id, file }`.
    /// A `unicast_peer` line's `min_ttl N` / `max_ttl N` as vipd's per-peer keys (empty:
    /// none beyond keepalived's defaults, 0 and 255); `None` when an option cannot be read
    /// (the peer is then left out: a peer without its TTL limits would be accepted from
    /// further away than the original allows).
    fn peer_ttl(&mut self, p: &Node) -> Option<Vec<(Key, Val)>> {
        let mut out = Vec::new();
        let mut args = p.args.iter();
        while let Some(opt) = args.next() {
            let key = match opt.text.as_str() {
                "min_ttl" => keys::peer::min_ttl,
                "max_ttl" => keys::peer::max_ttl,
                _ => {
                    self.nc_security(p, &format!("unknown peer option `{}`", opt.text));
                    return None;
                }
            };
            let Some(n) = args.next().and_then(|v| v.text.parse::<u8>().ok()) else {
                self.nc_security(p, &format!("`{}` needs a value 0..=255", opt.text));
                return None;
            };
            // keepalived's defaults (min 0, max 255) restrict nothing; vipd's range is 1..=255.
            let default = if key == keys::peer::min_ttl {
                n == 0
            } else {
                n == 255
            };
            if !default {
                out.push((key, Val::Int(i64::from(n))));
            }
        }
        Some(out)
    }

    fn auth_hmac(&mut self, n: &Node) -> Option<Val> {
        use keys::auth_hmac as a;
        use keys::hmac_key as k;
        let mut entries: Vec<(Key, Val)> = Vec::new();
        let mut key_list: Vec<Val> = Vec::new();
        for c in self.block(n) {
            match c.name() {
                "mode" | "anti_replay" => {
                    if let Some(t) = self.one(c) {
                        let key = if c.name() == "mode" {
                            a::mode
                        } else {
                            a::anti_replay
                        };
                        entries.push((key, Val::Str(t.text.clone())));
                    }
                }
                "active_key" => {
                    if let Some(v) = self.int(c, 1, 255) {
                        entries.push((a::active_key, Val::Int(v)));
                    }
                }
                "time_window" => {
                    if let Some(d) = self.secs(c) {
                        entries.push((a::time_window, dur(d)));
                    }
                }
                "key" => {
                    let (Some(id), Some(value)) = (c.args.first(), c.args.get(1)) else {
                        self.nc_security(c, "`key` needs an id and a value");
                        continue;
                    };
                    let Ok(id) = id.text.parse::<i64>() else {
                        self.nc_security(c, "the key id is not a number");
                        continue;
                    };
                    let v = match value.text.strip_prefix("file:") {
                        Some(path) => (k::file, Val::Str(path.to_owned())),
                        None => (k::value, Val::Str(value.text.clone())),
                    };
                    key_list.push(Val::Inline(vec![(k::id, Val::Int(id)), v]));
                }
                _ => self.nc_security(c, "unknown auth_hmac keyword"),
            }
        }
        if key_list.is_empty() {
            self.note(
                SecurityLost,
                &n.key,
                "auth_hmac",
                "auth_hmac without keys: keepalived refuses it; converted without authentication",
            );
            return None;
        }
        entries.push((a::keys, Val::Arr(key_list)));
        Some(Val::Inline(entries))
    }
}

/// keepalived's `v3_checksum_as_v2` (VRRPv3 over IPv4 without the pseudo-header) as vipd's
/// `checksum`.
fn checksum_word(as_v2: bool) -> &'static str {
    if as_v2 {
        "without-pseudo-header"
    } else {
        "with-pseudo-header"
    }
}

const SCRIPT_SINGLE: &[&str] = &[
    "script", "interval", "timeout", "rise", "fall", "weight", "user",
];

/// The notify keys of an instance and of a sync group: master, backup, fault, stop, any.
const INSTANCE_NOTIFY: [Key; 5] = {
    use keys::instance as k;
    [
        k::notify_master,
        k::notify_backup,
        k::notify_fault,
        k::notify_stop,
        k::notify,
    ]
};
const GROUP_NOTIFY: [Key; 5] = {
    use keys::sync_group as k;
    [
        k::notify_master,
        k::notify_backup,
        k::notify_fault,
        k::notify_stop,
        k::notify,
    ]
};

/// The vipd key (one of `table`, see [`INSTANCE_NOTIFY`]) of a keepalived notify keyword.
fn notify_key(kw: &str, table: [Key; 5]) -> Key {
    let [master, backup, fault, stop, any] = table;
    match kw {
        "notify_master" => master,
        "notify_backup" => backup,
        "notify_fault" => fault,
        "notify_stop" => stop,
        _ => any,
    }
}

fn round_to(d: Duration, step: Duration) -> Duration {
    let step_ns = step.as_nanos().max(1);
    let n = (d.as_nanos() + step_ns / 2) / step_ns * step_ns;
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

fn global_reason(kw: &str) -> &'static str {
    match kw {
        "notification_email"
        | "notification_email_from"
        | "smtp_server"
        | "smtp_helo_name"
        | "smtp_connect_timeout"
        | "smtp_alert"
        | "smtp_alert_vrrp"
        | "smtp_alert_checker"
        | "email_faults" => "vipd sends no e-mail; send alerts from a notify script",
        _ if kw.starts_with("lvs") || kw.starts_with("checker") || kw.starts_with("bfd") => {
            "LVS/BFD settings: vipd is VRRP only, see docs/migration.md"
        }
        _ if kw.contains("snmp") || kw.contains("dbus") || kw.contains("traps") => {
            "vipd has no SNMP/D-Bus interface; use its logs and `vipctl` (control socket)"
        }
        _ if kw.contains("iptables")
            || kw.contains("ipsets")
            || kw.contains("nftables")
            || kw.starts_with("nf_")
            || kw.starts_with("vrrp_nf_") =>
        {
            "vipd does not manage firewall rules"
        }
        _ if kw.ends_with("_priority")
            || kw.ends_with("_no_swap")
            || kw.contains("rlimit")
            || kw.contains("cpu_affinity")
            || kw.ends_with("_rt_priority") =>
        {
            "process scheduling: set it in vipd's systemd unit instead"
        }
        _ => super::keywords::reason("global_defs", kw).unwrap_or(super::keywords::UNKNOWN),
    }
}

/// The keyword a `virtual_routes` / `virtual_rules` note is filed under.
fn kw_routes(c: &Node) -> &'static str {
    if c.name() == "virtual_routes" {
        "virtual_routes"
    } else {
        "virtual_rules"
    }
}

#[derive(Debug, Clone, Default)]
struct VipDraft {
    addr: String,
    v6: bool,
    at: Token,
    dev: Option<(String, Token)>,
    label: Option<String>,
    scope: Option<String>,
    /// From `virtual_ipaddress_excluded`.
    excluded: bool,
}

/// Everything read from one vrrp_instance, finished once the whole block is known.
#[derive(Debug, Default)]
struct Draft {
    name: String,
    at: Token,
    /// vrid and source_address, in that order.
    t: Table,
    interface: Option<String>,
    master: bool,
    priority: Option<(i64, Token)>,
    advert: Option<(Duration, Token)>,
    nopreempt: Option<Token>,
    preempt_delay: Option<(Duration, Token)>,
    accept: Option<bool>,
    strict: Option<bool>,
    version: Option<(u8, Token)>,
    vips: Vec<VipDraft>,
    /// `no_virtual_ipaddress`.
    no_vips: bool,
    /// `virtual_routes` / `virtual_rules` lines converted.
    routes: Vec<Table>,
    rules: Vec<Table>,
    peers: Vec<Val>,
    /// Peers with TTL limits (`[[instance.unicast_peer]]` entries, as inline tables).
    peer_tables: Vec<Val>,
    auth: Option<(String, Token)>,
    /// `auth_type AH` (the key is `auth`'s password).
    auth_ah: bool,
    /// track_* and notify* keys, in file order.
    tracks: Vec<(Key, Val)>,
    garp: Vec<(Key, Val)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_secs("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_secs("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs(".25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_secs("0.000001"), Some(Duration::from_micros(1)));
        for bad in [
            "",
            ".",
            "1.",
            "-1",
            "1e3",
            "abc",
            "1.2.3",
            "9999999",
            "0.1234567891",
        ] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
        assert_eq!(
            round_to(Duration::from_millis(1500), Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        assert_eq!(
            round_to(Duration::from_millis(14), Duration::from_millis(10)),
            Duration::from_millis(10)
        );
    }
}
