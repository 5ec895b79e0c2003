//! `[[track_file]]`: files holding an integer, watched with inotify (never polled).
//!
//! The DIRECTORY of each file is watched, so that both in-place writes (`echo 5 > f`, seen at
//! close) and atomic replacement by rename (`mv tmp f`) are noticed, as well as deletion
//! (value 0). One thread serves every file tracker.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{Observation, TrackerUpdate};
use crate::ratelimit::{LogEvery, held_note};

/// Most bytes read from a tracked file.
const READ_CAP: u64 = 64;

/// The value in `path`: a decimal integer (surrounding whitespace ignored). A missing or empty
/// file reads as 0; an unreadable one as 0 with the reason. An error means the tracker keeps
/// its last value: vipd's own lack of descriptors or memory, or a path that is not a regular
/// file (a FIFO is opened non-blocking and never read: it must not hang the watcher, and
/// whoever can put one there must not decide the value).
pub fn read_value(path: &Path) -> std::io::Result<(i64, Option<String>)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut text = String::new();
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    match opened {
        Ok(f) => {
            if !f.metadata().is_ok_and(|m| m.is_file()) {
                return Err(std::io::Error::other(
                    "not a regular file (a FIFO, socket or device)",
                ));
            }
            if let Err(e) = f.take(READ_CAP).read_to_string(&mut text) {
                if crate::sys::is_own_limit(&e) {
                    return Err(e);
                }
                return Ok((0, Some(format!("cannot read: {e}"))));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, None)),
        Err(e) if crate::sys::is_own_limit(&e) => return Err(e),
        Err(e) => return Ok((0, Some(format!("cannot open: {e}")))),
    }
    let t = text.trim();
    if t.is_empty() {
        return Ok((0, None));
    }
    Ok(match t.parse::<i64>() {
        Ok(v) => (v.clamp(-1_000_000, 1_000_000), None),
        Err(_) => (
            0,
            Some(format!(
                "not an integer: {:?}",
                t.chars().take(20).collect::<String>()
            )),
        ),
    })
}

fn report(idx: usize, path: &Path, tx: &mpsc::Sender<TrackerUpdate>, limit: &mut LogEvery) -> bool {
    let (v, problem) = match read_value(path) {
        Ok(v) => v,
        Err(e) => {
            if let Some(held) = limit.check(std::time::Instant::now()) {
                warn!(file = %path.display(), error = %e,
                      "track_file {}: not read ({e}); the tracker keeps its last value{}",
                      path.display(), held_note(held));
            }
            return true;
        }
    };
    if let Some(p) = problem
        && let Some(held) = limit.check(std::time::Instant::now())
    {
        warn!(file = %path.display(), problem = %p,
              "track_file {}: reading as 0: {p}{}", path.display(), held_note(held));
    }
    tx.blocking_send(TrackerUpdate {
        tracker: idx,
        obs: Observation::Value(v),
    })
    .is_ok()
}

/// keepalived's `init_file`: creates `f`'s file holding its `init` value when it is missing
/// (or always, with `init_overwrite`), as vipd's user, mode 0644, never through a symlink.
pub fn init(f: &vipd_config::TrackFile) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let Some(v) = f.init else { return };
    if std::fs::symlink_metadata(&f.path).is_ok() && !f.init_overwrite {
        return;
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&f.path)
        .and_then(|mut file| writeln!(file, "{v}"));
    match written {
        Ok(()) => info!(tracker = %f.name, file = %f.path.display(),
                        "track_file {}: {} written with {v} (init)", f.name, f.path.display()),
        Err(e) => warn!(tracker = %f.name, file = %f.path.display(), error = %e,
                        "track_file {}: cannot create {} with {v}: {e}", f.name, f.path.display()),
    }
}

