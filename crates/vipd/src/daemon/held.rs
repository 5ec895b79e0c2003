//! What a master holds: its VIPs, each on the device it belongs on (the instance's
//! interface, or the VIP's own `interface`, keepalived's `dev`), advertised or excluded.
//!
//! `Inst::placed` records where each VIP was put, so that releasing, restoring, reloading and
//! upgrading act on the device the address is really on, whatever the configuration says now.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::{Daemon, Inst};
use crate::net::netlink::Netlink;
use crate::net::packet::FrameSender;
use vipd_config as config;

/// One VIP as a master put it on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// The device's index, and its hardware address (the source of gratuitous frames).
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// Where a VIP goes: (index, MAC) of its device, or `None` while that device does not exist.
type Device = Option<(u32, [u8; 6])>;

impl<N: Netlink> Daemon<N> {
    /// The device of every VIP of instance `idx`, in configuration order. Each other device
    /// is looked up once (and given a frame socket for its gratuitous ARP / NA).
    async fn vip_devices(&mut self, idx: usize) -> Vec<(config::Vip, Device)> {
        let Some(inst) = self.insts.get(idx) else {
            return Vec::new();
        };
        let own: Device = (!inst.interface_missing()).then_some((inst.ifindex, inst.mac));
        let vips = inst.cfg.vips.clone();
        let mut seen: HashMap<String, Device> = HashMap::new();
        let mut out = Vec::with_capacity(vips.len());
        for v in vips {
            let dev = match &v.interface {
                None => own,
                Some(name) => match seen.get(name) {
                    Some(d) => *d,
                    None => {
                        let d = self.device(name).await;
                        seen.insert(name.clone(), d);
                        d
                    }
                },
            };
            out.push((v, dev));
        }
        out
    }

    /// The device called `name` (with a frame socket), or `None` when there is none.
    async fn device(&mut self, name: &str) -> Device {
        match self.nl.link_by_name(name).await {
            Ok(Some(link)) => {
                if let std::collections::hash_map::Entry::Vacant(e) =
                    self.io.frames.entry(link.index)
                {
                    match FrameSender::open(link.index) {
                        Ok(f) => {
                            e.insert(Arc::new(f));
                        }
                        Err(err) => {
                            warn!(interface = %name, error = %err,
                                  "no frame socket on {name} ({err}): no gratuitous ARP/NA for its VIPs")
                        }
                    }
                }
                Some((link.index, link.mac.unwrap_or([0; 6])))
            }
            Ok(None) => None,
            Err(e) => {
                warn!(interface = %name, error = %e, "could not look up interface {name}: {e}");
                None
            }
        }
    }

    /// Makes what master `idx` holds match its configuration: a placed VIP that is no longer
    /// configured on that device is removed, a configured one not placed yet is added where
    /// it belongs (a VIP whose device does not exist waits for it: [`Daemon::reconcile`]
    /// retries every second). `what` begins each log line ("reload: ", "upgrade: " or "").
    /// Returns the addresses added (to announce).
    pub(super) async fn sync_vips(&mut self, idx: usize, what: &str) -> Vec<IpAddr> {
        if !self.insts.get(idx).is_some_and(|i| i.holding) {
            return Vec::new();
        }
        let devices = self.vip_devices(idx).await;
        let Some(inst) = self.insts.get_mut(idx) else {
            return Vec::new();
        };
        let name = inst.cfg.name.clone();
        // Placed but not wanted there (any more).
        let (keep, drop): (Vec<Placed>, Vec<Placed>) =
            std::mem::take(&mut inst.placed).into_iter().partition(|p| {
                devices.iter().any(|(v, d)| {
                    v.addr == p.addr
                        && v.prefix_len == p.prefix_len
                        && d.is_some_and(|(i, _)| i == p.ifindex)
                })
            });
        inst.placed = keep;
        for p in drop {
            match self.nl.del_addr(p.ifindex, p.addr, p.prefix_len).await {
                Ok(()) => info!(instance = %name, vip = %p.addr, "{what}VIP removed"),
                Err(e) => {
                    error!(instance = %name, vip = %p.addr, error = %e, "{what}could not remove VIP")
                }
            }
        }
        let mut added = Vec::new();
        let mut waiting = Vec::new();
        for (v, dev) in devices {
            let placed = self
                .insts
                .get(idx)
                .is_some_and(|i| i.placed.iter().any(|p| p.addr == v.addr));
            if placed {
                continue;
            }
            let Some((ifindex, mac)) = dev else {
                waiting.push(v);
                continue;
            };
            match self.nl.add_addr(ifindex, &Inst::addr_spec(&v)).await {
                Ok(()) => {
                    match &v.interface {
                        Some(dev) => info!(instance = %name, vip = %v.addr, interface = %dev,
                                           "{what}VIP added on {dev}"),
                        None => info!(instance = %name, vip = %v.addr, "{what}VIP added"),
                    }
                    added.push(v.addr);
                    if let Some(inst) = self.insts.get_mut(idx) {
                        inst.placed.push(Placed {
                            addr: v.addr,
                            prefix_len: v.prefix_len,
                            ifindex,
                            mac,
                        });
                    }
                }
                Err(e) => {
                    error!(instance = %name, vip = %v.addr, error = %e, "{what}could not add VIP")
                }
            }
        }
        // Said once per device that goes missing, not every second.
        if let Some(inst) = self.insts.get_mut(idx) {
            let mut missing: Vec<String> = waiting
                .iter()
                .map(|v| v.interface.clone().unwrap_or_else(|| inst.cfg.interface.clone()))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            for dev in missing.iter().filter(|d| !inst.missing_devices.contains(d)) {
                let vips: Vec<String> = waiting
                    .iter()
                    .filter(|v| v.interface.as_deref().unwrap_or(&inst.cfg.interface) == dev)
                    .map(ToString::to_string)
                    .collect();
                warn!(instance = %name, interface = %dev, vips = %vips.join(","),
                      "{name}: interface {dev} does not exist: {} added when it appears",
                      vips.join(", "));
            }
            inst.missing_devices = missing;
        }
        added
    }

