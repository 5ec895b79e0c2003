//! Health tracking: trackers (scripts, HTTP, TCP, files, processes, interfaces) and what they
//! do to the instances that follow them.
//!
//! Split like the rest of vipd:
//! * [`TrackerSet`] is plain state: it takes raw observations ([`TrackerUpdate`]), applies
//!   `rise`/`fall`, and computes each instance's [`Effect`] (priority delta for
//!   `Router::set_priority_adjust`, or a fault for `Router::set_fault`). No I/O, unit-tested.
//! * The runners ([`spawn_runners`]) are tokio tasks (plus one inotify thread) that observe
//!   the world and send [`TrackerUpdate`]s over a bounded channel to the daemon loop. A runner
//!   never blocks the loop: a hung script only delays its own next run.
//!
//! Weight semantics are keepalived's: a tracker with weight `w > 0` adds `w` while up, `w < 0`
//! adds `w` while down, `w = 0` puts the instance in FAULT while down. A file tracker
//! contributes `value * w`; with `w = 0` a non-zero value means FAULT, and a contribution of
//! -254 or less also means FAULT.

pub mod cgroup;
pub mod exec;
pub mod file;
pub mod probe;
pub mod process;

use std::fmt;
use std::path::PathBuf;

use tokio::sync::mpsc;

use vipd_config::{Config, TrackKind};

/// Capacity of the runners → daemon channel.
pub const UPDATE_QUEUE: usize = 1024;
/// Output kept from a script run (the rest is read and discarded).
pub const OUTPUT_CAP: usize = 4096;

/// A raw observation of one tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// One run of a polled check (script, HTTP, TCP) succeeded or failed; `detail` says how.
    Check { ok: bool, detail: String },
    /// The integer now in a tracked file.
    Value(i64),
    /// How many matching processes run now.
    Count(u32),
    /// An interface is up (with carrier) or not.
    Link(bool),
}

/// An observation of tracker `tracker` (an index into the [`TrackerSet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerUpdate {
    pub tracker: usize,
    pub obs: Observation,
}

/// A tracker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No observation yet: contributes nothing.
    Unknown,
    Up,
    Down,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Down => "down",
        })
    }
}

/// What a runner needs to run a tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Script(vipd_config::TrackScript),
    Http(vipd_config::TrackHttp),
    Tcp(vipd_config::TrackTcp),
    File(vipd_config::TrackFile),
    Process(vipd_config::TrackProcess),
    /// An interface by name (fed by the daemon's netlink events).
    Interface(String),
}

#[derive(Debug, Clone)]
struct Tracker {
    name: String,
    kind: TrackKind,
    source: Source,
    rise: u32,
    fall: u32,
    min: u32,
    status: Status,
    ok_run: u32,
    fail_run: u32,
    value: i64,
    count: u32,
    /// What its last observation said (`connect: Connection refused`, `HTTP 503`, ...).
    detail: String,
}

/// A tracker changed state (or, for files, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub tracker: usize,
    pub name: String,
    pub kind: TrackKind,
    pub from: Status,
    pub to: Status,
    /// Files: the new value; processes: the count.
    pub value: Option<i64>,
    /// What the last observation said (script output's first line, HTTP status...).
    pub detail: String,
}

/// What the trackers do to one instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effect {
    /// Sum of the contributions, for `Router::set_priority_adjust`.
    pub delta: i32,
    /// The first (in configuration order) tracker forcing FAULT, with its kind.
    pub fault: Option<(TrackKind, String)>,
}

/// What one tracker has observed so far, carried to the trackers of a reloaded
/// configuration (and across an upgrade) so that a tracker that stays does not start over
/// from "unknown" (which would drop its weight from the priority until its first result).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackerState {
    /// Its kind (`script`, `http`...).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: Status,
    /// Consecutive successes and failures of a polled check.
    pub ok_run: u32,
    pub fail_run: u32,
    /// Last value (files) and count (processes).
    pub value: i64,
    pub count: u32,
}

