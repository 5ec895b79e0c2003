//! Reload: a new configuration applied to the running daemon, each instance in place when
//! it can be, and the plan of that (`vipctl reload --dry-run`) from the same rule.
//!
//! An instance of the new configuration is matched to the running one of the same name and
//! then
//! * kept as it runs, with every changed setting applied in place (priority, preempt,
//!   preempt_delay, accept, advert interval, VIPs, source address, authentication, checksum,
//!   GARP, trackers and weights, notify programs): its state, counters, history and VIPs
//!   stay;
//! * or, when a key in [`REOPEN_KEYS`] changed (or the VIPs' address family, or the
//!   membership of its sync group), stopped with a clean handover and started afresh as
//!   backup: another interface, VRID, version or peer set is another virtual router on the
//!   wire;
//! * instances without a running namesake are added (as backup), running ones without a
//!   namesake in the new configuration are stopped (a master hands over).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use tracing::{error, info};

use super::{Daemon, Inst, all_vips, destinations, instance_config, tracking};
use crate::net::netlink::Netlink;
use vipd_config::keys::{Key, instance as k};
use vipd_config::{self as config, Config};
use vipd_proto::{self as proto, InstanceConfig, InstanceId, Router};

/// Keys a running instance cannot take in place: they make it another virtual router on
/// the wire. (A new `source_address` is taken in place, on a socket for that address.)
pub(super) const REOPEN_KEYS: [Key; 7] = [
    k::interface,
    k::vrid,
    k::version,
    k::unicast_peers,
    // Another VMAC device (or none) is another MAC on the wire, and another socket.
    k::vmac,
    k::vmac_xmit_base,
    // AH adverts travel in another IP protocol (another socket).
    k::auth_ah,
];

/// What a reload does to one instance of the new configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fate {
    /// Runs on, with `changed` applied in place (empty: unchanged).
    Keep { id: InstanceId, changed: Vec<Key> },
    /// Stopped (a master hands over) and started afresh as backup, because of `why`.
    Restart { why: String },
    /// No running instance of that name: starts as backup.
    Add,
}

/// The members of `name`'s sync group in `cfg`.
fn group_members<'a>(cfg: &'a Config, name: &str) -> Option<&'a [String]> {
    cfg.sync_group_of(name).map(|g| g.instances.as_slice())
}

impl<N: Netlink> Daemon<N> {
    /// Applies a new configuration (see the module docs). Nothing changes if the new
    /// configuration cannot be applied.
    pub async fn reload(&mut self, cfg: Config) -> Result<String, String> {
        self.reload_reopening(cfg, &[]).await
    }

    /// Per instance of `cfg`, what a reload does to it: the one rule both a reload and its
    /// plan follow. `reopen` forces a restart (their interface was re-created).
    pub(super) fn fates(&self, cfg: &Config, reopen: &[String]) -> Vec<Fate> {
        cfg.instances
            .iter()
            .map(|c| {
                let Some(old) = self.insts.iter().find(|o| o.cfg.name == c.name) else {
                    return Fate::Add;
                };
                if reopen.contains(&c.name) {
                    return Fate::Restart {
                        why: "its interface was re-created".into(),
                    };
                }
                let changed = old.cfg.changed_keys(c);
                let mut why: Vec<String> = changed
                    .iter()
                    .filter(|key| REOPEN_KEYS.contains(key))
                    .map(|key| format!("{key} changed"))
                    .collect();
                if old.cfg.family != c.family {
                    why.push("the address family changed".into());
                }
                if group_members(&self.running.config, &c.name) != group_members(cfg, &c.name) {
                    why.push("its sync group's members changed".into());
                }
                if why.is_empty() {
                    Fate::Keep {
                        id: old.id,
                        changed,
                    }
                } else {
                    Fate::Restart {
                        why: why.join(", "),
                    }
                }
            })
            .collect()
    }

