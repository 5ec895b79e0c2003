//! Several instances plus sync groups: what one daemon runs.
//!
//! Sync group semantics (modelled on keepalived's `vrrp_sync_group`):
//! * When a member becomes Master for its own reason (timer, owner start,
//!   fault cleared as owner...), every other member in Backup is forced to
//!   Master with [`Reason::SyncGroup`].
//! * When a member falls from Master to Backup for its own reason (higher
//!   advert), every other Master member is forced to Backup with
//!   `Master_Down_Timer := Master_Down_Interval`.
//! * A member's own fault takes every running member to Fault (the member
//!   itself with [`Reason::FaultRaised`], the others with `SyncGroup`).
//!   The group leaves Fault only when no member has its own fault; then all
//!   faulted members come up as on startup (the one whose fault cleared last
//!   with [`Reason::FaultCleared`], the others with `SyncGroup`).
//! * Maintenance set through the router applies to the whole group.
//! * Forced transitions never propagate further (no cascades).
//!
//! As with keepalived, members' priorities should order the nodes the same
//! way in every member VRID, otherwise the group can flap.

use std::collections::VecDeque;
use std::time::Instant;

use super::{
    Action, ConfigError, DropReason, FaultCause, Instance, InstanceConfig, Reason, RxAdvert, State,
};

/// A sync group: instances (indexes into the router's list) that move
/// between Master/Backup/Fault together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupConfig {
    pub name: String,
    pub members: Vec<usize>,
}

/// An instance index that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no instance {0}")]
pub struct UnknownInstance(pub usize);

/// All instances of one daemon, with sync groups. Same poll API as
/// [`Instance`], actions tagged with the instance index.
#[derive(Debug)]
pub struct Router {
    instances: Vec<Instance>,
    groups: Vec<SyncGroupConfig>,
    /// Group index per instance.
    group_of: Vec<Option<usize>>,
    actions: VecDeque<(usize, Action)>,
}

impl Router {
    /// Validate every instance and group and build the router (all
    /// instances in `Initialize`).
    pub fn new(
        configs: Vec<InstanceConfig>,
        groups: Vec<SyncGroupConfig>,
    ) -> Result<Self, ConfigError> {
        for (index, c) in configs.iter().enumerate() {
            c.validate().map_err(|e| ConfigError::Instance {
                index,
                name: c.name.clone(),
                source: Box::new(e),
            })?;
        }
        let mut group_of: Vec<Option<usize>> = vec![None; configs.len()];
        for (gi, g) in groups.iter().enumerate() {
            if g.members.is_empty() {
                return Err(ConfigError::GroupEmpty {
                    group: g.name.clone(),
                });
            }
            for &m in &g.members {
                let slot =
                    group_of
                        .get_mut(m)
                        .ok_or_else(|| ConfigError::GroupMemberOutOfRange {
                            group: g.name.clone(),
                            member: m,
                        })?;
                if let Some(other) = *slot {
                    return Err(ConfigError::GroupMemberShared {
                        group: g.name.clone(),
                        member: m,
                        other: groups
                            .get(other)
                            .map(|o| o.name.clone())
                            .unwrap_or_default(),
                    });
                }
                *slot = Some(gi);
            }
        }
        Ok(Router {
            instances: configs.into_iter().map(Instance::new).collect(),
            groups,
            group_of,
            actions: VecDeque::new(),
        })
    }

    /// Reload: a router for `configs` and `groups` in which instance `i` is the old
    /// instance `keep[i]` carried over as it runs (state, timers, counters), and every other
    /// instance is new (in `Initialize`: call [`Router::start_one`]). Old instances not
    /// carried over are dropped: shut them down first ([`Router::shutdown_one`]) and drain
    /// their actions. A kept instance must have the same configuration as before.
    pub fn rebuild(
        self,
        configs: Vec<InstanceConfig>,
        keep: &[Option<usize>],
        groups: Vec<SyncGroupConfig>,
    ) -> Result<Self, ConfigError> {
        let mut fresh = Router::new(configs, groups)?;
        let mut old: Vec<Option<Instance>> = self.instances.into_iter().map(Some).collect();
        for (i, k) in keep.iter().enumerate() {
            let Some(k) = k else { continue };
            let carried = old.get_mut(*k).and_then(Option::take);
            if let (Some(slot), Some(inst)) = (fresh.instances.get_mut(i), carried) {
                if inst.config() == slot.config() {
                    *slot = inst;
                }
            }
        }
        Ok(fresh)
    }

