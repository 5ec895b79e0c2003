//! Upgrade and restart without failover: the running vipd re-executes a (new) binary in its
//! own process and hands it what it is doing, so a master keeps its VIPs and goes on
//! advertising on schedule, and no backup ever notices.
//!
//! `vipctl upgrade` (the Debian package's postinst runs it) asks the daemon to:
//! 1. check the target (default: the binary vipd was started from, which the package has
//!    just replaced): a regular, executable file that only its owner may write;
//! 2. run `TARGET --upgrade-probe --config FILE` beside itself (the loop keeps running): the
//!    new binary must load the configuration and accept this handover format;
//! 3. write the state ([`State`]: per instance its protocol state with each timer as the
//!    time left, the trackers' observations, maintenance, and which descriptor is which
//!    socket) into a pipe, clear close-on-exec on the pipe, the VRRP sockets and the control
//!    socket, tell systemd RELOADING=1, and `execve` the target with the same arguments plus
//!    `--handover-fd N`. The PID stays, so systemd's main PID and the unit stay.
//!
//! The new binary ([`receive`]) reads and checks the state, adopts the sockets (the
//! adverts that arrived meanwhile wait in them) and resumes each instance that is still the
//! same virtual router; everything else starts as after a normal start. It then says
//! READY=1. A state that is corrupt, truncated, of another format, for another process or
//! stale is ignored with a warning: a normal start as backup, never a wrong resume.
//!
//! If anything fails before the `execve` (target missing or not executable, probe failed,
//! state too large) or the `execve` itself fails, nothing was handed over and the old
//! binary keeps running; the failure is logged and returned to vipctl.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::io::{self, Read as _, Write as _};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::{Daemon, Sock};
use crate::net::netlink::Netlink;
use crate::track::TrackerState;
use vipd_config as config;
use vipd_proto::Snapshot;

/// The handover format this binary writes and reads. A binary that cannot read the running
/// one's format says so in its probe, and the upgrade is refused (use a restart).
pub const FORMAT: u32 = 1;
/// The flag that gives the next binary the descriptor of the state.
pub const HANDOVER_FLAG: &str = "--handover-fd";
/// The flag with which the running binary asks the next one whether it can take over.
pub const PROBE_FLAG: &str = "--upgrade-probe";
/// What the probe prints, followed by the formats it reads.
pub const PROBE_ANSWER: &str = "handover-formats:";
/// Largest state read (a thousand instances take well under 1 MiB).
const MAX_STATE: u64 = 8 << 20;
/// Pipe capacity asked for (the state must fit: it is written before the `execve`).
const PIPE_SIZE: i32 = 1 << 20;
/// A state older than this is stale (an upgrade takes milliseconds).
const MAX_AGE: Duration = Duration::from_secs(30);
/// Longest the probe of the new binary may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// What one vipd hands to the next binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// [`FORMAT`].
    pub format: u32,
    /// The version of the binary that wrote it.
    pub from_version: String,
    /// The process it was written for (an `execve` keeps the PID).
    pub pid: u32,
    /// `CLOCK_MONOTONIC` when it was taken, in nanoseconds (timers count on from there).
    pub taken_mono_ns: u64,
    /// When the first binary of this process started (Unix ms), for status.
    pub started_unix_ms: u64,
    /// Upgrades this process has been through before this one.
    pub generation: u32,
    /// The running instances.
    pub instances: Vec<HandedInstance>,
    /// What the trackers have observed.
    pub trackers: Vec<TrackerState>,
    /// Instances in maintenance.
    pub maintenance: Vec<String>,
    /// The VRRP sockets.
    pub sockets: Vec<HandedSocket>,
    /// The control socket's listening descriptor and path.
    pub control: Option<(i32, PathBuf)>,
}

impl HandedInstance {
    /// Where its VIPs were: as handed, or (from a binary that did not say) all on the
    /// instance's interface `own` (index, MAC).
    pub fn placed_on(&self, own: (u32, [u8; 6])) -> Vec<super::held::Placed> {
        if !self.placed.is_empty() {
            return self.placed.clone();
        }
        self.vips
            .iter()
            .map(|&(addr, prefix_len)| super::held::Placed {
                addr,
                prefix_len,
                ifindex: own.0,
                mac: own.1,
            })
            .collect()
    }
}

