//! RFC 9568 virtual MAC (keepalived's `use_vmac`): per instance, a private-mode macvlan on
//! its interface with MAC 00:00:5e:00:01:{vrid} (IPv6 00:00:5e:00:02:{vrid}). The VIPs live on
//! it and gratuitous ARP/NA announce its MAC, so a takeover needs no ARP cache change at all;
//! adverts go out of it too, unless `vmac_xmit_base`, and are read on it (the kernel hands a
//! multicast frame from a peer's virtual MAC only to the local device with that MAC). Its
//! IGMP/MLD reports are dropped by an nftables table (`inet vipd_vmac`): a backup must never
//! send from the virtual MAC, or switches would learn it at the backup's port.
//!
//! As keepalived does, the VMAC device gets arp_ignore=1, accept_local=1, rp_filter=0 and
//! promote_secondaries=1, and its parent arp_ignore=1 and arp_filter=1 (so that neither
//! answers ARP for the other's addresses). Beyond keepalived, the parent also gets
//! arp_announce=2: replies to clients leave through the parent, and its ARP requests for them
//! would otherwise name the VIP as sender with the parent's MAC, undoing the VMAC in the
//! clients' caches. The parent's values are put back when its last VMAC goes. IPv6 VMAC devices get no automatic link-local address: the parent's one (the
//! adverts' source) is added to them. The devices carry the alias [`VMAC_ALIAS`]: they are
//! removed at a clean stop, and those a crash left and no instance wants are removed at the
//! next start or reload.

use std::net::IpAddr;

use tracing::{info, warn};

use super::{Daemon, Inst};
use crate::net::netlink::{AddrSpec, LinkInfo, Netlink, VMAC_ALIAS, VmacSpec, devconf, mac_text};
use vipd_config as config;

/// An instance's VMAC device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmacDev {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// The parent interface's index.
    pub parent: u32,
}

impl<N: Netlink> Daemon<N> {
    /// Creates (or takes) instance `c`'s VMAC device on `link`, with keepalived's settings;
    /// `src` is the adverts' source (IPv6: added to the device).
    pub(super) async fn make_vmac(
        &mut self,
        c: &config::Instance,
        link: &LinkInfo,
        src: IpAddr,
    ) -> std::io::Result<Option<VmacDev>> {
        let Some(name) = &c.vmac else {
            return Ok(None);
        };
        // Before the device exists: its first multicast join must not go out either.
        let mut silenced: Vec<String> = self
            .insts
            .iter()
            .filter_map(|i| i.vmac.as_ref().map(|v| v.name.clone()))
            .collect();
        silenced.push(name.clone());
        if let Err(e) = self.io.vmac_filter.sync(silenced) {
            warn!(instance = %c.name, interface = %name, error = %e,
                  "cannot keep {name} from sending IGMP/MLD reports ({e}): a backup's reports may teach switches the virtual MAC at its port");
        }
        let spec = VmacSpec {
            name: name.clone(),
            parent: link.index,
            mac: c.virtual_mac(),
            alias: format!("{VMAC_ALIAS} {}", c.name),
            v6: src.is_ipv6(),
        };
        let dev = self.nl.ensure_vmac(&spec).await?;
        if src.is_ipv4() {
            let on_dev = [
                (devconf::ARP_IGNORE, 1),
                (devconf::ACCEPT_LOCAL, 1),
                (devconf::RP_FILTER, 0),
                (devconf::PROMOTE_SECONDARIES, 1),
            ];
            if let Err(e) = self.nl.set_ipv4_conf(dev.index, &on_dev).await {
                warn!(instance = %c.name, interface = %name, error = %e,
                      "cannot set arp_ignore/accept_local/rp_filter on {name}: {e}");
            }
            self.hold_parent_arp(link.index, &c.name).await;
        } else {
            let spec = AddrSpec {
                addr: src,
                prefix_len: 64,
                label: None,
                scope: config::Scope::Link,
                nodad: true,
            };
            if let Err(e) = self.nl.add_addr(dev.index, &spec).await {
                warn!(instance = %c.name, interface = %name, error = %e,
                      "cannot add {src} to {name} (the adverts' source): {e}");
            }
        }
        info!(instance = %c.name, interface = %name, mac = %mac_text(&spec.mac), parent = %c.interface,
              "{}: VMAC device {name} ({}) on {}", c.name, mac_text(&spec.mac), c.interface);
        Ok(Some(VmacDev {
            index: dev.index,
            name: name.clone(),
            mac: spec.mac,
            parent: link.index,
        }))
    }

