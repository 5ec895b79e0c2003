//! `[[track_process]]`: how many processes of a name run, without polling `ps`.
//!
//! Like keepalived's `track_process`, vipd listens to the kernel's process events through the
//! netlink proc connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`: fork, exec, comm change, exit)
//! after one scan of `/proc`. A process matches as [`vipd_config::TrackProcess::matches`]
//! says: its `/proc/PID/comm` or the base name of its `argv[0]` equals the configured name
//! (comm is cut to 15 bytes by the kernel, so a longer name is compared cut too), with `args`
//! its arguments too, with `full_command` its whole command line. A change of "good" (the
//! count within min..=max) is reported after `up_delay` / `down_delay` if it lasts that long
//! (keepalived's `fork_delay` / `terminate_delay`: a restart is not a failure).
//!
//! The connector only exists in the initial network namespace (and needs CAP_NET_ADMIN).
//! Where it is unavailable — including inside a network namespace, where a subscription is
//! accepted but no event ever arrives — vipd notices (it checks that it sees the exec of a
//! probe process of its own) and rescans `/proc` every second instead, saying so once.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_CONNECTOR};
use tokio::io::Interest;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{Observation, TrackerUpdate};
use crate::ratelimit::{LogEvery, held_note};
use vipd_config::TrackProcess;

/// Rescan period without the connector.
pub const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// How long to wait for the probe exec event before falling back.
const SELF_TEST: Duration = Duration::from_millis(1000);
/// Processes tracked at most (memory bound; beyond it a rescan is done instead).
const MAX_PIDS: usize = 1 << 20;

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_COMM: u32 = 0x0000_0200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const NLMSG_DONE: u16 = 3;

/// Process `pid`'s names: comm and its command line (`Ok(None)`: it is gone). An error is
/// vipd's own lack of descriptors or memory: nothing can be said of the process then.
fn names_of(pid: u32) -> io::Result<Option<(String, Vec<String>)>> {
    let comm = match std::fs::read(format!("/proc/{pid}/comm")) {
        Ok(c) => c,
        Err(e) if crate::sys::is_own_limit(&e) => return Err(e),
        Err(_) => return Ok(None),
    };
    let comm = String::from_utf8_lossy(&comm)
        .trim_end_matches('\n')
        .to_string();
    let cmdline = read_head(&format!("/proc/{pid}/cmdline"), 16 * 1024)?.unwrap_or_default();
    let mut argv: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // The command line ends in a NUL: no empty last argument.
    if argv.last().is_some_and(String::is_empty) {
        argv.pop();
    }
    Ok(Some((comm, argv)))
}

fn read_head(path: &str, cap: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut v = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(cap).read_to_end(&mut v));
    match read {
        Ok(_) => Ok(Some(v)),
        Err(e) if crate::sys::is_own_limit(&e) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Which watched processes (indexes into `names`) process `pid` is; an error as
/// [`names_of`].
fn classify(pid: u32, names: &[TrackProcess]) -> io::Result<Vec<usize>> {
    let Some((comm, argv)) = names_of(pid)? else {
        return Ok(Vec::new());
    };
    Ok(names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.matches(&comm, &argv))
        .map(|(i, _)| i)
        .collect())
}

/// Every process (thread-group leader) in /proc matching some name; an error when vipd
/// could not look (its own limits): the counts are then not known.
fn scan(names: &[TrackProcess]) -> io::Result<HashMap<u32, Vec<usize>>> {
    let mut out = HashMap::new();
    let dir = std::fs::read_dir("/proc")?;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let m = classify(pid, names)?;
        if !m.is_empty() {
            out.insert(pid, m);
        }
        if out.len() >= MAX_PIDS {
            break;
        }
    }
    Ok(out)
}

/// Counts per name.
fn counts(table: &HashMap<u32, Vec<usize>>, n: usize) -> Vec<u32> {
    let mut c = vec![0u32; n];
    for m in table.values() {
        for &i in m {
            if let Some(x) = c.get_mut(i) {
                *x += 1;
            }
        }
    }
    c
}