/// One instance as the previous binary ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandedInstance {
    /// Its name.
    pub name: String,
    /// What makes it this virtual router: interface, VRID, version, family, source, peers.
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub v6: bool,
    pub src: IpAddr,
    pub peers: Vec<IpAddr>,
    /// Whether it held its VIPs, and which (address, prefix length).
    pub holding: bool,
    pub vips: Vec<(IpAddr, u8)>,
    /// Where each held VIP is (absent from older binaries: then all on `interface`).
    #[serde(default)]
    pub placed: Vec<super::held::Placed>,
    /// Its protocol state (None: it was in FAULT or not running; it just starts).
    pub snapshot: Option<Snapshot>,
    /// Its counters, and since when it is in its state (Unix ms).
    #[serde(default)]
    pub counters: vipd_proto::counters::Counters,
    #[serde(default)]
    pub since_unix_ms: u64,
    /// Its raised alarms.
    #[serde(default)]
    pub alarms: Vec<HandedAlarm>,
}

/// A raised alarm, its times as milliseconds before the state was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandedAlarm {
    pub kind: String,
    pub peer: IpAddr,
    pub detail: String,
    pub since_ago_ms: u64,
    pub last_ago_ms: u64,
    pub count: u64,
}

impl HandedAlarm {
    pub fn of(a: &vipd_proto::alarms::Alarm, now: Instant) -> HandedAlarm {
        let ago =
            |t: Instant| u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(0);
        HandedAlarm {
            kind: a.kind.as_str().to_owned(),
            peer: a.peer,
            detail: a.detail.clone(),
            since_ago_ms: ago(a.since),
            last_ago_ms: ago(a.last),
            count: a.count,
        }
    }

    /// The alarm again, `ago` after the state was taken (unknown kinds: none; times that
    /// would lie before the process's clock began: now).
    pub fn alarm(&self, now: Instant, ago: Duration) -> Option<vipd_proto::alarms::Alarm> {
        let at = |ms: u64| {
            now.checked_sub(ago.saturating_add(Duration::from_millis(ms)))
                .unwrap_or(now)
        };
        Some(vipd_proto::alarms::Alarm {
            kind: vipd_proto::alarms::AlarmKind::parse(&self.kind)?,
            peer: self.peer,
            detail: self.detail.chars().take(200).collect(),
            since: at(self.since_ago_ms),
            last: at(self.last_ago_ms),
            count: self.count,
        })
    }
}

/// One VRRP socket: its descriptor and what it is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandedSocket {
    pub fd: i32,
    pub ifindex: u32,
    pub v6: bool,
    pub src: IpAddr,
}

/// A handover received by this binary: the checked state and the descriptors it names.
#[derive(Debug)]
pub struct Handover {
    pub state: State,
    /// How long ago the state was taken.
    pub ago: Duration,
    fds: HashMap<i32, OwnedFd>,
}

