//! keepalived as an interoperability peer and benchmark baseline.
//!
//! - [`Spec`]: one virtual router, rendered both as a vipd TOML ([`vipd_toml`]) and as a
//!   keepalived.conf ([`keepalived_conf`]) so the two speak exactly the same VRRP.
//! - [`Keepalived`]: keepalived 2.x in the foreground inside a namespace (VRRP subsystem
//!   only, its own pid files so several can run at once); [`Keepalived::crash`] SIGKILLs
//!   both its processes, [`Keepalived::stop`] is a clean SIGTERM (priority-0 adverts).
//!
//! Needs `keepalived` (Debian package `keepalived`) on the PATH.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::ns::{ChildGuard, Netns, context};

/// One virtual router as both implementations configure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Instance name (`[A-Za-z0-9_.-]`).
    pub name: String,
    /// Interface, e.g. `eth0`.
    pub interface: String,
    /// VRID.
    pub vrid: u8,
    /// VRRP version, 2 or 3.
    pub version: u8,
    /// Priority 1..=255.
    pub priority: u8,
    /// Advertisement interval (v3: a multiple of 10 ms; v2: whole seconds).
    pub interval: Duration,
    /// Virtual addresses with their prefix lengths.
    pub vips: Vec<(IpAddr, u8)>,
    /// Unicast mode: (source address, peers). `None`: multicast.
    pub unicast: Option<(IpAddr, Vec<IpAddr>)>,
    /// VRRPv2 simple-text password.
    pub auth_pass: Option<String>,
    /// vipd's VRRPv3/IPv4 checksum mode (`"with-pseudo-header"` / `"without-pseudo-header"`);
    /// keepalived has no such setting (it always sends the pseudo-header variant).
    pub checksum: Option<String>,
    /// Seconds until the second GARP/NA burst (both: `garp_master_delay`).
    pub garp_master_delay_s: u32,
    /// Multicast mode: the adverts' source address (vipd `source_address`, keepalived
    /// `mcast_src_ip`); `None`: the interface's first address.
    pub source: Option<IpAddr>,
    /// A tracked file (path, weight): both implementations read its value and add value x
    /// weight to the priority (weight 0: FAULT while the value is not 0). vipd
    /// `[[track_file]]`, keepalived `vrrp_track_file`; named `tf_<vrid>`.
    pub track_file: Option<(std::path::PathBuf, i32)>,
    /// vipd's `fast_preempt` (keepalived has no equivalent; ignored there).
    pub fast_preempt: bool,
    /// vipd's `auth_hmac` with key 1 from this file (keepalived 2.2.7 has none; ignored there).
    pub hmac_key_file: Option<std::path::PathBuf>,
}

impl Spec {
    /// A multicast VRRPv3 instance `VI_<vrid>` on `eth0` with one VIP, 1 s delay to the second
    /// GARP burst.
    pub fn new(vrid: u8, priority: u8, interval: Duration, vip: IpAddr, prefix: u8) -> Spec {
        Spec {
            name: format!("VI_{vrid}"),
            interface: "eth0".to_owned(),
            vrid,
            version: 3,
            priority,
            interval,
            vips: vec![(vip, prefix)],
            unicast: None,
            auth_pass: None,
            checksum: None,
            garp_master_delay_s: 1,
            source: None,
            track_file: None,
            fast_preempt: false,
            hmac_key_file: None,
        }
    }
}

/// `interval` as keepalived's `advert_int` (seconds, decimal: `1`, `0.1`, `0.01`).
pub fn advert_int(interval: Duration) -> String {
    let cs = interval.as_millis() / 10;
    if cs.is_multiple_of(100) {
        format!("{}", cs / 100)
    } else if cs.is_multiple_of(10) {
        format!("{}.{}", cs / 100, (cs % 100) / 10)
    } else {
        format!("{}.{:02}", cs / 100, cs % 100)
    }
}

