//! The control socket: a versioned JSON-lines protocol over a unix stream socket, spoken by
//! `vipctl` and served by `vipd`. One request per line, one response per line; a connection
//! may carry several. The protocol is documented in docs/control-protocol.md.

pub mod metrics;
pub mod server;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. A request with another major version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request or response line accepted (bytes).
pub const MAX_LINE: usize = 1 << 20;

/// A request (`{"v":1,"cmd":"status"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// The command.
    #[serde(flatten)]
    pub cmd: Command,
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Read-only: the state of every instance.
    Status,
    /// Drain (`on`) or undrain an instance (all when `instance` is absent): a master hands
    /// over at once (priority 0) and the instance stays backup without taking over.
    Maintenance {
        /// Instance name; all instances when absent.
        #[serde(default)]
        instance: Option<String>,
        /// On or off.
        on: bool,
    },
    /// Re-read the configuration file and apply it.
    Reload,
    /// What a reload would do, per instance, without changing anything (`vipctl reload
    /// --dry-run`, `vipd --check --against-running`). `config`: the text to check (its
    /// path for messages in `origin`); absent: the daemon's own configuration file.
    ReloadPlan {
        /// Configuration text to plan for (default: the daemon's file).
        #[serde(default)]
        config: Option<String>,
        /// The path shown in diagnostics for `config`.
        #[serde(default)]
        origin: Option<String>,
    },
    /// Upgrade without failover: re-execute `binary` (default: the binary vipd was started
    /// from, which a package upgrade has just replaced) in this process, handing it the
    /// sockets and the protocol state. The answer comes before the new binary runs; ask
    /// `status` for its `upgrade` to see that it took over.
    Upgrade {
        /// The new binary (absolute path).
        #[serde(default)]
        binary: Option<PathBuf>,
    },
    /// Failover drill on a master instance: hand over (or, with `crash`, go silent without
    /// priority 0), watch the peer take over, then restore.
    Drill {
        /// Instance name; the only master instance when absent.
        #[serde(default)]
        instance: Option<String>,
        /// Simulate a dead master (no priority-0 advert) to measure real detection time.
        #[serde(default)]
        crash: bool,
    },
}

impl Command {
    /// Whether the command changes anything (only root may send those).
    pub fn is_change(&self) -> bool {
        // A plan of the daemon's own file is read-only; one of a text the client sends makes
        // the daemon check programs and users for it, so that stays root's.
        !matches!(
            self,
            Command::Status | Command::ReloadPlan { config: None, .. }
        )
    }
}

/// A response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub v: u32,
    /// Whether the command succeeded.
    pub ok: bool,
    /// What went wrong (when `ok` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A human-readable result line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `status` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `drill` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillReport>,
    /// `reload_plan` result: what a reload would do to each instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<PlanEntry>>,
}

/// What a reload does to one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// Instance name.
    pub instance: String,
    /// `unchanged`, `update` (in place), `restart`, `add` or `remove`.
    pub action: String,
    /// Whether this node's VIPs move (it is master of an instance that restarts or goes).
    pub vip_moves: bool,
    /// The operator's sentence: "unchanged", "restart: the VIP will move", ...
    pub detail: String,
}

impl std::fmt::Display for PlanEntry {
    /// `VI_1: restart: the VIP will move (...)`, as `vipctl reload --dry-run` and
    /// `vipd --check --against-running` print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.instance, self.detail)
    }
}

impl Response {
    /// A failure.
    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: false,
            error: Some(msg.into()),
            ..Response::default()
        }
    }

    /// A success with a message.
    pub fn ok(msg: impl Into<String>) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: true,
            message: Some(msg.into()),
            ..Response::default()
        }
    }
}

/// The whole agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Router id (config or host name).
    pub router_id: String,
    /// vipd version.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// Start time, Unix milliseconds.
    pub started_unix_ms: u64,
    /// Configuration file in use.
    pub config: String,
    /// The instances, in configuration order.
    pub instances: Vec<InstanceStatus>,
    /// Drops not attributable to an instance, per interface then reason.
    pub interface_drops: BTreeMap<String, BTreeMap<String, u64>>,
    /// Packets dropped because the receive queue was full.
    pub queue_full_drops: u64,
    /// The upgrade this binary came from (`vipctl upgrade`); null after a normal start.
    #[serde(default)]
    pub upgrade: Option<UpgradeStatus>,
}

/// How the running binary took over from the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeStatus {
    /// Upgrades this process has been through (1 for the first).
    pub generation: u32,
    /// The version of the previous binary.
    pub from_version: String,
    /// When this binary took over (Unix ms).
    pub at_unix_ms: u64,
    /// Instances resumed as they ran, of which masters (they kept their VIPs).
    pub resumed: usize,
    pub masters: usize,
    /// Instances started afresh (changed, new, or in FAULT).
    pub fresh: usize,
}

