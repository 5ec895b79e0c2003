//! Running an external program (track scripts, notify programs) safely:
//! no shell, environment cleared except `PATH`, stdin from /dev/null, working directory `/`,
//! no descriptor of vipd's, its own process group and (where vipd may) its own cgroup,
//! privileges dropped to the configured user, SIGKILL if vipd dies, output read up to a cap
//! (then the pipes are closed), and once it exits or times out, everything it started is
//! killed: the whole cgroup (`setsid` cannot escape it), else the process group.

use std::io;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid, User};
use tokio::io::{AsyncRead, AsyncReadExt};

use vipd_config::SCRIPT_PATH;

/// How long to wait for the output pipes after the program exited (a background child that
/// kept them open is not waited for).
const PIPE_GRACE: Duration = Duration::from_millis(100);

/// Who a program runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups (`getgrouplist`, what `initgroups` would set).
    pub groups: Vec<Gid>,
}

impl RunAs {
    /// Looks `user` up. `None` when no switch is needed: vipd runs as root and so does the
    /// user. A user vipd cannot switch to (no CAP_SETUID/CAP_SETGID), or vipd's own
    /// non-root user, is an error: scripts never share vipd's identity
    /// ([`vipd_config::run_as_problem`], which the configuration's host pass also reports).
    pub fn resolve(user: &str) -> io::Result<Option<RunAs>> {
        let u = User::from_name(user)
            .map_err(io::Error::from)?
            .ok_or_else(|| io::Error::other(format!("script user `{user}` does not exist")))?;
        if let Some((why, hint)) = vipd_config::run_as_problem(user, u.uid.as_raw()) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("a script {why} ({hint})"),
            ));
        }
        if u.uid == Uid::effective() {
            return Ok(None);
        }
        let cname = std::ffi::CString::new(user).map_err(io::Error::other)?;
        let groups = nix::unistd::getgrouplist(&cname, u.gid).unwrap_or_else(|_| vec![u.gid]);
        Ok(Some(RunAs {
            user: user.to_string(),
            uid: u.uid,
            gid: u.gid,
            groups,
        }))
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exit status.
    Exited(i32),
    /// Killed by a signal (not ours).
    Signaled(i32),
    /// Ran past the timeout: the process group was killed.
    TimedOut,
    /// Could not start.
    SpawnFailed(String),
    /// Could not start because vipd itself ran out of descriptors, memory or processes
    /// (not the program's fault: a tracker keeps its last state).
    NoResources(String),
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ended: Ended,
    /// stdout then stderr, at most `cap` bytes each (lossy UTF-8).
    pub output: String,
    /// Bytes read beyond the cap and discarded.
    pub discarded: u64,
    pub elapsed: Duration,
    /// The process group id (the child's pid), if it started.
    pub pgid: Option<i32>,
}

impl Outcome {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited(0)
    }

    /// The first non-empty line of the output (at most 200 characters).
    pub fn first_line(&self) -> String {
        self.output
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect()
    }

    /// "exit 1", "timed out after 200ms (process group killed)", ...
    pub fn describe(&self, timeout: Duration) -> String {
        match &self.ended {
            Ended::Exited(c) => format!("exit {c}"),
            Ended::Signaled(s) => format!("killed by signal {s}"),
            Ended::TimedOut => format!("timed out after {timeout:?} (process group killed)"),
            Ended::SpawnFailed(e) => format!("could not start: {e}"),
            Ended::NoResources(e) => format!("could not start (vipd's own limits): {e}"),
        }
    }
}

/// Most bytes read from each of a program's output pipes: past this the pipe is closed, and
/// a program that goes on writing gets SIGPIPE / EPIPE instead of vipd's CPU.
pub const READ_LIMIT: usize = 64 * 1024;