    /// Starts one instance (after [`Router::rebuild`]); a no-op unless it is in `Initialize`.
    pub fn start_one(&mut self, now: Instant, idx: usize) -> Result<(), UnknownInstance> {
        self.instances
            .get_mut(idx)
            .ok_or(UnknownInstance(idx))?
            .start(now);
        self.settle(now, idx);
        Ok(())
    }

    /// Clean stop of one instance (a master hands over with priority 0).
    pub fn shutdown_one(&mut self, now: Instant, idx: usize) -> Result<(), UnknownInstance> {
        self.instances
            .get_mut(idx)
            .ok_or(UnknownInstance(idx))?
            .shutdown(now);
        self.drain_plain(idx);
        Ok(())
    }

    /// Start every instance (see [`Instance::start`]). All instances start
    /// before sync-group propagation, so an owner member pulls the other
    /// members up to Master.
    pub fn start(&mut self, now: Instant) {
        for inst in &mut self.instances {
            inst.start(now);
        }
        for i in 0..self.instances.len() {
            self.settle(now, i);
        }
    }

    /// Feed an advert to instance `idx`.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        idx: usize,
        adv: &RxAdvert,
    ) -> Result<(), DropReason> {
        let inst = self
            .instances
            .get_mut(idx)
            .ok_or(DropReason::UnknownInstance(idx))?;
        let r = inst.handle_advert(now, adv);
        self.settle(now, idx);
        r
    }

    /// Fire every due timer of every instance.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.instances.len() {
            let Some(inst) = self.instances.get_mut(i) else {
                continue;
            };
            if inst.poll_timeout().is_some_and(|t| t <= now) {
                inst.handle_timeout(now);
                self.settle(now, i);
            }
        }
    }

    /// Earliest timer over all instances.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.instances
            .iter()
            .filter_map(Instance::poll_timeout)
            .min()
    }

    /// Next `(instance index, action)`.
    pub fn poll_action(&mut self) -> Option<(usize, Action)> {
        self.actions.pop_front()
    }

    /// See [`Instance::set_priority_adjust`].
    pub fn set_priority_adjust(
        &mut self,
        now: Instant,
        idx: usize,
        delta: i32,
    ) -> Result<(), UnknownInstance> {
        let inst = self.instances.get_mut(idx).ok_or(UnknownInstance(idx))?;
        inst.set_priority_adjust(now, delta);
        self.settle(now, idx);
        Ok(())
    }

    /// Raise or clear instance `idx`'s own fault, with sync-group rules.
    pub fn set_fault(
        &mut self,
        now: Instant,
        idx: usize,
        cause: Option<FaultCause>,
    ) -> Result<(), UnknownInstance> {
        let Some(g) = *self.group_of.get(idx).ok_or(UnknownInstance(idx))? else {
            if let Some(inst) = self.instances.get_mut(idx) {
                inst.set_fault(now, cause);
            }
            self.settle(now, idx);
            return Ok(());
        };
        if let Some(inst) = self.instances.get_mut(idx) {
            inst.set_fault_flag(cause.clone());
        }
        let members = self.members(g);
        let group_name = self.group_name(g);
        let faulted = members
            .iter()
            .any(|&m| self.instances.get(m).is_some_and(Instance::own_fault));
        for &m in &members {
            let Some(inst) = self.instances.get_mut(m) else {
                continue;
            };
            inst.set_group_fault(faulted);
            if faulted {
                if matches!(inst.state(), State::Backup | State::Master) {
                    let reason = match (&cause, m == idx) {
                        (Some(c), true) => Reason::FaultRaised(c.clone()),
                        _ => Reason::SyncGroup {
                            group: group_name.clone(),
                            member: idx,
                        },
                    };
                    inst.enter_fault(now, reason);
                }
            } else if inst.state() == State::Fault {
                let reason = if m == idx {
                    Reason::FaultCleared
                } else {
                    Reason::SyncGroup {
                        group: group_name.clone(),
                        member: idx,
                    }
                };
                inst.leave_fault(now, reason);
            }
        }
        // Collect actions (a member clearing its own fault as owner pulls
        // the others up through the usual propagation).
        self.settle(now, idx);
        for &m in &members {
            if m != idx {
                self.settle(now, m);
            }
        }
        // An owner member that came up with a SyncGroup reason is Master:
        // bring the rest of the group along.
        let any_master = members.iter().any(|&m| {
            self.instances
                .get(m)
                .is_some_and(|i| i.state() == State::Master)
        });
        if any_master {
            for &m in &members {
                let reason = Reason::SyncGroup {
                    group: group_name.clone(),
                    member: idx,
                };
                if let Some(inst) = self.instances.get_mut(m)
                    && inst.force_master(now, reason)
                {
                    self.drain_plain(m);
                }
            }
        }
        Ok(())
    }

    /// Maintenance on instance `idx` (its whole sync group, if any).
    pub fn set_maintenance(
        &mut self,
        now: Instant,
        idx: usize,
        on: bool,
    ) -> Result<(), UnknownInstance> {
        self.maintenance_mode(now, idx, on, true)
    }

    /// Maintenance without the priority-0 handover (a simulated crash, for drills); see
    /// [`Instance::set_maintenance_silently`].
    pub fn set_maintenance_silently(
        &mut self,
        now: Instant,
        idx: usize,
        on: bool,
    ) -> Result<(), UnknownInstance> {
        self.maintenance_mode(now, idx, on, false)
    }

    fn maintenance_mode(
        &mut self,
        now: Instant,
        idx: usize,
        on: bool,
        handover: bool,
    ) -> Result<(), UnknownInstance> {
        let g = *self.group_of.get(idx).ok_or(UnknownInstance(idx))?;
        let members = match g {
            Some(g) => self.members(g),
            None => vec![idx],
        };
        for &m in &members {
            if let Some(inst) = self.instances.get_mut(m) {
                if handover {
                    inst.set_maintenance(now, on);
                } else {
                    inst.set_maintenance_silently(now, on);
                }
            }
        }
        for &m in &members {
            self.settle(now, m);
        }
        Ok(())
    }

    /// Clean stop of every instance (see [`Instance::shutdown`]).
    pub fn shutdown(&mut self, now: Instant) {
        for i in 0..self.instances.len() {
            if let Some(inst) = self.instances.get_mut(i) {
                inst.shutdown(now);
            }
            self.drain_plain(i);
        }
    }

    pub fn instance(&self, idx: usize) -> Option<&Instance> {
        self.instances.get(idx)
    }
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }
    pub fn groups(&self) -> &[SyncGroupConfig] {
        &self.groups
    }
    /// Sync group index of instance `idx`.
    pub fn group_of(&self, idx: usize) -> Option<usize> {
        self.group_of.get(idx).copied().flatten()
    }

    fn members(&self, g: usize) -> Vec<usize> {
        self.groups
            .get(g)
            .map(|g| g.members.clone())
            .unwrap_or_default()
    }

    fn group_name(&self, g: usize) -> String {
        self.groups
            .get(g)
            .map(|g| g.name.clone())
            .unwrap_or_default()
    }

    fn drain_plain(&mut self, i: usize) {
        if let Some(inst) = self.instances.get_mut(i) {
            while let Some(a) = inst.poll_action() {
                self.actions.push_back((i, a));
            }
        }
    }

    /// Move instance `i`'s actions to the router queue, applying the
    /// sync-group Master/Backup propagation for its own transitions.
    fn settle(&mut self, now: Instant, i: usize) {
        let mut forced: Vec<usize> = Vec::new();
        let Some(inst) = self.instances.get_mut(i) else {
            return;
        };
        let mut own = Vec::new();
        while let Some(a) = inst.poll_action() {
            if let Action::Notify(t) = &a
                && !matches!(t.reason, Reason::SyncGroup { .. })
            {
                own.push((t.from, t.to));
            }
            self.actions.push_back((i, a));
        }
        let Some(g) = self.group_of(i) else {
            return;
        };
        let members = self.members(g);
        let name = self.group_name(g);
        for (from, to) in own {
            for &m in &members {
                if m == i {
                    continue;
                }
                let Some(other) = self.instances.get_mut(m) else {
                    continue;
                };
                let reason = Reason::SyncGroup {
                    group: name.clone(),
                    member: i,
                };
                let changed = match (from, to) {
                    (_, State::Master) => other.force_master(now, reason),
                    (State::Master, State::Backup) => other.force_backup(now, reason),
                    _ => false,
                };
                if changed {
                    forced.push(m);
                }
            }
        }
        for m in forced {
            self.drain_plain(m);
        }
    }
}