/// One instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Name.
    pub name: String,
    /// VRID.
    pub vrid: u8,
    /// Interface.
    pub interface: String,
    /// VRRP version (2 or 3).
    pub version: u8,
    /// `MASTER`, `BACKUP`, `FAULT` or `INIT`.
    pub state: String,
    /// When it entered that state, Unix milliseconds.
    pub since_unix_ms: u64,
    /// Why it entered it.
    pub reason: String,
    /// Configured priority.
    pub base_priority: u8,
    /// Priority in use (base + tracker weights, clamped).
    pub effective_priority: u8,
    /// Sum of tracker weights.
    pub priority_adjust: i32,
    /// Each tracker's contribution.
    pub trackers: Vec<TrackerStatus>,
    /// The fault cause while in FAULT (null otherwise).
    #[serde(default)]
    pub fault: Option<String>,
    /// In maintenance (drained).
    pub maintenance: bool,
    /// Preemption on.
    pub preempt: bool,
    /// `preempt_delay`, milliseconds.
    #[serde(default)]
    pub preempt_delay_ms: u64,
    /// Our source address.
    pub source: String,
    /// The master we hear (address, priority), when backup; ourselves when master; null
    /// otherwise.
    #[serde(default)]
    pub master: Option<Peer>,
    /// Since when that router is the master this node knows of, Unix milliseconds (null: no
    /// master known).
    #[serde(default)]
    pub master_since_unix_ms: Option<u64>,
    /// Our advert interval, milliseconds.
    pub advert_interval_ms: u64,
    /// The master's advert interval in use (v3 adopts it), milliseconds.
    pub master_advert_interval_ms: u64,
    /// Master_Down_Interval, milliseconds (fractional).
    pub master_down_interval_ms: f64,
    /// Unicast peers (empty: multicast).
    pub unicast_peers: Vec<String>,
    /// The VIPs.
    pub vips: Vec<VipStatus>,
    /// Counters.
    pub counters: Counters,
    /// Last transitions, oldest first.
    pub transitions: Vec<TransitionStatus>,
    /// Raised alarms about peers' configurations, oldest first (see docs/operations.md).
    #[serde(default)]
    pub alarms: Vec<AlarmStatus>,
    /// The last drill on this instance (null: none).
    #[serde(default)]
    pub last_drill: Option<DrillReport>,
    /// `[instance.announce]`: the BGP announcement (null for an instance on the link).
    #[serde(default)]
    pub announce: Option<AnnounceStatus>,
}

/// The announcement of an `[instance.announce]` instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceStatus {
    /// `active-standby` or `active-active`.
    pub policy: String,
    /// Whether its VIPs (and host routes) are in place for the BGP daemon now.
    pub announced: bool,
    /// Since when (announced or withdrawn), Unix milliseconds.
    pub since_unix_ms: u64,
    /// Why: the reason of the transition that announced or withdrew it.
    pub reason: String,
    /// The device the VIPs go on.
    pub device: String,
    /// The table of the host routes (null: the address only).
    #[serde(default)]
    pub table: Option<u32>,
}

/// A raised alarm: a peer whose adverts disagree with our configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmStatus {
    /// Kind (`checksum_form`, `version_mismatch`, ...).
    pub kind: String,
    /// The peer's address.
    pub peer: String,
    /// Theirs against ours ("VRRPv2, ours VRRPv3"); may be empty.
    pub detail: String,
    /// What it means, as an operator's sentence part.
    pub meaning: String,
    /// Raised at, Unix milliseconds.
    pub since_unix_ms: u64,
    /// Last evidence, Unix milliseconds.
    pub last_unix_ms: u64,
    /// Pieces of evidence since raised.
    pub count: u64,
}

/// A VRRP peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Address.
    pub address: String,
    /// Priority.
    pub priority: u8,
}

/// One tracker's contribution to an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerStatus {
    /// Tracker name.
    pub name: String,
    /// Kind (script, http, tcp, file, process, interface).
    pub kind: String,
    /// Healthy?
    pub up: bool,
    /// Weight (0: FAULT when down).
    pub weight: i32,
    /// What it adds to the priority now.
    pub contribution: i32,
    /// Whether it holds the instance in FAULT now (weight 0 and down).
    #[serde(default)]
    pub faults: bool,
    /// What its last observation said (`connect: Connection refused`, `HTTP 503`, `value 3`).
    #[serde(default)]
    pub detail: String,
}

/// One VIP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    /// `addr/prefix`.
    pub address: String,
    /// Whether it is on its device right now (checked when the status was taken).
    pub present: bool,
    /// Its device when not the instance's interface (keepalived's `dev`).
    #[serde(default)]
    pub interface: Option<String>,
    /// Held but not advertised (`excluded_vips`).
    #[serde(default)]
    pub excluded: bool,
}

