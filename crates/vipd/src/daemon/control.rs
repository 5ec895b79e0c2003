//! The daemon side of the control socket: status snapshots, maintenance, reload and
//! failover drills; plus Prometheus metrics and systemd readiness.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::{Daemon, Inst};
use crate::ctl::server::{self, Access, CtlRequest, SocketFile};
use crate::ctl::{
    self, Command, DrillReport, DrillStep, InstanceStatus, Peer, Response, Status,
    TransitionStatus, VipStatus,
};
use crate::net::netlink::Netlink;
use crate::net::observe::{Event, Observer, Seen};
use vipd_config::{self as config, Global};
use vipd_proto::{self as proto, State};

/// Extra time over the protocol bound before a drill counts the takeover as late.
pub const DRILL_TOLERANCE: Duration = Duration::from_millis(50);

/// Control-plane state of the daemon.
pub struct Control {
    /// Commands from the socket server and the metrics endpoint.
    pub rx: mpsc::Receiver<CtlRequest>,
    tx: mpsc::Sender<CtlRequest>,
    /// The drill in progress.
    pub drill: Option<DrillRun>,
    global: Global,
    pub(super) config_path: PathBuf,
    started: SystemTime,
    _socket: Option<SocketFile>,
    /// Instances the operator put in maintenance (kept in the state file, if any).
    maintained: BTreeSet<String>,
    /// Where the state file lives (`None`: not kept across restarts).
    state_dir: Option<PathBuf>,
    /// The binary this process runs and its arguments (what an upgrade re-executes).
    pub(super) exe: PathBuf,
    pub(super) argv: Vec<std::ffi::OsString>,
    /// The control socket's listening descriptor (a duplicate: handed to the next binary).
    listener: Option<(std::os::fd::OwnedFd, PathBuf)>,
    /// An upgrade waiting for its probe, and where the probe answers.
    pub(super) upgrade: Option<super::upgrade::Pending>,
    pub(super) upgrade_tx: mpsc::Sender<Result<(), String>>,
    pub upgrade_rx: mpsc::Receiver<Result<(), String>>,
    /// The upgrade this binary came from, if it did.
    pub(super) upgraded: Option<ctl::UpgradeStatus>,
    /// Where the metrics endpoint's snapshot is published (`None`: no endpoint).
    metrics: Option<tokio::sync::watch::Sender<Option<std::sync::Arc<Status>>>>,
}

impl Control {
    /// Control state for this configuration (nothing bound yet).
    pub fn new(global: &Global) -> Control {
        let (tx, rx) = mpsc::channel(64);
        let (upgrade_tx, upgrade_rx) = mpsc::channel(1);
        Control {
            rx,
            tx,
            drill: None,
            global: global.clone(),
            config_path: PathBuf::new(),
            started: SystemTime::now(),
            _socket: None,
            maintained: BTreeSet::new(),
            state_dir: super::state::dir(global.state_directory.as_deref()),
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/sbin/vipd")),
            argv: std::env::args_os().collect(),
            listener: None,
            upgrade: None,
            upgrade_tx,
            upgrade_rx,
            upgraded: None,
            metrics: None,
        }
    }

    /// When the first binary of this process started (Unix ms).
    pub(super) fn started_unix_ms(&self) -> u64 {
        unix_ms(self.started)
    }

    /// Upgrades this process has been through.
    pub(super) fn generation(&self) -> u32 {
        self.upgraded.as_ref().map_or(0, |u| u.generation)
    }

    /// The instances in maintenance.
    pub(super) fn maintained(&self) -> Vec<String> {
        self.maintained.iter().cloned().collect()
    }

    /// The control socket's listening descriptor and path, if it is bound.
    pub(super) fn listener_fd(&self) -> Option<(std::os::fd::BorrowedFd<'_>, &std::path::Path)> {
        use std::os::fd::AsFd as _;
        self.listener
            .as_ref()
            .map(|(fd, p)| (fd.as_fd(), p.as_path()))
    }