    /// What [`Daemon::reload`] with `cfg` would do to each instance, changing nothing.
    pub fn reload_plan(&self, cfg: &Config) -> Vec<crate::ctl::PlanEntry> {
        use crate::ctl::PlanEntry;
        let running = |name: &str| self.insts.iter().find(|i| i.cfg.name == name);
        let mut plan: Vec<PlanEntry> = cfg
            .instances
            .iter()
            .zip(self.fates(cfg, &[]))
            .map(|(c, fate)| {
                let holding = running(&c.name).is_some_and(|i| i.holding);
                let (action, moves, detail) = match fate {
                    Fate::Keep { changed, .. } if changed.is_empty() => {
                        ("unchanged", false, "unchanged".to_string())
                    }
                    Fate::Keep { id, changed } => {
                        ("update", false, self.in_place_detail(id, c, &changed))
                    }
                    Fate::Restart { why } if holding => (
                        "restart",
                        true,
                        format!(
                            "restart: the VIP will move ({why}; master here: it hands over, restarts as backup, and the election decides)"
                        ),
                    ),
                    Fate::Restart { why } => (
                        "restart",
                        false,
                        format!("restart ({why}; backup here: no VIP moves from this node)"),
                    ),
                    Fate::Add => ("add", false, "added: starts as backup".to_string()),
                };
                PlanEntry {
                    instance: c.name.clone(),
                    action: action.into(),
                    vip_moves: moves,
                    detail,
                }
            })
            .collect();
        for i in &self.insts {
            if cfg.instance(&i.cfg.name).is_none() {
                plan.push(PlanEntry {
                    instance: i.cfg.name.clone(),
                    action: "remove".into(),
                    vip_moves: i.holding,
                    detail: if i.holding {
                        "removed: the VIP will move (master here: it hands over and stops)".into()
                    } else {
                        "removed (backup here: no VIP moves from this node)".into()
                    },
                });
            }
        }
        plan
    }

    /// "updated in place: priority, preempt_delay", with what a priority change will make
    /// the election do when that can be told from here.
    fn in_place_detail(&self, id: InstanceId, c: &config::Instance, changed: &[Key]) -> String {
        let keys: Vec<&str> = changed.iter().map(|key| key.as_str()).collect();
        let mut detail = format!("updated in place: {}", keys.join(", "));
        let Some(run) = self.router.instance(id) else {
            return detail;
        };
        if !changed.contains(&k::priority) {
            return detail;
        }
        let new = proto::effective_priority(c.priority, run.priority_adjust());
        match (run.state(), run.master()) {
            (proto::State::Backup, Some((addr, theirs)))
                if new > theirs && (c.preempt || c.is_owner()) =>
            {
                detail.push_str(&format!(
                    " (priority {new} > the master {addr}'s {theirs}: this node will take the VIP over)"
                ));
            }
            (proto::State::Master, _) if new < run.effective_priority() => {
                detail.push_str(&format!(
                    " (advertised at once: a preempting backup above {new} takes the VIP over)"
                ));
            }
            _ => {}
        }
        detail
    }

