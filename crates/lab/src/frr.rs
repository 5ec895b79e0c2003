//! FRR's vrrpd (with the zebra it needs) in a test namespace, for interop tests. FRR always
//! uses a VMAC: the operator creates the macvlan (MAC 00:00:5e:00:01:VRID, the VIPs on it)
//! and vrrpd turns its protodown off as master and on as backup. Dev-only.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ns::{ChildGuard, Netns};

/// The FRR daemons' directory (Debian's `frr` package).
pub const FRR_LIB: &str = "/usr/lib/frr";

/// Whether FRR's vrrpd is installed.
pub fn available() -> bool {
    Path::new(FRR_LIB).join("vrrpd").exists() && Path::new(FRR_LIB).join("zebra").exists()
}

/// zebra and vrrpd running in the foreground in a namespace; both killed on drop.
pub struct Vrrpd {
    daemons: Daemons,
}

/// FRR daemons of one namespace, started in the given order with their state and configs
/// under `dir/frr-<tag>`, each killed on drop. zebra, when listed, is started first and
/// waited for (the others connect to it).
pub(crate) struct Daemons {
    daemons: Vec<(String, ChildGuard)>,
    dir: PathBuf,
}

impl Daemons {
    /// Starts `daemons` (name, its config file's text) as user frr.
    pub(crate) fn start(
        ns: &Netns,
        dir: &Path,
        tag: &str,
        daemons: &[(&str, &str)],
    ) -> io::Result<Daemons> {
        let d = dir.join(format!("frr-{tag}"));
        std::fs::create_dir_all(&d)?;
        for (name, conf) in daemons {
            std::fs::write(d.join(format!("{name}.conf")), conf)?;
        }
        // The daemons drop to user frr: their directory must be theirs.
        let _ = std::process::Command::new("chown")
            .args(["-R", "frr:frr"])
            .arg(&d)
            .status();
        let _ = std::process::Command::new("chmod")
            .arg("755")
            .arg(dir)
            .status();
        let s = |p: &str| d.join(p).display().to_string();
        let (zserv, vty) = (s("zserv.api"), d.display().to_string());
        let mut out = Daemons {
            daemons: Vec::new(),
            dir: d.clone(),
        };
        for (name, _) in daemons {
            let mut args: Vec<String> = vec![
                format!("{FRR_LIB}/{name}"),
                "-N".into(),
                tag.into(),
                "-i".into(),
                s(&format!("{name}.pid")),
                "-z".into(),
                zserv.clone(),
                "--vty_socket".into(),
                vty.clone(),
                "-f".into(),
                s(&format!("{name}.conf")),
                "-u".into(),
                "frr".into(),
                "-g".into(),
                "frr".into(),
            ];
            match *name {
                "bgpd" => args.extend(["-p".into(), "179".into()]),
                "bfdd" => args.extend(["--bfdctl".into(), s("bfdd.sock")]),
                _ => {}
            }
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = ns.spawn_logged(&a, &d.join(format!("{name}.log")))?;
            out.daemons.push(((*name).to_owned(), child));
            if *name == "zebra" {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !d.join("zserv.api").exists() {
                    if Instant::now() >= deadline {
                        return Err(io::Error::other(format!(
                            "zebra did not start in {}: {}",
                            ns.name(),
                            out.log("zebra")
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Ok(out)
    }

    /// Daemon `name`'s output.
    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Every daemon's output, headed by its name.
    pub(crate) fn logs(&self) -> String {
        self.daemons
            .iter()
            .map(|(n, _)| format!("--- {n}:\n{}", self.log(n)))
            .collect()
    }

    /// Daemon `name`.
    pub(crate) fn daemon(&mut self, name: &str) -> Option<&mut ChildGuard> {
        self.daemons
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// Runs `vtysh -c cmd` against these daemons.
    pub(crate) fn vtysh(&self, ns: &Netns, cmd: &str) -> io::Result<String> {
        let vty = self.dir.display().to_string();
        ns.exec_ok(&["vtysh", "--vty_socket", &vty, "-c", cmd])
    }
}

impl Vrrpd {
    /// Creates the VMAC macvlan `vrrp4-<ifindex>-<vrid>` on `ifname` (bridge mode, FRR's
    /// documented setup) with `vips` (addr/prefix), writes `conf` (vrrpd's configuration) and
    /// starts zebra and vrrpd with their state under `dir/frr-<tag>`.
    pub fn start(
        ns: &Netns,
        dir: &Path,
        tag: &str,
        ifname: &str,
        vrid: u8,
        vips: &[String],
        conf: &str,
    ) -> io::Result<Vrrpd> {
        let link = ns.link(ifname)?;
        let mac = format!("00:00:5e:00:01:{vrid:02x}");
        let vmac = format!("vrrp4-{}-{vrid}", link.index);
        ns.ip(&[
            "link", "add", &vmac, "link", ifname, "type", "macvlan", "mode", "bridge",
        ])?;
        ns.ip(&["link", "set", "dev", &vmac, "address", &mac])?;
        for v in vips {
            ns.ip(&["addr", "add", v, "dev", &vmac])?;
        }
        ns.ip(&["link", "set", &vmac, "up"])?;
        // FRR's documented host setup: the interface must not answer ARP for the VMAC's
        // addresses, nor announce them with its own MAC.
        ns.sysctl(&[
            &format!("net.ipv4.conf.{ifname}.arp_ignore=1"),
            &format!("net.ipv4.conf.{ifname}.arp_announce=2"),
        ])?;
        let daemons = Daemons::start(ns, dir, tag, &[("zebra", ""), ("vrrpd", conf)])?;
        Ok(Vrrpd { daemons })
    }

    /// vrrpd's output.
    pub fn log(&self) -> String {
        self.daemons.log("vrrpd")
    }

    /// Stops vrrpd with SIGTERM (it sends priority 0 as master).
    pub fn stop(&mut self) -> io::Result<()> {
        if let Some(v) = self.daemons.daemon("vrrpd") {
            v.signal(nix::sys::signal::Signal::SIGTERM)?;
            let _ = v.wait_timeout(Duration::from_secs(5));
        }
        Ok(())
    }

    /// Kills both daemons (a crash).
    pub fn crash(&mut self) {
        for name in ["vrrpd", "zebra"] {
            if let Some(d) = self.daemons.daemon(name) {
                let _ = d.kill();
            }
        }
    }
}