    /// Takes over what the previous binary of an upgrade handed over: its start time, the
    /// instances in maintenance (besides the state file's), and the upgrade count.
    pub(super) fn continue_from(
        &mut self,
        h: &super::upgrade::State,
        resumed: usize,
        masters: usize,
        fresh: usize,
    ) {
        self.started = UNIX_EPOCH + Duration::from_millis(h.started_unix_ms);
        self.maintained.extend(h.maintenance.iter().cloned());
        self.upgraded = Some(ctl::UpgradeStatus {
            generation: h.generation.saturating_add(1),
            from_version: h.from_version.clone(),
            at_unix_ms: unix_ms(SystemTime::now()),
            resumed,
            masters,
            fresh,
        });
    }

    /// Loads the instances kept in maintenance (at startup); names not in `cfg` are dropped.
    pub fn restore_maintenance(&mut self, cfg: &config::Config) {
        match &self.state_dir {
            Some(dir) => {
                self.maintained = super::state::load(dir);
                self.maintained.retain(|n| cfg.instance(n).is_some());
            }
            None => info!(
                "no state directory (state_directory, or the unit's StateDirectory=): maintenance does not survive a restart"
            ),
        }
    }

    /// Forgets maintenance of instances `cfg` does not have.
    pub(super) fn maintained_only(&mut self, cfg: &config::Config) {
        self.maintained.retain(|n| cfg.instance(n).is_some());
    }

    /// Whether the operator put instance `name` in maintenance.
    pub fn in_maintenance(&self, name: &str) -> bool {
        self.maintained.contains(name)
    }

    /// Records a maintenance change (and writes the state file).
    fn record_maintenance(&mut self, names: &[String], on: bool) {
        for n in names {
            if on {
                self.maintained.insert(n.clone());
            } else {
                self.maintained.remove(n);
            }
        }
        if let Some(dir) = &self.state_dir
            && let Err(e) = super::state::save(dir, &self.maintained)
        {
            warn!(dir = %dir.display(), error = %e,
                  "cannot write the state file: maintenance will not survive a restart");
        }
    }
}

/// A drill in progress.
pub struct DrillRun {
    idx: usize,
    crash: bool,
    t0: Instant,
    started: SystemTime,
    deadline: Instant,
    observer: Observer,
    steps: Vec<DrillStep>,
    new_master: Option<(IpAddr, u8, Instant)>,
    /// The first gratuitous ARP/NA for our VIPs from another host (it may come before the
    /// new master's first advert when that advert is lost, or from an implementation that
    /// announces before it advertises).
    garp: Option<Instant>,
    reply: Option<oneshot::Sender<Response>>,
}

/// What woke a running drill: an observation, or its deadline (`None`).
pub type DrillWake = Option<Event>;

/// Resolves with the drill's next observation or at its deadline; never while no drill runs.
pub async fn drill_wake(drill: Option<&mut DrillRun>) -> DrillWake {
    let Some(d) = drill else {
        return std::future::pending().await;
    };
    let deadline = tokio::time::Instant::from_std(d.deadline);
    tokio::select! {
        ev = d.observer.next() => match ev {
            Some(ev) => Some(ev),
            // The reader stopped (socket error): let the deadline end the drill.
            None => {
                tokio::time::sleep_until(deadline).await;
                None
            }
        },
        () = tokio::time::sleep_until(deadline) => None,
    }
}

/// Tells systemd (when started by it with Type=notify) about our state.
pub fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(states)
    {
        warn!(error = %e, "sd_notify failed");
    }
}

/// RELOADING=1 with the MONOTONIC_USEC systemd wants with it (Type=notify-reload requires it).
pub fn notify_reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(t) => notify_systemd(&[sd_notify::NotifyState::Reloading, t]),
        Err(_) => notify_systemd(&[sd_notify::NotifyState::Reloading]),
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn state_name(s: State) -> String {
    s.to_string()
}