fn sorted(p: &[IpAddr]) -> Vec<IpAddr> {
    let mut v = p.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

impl Handover {
    /// The descriptor handed over as `raw`, once.
    pub fn take_fd(&mut self, raw: i32) -> Option<OwnedFd> {
        self.fds.remove(&raw)
    }

    /// The handed instance `c` continues: same name and the same virtual router (interface,
    /// VRID, version, family, peer set). The source address is checked once it is known.
    pub fn instance(&self, c: &config::Instance) -> Option<&HandedInstance> {
        self.state.instances.iter().find(|h| {
            h.name == c.name
                && h.interface == c.interface
                && h.vrid == c.vrid
                && h.version == c.version.number()
                && h.v6 == (c.family == vipd_wire::Family::Ipv6)
                && sorted(&h.peers) == sorted(&c.unicast_peers)
        })
    }

    /// The VRRP socket handed over for (interface, family, source), once.
    pub fn socket(&mut self, ifindex: u32, v6: bool, src: IpAddr) -> Option<OwnedFd> {
        let fd = self
            .state
            .sockets
            .iter()
            .find(|s| s.ifindex == ifindex && s.v6 == v6 && s.src == src)?
            .fd;
        self.take_fd(fd)
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock both binaries of an upgrade share (std's
/// `Instant` is opaque, but is this clock on Linux).
fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec())
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::try_from(t.tv_nsec()).unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Reads and checks the state handed over on descriptor `raw` (`--handover-fd`), adopting
/// the descriptors it names. `None`, with a warning, if it cannot be trusted: then vipd
/// starts normally.
pub fn receive(raw: i32) -> Option<Handover> {
    let ignored = |why: String| {
        warn!("upgrade: the handed-over state is ignored ({why}): starting normally, as backup");
        None
    };
    let fd = match crate::sys::adopt_fd(raw) {
        Ok(fd) => fd,
        Err(e) => return ignored(format!("descriptor {raw}: {e}")),
    };
    match nix::sys::stat::fstat(&fd) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFIFO => {}
        Ok(_) => return ignored(format!("descriptor {raw} is not a pipe")),
        Err(e) => return ignored(format!("descriptor {raw}: {e}")),
    }
    let mut text = Vec::new();
    if let Err(e) = std::fs::File::from(fd)
        .take(MAX_STATE + 1)
        .read_to_end(&mut text)
    {
        return ignored(format!("read: {e}"));
    }
    if text.len() as u64 > MAX_STATE {
        return ignored(format!("larger than {MAX_STATE} bytes"));
    }
    let state = match parse(&text) {
        Ok(s) => s,
        Err(why) => return ignored(why),
    };
    let now = monotonic_ns();
    let ago = Duration::from_nanos(now.saturating_sub(state.taken_mono_ns));
    if state.taken_mono_ns > now || ago > MAX_AGE {
        return ignored(format!("taken {} ms ago: stale", ago.as_millis()));
    }
    let mut fds = HashMap::new();
    let named = state
        .sockets
        .iter()
        .map(|s| s.fd)
        .chain(state.control.iter().map(|(fd, _)| *fd));
    for n in named {
        if fds.contains_key(&n) {
            continue;
        }
        match crate::sys::adopt_fd(n) {
            Ok(fd) => {
                let _ = set_cloexec(fd.as_fd(), true);
                fds.insert(n, fd);
            }
            Err(e) => warn!(
                "upgrade: handed-over descriptor {n} is unusable ({e}): that socket is opened afresh"
            ),
        }
    }
    Some(Handover { state, ago, fds })
}

/// Parses and checks a state: its format and that it is for this process.
pub fn parse(text: &[u8]) -> Result<State, String> {
    // The format first, so that another version's state says so rather than "invalid".
    let v: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("corrupt or truncated: {e}"))?;
    let format = v.get("format").and_then(serde_json::Value::as_u64);
    if format != Some(u64::from(FORMAT)) {
        return Err(format!(
            "format {} from another vipd version (this one reads {FORMAT})",
            format.map_or_else(|| "missing".to_string(), |f| f.to_string())
        ));
    }
    let state: State = serde_json::from_value(v).map_err(|e| format!("corrupt: {e}"))?;
    if state.pid != std::process::id() {
        return Err(format!(
            "written for process {}, this is {}",
            state.pid,
            std::process::id()
        ));
    }
    Ok(state)
}

fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags))
        .map(|_| ())
        .map_err(io::Error::from)
}

/// Refuses a re-exec target before anything is handed over: it must be a regular,
/// executable file that nobody but its owner may write (vipd runs it with its
/// capabilities), and owned by root when vipd runs as root.
pub fn check_target(path: &Path) -> Result<(), String> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!("{shown}: the binary must be an absolute path"));
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(format!("{shown} is not executable"));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{shown} may be written by its group or others (mode {:o}): refusing to run it",
            mode & 0o7777
        ));
    }
    if nix::unistd::geteuid().is_root() && meta.uid() != 0 {
        return Err(format!("{shown} is not owned by root"));
    }
    Ok(())
}

