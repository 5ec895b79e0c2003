//! keepalived's notify FIFO (`notify_fifo`, `vrrp_notify_fifo`): one line per state change,
//! in the order they happen, in keepalived's format:
//!
//! ```text
//! INSTANCE "VI_1" MASTER 150
//! GROUP "G1" BACKUP 0
//! INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150
//! ```
//!
//! The FIFO is created (mode 0600) when missing and removed at exit if vipd created it; a
//! path that exists and is not a FIFO is refused (vipd never writes into a file another user
//! may have put there). It is opened read-write and non-blocking, so a missing reader never
//! holds up the protocol loop: a line that does not fit is dropped and counted. The optional
//! reader program (`notify_fifo_script`) is started with the FIFO's path as its last argument,
//! as `script_user`, and stopped at exit.

use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::ratelimit::{LogEvery, held_note};
use crate::track::exec::{self, RunAs};

/// The reader program runs for vipd's lifetime: its "timeout".
const READER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// An open notify FIFO.
pub struct Fifo {
    file: std::fs::File,
    path: PathBuf,
    created: bool,
    reader: Option<JoinHandle<()>>,
    dropped: u64,
    full_log: LogEvery,
}

impl Fifo {
    /// Opens (creating if needed) the FIFO at `path` and starts `reader` (argv, run as
    /// `run_as`) with the path appended.
    pub fn open(path: &Path, reader: Option<(Vec<String>, Option<RunAs>)>) -> io::Result<Fifo> {
        let created = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_fifo() => false,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("notify_fifo {} exists and is not a FIFO", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| io::Error::other(format!("mkfifo {}: {e}", path.display())))?;
                true
            }
            Err(e) => return Err(e),
        };
        // Read-write: the open never waits for a reader, and writes fail fast (EAGAIN)
        // instead of blocking when nobody reads.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        let reader = reader.map(|(mut argv, run_as)| {
            argv.push(path.display().to_string());
            tokio::spawn(async move {
                let o = exec::run(&argv, run_as.as_ref(), READER_LIFETIME, 4096).await;
                warn!(program = %argv.join(" "), result = %o.describe(READER_LIFETIME),
                      output = %o.first_line(),
                      "notify_fifo_script {} ended ({}); FIFO lines are no longer read by it",
                      argv.join(" "), o.describe(READER_LIFETIME));
            })
        });
        info!(fifo = %path.display(), "notify FIFO open at {}", path.display());
        Ok(Fifo {
            file,
            path: path.to_path_buf(),
            created,
            reader,
            dropped: 0,
            full_log: LogEvery::new(Duration::from_secs(60)),
        })
    }

    /// Gives the reader up to `bound` to read what is in the FIFO (at exit, so that it sees
    /// the STOP lines before it is stopped).
    pub async fn drain(&self, bound: Duration) {
        use std::os::fd::AsFd;
        if self.reader.is_none() {
            return;
        }
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let unread = crate::sys::unread_bytes(self.file.as_fd()).unwrap_or(0);
            if unread == 0 || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one line (`kind` is `INSTANCE` or `GROUP`); never waits.
    pub fn line(&mut self, kind: &str, name: &str, state: &str, priority: u8) {
        let line = format_line(kind, name, state, priority);
        match self.file.write(line.as_bytes()) {
            Ok(n) if n == line.len() => {}
            Ok(_) | Err(_) => {
                self.dropped += 1;
                if let Some(held) = self.full_log.check(std::time::Instant::now()) {
                    warn!(fifo = %self.path.display(), dropped = self.dropped,
                          "notify FIFO {} is full (nobody reads it): {} line(s) dropped so far{}",
                          self.path.display(), self.dropped, held_note(held));
                }
            }
        }
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// keepalived's FIFO line: `TYPE "NAME" STATE PRIORITY\n`.
pub fn format_line(kind: &str, name: &str, state: &str, priority: u8) -> String {
    format!("{kind} \"{name}\" {state} {priority}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn lines_in_keepalived_format_in_order_and_never_blocking() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("vipd-fifo-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join("notify.fifo");
            let _ = std::fs::remove_file(&path);
            let mut f = Fifo::open(&path, None).unwrap();
            assert!(
                std::fs::symlink_metadata(&path)
                    .unwrap()
                    .file_type()
                    .is_fifo()
            );
            let mut reader = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .unwrap();
            f.line("INSTANCE", "VI_1", "MASTER", 150);
            f.line("GROUP", "G1", "MASTER", 0);
            let mut got = String::new();
            let _ = reader.read_to_string(&mut got);
            assert_eq!(got, "INSTANCE \"VI_1\" MASTER 150\nGROUP \"G1\" MASTER 0\n");
            // Nobody reading: the pipe fills, lines are dropped, the writer never waits.
            drop(reader);
            let t0 = std::time::Instant::now();
            for _ in 0..20_000 {
                f.line("INSTANCE", "VI_1", "BACKUP", 100);
            }
            assert!(t0.elapsed() < Duration::from_secs(2));
            assert!(f.dropped > 0);
            // Removed at exit because vipd created it; a regular file is refused.
            drop(f);
            assert!(!path.exists());
            std::fs::write(&path, "x").unwrap();
            assert!(Fifo::open(&path, None).is_err());
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "x");
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}