impl<N: Netlink> Daemon<N> {
    /// Binds the control socket (or takes over the one an upgrade handed over) and the
    /// metrics endpoint, then reports readiness to systemd.
    pub async fn serve_control(
        &mut self,
        config_path: PathBuf,
        handed: Option<std::os::fd::OwnedFd>,
    ) -> io::Result<()> {
        self.ctl.config_path = config_path;
        let group = match &self.ctl.global.control_group {
            Some(name) => match nix::unistd::Group::from_name(name) {
                Ok(Some(g)) => Some(g.gid),
                Ok(None) => {
                    warn!(group = %name, "control_group does not exist: only root may use the control socket");
                    None
                }
                Err(e) => return Err(io::Error::other(format!("look up group {name}: {e}"))),
            },
            None => None,
        };
        let access = Access { group };
        let path = self.ctl.global.control_socket.clone();
        // The control socket is for operators; failing over is the job. Without the right
        // to create it (e.g. run as an unprivileged user without its runtime directory),
        // vipd still runs and says so loudly; vipctl cannot reach it then.
        let bound = match handed.map(|fd| server::adopt(fd, &path)) {
            Some(Ok(l)) => {
                info!(socket = %path.display(), "control socket taken over from the previous binary");
                Ok(l)
            }
            Some(Err(e)) => {
                warn!(socket = %path.display(), error = %e, "the handed-over control socket is unusable: binding it afresh");
                server::bind(&path, access)
            }
            None => server::bind(&path, access),
        };
        match bound {
            Ok(listener) => {
                use std::os::fd::AsFd as _;
                self.ctl.listener = listener
                    .as_fd()
                    .try_clone_to_owned()
                    .ok()
                    .map(|fd| (fd, path.clone()));
                self.ctl._socket = Some(SocketFile(path.clone()));
                tokio::spawn(server::serve(listener, access, self.ctl.tx.clone()));
                info!(socket = %path.display(), "control socket ready");
            }
            Err(e) => {
                error!(socket = %path.display(), error = %e,
                       "no control socket (vipctl will not work); running without it: \
                        give vipd a writable directory for it (systemd: RuntimeDirectory=vipd)");
            }
        }
        if let Some(addr) = self.ctl.global.metrics_listen {
            let (tx, rx) = tokio::sync::watch::channel(None);
            ctl::metrics::serve(addr, rx).await?;
            self.ctl.metrics = Some(tx);
        }
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        Ok(())
    }

    /// Handles one control command.
    pub async fn on_control(&mut self, req: CtlRequest) {
        let resp = match req.cmd {
            Command::Status => Response {
                v: ctl::PROTOCOL_VERSION,
                ok: true,
                status: Some(self.status().await),
                ..Response::default()
            },
            Command::Maintenance { instance, on } => self.maintenance(instance.as_deref(), on),
            Command::Reload => self.reload_from_control("vipctl").await,
            Command::Upgrade { binary } => {
                self.upgrade_request(binary, req.reply);
                return;
            }
            Command::ReloadPlan { config, origin } => self.plan(config, origin),
            Command::Drill { instance, crash } => {
                match self.drill_start(instance.as_deref(), crash) {
                    Ok(()) => {
                        if let Some(d) = self.ctl.drill.as_mut() {
                            d.reply = Some(req.reply);
                        }
                        return;
                    }
                    Err(e) => Response::error(e),
                }
            }
        };
        let _ = req.reply.send(resp);
    }

    fn find(&self, name: Option<&str>) -> Result<Vec<usize>, String> {
        match name {
            None => Ok((0..self.insts.len()).collect()),
            Some(n) => self
                .insts
                .iter()
                .position(|i| i.cfg.name == n)
                .map(|i| vec![i])
                .ok_or_else(|| format!("no such instance `{n}`")),
        }
    }

