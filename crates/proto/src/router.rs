//! Several instances plus sync groups: what one daemon runs.
//!
//! Sync group semantics (modelled on keepalived's `vrrp_sync_group`):
//! * A member whose `Master_Down_Timer` runs out becomes Master only when every
//!   other running member wants to as well (is Master, or its own timer ran out);
//!   otherwise it stays Backup, re-arms its timer and tries again after
//!   `Master_Down_Interval` ([`Action::HeldBySyncGroup`] when the hold begins;
//!   keepalived's `vrrp_sync_can_goto_master`). An advert it accepts ends the hold.
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
//!
//! Timers: the router keeps a min-heap of `(deadline, instance)` so that
//! [`Router::poll_timeout`] is O(1) and [`Router::handle_timeout`] costs
//! O(log N) per due instance instead of a scan of all N instances. Entries
//! are invalidated lazily: an entry is live while its deadline equals the
//! instance's current [`Instance::poll_timeout`]; every change of an
//! instance's timers pushes its new deadline, stale entries are dropped when
//! they reach the top, and the heap is rebuilt when it outgrows
//! `4 × N + 64` entries.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use super::{
    Action, ConfigError, DropReason, FaultCause, Instance, InstanceConfig, Reason, RxAdvert, State,
};

/// The identity of an instance in a [`Router`]: chosen by the caller, unique within the
/// router, and kept across [`Router::rebuild`] (a reload), so instances are matched by
/// identity, never by their position in the configuration. vipd gives each instance name an
/// id when it first appears and keeps it while the instance runs unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u32);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A sync group: instances that move between Master/Backup/Fault together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupConfig {
    /// The group's name (logs, notifications).
    pub name: String,
    /// Its instances.
    pub members: Vec<InstanceId>,
}

/// An instance id the router does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no instance {0}")]
pub struct UnknownInstance(pub InstanceId);

/// All instances of one daemon, with sync groups. Same poll API as
/// [`Instance`], actions tagged with the instance's [`InstanceId`].
///
/// Internally instances sit in a dense list (the timer heap and sync groups use positions);
/// the API speaks ids only.
#[derive(Debug)]
pub struct Router {
    instances: Vec<Instance>,
    /// Id of the instance at each position.
    ids: Vec<InstanceId>,
    /// Position of each id.
    slot: HashMap<InstanceId, usize>,
    /// Member positions of each group.
    group_members: Vec<Vec<usize>>,
    groups: Vec<SyncGroupConfig>,
    /// Group index per instance.
    group_of: Vec<Option<usize>>,
    actions: VecDeque<(InstanceId, Action)>,
    /// `(deadline, instance)` min-heap, equal deadlines in index order.
    /// Invariants (between public calls): every instance `i` with a timer
    /// has a live entry `(poll_timeout(i), i)`, and the top entry, if any,
    /// is live, so it is the earliest timer of all.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Per instance: the deadline last pushed for it (`None`: nothing
    /// pushed since its last entry was popped, or no timer). Only a filter
    /// that saves pushes when a call leaves the timers unchanged.
    armed: Vec<Option<Instant>>,
    /// The largest [`Instance::advert_lead`]: `handle_timeout` looks this far ahead.
    lead: Duration,
    /// Origin of the shared advert grid: the first start (see
    /// [`super::instance::ADVERT_GRID_DIVISOR`]).
    grid: Option<Instant>,
}

