//! A switched LAN of network namespaces:
//!
//! ```text
//!   ns <stem>-h0 [eth0] ──veth── [p0] ┐
//!   ns <stem>-h1 [eth0] ──veth── [p1] ├─ br0 (ns <stem>-sw, no STP, no mcast snooping)
//!   ns <stem>-c0 [eth0] ──veth── [c0] ┘   (optional clients)
//! ```
//!
//! Host `i` gets 10.99.<lan>.<11+i>/24 and fd99:<lan>::<11+i>/64 (+ its link-local);
//! client `j` gets 10.99.<lan>.<101+j>/24 and fd99:<lan>::<101+j>/64. DAD is off in
//! every namespace, so IPv6 addresses are usable at once (never "tentative").
//! `.100` / `::100` is left free for a virtual IP ([`Lan::vip`]).
//!
//! Building one needs root ([`require_root`]), iproute2, and for impairments `tc`
//! and/or `nft`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Deref;
use std::process::{Command, Stdio};

pub use super::ns::{ChildGuard, Netns};
use super::ns::{command_failed, context};

/// At most this many hosts per LAN (host addresses are .11 to .90).
pub const MAX_HOSTS: usize = 80;
/// At most this many clients per LAN (client addresses are .101 to .200).
pub const MAX_CLIENTS: usize = 100;

/// `Err(PermissionDenied)` unless running as root (network namespaces, veth, raw
/// sockets need it).
pub fn require_root() -> io::Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "network tests need root: run scripts/test.sh as root",
        ))
    }
}

/// A process-unique, tag-unique name stem: `vt` + hash(tag) + pid + counter; also
/// returns the counter. Short enough for namespace-derived interface names.
pub fn unique_stem(tag: &str) -> (String, u32) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // FNV-1a, 16 bits are plenty next to pid + counter.
    let mut h: u32 = 0x811c_9dc5;
    for b in tag.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let pid = std::process::id();
    (format!("vt{:04x}-{pid}-{n}", h & 0xffff), n)
}

/// One host (or client) of a [`Lan`]: its namespace plus its interface facts.
#[derive(Debug, Clone)]
pub struct Host {
    pub ns: Netns,
    /// Interface name inside the host namespace: always `eth0`.
    pub ifname: String,
    /// Its ifindex inside the host namespace.
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    /// The link-local IPv6 address of `eth0` (read back from the kernel).
    pub ll: Ipv6Addr,
    /// The switch-side veth name (in the switch namespace), e.g. `p0`.
    pub port: String,
}

impl Deref for Host {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.ns
    }
}

/// A throw-away LAN; every namespace it created is deleted on drop (also on panic, and
/// when [`Lan::new`] fails half-way).
#[derive(Debug)]
pub struct Lan {
    stem: String,
    /// The `<lan>` byte used in the addresses.
    pub id: u8,
    switch: Netns,
    hosts: Vec<Host>,
    clients: Vec<Host>,
    /// Every namespace created, for cleanup.
    created: Vec<String>,
}

/// Deletes namespace `name` if it exists (best effort, silent).
pub(crate) fn netns_del(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub(crate) fn netns_add(name: &str) -> io::Result<()> {
    // Robust against a leftover with the same name.
    netns_del(name);
    let out = Command::new("ip")
        .args(["netns", "add", name])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| context(e, format_args!("cannot run `ip netns add {name}`")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(command_failed(format_args!("`ip netns add {name}`"), &out))
    }
}

fn bad_index(what: &str, i: usize, n: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("no {what} {i}: the LAN has {n}"),
    )
}

