//! Accept_Mode (RFC 9568 §6.4.3) enforced with nftables: a master whose instance has
//! `accept = false` (and is not the address owner) must not accept packets addressed to its
//! VIPs, except neighbour discovery (the VIP must still answer ND, as it answers ARP, which
//! is not IP and so never filtered).
//!
//! vipd keeps one table, `inet vipd_accept`, holding an input-hook chain that drops IPv4 and
//! IPv6 packets addressed to those VIPs. The rules match only while the address is local
//! (the input hook sees only locally delivered packets), so they stay installed while the
//! instance runs, whatever its state: a takeover then costs no extra step, and the VIP is
//! never reachable, even for a moment, on a master that must not accept. The table is
//! replaced in one `nft -f` transaction whenever the set of such VIPs changes (start,
//! reload), and deleted when vipd stops or no instance needs it.
//!
//! Written against the `nft` program (nftables' own front end, Debian package `nftables`)
//! rather than a netlink library of our own: one atomic transaction, a few times per
//! daemon lifetime, never on the takeover path.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The nftables table vipd owns.
pub const TABLE: &str = "vipd_accept";

/// The `nft` script that makes the table drop traffic to `vips` (deleting it first, so the
/// result is exactly this list). Empty `vips`: the table is only deleted.
pub fn script(vips: &[IpAddr]) -> String {
    let v4: Vec<String> = vips
        .iter()
        .filter(|a| a.is_ipv4())
        .map(ToString::to_string)
        .collect();
    let v6: Vec<String> = vips
        .iter()
        .filter(|a| a.is_ipv6())
        .map(ToString::to_string)
        .collect();
    // `table` then `delete table`: deleting a table that does not exist is an error, so
    // declare it first (a no-op when it exists).
    let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
    if vips.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority filter - 10; policy accept;\n"
    ));
    if !v4.is_empty() {
        s.push_str(&format!(
            "    ip daddr {{ {} }} counter drop\n",
            v4.join(", ")
        ));
    }
    if !v6.is_empty() {
        let set = v6.join(", ");
        s.push_str(&format!(
            "    ip6 daddr {{ {set} }} icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n    ip6 daddr {{ {set} }} counter drop\n"
        ));
    }
    s.push_str("  }\n}\n");
    s
}

/// Runs `nft -f -` with `script`.
fn nft(script: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run nft (install the nftables package): {e}"),
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "nft failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The VIPs currently dropped, so that an unchanged list costs nothing.
#[derive(Debug, Default)]
pub struct AcceptFilter {
    installed: Option<Vec<IpAddr>>,
}

impl AcceptFilter {
    /// Makes the table drop exactly `vips` (sorted, deduplicated here). Nothing to do when
    /// the list is unchanged, or empty and nothing was ever installed by this process
    /// (a table left by a crashed vipd is removed on the first non-empty sync, or by
    /// [`AcceptFilter::clear_stale`]).
    pub fn sync(&mut self, mut vips: Vec<IpAddr>) -> io::Result<bool> {
        vips.sort();
        vips.dedup();
        if self.installed.as_ref() == Some(&vips) {
            return Ok(false);
        }
        if vips.is_empty() && self.installed.is_none() {
            return Ok(false);
        }
        nft(&script(&vips))?;
        self.installed = Some(vips);
        Ok(true)
    }

    /// At startup with no instance needing the filter: delete a table a previous vipd left
    /// behind (killed before it could). Quiet when there is none or nft is missing.
    pub fn clear_stale() {
        let listed = Command::new("nft")
            .args(["list", "table", "inet", TABLE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if listed.is_ok_and(|s| s.success()) {
            let _ = nft(&script(&[]));
        }
    }

    /// Deletes the table (clean stop).
    pub fn remove(&mut self) -> io::Result<()> {
        if self.installed.take().is_some_and(|v| !v.is_empty()) {
            nft(&script(&[]))?;
        }
        Ok(())
    }
}

/// The nftables table keeping VMAC devices quiet.
pub const VMAC_TABLE: &str = "vipd_vmac";

/// The `nft` script that drops IGMP and MLD reports sent out of `devices` (VMAC devices:
/// a backup's would teach switches the virtual MAC at its port; VRRP's groups are link-local
/// and flooded, so no report is needed). Empty: the table is only deleted.
pub fn vmac_script(devices: &[String]) -> String {
    let mut s = format!("table inet {VMAC_TABLE}\ndelete table inet {VMAC_TABLE}\n");
    if devices.is_empty() {
        return s;
    }
    let set: Vec<String> = devices.iter().map(|d| format!("\"{d}\"")).collect();
    let set = set.join(", ");
    s.push_str(&format!(
        "table inet {VMAC_TABLE} {{\n  chain output {{\n    type filter hook output priority filter; policy accept;\n    oifname {{ {set} }} ip protocol igmp counter drop\n    oifname {{ {set} }} icmpv6 type {{ mld-listener-report, mld2-listener-report, mld-listener-done }} counter drop\n  }}\n}}\n"
    ));
    s
}

/// The VMAC devices currently silenced.
#[derive(Debug, Default)]
pub struct VmacFilter {
    installed: Option<Vec<String>>,
}

impl VmacFilter {
    /// Silences exactly `devices` (nothing to do when unchanged).
    pub fn sync(&mut self, mut devices: Vec<String>) -> io::Result<()> {
        devices.sort();
        devices.dedup();
        if self.installed.as_ref() == Some(&devices) {
            return Ok(());
        }
        nft(&vmac_script(&devices))?;
        self.installed = Some(devices);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_drops_both_families_but_neighbour_discovery() {
        let s = script(&[
            "192.0.2.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            "2001:db8::10".parse().unwrap_or(IpAddr::from([0u16; 8])),
        ]);
        assert!(s.starts_with("table inet vipd_accept\ndelete table inet vipd_accept\n"));
        assert!(s.contains("ip daddr { 192.0.2.10 } counter drop"));
        assert!(s.contains(
            "ip6 daddr { 2001:db8::10 } icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"
        ));
        assert!(s.contains("ip6 daddr { 2001:db8::10 } counter drop"));
        assert_eq!(
            script(&[]),
            "table inet vipd_accept\ndelete table inet vipd_accept\n"
        );
    }
}
