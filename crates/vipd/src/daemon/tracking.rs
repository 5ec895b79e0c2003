//! The daemon's side of health tracking and notifications: trackers → priority delta and
//! fault per instance; transitions → notify programs (instances and sync groups) and events.
//!
//! Fault causes are combined per instance: the instance is in FAULT while its own link is down
//! or any weight-0 tracker is down; the cause reported is the link first, then the first
//! failing tracker in configuration order. The router is only told when that combined cause
//! changes.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{Daemon, proto};
use crate::net::netlink::{LinkInfo, Netlink};
use crate::notify::{self, Job, Notifier, Target};
use crate::track::{self, Change, Observation, TrackerSet, TrackerState, TrackerUpdate};
use vipd_config::{Config, Notify, TrackKind};
use vipd_proto::{FaultCause, State, Transition};

/// Longest wait at exit for queued notify programs (STOP).
const FINISH_BOUND: Duration = Duration::from_secs(10);

/// Tracking and notification state of the daemon.
pub(super) struct Tracking {
    set: TrackerSet,
    pub(super) rx: mpsc::Receiver<TrackerUpdate>,
    /// Kept so that `rx` never reports "closed" when there are no runners.
    _tx: mpsc::Sender<TrackerUpdate>,
    /// Tracked interface ifindex → tracker index.
    if_index: HashMap<u32, usize>,
    pub(super) notifier: Notifier,
    /// Sync groups: name, member instance names, notify programs.
    groups: Vec<(String, Vec<String>, Arc<Notify>)>,
    /// Last notified state per group.
    group_state: Vec<Option<State>>,
    /// "tracker changed" lines, at most one per tracker per second (a file rewritten in a
    /// loop must not flood the log; every change still applies, and is an event).
    change_log: HashMap<usize, crate::ratelimit::LogEvery>,
}

impl Tracking {
    /// Starts the tracker runners and the notifier. (Per-instance tracking state lives in
    /// the instance's own record, [`super::Inst`].)
    /// `outputs`: the events socket and FIFO of the tracking being replaced (see
    /// [`Notifier::start`]);
    /// `carried`: what the trackers being replaced had observed ([`TrackerSet::restore`]).
    pub(super) async fn setup<N: Netlink>(
        cfg: &Config,
        nl: &N,
        outputs: &mut crate::notify::Outputs,
        carried: &[TrackerState],
    ) -> io::Result<Tracking> {
        let mut set = TrackerSet::from_config(cfg);
        set.restore(carried);
        let (tx, rx) = mpsc::channel(track::UPDATE_QUEUE);
        // Interfaces: initial state now; changes come from the daemon's netlink events.
        let mut if_index = HashMap::new();
        for (idx, name) in set.interfaces() {
            let up = match nl.link_by_name(name).await? {
                Some(l) => {
                    if_index.insert(l.index, idx);
                    l.up
                }
                None => {
                    warn!(tracker = name, "tracked interface does not exist: down");
                    false
                }
            };
            let _ = tx.try_send(TrackerUpdate {
                tracker: idx,
                obs: Observation::Link(up),
            });
        }
        track::spawn_runners(&set, cfg, &tx)?;
        let notifier = Notifier::start(cfg, outputs)?;
        info!(
            trackers = set.len(),
            events = notifier.has_events(),
            "health tracking started"
        );
        let groups = cfg
            .sync_groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.instances.clone(),
                    Arc::new(g.notify.clone()),
                )
            })
            .collect::<Vec<_>>();
        Ok(Tracking {
            group_state: vec![None; groups.len()],
            groups,
            set,
            rx,
            _tx: tx,
            if_index,
            notifier,
            change_log: HashMap::new(),
        })
    }

    /// Each tracker of instance `idx` with its contribution, for status and metrics.
    pub(super) fn status_of(&self, idx: usize) -> Vec<crate::ctl::TrackerStatus> {
        self.set
            .contributions(idx)
            .into_iter()
            .map(|c| crate::ctl::TrackerStatus {
                name: c.name.to_owned(),
                kind: c.kind.as_str().to_owned(),
                up: c.status == track::Status::Up,
                weight: c.weight,
                contribution: i32::try_from(c.contribution).unwrap_or(0),
                faults: c.faults,
                detail: c.detail.to_owned(),
            })
            .collect()
    }

    /// What the trackers have observed so far (carried over by a reload or an upgrade).
    pub(super) fn states(&self) -> Vec<TrackerState> {
        self.set.states()
    }

    /// Runs the queued notifications (STOP) before exit, bounded.
    pub(super) async fn finish(&mut self) {
        self.notifier.finish(FINISH_BOUND).await;
    }
}

impl<N: Netlink> Daemon<N> {
    /// At startup, before the state machines start: applies the trackers' results as they
    /// come until every tracker has one, for at most `limit` (a tracker still unknown then
    /// contributes nothing, as it would have anyway).
    pub(super) async fn first_tracker_results(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.track.set.all_known() {
            match tokio::time::timeout_at(deadline, self.track.rx.recv()).await {
                Ok(Some(u)) => self.on_tracker(u),
                _ => {
                    let unknown = self.track.set.unknown();
                    info!(trackers = %unknown.join(", "),
                          "no first result yet from these trackers: starting without them");
                    return;
                }
            }
        }
    }