impl Lan {
    /// Builds a LAN with `hosts` host namespaces (at most [`MAX_HOSTS`]). `tag` only
    /// needs to be unique-ish (the test name); names also include the pid and a
    /// counter. On error, whatever was already created is deleted again.
    pub fn new(tag: &str, hosts: usize) -> io::Result<Lan> {
        require_root()?;
        if hosts > MAX_HOSTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a LAN has at most {MAX_HOSTS} hosts, not {hosts}"),
            ));
        }
        let (stem, n) = unique_stem(tag);
        let id = (n % 250 + 1) as u8;
        let mut lan = Lan {
            stem: stem.clone(),
            id,
            switch: Netns::new(format!("{stem}-sw")),
            hosts: Vec::new(),
            clients: Vec::new(),
            created: Vec::new(),
        };
        // From here on, dropping `lan` (on `?` or a panic) deletes what was created.
        netns_add(lan.switch.name())?;
        lan.created.push(lan.switch.name().to_owned());
        lan.switch.sysctl(&[
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ])?;
        lan.switch.ip(&["link", "set", "lo", "up"])?;
        lan.switch.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        lan.switch.ip(&["link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let h = lan.make_host(&format!("h{i}"), &format!("p{i}"), 11 + i as u8)?;
            lan.hosts.push(h);
        }
        Ok(lan)
    }

    fn make_host(&mut self, suffix: &str, port: &str, last: u8) -> io::Result<Host> {
        let ns = Netns::new(format!("{}-{suffix}", self.stem));
        netns_add(ns.name())?;
        self.created.push(ns.name().to_owned());
        // DAD off BEFORE the interface exists/comes up; no forwarding.
        ns.sysctl(&[
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.all.forwarding=0",
            "net.ipv6.conf.default.forwarding=0",
            "net.ipv4.ip_forward=0",
        ])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        // Create the pair inside the switch namespace, the peer directly in the host
        // namespace: names are local to each namespace, so they never collide.
        self.switch.ip(&[
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ])?;
        ns.sysctl(&["net.ipv6.conf.eth0.accept_dad=0"])?;
        self.switch.ip(&["link", "set", port, "master", "br0"])?;
        self.switch.ip(&["link", "set", port, "up"])?;
        let v4 = self.addr_v4(last);
        let v6 = self.addr_v6(u16::from(last));
        ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])?;
        ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
        let link = ns.link("eth0")?;
        let ll = ns
            .addrs_on("eth0")?
            .into_iter()
            .find_map(|a| match a.addr {
                IpAddr::V6(v) if a.scope == "link" => Some(v),
                _ => None,
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no link-local address on eth0 in netns {}", ns.name()),
                )
            })?;
        Ok(Host {
            ns,
            ifname: "eth0".to_owned(),
            ifindex: link.index,
            mac: link.mac,
            v4,
            v6,
            ll,
            port: port.to_owned(),
        })
    }

    /// Adds a client namespace (for ping / capture from "outside" the VRRP group); at
    /// most [`MAX_CLIENTS`].
    /// Address `10.99.<lan>.<last>` of this LAN's IPv4 subnet (/24).
    pub fn addr_v4(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 99, self.id, last)
    }

    /// Address `fd99:<lan>::<last>` of this LAN's IPv6 subnet (/64).
    pub fn addr_v6(&self, last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd99, u16::from(self.id), 0, 0, 0, 0, 0, last)
    }

    /// The address no host or client has, for a virtual IP: `.100` / `::100`.
    pub fn vip(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.addr_v6(0x100))
        } else {
            IpAddr::V4(self.addr_v4(100))
        }
    }

    pub fn add_client(&mut self) -> io::Result<&Host> {
        let j = self.clients.len();
        if j >= MAX_CLIENTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a LAN has at most {MAX_CLIENTS} clients"),
            ));
        }
        let c = self.make_host(&format!("c{j}"), &format!("c{j}"), 101 + j as u8)?;
        self.clients.push(c);
        Ok(&self.clients[j])
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `i`.
    ///
    /// # Panics
    /// If `i` is out of range, like slice indexing (use [`Lan::hosts`] to check).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    pub fn clients(&self) -> &[Host] {
        &self.clients
    }

    /// Client `j`.
    ///
    /// # Panics
    /// If `j` is out of range, like slice indexing (use [`Lan::clients`] to check).
    pub fn client(&self, j: usize) -> &Host {
        &self.clients[j]
    }

    /// The switch namespace (bridge `br0`, ports `p<i>` / `c<j>`).
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// Names of the host namespaces.
    pub fn host_ns_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.ns.name().to_owned()).collect()
    }

    /// Every namespace this LAN created (switch, hosts, clients).
    pub fn ns_names(&self) -> Vec<String> {
        self.created.clone()
    }

    /// A prefix shared by all namespace names of this LAN.
    pub fn stem(&self) -> &str {
        &self.stem
    }

    fn checked_host(&self, i: usize) -> io::Result<&Host> {
        self.hosts
            .get(i)
            .ok_or_else(|| bad_index("host", i, self.hosts.len()))
    }

    /// Cuts host `i`'s cable: sets the SWITCH-side veth down, so the host's `eth0`
    /// stays administratively UP but loses carrier (NO-CARRIER, operstate
    /// LOWERLAYERDOWN, no IFF_LOWER_UP). Err (InvalidInput) for a bad index.
    pub fn link_down(&self, i: usize) -> io::Result<()> {
        let h = self.checked_host(i)?;
        self.switch.ip(&["link", "set", &h.port, "down"]).map(drop)
    }

    /// Restores host `i`'s cable (switch-side veth up).
    pub fn link_up(&self, i: usize) -> io::Result<()> {
        let h = self.checked_host(i)?;
        self.switch.ip(&["link", "set", &h.port, "up"]).map(drop)
    }

    /// Degrades what host `i` SENDS, netem style: `"loss 10%"`, `"delay 5ms"`,
    /// `"loss 10% delay 5ms"` (`tc qdisc replace dev eth0 root netem SPEC`).
    ///
    /// Kernels without sch_netem (CONFIG_NET_SCH_NETEM unset, e.g. the CI microVM
    /// kernel) fall back to nftables for `loss N%` alone (random drop in a netdev
    /// egress chain on eth0); anything else is then an `Unsupported` error. Check
    /// [`netem_available`] to adapt instead.
    pub fn tc_netem(&self, i: usize, spec: &str) -> io::Result<()> {
        let h = self.checked_host(i)?;
        apply_netem(&h.ns, "eth0", spec)
    }

    /// Same as [`Lan::tc_netem`] on the switch port towards host `i`: degrades what
    /// host `i` RECEIVES.
    pub fn tc_netem_port(&self, i: usize, spec: &str) -> io::Result<()> {
        let h = self.checked_host(i)?;
        apply_netem(&self.switch, &h.port, spec)
    }

    /// Drops EVERYTHING host `i` sends (one-way partition; carrier stays up), via an
    /// nftables netdev egress rule. Undo with [`Lan::tc_clear`].
    pub fn block_egress(&self, i: usize) -> io::Result<()> {
        let h = self.checked_host(i)?;
        nft_drop(&h.ns, "eth0", None)
    }

    /// Drops everything sent TO host `i` (at the switch port). Undo with [`Lan::tc_clear`].
    pub fn block_ingress(&self, i: usize) -> io::Result<()> {
        let h = self.checked_host(i)?;
        nft_drop(&self.switch, &h.port, None)
    }

    /// Removes netem/nftables impairments from both directions of host `i` (nothing to
    /// remove is fine).
    pub fn tc_clear(&self, i: usize) -> io::Result<()> {
        let h = self.checked_host(i)?;
        clear_impairments(&h.ns, "eth0")?;
        clear_impairments(&self.switch, &h.port)
    }
}