    /// [`Daemon::reload`] that also re-opens the instances named in `reopen` (their
    /// interface appeared or was re-created), as if their configuration had changed.
    ///
    /// Instances are matched by name, never by position: a kept instance keeps its
    /// [`InstanceId`] (and so its running state machine), a new or restarted one gets a
    /// fresh id and starts as backup.
    pub(super) async fn reload_reopening(
        &mut self,
        cfg: Config,
        reopen: &[String],
    ) -> Result<String, String> {
        let fates = self.fates(&cfg, reopen);
        let removed = self
            .insts
            .iter()
            .filter(|i| cfg.instance(&i.cfg.name).is_none())
            .count();
        // 1. Prepare what is new first: if that fails, nothing has changed yet.
        let all_vips = all_vips(&cfg);
        let mut fresh: Vec<Option<Inst>> = Vec::with_capacity(cfg.instances.len());
        for (c, fate) in cfg.instances.iter().zip(&fates) {
            if matches!(fate, Fate::Keep { .. }) {
                fresh.push(None);
            } else {
                let mut inst = self
                    .prepare(c, &all_vips, false)
                    .await
                    .map_err(|e| e.to_string())?;
                inst.id = self.fresh_id();
                fresh.push(Some(inst));
            }
        }
        // Kept instances whose source address changed: the new address and its socket.
        let mut moved: HashMap<InstanceId, (IpAddr, usize)> = HashMap::new();
        for (c, fate) in cfg.instances.iter().zip(&fates) {
            let Fate::Keep { id, changed } = fate else {
                continue;
            };
            let Some(old) = self.pos_of(*id).and_then(|p| self.insts.get(p)) else {
                continue;
            };
            if !changed.contains(&k::source_address) || old.interface_missing() {
                continue;
            }
            let ifindex = old.ifindex;
            let src = self
                .source_for(c, ifindex, &all_vips)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "instance {}: {} has no address to send adverts from",
                        c.name, c.interface
                    )
                })?;
            let vmac = old.vmac.clone();
            let (sock, _) = self
                .open_sockets(c, ifindex, vmac.as_ref(), src)
                .map_err(|e| e.to_string())?;
            moved.insert(*id, (src, sock));
        }
        // The new set in configuration order: kept instances by id (with the source address
        // they will send from), fresh ones as prepared.
        let mut protos: Vec<(InstanceId, InstanceConfig)> = Vec::with_capacity(fates.len());
        let mut names: Vec<(String, InstanceId)> = Vec::with_capacity(fates.len());
        for ((c, f), fate) in cfg.instances.iter().zip(&fresh).zip(&fates) {
            let (id, src) = match (f, fate) {
                (Some(f), _) => (f.id, f.src),
                (None, Fate::Keep { id, .. }) => {
                    let old = self
                        .pos_of(*id)
                        .and_then(|p| self.insts.get(p))
                        .ok_or("internal error: kept instance missing")?;
                    (old.id, moved.get(id).map_or(old.src, |(src, _)| *src))
                }
                (None, _) => return Err("internal error: instance neither kept nor new".into()),
            };
            protos.push((id, instance_config(c, src)));
            names.push((c.name.clone(), id));
        }
        let groups = super::sync_groups_by_name(&cfg, &names);
        // Validate the new router before touching the running one.
        Router::new(protos.clone(), groups.clone()).map_err(|e| e.to_string())?;
        // 2. Hand over and stop what goes away or restarts.
        let now = Instant::now();
        let kept: Vec<InstanceId> = fates
            .iter()
            .filter_map(|f| match f {
                Fate::Keep { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let going: Vec<InstanceId> = self
            .insts
            .iter()
            .filter(|i| !kept.contains(&i.id))
            .map(|i| i.id)
            .collect();
        for id in &going {
            let _ = self.router.shutdown_one(now, *id);
        }
        self.drain().await;
        // 3. Swap in the new set: kept instances take their new settings in place.
        let old_router = std::mem::replace(
            &mut self.router,
            Router::new(Vec::new(), Vec::new()).map_err(|e| e.to_string())?,
        );
        let now = Instant::now();
        self.router = old_router
            .rebuild(now, protos, groups)
            .map_err(|e| e.to_string())?;
        let mut old_insts: HashMap<InstanceId, Inst> = std::mem::take(&mut self.insts)
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let mut vip_changes: Vec<(usize, Vec<config::Vip>)> = Vec::new();
        let (mut unchanged, mut updated, mut restarted, mut added) = (0, 0, 0, 0);
        for ((f, fate), c) in fresh.into_iter().zip(&fates).zip(&cfg.instances) {
            let inst = match (f, fate) {
                (Some(f), Fate::Restart { why }) => {
                    restarted += 1;
                    info!(instance = %c.name, reason = %why, "reload: instance restarted");
                    f
                }
                (Some(f), _) => {
                    added += 1;
                    info!(instance = %c.name, "reload: instance added");
                    f
                }
                (None, Fate::Keep { id, changed }) => {
                    let mut old = old_insts
                        .remove(id)
                        .ok_or("internal error: kept instance missing")?;
                    if changed.is_empty() {
                        unchanged += 1;
                    } else {
                        updated += 1;
                        let keys: Vec<&str> = changed.iter().map(|key| key.as_str()).collect();
                        info!(instance = %c.name, changed = %keys.join(", "),
                              "reload: instance updated in place");
                        if old.cfg.vips != c.vips
                            || old.cfg.routes != c.routes
                            || old.cfg.rules != c.rules
                        {
                            vip_changes.push((self.insts.len(), old.cfg.vips.clone()));
                        }
                        if let Some((src, sock)) = moved.get(id) {
                            info!(instance = %c.name, from = %old.src, to = %src,
                                  "reload: adverts now sent from another address");
                            old.src = *src;
                            old.sock = *sock;
                        }
                        if old.cfg.multicast_group != c.multicast_group
                            && let Some(s) = self.io.socks.get(old.sock)
                        {
                            super::join_group(&s.sock, c);
                        }
                        old.update_in_place(c);
                    }
                    old
                }
                (None, _) => return Err("internal error: instance neither kept nor new".into()),
            };
            self.insts.push(inst);
        }
        self.rebuild_demux();
        self.spawn_readers(self.io.readers);
        self.prune_vmacs(false).await;
        // A master's VIPs, routes or rules changed: only the difference is added or removed.
        for (idx, before) in vip_changes {
            self.apply_vip_change(idx, &before).await;
        }
        let now = Instant::now();
        for idx in 0..self.insts.len() {
            let id = self.id_of(idx);
            if !kept.contains(&id) {
                // A restarted instance the operator drained stays drained.
                if self
                    .insts
                    .get(idx)
                    .is_some_and(|i| self.ctl.in_maintenance(&i.cfg.name))
                {
                    let _ = self.router.set_maintenance(now, id, true);
                }
                let _ = self.router.start_one(now, id);
            }
        }
        if !tracking_same(&self.running.config, &cfg) {
            // Tracker indexes follow the configuration: new trackers for the new one, each
            // carrying what its predecessor of the same name observed (so a tracker that
            // stays keeps its weight in the priority). The events socket carries over (same
            // path: its clients stay connected).
            let mut outputs = self.track.notifier.take_outputs();
            let carried = self.track.states();
            match tracking::Tracking::setup(&cfg, &self.nl, &mut outputs, &carried).await {
                Ok(t) => {
                    self.track = t;
                    info!("tracking configuration changed: trackers restarted with their state");
                }
                Err(e) => {
                    self.track.notifier.put_outputs(outputs);
                    error!(error = %e, "could not restart the trackers; keeping the old ones")
                }
            }
        }
        for idx in 0..self.insts.len() {
            self.apply_tracking(now, idx);
        }
        if cfg.global.receive_buffer != self.io.receive_buffer {
            self.set_receive_buffers(cfg.global.receive_buffer);
        }
        self.running.config = cfg;
        let msg = format!(
            "configuration reloaded: {unchanged} unchanged, {updated} updated in place, {restarted} restarted, {added} added, {removed} removed"
        );
        if reopen.is_empty() {
            info!(
                unchanged,
                updated, restarted, added, removed, "configuration reloaded"
            );
        }
        Ok(msg)
    }

    /// Instance `idx`'s VIPs changed from `before` to its configuration's: if it holds them,
    /// the removed ones are deleted, the new ones added and announced (gratuitous ARP/NA);
    /// those that stay are not touched (a VIP whose prefix, label, scope or device changed is
    /// replaced).
    async fn apply_vip_change(&mut self, idx: usize, before: &[config::Vip]) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        if !inst.holding {
            return;
        }
        // Changed in place (same address, other label or scope): placed again.
        let now = inst.cfg.vips.clone();
        let changed: Vec<IpAddr> = before
            .iter()
            .filter(|b| now.iter().any(|n| n.addr == b.addr && n != *b))
            .map(|b| b.addr)
            .collect();
        let name = inst.cfg.name.clone();
        let (replace, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut inst.placed)
            .into_iter()
            .partition(|p| changed.contains(&p.addr));
        inst.placed = keep;
        for p in replace {
            if let Err(e) = self.nl.del_addr(p.ifindex, p.addr, p.prefix_len).await {
                error!(instance = %name, vip = %p.addr, error = %e, "reload: could not remove VIP");
            }
        }
        self.sync_and_announce_vips(idx, "reload: ").await;
    }
}

