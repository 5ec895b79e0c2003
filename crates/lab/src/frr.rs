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
    zebra: ChildGuard,
    vrrpd: ChildGuard,
    dir: PathBuf,
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
        let d = dir.join(format!("frr-{tag}"));
        std::fs::create_dir_all(&d)?;
        let conf_path = d.join("vrrpd.conf");
        std::fs::write(&conf_path, conf)?;
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
        let zserv = s("zserv.api");
        let vty = d.display().to_string();
        let zebra = ns.spawn_logged(
            &[
                &format!("{FRR_LIB}/zebra"),
                "-N",
                tag,
                "-i",
                &s("zebra.pid"),
                "-z",
                &zserv,
                "--vty_socket",
                &vty,
                "-f",
                "/dev/null",
                "-u",
                "frr",
                "-g",
                "frr",
            ],
            &d.join("zebra.log"),
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.join("zserv.api").exists() {
            if Instant::now() >= deadline {
                return Err(io::Error::other("zebra did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let conf_s = conf_path.display().to_string();
        let vrrpd = ns.spawn_logged(
            &[
                &format!("{FRR_LIB}/vrrpd"),
                "-N",
                tag,
                "-i",
                &s("vrrpd.pid"),
                "-z",
                &zserv,
                "--vty_socket",
                &vty,
                "-f",
                &conf_s,
                "-u",
                "frr",
                "-g",
                "frr",
            ],
            &d.join("vrrpd.log"),
        )?;
        Ok(Vrrpd {
            zebra,
            vrrpd,
            dir: d,
        })
    }

    /// vrrpd's output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("vrrpd.log")).unwrap_or_default()
    }

    /// Stops vrrpd with SIGTERM (it sends priority 0 as master).
    pub fn stop(&mut self) -> io::Result<()> {
        self.vrrpd.signal(nix::sys::signal::Signal::SIGTERM)?;
        let _ = self.vrrpd.wait_timeout(Duration::from_secs(5));
        Ok(())
    }

    /// Kills both daemons (a crash).
    pub fn crash(&mut self) {
        let _ = self.vrrpd.kill();
        let _ = self.zebra.kill();
    }
}
