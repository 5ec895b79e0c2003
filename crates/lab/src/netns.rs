//! Entering a named network namespace (`ip netns add NAME` makes /run/netns/NAME) from a thread.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

/// Moves the calling thread into the network namespace `name` (as made by `ip netns add`).
/// Only this thread moves; sockets opened afterwards on it live in that namespace.
pub fn enter(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name.contains("..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad netns name {name:?}"),
        ));
    }
    enter_path(&Path::new("/run/netns").join(name))
}

/// Moves the calling thread into the network namespace of `path` (a `/run/netns/NAME` or
/// `/proc/PID/ns/net` file).
pub fn enter_path(path: &Path) -> io::Result<()> {
    let f = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::other(format!("setns {}: {e}", path.display())))
}