/// Every tracker some instance follows, and who follows what.
#[derive(Debug, Clone, Default)]
pub struct TrackerSet {
    trackers: Vec<Tracker>,
    /// Per instance (config order): (tracker index, effective weight).
    refs: Vec<Vec<(usize, i32)>>,
}

impl TrackerSet {
    /// The trackers referenced by `cfg`'s instances (unreferenced ones are not run), with
    /// interfaces de-duplicated by name.
    pub fn from_config(cfg: &Config) -> TrackerSet {
        let mut set = TrackerSet::default();
        for inst in &cfg.instances {
            let mut refs = Vec::new();
            for r in &inst.track {
                let idx = match set
                    .trackers
                    .iter()
                    .position(|t| t.kind == r.kind && t.name == r.name)
                {
                    Some(i) => Some(i),
                    None => lookup(cfg, r.kind, &r.name).map(|(source, rise, fall, min)| {
                        set.trackers.push(Tracker {
                            name: r.name.clone(),
                            kind: r.kind,
                            source,
                            rise,
                            fall,
                            min,
                            status: Status::Unknown,
                            ok_run: 0,
                            fail_run: 0,
                            value: 0,
                            count: 0,
                            detail: String::new(),
                        });
                        set.trackers.len() - 1
                    }),
                };
                if let Some(i) = idx {
                    refs.push((i, r.weight));
                }
            }
            set.refs.push(refs);
        }
        set
    }

    /// What every tracker has observed so far (see [`TrackerState`]).
    pub fn states(&self) -> Vec<TrackerState> {
        self.trackers
            .iter()
            .map(|t| TrackerState {
                kind: t.kind.as_str().to_owned(),
                name: t.name.clone(),
                status: t.status,
                ok_run: t.ok_run,
                fail_run: t.fail_run,
                value: t.value,
                count: t.count,
            })
            .collect()
    }

    /// Takes over what `states` observed for each tracker of the same kind and name (the
    /// others start unknown, as at startup). Returns how many were carried.
    pub fn restore(&mut self, states: &[TrackerState]) -> usize {
        let mut carried = 0;
        for t in &mut self.trackers {
            if let Some(o) = states
                .iter()
                .find(|o| o.kind == t.kind.as_str() && o.name == t.name)
            {
                t.status = o.status;
                t.ok_run = o.ok_run;
                t.fail_run = o.fail_run;
                t.value = o.value;
                t.count = o.count;
                carried += 1;
            }
        }
        carried
    }

    /// Whether every tracker has had an observation.
    pub fn all_known(&self) -> bool {
        self.trackers.iter().all(|t| t.status != Status::Unknown)
    }

    /// The names of the trackers without an observation yet.
    pub fn unknown(&self) -> Vec<String> {
        self.trackers
            .iter()
            .filter(|t| t.status == Status::Unknown)
            .map(|t| format!("{} {}", t.kind.as_str(), t.name))
            .collect()
    }

    /// Number of trackers.
    pub fn len(&self) -> usize {
        self.trackers.len()
    }