    fn maintenance(&mut self, name: Option<&str>, on: bool) -> Response {
        let idxs = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Response::error(e),
        };
        let now = Instant::now();
        for &idx in &idxs {
            let _ = self.router.set_maintenance(now, self.id_of(idx), on);
            if let Some(i) = self.insts.get(idx) {
                info!(instance = %i.cfg.name, vrid = i.cfg.vrid, on, "maintenance");
            }
        }
        let names: Vec<String> = idxs
            .iter()
            .filter_map(|&i| self.insts.get(i).map(|x| x.cfg.name.clone()))
            .collect();
        self.ctl.record_maintenance(&names, on);
        Response::ok(format!(
            "maintenance {} for {}",
            if on { "on" } else { "off" },
            names.join(", ")
        ))
    }

    /// What a reload would do (`vipctl reload --dry-run`), changing nothing: for `text` (a
    /// file being checked against this daemon) or the daemon's own file.
    fn plan(&self, text: Option<String>, origin: Option<String>) -> Response {
        let loaded = match text {
            Some(t) => {
                let origin = PathBuf::from(origin.unwrap_or_else(|| "vipd.toml".into()));
                config::parse_str(&t, &origin)
            }
            None => config::load(&self.ctl.config_path),
        };
        match loaded {
            Err(d) => Response::error(format!(
                "the configuration is broken; a reload would be refused:\n{d}"
            )),
            Ok(l) => {
                let plan = self.reload_plan(&l.config);
                let moving = plan.iter().filter(|p| p.vip_moves).count();
                Response {
                    v: ctl::PROTOCOL_VERSION,
                    ok: true,
                    message: Some(if moving == 0 {
                        "a reload moves no VIP from this node".into()
                    } else {
                        format!("a reload moves the VIPs of {moving} instance(s) from this node")
                    }),
                    plan: Some(plan),
                    ..Response::default()
                }
            }
        }
    }

    /// Re-reads the configuration file and applies it (SIGHUP and `vipctl reload`).
    /// Reloads the configuration file; `source` says who asked ("SIGHUP", "vipctl"). Every
    /// attempt is logged with its outcome, whoever asked.
    pub async fn reload_from_control(&mut self, source: &str) -> Response {
        let path = self.ctl.config_path.display().to_string();
        info!(source, config = %path, "reloading the configuration");
        match config::load(&self.ctl.config_path) {
            Err(d) => {
                error!(source, config = %path, errors = d.errors().count(),
                       "reload refused: the new configuration is broken; the running one is kept");
                for e in d.errors() {
                    error!(source, file = %e.file.display(), line = e.line, column = e.column, "{}", e.one_line());
                }
                Response::error(format!(
                    "the new configuration is broken; the running one is kept:\n{d}"
                ))
            }
            Ok(loaded) => match self.reload(loaded.config).await {
                Ok(msg) => {
                    self.sync_accept();
                    info!(source, "{msg}");
                    Response::ok(msg)
                }
                Err(e) => {
                    error!(source, error = %e, "reload failed, running configuration kept");
                    Response::error(e)
                }
            },
        }
    }

    /// Publishes the snapshot the metrics endpoint serves (when it is on).
    pub(super) async fn publish_metrics(&mut self) {
        if self.ctl.metrics.is_some() {
            let st = std::sync::Arc::new(self.status().await);
            if let Some(tx) = &self.ctl.metrics {
                tx.send_replace(Some(st));
            }
        }
    }

    /// A status snapshot (VIP presence read from the kernel now).
    pub async fn status(&self) -> Status {
        // The addresses on each device a VIP goes on (other devices looked up by name).
        let mut present: BTreeMap<u32, Vec<(IpAddr, u8)>> = BTreeMap::new();
        let mut devices: BTreeMap<String, u32> = BTreeMap::new();
        for i in &self.insts {
            devices.insert(i.cfg.interface.clone(), i.ifindex);
            if let Some(v) = &i.vmac {
                devices.insert(v.name.clone(), v.index);
            }
            for name in i.cfg.vips.iter().filter_map(|v| v.interface.as_ref()) {
                if !devices.contains_key(name) {
                    let index = match self.nl.link_by_name(name).await {
                        Ok(Some(l)) => l.index,
                        _ => 0,
                    };
                    devices.insert(name.clone(), index);
                }
            }
        }
        for &index in devices.values().filter(|i| **i != 0) {
            if let std::collections::btree_map::Entry::Vacant(e) = present.entry(index) {
                e.insert(self.nl.addrs(index).await.unwrap_or_default());
            }
        }
        let on = |i: &Inst, v: &vipd_config::Vip| -> bool {
            let dev = v
                .interface
                .as_ref()
                .or(i.vmac.as_ref().map(|m| &m.name))
                .unwrap_or(&i.cfg.interface);
            devices
                .get(dev)
                .and_then(|index| present.get(index))
                .is_some_and(|l| l.iter().any(|(a, _)| *a == v.addr))
        };
        let mut instances = Vec::with_capacity(self.insts.len());
        for (idx, i) in self.insts.iter().enumerate() {
            let Some(p) = self.router.instance(i.id) else {
                continue;
            };
            let mut st = instance_status(i, p, |v| on(i, v));
            st.trackers = self.track.status_of(idx);
            instances.push(st);
        }
        let mut interface_drops: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (ifindex, d) in &self.io.iface_drops {
            let e = interface_drops.entry(self.ifname_of(*ifindex)).or_default();
            for (reason, n) in d.nonzero() {
                e.insert(reason.as_str().to_owned(), n);
            }
        }
        Status {
            router_id: self.ctl.global.effective_router_id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            started_unix_ms: unix_ms(self.ctl.started),
            config: self.ctl.config_path.display().to_string(),
            instances,
            interface_drops,
            queue_full_drops: self.queue_full_drops(),
            upgrade: self.ctl.upgraded.clone(),
        }
    }

    fn drill_start(&mut self, name: Option<&str>, crash: bool) -> Result<(), String> {
        if self.ctl.drill.is_some() {
            return Err("a drill is already running".into());
        }
        let idx = match name {
            Some(_) => self.find(name)?.first().copied().unwrap_or(0),
            None => {
                let masters: Vec<usize> = (0..self.insts.len())
                    .filter(|&i| {
                        self.router.instance(self.id_of(i)).map(|x| x.state())
                            == Some(State::Master)
                    })
                    .collect();
                match masters.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(
                            "no instance is master here: run the drill on the master".into()
                        );
                    }
                    _ => return Err("several instances are master here: name one".into()),
                }
            }
        };
        let Some(p) = self.router.instance(self.id_of(idx)) else {
            return Err("no such instance".into());
        };
        if p.state() != State::Master {
            return Err(format!(
                "{} is {} here, not master: run the drill on the master",
                p.config().name,
                p.state()
            ));
        }
        // Watch the wire from this host (our own namespace), before stepping down.
        let observer = Observer::start().map_err(|e| format!("cannot watch the wire: {e}"))?;
        let interval = p.master_advert_interval();
        let deadline =
            proto::master_down_interval(p.config().version, 1, interval) + Duration::from_secs(2);
        let name = p.config().name.clone();
        let t0 = Instant::now();
        let now = t0;
        let r = if crash {
            self.router
                .set_maintenance_silently(now, self.id_of(idx), true)
        } else {
            self.router.set_maintenance(now, self.id_of(idx), true)
        };
        r.map_err(|e| e.to_string())?;
        let what = if crash {
            "went silent (simulated crash: no priority-0 advert), VIPs released"
        } else {
            "stepped down: priority-0 advert sent, VIPs released"
        };
        info!(instance = %name, crash, "failover drill started");
        self.ctl.drill = Some(DrillRun {
            idx,
            crash,
            t0,
            started: SystemTime::now(),
            deadline: t0 + deadline,
            observer,
            steps: vec![DrillStep {
                what: what.into(),
                at_ms: 0.0,
            }],
            new_master: None,
            garp: None,
            reply: None,
        });
        Ok(())
    }

    /// Advances the drill in progress with one observation (or its deadline): notes the new
    /// master's first advert and its gratuitous announcement, finishes (and restores) when
    /// both are seen or at the deadline. Nothing else is kept.
    pub async fn drill_progress(&mut self, wake: DrillWake) {
        let Some(mut d) = self.ctl.drill.take() else {
            return;
        };
        let Some(inst) = self.insts.get(d.idx) else {
            return;
        };
        let vrid = inst.cfg.vrid;
        let own = inst.src;
        let own_mac = inst.mac;
        let t0 = d.t0;
        if let Some(e) = wake.filter(|e| e.at >= t0) {
            match e.what {
                Seen::Advert {
                    src,
                    vrid: v,
                    priority,
                    ..
                } if d.new_master.is_none() && v == vrid && src != own && priority > 0 => {
                    d.steps.push(DrillStep {
                        what: format!("first advert of the new master {src} (priority {priority})"),
                        at_ms: ms(e.at - t0),
                    });
                    d.new_master = Some((src, priority, e.at));
                }
                Seen::Garp { ip, .. }
                    if d.garp.is_none()
                        && e.eth_src != own_mac
                        && inst.vip_addrs.contains(&IpAddr::V4(ip)) =>
                {
                    d.garp = Some(e.at);
                }
                Seen::Na { target, .. }
                    if d.garp.is_none()
                        && e.eth_src != own_mac
                        && inst.vip_addrs.contains(&IpAddr::V6(target)) =>
                {
                    d.garp = Some(e.at);
                }
                _ => {}
            }
        }
        let garp = d.new_master.and(d.garp);
        let now = Instant::now();
        if garp.is_none() && now < d.deadline {
            self.ctl.drill = Some(d);
            return;
        }
        // Done (or timed out): compute the bound, restore, answer.
        let p = self.router.instance(self.id_of(d.idx));
        let interval = p
            .map(|p| p.master_advert_interval())
            .unwrap_or(Duration::from_secs(1));
        let version = p.map(|p| p.config().version).unwrap_or(proto::Version::V3);
        let new_prio = d.new_master.map(|(_, pr, _)| pr).unwrap_or(1);
        let bound = if d.crash {
            proto::master_down_interval(version, new_prio, interval)
        } else {
            proto::skew_time(version, new_prio, interval)
        };
        let mut report = DrillReport {
            instance: self
                .insts
                .get(d.idx)
                .map(|i| i.cfg.name.clone())
                .unwrap_or_default(),
            crash: d.crash,
            started_unix_ms: unix_ms(d.started),
            steps: std::mem::take(&mut d.steps),
            new_master: d.new_master.map(|(a, p, _)| Peer {
                address: a.to_string(),
                priority: p,
            }),
            total_ms: None,
            bound_ms: ms(bound),
            ok: false,
            problem: None,
        };
        match garp {
            Some(at) => {
                let took = at - t0;
                report.steps.push(DrillStep {
                    what: "gratuitous ARP/NA for the VIPs from the new master".into(),
                    at_ms: ms(took),
                });
                report.total_ms = Some(ms(took));
                report.ok = took <= bound + DRILL_TOLERANCE;
                if !report.ok {
                    report.problem = Some(format!(
                        "takeover took {:.1} ms, over the protocol bound {:.1} ms + {} ms",
                        ms(took),
                        ms(bound),
                        DRILL_TOLERANCE.as_millis()
                    ));
                }
            }
            None => {
                report.problem = Some(match d.new_master {
                    None => format!(
                        "no peer advertised as master within {:.0} ms: is a backup running on this VRID?",
                        ms(d.deadline - t0)
                    ),
                    Some(_) => "the new master sent no gratuitous ARP/NA for the VIPs".into(),
                });
            }
        }
        // Restore: leave maintenance (a preempting higher priority takes the VIPs back).
        let _ = if d.crash {
            self.router
                .set_maintenance_silently(Instant::now(), self.id_of(d.idx), false)
        } else {
            self.router
                .set_maintenance(Instant::now(), self.id_of(d.idx), false)
        };
        report.steps.push(DrillStep {
            what: "restored (maintenance off)".into(),
            at_ms: ms(Instant::now() - t0),
        });
        info!(instance = %report.instance, ok = report.ok, total_ms = report.total_ms, bound_ms = report.bound_ms, "failover drill finished");
        if let Some(i) = self.insts.get_mut(d.idx) {
            i.last_drill = Some(report.clone());
        }
        if let Some(reply) = d.reply.take() {
            let _ = reply.send(Response {
                v: ctl::PROTOCOL_VERSION,
                ok: report.ok,
                error: report.problem.clone(),
                drill: Some(report),
                ..Response::default()
            });
        }
    }
}