/// Asks `target` whether it can take over: `TARGET --upgrade-probe --config CONFIG` must
/// load the configuration and list [`FORMAT`] among the formats it reads.
pub async fn probe(target: &Path, config: &Path) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(target);
    cmd.arg(PROBE_FLAG)
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    crate::sys::clear_ambient_caps(&mut cmd);
    let out = tokio::time::timeout(PROBE_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            format!(
                "{} {PROBE_FLAG} did not answer within {} s",
                target.display(),
                PROBE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("cannot run {}: {e}", target.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "the new binary cannot run this configuration ({}): {}",
            out.status,
            stderr.trim()
        ));
    }
    let formats: Vec<u32> = stdout
        .lines()
        .find_map(|l| l.strip_prefix(PROBE_ANSWER))
        .map(|f| f.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    if formats.contains(&FORMAT) {
        Ok(())
    } else {
        Err(format!(
            "the new binary cannot take over this one's state (it reads formats {formats:?}, this one writes {FORMAT}): use `systemctl restart vipd` (the VIPs of this node move to a peer and back)"
        ))
    }
}

/// The next binary's arguments: ours without a previous `--handover-fd`, plus the new one.
fn next_argv(target: &Path, args: &[OsString], fd: i32) -> Result<Vec<CString>, String> {
    let mut out = vec![CString::new(target.as_os_str().as_bytes()).map_err(|e| e.to_string())?];
    let mut skip = false;
    for a in args.iter().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        let b = a.as_bytes();
        if b == HANDOVER_FLAG.as_bytes() {
            skip = true;
            continue;
        }
        if b.starts_with(format!("{HANDOVER_FLAG}=").as_bytes()) {
            continue;
        }
        out.push(CString::new(b).map_err(|e| e.to_string())?);
    }
    out.push(CString::new(HANDOVER_FLAG).map_err(|e| e.to_string())?);
    out.push(CString::new(fd.to_string()).map_err(|e| e.to_string())?);
    Ok(out)
}

/// Writes `text` into a new pipe and returns its read end (close-on-exec still set).
fn state_pipe(text: &[u8]) -> Result<OwnedFd, String> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // As large as allowed (fs.pipe-max-size, 1 MiB by default) ...
    let _ = fcntl(&w, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    // ... and never blocking: a state that does not fit is refused, not hung on.
    fcntl(&w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| format!("pipe: {e}"))?;
    let mut file = std::fs::File::from(w);
    file.write_all(text).map_err(|e| {
        format!(
            "the state ({} bytes) does not fit in a pipe ({e}): use `systemctl restart vipd`",
            text.len()
        )
    })?;
    drop(file);
    Ok(r)
}

/// An upgrade asked for, waiting for its probe.
pub struct Pending {
    pub target: PathBuf,
    pub reply: tokio::sync::oneshot::Sender<crate::ctl::Response>,
}

impl<N: Netlink> Daemon<N> {
    /// `vipctl upgrade [--binary PATH]`: checks the target and starts its probe; the loop
    /// goes on and [`Daemon::upgrade_probed`] continues when the probe answers.
    pub(super) fn upgrade_request(
        &mut self,
        binary: Option<PathBuf>,
        reply: tokio::sync::oneshot::Sender<crate::ctl::Response>,
    ) {
        use crate::ctl::Response;
        if self.ctl.upgrade.is_some() {
            let _ = reply.send(Response::error("an upgrade is already under way"));
            return;
        }
        let target = binary.unwrap_or_else(|| self.ctl.exe.clone());
        info!(binary = %target.display(), "upgrade asked for: checking the new binary");
        if let Err(e) = check_target(&target) {
            error!(binary = %target.display(), error = %e, "upgrade refused; this vipd keeps running");
            let _ = reply.send(Response::error(format!("upgrade refused: {e}")));
            return;
        }
        let (tx, config) = (self.ctl.upgrade_tx.clone(), self.ctl.config_path.clone());
        let probed = target.clone();
        tokio::spawn(async move {
            let r = probe(&probed, &config).await;
            let _ = tx.send(r).await;
        });
        self.ctl.upgrade = Some(Pending { target, reply });
    }