    /// True when no instance follows any tracker.
    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }

    /// Name of tracker `idx`.
    pub fn name(&self, idx: usize) -> Option<&str> {
        self.trackers.get(idx).map(|t| t.name.as_str())
    }

    /// Kind of tracker `idx`.
    pub fn kind(&self, idx: usize) -> Option<TrackKind> {
        self.trackers.get(idx).map(|t| t.kind)
    }

    /// Status of tracker `idx`.
    pub fn status(&self, idx: usize) -> Option<Status> {
        self.trackers.get(idx).map(|t| t.status)
    }

    /// What runs tracker `idx`.
    pub fn source(&self, idx: usize) -> Option<&Source> {
        self.trackers.get(idx).map(|t| &t.source)
    }

    /// Index of the interface tracker for `ifname`.
    pub fn interface(&self, ifname: &str) -> Option<usize> {
        self.trackers
            .iter()
            .position(|t| t.kind == TrackKind::Interface && t.name == ifname)
    }

    /// Names of the tracked interfaces, with their tracker index.
    pub fn interfaces(&self) -> impl Iterator<Item = (usize, &str)> {
        self.trackers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind == TrackKind::Interface)
            .map(|(i, t)| (i, t.name.as_str()))
    }

    /// Instances following tracker `idx`.
    pub fn followers(&self, idx: usize) -> Vec<usize> {
        self.refs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.iter().any(|&(t, _)| t == idx))
            .map(|(i, _)| i)
            .collect()
    }

    /// Applies an observation; returns the change if the tracker's status (or a file's value)
    /// changed.
    ///
    /// Polled checks: the first result decides at once; afterwards `rise` consecutive
    /// successes bring a down tracker up and `fall` consecutive failures bring an up tracker
    /// down. Files, process counts and links apply at once.
    pub fn apply(&mut self, u: &TrackerUpdate) -> Option<Change> {
        let t = self.trackers.get_mut(u.tracker)?;
        let from = t.status;
        let old_value = t.value;
        let mut detail = String::new();
        match &u.obs {
            Observation::Check { ok, detail: d } => {
                detail.clone_from(d);
                if *ok {
                    t.ok_run = t.ok_run.saturating_add(1);
                    t.fail_run = 0;
                } else {
                    t.fail_run = t.fail_run.saturating_add(1);
                    t.ok_run = 0;
                }
                t.status = match (t.status, ok) {
                    (Status::Unknown, true) => Status::Up,
                    (Status::Unknown, false) => Status::Down,
                    (Status::Down, true) if t.ok_run >= t.rise => Status::Up,
                    (Status::Up, false) if t.fail_run >= t.fall => Status::Down,
                    (s, _) => s,
                };
            }
            Observation::Value(v) => {
                t.value = *v;
                t.status = if *v == 0 { Status::Up } else { Status::Down };
                detail = format!("value {v}");
                t.detail.clone_from(&detail);
                if from != Status::Unknown && old_value != *v {
                    return Some(Change {
                        tracker: u.tracker,
                        name: t.name.clone(),
                        kind: t.kind,
                        from,
                        to: t.status,
                        value: Some(*v),
                        detail,
                    });
                }
            }
            Observation::Count(n) => {
                t.count = *n;
                let (good, max) = match &t.source {
                    Source::Process(p) => (p.good(*n), p.max),
                    _ => (*n >= t.min, None),
                };
                t.status = if good { Status::Up } else { Status::Down };
                detail = match max {
                    Some(m) => format!("{n} running (min {}, max {m})", t.min),
                    None => format!("{n} running (min {})", t.min),
                };
            }
            Observation::Link(up) => {
                t.status = if *up { Status::Up } else { Status::Down };
                detail = if *up { "link up" } else { "link down" }.to_string();
            }
        }
        t.detail.clone_from(&detail);
        if t.status == from {
            return None;
        }
        let value = match t.kind {
            TrackKind::File => Some(t.value),
            TrackKind::Process => Some(i64::from(t.count)),
            _ => None,
        };
        Some(Change {
            tracker: u.tracker,
            name: t.name.clone(),
            kind: t.kind,
            from,
            to: t.status,
            value,
            detail,
        })
    }

    /// The effect of the trackers on instance `inst`.
    pub fn effect(&self, inst: usize) -> Effect {
        let mut delta: i64 = 0;
        let mut fault = None;
        for c in self.contributions(inst) {
            delta = delta.saturating_add(c.contribution);
            if c.faults && fault.is_none() {
                fault = Some((c.kind, c.name.to_owned()));
            }
        }
        Effect {
            delta: i32::try_from(delta.clamp(-100_000, 100_000)).unwrap_or(0),
            fault,
        }
    }

    /// Each tracker instance `inst` follows, with what it does to it now (configuration
    /// order).
    pub fn contributions(&self, inst: usize) -> Vec<Contribution<'_>> {
        let refs = self.refs.get(inst).map(Vec::as_slice).unwrap_or(&[]);
        refs.iter()
            .filter_map(|&(ti, w)| {
                let t = self.trackers.get(ti)?;
                let (contribution, faults) = contribution(t, w);
                Some(Contribution {
                    name: &t.name,
                    kind: t.kind,
                    status: t.status,
                    weight: w,
                    contribution,
                    faults,
                    detail: &t.detail,
                })
            })
            .collect()
    }
}