impl Router {
    /// Validate every instance and group and build the router (all
    /// instances in `Initialize`). Ids must be unique.
    pub fn new(
        configs: Vec<(InstanceId, InstanceConfig)>,
        groups: Vec<SyncGroupConfig>,
    ) -> Result<Self, ConfigError> {
        let mut slot = HashMap::with_capacity(configs.len());
        for (index, (id, c)) in configs.iter().enumerate() {
            c.validate().map_err(|e| ConfigError::Instance {
                index,
                name: c.name.clone(),
                source: Box::new(e),
            })?;
            if slot.insert(*id, index).is_some() {
                return Err(ConfigError::DuplicateId { id: id.0 });
            }
        }
        let mut group_of: Vec<Option<usize>> = vec![None; configs.len()];
        let mut group_members = Vec::with_capacity(groups.len());
        for (gi, g) in groups.iter().enumerate() {
            if g.members.is_empty() {
                return Err(ConfigError::GroupEmpty {
                    group: g.name.clone(),
                });
            }
            let mut positions = Vec::with_capacity(g.members.len());
            for m in &g.members {
                let pos = *slot
                    .get(m)
                    .ok_or_else(|| ConfigError::GroupMemberOutOfRange {
                        group: g.name.clone(),
                        member: m.0,
                    })?;
                let entry =
                    group_of
                        .get_mut(pos)
                        .ok_or_else(|| ConfigError::GroupMemberOutOfRange {
                            group: g.name.clone(),
                            member: m.0,
                        })?;
                if let Some(other) = *entry {
                    return Err(ConfigError::GroupMemberShared {
                        group: g.name.clone(),
                        member: m.0,
                        other: groups
                            .get(other)
                            .map(|o| o.name.clone())
                            .unwrap_or_default(),
                    });
                }
                *entry = Some(gi);
                positions.push(pos);
            }
            group_members.push(positions);
        }
        let n = configs.len();
        let (ids, configs): (Vec<InstanceId>, Vec<InstanceConfig>) = configs.into_iter().unzip();
        let mut r = Router {
            instances: configs.into_iter().map(Instance::new).collect(),
            ids,
            slot,
            group_members,
            groups,
            group_of,
            actions: VecDeque::new(),
            timers: BinaryHeap::new(),
            armed: vec![None; n],
            lead: Duration::ZERO,
            grid: None,
        };
        r.lead = r
            .instances
            .iter()
            .map(Instance::advert_lead)
            .max()
            .unwrap_or(Duration::ZERO);
        r.rebuild_timers();
        Ok(r)
    }

    /// The position of `id`.
    fn pos(&self, id: InstanceId) -> Result<usize, UnknownInstance> {
        self.slot.get(&id).copied().ok_or(UnknownInstance(id))
    }

    /// The id at position `i`.
    fn id_at(&self, i: usize) -> InstanceId {
        self.ids.get(i).copied().unwrap_or(InstanceId(u32::MAX))
    }

    /// Reload: a router for `configs` and `groups` in which every instance whose id was in
    /// this router as the same virtual router ([`InstanceConfig::same_virtual_router`]) is
    /// carried over as it runs (state, timers, counters), whatever its position, with its
    /// new settings applied in place ([`Instance::reconfigure`]; the actions that causes,
    /// such as a master's advert of a new priority, are queued); every other instance is
    /// new (in `Initialize`: call [`Router::start_one`]). Old instances not carried over
    /// are dropped: shut them down first ([`Router::shutdown_one`]) and drain their actions.
    pub fn rebuild(
        self,
        now: Instant,
        configs: Vec<(InstanceId, InstanceConfig)>,
        groups: Vec<SyncGroupConfig>,
    ) -> Result<Self, ConfigError> {
        let mut fresh = Router::new(configs, groups)?;
        fresh.actions = self.actions;
        let mut old: HashMap<InstanceId, Instance> =
            self.ids.into_iter().zip(self.instances).collect();
        for (id, slot) in fresh.ids.iter().zip(fresh.instances.iter_mut()) {
            if let Some(mut inst) = old.remove(id)
                && inst.reconfigure(now, slot.config().clone())
            {
                *slot = inst;
            }
        }
        fresh.grid = self.grid;
        if let Some(origin) = fresh.grid {
            for inst in &mut fresh.instances {
                inst.set_advert_grid(origin);
            }
        }
        fresh.rebuild_timers();
        for i in 0..fresh.instances.len() {
            fresh.drain_plain(i);
        }
        Ok(fresh)
    }

    /// The advert grid's origin, fixed at the first start.
    fn grid_origin(&mut self, now: Instant) -> Instant {
        *self.grid.get_or_insert(now)
    }

    /// Starts one instance (after [`Router::rebuild`]); a no-op unless it is in `Initialize`.
    pub fn start_one(&mut self, now: Instant, id: InstanceId) -> Result<(), UnknownInstance> {
        let idx = self.pos(id)?;
        let origin = self.grid_origin(now);
        let inst = self.instances.get_mut(idx).ok_or(UnknownInstance(id))?;
        inst.set_advert_grid(origin);
        inst.start(now);
        self.settle(now, idx);
        Ok(())
    }

