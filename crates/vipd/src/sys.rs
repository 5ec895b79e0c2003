//! The one module allowed to use `unsafe`: thin wrappers over socket options and
//! link-layer addresses that socket2 and nix do not expose safely.
//!
//! Every `unsafe` block here is a single FFI call or a plain-old-data write into a
//! correctly sized, zero-initialised buffer; each carries a `SAFETY` comment. The
//! rest of the crate only sees the safe functions below.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use socket2::{SockAddr, SockAddrStorage, socklen_t};

/// Builds an `AF_PACKET` link-layer socket address (`struct sockaddr_ll`) for
/// `bind(2)`/`sendto(2)` on a packet socket.
///
/// `protocol` is the Ethernet protocol in host byte order (e.g. `libc::ETH_P_ALL as u16`,
/// or `0`); it is stored in network byte order as the kernel expects. `dst_mac`, if given,
/// becomes `sll_addr` (only meaningful for `SOCK_DGRAM` packet sockets; `SOCK_RAW`
/// senders put the destination in the frame itself).
#[allow(unsafe_code)]
pub fn packet_sockaddr(
    ifindex: u32,
    protocol: u16,
    dst_mac: Option<[u8; 6]>,
) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range"))?;
    let mut sll_addr = [0u8; 8];
    let mut sll_halen = 0u8;
    if let Some(mac) = dst_mac {
        sll_addr[..6].copy_from_slice(&mac);
        sll_halen = 6;
    }
    let ll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen,
        sll_addr,
    };
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_ll` is one of the platform's `sockaddr_*` types and is smaller
    // than `sockaddr_storage` (view_as asserts this), so viewing the zeroed storage as
    // one is sound; we then overwrite it with a fully initialised value.
    unsafe {
        *storage.view_as::<libc::sockaddr_ll>() = ll;
    }
    let len = std::mem::size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: the storage holds an initialised `sockaddr_ll` whose family is AF_PACKET,
    // and `len` is exactly its size.
    Ok(unsafe { SockAddr::new(storage, len) })
}

/// Registers an owned socket with the current tokio reactor.
///
/// Wraps `AsyncFd::register` (unsafe since tokio 1.54: the fd must stay the same open
/// descriptor for the `AsyncFd`'s lifetime). Returns an error instead of tokio's panic
/// when called outside a runtime. Callers must never replace the socket through
/// `AsyncFd::get_mut` (vipd keeps its `AsyncFd`s private and does not).
#[allow(unsafe_code)]
pub fn async_fd<T: AsRawFd>(sock: T) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "socket needs a tokio runtime (none running)",
        ));
    }
    // SAFETY: every caller passes an owning socket type (`socket2::Socket`,
    // `netlink_sys::Socket`): its descriptor stays open and `as_raw_fd` returns the same
    // value until it (moved into the AsyncFd) is dropped.
    unsafe { tokio::io::unix::AsyncFd::register(sock) }.map_err(io::Error::from)
}

/// Makes `cmd` drop privileges in the child before `exec`: supplementary groups (`groups`,
/// computed by the caller with `getgrouplist`, i.e. what `initgroups` would set), then the
/// group, then the user. Only async-signal-safe syscalls run in the child; nothing allocates.
/// Requires root in the parent (otherwise the child fails to start with EPERM).
#[allow(unsafe_code)]
pub fn exec_as(
    cmd: &mut tokio::process::Command,
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
    groups: Vec<nix::unistd::Gid>,
) {
    let errno = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    // SAFETY: the closure runs in the forked child before exec; it only performs the
    // setgroups/setgid/setuid syscalls on data owned by the closure (no allocation, no locks),
    // which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setgroups(&groups).map_err(errno)?;
            nix::unistd::setgid(gid).map_err(errno)?;
            nix::unistd::setuid(uid).map_err(errno)?;
            Ok(())
        });
    }
}

/// Makes the child of `cmd` start without ambient capabilities: a vipd that runs unprivileged
/// with ambient CAP_NET_RAW/CAP_NET_ADMIN (the systemd unit) must not hand them to the
/// scripts and notify programs it runs.
#[allow(unsafe_code)]
pub fn clear_ambient_caps(cmd: &mut tokio::process::Command) {
    // SAFETY: runs in the forked child before exec; prctl is a plain, async-signal-safe
    // syscall that touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            let rc = libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

/// A timerfd as tokio polls it (`AsRawFd`); see [`async_timerfd`].
pub struct TimerFdHandle(nix::sys::timerfd::TimerFd);

impl TimerFdHandle {
    /// The timer.
    pub fn timer(&self) -> &nix::sys::timerfd::TimerFd {
        &self.0
    }
}

impl std::os::fd::AsRawFd for TimerFdHandle {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers a timerfd (readable interest) with the current tokio reactor; same contract as
/// [`async_fd`] (the handle is never replaced through `AsyncFd::get_mut`).
#[allow(unsafe_code)]
pub fn async_timerfd(
    timer: nix::sys::timerfd::TimerFd,
) -> io::Result<tokio::io::unix::AsyncFd<TimerFdHandle>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "timer needs a tokio runtime (none running)",
        ));
    }
    // SAFETY: `TimerFd` owns its descriptor (an OwnedFd): it stays open and `as_raw_fd`
    // returns the same value until the handle (moved into the AsyncFd) is dropped.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            TimerFdHandle(timer),
            tokio::io::Interest::READABLE,
        )
    }
    .map_err(io::Error::from)
}

/// Attaches a classic BPF program to a socket (`SO_ATTACH_FILTER`): the kernel then queues
/// only the frames the program accepts. socket2 and nix have no safe wrapper for it.
#[allow(unsafe_code)]
pub fn attach_bpf(fd: &impl AsFd, program: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies the
    // program during setsockopt and keeps no pointer to it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::from_ref(&prog).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::sock_fprog>())
                .map_err(|_| io::Error::other("sock_fprog size"))?,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes ownership of descriptor `raw`, handed over through `execve` by the previous vipd
/// binary of an upgrade (its number came in the handover state). Refuses the standard
/// streams and a descriptor that is not open. The caller adopts each number at most once,
/// before anything else of this process could own it (at startup, before any socket opens).
#[allow(unsafe_code)]
pub fn adopt_fd(raw: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} is a standard stream"),
        ));
    }
    // SAFETY: F_GETFD on any integer is harmless; it tells whether `raw` is open.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is open (checked above), not a standard stream, and by the caller's
    // contract owned by nothing else in this process, so this OwnedFd is its only owner.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

/// Makes the child of `cmd` move itself into the cgroup whose `cgroup.procs` is `procs`
/// before anything else it does (register it before [`exec_as`]: the move needs vipd's own
/// identity), so that nothing it starts can leave that cgroup.
#[allow(unsafe_code)]
pub fn join_cgroup_on_exec(cmd: &mut tokio::process::Command, procs: std::ffi::CString) {
    // SAFETY: runs in the forked child before exec: open/write/close on a path prepared by
    // the parent (owned by the closure); no allocation, no locks, all async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if n == 1 { Ok(()) } else { Err(err) }
        });
    }
}

/// Makes the child of `cmd`, just before exec (register it after [`exec_as`]: a change of
/// identity clears the setting), get SIGKILL when vipd dies, and marks every descriptor
/// above stderr close-on-exec (whatever vipd holds, sockets handed over by an upgrade
/// included, never reaches a program).
#[allow(unsafe_code)]
pub fn die_with_parent_and_close_fds(cmd: &mut tokio::process::Command) {
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: runs in the forked child before exec: prctl, getppid, close_range and fcntl are
    // plain syscalls touching no memory of ours; async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // vipd died before the setting took effect.
                return Err(io::Error::other("vipd is gone"));
            }
            let rc = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            );
            if rc != 0 {
                // Kernels before 5.11: one descriptor at a time.
                for fd in 3..4096 {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
            Ok(())
        });
    }
}

/// Whether `e` is this process running out of its own resources (descriptors, memory,
/// processes, buffers) rather than an answer about what was tried: a tracker whose run
/// fails so keeps its last state instead of counting the run as a failure.
pub fn is_own_limit(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN | libc::ENOBUFS)
    )
}

/// Bytes waiting to be read in the pipe or socket `fd` (FIONREAD).
#[allow(unsafe_code)]
pub fn unread_bytes(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n`; `fd` is a
    // valid descriptor for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_sockaddr_has_packet_family() {
        let sa = packet_sockaddr(3, libc::ETH_P_ALL as u16, None).unwrap();
        assert_eq!(i32::from(sa.family()), libc::AF_PACKET);
        assert_eq!(sa.len() as usize, std::mem::size_of::<libc::sockaddr_ll>());
    }

    #[test]
    fn packet_sockaddr_rejects_huge_index() {
        assert!(packet_sockaddr(u32::MAX, 0, None).is_err());
    }
}