/// One tracker's effect on one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution<'a> {
    /// Tracker name.
    pub name: &'a str,
    /// Tracker kind.
    pub kind: TrackKind,
    /// Its state.
    pub status: Status,
    /// The weight this instance gives it.
    pub weight: i32,
    /// What it adds to the priority now.
    pub contribution: i64,
    /// Whether it holds the instance in FAULT now.
    pub faults: bool,
    /// What its last observation said.
    pub detail: &'a str,
}

/// keepalived's weight rules: > 0 added while up, < 0 added while down, 0 = FAULT while
/// down; files: value x weight (FAULT at -254 or below, or any non-zero value with weight 0).
fn contribution(t: &Tracker, w: i32) -> (i64, bool) {
    if t.status == Status::Unknown {
        return (0, false);
    }
    if t.kind == TrackKind::File {
        if w == 0 {
            return (0, t.value != 0);
        }
        let c = t.value.saturating_mul(i64::from(w));
        return if c <= -254 { (0, true) } else { (c, false) };
    }
    match (t.status, w) {
        (Status::Up, w) if w > 0 => (i64::from(w), false),
        (Status::Down, w) if w < 0 => (i64::from(w), false),
        (Status::Down, 0) => (0, true),
        _ => (0, false),
    }
}

/// (source, rise, fall, min) of a named tracker.
fn lookup(cfg: &Config, kind: TrackKind, name: &str) -> Option<(Source, u32, u32, u32)> {
    match kind {
        TrackKind::Script => cfg
            .track_scripts
            .iter()
            .find(|t| t.name == name)
            .map(|t| (Source::Script(t.clone()), t.probe.rise, t.probe.fall, 1)),
        TrackKind::Http => cfg
            .track_http
            .iter()
            .find(|t| t.name == name)
            .map(|t| (Source::Http(t.clone()), t.probe.rise, t.probe.fall, 1)),
        TrackKind::Tcp => cfg
            .track_tcp
            .iter()
            .find(|t| t.name == name)
            .map(|t| (Source::Tcp(t.clone()), t.probe.rise, t.probe.fall, 1)),
        TrackKind::File => cfg
            .track_files
            .iter()
            .find(|t| t.name == name)
            .map(|t| (Source::File(t.clone()), 1, 1, 1)),
        TrackKind::Process => cfg
            .track_processes
            .iter()
            .find(|t| t.name == name)
            .map(|t| (Source::Process(t.clone()), 1, 1, t.min)),
        TrackKind::Interface => Some((Source::Interface(name.to_string()), 1, 1, 1)),
    }
}

