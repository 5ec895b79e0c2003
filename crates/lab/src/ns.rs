//! One network namespace: run commands / closures / async code inside it.
//!
//! Every failure is an [`io::Error`] whose message says what was run, in which
//! namespace, and (for commands) what it printed on stderr.

use std::fmt::Display;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// Wraps `e` with `what` (keeping its kind): `"{what}: {e}"`.
pub(crate) fn context(e: io::Error, what: impl Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The error for a command that ran but exited unsuccessfully.
pub(crate) fn command_failed(what: impl Display, out: &Output) -> io::Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut msg = format!("{what} failed ({})", out.status);
    for s in [stderr.trim(), stdout.trim()] {
        if !s.is_empty() {
            msg.push_str(": ");
            msg.push_str(s);
        }
    }
    io::Error::other(msg)
}

/// `ip netns exec NS a b c` as a printable command line.
fn cmdline(prefix: &[&str], args: &[&str]) -> String {
    prefix
        .iter()
        .chain(args)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A scratch directory removed on drop (spawn logs, captures).
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub(crate) fn new(tag: &str) -> io::Result<Scratch> {
        let (stem, _) = super::lan::unique_stem(tag);
        let path = std::env::temp_dir().join(format!("vipd-lab-{stem}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|e| context(e, format_args!("create {}", path.display())))?;
        Ok(Scratch { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A handle on a named network namespace (`/run/netns/NAME`). It does NOT own the
/// namespace: the [`super::lan::Lan`] that created it deletes it.
#[derive(Debug, Clone)]
pub struct Netns {
    name: String,
}

/// One address as reported by `ip -j addr show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv4 label (e.g. `eth0:vip`), if any.
    pub label: Option<String>,
    /// `global`, `site`, `link` or `host`.
    pub scope: String,
    /// Boolean flags iproute2 reports as true: `tentative`, `nodad`, `dadfailed`, ...
    pub flags: Vec<String>,
}

impl AddrInfo {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    pub fn tentative(&self) -> bool {
        self.has_flag("tentative")
    }
}

/// Link state as reported by `ip -j link show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub mac: [u8; 6],
    /// `IFF_UP` administratively.
    pub admin_up: bool,
    /// `LOWER_UP` (carrier).
    pub lower_up: bool,
    /// `NO-CARRIER` present in the flags.
    pub no_carrier: bool,
    pub operstate: String,
    pub mtu: u32,
}

impl Netns {
    pub(crate) fn new(name: String) -> Netns {
        Netns { name }
    }

    /// A handle on an existing named namespace (`ip netns add NAME` made
    /// `/run/netns/NAME`). Nothing is checked here: operations on a namespace that does
    /// not exist fail with an error naming it. The handle never deletes the namespace.
    pub fn existing(name: &str) -> Netns {
        Netns {
            name: name.to_owned(),
        }
    }

    /// The namespace name (for `ip netns exec NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    fn exec_prefix(&self) -> [&str; 3] {
        ["netns", "exec", &self.name]
    }

    /// Runs `args` inside the namespace (`ip netns exec NAME args...`) and returns its
    /// output, whatever the exit status. Err only if `ip` itself cannot be run.
    pub fn exec(&self, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(self.exec_prefix())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                context(
                    e,
                    format_args!(
                        "cannot run `{}`",
                        cmdline(&["ip", "netns", "exec", &self.name], args)
                    ),
                )
            })
    }

    /// Like [`Netns::exec`] but an error (with stderr) unless the command succeeds;
    /// returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> io::Result<String> {
        let out = self.exec(args)?;
        if !out.status.success() {
            return Err(command_failed(
                format_args!("in netns {}: `{}`", self.name, args.join(" ")),
                &out,
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ip -n NAME args...`; an error (with stderr) on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let what = cmdline(&["ip", "-n", &self.name], args);
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| context(e, format_args!("cannot run `{what}`")))?;
        if !out.status.success() {
            return Err(command_failed(format_args!("`{what}`"), &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sets sysctls (`key=value`) inside the namespace.
    pub fn sysctl(&self, settings: &[&str]) -> io::Result<()> {
        let mut args = vec!["sysctl", "-q", "-w"];
        args.extend_from_slice(settings);
        self.exec_ok(&args).map(drop)
    }

    /// Starts `args` inside the namespace; stdout+stderr go to a temporary log file
    /// (removed with the guard) readable with [`ChildGuard::log`]. The process is
    /// killed when the guard drops.
    pub fn spawn(&self, args: &[&str]) -> io::Result<ChildGuard> {
        let dir = Scratch::new("spawn")?;
        let log_path = dir.path().join("output.log");
        let mut guard = self.spawn_logged(args, &log_path)?;
        guard.dir = Some(dir);
        Ok(guard)
    }

    /// Starts `args` inside the namespace with stdout+stderr written to `log` (created or
    /// truncated; the caller owns the file: it outlives the guard).
    /// The process is killed when the guard drops.
    pub fn spawn_logged(&self, args: &[&str], log: &Path) -> io::Result<ChildGuard> {
        let what = format!("`{}` in netns {}", args.join(" "), self.name);
        let out = File::create(log)
            .map_err(|e| context(e, format_args!("create log {} for {what}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| context(e, format_args!("dup log {} for {what}", log.display())))?;
        let child = Command::new("ip")
            .args(self.exec_prefix())
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| context(e, format_args!("cannot spawn {what}")))?;
        Ok(ChildGuard {
            child: Some(child),
            status: None,
            log_path: log.to_path_buf(),
            dir: None,
            what,
        })
    }

    /// Addresses on `ifname` (`ip -j addr show dev IFNAME`).
    pub fn addrs_on(&self, ifname: &str) -> io::Result<Vec<AddrInfo>> {
        let out = self.ip(&["-j", "addr", "show", "dev", ifname])?;
        let v = self.parse_json(&out, "addr", ifname)?;
        let mut res = Vec::new();
        for link in v.as_array().into_iter().flatten() {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                let Some(addr) = a["local"].as_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let flags = a
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| v.as_bool() == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect();
                res.push(AddrInfo {
                    addr,
                    prefix_len: a["prefixlen"]
                        .as_u64()
                        .and_then(|p| u8::try_from(p).ok())
                        .unwrap_or(0),
                    label: a["label"].as_str().map(str::to_owned),
                    scope: a["scope"].as_str().unwrap_or("").to_owned(),
                    flags,
                });
            }
        }
        Ok(res)
    }

    /// Whether `addr` is configured on `ifname`.
    pub fn has_addr(&self, ifname: &str, addr: IpAddr) -> io::Result<bool> {
        Ok(self.addrs_on(ifname)?.iter().any(|a| a.addr == addr))
    }

    /// Link state of `ifname` (`ip -j link show dev IFNAME`).
    pub fn link(&self, ifname: &str) -> io::Result<LinkState> {
        let out = self.ip(&["-j", "link", "show", "dev", ifname])?;
        let v = self.parse_json(&out, "link", ifname)?;
        let l = &v[0];
        let flags: Vec<&str> = l["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .collect();
        let index = l["ifindex"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "ip -n {} -j link show dev {ifname}: no ifindex in {out:?}",
                        self.name
                    ),
                )
            })?;
        Ok(LinkState {
            index,
            mac: parse_mac(l["address"].as_str().unwrap_or("")).unwrap_or([0; 6]),
            admin_up: flags.contains(&"UP"),
            lower_up: flags.contains(&"LOWER_UP"),
            no_carrier: flags.contains(&"NO-CARRIER"),
            operstate: l["operstate"].as_str().unwrap_or("").to_owned(),
            mtu: l["mtu"]
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0),
        })
    }

    fn parse_json(&self, out: &str, what: &str, ifname: &str) -> io::Result<serde_json::Value> {
        serde_json::from_str(out).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "ip -n {} -j {what} show dev {ifname}: bad JSON ({e}): {out:?}",
                    self.name
                ),
            )
        })
    }

    /// Runs `f` on a fresh thread that has entered this namespace and returns its
    /// result. Err if the thread cannot be started or cannot enter the namespace; a
    /// panic inside `f` is propagated (resumed) to the caller. Sockets created by `f`
    /// live in the namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> io::Result<R> {
        let path = self.path();
        std::thread::scope(|s| {
            let h = std::thread::Builder::new()
                .name(format!("ns-{}", self.name))
                .spawn_scoped(s, move || -> io::Result<R> {
                    super::netns::enter_path(&path)?;
                    Ok(f())
                })
                .map_err(|e| context(e, format_args!("spawn a thread for netns {}", self.name)))?;
            match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// Runs async code inside the namespace: a thread enters the namespace, THEN builds
    /// a current-thread tokio runtime (time+io enabled) and blocks on `f()`. Netlink and
    /// raw sockets created inside belong to the namespace.
    pub fn run_async<F, Fut, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        let name = &self.name;
        self.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| context(e, format_args!("tokio runtime in netns {name}")))?;
            Ok(rt.block_on(f()))
        })?
    }

    /// Starts async code inside the namespace on a background thread (own runtime) and
    /// returns at once; join the handle to get the result ([`Netns::run_async`]'s).
    pub fn spawn_async<F, Fut, R>(&self, f: F) -> io::Result<JoinHandle<io::Result<R>>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static,
    {
        let ns = self.clone();
        std::thread::Builder::new()
            .name(format!("ns-async-{}", self.name))
            .spawn(move || ns.run_async(f))
            .map_err(|e| context(e, format_args!("spawn a thread for netns {}", self.name)))
    }

    /// Sends one ICMP/ICMPv6 echo request from inside the namespace and waits up to 1 s
    /// for the reply. IPv6 link-local destinations go out of `eth0`. `Ok(false)` when
    /// there is no reply (or the destination is unreachable); Err when the namespace
    /// cannot be entered or the raw socket cannot be used.
    pub fn ping(&self, addr: IpAddr) -> io::Result<bool> {
        self.ping_timeout(addr, Duration::from_secs(1))
    }

    /// [`Netns::ping`] with a custom timeout.
    pub fn ping_timeout(&self, addr: IpAddr, timeout: Duration) -> io::Result<bool> {
        self.run(move || icmp_echo(addr, timeout))?
            .map_err(|e| context(e, format_args!("ping {addr} in netns {}", self.name)))
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn icmp_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = match *c {
            [a, b] => u16::from_be_bytes([a, b]),
            [a] => u16::from_be_bytes([a, 0]),
            _ => 0,
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Errors that mean "no answer" rather than "the ping could not be attempted".
fn unreachable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN
                | libc::EADDRNOTAVAIL
                | libc::ECONNREFUSED
                | libc::ENOBUFS
        )
    )
}

/// A raw-socket ping (no dependency on iputils). Runs in the caller's namespace.
fn icmp_echo(addr: IpAddr, timeout: Duration) -> io::Result<bool> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::AsRawFd;
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let seq: u16 = next_seq();
    let (sock, dst, req_type, rep_type, skip_ip) = match addr {
        IpAddr::V4(a) => (
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
                .map_err(|e| context(e, "raw ICMP socket"))?,
            SocketAddr::new(IpAddr::V4(a), 0),
            8u8,
            0u8,
            true,
        ),
        IpAddr::V6(a) => {
            let scope = if a.segments()[0] & 0xffc0 == 0xfe80 {
                nix::net::if_::if_nametoindex("eth0").unwrap_or(0)
            } else {
                0
            };
            (
                Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
                    .map_err(|e| context(e, "raw ICMPv6 socket"))?,
                SocketAddr::V6(SocketAddrV6::new(a, 0, 0, scope)),
                128u8,
                129u8,
                false,
            )
        }
    };
    let mut pkt = vec![req_type, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"vipd-harness-ping");
    if !addr.is_ipv6() {
        let c = icmp_checksum(&pkt).to_be_bytes();
        pkt[2] = c[0];
        pkt[3] = c[1];
    } // ICMPv6 raw sockets: the kernel computes the checksum.
    match sock.send_to(&pkt, &dst.into()) {
        Ok(_) => {}
        Err(e) if unreachable(&e) => return Ok(false),
        Err(e) => return Err(context(e, "send echo request")),
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| context(e, "set receive timeout"))?;
        let (n, from) = match nix::sys::socket::recvfrom::<nix::sys::socket::SockaddrStorage>(
            sock.as_raw_fd(),
            &mut buf,
        ) {
            Ok(r) => r,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(false),
            Err(e) => {
                let e = io::Error::from(e);
                if unreachable(&e) {
                    return Ok(false);
                }
                return Err(context(e, "receive echo reply"));
            }
        };
        let bytes = buf.get(..n).unwrap_or(&[]);
        let icmp = if skip_ip {
            let ihl = usize::from(bytes.first().copied().unwrap_or(0) & 0x0f) * 4;
            bytes.get(ihl..).unwrap_or(&[])
        } else {
            bytes
        };
        let from_ip = from.and_then(|f| {
            f.as_sockaddr_in()
                .map(|a| IpAddr::V4(a.ip()))
                .or_else(|| f.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
        });
        if icmp.first() == Some(&rep_type)
            && icmp.get(4..6) == Some(&id.to_be_bytes()[..])
            && icmp.get(6..8) == Some(&seq.to_be_bytes()[..])
            && from_ip == Some(addr)
        {
            return Ok(true);
        }
    }
}

fn next_seq() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static SEQ: AtomicU16 = AtomicU16::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A process started in a namespace; SIGKILLed (and reaped) on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    /// The exit status once reaped.
    status: Option<ExitStatus>,
    log_path: PathBuf,
    /// The scratch directory holding the log, for [`Netns::spawn`].
    dir: Option<Scratch>,
    what: String,
}

impl ChildGuard {
    /// The process id (0 once killed and reaped by [`ChildGuard::kill`]).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Everything the process wrote to stdout/stderr so far ("" if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `Some(status)` if the process has exited (reaping it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
        }
        self.status
    }

    /// Sends `sig` to the process. A no-op once the process has been killed and reaped.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        let Some(c) = &self.child else {
            return Ok(());
        };
        if self.status.is_some() {
            return Ok(());
        }
        let pid = i32::try_from(c.id()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("pid {} out of range", c.id()),
            )
        })?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| {
            context(
                io::Error::from(e),
                format_args!("send {sig} to {} (pid {pid})", self.what),
            )
        })
    }

    /// SIGTERM, then wait up to `timeout` for exit (SIGKILL after, returning `None`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.try_wait() {
            return Some(st);
        }
        let _ = self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.kill();
        None
    }

    /// SIGKILL and reap. Idempotent.
    pub fn kill(&mut self) -> io::Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        let killed = c
            .kill()
            .map_err(|e| context(e, format_args!("kill {}", self.what)));
        // Reap whatever happened (kill only fails for a process already gone).
        let reaped = c
            .wait()
            .map_err(|e| context(e, format_args!("reap {}", self.what)));
        match reaped {
            Ok(st) => {
                self.status.get_or_insert(st);
                // kill() failing on an exited process is no error once reaped.
                Ok(())
            }
            Err(e) => killed.and(Err(e)),
        }
    }

    /// Waits for the process to exit by itself, up to `timeout`; `Ok(None)` on timeout.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.status {
                return Ok(Some(st));
            }
            let Some(c) = self.child.as_mut() else {
                return Ok(self.status);
            };
            if let Some(st) = c
                .try_wait()
                .map_err(|e| context(e, format_args!("wait for {}", self.what)))?
            {
                self.status = Some(st);
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What runs where, e.g. "`sleep 30` in netns vt1234-1-0-h0".
    pub fn description(&self) -> &str {
        &self.what
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("02:00:5e:00:01:0a"), Some([2, 0, 0x5e, 0, 1, 10]));
        assert_eq!(parse_mac("02:00:5e:00:01"), None);
        assert_eq!(parse_mac("02:00:5e:00:01:0a:0b"), None);
        assert_eq!(parse_mac("zz:00:5e:00:01:0a"), None);
    }

    #[test]
    fn checksum_of_echo_request() {
        // Echo request, id 0x1234, seq 1, no payload: checksum is !(0x0800 + 0x1234 + 1).
        let pkt = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(icmp_checksum(&pkt), !(0x0800u16 + 0x1234 + 1));
        assert_eq!(icmp_checksum(&[0xff]), !0xff00u16);
    }

    #[test]
    fn missing_namespace_is_an_error() {
        let ns = Netns::existing("vipd-no-such-netns-for-sure");
        let e = ns
            .run(|| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("/run/netns/vipd-no-such-netns-for-sure"), "{e}");
        let e = ns
            .ip(&["link"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("vipd-no-such-netns-for-sure"), "{e}");
    }
}