/// Counters of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Adverts received and accepted.
    pub adverts_received: u64,
    /// Priority-0 adverts sent.
    pub priority_zero_sent: u64,
    /// Priority-0 adverts received.
    pub priority_zero_received: u64,
    /// Transitions.
    pub transitions: u64,
    /// Gratuitous ARP / NA frames sent.
    pub gratuitous_sent: u64,
    /// VIPs put back after being removed behind our back.
    pub vips_restored: u64,
    /// Routes and rules put back after being deleted while master.
    #[serde(default)]
    pub routes_restored: u64,
    /// Send errors.
    pub send_errors: u64,
    /// Adverts with another address list than ours.
    pub address_list_mismatch: u64,
    /// As master, adverts of another router that believed it was master (lower priority,
    /// or priority 0): answered, and the VIPs re-announced (one per sender per interval).
    #[serde(default)]
    pub lower_priority_received: u64,
    /// Times the master this node knows of changed (another router, or itself).
    #[serde(default)]
    pub master_changes: u64,
    /// Times this node became MASTER (real takeovers, drills included).
    #[serde(default)]
    pub became_master: u64,
    /// Drops by reason (only non-zero reasons).
    pub drops: BTreeMap<String, u64>,
}

/// One transition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionStatus {
    /// When, Unix milliseconds.
    pub unix_ms: u64,
    /// From state.
    pub from: String,
    /// To state.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// The result of a failover drill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// Instance.
    pub instance: String,
    /// Crash mode (silent) or clean handover (priority 0).
    pub crash: bool,
    /// When it started, Unix milliseconds.
    pub started_unix_ms: u64,
    /// Steps, in order: (what, milliseconds after the start).
    pub steps: Vec<DrillStep>,
    /// The new master (address, priority), when one took over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_master: Option<Peer>,
    /// Start to the gratuitous announcement of the VIPs by the new master (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// The protocol bound for this takeover (ms).
    pub bound_ms: f64,
    /// Whether a peer took over within the bound (+ tolerance).
    pub ok: bool,
    /// Explanation when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One step of a drill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillStep {
    /// What happened.
    pub what: String,
    /// Milliseconds after the start.
    pub at_ms: f64,
}

/// Trusts the server at `socket` only if it runs as root or as the user owning the
/// socket's directory (vipd's runtime directory): anyone else who managed to put a socket
/// there is refused before a request is sent or an answer believed.
pub fn check_server(stream: &UnixStream, socket: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    let uid = cred.uid();
    if uid == 0 {
        return Ok(());
    }
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let owner = std::fs::metadata(dir)?.uid();
    if uid == owner {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "refusing to trust the server at {}: it runs as uid {uid} (pid {}), which is neither root nor the owner of {} (uid {owner}); something other than vipd is listening there",
            socket.display(),
            cred.pid(),
            dir.display()
        ),
    ))
}

/// Sends one request and reads the response (blocking; for `vipctl`).
pub fn request(socket: &Path, cmd: Command, timeout: Duration) -> io::Result<Response> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot connect to vipd's control socket {}: {e} (is vipd running? are you root or in its control group?)",
                socket.display()
            ),
        )
    })?;
    check_server(&stream, socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(&Request {
        v: PROTOCOL_VERSION,
        cmd,
    })
    .map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream).take(MAX_LINE as u64);
    let mut buf = Vec::new();
    reader.read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "vipd closed the control connection without answering",
        ));
    }
    serde_json::from_slice(&buf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad response: {e}")))
}

use std::io::Read as _;

/// After a failed `accept` of the control socket or the metrics endpoint (`what`): a warning
/// at most once per `limit`'s period (saying how many it held back), then a short pause, so
/// that a persistent failure (EMFILE) neither floods the log nor spins.
pub(crate) async fn accept_failed(
    limit: &mut crate::ratelimit::LogEvery,
    what: &str,
    e: &io::Error,
) {
    if let Some(held) = limit.check(std::time::Instant::now()) {
        tracing::warn!(error = %e, "{what}: accept failed: {e}{}", crate::ratelimit::held_note(held));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_json_shape() {
        let r = Request {
            v: 1,
            cmd: Command::Maintenance {
                instance: Some("VI_1".into()),
                on: true,
            },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"v":1,"cmd":"maintenance","instance":"VI_1","on":true}"#
        );
        let back: Request = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
        let st: Request = serde_json::from_str(r#"{"v":1,"cmd":"status"}"#).unwrap();
        assert_eq!(st.cmd, Command::Status);
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"cmd":"explode"}"#).is_err());
        assert!(!Command::Status.is_change());
        assert!(Command::Reload.is_change());
    }
}