/// Keeps the first `cap` bytes, reads and discards the rest up to [`READ_LIMIT`], then closes
/// the pipe (dropping `r`). The count is of bytes read and discarded.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut discarded = 0u64;
    let mut buf = [0u8; 2048];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or(&[]);
                let room = cap.saturating_sub(kept.len());
                let take = room.min(chunk.len());
                kept.extend_from_slice(chunk.get(..take).unwrap_or(&[]));
                discarded += (chunk.len() - take) as u64;
                if kept.len() as u64 + discarded >= READ_LIMIT as u64 {
                    break;
                }
            }
        }
    }
    (kept, discarded)
}

/// Kills process group `pgid` with SIGKILL (ignoring "no such process").
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// Kills the process group on drop (a run abandoned mid-way, e.g. at daemon exit).
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            kill_group(g);
        }
    }
}

/// Runs `argv` (argv[0] absolute) as `run_as` with a `timeout`; never panics, never blocks
/// longer than `timeout` plus a short grace for the pipes.
pub async fn run(
    argv: &[String],
    run_as: Option<&RunAs>,
    timeout: Duration,
    cap: usize,
) -> Outcome {
    let start = Instant::now();
    let ended_as = |ended: Ended| Outcome {
        ended,
        output: String::new(),
        discarded: 0,
        elapsed: start.elapsed(),
        pgid: None,
    };
    let Some((prog, args)) = argv.split_first() else {
        return ended_as(Ended::SpawnFailed("empty command".into()));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .env_clear()
        .env("PATH", SCRIPT_PATH)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    crate::sys::clear_ambient_caps(&mut cmd);
    let cgroup = super::cgroup::ScriptCgroup::create();
    if let Some(cg) = &cgroup {
        crate::sys::join_cgroup_on_exec(&mut cmd, cg.procs().clone());
    }
    if let Some(u) = run_as {
        crate::sys::exec_as(&mut cmd, u.uid, u.gid, u.groups.clone());
    }
    crate::sys::die_with_parent_and_close_fds(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if crate::sys::is_own_limit(&e) => {
            return ended_as(Ended::NoResources(e.to_string()));
        }
        Err(e) => return ended_as(Ended::SpawnFailed(e.to_string())),
    };
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let mut guard = GroupGuard(pgid);
    let out = child
        .stdout
        .take()
        .map(|o| tokio::spawn(read_capped(o, cap)));
    let err = child
        .stderr
        .take()
        .map(|e| tokio::spawn(read_capped(e, cap)));
    let ended = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => {
            // Exited by itself: what it left running goes with it (below).
            use std::os::unix::process::ExitStatusExt;
            match (st.code(), st.signal()) {
                (Some(c), _) => Ended::Exited(c),
                (None, Some(s)) => Ended::Signaled(s),
                (None, None) => Ended::Exited(-1),
            }
        }
        Ok(Err(e)) => Ended::SpawnFailed(format!("wait: {e}")),
        Err(_) => {
            if let Some(cg) = &cgroup {
                cg.kill();
            }
            if let Some(g) = pgid {
                kill_group(g);
            }
            let _ = child.kill().await;
            Ended::TimedOut
        }
    };
    // Nothing it started outlives it: its cgroup, else its process group.
    match cgroup {
        Some(cg) => cg.close().await,
        None => {
            if let Some(g) = pgid {
                kill_group(g);
            }
        }
    }
    guard.0 = None;
    let mut output = Vec::new();
    let mut discarded = 0;
    for h in [out, err].into_iter().flatten() {
        let abort = h.abort_handle();
        match tokio::time::timeout(PIPE_GRACE, h).await {
            Ok(Ok((kept, d))) => {
                output.extend_from_slice(&kept);
                discarded += d;
            }
            _ => abort.abort(),
        }
    }
    Outcome {
        ended,
        output: String::from_utf8_lossy(&output).into_owned(),
        discarded,
        elapsed: start.elapsed(),
        pgid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exit_status_and_capped_output() {
        rt().block_on(async {
            let o = run(
                &argv(&[
                    "/bin/sh",
                    "-c",
                    "echo hello; echo PATH=$PATH; echo HOME=$HOME; exit 3",
                ]),
                None,
                Duration::from_secs(5),
                4096,
            )
            .await;
            assert_eq!(o.ended, Ended::Exited(3));
            assert_eq!(o.first_line(), "hello");
            assert!(
                o.output.contains(&format!("PATH={SCRIPT_PATH}")),
                "{}",
                o.output
            );
            assert!(
                o.output.contains("HOME=\n"),
                "env not cleared: {}",
                o.output
            );
            let o = run(
                &argv(&["/bin/sh", "-c", "head -c 20000 /dev/zero"]),
                None,
                Duration::from_secs(5),
                1000,
            )
            .await;
            assert!(o.success());
            assert_eq!(o.output.len(), 1000);
            assert_eq!(o.discarded, 19_000);
            // A flood: the pipe is closed at READ_LIMIT, the writer dies of SIGPIPE at once.
            let t0 = Instant::now();
            let o = run(
                &argv(&["/bin/sh", "-c", "cat /dev/zero"]),
                None,
                Duration::from_secs(5),
                1000,
            )
            .await;
            assert!(!o.success(), "{:?}", o.ended);
            assert_ne!(o.ended, Ended::TimedOut);
            assert_eq!(o.output.len(), 1000);
            assert!(o.discarded <= READ_LIMIT as u64);
            assert!(t0.elapsed() < Duration::from_secs(2));
        });
    }

    /// Processes whose command line contains `marker`.
    fn running(marker: &str) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
            })
            .collect()
    }

    #[test]
    fn nothing_it_started_outlives_it() {
        // Unique sleep lengths mark this test's processes.
        let n = 40_000 + std::process::id() % 10_000;
        let (bg, daemon) = (format!("{n}.1"), format!("{n}.2"));
        rt().block_on(async {
            let o = run(
                &argv(&[
                    "/bin/sh",
                    "-c",
                    &format!("sleep {bg} & setsid sleep {daemon} & echo started"),
                ]),
                None,
                Duration::from_secs(5),
                4096,
            )
            .await;
            assert!(o.success(), "{:?}", o.ended);
        });
        let gone = |m: &str| {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(2) {
                if running(m).is_empty() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        };
        assert!(
            gone(&format!("sleep {bg}")),
            "a background child outlived the script"
        );
        if super::super::cgroup::available() {
            assert!(
                gone(&format!("sleep {daemon}")),
                "a setsid daemon outlived the script"
            );
        } else {
            // Without a usable cgroup (not root, no delegation) setsid escapes: say so, clean up.
            for pid in running(&format!("sleep {daemon}")) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }

    #[test]
    fn timeout_kills_the_group() {
        rt().block_on(async {
            let t0 = Instant::now();
            let o = run(
                &argv(&["/bin/sh", "-c", "sleep 1000 & sleep 1000; wait"]),
                None,
                Duration::from_millis(200),
                4096,
            )
            .await;
            assert_eq!(o.ended, Ended::TimedOut);
            assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
            let pgid = o.pgid.unwrap();
            // Nothing is left running in the group (zombies awaiting a reaper do not count).
            let gone = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                live_in_group(pgid) == 0
            });
            assert!(gone, "process group {pgid} survived");
        });
    }

    /// Processes in group `pgid` that are not zombies.
    pub(crate) fn live_in_group(pgid: i32) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        dir.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                // pid (comm) state ppid pgrp ...
                let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                    return false;
                };
                let f: Vec<&str> = rest.split_whitespace().collect();
                f.first() != Some(&"Z") && f.get(2) == Some(&pgid.to_string().as_str())
            })
            .count()
    }

    #[test]
    fn spawn_failure_is_reported() {
        rt().block_on(async {
            let o = run(
                &argv(&["/nonexistent/prog"]),
                None,
                Duration::from_secs(1),
                64,
            )
            .await;
            assert!(matches!(o.ended, Ended::SpawnFailed(_)));
            assert!(!o.success());
        });
    }
}