    /// The parent of a VMAC device must not answer ARP for the VMAC's addresses nor announce
    /// them: arp_ignore and arp_filter 1, arp_announce 2, its own values kept to put back.
    async fn hold_parent_arp(&mut self, parent: u32, instance: &str) {
        if self.io.parent_arp.contains_key(&parent) {
            return;
        }
        let old = match self.nl.arp_conf(parent).await {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => {
                warn!(instance, error = %e, "cannot read arp_ignore/arp_filter of the VMAC's parent: {e}");
                return;
            }
        };
        let set = [
            (devconf::ARP_IGNORE, 1),
            (devconf::ARP_FILTER, 1),
            (devconf::ARP_ANNOUNCE, 2),
        ];
        match self.nl.set_ipv4_conf(parent, &set).await {
            Ok(()) => {
                self.io.parent_arp.insert(parent, old);
            }
            Err(e) => {
                warn!(instance, error = %e, "cannot set arp_ignore/arp_filter on the VMAC's parent: {e}")
            }
        }
    }

    /// Removes the VMAC devices no instance uses now (`all`: every one, at a clean stop),
    /// and puts back the ARP settings of parents left without one.
    pub(super) async fn prune_vmacs(&mut self, all: bool) {
        let links = match self.nl.links().await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot list links to remove unused VMAC devices: {e}");
                return;
            }
        };
        let wanted: Vec<u32> = if all {
            Vec::new()
        } else {
            self.insts
                .iter()
                .filter_map(|i| i.vmac.as_ref().map(|v| v.index))
                .collect()
        };
        for l in links.iter().filter(|l| {
            l.macvlan_on.is_some()
                && l.alias
                    .as_deref()
                    .is_some_and(|a| a.starts_with(VMAC_ALIAS))
                && !wanted.contains(&l.index)
        }) {
            match self.nl.delete_link(l.index).await {
                Ok(()) => info!(interface = %l.name, "VMAC device {} removed", l.name),
                Err(e) => {
                    warn!(interface = %l.name, error = %e, "cannot remove VMAC device {}: {e}", l.name)
                }
            }
        }
        if all {
            for i in &mut self.insts {
                i.vmac = None;
            }
        }
        let silenced: Vec<String> = self
            .insts
            .iter()
            .filter_map(|i| i.vmac.as_ref().map(|v| v.name.clone()))
            .collect();
        if let Err(e) = self.io.vmac_filter.sync(silenced) {
            warn!(error = %e, "cannot update the VMAC IGMP/MLD filter: {e}");
        }
        let parents: Vec<u32> = self
            .insts
            .iter()
            .filter_map(|i| i.vmac.as_ref().map(|v| v.parent))
            .collect();
        let release: Vec<(u32, (u32, u32, u32))> = self
            .io
            .parent_arp
            .iter()
            .filter(|(p, _)| !parents.contains(p))
            .map(|(p, v)| (*p, *v))
            .collect();
        for (parent, (ignore, filter, announce)) in release {
            self.io.parent_arp.remove(&parent);
            let set = [
                (devconf::ARP_IGNORE, ignore),
                (devconf::ARP_FILTER, filter),
                (devconf::ARP_ANNOUNCE, announce),
            ];
            if let Err(e) = self.nl.set_ipv4_conf(parent, &set).await {
                warn!(error = %e, "cannot put back arp_ignore/arp_filter of a VMAC's parent: {e}");
            }
        }
    }
}

impl Inst {
    /// Where VIPs without a device of their own go: the VMAC device, else the interface.
    pub(super) fn vip_dev(&self) -> Option<(u32, [u8; 6])> {
        if self.interface_missing() {
            return None;
        }
        Some(match &self.vmac {
            Some(v) => (v.index, v.mac),
            None => (self.ifindex, self.mac),
        })
    }
}
