//! One network namespace: run commands / closures / async code inside it.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// A handle on a named network namespace (`/run/netns/NAME`). It does NOT own the
/// namespace: the [`super::Lan`] that created it deletes it.
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

    /// The namespace name (for `ip netns exec NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `args` inside the namespace (`ip netns exec NAME args...`) and returns its
    /// output, whatever the exit status.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run ip netns exec {} {args:?}: {e}", self.name))
    }

    /// Like [`Netns::exec`] but panics (with stderr) unless the command succeeds;
    /// returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        if !out.status.success() {
            panic!(
                "in netns {}: {args:?} failed ({}): {}{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip -n NAME args...`, panicking on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
        if !out.status.success() {
            panic!(
                "ip -n {} {args:?} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sets sysctls (`key=value`) inside the namespace.
    pub fn sysctl(&self, settings: &[&str]) {
        let mut args = vec!["sysctl", "-q", "-w"];
        args.extend_from_slice(settings);
        self.exec_ok(&args);
    }

    /// Starts `args` inside the namespace; stdout+stderr go to a log file readable with
    /// [`ChildGuard::log`]. The process is killed when the guard drops.
    pub fn spawn(&self, args: &[&str]) -> ChildGuard {
        let dir = TempDir::new("spawn");
        let log_path = dir.path().join("output.log");
        let log = File::create(&log_path).expect("create child log");
        let log2 = log.try_clone().expect("dup child log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {args:?} in {}: {e}", self.name));
        ChildGuard {
            child: Some(child),
            log_path,
            _dir: dir,
            what: format!("{args:?} in {}", self.name),
        }
    }

    /// Addresses on `ifname` (`ip -j addr show dev IFNAME`).
    pub fn addrs_on(&self, ifname: &str) -> Vec<AddrInfo> {
        let out = self.ip(&["-j", "addr", "show", "dev", ifname]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j addr json");
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
                    prefix_len: a["prefixlen"].as_u64().unwrap_or(0) as u8,
                    label: a["label"].as_str().map(str::to_owned),
                    scope: a["scope"].as_str().unwrap_or("").to_owned(),
                    flags,
                });
            }
        }
        res
    }

    /// Whether `addr` is configured on `ifname`.
    pub fn has_addr(&self, ifname: &str, addr: IpAddr) -> bool {
        self.addrs_on(ifname).iter().any(|a| a.addr == addr)
    }

    /// Link state of `ifname` (`ip -j link show dev IFNAME`).
    pub fn link(&self, ifname: &str) -> LinkState {
        let out = self.ip(&["-j", "link", "show", "dev", ifname]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j link json");
        let l = &v[0];
        let flags: Vec<&str> = l["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .collect();
        LinkState {
            index: l["ifindex"].as_u64().expect("ifindex") as u32,
            mac: parse_mac(l["address"].as_str().unwrap_or("")).unwrap_or([0; 6]),
            admin_up: flags.contains(&"UP"),
            lower_up: flags.contains(&"LOWER_UP"),
            no_carrier: flags.contains(&"NO-CARRIER"),
            operstate: l["operstate"].as_str().unwrap_or("").to_owned(),
            mtu: l["mtu"].as_u64().unwrap_or(0) as u32,
        }
    }

    /// Runs `f` on a fresh thread that has entered this namespace; returns its result
    /// (a panic inside `f` is propagated). Sockets created by `f` live in the namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = self.path();
        std::thread::scope(|s| {
            let h = std::thread::Builder::new()
                .name(format!("ns-{}", self.name))
                .spawn_scoped(s, move || {
                    let file = File::open(&path)
                        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                    vipd::sys::enter_netns(&file)
                        .unwrap_or_else(|e| panic!("setns {}: {e}", path.display()));
                    f()
                })
                .expect("spawn ns thread");
            match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// Runs async code inside the namespace: a thread enters the namespace, THEN builds
    /// a current-thread tokio runtime (time+io enabled) and blocks on `f()`. Netlink and
    /// raw sockets created inside belong to the namespace.
    pub fn run_async<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = R>,
        R: Send,
    {
        self.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(f())
        })
    }

    /// Starts async code inside the namespace on a background thread (own runtime) and
    /// returns immediately; join the handle to get the result.
    pub fn spawn_async<F, Fut, R>(&self, f: F) -> std::thread::JoinHandle<R>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static,
    {
        let ns = self.clone();
        std::thread::spawn(move || ns.run_async(f))
    }

    /// Sends one ICMP/ICMPv6 echo request from inside the namespace and waits up to 1 s
    /// for the reply. IPv6 link-local destinations go out of `eth0`.
    pub fn ping(&self, addr: IpAddr) -> bool {
        self.ping_timeout(addr, Duration::from_secs(1))
    }

    /// [`Netns::ping`] with a custom timeout.
    pub fn ping_timeout(&self, addr: IpAddr, timeout: Duration) -> bool {
        self.run(move || icmp_echo(addr, timeout).unwrap_or(false))
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
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A raw-socket ping (no dependency on iputils). Runs in the caller's namespace.
fn icmp_echo(addr: IpAddr, timeout: Duration) -> std::io::Result<bool> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::AsRawFd;
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let seq: u16 = rand_seq();
    let (sock, dst, req_type, rep_type, skip_ip) = match addr {
        IpAddr::V4(a) => (
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?,
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
                Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?,
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
        let c = icmp_checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    } // ICMPv6 raw sockets: the kernel computes the checksum.
    sock.send_to(&pkt, &dst.into())?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        sock.set_read_timeout(Some(left))?;
        let (n, from) = match nix::sys::socket::recvfrom::<nix::sys::socket::SockaddrStorage>(
            sock.as_raw_fd(),
            &mut buf,
        ) {
            Ok(r) => r,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let bytes = &buf[..n];
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
        if icmp.len() >= 8
            && icmp[0] == rep_type
            && icmp[4..6] == id.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
            && from_ip == Some(addr)
        {
            return Ok(true);
        }
    }
}

fn rand_seq() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static SEQ: AtomicU16 = AtomicU16::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A process started in a namespace; SIGKILLed (and reaped) on drop.
pub struct ChildGuard {
    child: Option<Child>,
    log_path: PathBuf,
    _dir: TempDir,
    what: String,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Everything the process wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `Some(status)` if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// SIGTERM, then wait up to `timeout` for exit (SIGKILL after). Returns the status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        None
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn description(&self) -> &str {
        &self.what
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The first usable IPv4 of a string like `10.0.0.1/24`.
pub fn strip_prefix_v4(s: &str) -> Option<Ipv4Addr> {
    s.split('/').next()?.parse().ok()
}

/// The address part of `fe80::1/64`.
pub fn strip_prefix_v6(s: &str) -> Option<Ipv6Addr> {
    s.split('/').next()?.parse().ok()
}