    /// The probe answered: hand over and `execve` (which does not return when it works),
    /// or report why not and keep running.
    pub(super) async fn upgrade_probed(&mut self, probe: Result<(), String>) {
        use crate::ctl::Response;
        let Some(p) = self.ctl.upgrade.take() else {
            return;
        };
        if let Err(e) = probe {
            error!(binary = %p.target.display(), error = %e, "upgrade refused; this vipd keeps running");
            let _ = p
                .reply
                .send(Response::error(format!("upgrade refused: {e}")));
            return;
        }
        // Let the control connection write its answer before the process image goes.
        let _ = p.reply.send(Response::ok(format!(
            "handing over to {} (pid {} stays)",
            p.target.display(),
            std::process::id()
        )));
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let e = self.exec_into(&p.target);
        error!(binary = %p.target.display(), error = %e, "upgrade failed; this vipd keeps running");
    }

    /// A resumed master held what `handed` says; its configuration may list other VIPs now
    /// (the file changed before the upgrade): the dropped ones are removed, the new ones added
    /// and announced, the others not touched.
    pub(super) async fn settle_handed_vips(&mut self, idx: usize, handed: &HandedInstance) {
        let placed = handed.placed_on(
            self.insts
                .get(idx)
                .map_or((0, [0; 6]), |i| (i.ifindex, i.mac)),
        );
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        inst.placed = placed;
        self.sync_and_announce_vips(idx, "upgrade: ").await;
    }

    /// What this process hands to the next binary, taken at `now`.
    fn handover_state(&self, now: Instant) -> State {
        let instances = self
            .insts
            .iter()
            .map(|i| HandedInstance {
                name: i.cfg.name.clone(),
                interface: i.cfg.interface.clone(),
                vrid: i.cfg.vrid,
                version: i.cfg.version.number(),
                v6: i.family == vipd_wire::Family::Ipv6,
                src: i.src,
                peers: i.cfg.unicast_peers.clone(),
                holding: i.holding,
                vips: i.placed.iter().map(|p| (p.addr, p.prefix_len)).collect(),
                placed: i.placed.clone(),
                snapshot: self.router.snapshot(now, i.id),
                counters: i.counters.clone(),
                alarms: i.alarms.iter().map(|a| HandedAlarm::of(a, now)).collect(),
                since_unix_ms: i
                    .since
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
            })
            .collect();
        let sockets = self
            .io
            .socks
            .iter()
            .filter_map(|s| {
                let fd = match &s.sock {
                    Sock::V4(x) => x.as_fd().as_raw_fd(),
                    Sock::V6(x) => x.as_fd().as_raw_fd(),
                    Sock::Closed => return None,
                };
                Some(HandedSocket {
                    fd,
                    ifindex: s.ifindex,
                    v6: s.family == vipd_wire::Family::Ipv6,
                    src: s.src,
                })
            })
            .collect();
        State {
            format: FORMAT,
            from_version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            taken_mono_ns: monotonic_ns(),
            started_unix_ms: self.ctl.started_unix_ms(),
            generation: self.ctl.generation(),
            instances,
            trackers: self.track.states(),
            maintenance: self.ctl.maintained(),
            sockets,
            control: self
                .ctl
                .listener_fd()
                .map(|(fd, path)| (fd.as_raw_fd(), path.to_path_buf())),
        }
    }