/// Starts a runner for every tracker of `set` except interfaces (the daemon feeds those).
/// Scripts run as their `user` or `script_user` (see [`exec::RunAs`]).
pub fn spawn_runners(
    set: &TrackerSet,
    cfg: &Config,
    tx: &mpsc::Sender<TrackerUpdate>,
) -> std::io::Result<()> {
    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    let mut procs: Vec<(usize, vipd_config::TrackProcess)> = Vec::new();
    for idx in 0..set.len() {
        let Some(source) = set.source(idx) else {
            continue;
        };
        match source {
            Source::Script(s) => {
                let user = s.user.as_deref().unwrap_or(&cfg.global.script_user);
                let run_as = exec::RunAs::resolve(user)?;
                tokio::spawn(probe::script_loop(idx, s.clone(), run_as, tx.clone()));
            }
            Source::Http(h) => {
                tokio::spawn(probe::http_loop(idx, h.clone(), tx.clone()));
            }
            Source::Tcp(t) => {
                tokio::spawn(probe::tcp_loop(idx, t.clone(), tx.clone()));
            }
            Source::File(f) => {
                file::init(f);
                files.push((idx, f.path.clone()));
            }
            Source::Process(p) => procs.push((idx, p.clone())),
            Source::Interface(_) => {}
        }
    }
    if !files.is_empty() {
        file::spawn_watcher(files, tx.clone())?;
    }
    if !procs.is_empty() {
        tokio::spawn(process::watch(procs, tx.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        match vipd_config::parse_str(text, Path::new("t.toml")) {
            Ok(l) => l.config,
            Err(d) => panic!("{d}"),
        }
    }

    const BASE: &str = r#"
[global]
enable_script_security = false

[[track_script]]
name = "chk"
command = ["/bin/true"]
rise = 2
fall = 3
weight = -20

[[track_script]]
name = "zero"
command = ["/bin/true"]

[[track_file]]
name = "f"
path = "/run/vipd-test-weight"
weight = -10

[[track_process]]
name = "p"
process = "haproxy"
min = 2
weight = 15

[[instance]]
name = "A"
interface = "eth0"
vrid = 1
vips = ["10.0.0.1/24"]
track_scripts = ["chk", "zero"]
track_files = ["f"]
track_processes = ["p"]
track_interfaces = [{ name = "eth1", weight = -5 }]

[[instance]]
name = "B"
interface = "eth0"
vrid = 2
vips = ["10.0.0.2/24"]
track_scripts = [{ name = "chk", weight = 30 }]
track_interfaces = ["eth1"]
"#;

    fn check(t: usize, ok: bool) -> TrackerUpdate {
        TrackerUpdate {
            tracker: t,
            obs: Observation::Check {
                ok,
                detail: String::new(),
            },
        }
    }

    #[test]
    fn builds_shared_trackers() {
        let set = TrackerSet::from_config(&cfg(BASE));
        // chk, zero, f, p, eth1 — chk and eth1 shared by A and B.
        assert_eq!(set.len(), 5);
        let chk = (0..set.len())
            .find(|&i| set.name(i) == Some("chk"))
            .unwrap();
        assert_eq!(set.followers(chk), vec![0, 1]);
        assert_eq!(
            set.interface("eth1").map(|i| set.followers(i)),
            Some(vec![0, 1])
        );
        assert!(
            set.effect(0) == Effect::default(),
            "unknown trackers do nothing"
        );
    }

    #[test]
    fn rise_and_fall() {
        let mut set = TrackerSet::from_config(&cfg(BASE));
        // First result decides at once.
        let c = set.apply(&check(0, true)).unwrap();
        assert_eq!((c.from, c.to), (Status::Unknown, Status::Up));
        // fall = 3: two failures keep it up, the third takes it down.
        assert_eq!(set.apply(&check(0, false)), None);
        assert_eq!(set.apply(&check(0, false)), None);
        let c = set.apply(&check(0, false)).unwrap();
        assert_eq!((c.from, c.to), (Status::Up, Status::Down));
        // rise = 2; a failure in between resets the streak.
        assert_eq!(set.apply(&check(0, true)), None);
        assert_eq!(set.apply(&check(0, false)), None);
        assert_eq!(set.apply(&check(0, true)), None);
        assert!(set.apply(&check(0, true)).is_some());
        assert_eq!(set.status(0), Some(Status::Up));
    }

    #[test]
    fn a_reloaded_tracker_carries_its_state() {
        let mut old = TrackerSet::from_config(&cfg(BASE));
        old.apply(&check(0, true));
        old.apply(&check(0, false));
        assert_eq!(old.effect(1).delta, 30);
        // The reloaded configuration changes chk's rise and drops `zero`.
        let text = BASE.replace("rise = 2", "rise = 5").replace(
            "track_scripts = [\"chk\", \"zero\"]",
            "track_scripts = [\"chk\"]",
        );
        let mut new = TrackerSet::from_config(&cfg(&text));
        assert_eq!(new.effect(1).delta, 0, "a fresh set knows nothing");
        assert_eq!(new.restore(&old.states()), new.len());
        assert_eq!(new.effect(1).delta, 30, "chk is still up for B");
        // Its failure streak goes on: two more failures make three (fall = 3).
        let chk = (0..new.len())
            .find(|&i| new.name(i) == Some("chk"))
            .unwrap();
        assert_eq!(new.apply(&check(chk, false)), None);
        assert!(new.apply(&check(chk, false)).is_some());
        // Serialized as an upgrade hands it over.
        let json = serde_json::to_string(&old.states()).unwrap();
        let back: Vec<TrackerState> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, old.states());
    }

    #[test]
    fn weights_keepalived_semantics() {
        let mut set = TrackerSet::from_config(&cfg(BASE));
        set.apply(&check(0, true));
        set.apply(&check(1, true));
        // chk up: A (-20) gets nothing, B (+30) gets 30.
        assert_eq!(set.effect(0).delta, 0);
        assert_eq!(set.effect(1).delta, 30);
        set.apply(&check(0, false));
        set.apply(&check(0, false));
        set.apply(&check(0, false));
        assert_eq!(set.effect(0).delta, -20);
        assert_eq!(set.effect(1).delta, 0);
        // weight 0 down: FAULT, named.
        set.apply(&check(1, false));
        assert_eq!(
            set.effect(0).fault,
            Some((TrackKind::Script, "zero".to_string()))
        );
        assert_eq!(set.effect(1).fault, None);
    }

    #[test]
    fn file_value_times_weight() {
        let mut set = TrackerSet::from_config(&cfg(BASE));
        let f = 2;
        assert_eq!(set.name(f), Some("f"));
        set.apply(&TrackerUpdate {
            tracker: f,
            obs: Observation::Value(3),
        });
        assert_eq!(set.effect(0).delta, -30);
        let c = set
            .apply(&TrackerUpdate {
                tracker: f,
                obs: Observation::Value(-2),
            })
            .unwrap();
        assert_eq!(c.value, Some(-2));
        assert_eq!(set.effect(0).delta, 20);
        // value * weight <= -254: FAULT.
        set.apply(&TrackerUpdate {
            tracker: f,
            obs: Observation::Value(26),
        });
        assert_eq!(set.effect(0).fault, Some((TrackKind::File, "f".into())));
        // A repeated value is no change.
        assert!(
            set.apply(&TrackerUpdate {
                tracker: f,
                obs: Observation::Value(26),
            })
            .is_none()
        );
    }

    #[test]
    fn file_weight_zero_faults_on_nonzero() {
        let text = BASE.replace("weight = -10", "weight = 0");
        let mut set = TrackerSet::from_config(&cfg(&text));
        set.apply(&TrackerUpdate {
            tracker: 2,
            obs: Observation::Value(0),
        });
        assert_eq!(set.effect(0).fault, None);
        set.apply(&TrackerUpdate {
            tracker: 2,
            obs: Observation::Value(1),
        });
        assert_eq!(set.effect(0).fault, Some((TrackKind::File, "f".into())));
    }

    #[test]
    fn process_min_and_interfaces() {
        let mut set = TrackerSet::from_config(&cfg(BASE));
        let p = 3;
        set.apply(&TrackerUpdate {
            tracker: p,
            obs: Observation::Count(1),
        });
        assert_eq!(set.status(p), Some(Status::Down));
        assert_eq!(set.effect(0).delta, 0);
        let c = set
            .apply(&TrackerUpdate {
                tracker: p,
                obs: Observation::Count(2),
            })
            .unwrap();
        assert_eq!(c.value, Some(2));
        assert_eq!(set.effect(0).delta, 15);
        let eth1 = set.interface("eth1").unwrap();
        set.apply(&TrackerUpdate {
            tracker: eth1,
            obs: Observation::Link(false),
        });
        assert_eq!(set.effect(0).delta, 10);
        assert_eq!(
            set.effect(1).fault,
            Some((TrackKind::Interface, "eth1".into()))
        );
    }
}