/// One proc connector event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    Fork {
        child_pid: u32,
        child_tgid: u32,
        parent_tgid: u32,
    },
    Exec {
        pid: u32,
        tgid: u32,
    },
    Comm {
        pid: u32,
        tgid: u32,
    },
    Exit {
        pid: u32,
        tgid: u32,
    },
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off + 4)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses the proc events in one netlink datagram (several messages possible).
pub fn parse_events(mut buf: &[u8]) -> Vec<ProcEvent> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(buf, 0).and_then(|l| usize::try_from(l).ok()) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > buf.len() {
            break;
        }
        let msg = buf.get(NLMSG_HDRLEN..len).unwrap_or(&[]);
        // cn_msg: id.idx, id.val, seq, ack, len(u16), flags(u16); then proc_event.
        if u32_at(msg, 0) == Some(CN_IDX_PROC) && u32_at(msg, 4) == Some(CN_VAL_PROC) {
            let ev = msg.get(CN_MSG_LEN..).unwrap_or(&[]);
            // proc_event: what(u32), cpu(u32), timestamp_ns(u64), event data.
            let what = u32_at(ev, 0);
            let d = 16;
            let e = match what {
                Some(PROC_EVENT_FORK) => {
                    match (u32_at(ev, d + 4), u32_at(ev, d + 8), u32_at(ev, d + 12)) {
                        (Some(parent_tgid), Some(child_pid), Some(child_tgid)) => {
                            Some(ProcEvent::Fork {
                                child_pid,
                                child_tgid,
                                parent_tgid,
                            })
                        }
                        _ => None,
                    }
                }
                Some(PROC_EVENT_EXEC) => u32_at(ev, d)
                    .zip(u32_at(ev, d + 4))
                    .map(|(pid, tgid)| ProcEvent::Exec { pid, tgid }),
                Some(PROC_EVENT_COMM) => u32_at(ev, d)
                    .zip(u32_at(ev, d + 4))
                    .map(|(pid, tgid)| ProcEvent::Comm { pid, tgid }),
                Some(PROC_EVENT_EXIT) => u32_at(ev, d)
                    .zip(u32_at(ev, d + 4))
                    .map(|(pid, tgid)| ProcEvent::Exit { pid, tgid }),
                _ => None,
            };
            out.extend(e);
        }
        let aligned = (len + 3) & !3;
        buf = buf.get(aligned..).unwrap_or(&[]);
    }
    out
}

/// Opens the proc connector and subscribes.
fn open_connector() -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    let mut sock = Socket::new(NETLINK_CONNECTOR)?;
    sock.set_non_blocking(true)?;
    sock.set_rx_buf_sz(1 << 20)?;
    sock.bind(&SocketAddr::new(0, CN_IDX_PROC))?;
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + CN_MSG_LEN + 4);
    let total = (NLMSG_HDRLEN + CN_MSG_LEN + 4) as u32;
    msg.extend_from_slice(&total.to_ne_bytes());
    msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
    msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&std::process::id().to_ne_bytes());
    msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
    msg.extend_from_slice(&4u16.to_ne_bytes()); // len
    msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
    msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    sock.send_to(&msg, &SocketAddr::new(0, 0), 0)?;
    crate::sys::async_fd(sock)
}

async fn recv(fd: &tokio::io::unix::AsyncFd<Socket>, buf: &mut [u8]) -> io::Result<usize> {
    fd.async_io(Interest::READABLE, |inner| {
        use std::os::fd::AsRawFd;
        nix::sys::socket::recv(inner.as_raw_fd(), buf, nix::sys::socket::MsgFlags::empty())
            .map_err(io::Error::from)
    })
    .await
}

/// Opens the connector and proves it delivers events here: spawns `/bin/true` and waits for
/// its exec event.
async fn connector_self_test() -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    let fd = open_connector()?;
    let child = tokio::process::Command::new("/bin/true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut child = child;
    let mut buf = vec![0u8; 8192];
    let seen = tokio::time::timeout(SELF_TEST, async {
        loop {
            let n = recv(&fd, &mut buf).await?;
            if parse_events(buf.get(..n).unwrap_or(&[]))
                .iter()
                .any(|e| matches!(e, ProcEvent::Exec { tgid, .. } if *tgid == pid))
            {
                return Ok::<(), io::Error>(());
            }
        }
    })
    .await;
    let _ = child.wait().await;
    match seen {
        Ok(Ok(())) => Ok(fd),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other(
            "no process events arrive (not the initial network namespace?)",
        )),
    }
}