    /// Hands over and `execve`s `target`; returns only on failure (then every descriptor is
    /// close-on-exec again and nothing changed).
    fn exec_into(&mut self, target: &Path) -> String {
        let now = Instant::now();
        let state = self.handover_state(now);
        let text = match serde_json::to_vec(&state) {
            Ok(t) => t,
            Err(e) => return format!("cannot write the state: {e}"),
        };
        let pipe = match state_pipe(&text) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let argv = match next_argv(target, &self.ctl.argv, pipe.as_raw_fd()) {
            Ok(a) => a,
            Err(e) => return format!("arguments: {e}"),
        };
        let path = match CString::new(target.as_os_str().as_bytes()) {
            Ok(p) => p,
            Err(e) => return format!("binary path: {e}"),
        };
        let mut handed: Vec<BorrowedFd<'_>> = vec![pipe.as_fd()];
        for s in &self.io.socks {
            match &s.sock {
                Sock::V4(x) => handed.push(x.as_fd()),
                Sock::V6(x) => handed.push(x.as_fd()),
                Sock::Closed => {}
            }
        }
        if let Some((fd, _)) = self.ctl.listener_fd() {
            handed.push(fd);
        }
        for fd in &handed {
            if let Err(e) = set_cloexec(*fd, false) {
                for fd in &handed {
                    let _ = set_cloexec(*fd, true);
                }
                return format!("cannot pass descriptor {}: {e}", fd.as_raw_fd());
            }
        }
        let masters = self.insts.iter().filter(|i| i.holding).count();
        info!(binary = %target.display(), instances = self.insts.len(), masters,
              state_bytes = text.len(), "upgrade: handing over and executing the new binary");
        super::control::notify_reloading();
        let err = match nix::unistd::execv(&path, &argv) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        for fd in &handed {
            let _ = set_cloexec(*fd, true);
        }
        super::control::notify_systemd(&[sd_notify::NotifyState::Ready]);
        format!("execve {}: {err}", target.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            format: FORMAT,
            from_version: "0.1.0".into(),
            pid: std::process::id(),
            taken_mono_ns: monotonic_ns(),
            started_unix_ms: 1,
            generation: 0,
            instances: vec![HandedInstance {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                version: 3,
                v6: false,
                src: "10.0.0.1".parse().unwrap_or(IpAddr::from([10, 0, 0, 1])),
                peers: vec![],
                holding: true,
                vips: vec![(IpAddr::from([10, 0, 0, 100]), 24)],
                placed: vec![super::super::held::Placed {
                    addr: IpAddr::from([10, 0, 0, 100]),
                    prefix_len: 24,
                    ifindex: 7,
                    mac: [2, 0, 0, 0, 0, 7],
                }],
                snapshot: None,
                counters: Default::default(),
                since_unix_ms: 5,
                alarms: vec![],
            }],
            trackers: vec![],
            maintenance: vec!["VI_2".into()],
            sockets: vec![],
            control: None,
        }
    }

    /// An alarm crosses an upgrade with its kind, peer, detail and count, its times moved
    /// by how long ago the state was taken; an unknown kind (a newer writer) is dropped.
    #[test]
    fn alarms_cross_an_upgrade() {
        use vipd_proto::alarms::{Alarm, AlarmKind};
        let t0 = Instant::now();
        let a = Alarm {
            kind: AlarmKind::ChecksumForm,
            peer: IpAddr::from([10, 0, 0, 12]),
            detail: "with-pseudo-header, ours without-pseudo-header".into(),
            since: t0,
            last: t0 + Duration::from_millis(400),
            count: 7,
        };
        let taken = t0 + Duration::from_millis(500);
        let h = HandedAlarm::of(&a, taken);
        assert_eq!((h.since_ago_ms, h.last_ago_ms), (500, 100));
        let now = taken + Duration::from_millis(30);
        let b = h.alarm(now, Duration::from_millis(30)).expect("known kind");
        assert_eq!(
            (b.kind, b.peer, &b.detail, b.count),
            (a.kind, a.peer, &a.detail, 7)
        );
        assert_eq!((b.since, b.last), (a.since, a.last));
        let unknown = HandedAlarm {
            kind: "from_the_future".into(),
            ..h
        };
        assert!(unknown.alarm(now, Duration::ZERO).is_none());
    }

