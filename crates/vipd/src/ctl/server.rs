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
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{debug, warn};

use super::{Command, MAX_LINE, PROTOCOL_VERSION, Request, Response};

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

/// Binds the socket at `path`: removes a stale one, creates the directory, and sets mode
/// 0660 with group `access.group` (0600 without a group).
pub fn bind(path: &Path, access: Access) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("remove stale {}: {e}", path.display()),
            ));
        }
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
                "it is bound to {:?}, not {}",
                bound.as_pathname(),
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
const MAX_CONNECTIONS: usize = 64;
/// A connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(60);

/// Accepts connections until the daemon loop goes away.
pub async fn serve(listener: UnixListener, access: Access, tx: mpsc::Sender<CtlRequest>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            debug!("control socket: too many connections, refusing one");
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, access, tx).await {
                debug!(error = %e, "control connection ended");
            }
            drop(permit);
        });
    }
}

async fn connection(
    stream: UnixStream,
    access: Access,
    tx: mpsc::Sender<CtlRequest>,
) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    loop {
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
        wr.write_all(&out).await?;
        if !line.ends_with(b"\n") {
            // Over-long line (cut at MAX_LINE) or EOF without newline: close.
            return Ok(());
        }
    }
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
}
