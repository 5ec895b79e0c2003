//! Each script in a cgroup of its own (cgroup v2, under the one vipd runs in), so that
//! everything it started — `setsid` daemons included — is killed with it (`cgroup.kill`)
//! once it exits or times out. vipd may create cgroups there when it runs as root, or when
//! systemd delegated its cgroup to it (`Delegate=yes`, as the shipped unit does). Elsewhere
//! scripts run in their own process group only (said once in the log).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::{debug, info, warn};

/// Where scripts' cgroups are made: vipd's own cgroup directory, if usable.
fn base() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    let _ = mark();
    BASE.get_or_init(|| match find_base() {
        Ok(dir) => {
            // Off the event loop: removing a killed cgroup waits for its processes to go.
            let stale = dir.clone();
            let _ = std::thread::Builder::new()
                .name("vipd-cgroup-sweep".into())
                .spawn(move || sweep_stale(&stale));
            info!(cgroup = %dir.display(),
                  "scripts run in cgroups of their own under {}: whatever a script starts is killed with it", dir.display());
            Some(dir)
        }
        Err(e) => {
            warn!(error = %e,
                  "scripts run in their own process group only ({e}): a script's setsid children can outlive it; run vipd as root or with its cgroup delegated (the shipped unit: Delegate=yes)");
            None
        }
    })
    .as_deref()
}

/// Whether scripts get cgroups of their own here.
pub fn available() -> bool {
    base().is_some()
}

/// This process's cgroup v2 directory (the cgroup2 mount point joined with the path of
/// `/proc/self/cgroup`).
pub fn own_dir() -> io::Result<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    let rel = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| io::Error::other("no cgroup v2 hierarchy"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
    let mount = mounts
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2"))
                .then(|| left.split_whitespace().nth(4))
                .flatten()
        })
        .ok_or_else(|| io::Error::other("cgroup2 is not mounted"))?;
    Ok(Path::new(mount).join(rel.trim().trim_start_matches('/')))
}

/// vipd's cgroup v2 directory, checked by creating and removing a cgroup in it.
fn find_base() -> io::Result<PathBuf> {
    let dir = own_dir()?;
    let probe = dir.join(format!("vipd.{}.probe", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create a cgroup in {}: {e}", dir.display()),
        )
    })?;
    let kill_ok = probe.join("cgroup.kill").exists();
    let _ = std::fs::remove_dir(&probe);
    if !kill_ok {
        return Err(io::Error::other(
            "the kernel has no cgroup.kill (Linux 5.14 or later)",
        ));
    }
    Ok(dir)
}

/// This binary's own mark in its cgroups' names (`vipd.<pid>.<mark>.<n>`): an upgrade keeps
/// the pid, so the pid alone cannot tell this binary's cgroups from the previous one's.
fn mark() -> u64 {
    static MARK: OnceLock<u64> = OnceLock::new();
    *MARK.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

/// Kills and removes script cgroups left by a vipd that is gone, or by this process's
/// previous binary (an upgrade re-executed it).
fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("vipd.")) else {
            continue;
        };
        let mut parts = rest.split('.');
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let theirs = parts.next().and_then(|m| m.parse::<u64>().ok());
        let previous_binary = pid == me && theirs != Some(mark());
        if previous_binary || !Path::new(&format!("/proc/{pid}")).exists() {
            let path = e.path();
            kill_all(&path);
            for _ in 0..50 {
                if std::fs::remove_dir(&path).is_ok() {
                    debug!(cgroup = %path.display(), "removed a stale script cgroup");
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn kill_all(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
        // Fallback: every process listed (needs the right to signal them).
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// One script run's cgroup: killed and removed when dropped.
#[derive(Debug)]
pub struct ScriptCgroup {
    dir: PathBuf,
    procs: CString,
}

impl ScriptCgroup {
    /// A new cgroup for one run (`None`: cgroups are not usable here, or creating it failed).
    pub fn create() -> Option<ScriptCgroup> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let base = base()?;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("vipd.{}.{}.{n}", std::process::id(), mark()));
        if let Err(e) = std::fs::create_dir(&dir) {
            debug!(cgroup = %dir.display(), error = %e, "cannot create a script cgroup; process group only");
            return None;
        }
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()?;
        Some(ScriptCgroup { dir, procs })
    }

    /// The `cgroup.procs` file the child writes itself into before exec.
    pub fn procs(&self) -> &CString {
        &self.procs
    }

    /// Kills every process in it.
    pub fn kill(&self) {
        kill_all(&self.dir);
    }

    /// Kills what is left and removes the cgroup (once the kernel has let go of the dead).
    pub async fn close(self) {
        self.kill();
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        debug!(cgroup = %self.dir.display(), "script cgroup not removed yet (removed at the next start)");
    }
}

impl Drop for ScriptCgroup {
    /// A run abandoned mid-way (vipd stopping, a reload replacing the trackers): kill now,
    /// remove if the kernel already let go (else the next start's sweep does).
    fn drop(&mut self) {
        if self.dir.exists() {
            kill_all(&self.dir);
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}