/// What has been reported per watched process, and a change of "good" waiting for its
/// delay.
struct Reporter {
    procs: Vec<(usize, TrackProcess)>,
    last: Vec<Option<u32>>,
    /// (count, when it may be reported).
    pending: Vec<Option<(u32, tokio::time::Instant)>>,
    tx: mpsc::Sender<TrackerUpdate>,
}

impl Reporter {
    fn new(procs: Vec<(usize, TrackProcess)>, tx: mpsc::Sender<TrackerUpdate>) -> Reporter {
        let n = procs.len();
        Reporter {
            procs,
            last: vec![None; n],
            pending: vec![None; n],
            tx,
        }
    }

    fn names(&self) -> Vec<TrackProcess> {
        self.procs.iter().map(|(_, p)| p.clone()).collect()
    }

    /// Reports the counts `c` (at `now`): a count that keeps "good" as it was goes out at
    /// once; one that changes it waits for its delay, and goes out if still so then. `false`:
    /// the receiver is gone.
    async fn report(&mut self, c: &[u32], now: tokio::time::Instant) -> bool {
        for i in 0..self.procs.len() {
            let n = c.get(i).copied().unwrap_or(0);
            let Some((idx, p)) = self.procs.get(i) else {
                continue;
            };
            let (idx, good) = (*idx, p.good(n));
            let (up_delay, down_delay) = (p.up_delay, p.down_delay);
            let last = self.last.get(i).copied().flatten();
            let send = match last {
                None => true,
                Some(l) if p.good(l) == good => {
                    self.pending[i] = None;
                    l != n
                }
                Some(_) => {
                    let delay = if good { up_delay } else { down_delay };
                    match self.pending[i] {
                        _ if delay.is_zero() => true,
                        Some((_, at)) if now >= at => true,
                        Some((_, at)) => {
                            self.pending[i] = Some((n, at));
                            false
                        }
                        None => {
                            self.pending[i] = Some((n, now + delay));
                            false
                        }
                    }
                }
            };
            if !send {
                continue;
            }
            self.pending[i] = None;
            self.last[i] = Some(n);
            let u = TrackerUpdate {
                tracker: idx,
                obs: Observation::Count(n),
            };
            if self.tx.send(u).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The earliest pending report.
    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.pending.iter().flatten().map(|(_, at)| *at).min()
    }
}

/// Sleeps until `at`, or forever without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Watches the processes `procs` (tracker index, what to match) and reports counts.
pub async fn watch(procs: Vec<(usize, TrackProcess)>, tx: mpsc::Sender<TrackerUpdate>) {
    let mut rep = Reporter::new(procs, tx);
    let names = rep.names();
    let fd = match connector_self_test().await {
        Ok(fd) => Some(fd),
        Err(e) => {
            info!(error = %e, "track_process: the netlink proc connector is unavailable; rescanning /proc every second");
            None
        }
    };
    let mut starved = LogEvery::new(Duration::from_secs(30));
    let mut table = loop {
        match scan(&names) {
            Ok(t) => break t,
            Err(e) => {
                not_counted(&mut starved, &e);
                tokio::time::sleep(RESCAN_EVERY).await;
            }
        }
    };
    if !rep
        .report(&counts(&table, names.len()), tokio::time::Instant::now())
        .await
    {
        return;
    }
    match fd {
        Some(fd) => {
            info!(
                processes = names.len(),
                "track_process: following the proc connector"
            );
            let mut buf = vec![0u8; 65536];
            loop {
                tokio::select! {
                    r = recv(&fd, &mut buf) => match r {
                        Ok(n) => {
                            for ev in parse_events(buf.get(..n).unwrap_or(&[])) {
                                if let Err(e) = apply(&mut table, ev, &names) {
                                    not_counted(&mut starved, &e);
                                }
                            }
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                            debug!("track_process: connector overrun; rescanning /proc");
                            match scan(&names) {
                                Ok(t) => table = t,
                                Err(e) => not_counted(&mut starved, &e),
                            }
                        }
                        Err(e) => {
                            warn!(error = %e, "track_process: connector failed; rescanning /proc every second");
                            return rescan_forever(rep).await;
                        }
                    },
                    () = until(rep.next_due()) => {}
                }
                if !rep
                    .report(&counts(&table, names.len()), tokio::time::Instant::now())
                    .await
                {
                    return;
                }
            }
        }
        None => rescan_forever(rep).await,
    }
}

/// A process could not be examined for vipd's own lack of resources: the counts keep
/// what they were (a rate-limited warning says so).
fn not_counted(limit: &mut LogEvery, e: &io::Error) {
    if let Some(held) = limit.check(std::time::Instant::now()) {
        warn!(error = %e,
              "track_process: could not read /proc ({e}): vipd is out of descriptors or memory; process counts keep their last values{}",
              held_note(held));
    }
}

/// Applies one connector event; an error (vipd's own limits) leaves the process's entry
/// as it was.
fn apply(
    table: &mut HashMap<u32, Vec<usize>>,
    ev: ProcEvent,
    names: &[TrackProcess],
) -> io::Result<()> {
    let refresh = |tgid: u32, table: &mut HashMap<u32, Vec<usize>>| -> io::Result<()> {
        let m = classify(tgid, names)?;
        if m.is_empty() {
            table.remove(&tgid);
        } else if table.len() < MAX_PIDS || table.contains_key(&tgid) {
            table.insert(tgid, m);
        }
        Ok(())
    };
    match ev {
        ProcEvent::Fork {
            child_pid,
            child_tgid,
            parent_tgid,
        } => {
            // A new process (not a thread) starts with its parent's names.
            if child_pid == child_tgid
                && let Some(m) = table.get(&parent_tgid).cloned()
                && table.len() < MAX_PIDS
            {
                table.insert(child_tgid, m);
            }
        }
        ProcEvent::Exec { tgid, .. } => return refresh(tgid, table),
        ProcEvent::Comm { pid, tgid } if pid == tgid => return refresh(tgid, table),
        ProcEvent::Comm { .. } => {}
        ProcEvent::Exit { pid, tgid } => {
            if pid == tgid {
                table.remove(&tgid);
            }
        }
    }
    Ok(())
}

async fn rescan_forever(mut rep: Reporter) {
    let names = rep.names();
    let mut tick = tokio::time::interval(RESCAN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut starved = LogEvery::new(Duration::from_secs(30));
    let mut table = HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let names2 = names.clone();
                match tokio::task::spawn_blocking(move || scan(&names2)).await {
                    Ok(Ok(t)) => table = t,
                    Ok(Err(e)) => {
                        not_counted(&mut starved, &e);
                        continue;
                    }
                    Err(_) => continue,
                }
            }
            () = until(rep.next_due()) => {}
        }
        if !rep
            .report(&counts(&table, names.len()), tokio::time::Instant::now())
            .await
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn tp(process: &str) -> TrackProcess {
        TrackProcess {
            name: "t".into(),
            process: process.into(),
            min: 1,
            max: None,
            args: None,
            args_match: vipd_config::ArgsMatch::Exact,
            full_command: false,
            up_delay: Duration::ZERO,
            down_delay: Duration::ZERO,
            weight: 0,
        }
    }

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn name_matching() {
        let h = tp("haproxy");
        assert!(h.matches("haproxy", &argv("x")));
        assert!(h.matches("x", &argv("/usr/sbin/haproxy -f /etc/h.cfg")));
        assert!(tp("a-very-long-process-name").matches("a-very-long-pro", &[]));
        assert!(!h.matches("haproxy2", &argv("haproxy-wrapper")));
    }