    /// A binary that did not say where its VIPs were (no `placed`) had them all on the
    /// instance's interface; one that did is believed.
    #[test]
    fn placed_vips_of_an_older_binary_are_on_the_interface() {
        let mut h = state().instances.remove(0);
        assert_eq!(h.placed_on((3, [0; 6]))[0].ifindex, 7);
        let text = serde_json::to_string(&h).unwrap_or_default();
        let old = text.replace(
            r#""placed":[{"addr":"10.0.0.100","prefix_len":24,"ifindex":7,"mac":[2,0,0,0,0,7]}],"#,
            "",
        );
        assert_ne!(old, text, "the test must remove the field: {text}");
        h = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}: {old}"));
        let p = h.placed_on((3, [1; 6]));
        assert_eq!(
            (p.len(), p[0].ifindex, p[0].mac, p[0].prefix_len),
            (1, 3, [1; 6], 24)
        );
    }

    #[test]
    fn a_state_round_trips_and_bad_ones_are_refused_with_the_reason() {
        let s = state();
        let text = serde_json::to_vec(&s).unwrap_or_default();
        assert_eq!(parse(&text), Ok(s.clone()));
        // Truncated anywhere: refused, never a panic.
        for cut in [0, 1, text.len() / 2, text.len() - 1] {
            let r = parse(&text[..cut]);
            assert!(
                r.as_ref().is_err_and(|e| e.contains("corrupt")),
                "cut at {cut}: {r:?}"
            );
        }
        // Another format.
        let mut other = serde_json::to_value(&s).unwrap_or_default();
        other["format"] = serde_json::Value::from(FORMAT + 1);
        let r = parse(other.to_string().as_bytes());
        assert!(
            r.as_ref()
                .is_err_and(|e| e.contains("another vipd version")),
            "{r:?}"
        );
        // For another process.
        let mut foreign = s.clone();
        foreign.pid = foreign.pid.wrapping_add(1);
        let r = parse(&serde_json::to_vec(&foreign).unwrap_or_default());
        assert!(
            r.as_ref().is_err_and(|e| e.contains("written for process")),
            "{r:?}"
        );
        // Garbage of the right shape but wrong types.
        let r = parse(br#"{"format":1,"pid":"x"}"#);
        assert!(r.is_err());
    }

    #[test]
    fn the_next_argv_replaces_an_earlier_handover_flag() {
        let args: Vec<OsString> = [
            "vipd",
            "--config",
            "/etc/vipd/vipd.toml",
            "--handover-fd",
            "7",
            "--handover-fd=9",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let argv = next_argv(Path::new("/usr/sbin/vipd"), &args, 5).unwrap_or_default();
        let shown: Vec<String> = argv
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            shown,
            [
                "/usr/sbin/vipd",
                "--config",
                "/etc/vipd/vipd.toml",
                "--handover-fd",
                "5"
            ]
        );
    }

    #[test]
    fn targets_are_checked_before_anything_is_handed_over() {
        let dir = std::env::temp_dir().join(format!("vipd-upgrade-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("vipd-new");
        let _ = std::fs::write(&file, b"#!/bin/sh\n");
        let set = |mode: u32| {
            let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode));
        };
        set(0o644);
        assert!(check_target(&file).is_err_and(|e| e.contains("not executable")));
        set(0o775);
        assert!(check_target(&file).is_err_and(|e| e.contains("group or others")));
        assert!(check_target(&dir.join("missing")).is_err());
        assert!(check_target(Path::new("relative/vipd")).is_err_and(|e| e.contains("absolute")));
        assert!(check_target(&dir).is_err_and(|e| e.contains("regular file")));
        set(0o755);
        if !nix::unistd::geteuid().is_root() || std::fs::metadata(&file).is_ok_and(|m| m.uid() == 0)
        {
            assert_eq!(check_target(&file), Ok(()));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_state_that_does_not_fit_the_pipe_is_refused() {
        // More than the largest pipe an unprivileged process may ask for.
        let big = vec![b' '; (PIPE_SIZE as usize) * 4];
        let r = state_pipe(&big);
        if !nix::unistd::geteuid().is_root() {
            assert!(r.is_err_and(|e| e.contains("does not fit")));
        }
        // A small one fits and reads back.
        let fd = state_pipe(b"{}").unwrap_or_else(|e| panic!("{e}"));
        let mut back = String::new();
        let _ = std::fs::File::from(fd).read_to_string(&mut back);
        assert_eq!(back, "{}");
    }
}