/// Starts the watcher thread for `files` (tracker index, path): reports every value at once,
/// then on every change.
pub fn spawn_watcher(
    files: Vec<(usize, PathBuf)>,
    tx: mpsc::Sender<TrackerUpdate>,
) -> std::io::Result<()> {
    let ino = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    let mask = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE;
    // watch → [(file name in that directory, tracker, full path)]
    let mut watches: HashMap<WatchDescriptor, Vec<(OsString, usize, PathBuf)>> = HashMap::new();
    for (idx, path) in &files {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        match ino.add_watch(dir, mask) {
            Ok(wd) => {
                watches
                    .entry(wd)
                    .or_default()
                    .push((name.to_os_string(), *idx, path.clone()))
            }
            Err(e) => warn!(file = %path.display(), error = %e,
                            "track_file: cannot watch the directory; the value stays as read now"),
        }
    }
    std::thread::Builder::new()
        .name("vipd-track-file".into())
        .spawn(move || {
            let mut limit = LogEvery::new(std::time::Duration::from_secs(10));
            for (idx, path) in &files {
                if !report(*idx, path, &tx, &mut limit) {
                    return;
                }
            }
            info!(files = files.len(), "track_file: watching");
            loop {
                let events = match ino.read_events() {
                    Ok(ev) => ev,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        warn!(error = %e, "track_file: inotify failed; file trackers keep their last value");
                        return;
                    }
                };
                for ev in events {
                    if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                        for (idx, path) in &files {
                            if !report(*idx, path, &tx, &mut limit) {
                                return;
                            }
                        }
                        continue;
                    }
                    let Some(list) = watches.get(&ev.wd) else {
                        continue;
                    };
                    for (name, idx, path) in list {
                        if ev.name.as_ref() == Some(name) && !report(*idx, path, &tx, &mut limit) {
                            return;
                        }
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {

    /// keepalived's init_file: created when missing, kept when present, rewritten with
    /// init_overwrite, never through a symlink.
    #[test]
    fn init_creates_the_file_as_keepalived_does() {
        let dir = std::env::temp_dir().join(format!("vipd-init-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("weight");
        let mut f = vipd_config::TrackFile {
            name: "w".into(),
            path: path.clone(),
            weight: 1,
            init: Some(3),
            init_overwrite: false,
        };
        init(&f);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3\n");
        std::fs::write(&path, "7\n").unwrap();
        init(&f);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "7\n", "kept");
        f.init_overwrite = true;
        init(&f);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "3\n",
            "overwritten"
        );
        let target = dir.join("elsewhere");
        std::fs::write(&target, "9\n").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        f.path = link;
        init(&f);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "9\n",
            "followed a symlink"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    use super::*;

    #[test]
    fn values() {
        let dir = std::env::temp_dir().join(format!("vipd-trackfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("v");
        assert_eq!(read_value(&f).unwrap(), (0, None));
        std::fs::write(&f, " 42\n").unwrap();
        assert_eq!(read_value(&f).unwrap(), (42, None));
        std::fs::write(&f, "-7").unwrap();
        assert_eq!(read_value(&f).unwrap(), (-7, None));
        std::fs::write(&f, "abc").unwrap();
        assert_eq!(read_value(&f).unwrap().0, 0);
        assert!(read_value(&f).unwrap().1.is_some());
        // A FIFO without a writer: refused at once (never a hang), the value is kept.
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t0 = std::time::Instant::now();
        let e = read_value(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn watcher_sees_write_and_rename() {
        let dir = std::env::temp_dir().join(format!("vipd-trackwatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("w");
        std::fs::write(&f, "1").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        spawn_watcher(vec![(7, f.clone())], tx).unwrap();
        let next = |rx: &mut mpsc::Receiver<TrackerUpdate>| {
            let t0 = std::time::Instant::now();
            loop {
                if let Ok(u) = rx.try_recv() {
                    return u;
                }
                assert!(
                    t0.elapsed() < std::time::Duration::from_secs(5),
                    "no update"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        assert_eq!(next(&mut rx).obs, Observation::Value(1));
        std::fs::write(&f, "5\n").unwrap();
        assert_eq!(next(&mut rx).obs, Observation::Value(5));
        let tmp = dir.join(".w.tmp");
        std::fs::write(&tmp, "-3").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        assert_eq!(next(&mut rx).obs, Observation::Value(-3));
        std::fs::remove_file(&f).unwrap();
        let u = next(&mut rx);
        assert_eq!((u.tracker, u.obs), (7, Observation::Value(0)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
