//! The server side of the control socket: accepts connections, checks who is asking
//! (SO_PEERCRED), reads bounded JSON lines and hands each command to the daemon loop.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::unistd::{Gid, Uid, User, chown};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{Command, MAX_LINE, PROTOCOL_VERSION, Request, Response};
use crate::ratelimit::{LogEvery, held_note};

/// A command for the daemon loop, with where to send the answer.
#[derive(Debug)]
pub struct CtlRequest {
    /// The command.
    pub cmd: Command,
    /// The answer.
    pub reply: oneshot::Sender<Response>,
}

/// Who may do what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Members of this group may read (status); only root may change anything.
    pub group: Option<Gid>,
}

impl Access {
    /// Whether a peer with these credentials may run `cmd`; `Err` says why not.
    pub fn check(&self, uid: u32, gid: u32, cmd: &Command) -> Result<(), String> {
        if uid == 0 {
            return Ok(());
        }
        if cmd.is_change() {
            return Err("only root may change vipd's state".into());
        }
        let Some(group) = self.group else {
            return Err(
                "only root may talk to vipd (set control_group to let a group read status)".into(),
            );
        };
        if gid == group.as_raw() || in_group(uid, group) {
            Ok(())
        } else {
            Err(format!(
                "uid {uid} is neither root nor in vipd's control group"
            ))
        }
    }
}

fn in_group(uid: u32, group: Gid) -> bool {
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid)
        .map(|groups| groups.contains(&group))
        .unwrap_or(false)
}

/// Binds the socket at `path`: creates missing directories with mode 0750, removes a stale
/// socket (and refuses anything else at the path: a file, a directory, a symlink is never
/// deleted), and sets mode 0660 with group `access.group` (0600 without a group).
pub fn bind(path: &Path, access: Access) -> io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _};
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(|e| {
            io::Error::new(e.kind(), format!("remove stale {}: {e}", path.display()))
        })?,
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a directory"
            } else {
                "not a socket"
            };
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is {what}: refusing to replace it (remove it, or set control_socket elsewhere)",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("bind control socket {}: {e}", path.display()),
        )
    })?;
    // Owner (vipd's user) and root only, until the group is set: the socket is never
    // readable by a group it does not belong to.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    if let Some(g) = access.group {
        // Needs CAP_CHOWN unless vipd's user is a member of the group (systemd:
        // SupplementaryGroups=); without it only root may use the socket.
        match chown(path, None, Some(g)) {
            Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?,
            Err(e) => warn!(
                socket = %path.display(), gid = g.as_raw(), error = %e,
                "cannot give the control socket to control_group (vipd's user must be a member \
                 of it, or have CAP_CHOWN): only root may use the socket"
            ),
        }
    }
    Ok(listener)
}

/// Takes over the listening control socket an upgrade handed over, after checking that it
/// is a listening Unix socket bound to `path`.
pub fn adopt(fd: std::os::fd::OwnedFd, path: &Path) -> io::Result<UnixListener> {
    let std = std::os::unix::net::UnixListener::from(fd);
    let bound = std.local_addr()?;
    if bound.as_pathname() != Some(path) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is bound to {}, not {}",
                bound
                    .as_pathname()
                    .map_or_else(|| "no path".to_owned(), |p| p.display().to_string()),
                path.display()
            ),
        ));
    }
    std.set_nonblocking(true)?;
    UnixListener::from_std(std)
}

/// Removes the socket file when dropped.
pub struct SocketFile(pub PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Of those, the most held by non-root users together: the rest are root's.
pub const MAX_UNPRIVILEGED: usize = 48;
/// The most connections one non-root uid may hold.
pub const MAX_PER_UID: usize = 4;
/// Requests read on one connection before it is closed (vipctl sends one).
pub const MAX_REQUESTS: usize = 64;
/// A connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// Writing one response may take this long (a client that does not read is dropped).
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// A control-group lookup (NSS: files, LDAP, ...) may take this long.
const GROUP_LOOKUP: Duration = Duration::from_secs(2);

/// Connections held, by uid.
#[derive(Debug, Default)]
struct Slots {
    total: usize,
    unprivileged: usize,
    by_uid: std::collections::HashMap<u32, usize>,
}

impl Slots {
    /// Takes a slot for `uid`, or says why not.
    fn take(&mut self, uid: u32) -> Result<(), &'static str> {
        if self.total >= MAX_CONNECTIONS {
            return Err("every connection slot is in use");
        }
        if uid != 0 {
            if self.unprivileged >= MAX_UNPRIVILEGED {
                return Err("the slots for non-root users are in use (the rest are kept for root)");
            }
            let n = self.by_uid.get(&uid).copied().unwrap_or(0);
            if n >= MAX_PER_UID {
                return Err("this user already holds its share of connections");
            }
            self.by_uid.insert(uid, n + 1);
            self.unprivileged += 1;
        }
        self.total += 1;
        Ok(())
    }

    fn give_back(&mut self, uid: u32) {
        self.total = self.total.saturating_sub(1);
        if uid != 0 {
            self.unprivileged = self.unprivileged.saturating_sub(1);
            if let Some(n) = self.by_uid.get_mut(&uid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.by_uid.remove(&uid);
                }
            }
        }
    }
}

/// A slot, given back on drop.
struct Slot {
    slots: Arc<std::sync::Mutex<Slots>>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.slots.lock() {
            s.give_back(self.uid);
        }
    }
}