/// `interval` as a vipd duration string (`"1s"`, `"100ms"`).
pub fn vipd_duration(interval: Duration) -> String {
    let ms = interval.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A keepalived.conf running `specs` (no scripts, `vrrp_strict` off).
pub fn keepalived_conf(router_id: &str, specs: &[Spec]) -> String {
    let mut s = String::new();
    let delay = specs.first().map_or(1, |x| x.garp_master_delay_s);
    let _ = write!(
        s,
        "global_defs {{\n  router_id {router_id}\n  vrrp_garp_master_delay {delay}\n}}\n"
    );
    for sp in specs {
        if let Some((path, weight)) = &sp.track_file {
            let _ = write!(
                s,
                "vrrp_track_file tf_{} {{\n  file {}\n  weight {weight}\n}}\n",
                sp.vrid,
                path.display()
            );
        }
    }
    for sp in specs {
        let _ = write!(
            s,
            "vrrp_instance {} {{\n  interface {}\n  virtual_router_id {}\n  version {}\n  priority {}\n  advert_int {}\n",
            sp.name,
            sp.interface,
            sp.vrid,
            sp.version,
            sp.priority,
            advert_int(sp.interval)
        );
        if let (None, Some(src)) = (&sp.unicast, sp.source) {
            let _ = writeln!(s, "  mcast_src_ip {src}");
        }
        if let Some((src, peers)) = &sp.unicast {
            let _ = writeln!(s, "  unicast_src_ip {src}\n  unicast_peer {{");
            for p in peers {
                let _ = writeln!(s, "    {p}");
            }
            s.push_str("  }\n");
        }
        if let Some(pass) = &sp.auth_pass {
            let _ = writeln!(
                s,
                "  authentication {{\n    auth_type PASS\n    auth_pass {pass}\n  }}"
            );
        }
        if sp.track_file.is_some() {
            let _ = writeln!(s, "  track_file {{\n    tf_{}\n  }}", sp.vrid);
        }
        s.push_str("  virtual_ipaddress {\n");
        for (ip, prefix) in &sp.vips {
            let _ = writeln!(s, "    {ip}/{prefix}");
        }
        s.push_str("  }\n}\n");
    }
    s
}

/// A vipd TOML running `specs`, its control socket at `control_socket`.
pub fn vipd_toml(router_id: &str, control_socket: &Path, specs: &[Spec]) -> String {
    use vipd_config::keys;
    let delay = specs.first().map_or(1, |x| x.garp_master_delay_s);
    let mut doc = crate::toml_out::Doc::new();
    doc.table(keys::file::global)
        .set(keys::global::router_id, router_id)
        .set(
            keys::global::control_socket,
            control_socket.display().to_string(),
        )
        .set(keys::global::garp_master_delay, format!("{delay}s"));
    for sp in specs {
        if let Some((path, weight)) = &sp.track_file {
            doc.array_table(keys::file::track_file)
                .set(keys::track_file::name, format!("tf_{}", sp.vrid))
                .set(keys::track_file::path, path.display().to_string())
                .set(keys::track_file::weight, i64::from(*weight));
        }
    }
    for sp in specs {
        doc.array_table(keys::file::instance)
            .set(keys::instance::name, sp.name.as_str())
            .set(keys::instance::interface, sp.interface.as_str())
            .set(keys::instance::vrid, i64::from(sp.vrid))
            .set(keys::instance::version, i64::from(sp.version))
            .set(keys::instance::priority, i64::from(sp.priority))
            .set(keys::instance::advert_interval, vipd_duration(sp.interval))
            .list(
                keys::instance::vips,
                sp.vips.iter().map(|(ip, p)| format!("{ip}/{p}")),
            );
        if let Some((src, peers)) = &sp.unicast {
            doc.set(keys::instance::source_address, src.to_string())
                .list(
                    keys::instance::unicast_peers,
                    peers.iter().map(ToString::to_string),
                );
        }
        if let (None, Some(src)) = (&sp.unicast, sp.source) {
            doc.set(keys::instance::source_address, src.to_string());
        }
        if let Some(pass) = &sp.auth_pass {
            doc.set(keys::instance::auth_pass, pass.as_str());
        }
        if let Some(c) = &sp.checksum {
            doc.set(keys::instance::checksum, c.to_string());
        }
        if sp.track_file.is_some() {
            doc.list(keys::instance::track_files, [format!("tf_{}", sp.vrid)]);
        }
        if sp.fast_preempt {
            doc.set(keys::instance::fast_preempt, true);
        }
        if let Some(file) = &sp.hmac_key_file {
            let mut key = toml::map::Map::new();
            key.insert(keys::hmac_key::id.to_string(), toml::Value::Integer(1));
            key.insert(
                keys::hmac_key::file.to_string(),
                toml::Value::String(file.display().to_string()),
            );
            let mut auth = toml::map::Map::new();
            auth.insert(
                keys::auth_hmac::keys.to_string(),
                toml::Value::Array(vec![toml::Value::Table(key)]),
            );
            doc.set(keys::instance::auth_hmac, toml::Value::Table(auth));
        }
    }
    doc.finish()
}

/// Whether `keepalived` can be run at all.
pub fn available() -> bool {
    std::process::Command::new("keepalived")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// keepalived running in the foreground in a namespace: the parent process (a [`ChildGuard`])
/// and its VRRP child (found through its pid file). Both are SIGKILLed on drop.
#[derive(Debug)]
pub struct Keepalived {
    parent: ChildGuard,
    vrrp_pid_file: PathBuf,
    conf: PathBuf,
}

impl Keepalived {
    /// Writes `conf` to `DIR/NAME.conf` and starts
    /// `keepalived --dont-fork --log-console --log-detail --vrrp --dont-respawn` in `ns` with
    /// pid files `DIR/NAME.pid` / `DIR/NAME.vrrp.pid` and its output in `DIR/NAME.log`.
    /// Returns once the VRRP child runs (its pid file names a live process), or Err after 10 s.
    pub fn start(ns: &Netns, dir: &Path, name: &str, conf: &str) -> io::Result<Keepalived> {
        let conf_path = dir.join(format!("{name}.conf"));
        let pid = dir.join(format!("{name}.pid"));
        let vrrp_pid = dir.join(format!("{name}.vrrp.pid"));
        let log = dir.join(format!("{name}.log"));
        std::fs::write(&conf_path, conf)
            .map_err(|e| context(e, format_args!("write {}", conf_path.display())))?;
        let _ = std::fs::remove_file(&pid);
        let _ = std::fs::remove_file(&vrrp_pid);
        let conf_s = conf_path.display().to_string();
        let pid_s = pid.display().to_string();
        let vrrp_s = vrrp_pid.display().to_string();
        let parent = ns.spawn_logged(
            &[
                "keepalived",
                "--dont-fork",
                "--log-console",
                "--log-detail",
                "--no-syslog",
                "--vrrp",
                "--dont-respawn",
                "--use-file",
                &conf_s,
                "--pid",
                &pid_s,
                "--vrrp_pid",
                &vrrp_s,
            ],
            &log,
        )?;
        let mut k = Keepalived {
            parent,
            vrrp_pid_file: vrrp_pid,
            conf: conf_path,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if k.vrrp_pid().is_some() {
                return Ok(k);
            }
            if let Some(st) = k.parent.try_wait() {
                return Err(io::Error::other(format!(
                    "keepalived ({}) exited at start ({st}): {}",
                    k.conf.display(),
                    k.log()
                )));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("keepalived VRRP child did not start: {}", k.log()),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The parent (main) process id.
    pub fn pid(&self) -> u32 {
        self.parent.pid()
    }

    /// The VRRP child's pid, if its pid file names a running keepalived of this instance.
    pub fn vrrp_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(&self.vrrp_pid_file).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        // Guard against pid reuse: the child's command line names our pid file.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let needle = self.vrrp_pid_file.display().to_string();
        let ours = String::from_utf8_lossy(&cmdline).contains(&needle);
        // A zombie has an empty command line.
        ours.then_some(pid)
    }

    /// Everything keepalived printed so far.
    pub fn log(&self) -> String {
        self.parent.log()
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        self.parent.log_path()
    }

    /// A crash: SIGKILL the VRRP child (no priority-0 advert, VIPs stay), then the parent.
    pub fn crash(&mut self) -> io::Result<()> {
        if let Some(pid) = self.vrrp_pid() {
            let pid = i32::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
            // ESRCH (already gone) is fine.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        self.parent.kill()
    }

    /// A reload: writes `conf` over its configuration file and sends SIGHUP to the parent
    /// (keepalived re-reads it and carries the instances' state over).
    pub fn reload(&self, conf: &str) -> io::Result<()> {
        std::fs::write(&self.conf, conf)
            .map_err(|e| context(e, format_args!("write {}", self.conf.display())))?;
        self.parent.signal(Signal::SIGHUP)
    }

    /// A clean stop: SIGTERM to the parent, which stops the VRRP child (priority 0, VIPs removed).
    pub fn stop(&self) -> io::Result<()> {
        self.parent.signal(Signal::SIGTERM)
    }

    /// Waits up to `timeout` for keepalived to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.parent.wait_timeout(timeout)
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let _ = self.crash();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(advert_int(Duration::from_secs(1)), "1");
        assert_eq!(advert_int(Duration::from_millis(100)), "0.1");
        assert_eq!(advert_int(Duration::from_millis(10)), "0.01");
        assert_eq!(advert_int(Duration::from_millis(1250)), "1.25");
        assert_eq!(vipd_duration(Duration::from_secs(2)), "2s");
        assert_eq!(vipd_duration(Duration::from_millis(10)), "10ms");
    }

    #[test]
    fn renders_both() {
        let mut s = Spec::new(
            51,
            150,
            Duration::from_millis(100),
            "10.0.0.100".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            24,
        );
        s.unicast = Some((
            IpAddr::from([10, 0, 0, 11]),
            vec![IpAddr::from([10, 0, 0, 12])],
        ));
        let k = keepalived_conf("r1", std::slice::from_ref(&s));
        assert!(k.contains("advert_int 0.1"), "{k}");
        assert!(k.contains("unicast_src_ip 10.0.0.11"), "{k}");
        assert!(k.contains("    10.0.0.100/24"), "{k}");
        let v = vipd_toml("r1", Path::new("/tmp/x.sock"), &[s]);
        assert!(v.contains("advert_interval = \"100ms\""), "{v}");
        assert!(v.contains("unicast_peers = [\"10.0.0.12\"]"), "{v}");
        let parsed: Result<toml::Value, _> = toml::from_str(&v);
        assert!(parsed.is_ok(), "{v}");
    }

    #[test]
    fn renders_auth_hmac_for_vipd_only() {
        let mut s = Spec::new(
            51,
            150,
            Duration::from_millis(100),
            IpAddr::from([10, 0, 0, 100]),
            24,
        );
        s.hmac_key_file = Some("/etc/vipd/hmac.key".into());
        let k = keepalived_conf("r1", std::slice::from_ref(&s));
        assert!(!k.contains("auth_hmac"), "{k}");
        let v = vipd_toml("r1", Path::new("/tmp/x.sock"), &[s]);
        let loaded =
            vipd_config::parse_str_with(&v, Path::new("lab.toml"), vipd_config::HostChecks::Skip);
        let auth = loaded
            .ok()
            .and_then(|l| l.config.instances.first().and_then(|i| i.auth_hmac.clone()));
        assert_eq!(auth.map(|a| (a.active, a.keys.len())), Some((1, 1)), "{v}");
    }
}
