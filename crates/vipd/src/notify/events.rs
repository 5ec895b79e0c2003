//! The events socket: a Unix stream socket that pushes one JSON object per line to every
//! connected client, in order, as things happen.
//!
//! Every object has `seq` (1, 2, 3... per daemon run), `ts` (RFC 3339, UTC, milliseconds),
//! `unix_ms` and `type`; see docs/tracking.md for the types. Delivery is through a bounded
//! broadcast queue: a client that falls more than [`QUEUE`] events behind, or whose socket does
//! not take a line within [`WRITE_TIMEOUT`], is disconnected (it can reconnect and re-read the
//! state) — the daemon never buffers without bound and never waits for a client.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

/// Events a client may fall behind before it is disconnected.
pub const QUEUE: usize = 1024;
/// Longest wait for a client's socket to take one line.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most clients at once.
pub const MAX_CLIENTS: usize = 64;

/// The server side; dropping it stops accepting, disconnects its clients and removes the
/// socket file (only if the file is still this hub's socket). A reload keeps the hub when
/// the path is unchanged (see [`super::Notifier::start`]), so clients stay connected.
pub struct Hub {
    tx: broadcast::Sender<Arc<str>>,
    seq: u64,
    path: PathBuf,
    /// (device, inode) of the socket file this hub bound.
    file: Option<(u64, u64)>,
    accept: tokio::task::AbortHandle,
}

impl Hub {
    /// Binds `path` (mode 0660; a stale socket there is replaced; the parent directory is
    /// created if missing) and starts accepting clients.
    pub fn bind(path: &Path) -> io::Result<Hub> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if let Ok(md) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if md.file_type().is_socket() {
                std::fs::remove_file(path)?;
            } else {
                return Err(io::Error::other(format!(
                    "events_socket {} exists and is not a socket",
                    path.display()
                )));
            }
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        let (tx, _) = broadcast::channel::<Arc<str>>(QUEUE);
        let tx2 = tx.clone();
        let clients = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(async move {
            loop {
                let (mut stream, _) = match listener.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "events socket: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    warn!(
                        max = MAX_CLIENTS,
                        "events socket: too many clients; refusing one"
                    );
                    continue;
                }
                clients.fetch_add(1, Ordering::Relaxed);
                let mut rx = tx2.subscribe();
                let clients = Arc::clone(&clients);
                tokio::spawn(async move {
                    debug!("events socket: client connected");
                    loop {
                        match rx.recv().await {
                            Ok(line) => {
                                match tokio::time::timeout(
                                    WRITE_TIMEOUT,
                                    stream.write_all(line.as_bytes()),
                                )
                                .await
                                {
                                    Ok(Ok(())) => {}
                                    Ok(Err(_)) => break,
                                    Err(_) => {
                                        warn!(
                                            "events socket: a client does not read; disconnecting it"
                                        );
                                        break;
                                    }
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                warn!(
                                    missed = n,
                                    "events socket: a client fell behind; disconnecting it"
                                );
                                break;
                            }
                            Err(broadcast::error::RecvError::Closed) => break,
                        }
                    }
                    clients.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        info!(path = %path.display(), "events socket listening");
        Ok(Hub {
            tx,
            seq: 0,
            path: path.to_path_buf(),
            file: file_id(path),
            accept: accept.abort_handle(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `obj` (with `type` set by the caller) to every client, adding `seq`, `ts` and
    /// `unix_ms`.
    pub fn send(&mut self, obj: Map<String, Value>) {
        self.seq += 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let mut out = Map::new();
        out.insert("seq".into(), Value::from(self.seq));
        out.insert("ts".into(), Value::from(rfc3339_ms(ms)));
        out.insert("unix_ms".into(), Value::from(ms));
        out.extend(obj);
        let mut line = Value::Object(out).to_string();
        line.push('\n');
        // No receivers is fine: nobody listens.
        let _ = self.tx.send(Arc::from(line));
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Stops the listener; the clients' tasks then see the channel closed and disconnect.
        self.accept.abort();
        // Another hub may have bound this path since (a reload): only our own file goes.
        if self.file.is_some() && file_id(&self.path) == self.file {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// `2024-05-01T12:34:56.789Z` for milliseconds since the epoch.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