    /// keepalived's `process NAME ARGS` with param_match, and full_command.
    #[test]
    fn argument_matching() {
        use vipd_config::ArgsMatch::*;
        let with = |args: &[&str], m| TrackProcess {
            args: Some(args.iter().map(|a| a.to_string()).collect()),
            args_match: m,
            ..tp("/usr/sbin/haproxy")
        };
        let cmd = argv("/usr/sbin/haproxy -f /etc/haproxy/haproxy.cfg -p /run/h.pid");
        assert!(
            with(
                &["-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/h.pid"],
                Exact
            )
            .matches("haproxy", &cmd)
        );
        assert!(!with(&["-f", "/etc/haproxy/haproxy.cfg"], Exact).matches("haproxy", &cmd));
        assert!(with(&["-f", "/etc/haproxy/haproxy.cfg"], Partial).matches("haproxy", &cmd));
        assert!(!with(&["-f", "/etc/haproxy/other.cfg"], Partial).matches("haproxy", &cmd));
        assert!(with(&["-f", "/etc/haproxy/"], Initial).matches("haproxy", &cmd));
        assert!(!with(&["-f", "/etc/haproxy/"], Partial).matches("haproxy", &cmd));
        // No arguments at all, with args_match given and args empty.
        assert!(with(&[], Exact).matches("haproxy", &argv("/usr/sbin/haproxy")));
        assert!(!with(&[], Exact).matches("haproxy", &cmd));
        // The base name of argv[0] works too.
        assert!(
            TrackProcess {
                process: "haproxy".into(),
                ..with(&["-f", "/etc/haproxy/haproxy.cfg"], Partial)
            }
            .matches("x", &cmd)
        );
        let full = TrackProcess {
            full_command: true,
            ..tp("/usr/sbin/haproxy -f /etc/haproxy/haproxy.cfg -p /run/h.pid")
        };
        assert!(full.matches("haproxy", &cmd));
        assert!(!full.matches(
            "haproxy",
            &argv("/usr/sbin/haproxy -f /etc/haproxy/haproxy.cfg")
        ));
        // min / max.
        let q = TrackProcess {
            min: 1,
            max: Some(1),
            ..tp("x")
        };
        assert!(!q.good(0) && q.good(1) && !q.good(2));
        let none = TrackProcess {
            min: 0,
            max: Some(0),
            ..tp("x")
        };
        assert!(none.good(0) && !none.good(1));
    }