impl Inst {
    /// Takes a changed configuration of the same virtual router (the state machine takes
    /// its part through [`Router::rebuild`]).
    fn update_in_place(&mut self, c: &config::Instance) {
        if (self.cfg.unicast_peers != c.unicast_peers
            || self.cfg.multicast_group != c.multicast_group)
            && !self.interface_missing()
        {
            self.dsts = destinations(c);
        }
        self.vip_addrs = c.advertised_vips().map(|v| v.addr).collect();
        self.auth = c.auth_pass.as_ref().map(|p| p.wire_bytes());
        self.checksum = c.checksum;
        self.cfg = c.clone();
    }
}

/// Whether two configurations track and notify the same way for the same instances in the
/// same order (then a reload keeps the running trackers as they are).
fn tracking_same(a: &Config, b: &Config) -> bool {
    a.global.script_user == b.global.script_user
        && a.global.enable_script_security == b.global.enable_script_security
        && a.global.events_socket == b.global.events_socket
        && a.global.notify_fifo == b.global.notify_fifo
        && a.global.notify_fifo_script == b.global.notify_fifo_script
        && a.track_scripts == b.track_scripts
        && a.track_http == b.track_http
        && a.track_tcp == b.track_tcp
        && a.track_files == b.track_files
        && a.track_processes == b.track_processes
        && a.sync_groups == b.sync_groups
        && a.instances.len() == b.instances.len()
        && a.instances
            .iter()
            .zip(&b.instances)
            .all(|(x, y)| x.name == y.name && x.track == y.track && x.notify == y.notify)
}