    /// A tracker runner reported something.
    pub(super) fn on_tracker(&mut self, u: TrackerUpdate) {
        let Some(change) = self.track.set.apply(&u) else {
            return;
        };
        self.tracker_changed(&change);
    }

    fn tracker_changed(&mut self, c: &Change) {
        let followers = self.track.set.followers(c.tracker);
        let names: Vec<&str> = followers
            .iter()
            .filter_map(|&i| self.insts.get(i).map(|x| x.cfg.name.as_str()))
            .collect();
        let limit = self
            .track
            .change_log
            .entry(c.tracker)
            .or_insert_with(|| crate::ratelimit::LogEvery::new(Duration::from_secs(1)));
        if let Some(held) = limit.check(Instant::now()) {
            let what = if c.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.detail)
            };
            info!(tracker = %c.name, kind = %c.kind, from = %c.from, to = %c.to, reason = %c.detail,
                  value = c.value, instances = %names.join(","),
                  "tracker changed: {} {} went {} -> {}{what}, for {}{}",
                  c.kind, c.name, c.from, c.to, names.join(", "), crate::ratelimit::held_note(held));
        }
        let ev = notify::event(
            "tracker",
            [
                ("tracker", Value::from(c.name.as_str())),
                ("kind", Value::from(c.kind.as_str())),
                ("from", Value::from(c.from.to_string())),
                ("to", Value::from(c.to.to_string())),
                ("up", Value::from(c.to == track::Status::Up)),
                ("value", c.value.map_or(Value::Null, Value::from)),
                ("reason", Value::from(c.detail.as_str())),
                ("instances", Value::from(names)),
            ],
        );
        self.track.notifier.event(ev);
        let now = Instant::now();
        for idx in followers {
            self.apply_tracking(now, idx);
        }
    }

    /// Pushes instance `idx`'s tracker delta and combined fault into the router.
    pub(super) fn apply_tracking(&mut self, now: Instant, idx: usize) {
        let effect = self.track.set.effect(idx);
        let id = self.id_of(idx);
        let current = self
            .router
            .instance(id)
            .map(|i| i.priority_adjust())
            .unwrap_or(0);
        if current != effect.delta {
            if let Some(inst) = self.insts.get(idx) {
                info!(instance = %inst.cfg.name, from = current, to = effect.delta,
                      "{}: trackers now add {} to the priority (was {current})", inst.cfg.name, effect.delta);
            }
            let _ = self.router.set_priority_adjust(now, id, effect.delta);
        }
        self.refresh_fault(now, idx);
    }

    /// Gives the router instance `idx`'s combined fault cause if it changed.
    pub(super) fn refresh_fault(&mut self, now: Instant, idx: usize) {
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let link_fault = !inst.link_up && (inst.cfg.fault_on_link_down || inst.interface_missing());
        let want = if link_fault {
            Some(FaultCause::LinkDown(inst.cfg.interface.clone()))
        } else {
            self.track
                .set
                .effect(idx)
                .fault
                .map(|(kind, name)| match kind {
                    TrackKind::Interface => FaultCause::LinkDown(name),
                    _ => FaultCause::Tracker(name),
                })
        };
        if inst.fault_applied == want {
            return;
        }
        let name = |c: &Option<FaultCause>| {
            c.as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string)
        };
        let (from, to) = (name(&inst.fault_applied), name(&want));
        match &want {
            Some(c) => info!(instance = %inst.cfg.name, from = %from, to = %to,
                             "{}: fault: {c} (was: {from})", inst.cfg.name),
            None => info!(instance = %inst.cfg.name, from = %from, to = %to,
                          "{}: fault cleared ({from})", inst.cfg.name),
        }
        inst.fault_applied.clone_from(&want);
        let id = inst.id;
        let _ = self.router.set_fault(now, id, want);
    }

    /// A link event, for `track_interfaces`.
    pub(super) fn track_link(&mut self, link: &LinkInfo) {
        let Some(t) = self.track.set.interface(&link.name) else {
            return;
        };
        self.track.if_index.retain(|_, v| *v != t);
        self.track.if_index.insert(link.index, t);
        self.on_tracker(TrackerUpdate {
            tracker: t,
            obs: Observation::Link(link.up),
        });
    }

    /// A link disappeared, for `track_interfaces`.
    pub(super) fn track_link_removed(&mut self, index: u32) {
        if let Some(t) = self.track.if_index.remove(&index) {
            self.on_tracker(TrackerUpdate {
                tracker: t,
                obs: Observation::Link(false),
            });
        }
    }

    /// An instance transition: notify programs (instance, then its group once every member
    /// has reached the state) and the event.
    pub(super) fn on_transition(&mut self, idx: usize, t: &Transition) {
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let priority = super::effective(&self.router, inst.id);
        let (name, vrid) = (inst.cfg.name.clone(), inst.cfg.vrid);
        let ev = notify::event(
            "transition",
            [
                ("instance", Value::from(name.as_str())),
                ("vrid", Value::from(vrid)),
                ("from", Value::from(notify::state_word(t.from))),
                ("to", Value::from(notify::state_word(t.to))),
                ("reason", Value::from(t.reason.to_string())),
                ("priority", Value::from(priority)),
            ],
        );
        self.track.notifier.event(ev);
        self.track
            .notifier
            .fifo(Target::Instance, &name, notify::state_word(t.to), priority);
        self.track.notifier.notify(Job {
            target: Target::Instance,
            name,
            state: t.to,
            priority,
            notify: Arc::new(inst.cfg.notify.clone()),
        });
        let id = inst.id;
        if let Some(i) = self.insts.get_mut(idx) {
            i.notified = t.to;
        }
        // Sync group: notify when all members are in the new state.
        let Some(g) = self.router.group_of(id) else {
            return;
        };
        let Some((gname, members, gnotify)) = self.track.groups.get(g) else {
            return;
        };
        let all = members.iter().all(|m| {
            self.insts
                .iter()
                .find(|i| i.cfg.name == *m)
                .is_some_and(|i| i.notified == t.to)
        });
        if !all || self.track.group_state.get(g) == Some(&Some(t.to)) {
            return;
        }
        let (gname, gnotify) = (gname.clone(), Arc::clone(gnotify));
        if let Some(s) = self.track.group_state.get_mut(g) {
            *s = Some(t.to);
        }
        info!(group = %gname, to = notify::state_word(t.to), "sync group state");
        let ev = notify::event(
            "group",
            [
                ("group", Value::from(gname.as_str())),
                ("to", Value::from(notify::state_word(t.to))),
            ],
        );
        self.track.notifier.event(ev);
        self.track
            .notifier
            .fifo(Target::Group, &gname, notify::state_word(t.to), 0);
        self.track.notifier.notify(Job {
            target: Target::Group,
            name: gname,
            state: t.to,
            priority: 0,
            notify: gnotify,
        });
    }

    /// Master instance `idx` heard `from` advertise itself as master with a lower priority.
    pub(super) fn on_lower_priority(&mut self, idx: usize, from: std::net::IpAddr, priority: u8) {
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let ours = super::effective(&self.router, inst.id);
        let name = inst.cfg.name.clone();
        self.track
            .notifier
            .fifo(Target::Instance, &name, "MASTER_RX_LOWER_PRI", ours);
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let ev = notify::event(
            "master-rx-lower-priority",
            [
                ("instance", Value::from(inst.cfg.name.as_str())),
                ("vrid", Value::from(inst.cfg.vrid)),
                ("peer", Value::from(from.to_string())),
                ("priority", Value::from(priority)),
            ],
        );
        self.track.notifier.event(ev);
    }

    /// Another address owner on instance `idx`'s VRID (see [`proto::OwnerConflict`]).
    pub(super) fn on_owner_conflict(
        &mut self,
        idx: usize,
        from: std::net::IpAddr,
        step: proto::OwnerConflict,
    ) {
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let ev = notify::event(
            "owner-conflict",
            [
                ("instance", Value::from(inst.cfg.name.as_str())),
                ("vrid", Value::from(inst.cfg.vrid)),
                ("peer", Value::from(from.to_string())),
                ("step", Value::from(step.to_string())),
            ],
        );
        self.track.notifier.event(ev);
    }

    /// An alarm of instance `idx` was raised (or changed) or cleared.
    pub(super) fn on_alarm(&mut self, idx: usize, a: &proto::alarms::Alarm, raised: bool) {
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let ev = notify::event(
            "alarm",
            [
                ("instance", Value::from(inst.cfg.name.as_str())),
                ("vrid", Value::from(inst.cfg.vrid)),
                ("alarm", Value::from(a.kind.as_str())),
                ("peer", Value::from(a.peer.to_string())),
                ("detail", Value::from(a.detail.as_str())),
                ("raised", Value::from(raised)),
            ],
        );
        self.track.notifier.event(ev);
    }

    /// Instance `idx` stays Backup for its sync group (see
    /// [`proto::Action::HeldBySyncGroup`]).
    pub(super) fn on_sync_hold(&mut self, idx: usize, group: &str, waiting_for: &str) {
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let ev = notify::event(
            "sync-group-hold",
            [
                ("instance", Value::from(inst.cfg.name.as_str())),
                ("vrid", Value::from(inst.cfg.vrid)),
                ("group", Value::from(group)),
                ("waiting_for", Value::from(waiting_for)),
            ],
        );
        self.track.notifier.event(ev);
    }

    /// The effective priority of instance `idx` changed.
    pub(super) fn on_priority(&mut self, idx: usize, base: u8, effective: u8) {
        let Some(inst) = self.insts.get(idx) else {
            return;
        };
        let ev = notify::event(
            "priority",
            [
                ("instance", Value::from(inst.cfg.name.as_str())),
                ("vrid", Value::from(inst.cfg.vrid)),
                ("base", Value::from(base)),
                ("priority", Value::from(effective)),
            ],
        );
        self.track.notifier.event(ev);
    }
}