fn instance_status(
    i: &Inst,
    p: &proto::Instance,
    present: impl Fn(&vipd_config::Vip) -> bool,
) -> InstanceStatus {
    let c = &i.counters;
    let (reason, since) = match i.history.back() {
        Some((t, tr)) => (tr.reason.to_string(), *t),
        None => (String::new(), i.since),
    };
    let announce = i.cfg.announce.as_ref().map(|a| ctl::AnnounceStatus {
        policy: a.policy.as_str().into(),
        announced: i.holding,
        since_unix_ms: unix_ms(i.announce_since.unwrap_or(since)),
        reason: i.announce_reason.clone().unwrap_or_else(|| reason.clone()),
        device: a.device.clone(),
        table: a.table,
    });
    InstanceStatus {
        announce,
        name: i.cfg.name.clone(),
        vrid: i.cfg.vrid,
        interface: i.cfg.interface.clone(),
        version: i.cfg.version.number(),
        state: state_name(p.state()),
        since_unix_ms: unix_ms(since),
        reason,
        base_priority: i.cfg.priority,
        effective_priority: p.effective_priority(),
        priority_adjust: p.priority_adjust(),
        trackers: Vec::new(),
        fault: p.fault().map(|f| f.to_string()),
        maintenance: p.in_maintenance(),
        preempt: i.cfg.preempt,
        preempt_delay_ms: u64::try_from(i.cfg.preempt_delay.as_millis()).unwrap_or(u64::MAX),
        master_since_unix_ms: i.master_since.map(unix_ms),
        source: i.src.to_string(),
        master: match p.state() {
            State::Master => Some(Peer {
                address: i.src.to_string(),
                priority: p.effective_priority(),
            }),
            _ => p.master().map(|(a, pr)| Peer {
                address: a.to_string(),
                priority: pr,
            }),
        },
        advert_interval_ms: u64::try_from(p.advert_interval().as_millis()).unwrap_or(0),
        master_advert_interval_ms: u64::try_from(p.master_advert_interval().as_millis())
            .unwrap_or(0),
        master_down_interval_ms: ms(p.master_down_interval()),
        unicast_peers: i
            .cfg
            .unicast_peers
            .iter()
            .map(ToString::to_string)
            .collect(),
        vips: i
            .cfg
            .vips
            .iter()
            .map(|v| VipStatus {
                address: v.to_string(),
                present: present(v),
                interface: v.interface.clone(),
                excluded: v.excluded,
            })
            .collect(),
        counters: ctl::Counters {
            adverts_sent: c.adverts_sent,
            // Protocol counters are the state machine's own (counted once, in vipd-proto).
            adverts_received: p.stats().adverts_received,
            priority_zero_sent: c.priority_zero_sent,
            priority_zero_received: p.stats().priority_zero_received,
            transitions: c.transitions,
            gratuitous_sent: c.gratuitous_sent,
            vips_restored: c.vips_restored,
            routes_restored: c.routes_restored,
            send_errors: c.send_errors,
            address_list_mismatch: c.address_list_mismatch,
            lower_priority_received: p.stats().lower_priority_received,
            master_changes: c.master_changes,
            became_master: p.stats().became_master,
            drops: c
                .drops
                .nonzero()
                .map(|(r, n)| (r.as_str().to_owned(), n))
                .collect(),
        },
        transitions: i
            .history
            .iter()
            .map(|(t, tr)| TransitionStatus {
                unix_ms: unix_ms(*t),
                from: state_name(tr.from),
                to: state_name(tr.to),
                reason: tr.reason.to_string(),
            })
            .collect(),
        alarms: {
            let (now, wall) = (Instant::now(), SystemTime::now());
            let at = |t: Instant| unix_ms(wall - now.saturating_duration_since(t));
            i.alarms
                .iter()
                .map(|a| ctl::AlarmStatus {
                    kind: a.kind.as_str().to_owned(),
                    peer: a.peer.to_string(),
                    detail: a.detail.clone(),
                    meaning: a.kind.meaning().to_owned(),
                    since_unix_ms: at(a.since),
                    last_unix_ms: at(a.last),
                    count: a.count,
                })
                .collect()
        },
        last_drill: i.last_drill.clone(),
    }
}