    #[test]
    fn parses_connector_messages() {
        let mut dgram = Vec::new();
        for (what, data) in [
            (PROC_EVENT_EXEC, vec![10u32, 10]),
            (PROC_EVENT_FORK, vec![1, 1, 11, 11]),
            (PROC_EVENT_EXIT, vec![12, 10, 0, 9, 1, 1]),
        ] {
            let mut ev = Vec::new();
            ev.extend_from_slice(&what.to_ne_bytes());
            ev.extend_from_slice(&0u32.to_ne_bytes());
            ev.extend_from_slice(&0u64.to_ne_bytes());
            for d in data {
                ev.extend_from_slice(&d.to_ne_bytes());
            }
            let len = NLMSG_HDRLEN + CN_MSG_LEN + ev.len();
            dgram.extend_from_slice(&(len as u32).to_ne_bytes());
            dgram.extend_from_slice(&[0u8; 12]);
            dgram.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
            dgram.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
            dgram.extend_from_slice(&[0u8; 12]);
            dgram.extend_from_slice(&ev);
            while dgram.len() % 4 != 0 {
                dgram.push(0);
            }
        }
        assert_eq!(
            parse_events(&dgram),
            vec![
                ProcEvent::Exec { pid: 10, tgid: 10 },
                ProcEvent::Fork {
                    child_pid: 11,
                    child_tgid: 11,
                    parent_tgid: 1
                },
                ProcEvent::Exit { pid: 12, tgid: 10 },
            ]
        );
        // Truncated input never panics.
        for cut in 0..dgram.len() {
            let _ = parse_events(&dgram[..cut]);
        }
    }

    #[test]
    fn scan_finds_ourselves() {
        let me = std::process::id();
        let (comm, _) = names_of(me).unwrap().unwrap();
        let t = scan(&[tp(&comm)]).unwrap();
        assert!(t.contains_key(&me));
        assert!(
            names_of(u32::MAX).unwrap().is_none(),
            "a process that is gone"
        );
    }
}

#[cfg(test)]
mod watch_tests {
    use super::*;