/// Accepts connections until the daemon loop goes away.
pub async fn serve(listener: UnixListener, access: Access, tx: mpsc::Sender<CtlRequest>) {
    let slots = Arc::new(std::sync::Mutex::new(Slots::default()));
    let mut refused = LogEvery::new(Duration::from_secs(60));
    let mut accept_failed = LogEvery::new(Duration::from_secs(60));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                super::accept_failed(&mut accept_failed, "control socket", &e).await;
                continue;
            }
        };
        // Who is asking, before anything is read from them.
        let Ok(cred) = stream.peer_cred() else {
            continue;
        };
        let uid = cred.uid();
        let taken = slots
            .lock()
            .map_err(|_| "poisoned")
            .and_then(|mut s| s.take(uid));
        if let Err(why) = taken {
            if let Some(held) = refused.check(std::time::Instant::now()) {
                warn!(
                    uid,
                    pid = cred.pid().unwrap_or(0),
                    "control socket: refused a connection of uid {uid}: {why}{}",
                    held_note(held)
                );
            }
            // Best effort, never waiting: tell them why.
            let line = refusal(why);
            let _ = stream.try_write(&line);
            continue;
        }
        let slot = Slot {
            slots: Arc::clone(&slots),
            uid,
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection(stream, cred, access, tx).await {
                debug!(error = %e, "control connection ended");
            }
        });
    }
}

fn refusal(why: &str) -> Vec<u8> {
    let mut out = serde_json::to_vec(&Response::error(format!(
        "vipd refused the connection: {why}"
    )))
    .unwrap_or_default();
    out.push(b'\n');
    out
}

/// What this peer may do at all: root everything; a control_group member status; anyone
/// else nothing (decided before a request is read; the group lookup runs off the event loop).
async fn peer_access(access: Access, uid: u32, gid: u32) -> Result<(), String> {
    if uid == 0 {
        return Ok(());
    }
    let Some(group) = access.group else {
        return Err(
            "only root may talk to vipd (set control_group to let a group read status)".into(),
        );
    };
    if gid == group.as_raw() {
        return Ok(());
    }
    let lookup = tokio::task::spawn_blocking(move || in_group(uid, group));
    match tokio::time::timeout(GROUP_LOOKUP, lookup).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(format!(
            "uid {uid} is neither root nor in vipd's control group"
        )),
        _ => Err(format!(
            "could not tell whether uid {uid} is in vipd's control group (the group lookup took over {GROUP_LOOKUP:?})"
        )),
    }
}

async fn connection(
    stream: UnixStream,
    cred: tokio::net::unix::UCred,
    access: Access,
    tx: mpsc::Sender<CtlRequest>,
) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let allowed = peer_access(access, cred.uid(), cred.gid()).await;
    if let Err(why) = &allowed {
        let mut out =
            serde_json::to_vec(&Response::error(why.clone())).map_err(io::Error::other)?;
        out.push(b'\n');
        let _ = tokio::time::timeout(WRITE_DEADLINE, wr.write_all(&out)).await;
        return Ok(());
    }
    let mut rd = BufReader::new(rd);
    for _ in 0..MAX_REQUESTS {
        let mut line = Vec::new();
        let n = tokio::time::timeout(
            IDLE,
            (&mut rd).take(MAX_LINE as u64).read_until(b'\n', &mut line),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle"))??;
        if n == 0 {
            return Ok(());
        }
        let resp = match serde_json::from_slice::<Request>(&line) {
            Err(e) => Response::error(format!("bad request: {e}")),
            Ok(req) if req.v != PROTOCOL_VERSION => Response::error(format!(
                "protocol version {} not supported (this vipd speaks {PROTOCOL_VERSION})",
                req.v
            )),
            Ok(req) => match access.check(cred.uid(), cred.gid(), &req.cmd) {
                Err(why) => Response::error(why),
                Ok(()) => {
                    let (reply, rx) = oneshot::channel();
                    if tx
                        .send(CtlRequest {
                            cmd: req.cmd,
                            reply,
                        })
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                    rx.await
                        .unwrap_or_else(|_| Response::error("vipd is stopping"))
                }
            },
        };
        let mut out = serde_json::to_vec(&resp).map_err(io::Error::other)?;
        out.push(b'\n');
        tokio::time::timeout(WRITE_DEADLINE, wr.write_all(&out))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client does not read"))??;
        if !line.ends_with(b"\n") {
            // Over-long line (cut at MAX_LINE) or EOF without newline: close.
            return Ok(());
        }
    }
    debug!(
        uid = cred.uid(),
        "control connection closed after {MAX_REQUESTS} requests"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules() {
        let none = Access { group: None };
        assert!(none.check(0, 0, &Command::Reload).is_ok());
        assert!(none.check(1000, 1000, &Command::Status).is_err());
        let grp = Access {
            group: Some(Gid::from_raw(4242)),
        };
        assert!(grp.check(1000, 4242, &Command::Status).is_ok());
        assert!(grp.check(1000, 4242, &Command::Reload).is_err());
        assert!(grp.check(1000, 1000, &Command::Status).is_err());
    }

    #[test]
    fn slots_keep_room_for_root() {
        let mut s = Slots::default();
        // One user: its share, then no more.
        for _ in 0..MAX_PER_UID {
            s.take(1000).unwrap();
        }
        assert!(s.take(1000).is_err());
        // Many users: together at most MAX_UNPRIVILEGED.
        let mut uid = 2000;
        while s.unprivileged < MAX_UNPRIVILEGED {
            s.take(uid).unwrap();
            uid += 1;
        }
        assert!(s.take(uid + 1).is_err());
        // Root still gets in, up to the total.
        for _ in 0..MAX_CONNECTIONS - MAX_UNPRIVILEGED {
            s.take(0).unwrap();
        }
        assert!(s.take(0).is_err());
        s.give_back(1000);
        assert!(s.take(1000).is_ok());
        s.give_back(0);
        assert!(s.take(0).is_ok());
    }
}
