//! What a master holds: its VIPs, each on the device it belongs on (the instance's
//! interface, or the VIP's own `interface`, keepalived's `dev`), advertised or excluded, and
//! its routes and policy rules (keepalived's `virtual_routes` / `virtual_rules`).
//!
//! `Inst::placed` records where each VIP was put, so that releasing, restoring, reloading and
//! upgrading act on the device the address is really on, whatever the configuration says now;
//! `placed_routes` / `placed_rules` record the routes and rules added. Routes and rules are
//! added after the VIPs (a route's `src` may be a VIP) and removed before them.

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

/// A route a master added, and the device index it goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlacedRoute {
    pub route: config::Route,
    pub oif: Option<u32>,
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
        let own: Device = inst.vip_dev();
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

    /// [`Daemon::sync_vips`], then the gratuitous burst (`garp_master_repeat`) for the
    /// addresses it added, as a takeover would send for them.
    pub(super) async fn sync_and_announce_vips(&mut self, idx: usize, what: &str) {
        let added = self.sync_vips(idx, what).await;
        let repeat = self
            .insts
            .get(idx)
            .map_or(0, |i| u32::from(i.cfg.garp.master_repeat));
        if !added.is_empty() && repeat > 0 {
            self.send_gratuitous(idx, Some(&added), repeat).await;
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
        let waiting_routes = self.sync_routes(idx, what).await;
        self.sync_rules(idx, what).await;
        // Said once per device that goes missing, not every second.
        if let Some(inst) = self.insts.get_mut(idx) {
            let mut missing: Vec<String> = waiting
                .iter()
                .map(|v| {
                    v.interface
                        .clone()
                        .unwrap_or_else(|| inst.cfg.interface.clone())
                })
                .chain(waiting_routes.iter().filter_map(|r| r.interface.clone()))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            for dev in missing.iter().filter(|d| !inst.missing_devices.contains(d)) {
                let vips: Vec<String> = waiting
                    .iter()
                    .filter(|v| v.interface.as_deref().unwrap_or(&inst.cfg.interface) == dev)
                    .map(ToString::to_string)
                    .chain(
                        waiting_routes
                            .iter()
                            .filter(|r| r.interface.as_deref() == Some(dev.as_str()))
                            .map(|r| format!("route {r}")),
                    )
                    .collect();
                warn!(instance = %name, interface = %dev, vips = %vips.join(","),
                      "{name}: interface {dev} does not exist: {} added when it appears",
                      vips.join(", "));
            }
            inst.missing_devices = missing;
        }
        added
    }

    /// Routes of master `idx`: those placed but no longer configured (or through another
    /// device now) are deleted, configured ones not placed are added. Returns the routes that
    /// wait for their device.
    async fn sync_routes(&mut self, idx: usize, what: &str) -> Vec<config::Route> {
        let Some(inst) = self.insts.get(idx) else {
            return Vec::new();
        };
        let routes = inst.cfg.routes.clone();
        let name = inst.cfg.name.clone();
        let mut wanted: Vec<PlacedRoute> = Vec::with_capacity(routes.len());
        let mut waiting = Vec::new();
        for r in routes {
            let oif = match &r.interface {
                None => None,
                Some(dev) => match self.device(dev).await {
                    Some((i, _)) => Some(i),
                    None => {
                        waiting.push(r);
                        continue;
                    }
                },
            };
            wanted.push(PlacedRoute { route: r, oif });
        }
        let Some(inst) = self.insts.get_mut(idx) else {
            return waiting;
        };
        let (keep, drop): (Vec<PlacedRoute>, Vec<PlacedRoute>) =
            std::mem::take(&mut inst.placed_routes)
                .into_iter()
                .partition(|p| wanted.contains(p));
        inst.placed_routes = keep;
        for p in drop {
            match self.nl.del_route(&p.route, p.oif).await {
                Ok(()) => info!(instance = %name, route = %p.route, "{what}route removed"),
                Err(e) => error!(instance = %name, route = %p.route, error = %e,
                                 "{what}could not remove route {}: {e}", p.route),
            }
        }
        for w in wanted {
            if self
                .insts
                .get(idx)
                .is_some_and(|i| i.placed_routes.contains(&w))
            {
                continue;
            }
            match self.nl.add_route(&w.route, w.oif).await {
                Ok(added) => {
                    if added {
                        info!(instance = %name, route = %w.route, "{what}route added");
                    } else if what.is_empty() {
                        info!(instance = %name, route = %w.route,
                              "route {} is in the kernel already: not replaced", w.route);
                    }
                    if let Some(i) = self.insts.get_mut(idx) {
                        i.placed_routes.push(w);
                    }
                }
                Err(e) => error!(instance = %name, route = %w.route, error = %e,
                                 "{what}could not add route {}: {e}", w.route),
            }
        }
        waiting
    }

    /// Rules of master `idx`, as [`Daemon::sync_routes`] (a rule names its devices, which
    /// need not exist).
    async fn sync_rules(&mut self, idx: usize, what: &str) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let wanted = inst.cfg.rules.clone();
        let name = inst.cfg.name.clone();
        let (keep, drop): (Vec<config::Rule>, Vec<config::Rule>) =
            std::mem::take(&mut inst.placed_rules)
                .into_iter()
                .partition(|r| wanted.contains(r));
        inst.placed_rules = keep;
        for r in drop {
            match self.nl.del_rule(&r).await {
                Ok(()) => info!(instance = %name, rule = %r, "{what}rule removed"),
                Err(e) => error!(instance = %name, rule = %r, error = %e,
                                 "{what}could not remove rule {r}: {e}"),
            }
        }
        for r in wanted {
            if self
                .insts
                .get(idx)
                .is_some_and(|i| i.placed_rules.contains(&r))
            {
                continue;
            }
            // A rule without a priority gets one from the kernel, and then an identical add
            // is not "exists": look first, or every takeover would add one more.
            let present = self.nl.has_rule(&r).await.unwrap_or(false);
            let result = if present {
                Ok(false)
            } else {
                self.nl.add_rule(&r).await
            };
            match result {
                Ok(added) => {
                    if added {
                        info!(instance = %name, rule = %r, "{what}rule added");
                    }
                    if let Some(i) = self.insts.get_mut(idx) {
                        i.placed_rules.push(r);
                    }
                }
                Err(e) => error!(instance = %name, rule = %r, error = %e,
                                 "{what}could not add rule {r}: {e}"),
            }
        }
    }

    /// Puts back the tracked routes of masters that were deleted: those matching a deletion
    /// the kernel reported (`None`: check them all).
    pub(super) async fn restore_routes(&mut self, deleted: Option<(IpAddr, u8, u32)>) {
        for idx in 0..self.insts.len() {
            if !self.insts[idx].holding {
                continue;
            }
            let candidates: Vec<PlacedRoute> = self.insts[idx]
                .placed_routes
                .iter()
                .filter(|p| p.route.track)
                .filter(|p| {
                    deleted.is_none_or(|(dst, len, table)| {
                        p.route.to == (dst, len) && p.route.table == table
                    })
                })
                .cloned()
                .collect();
            for p in candidates {
                if self.nl.has_route(&p.route).await.unwrap_or(true) {
                    continue;
                }
                let inst = &mut self.insts[idx];
                warn!(instance = %inst.cfg.name, route = %p.route,
                      "{}: route {} was removed behind our back while master; putting it back",
                      inst.cfg.name, p.route);
                inst.counters.routes_restored += 1;
                if let Err(e) = self.nl.add_route(&p.route, p.oif).await {
                    error!(route = %p.route, error = %e, "could not restore route {}: {e}", p.route);
                }
            }
        }
    }

    /// Puts back the tracked rules of masters that are missing.
    pub(super) async fn restore_rules(&mut self) {
        for idx in 0..self.insts.len() {
            if !self.insts[idx].holding {
                continue;
            }
            let candidates: Vec<config::Rule> = self.insts[idx]
                .placed_rules
                .iter()
                .filter(|r| r.track)
                .cloned()
                .collect();
            for r in candidates {
                if self.nl.has_rule(&r).await.unwrap_or(true) {
                    continue;
                }
                let inst = &mut self.insts[idx];
                warn!(instance = %inst.cfg.name, rule = %r,
                      "{}: rule \"{r}\" was removed behind our back while master; putting it back",
                      inst.cfg.name);
                inst.counters.routes_restored += 1;
                if let Err(e) = self.nl.add_rule(&r).await {
                    error!(rule = %r, error = %e, "could not restore rule {r}: {e}");
                }
            }
        }
    }

    /// Removes every route, rule and VIP master `idx` placed (releasing them), in that order.
    pub(super) async fn unplace_vips(&mut self, idx: usize) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let routes = std::mem::take(&mut inst.placed_routes);
        let rules = std::mem::take(&mut inst.placed_rules);
        let name = inst.cfg.name.clone();
        for p in routes {
            match self.nl.del_route(&p.route, p.oif).await {
                Ok(()) => info!(instance = %name, route = %p.route, "route removed"),
                Err(e) => error!(instance = %name, route = %p.route, error = %e,
                                 "could not remove route {}: {e}", p.route),
            }
        }
        for r in rules {
            match self.nl.del_rule(&r).await {
                Ok(()) => info!(instance = %name, rule = %r, "rule removed"),
                Err(e) => {
                    error!(instance = %name, rule = %r, error = %e, "could not remove rule {r}: {e}")
                }
            }
        }
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

    /// Crash recovery before instance `c` claims anything: its routes, rules and VIPs found
    /// in the kernel were left there by a previous run and are removed (the address owner's
    /// are its own).
    pub(super) async fn remove_leftover_vips(
        &mut self,
        c: &config::Instance,
        own: u32,
        own_name: &str,
    ) {
        if c.is_owner() {
            return;
        }
        // Routes and rules first (only ours: protocol RTPROT_VIPD).
        for r in &c.routes {
            if self.nl.has_route(r).await.unwrap_or(false) {
                warn!(instance = %c.name, route = %r, "removing route {r} left by a previous run");
                if let Err(e) = self.nl.del_route(r, None).await {
                    error!(instance = %c.name, route = %r, error = %e, "could not remove route {r}: {e}");
                }
            }
        }
        for r in &c.rules {
            if self.nl.has_rule(r).await.unwrap_or(false) {
                warn!(instance = %c.name, rule = %r, "removing rule \"{r}\" left by a previous run");
                if let Err(e) = self.nl.del_rule(r).await {
                    error!(instance = %c.name, rule = %r, error = %e, "could not remove rule {r}: {e}");
                }
            }
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
            let present = lists
                .get(&index)
                .is_some_and(|l| l.iter().any(|(a, _)| *a == vip.addr));
            if present {
                let dev = vip.interface.as_deref().unwrap_or(own_name);
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