    /// keepalived's terminate_delay / fork_delay: a short gap is not reported, a lasting one
    /// is, after the delay; a count that keeps "good" as it was goes out at once.
    #[test]
    fn delays_hold_back_changes_of_good() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let p = TrackProcess {
                min: 1,
                up_delay: Duration::from_millis(500),
                down_delay: Duration::from_secs(2),
                ..super::tests::tp("x")
            };
            let (tx, mut rx) = mpsc::channel(16);
            let mut rep = Reporter::new(vec![(4, p)], tx);
            let t0 = tokio::time::Instant::now();
            let ms = |n: u64| t0 + Duration::from_millis(n);
            let got = |rx: &mut mpsc::Receiver<TrackerUpdate>| {
                let mut v = Vec::new();
                while let Ok(u) = rx.try_recv() {
                    v.push(u.obs);
                }
                v
            };
            assert!(rep.report(&[1], ms(0)).await);
            assert_eq!(got(&mut rx), [Observation::Count(1)]);
            // Down for 300 ms (a restart): nothing.
            rep.report(&[0], ms(100)).await;
            assert_eq!(rep.next_due(), Some(ms(2100)));
            rep.report(&[1], ms(400)).await;
            assert_eq!((got(&mut rx), rep.next_due()), (vec![], None));
            // Still good: counts go out at once.
            rep.report(&[2], ms(450)).await;
            assert_eq!(got(&mut rx), [Observation::Count(2)]);
            // Down for good: reported when the delay is over.
            rep.report(&[0], ms(1000)).await;
            rep.report(&[0], ms(2999)).await;
            assert!(got(&mut rx).is_empty());
            rep.report(&[0], ms(3000)).await;
            assert_eq!(got(&mut rx), [Observation::Count(0)]);
            // Up again after up_delay.
            rep.report(&[1], ms(3100)).await;
            assert!(got(&mut rx).is_empty());
            rep.report(&[1], ms(3600)).await;
            assert_eq!(got(&mut rx), [Observation::Count(1)]);
        });
    }

    /// Whichever mode this machine allows (the connector in the initial network namespace as
    /// root, else the /proc rescan), counts follow a process starting and stopping.
    #[test]
    fn counts_follow_a_process() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mode = connector_self_test()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            eprintln!("proc connector: {mode:?}");
            let name = format!("vipdwatch{}", std::process::id());
            let (tx, mut rx) = mpsc::channel(16);
            tokio::spawn(watch(vec![(3, super::tests::tp(&name))], tx));
            let next = async |rx: &mut mpsc::Receiver<TrackerUpdate>| {
                tokio::time::timeout(Duration::from_secs(10), rx.recv())
                    .await
                    .unwrap()
                    .unwrap()
            };
            assert_eq!(next(&mut rx).await.obs, Observation::Count(0));
            let mut child = tokio::process::Command::new("bash")
                .args(["-c", &format!("exec -a {name} sleep 600")])
                .spawn()
                .unwrap();
            assert_eq!(next(&mut rx).await.obs, Observation::Count(1));
            child.kill().await.unwrap();
            assert_eq!(next(&mut rx).await.obs, Observation::Count(0));
        });
    }

    /// Arguments are read from the real command line: `NAME 600` matches args ["600"] and
    /// not ["601"]; full_command matches the whole line.
    #[test]
    fn arguments_are_matched_on_the_real_command_line() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let name = format!("vipdargs{}", std::process::id());
            let with = |arg: &str| TrackProcess {
                args: Some(vec![arg.to_string()]),
                ..super::tests::tp(&name)
            };
            let full = TrackProcess {
                full_command: true,
                ..super::tests::tp(&format!("{name} 600"))
            };
            let (tx, mut rx) = mpsc::channel(16);
            tokio::spawn(watch(
                vec![(0, with("600")), (1, with("601")), (2, full)],
                tx,
            ));
            let mut child = tokio::process::Command::new("bash")
                .args(["-c", &format!("exec -a {name} sleep 600")])
                .spawn()
                .unwrap();
            let mut seen = [None; 3];
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while seen[0] != Some(1) || seen[2] != Some(1) {
                let u = tokio::time::timeout_at(deadline, rx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                if let Observation::Count(n) = u.obs {
                    seen[u.tracker] = Some(n);
                }
            }
            assert_eq!(seen[1], Some(0), "args [601] matched `{name} 600`");
            child.kill().await.unwrap();
        });
    }
}