    /// Instead of [`Router::start_one`] for an instance handed over by another process: see
    /// [`Instance::resume`]. `Ok(false)`: nothing resumed (start it instead).
    pub fn resume_one(
        &mut self,
        now: Instant,
        id: InstanceId,
        ago: Duration,
        snap: &crate::Snapshot,
    ) -> Result<bool, UnknownInstance> {
        let idx = self.pos(id)?;
        let origin = self.grid_origin(now);
        let inst = self.instances.get_mut(idx).ok_or(UnknownInstance(id))?;
        inst.set_advert_grid(origin);
        let resumed = inst.resume(now, ago, snap);
        self.settle(now, idx);
        Ok(resumed)
    }

    /// See [`Instance::snapshot`].
    pub fn snapshot(&self, now: Instant, id: InstanceId) -> Option<crate::Snapshot> {
        self.instance(id).and_then(|i| i.snapshot(now))
    }

    /// Clean stop of one instance (a master hands over with priority 0).
    pub fn shutdown_one(&mut self, now: Instant, id: InstanceId) -> Result<(), UnknownInstance> {
        let idx = self.pos(id)?;
        self.instances
            .get_mut(idx)
            .ok_or(UnknownInstance(id))?
            .shutdown(now);
        self.drain_plain(idx);
        Ok(())
    }

    /// Start every instance (see [`Instance::start`]). All instances start
    /// before sync-group propagation, so an owner member pulls the other
    /// members up to Master.
    pub fn start(&mut self, now: Instant) {
        let origin = self.grid_origin(now);
        for inst in &mut self.instances {
            inst.set_advert_grid(origin);
            inst.start(now);
        }
        for i in 0..self.instances.len() {
            self.settle(now, i);
        }
    }