    /// Removes every VIP master `idx` placed (releasing them).
    pub(super) async fn unplace_vips(&mut self, idx: usize) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let placed = std::mem::take(&mut inst.placed);
        inst.missing_devices.clear();
        let name = inst.cfg.name.clone();
        for p in placed {
            match self.nl.del_addr(p.ifindex, p.addr, p.prefix_len).await {
                Ok(()) => info!(instance = %name, vip = %p.addr, "VIP removed"),
                Err(e) => {
                    error!(instance = %name, vip = %p.addr, error = %e, "could not remove VIP")
                }
            }
        }
    }

    /// Crash recovery before instance `c` claims anything: VIPs of it found on their devices
    /// were left there by a previous run and are removed (the address owner's are its own).
    pub(super) async fn remove_leftover_vips(&mut self, c: &config::Instance, own: u32) {
        if c.is_owner() {
            return;
        }
        let mut lists: HashMap<u32, Vec<(IpAddr, u8)>> = HashMap::new();
        for vip in &c.vips {
            let index = match &vip.interface {
                None => Some(own),
                Some(name) => self.device(name).await.map(|(i, _)| i),
            };
            let Some(index) = index else { continue };
            if let std::collections::hash_map::Entry::Vacant(e) = lists.entry(index) {
                e.insert(self.nl.addrs(index).await.unwrap_or_default());
            }
            let present = lists.get(&index).is_some_and(|l| l.iter().any(|(a, _)| *a == vip.addr));
            if present {
                let dev = vip.interface.as_deref().unwrap_or(&c.interface);
                warn!(instance = %c.name, vip = %vip, interface = %dev,
                      "removing a VIP left on {dev} by a previous run");
                if let Err(e) = self.nl.del_addr(index, vip.addr, vip.prefix_len).await {
                    error!(instance = %c.name, vip = %vip, error = %e, "could not remove a VIP left by a previous run");
                }
            }
        }
    }

    /// The (frame socket, MAC, device name) each of `addrs` is announced from: where master
    /// `idx` placed it. Addresses not placed (their device is missing) are left out.
    pub(super) fn announce_from(&self, idx: usize, addrs: Option<&[IpAddr]>) -> Vec<Announce> {
        let Some(inst) = self.insts.get(idx) else {
            return Vec::new();
        };
        inst.placed
            .iter()
            .filter(|p| addrs.is_none_or(|a| a.contains(&p.addr)))
            .filter_map(|p| {
                let frames = self.io.frames.get(&p.ifindex)?;
                let dev = inst
                    .cfg
                    .vips
                    .iter()
                    .find(|v| v.addr == p.addr)
                    .and_then(|v| v.interface.clone())
                    .unwrap_or_else(|| inst.cfg.interface.clone());
                Some(Announce {
                    addr: p.addr,
                    mac: p.mac,
                    frames: Arc::clone(frames),
                    dev,
                })
            })
            .collect()
    }
}

/// One address to announce, and where from.
pub(super) struct Announce {
    pub addr: IpAddr,
    pub mac: [u8; 6],
    pub frames: Arc<FrameSender>,
    pub dev: String,
}
