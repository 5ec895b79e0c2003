//! `[[track_process]]`: how many processes of a name run, without polling `ps`.
//!
//! Like keepalived's `track_process`, vipd listens to the kernel's process events through the
//! netlink proc connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`: fork, exec, comm change, exit)
//! after one scan of `/proc`. A process matches when its `/proc/PID/comm` or the base name of
//! its `argv[0]` equals the configured name (comm is cut to 15 bytes by the kernel, so a longer
//! name is compared cut too).
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

/// Process `pid`'s names: comm and argv[0]'s base name (`Ok(None)`: it is gone). An error
/// is vipd's own lack of descriptors or memory: nothing can be said of the process then.
fn names_of(pid: u32) -> io::Result<Option<(String, String)>> {
    let comm = match std::fs::read(format!("/proc/{pid}/comm")) {
        Ok(c) => c,
        Err(e) if crate::sys::is_own_limit(&e) => return Err(e),
        Err(_) => return Ok(None),
    };
    let comm = String::from_utf8_lossy(&comm)
        .trim_end_matches('\n')
        .to_string();
    let cmdline = read_head(&format!("/proc/{pid}/cmdline"), 4096)?.unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or(&[]);
    let argv0 = String::from_utf8_lossy(argv0);
    let base = argv0.rsplit('/').next().unwrap_or("").to_string();
    Ok(Some((comm, base)))
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

fn matches(name: &str, comm: &str, base: &str) -> bool {
    let cut: String = name.chars().take(15).collect();
    comm == name || comm == cut || base == name
}

/// Which watched names (indexes into `names`) process `pid` matches; an error as
/// [`names_of`].
fn classify(pid: u32, names: &[String]) -> io::Result<Vec<usize>> {
    let Some((comm, base)) = names_of(pid)? else {
        return Ok(Vec::new());
    };
    Ok(names
        .iter()
        .enumerate()
        .filter(|(_, n)| matches(n, &comm, &base))
        .map(|(i, _)| i)
        .collect())
}

/// Every process (thread-group leader) in /proc matching some name; an error when vipd
/// could not look (its own limits): the counts are then not known.
fn scan(names: &[String]) -> io::Result<HashMap<u32, Vec<usize>>> {
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

/// Watches the processes `procs` (tracker index, name) and reports counts.
pub async fn watch(procs: Vec<(usize, String)>, tx: mpsc::Sender<TrackerUpdate>) {
    let names: Vec<String> = procs.iter().map(|(_, n)| n.clone()).collect();
    let fd = match connector_self_test().await {
        Ok(fd) => Some(fd),
        Err(e) => {
            info!(error = %e, "track_process: the netlink proc connector is unavailable; rescanning /proc every second");
            None
        }
    };
    let mut starved = LogEvery::new(Duration::from_secs(30));
    let mut last: Vec<Option<u32>> = vec![None; names.len()];
    let mut table = loop {
        match scan(&names) {
            Ok(t) => break t,
            Err(e) => {
                not_counted(&mut starved, &e);
                tokio::time::sleep(RESCAN_EVERY).await;
            }
        }
    };
    if !send_counts(&procs, &counts(&table, names.len()), &mut last, &tx).await {
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
                match recv(&fd, &mut buf).await {
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
                        return rescan_forever(procs, names, last, tx).await;
                    }
                }
                if !send_counts(&procs, &counts(&table, names.len()), &mut last, &tx).await {
                    return;
                }
            }
        }
        None => rescan_forever(procs, names, last, tx).await,
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
fn apply(table: &mut HashMap<u32, Vec<usize>>, ev: ProcEvent, names: &[String]) -> io::Result<()> {
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

async fn send_counts(
    procs: &[(usize, String)],
    c: &[u32],
    last: &mut [Option<u32>],
    tx: &mpsc::Sender<TrackerUpdate>,
) -> bool {
    for (i, (idx, _)) in procs.iter().enumerate() {
        let n = c.get(i).copied().unwrap_or(0);
        let Some(l) = last.get_mut(i) else { continue };
        if *l == Some(n) {
            continue;
        }
        *l = Some(n);
        let u = TrackerUpdate {
            tracker: *idx,
            obs: Observation::Count(n),
        };
        if tx.send(u).await.is_err() {
            return false;
        }
    }
    true
}

async fn rescan_forever(
    procs: Vec<(usize, String)>,
    names: Vec<String>,
    mut last: Vec<Option<u32>>,
    tx: mpsc::Sender<TrackerUpdate>,
) {
    let mut tick = tokio::time::interval(RESCAN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut starved = LogEvery::new(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let names2 = names.clone();
        let table = match tokio::task::spawn_blocking(move || scan(&names2)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                not_counted(&mut starved, &e);
                continue;
            }
            Err(_) => continue,
        };
        if !send_counts(&procs, &counts(&table, names.len()), &mut last, &tx).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_matching() {
        assert!(matches("haproxy", "haproxy", "x"));
        assert!(matches("haproxy", "x", "haproxy"));
        assert!(matches("a-very-long-process-name", "a-very-long-pro", ""));
        assert!(!matches("haproxy", "haproxy2", "haproxy-wrapper"));
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
        let t = scan(std::slice::from_ref(&comm)).unwrap();
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
            tokio::spawn(watch(vec![(3, name.clone())], tx));
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
}