    /// Feed an advert to instance `id`.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        id: InstanceId,
        adv: &RxAdvert,
    ) -> Result<(), DropReason> {
        let idx = self.pos(id).map_err(|e| DropReason::UnknownInstance(e.0))?;
        let inst = self
            .instances
            .get_mut(idx)
            .ok_or(DropReason::UnknownInstance(id))?;
        let r = inst.handle_advert(now, adv);
        self.settle(now, idx);
        r
    }

    /// Fire every due timer of every instance.
    ///
    /// Instances are visited in index order, as by a scan of `0..N` that
    /// fires instance `i` if its timer is due when the scan reaches it: a
    /// sync-group transition fired by `i` that makes a higher-indexed member
    /// due fires that member in the same call, one that makes a
    /// lower-indexed member due leaves it for the next call.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Every instance due now has a live entry <= now + its advert lead: take them all
        // (each decides below whether it really has something to do).
        let horizon = now.checked_add(self.lead).unwrap_or(now);
        let mut due: BTreeSet<usize> = BTreeSet::new();
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > horizon {
                break;
            }
            self.timers.pop();
            if self.deadline(i) == Some(t) {
                due.insert(i);
                // Its entry is gone: the touch below must push again.
                if let Some(a) = self.armed.get_mut(i) {
                    *a = None;
                }
            }
        }
        while let Some(i) = due.pop_first() {
            if self.instances.get(i).is_some_and(|inst| inst.is_due(now)) {
                self.fire(now, i);
                // Members forced by `i` that are now due and come later in
                // index order fire in this call too, as in the scan. (Forced
                // transitions arm timers after `now`, so this does not
                // happen with valid configs; kept so that the equivalence
                // with the scan does not depend on it.)
                if let Some(g) = self.group_at(i) {
                    for m in self.members(g) {
                        if m > i && self.instances.get(m).is_some_and(|x| x.is_due(now)) {
                            due.insert(m);
                        }
                    }
                }
            }
            self.touch(i);
        }
        self.prune();
    }

    /// Instance `i`'s due timers, with the sync-group rule for a takeover (keepalived's
    /// `vrrp_sync_can_goto_master`): a member whose `Master_Down_Timer` ran out becomes
    /// master only if every other running member wants to be master too (is master, or its
    /// own timer ran out); otherwise it stays Backup, re-arms the timer and tries again
    /// after `Master_Down_Interval`. So one VRID whose adverts are lost cannot drag the
    /// group away from a master the other members still hear.
    fn fire(&mut self, now: Instant, i: usize) {
        if let Some(g) = self.group_at(i)
            && self
                .instances
                .get(i)
                .is_some_and(|inst| inst.takeover_due(now))
        {
            let blocker = self.members(g).into_iter().find(|&m| {
                m != i
                    && self.instances.get(m).is_some_and(|x| {
                        matches!(x.state(), State::Backup | State::Master) && !x.wants_master(now)
                    })
            });
            if let Some(b) = blocker {
                let group = self.group_name(g);
                let waiting_for = self.id_at(b);
                let id = self.id_at(i);
                if let Some(inst) = self.instances.get_mut(i)
                    && inst.hold_backup(now)
                {
                    self.actions
                        .push_back((id, Action::HeldBySyncGroup { group, waiting_for }));
                }
                self.settle(now, i);
                return;
            }
        }
        if let Some(inst) = self.instances.get_mut(i) {
            inst.handle_timeout(now);
        }
        self.settle(now, i);
    }

    /// Earliest timer over all instances.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|&Reverse((t, _))| t)
    }

    /// Next `(instance, action)`.
    pub fn poll_action(&mut self) -> Option<(InstanceId, Action)> {
        self.actions.pop_front()
    }

    /// See [`Instance::set_priority_adjust`].
    pub fn set_priority_adjust(
        &mut self,
        now: Instant,
        id: InstanceId,
        delta: i32,
    ) -> Result<(), UnknownInstance> {
        let idx = self.pos(id)?;
        let inst = self.instances.get_mut(idx).ok_or(UnknownInstance(id))?;
        inst.set_priority_adjust(now, delta);
        self.settle(now, idx);
        Ok(())
    }

    /// Raise or clear instance `id`'s own fault, with sync-group rules.
    pub fn set_fault(
        &mut self,
        now: Instant,
        id: InstanceId,
        cause: Option<FaultCause>,
    ) -> Result<(), UnknownInstance> {
        let idx = self.pos(id)?;
        let Some(g) = *self.group_of.get(idx).ok_or(UnknownInstance(id))? else {
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
                            member: id,
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
                        member: id,
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
                    member: id,
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

    /// Maintenance on instance `id` (its whole sync group, if any).
    pub fn set_maintenance(
        &mut self,
        now: Instant,
        id: InstanceId,
        on: bool,
    ) -> Result<(), UnknownInstance> {
        self.maintenance_mode(now, id, on, true)
    }

    /// Maintenance without the priority-0 handover (a simulated crash, for drills); see
    /// [`Instance::set_maintenance_silently`].
    pub fn set_maintenance_silently(
        &mut self,
        now: Instant,
        id: InstanceId,
        on: bool,
    ) -> Result<(), UnknownInstance> {
        self.maintenance_mode(now, id, on, false)
    }

    fn maintenance_mode(
        &mut self,
        now: Instant,
        id: InstanceId,
        on: bool,
        handover: bool,
    ) -> Result<(), UnknownInstance> {
        let idx = self.pos(id)?;
        let g = *self.group_of.get(idx).ok_or(UnknownInstance(id))?;
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

    /// The instance `id`.
    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.slot.get(&id).and_then(|&i| self.instances.get(i))
    }
    /// Every instance with its id, in configuration order.
    pub fn instances(&self) -> impl ExactSizeIterator<Item = (InstanceId, &Instance)> {
        self.ids.iter().copied().zip(self.instances.iter())
    }
    /// The ids, in configuration order.
    pub fn ids(&self) -> &[InstanceId] {
        &self.ids
    }
    /// How many instances.
    pub fn len(&self) -> usize {
        self.instances.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
    /// The sync groups.
    pub fn groups(&self) -> &[SyncGroupConfig] {
        &self.groups
    }
    /// Sync group index (into [`Router::groups`]) of instance `id`.
    pub fn group_of(&self, id: InstanceId) -> Option<usize> {
        self.slot.get(&id).and_then(|&i| self.group_at(i))
    }

    fn group_at(&self, i: usize) -> Option<usize> {
        self.group_of.get(i).copied().flatten()
    }

    fn members(&self, g: usize) -> Vec<usize> {
        self.group_members.get(g).cloned().unwrap_or_default()
    }

    fn group_name(&self, g: usize) -> String {
        self.groups
            .get(g)
            .map(|g| g.name.clone())
            .unwrap_or_default()
    }

    fn drain_plain(&mut self, i: usize) {
        let id = self.id_at(i);
        if let Some(inst) = self.instances.get_mut(i) {
            while let Some(a) = inst.poll_action() {
                self.actions.push_back((id, a));
            }
        }
        self.touch(i);
    }

    /// Instance `i`'s current deadline.
    fn deadline(&self, i: usize) -> Option<Instant> {
        self.instances.get(i).and_then(Instance::poll_timeout)
    }

    /// Record instance `i`'s (possibly changed) timers in the heap. Called
    /// after anything that may have changed them; drops stale top entries
    /// so that the top stays live.
    fn touch(&mut self, i: usize) {
        let t = self.deadline(i);
        if let Some(a) = self.armed.get_mut(i)
            && *a != t
        {
            *a = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, i)));
                if self.timers.len() > 4 * self.instances.len() + 64 {
                    self.rebuild_timers();
                    return;
                }
            }
        }
        self.prune();
    }

    /// Drop stale entries from the top of the heap.
    fn prune(&mut self) {
        while let Some(&Reverse((t, j))) = self.timers.peek() {
            if self.deadline(j) == Some(t) {
                break;
            }
            self.timers.pop();
        }
    }

    /// The heap from scratch: one live entry per instance with a timer.
    fn rebuild_timers(&mut self) {
        self.armed = self.instances.iter().map(Instance::poll_timeout).collect();
        self.timers = self
            .armed
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| Reverse((t, i))))
            .collect();
    }

    /// Move instance `i`'s actions to the router queue, applying the
    /// sync-group Master/Backup propagation for its own transitions.
    fn settle(&mut self, now: Instant, i: usize) {
        self.touch(i);
        let id = self.id_at(i);
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
            self.actions.push_back((id, a));
        }
        let Some(g) = self.group_at(i) else {
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
                    member: id,
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

#[cfg(test)]
mod tests {
    //! The heap against a brute-force reference: the scan this router used
    //! before (`handle_timeout_linear`, `poll_timeout_linear`), fed the same
    //! events, must produce the same actions and the same `poll_timeout`.

    use super::*;
    use crate::{GarpConfig, Version};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    impl Router {
        /// The former O(N) `handle_timeout` (with `is_due` for the advert lead).
        fn handle_timeout_linear(&mut self, now: Instant) {
            for i in 0..self.instances.len() {
                let Some(inst) = self.instances.get_mut(i) else {
                    continue;
                };
                if inst.is_due(now) {
                    self.fire(now, i);
                }
            }
        }

        /// The former O(N) `poll_timeout`, verbatim.
        fn poll_timeout_linear(&self) -> Option<Instant> {
            self.instances
                .iter()
                .filter_map(Instance::poll_timeout)
                .min()
        }

        /// Heap invariants: bounded, top live, a live entry per timer.
        fn check_timers(&self) {
            let n = self.instances.len();
            assert!(
                self.timers.len() <= 4 * n + 64,
                "heap {} > 4*{n}+64",
                self.timers.len()
            );
            assert_eq!(self.poll_timeout(), self.poll_timeout_linear());
            for (i, inst) in self.instances.iter().enumerate() {
                if let Some(t) = inst.poll_timeout() {
                    assert_eq!(self.armed[i], Some(t), "instance {i} armed");
                    assert!(
                        self.timers.iter().any(|&Reverse(e)| e == (t, i)),
                        "instance {i}: no live entry for {t:?}"
                    );
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Ev {
        /// Advance the clock by this many ms, then `handle_timeout`.
        Advance(u64),
        /// Jump to the earliest deadline (if any), then `handle_timeout`.
        NextDeadline,
        Advert {
            idx: usize,
            prio: u8,
            src: u8,
            cs: u16,
        },
        Adjust {
            idx: usize,
            delta: i32,
        },
        Fault {
            idx: usize,
            on: bool,
        },
        Maintenance {
            idx: usize,
            on: bool,
            silent: bool,
        },
        ShutdownOne(usize),
        StartOne(usize),
        Shutdown,
        Start,
        /// Reload keeping every instance but `drop` (if in range), which
        /// comes back fresh and is started.
        Rebuild {
            drop: usize,
        },
    }

    fn ev() -> impl Strategy<Value = Ev> {
        prop_oneof![
            4 => prop_oneof![Just(0u64), Just(10), Just(500), Just(1000), 0u64..4000]
                .prop_map(Ev::Advance),
            4 => Just(Ev::NextDeadline),
            4 => (0usize..8, prop_oneof![Just(0u8), 1u8..=255], 1u8..4, prop_oneof![Just(100u16), Just(50)])
                .prop_map(|(idx, prio, src, cs)| Ev::Advert { idx, prio, src, cs }),
            1 => (0usize..8, -100i32..100).prop_map(|(idx, delta)| Ev::Adjust { idx, delta }),
            1 => (0usize..8, any::<bool>()).prop_map(|(idx, on)| Ev::Fault { idx, on }),
            1 => (0usize..8, any::<bool>(), any::<bool>())
                .prop_map(|(idx, on, silent)| Ev::Maintenance { idx, on, silent }),
            1 => (0usize..8).prop_map(Ev::ShutdownOne),
            1 => (0usize..8).prop_map(Ev::StartOne),
            1 => Just(Ev::Shutdown),
            1 => Just(Ev::Start),
            1 => (0usize..10).prop_map(|drop| Ev::Rebuild { drop }),
        ]
    }

    #[derive(Debug, Clone)]
    struct Setup {
        /// Per instance: priority, 500 ms interval?, GARP refresh?, group (0..3, 3 = none).
        insts: Vec<(u8, bool, bool, usize)>,
    }

    fn setup() -> impl Strategy<Value = Setup> {
        prop::collection::vec(
            (
                prop_oneof![Just(255u8), 1u8..=254],
                any::<bool>(),
                any::<bool>(),
                0usize..4,
            ),
            1..7,
        )
        .prop_map(|insts| Setup { insts })
    }

    /// The configs with the ids in `ids` (instance `i` has id `ids[i]`).
    fn configs(
        s: &Setup,
        ids: &[InstanceId],
    ) -> (Vec<(InstanceId, InstanceConfig)>, Vec<SyncGroupConfig>) {
        let cfgs: Vec<InstanceConfig> = s
            .insts
            .iter()
            .enumerate()
            .map(|(i, &(prio, fast, refresh, _))| {
                let mut c = InstanceConfig::new(
                    format!("vi{i}"),
                    10 + i as u8,
                    Version::V3,
                    prio,
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)),
                );
                if fast {
                    c.advert_interval = Duration::from_millis(500);
                }
                c.garp = GarpConfig {
                    delay: Duration::from_secs(2),
                    refresh: refresh.then_some(Duration::from_millis(1500)),
                    ..GarpConfig::default()
                };
                c
            })
            .collect();
        let groups = (0..3)
            .map(|g| SyncGroupConfig {
                name: format!("g{g}"),
                members: (0..s.insts.len())
                    .filter(|&i| s.insts[i].3 == g)
                    .map(|i| ids[i])
                    .collect(),
            })
            .filter(|g| !g.members.is_empty())
            .collect();
        (ids.iter().copied().zip(cfgs).collect(), groups)
    }

    fn drain(r: &mut Router) -> Vec<(InstanceId, Action)> {
        std::iter::from_fn(|| r.poll_action()).collect()
    }

    fn first_ids(n: usize) -> Vec<InstanceId> {
        (0..n as u32).map(InstanceId).collect()
    }

    /// Apply one event to both routers (`heap` through the public API,
    /// `lin` with the linear timer functions) and compare.
    fn step(
        s: &Setup,
        ids: &mut [InstanceId],
        now: &mut Instant,
        heap: &mut Option<Router>,
        lin: &mut Option<Router>,
        ev: &Ev,
    ) -> Result<(), TestCaseError> {
        let (Some(h), Some(l)) = (heap.as_mut(), lin.as_mut()) else {
            return Err(TestCaseError::fail("router gone"));
        };
        let n = s.insts.len();
        // Events name instances by position; an out-of-range position is an unknown id.
        let id = |idx: usize| {
            ids.get(idx)
                .copied()
                .unwrap_or(InstanceId(900 + idx as u32))
        };
        match *ev {
            Ev::Advance(ms) => {
                *now += Duration::from_millis(ms);
                h.handle_timeout(*now);
                l.handle_timeout_linear(*now);
            }
            Ev::NextDeadline => {
                if let Some(t) = l.poll_timeout_linear() {
                    *now = (*now).max(t);
                }
                h.handle_timeout(*now);
                l.handle_timeout_linear(*now);
            }
            Ev::Advert { idx, prio, src, cs } => {
                let adv = RxAdvert {
                    src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, src)),
                    version: Version::V3,
                    priority: prio,
                    max_advert_int_cs: cs,
                };
                prop_assert_eq!(
                    h.handle_advert(*now, id(idx), &adv),
                    l.handle_advert(*now, id(idx), &adv)
                );
            }
            Ev::Adjust { idx, delta } => {
                prop_assert_eq!(
                    h.set_priority_adjust(*now, id(idx), delta),
                    l.set_priority_adjust(*now, id(idx), delta)
                );
            }
            Ev::Fault { idx, on } => {
                let c = on.then(|| FaultCause::Other("x".into()));
                prop_assert_eq!(
                    h.set_fault(*now, id(idx), c.clone()),
                    l.set_fault(*now, id(idx), c)
                );
            }
            Ev::Maintenance { idx, on, silent } => {
                if silent {
                    prop_assert_eq!(
                        h.set_maintenance_silently(*now, id(idx), on),
                        l.set_maintenance_silently(*now, id(idx), on)
                    );
                } else {
                    prop_assert_eq!(
                        h.set_maintenance(*now, id(idx), on),
                        l.set_maintenance(*now, id(idx), on)
                    );
                }
            }
            Ev::ShutdownOne(idx) => {
                prop_assert_eq!(h.shutdown_one(*now, id(idx)), l.shutdown_one(*now, id(idx)));
            }
            Ev::StartOne(idx) => {
                prop_assert_eq!(h.start_one(*now, id(idx)), l.start_one(*now, id(idx)));
            }
            Ev::Shutdown => {
                h.shutdown(*now);
                l.shutdown(*now);
            }
            Ev::Start => {
                h.start(*now);
                l.start(*now);
            }
            Ev::Rebuild { drop } => {
                // Instance `drop` is replaced by a new one (a new id); the others are
                // carried over by id.
                if let Some(d) = ids.get_mut(drop) {
                    *d = InstanceId(d.0 + 1000);
                }
                for r in [&mut *heap, &mut *lin] {
                    let (cfgs, groups) = configs(s, ids);
                    let Some(old) = r.take() else {
                        return Err(TestCaseError::fail("router gone"));
                    };
                    let mut new = old
                        .rebuild(*now, cfgs, groups)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    if drop < n {
                        prop_assert!(new.start_one(*now, ids[drop]).is_ok());
                    }
                    *r = Some(new);
                }
            }
        }
        let (Some(h), Some(l)) = (heap.as_mut(), lin.as_mut()) else {
            return Err(TestCaseError::fail("router gone"));
        };
        prop_assert_eq!(drain(h), drain(l), "actions after {:?}", ev);
        prop_assert_eq!(
            h.poll_timeout(),
            l.poll_timeout_linear(),
            "poll_timeout after {:?}",
            ev
        );
        h.check_timers();
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn heap_matches_linear_scan(s in setup(), evs in prop::collection::vec(ev(), 1..120)) {
            let mut ids = first_ids(s.insts.len());
            let (cfgs, groups) = configs(&s, &ids);
            let mut now = Instant::now();
            let mut h = Router::new(cfgs.clone(), groups.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut l = Router::new(cfgs, groups).map_err(|e| TestCaseError::fail(e.to_string()))?;
            h.start(now);
            l.start(now);
            prop_assert_eq!(drain(&mut h), drain(&mut l));
            h.check_timers();
            let (mut h, mut l) = (Some(h), Some(l));
            for e in &evs {
                step(&s, &mut ids, &mut now, &mut h, &mut l, e)?;
            }
        }
    }

    fn plain(n: usize, prio: impl Fn(usize) -> u8) -> Router {
        let cfgs = (0..n)
            .map(|i| {
                InstanceConfig::new(
                    format!("vi{i}"),
                    1 + (i % 255) as u8,
                    Version::V3,
                    prio(i),
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)),
                )
            })
            .collect::<Vec<_>>();
        Router::new(first_ids(n).into_iter().zip(cfgs).collect(), Vec::new()).expect("valid")
    }

    /// 300 backups, each hearing its master at its own phase, for 60 s: the
    /// timers move on every advert (stale entries pile up) yet the heap stays
    /// within 4 × N + 64, and nothing fires.
    #[test]
    fn heap_stays_bounded_under_advert_churn() {
        let n = 300;
        let mut r = plain(n, |_| 100);
        let t0 = Instant::now();
        r.start(t0);
        let _ = drain(&mut r);
        let adv = RxAdvert {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20)),
            version: Version::V3,
            priority: 200,
            max_advert_int_cs: 100,
        };
        let mut max_len = 0;
        for ms in 0..60_000u64 {
            let now = t0 + Duration::from_millis(ms);
            // Instance i hears an advert every second at phase i * 1000 / n ms.
            for i in 0..n {
                if (ms + (i as u64 * 1000 / n as u64)).is_multiple_of(1000) {
                    assert!(r.handle_advert(now, InstanceId(i as u32), &adv).is_ok());
                }
            }
            if r.poll_timeout().is_some_and(|t| t <= now) {
                r.handle_timeout(now);
            }
            max_len = max_len.max(r.timers.len());
            assert!(r.timers.len() <= 4 * n + 64);
        }
        r.check_timers();
        assert!(r.instances().all(|(_, i)| i.state() == State::Backup));
        assert!(max_len >= n, "every backup has a timer: {max_len}");
    }

    /// 1000 masters elected at staggered moments: each wake-up fires only the
    /// due instance(s), identically to the scan, the heap stays bounded, and the
    /// adverts settle on the shared grid.
    #[test]
    fn staggered_masters_match_linear_scan() {
        let n = 1000;
        let mut h = plain(n, |_| 100);
        let mut l = plain(n, |_| 100);
        let t0 = Instant::now();
        // Start instance i at t0 + i ms: its Master_Down_Timer, and so its
        // advert phase once master, is its own.
        for i in 0..n {
            let t = t0 + Duration::from_millis(i as u64);
            assert!(h.start_one(t, InstanceId(i as u32)).is_ok());
            assert!(l.start_one(t, InstanceId(i as u32)).is_ok());
        }
        assert_eq!(drain(&mut h), drain(&mut l));
        // Wake at every deadline for 20 s; count the wake-ups of the last 10 s, when every
        // instance is master and past its GARP delay: adverts only.
        let mut wakeups = 0;
        let steady = t0 + Duration::from_secs(10);
        while let Some(t) = h.poll_timeout() {
            if t > t0 + Duration::from_secs(20) {
                break;
            }
            assert_eq!(Some(t), l.poll_timeout_linear());
            h.handle_timeout(t);
            l.handle_timeout_linear(t);
            assert_eq!(drain(&mut h), drain(&mut l));
            assert!(h.timers.len() <= 4 * n + 64);
            if t >= steady {
                wakeups += 1;
            }
        }
        h.check_timers();
        assert!(h.instances().all(|(_, i)| i.state() == State::Master));
        // Elected at 1000 different moments (100 phases 1 ms apart modulo the interval):
        // on the advert grid (16 points per 100 ms) they share at most 160 wake-ups a
        // second. (Without the grid and the lead: 1000 a second; lead only: about 500.)
        assert!(wakeups > 0 && wakeups <= 16 * 10 * 10, "wakeups {wakeups}");
    }
}