/// Whether the running kernel has the netem qdisc: tries one on `lo` of `ns` and
/// removes it again. `false` also when `tc` cannot be run at all.
pub fn netem_available(ns: &Netns) -> bool {
    let added = ns.exec(&[
        "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "0ms",
    ]);
    match added {
        Ok(out) if out.status.success() => {
            let _ = ns.exec(&["tc", "qdisc", "del", "dev", "lo", "root"]);
            true
        }
        _ => false,
    }
}

fn nft_table(dev: &str) -> String {
    format!(
        "vipdtest_{}",
        dev.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

fn nft_drop(ns: &Netns, dev: &str, percent: Option<u32>) -> io::Result<()> {
    let table = nft_table(dev);
    let rule = match percent {
        Some(p) if p < 100 => format!("numgen random mod 100 < {p} drop"),
        _ => "drop".to_owned(),
    };
    let script = format!(
        "table netdev {table} {{\n chain egress {{\n  type filter hook egress device \"{dev}\" priority 0; policy accept;\n  {rule}\n }}\n}}\n"
    );
    // Replace an earlier impairment of the same device (absent is fine).
    let _ = ns.exec(&["nft", "delete", "table", "netdev", &table])?;
    let path = std::env::temp_dir().join(format!("{}-{table}.nft", ns.name()));
    std::fs::write(&path, script)
        .map_err(|e| context(e, format_args!("write nft script {}", path.display())))?;
    let path_s = path.display().to_string();
    let out = ns.exec(&["nft", "-f", &path_s]);
    let _ = std::fs::remove_file(&path);
    let out = out?;
    if out.status.success() {
        Ok(())
    } else {
        Err(command_failed(
            format_args!(
                "in netns {}: `nft -f` (drop on {dev}; is nftables installed?)",
                ns.name()
            ),
            &out,
        ))
    }
}

fn clear_impairments(ns: &Netns, dev: &str) -> io::Result<()> {
    // Either may legitimately be absent: only failing to run the commands is an error.
    let _ = ns.exec(&["tc", "qdisc", "del", "dev", dev, "root"])?;
    let _ = ns.exec(&["nft", "delete", "table", "netdev", &nft_table(dev)]);
    Ok(())
}

fn apply_netem(ns: &Netns, dev: &str, spec: &str) -> io::Result<()> {
    let mut args = vec!["tc", "qdisc", "replace", "dev", dev, "root", "netem"];
    args.extend(spec.split_whitespace());
    let out = ns.exec(&args)?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.contains("unknown") {
        return Err(command_failed(
            format_args!("in netns {}: `{}`", ns.name(), args.join(" ")),
            &out,
        ));
    }
    // No sch_netem in this kernel: emulate "loss N%" with nftables.
    let words: Vec<&str> = spec.split_whitespace().collect();
    let loss = match words.as_slice() {
        ["loss", p] => p
            .trim_end_matches('%')
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p)),
        _ => None,
    };
    match loss {
        Some(p) => nft_drop(ns, dev, Some(p.round() as u32)),
        None => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "netem {spec:?} on {dev} in netns {}: this kernel has no netem qdisc \
                 (CONFIG_NET_SCH_NETEM); only \"loss N%\" can be emulated (with nftables)",
                ns.name()
            ),
        )),
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth ends (and thus the pairs) and the bridge.
        for name in self.created.iter().rev() {
            netns_del(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique_and_short() {
        let (a, n) = unique_stem("same");
        let (b, m) = unique_stem("same");
        assert_ne!(a, b);
        assert_ne!(n, m);
        assert!(a.starts_with("vt"));
        // `<stem>-sw` must fit a netns name comfortably and stay a valid file name.
        assert!(!a.contains('/'));
    }

    #[test]
    fn nft_table_names_are_identifiers() {
        assert_eq!(nft_table("p0"), "vipdtest_p0");
        assert_eq!(nft_table("eth0.1"), "vipdtest_eth0_1");
    }
}
