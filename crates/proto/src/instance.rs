//! One virtual router: the RFC 9568 §6.4 state machine plus keepalived's
//! Fault state, preempt delay, GARP bursts and maintenance.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{
    Action, DropReason, FaultCause, InstanceConfig, MAX_PREEMPT_DELAY, OwnerConflict, Reason,
    RxAdvert, State, Transition, V3_MAX_INTERVAL, V3_MIN_INTERVAL, Version, addr_greater,
    effective_priority, interval_cs,
};

/// Counters for observers (`vipctl status`, metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Adverts sent (including priority 0).
    pub adverts_sent: u64,
    /// Priority-0 adverts sent.
    pub priority_zero_sent: u64,
    /// Adverts that passed the checks in `handle_advert`.
    pub adverts_received: u64,
    /// Priority-0 adverts received.
    pub priority_zero_received: u64,
    /// Lower-priority adverts ignored by a preempting backup.
    pub adverts_preempted: u64,
    /// Adverts dropped (any [`DropReason`]).
    pub adverts_dropped: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Lower-priority adverts heard while master and answered (see
    /// [`Action::LowerPriorityAdvert`]; at most one per sender per interval is counted).
    pub lower_priority_received: u64,
}

/// One VRRP virtual router (one VRID on one interface). Sans-IO: feed
/// events with `now`, drain [`Action`]s with [`Instance::poll_action`],
/// call [`Instance::handle_timeout`] at [`Instance::poll_timeout`].
///
/// Semantics beyond the RFC (all documented in `docs/failure-model.md`):
/// * **Preempt delay** (keepalived): a preempting backup treats a
///   lower-priority advert as valid (resets its timer) until
///   `preempt_delay` has passed since the later of startup and the first
///   lower-priority advert heard after the last higher-or-equal one.
///   After that, lower adverts are ignored and the down timer fires.
/// * **Split-brain answer**: a master hearing a lower advert (or equal
///   priority from a lower address) answers at once with its own advert
///   (unless `lower_prio_no_advert`) and a gratuitous burst, then a second
///   burst after `garp_lower_prio_delay`, at most once per interval per
///   sender ([`Action::LowerPriorityAdvert`]). A master that hears a higher
///   advert sends one last advert at its own priority before stepping down,
///   so that the winner of a healed split hears it and re-announces.
/// * **Priority changes** while master are advertised at once.
/// * **Fault**: a master entering Fault releases the VIPs and sends one
///   priority-0 advert so peers take over after `Skew_Time`.
/// * **Owner** (base priority 255): effective priority stays 255, always
///   preempts, goes straight to Master at start and on fault clear; it
///   still follows the RFC tie-break against another 255 with a higher
///   address (a misconfiguration, but this guarantees convergence).
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    /// Our interval, clamped to the version's range.
    interval: Duration,
    preempt_delay: Duration,
    state: State,
    adjust: i32,
    effective: u8,
    master_adver_interval: Duration,
    /// Last accepted master (Backup only).
    master: Option<(IpAddr, u8)>,
    master_down_at: Option<Instant>,
    /// The running down timer was set to Skew_Time by a priority-0 advert.
    down_by_prio0: bool,
    adver_at: Option<Instant>,
    garp_delay_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    preempt_until: Option<Instant>,
    /// A lower master's adverts started (or met) the running preempt delay, and that was
    /// reported ([`Action::PreemptDelayStarted`]).
    preempt_reported: bool,
    fault: Option<FaultCause>,
    /// A sync group holds this instance in Fault (set by [`super::Router`]).
    group_fault: bool,
    maintenance: bool,
    /// Origin of the advert grid (see [`ADVERT_GRID_DIVISOR`]); `None`: no grid.
    grid: Option<Instant>,
    /// Master: the second gratuitous burst after a lower-priority advert.
    garp_lower_at: Option<Instant>,
    /// Backup, just stepped down to a higher master: farewell adverts still to send, one
    /// per advert heard from it (see `master_rx`).
    farewells: u8,
    /// Master: senders of lower-priority adverts answered in the last interval, with when
    /// (at most [`LOWER_ANSWERED`]: a flood of spoofed sources costs a bounded table and a
    /// bounded number of answers).
    lower_answered: Vec<(IpAddr, Instant)>,
    /// When our last advert went out (a master's stall is measured from it).
    last_sent: Option<Instant>,
    /// Backup held by its sync group: its timer ran out, it wants to become master, and
    /// waits for every other member to want it too (keepalived's `wantstate`).
    wants_master: bool,
    /// Owner conflict: our adverts still to send before the window opens.
    rogue_count: u8,
    /// Owner conflict: the window in which another 255 advert makes us back off.
    rogue_window: Option<Instant>,
    /// Owner conflict: the other owner's advert interval.
    rogue_interval: Duration,
    /// Owner conflict: we advertise 254 instead of 255 until the other owner stops.
    owner_backoff: bool,
    actions: VecDeque<Action>,
    stats: Stats,
}

/// What a running instance is doing, with every timer as the time left, so that another
/// process (the next vipd binary of an upgrade) can go on exactly where this one is: see
/// [`Instance::snapshot`] and [`Instance::resume`]. Plain data (serializable with the
/// `serde` feature); nothing in it is trusted beyond what `resume` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
    /// Master or Backup (only those are resumed).
    pub state: State,
    /// The tracker delta in force.
    pub adjust: i32,
    /// Backup: the master last heard (address, priority).
    pub master: Option<(IpAddr, u8)>,
    /// `Master_Adver_Interval`.
    pub master_adver_interval: Duration,
    /// Backup: time left on `Master_Down_Timer`.
    pub master_down_in: Option<Duration>,
    /// Backup: that timer was set to `Skew_Time` by a priority-0 advert.
    pub down_by_prio0: bool,
    /// Master: time until the next advert is due.
    pub advert_in: Option<Duration>,
    /// Master: time until the second gratuitous burst.
    pub garp_delay_in: Option<Duration>,
    /// Master: time until the next periodic gratuitous burst.
    pub garp_refresh_in: Option<Duration>,
    /// Master: time until the second burst after a lower-priority advert.
    #[cfg_attr(feature = "serde", serde(default))]
    pub garp_lower_in: Option<Duration>,
    /// Backup: time left of a running preempt delay.
    pub preempt_until_in: Option<Duration>,
    /// In maintenance.
    pub maintenance: bool,
    /// An address owner that backed off to 254 for another owner (see
    /// [`OwnerConflict::BackedOff`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub owner_backoff: bool,
}

fn after(now: Instant, d: Duration) -> Instant {
    // Durations are clamped (<= 1000 s), so this never falls back in practice.
    now.checked_add(d).unwrap_or(now)
}

fn due(t: Option<Instant>, now: Instant) -> bool {
    t.is_some_and(|t| t <= now)
}

/// A master's advert may go out up to `interval / ADVERT_LEAD_DIVISOR` before it is due
/// (1.56 ms at 100 ms) when [`Instance::handle_timeout`] runs anyway: many masters with
/// nearby phases then share one wake-up instead of one each. The cadence stays anchored to
/// the due times, so phases do not drift, and no other timer fires early (a backup's
/// Master_Down_Timer never does). An early advert only restarts the peers' down timers a
/// little sooner.
pub const ADVERT_LEAD_DIVISOR: u32 = 64;

/// When a master (re)starts its advert cadence (on becoming master, on a priority change,
/// after a stall) the next advert is due on a grid of `interval / ADVERT_GRID_DIVISOR`
/// shared by every instance of a [`super::Router`] (the earlier grid point before one
/// interval from now: that one interval is up to 6 % short). Masters with the same
/// interval then advertise in at most 16 phases, whenever each was elected, and share
/// wake-ups: a thousand masters elected at a thousand different moments cost about as
/// little as a thousand elected together.
pub const ADVERT_GRID_DIVISOR: u32 = 16;

/// The configured interval, clamped to the version's range.
fn clamped_interval(cfg: &InstanceConfig) -> Duration {
    match cfg.version {
        Version::V2 => Duration::from_secs(cfg.advert_interval.as_secs().clamp(1, 255)),
        Version::V3 => cfg.advert_interval.clamp(V3_MIN_INTERVAL, V3_MAX_INTERVAL),
    }
}

/// Adverts a master that steps down to a higher one sends at its own priority: one at
/// once, then one on each of the winner's next adverts (so that one lost packet does not
/// leave the winner unaware that clients followed us).
pub(crate) const FAREWELLS: u8 = 3;

/// Most senders of lower-priority adverts a master answers per advert interval.
pub const LOWER_ANSWERED: usize = 16;

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl Instance {
    /// Create an instance in `Initialize`. Does not validate (see
    /// [`InstanceConfig::validate`]; [`super::Router::new`] does), but
    /// out-of-range durations are clamped so the machine stays sane.
    pub fn new(cfg: InstanceConfig) -> Self {
        let interval = clamped_interval(&cfg);
        let effective = effective_priority(cfg.priority, 0);
        Instance {
            interval,
            preempt_delay: cfg.preempt_delay.min(MAX_PREEMPT_DELAY),
            state: State::Initialize,
            adjust: 0,
            effective,
            master_adver_interval: interval,
            master: None,
            master_down_at: None,
            down_by_prio0: false,
            adver_at: None,
            garp_delay_at: None,
            garp_refresh_at: None,
            preempt_until: None,
            preempt_reported: false,
            fault: None,
            group_fault: false,
            maintenance: false,
            grid: None,
            garp_lower_at: None,
            farewells: 0,
            lower_answered: Vec::new(),
            last_sent: None,
            wants_master: false,
            rogue_count: 0,
            rogue_window: None,
            rogue_interval: Duration::ZERO,
            owner_backoff: false,
            actions: VecDeque::new(),
            stats: Stats::default(),
            cfg,
        }
    }

    /// Leave `Initialize`: the owner (priority 255) goes to Master
    /// ([`Reason::AddressOwner`]), others to Backup ([`Reason::Startup`])
    /// with `Master_Down_Timer := Master_Down_Interval`. If a fault is set,
    /// goes to Fault instead. No-op unless in `Initialize`.
    pub fn start(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        if let Some(c) = self.fault.clone() {
            self.enter_fault(now, Reason::FaultRaised(c));
        } else if self.group_fault {
            self.enter_fault(
                now,
                Reason::FaultRaised(FaultCause::Other("sync-group".into())),
            );
        } else {
            let reason = if self.is_owner() && !self.maintenance {
                Reason::AddressOwner
            } else {
                Reason::Startup
            };
            self.come_up(now, reason);
        }
    }

    /// Process a received advertisement. `Err` says why it was dropped
    /// (counted in [`Stats::adverts_dropped`]); a lower-priority advert
    /// ignored for preemption is `Ok` (counted in
    /// [`Stats::adverts_preempted`]).
    pub fn handle_advert(&mut self, now: Instant, adv: &RxAdvert) -> Result<(), DropReason> {
        let r = self.check_advert(adv);
        if r.is_err() {
            self.stats.adverts_dropped += 1;
            return r;
        }
        self.stats.adverts_received += 1;
        if adv.priority == 0 {
            self.stats.priority_zero_received += 1;
        }
        match self.state {
            State::Backup => self.backup_rx(now, adv),
            State::Master => self.master_rx(now, adv),
            State::Initialize | State::Fault => {}
        }
        Ok(())
    }

    fn check_advert(&self, adv: &RxAdvert) -> Result<(), DropReason> {
        if self.cfg.anycast.is_some() {
            return Err(DropReason::NotRunning);
        }
        match self.state {
            State::Initialize => return Err(DropReason::NotRunning),
            State::Fault => return Err(DropReason::Faulted),
            State::Backup | State::Master => {}
        }
        if adv.version != self.cfg.version {
            return Err(DropReason::VersionMismatch);
        }
        if !same_family(adv.src, self.cfg.primary_addr) {
            return Err(DropReason::AddressFamilyMismatch);
        }
        if adv.src == self.cfg.primary_addr {
            return Err(DropReason::OwnAdvert);
        }
        match self.cfg.version {
            Version::V2 => {
                let ours = self.advert_interval_cs();
                if adv.max_advert_int_cs != ours {
                    return Err(DropReason::IntervalMismatch {
                        ours_cs: ours,
                        theirs_cs: adv.max_advert_int_cs,
                    });
                }
            }
            Version::V3 => {
                if adv.max_advert_int_cs == 0 {
                    return Err(DropReason::ZeroInterval);
                }
            }
        }
        Ok(())
    }

    fn adopt_interval(&mut self, adv: &RxAdvert) {
        if self.cfg.version == Version::V3 {
            let theirs = Duration::from_millis(u64::from(adv.max_advert_int_cs.min(4095)) * 10);
            self.master_adver_interval = match self.cfg.max_adopted_interval {
                Some(cap) => theirs.min(cap.max(self.interval)),
                None => theirs,
            };
        }
    }

    fn preempts(&self) -> bool {
        self.cfg.preempt || self.is_owner()
    }

    fn backup_rx(&mut self, now: Instant, adv: &RxAdvert) {
        if self.owner_backoff
            && (adv.priority != 255 || self.master.is_none_or(|(a, _)| a != adv.src))
        {
            // The other owner stopped, or someone else is master now.
            self.restore_owner();
        }
        if adv.priority == 0 {
            // RFC 9568 §6.4.2: Master_Down_Timer := Skew_Time.
            self.master = None;
            if !self.maintenance {
                self.master_down_at = Some(after(now, self.skew_time()));
                self.down_by_prio0 = true;
            }
            return;
        }
        let lower = adv.priority < self.effective;
        let accept = if !lower || !self.preempts() || self.maintenance {
            if !lower {
                // Preempt delay counts again from the next lower advert.
                self.preempt_until = None;
                if std::mem::take(&mut self.preempt_reported) {
                    self.actions.push_back(Action::PreemptDelayCancelled {
                        master: adv.src,
                        priority: adv.priority,
                    });
                }
            }
            true
        } else if self.preempt_delay > Duration::ZERO {
            let until = *self
                .preempt_until
                .get_or_insert_with(|| after(now, self.preempt_delay));
            if now < until && !self.preempt_reported {
                self.preempt_reported = true;
                self.actions.push_back(Action::PreemptDelayStarted {
                    master: adv.src,
                    priority: adv.priority,
                    delay: until.saturating_duration_since(now),
                });
            }
            now < until
        } else {
            false
        };
        if accept {
            // A master we accept: a member held by its sync group no longer wants to take
            // over (keepalived sets wantstate BACKUP here).
            self.wants_master = false;
            if self.farewells > 0 && !lower {
                // We stepped down to this master a moment ago: tell it once more that we
                // were master (it re-announces the VIPs, at most once per interval).
                self.farewells -= 1;
                self.send_farewell();
            }
            self.adopt_interval(adv);
            self.master = Some((adv.src, adv.priority));
            self.down_by_prio0 = false;
            if !self.maintenance {
                self.master_down_at = Some(after(now, self.master_down_interval()));
            }
        } else {
            self.master = Some((adv.src, adv.priority));
            self.stats.adverts_preempted += 1;
            if self.cfg.fast_preempt && !self.maintenance {
                // The master is lower than us for sure now: take over after Skew_Time (the
                // other preempting backups above it do the same; the highest has the
                // shortest skew and wins, the others hear it).
                let soon = after(now, self.skew_time());
                self.master_down_at = Some(self.master_down_at.map_or(soon, |t| t.min(soon)));
            }
        }
    }

    fn master_rx(&mut self, now: Instant, adv: &RxAdvert) {
        if adv.priority == 0 {
            // RFC 9568 §6.4.3: answer with an advert. The sender was master too (only a
            // master sends priority 0): clients may follow its gratuitous ARP/NA, so
            // re-announce as for a lower advert (`lower_rx`, rate-limited the same way).
            self.send_advert(now);
            self.lower_rx(now, adv, false);
            return;
        }
        if adv.priority == 255 && self.effective == 255 {
            self.owner_conflict(now, adv);
        }
        let higher = adv.priority > self.effective
            || (adv.priority == self.effective && addr_greater(adv.src, self.cfg.primary_addr));
        if higher {
            self.step_down(now, adv, Reason::HigherPriorityAdvert);
        } else if !self.preempts() && self.stalled(now) {
            // We were silent for longer than any peer's Master_Down_Interval (a stall of
            // this process or host): the sender took over meanwhile, rightly. Without
            // preempt we would not take the VIPs from it as a backup, so we do not as a
            // stalled master either (keepalived's stall handling): accept it.
            self.step_down(now, adv, Reason::Stalled);
        } else {
            self.lower_rx(now, adv, !self.cfg.lower_prio_no_advert);
        }
    }

    /// Master -> Backup, following `adv`'s sender.
    fn step_down(&mut self, now: Instant, adv: &RxAdvert, reason: Reason) {
        let stalled = reason == Reason::Stalled;
        if !stalled {
            // A farewell advert at our own priority before stepping down: if we were master
            // on the other side of a split, the winner may not have heard us yet, and only a
            // lower advert makes it re-announce the VIPs to the clients and routers that
            // followed our gratuitous ARP/NA (see `lower_rx`). (Not after a stall: our
            // priority is the higher one there, and our advert would unseat the router we
            // defer to.)
            self.send_advert(now);
        }
        self.leave_master();
        // ... and on the next adverts of the winner, in case that one was lost.
        self.farewells = if stalled { 0 } else { FAREWELLS - 1 };
        self.adopt_interval(adv);
        self.master = Some((adv.src, adv.priority));
        self.preempt_until = None;
        self.preempt_reported = false;
        self.state = State::Backup;
        self.master_down_at = Some(after(now, self.master_down_interval()));
        self.down_by_prio0 = false;
        self.notify(now, State::Master, reason);
    }

    /// A master that has not advertised for longer than the shortest `Master_Down_Interval`
    /// a peer can have (priority 254 on our interval): the peers have taken over.
    fn stalled(&self, now: Instant) -> bool {
        let limit = super::master_down_interval(self.cfg.version, 254, self.interval);
        self.last_sent
            .is_some_and(|t| now.saturating_duration_since(t) > limit)
    }

    /// We are master as the address owner and another router advertises 255 too
    /// (keepalived's rogue owner handling; see [`OwnerConflict`]).
    fn owner_conflict(&mut self, now: Instant, adv: &RxAdvert) {
        if !self.is_owner() || adv.src == self.cfg.primary_addr {
            return;
        }
        if addr_greater(adv.src, self.cfg.primary_addr) {
            // It wins the tie-break: we step down (below) and report the error.
            self.actions.push_back(Action::OwnerConflict {
                from: adv.src,
                step: OwnerConflict::Detected,
            });
            return;
        }
        if self.rogue_window.is_some_and(|t| now < t) {
            // Still advertising after two more adverts of ours: it does not follow the
            // tie-break (it ignores adverts). Back off so that there is one master.
            self.rogue_window = None;
            self.rogue_count = 0;
            self.owner_backoff = true;
            self.effective = self.compute_effective();
            self.actions.push_back(Action::OwnerConflict {
                from: adv.src,
                step: OwnerConflict::BackedOff,
            });
            self.actions.push_back(Action::PriorityChanged {
                base: self.cfg.priority,
                effective: self.effective,
            });
        } else if self.rogue_count == 0 {
            self.rogue_window = None;
            self.actions.push_back(Action::OwnerConflict {
                from: adv.src,
                step: OwnerConflict::Detected,
            });
            self.rogue_count = 2;
            self.rogue_interval = Duration::from_millis(u64::from(adv.max_advert_int_cs) * 10);
        }
    }

    /// Back to 255 after [`OwnerConflict::BackedOff`].
    fn restore_owner(&mut self) {
        if !self.owner_backoff {
            return;
        }
        self.owner_backoff = false;
        self.effective = self.compute_effective();
        self.actions.push_back(Action::OwnerConflict {
            from: self.master.map_or(self.cfg.primary_addr, |(a, _)| a),
            step: OwnerConflict::Restored,
        });
        self.actions.push_back(Action::PriorityChanged {
            base: self.cfg.priority,
            effective: self.effective,
        });
    }

    /// The effective priority: base plus tracker weights, 254 for an owner backing off.
    fn compute_effective(&self) -> u8 {
        if self.owner_backoff && self.is_owner() {
            254
        } else {
            effective_priority(self.cfg.priority, self.adjust)
        }
    }

    /// A master hears a lower advert: another router believes it is master (the other side
    /// of a healed split, a stalled peer, a spoofed packet). Tell it (an advert, unless
    /// `lower_prio_no_advert`) and win the clients and routers back (a gratuitous burst, and
    /// a second after `garp_lower_prio_delay`): they may point at the other router since its
    /// own gratuitous ARP/NA. At most once per advert interval per sender, so a flood of
    /// lower adverts costs one answer per interval each.
    fn lower_rx(&mut self, now: Instant, adv: &RxAdvert, answer: bool) {
        let window = self.interval;
        self.lower_answered
            .retain(|(_, at)| now.saturating_duration_since(*at) < window);
        if self.lower_answered.iter().any(|(a, _)| *a == adv.src) {
            return;
        }
        if self.lower_answered.len() >= LOWER_ANSWERED {
            // As many senders answered this interval as a real network could have (a flood
            // of spoofed sources): the others wait for the next interval, so a flood costs
            // at most LOWER_ANSWERED answers per interval.
            return;
        }
        self.lower_answered.push((adv.src, now));
        self.stats.lower_priority_received += 1;
        self.actions.push_back(Action::LowerPriorityAdvert {
            from: adv.src,
            priority: adv.priority,
        });
        if answer {
            self.send_advert(now);
        }
        if self.cfg.garp.lower_prio_repeat > 0 {
            self.actions.push_back(Action::SendGratuitous {
                repeat: self.cfg.garp.lower_prio_repeat,
            });
        }
        self.garp_lower_at = (!self.cfg.garp.lower_prio_delay.is_zero())
            .then(|| after(now, self.cfg.garp.lower_prio_delay));
    }

    /// Fire every due timer: Backup `Master_Down_Timer` -> Master; Master
    /// `Adver_Timer` -> advert, GARP second burst and refresh.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Backup => {
                if due(self.master_down_at, now) {
                    let reason = if self.down_by_prio0 {
                        Reason::PriorityZeroReceived
                    } else if self.master.is_some_and(|(_, p)| p < self.effective) {
                        Reason::Preempt
                    } else {
                        Reason::MasterDown
                    };
                    self.become_master(now, reason);
                }
            }
            State::Master => {
                if due(self.adver_at, after(now, self.advert_lead())) {
                    self.send_advert(now);
                    // Owner conflict: count our scheduled adverts (not the answers).
                    if self.rogue_count > 0 {
                        self.rogue_count -= 1;
                        if self.rogue_count == 0 {
                            // "A bit more than" the longer of both intervals (keepalived:
                            // 1.2 x).
                            let longer = self.rogue_interval.max(self.interval);
                            self.rogue_window = Some(after(now, longer * 6 / 5));
                        }
                    }
                }
                if due(self.garp_delay_at, now) {
                    self.garp_delay_at = None;
                    if self.cfg.garp.repeat > 0 {
                        self.actions.push_back(Action::SendGratuitous {
                            repeat: self.cfg.garp.repeat,
                        });
                    }
                }
                if due(self.garp_lower_at, now) {
                    self.garp_lower_at = None;
                    if self.cfg.garp.lower_prio_repeat > 0 {
                        self.actions.push_back(Action::SendGratuitous {
                            repeat: self.cfg.garp.lower_prio_repeat,
                        });
                    }
                }
                if due(self.rogue_window, now) {
                    // The other owner did not advertise again: it stepped down.
                    self.rogue_window = None;
                    self.actions.push_back(Action::OwnerConflict {
                        from: self.cfg.primary_addr,
                        step: OwnerConflict::Stopped,
                    });
                }
                if due(self.garp_refresh_at, now) {
                    self.garp_refresh_at = self
                        .cfg
                        .garp
                        .refresh
                        .filter(|r| !r.is_zero())
                        .map(|r| after(now, r));
                    if self.cfg.garp.refresh_repeat > 0 {
                        self.actions.push_back(Action::SendGratuitous {
                            repeat: self.cfg.garp.refresh_repeat,
                        });
                    }
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// How early a due advert may go out (see [`ADVERT_LEAD_DIVISOR`]).
    pub fn advert_lead(&self) -> Duration {
        self.interval / ADVERT_LEAD_DIVISOR
    }

    /// Whether [`Instance::handle_timeout`] at `now` would fire something: a timer is due,
    /// or (master) the advert is due within [`Instance::advert_lead`].
    pub fn is_due(&self, now: Instant) -> bool {
        due(self.poll_timeout(), now)
            || (self.state == State::Master && due(self.adver_at, after(now, self.advert_lead())))
    }

    /// Latest time `handle_timeout` must be called, if any (it may be called earlier: see
    /// [`Instance::is_due`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Backup => self.master_down_at,
            State::Master => [
                self.adver_at,
                self.garp_delay_at,
                self.garp_refresh_at,
                self.garp_lower_at,
                self.rogue_window,
            ]
            .into_iter()
            .flatten()
            .min(),
            State::Initialize | State::Fault => None,
        }
    }

    /// Next action for the shell, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Clean stop to `Initialize` ([`Reason::Shutdown`]). A master sends a
    /// priority-0 advert and releases the VIPs first. Notifies from any
    /// running state. Faults and maintenance stay remembered for `start`.
    pub fn shutdown(&mut self, now: Instant) {
        let from = self.state;
        if from == State::Initialize {
            return;
        }
        if from == State::Master {
            self.send_priority_zero();
            self.leave_master();
        }
        self.clear_timers();
        self.master = None;
        self.state = State::Initialize;
        self.notify(now, from, Reason::Shutdown);
    }

    /// Set the sum of tracker weights. Effective priority becomes
    /// `clamp(base + delta, 1, 254)`; the owner stays 255. On change, emits
    /// [`Action::PriorityChanged`], and a master advertises the new priority
    /// at once (resetting `Adver_Timer`). A backup's running down timer is
    /// not re-armed; the new skew applies from the next accepted advert.
    pub fn set_priority_adjust(&mut self, now: Instant, delta: i32) {
        self.adjust = delta;
        let new = self.compute_effective();
        if new == self.effective {
            return;
        }
        self.effective = new;
        self.actions.push_back(Action::PriorityChanged {
            base: self.cfg.priority,
            effective: new,
        });
        if self.state == State::Master {
            self.send_advert(now);
        }
        self.anycast_eval(now);
    }

    /// Reload in place: takes a changed configuration of the same virtual router (see
    /// [`InstanceConfig::same_virtual_router`]; `false`, and nothing changes, otherwise)
    /// without leaving its state: a master stays master and keeps its VIPs, a backup keeps
    /// its master and its running down timer. What changes:
    /// * priority: the effective priority is recomputed with the current tracker delta
    ///   ([`Action::PriorityChanged`]); a master advertises it at once;
    /// * advert interval: a master advertises at once with the new one (v3 backups adopt it
    ///   from there), its cadence restarts; a v2 backup expects it from now on;
    /// * preempt delay: a running delay ends `new` after it began instead of `old`;
    /// * preempt, accept mode, GARP settings: from now on (a master's periodic GARP refresh
    ///   is re-armed when its period changed).
    pub fn reconfigure(&mut self, now: Instant, cfg: InstanceConfig) -> bool {
        if !self.cfg.same_virtual_router(&cfg) {
            return false;
        }
        if cfg == self.cfg {
            return true;
        }
        let old = std::mem::replace(&mut self.cfg, cfg);
        let interval = clamped_interval(&self.cfg);
        let interval_changed = interval != self.interval;
        self.interval = interval;
        if interval_changed && (self.cfg.version == Version::V2 || self.state != State::Backup) {
            self.master_adver_interval = interval;
        }
        let delay = self.cfg.preempt_delay.min(MAX_PREEMPT_DELAY);
        if let Some(until) = self.preempt_until {
            self.preempt_until = (!delay.is_zero()).then(|| {
                until
                    .checked_sub(self.preempt_delay)
                    .map_or(until, |began| after(began, delay))
            });
        }
        self.preempt_delay = delay;
        let effective = self.compute_effective();
        let priority_changed = effective != self.effective || old.priority != self.cfg.priority;
        self.effective = effective;
        if priority_changed {
            self.actions.push_back(Action::PriorityChanged {
                base: self.cfg.priority,
                effective,
            });
        }
        if self.state == State::Master {
            if old.garp.refresh != self.cfg.garp.refresh {
                self.garp_refresh_at = self
                    .cfg
                    .garp
                    .refresh
                    .filter(|r| !r.is_zero())
                    .map(|r| after(now, r));
            }
            if priority_changed || interval_changed {
                self.send_advert(now);
            }
        }
        self.anycast_eval(now);
        true
    }

    /// The state to hand to another process at `now` (see [`Snapshot`]); `None` unless
    /// Master or Backup (an instance in Fault or not started is simply started again).
    pub fn snapshot(&self, now: Instant) -> Option<Snapshot> {
        if !matches!(self.state, State::Master | State::Backup) {
            return None;
        }
        let left = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(now));
        Some(Snapshot {
            state: self.state,
            adjust: self.adjust,
            master: self.master,
            master_adver_interval: self.master_adver_interval,
            master_down_in: left(self.master_down_at),
            down_by_prio0: self.down_by_prio0,
            advert_in: left(self.adver_at),
            garp_delay_in: left(self.garp_delay_at),
            garp_refresh_in: left(self.garp_refresh_at),
            garp_lower_in: left(self.garp_lower_at),
            preempt_until_in: left(self.preempt_until),
            maintenance: self.maintenance,
            owner_backoff: self.owner_backoff,
        })
    }

    /// Instead of [`Instance::start`]: goes on from `snap`, taken `ago` before `now`, as
    /// the process that took it would have (no transition, no action: a master is already
    /// master and holds its VIPs; its next advert goes out when it was due, at once if that
    /// is past). Only from `Initialize`, and only a Master or Backup snapshot; values out of
    /// range are clamped as in [`Instance::new`]. Returns whether it resumed (`false`: call
    /// `start`).
    pub fn resume(&mut self, now: Instant, ago: Duration, snap: &Snapshot) -> bool {
        if self.state != State::Initialize || !matches!(snap.state, State::Master | State::Backup) {
            return false;
        }
        let at = |d: Option<Duration>| d.map(|d| after(now, d.saturating_sub(ago)));
        let longest = V3_MAX_INTERVAL.max(Duration::from_secs(255));
        self.state = snap.state;
        self.adjust = snap.adjust.clamp(-100_000, 100_000);
        self.owner_backoff = snap.owner_backoff && self.is_owner();
        self.effective = self.compute_effective();
        self.master_adver_interval = snap.master_adver_interval.clamp(V3_MIN_INTERVAL, longest);
        self.maintenance = snap.maintenance;
        self.clear_timers();
        if self.cfg.anycast.is_some() {
            // No VRRP: no timer to resume; health decides, under this configuration's
            // threshold (the upgrade may have changed it).
            self.master = None;
            self.anycast_eval(now);
            return true;
        }
        match snap.state {
            State::Master => {
                self.master = None;
                // Never later than one interval from now, whatever the snapshot says.
                self.adver_at = Some(
                    at(snap.advert_in)
                        .unwrap_or(now)
                        .min(after(now, self.interval)),
                );
                self.garp_delay_at = at(snap.garp_delay_in);
                self.garp_refresh_at = at(snap.garp_refresh_in);
                self.garp_lower_at = at(snap.garp_lower_in);
            }
            _ => {
                self.master = snap.master;
                self.down_by_prio0 = snap.down_by_prio0 && !self.maintenance;
                self.master_down_at = if self.maintenance {
                    None
                } else {
                    // A missing or absurd timer: the startup one (the master's next advert
                    // re-arms it anyway).
                    Some(
                        at(snap.master_down_in)
                            .unwrap_or(now)
                            .min(after(now, self.master_down_interval())),
                    )
                };
                self.preempt_until =
                    at(snap.preempt_until_in).map(|t| t.min(after(now, self.preempt_delay)));
            }
        }
        true
    }

    /// Raise (`Some(cause)`) or clear (`None`) this instance's fault. Raising
    /// from Backup/Master goes to Fault ([`Reason::FaultRaised`]); a master
    /// first sends one priority-0 advert and releases the VIPs. Clearing goes
    /// to Backup with the startup timer (owner: Master), reason
    /// [`Reason::FaultCleared`]. Raising while already faulted only updates
    /// the remembered cause. The shell aggregates several fault sources into
    /// this single flag. Before `start`, the fault is remembered.
    pub fn set_fault(&mut self, now: Instant, cause: Option<FaultCause>) {
        match cause {
            Some(c) => {
                self.fault = Some(c.clone());
                if matches!(self.state, State::Backup | State::Master) {
                    self.enter_fault(now, Reason::FaultRaised(c));
                }
            }
            None => {
                if self.fault.take().is_some() && self.state == State::Fault && !self.group_fault {
                    self.leave_fault(now, Reason::FaultCleared);
                }
            }
        }
    }

    /// Maintenance: `true` hands over like a clean stop (a master sends
    /// priority 0, releases, goes Backup with [`Reason::Maintenance`]) and
    /// then stays Backup without a down timer, so it never takes over.
    /// `false` re-arms the startup timer (owner: goes Master).
    pub fn set_maintenance(&mut self, now: Instant, on: bool) {
        self.maintenance_mode(now, on, true);
    }

    /// Like [`Instance::set_maintenance`], but a master steps down WITHOUT the priority-0
    /// advert: it just goes silent, as a crashed master would, so that a drill measures the
    /// real detection time (`Master_Down_Interval`) of the peers.
    pub fn set_maintenance_silently(&mut self, now: Instant, on: bool) {
        self.maintenance_mode(now, on, false);
    }

    fn maintenance_mode(&mut self, now: Instant, on: bool, handover: bool) {
        if on == self.maintenance {
            return;
        }
        self.maintenance = on;
        match (self.state, on) {
            (State::Master, true) => {
                if handover {
                    self.send_priority_zero();
                }
                self.leave_master();
                self.state = State::Backup;
                self.master = None;
                self.master_down_at = None;
                self.notify(now, State::Master, Reason::Maintenance);
            }
            (State::Backup, true) => {
                self.master_down_at = None;
                self.down_by_prio0 = false;
            }
            (State::Backup, false) if self.cfg.anycast.is_some() => {
                self.anycast_eval_for(now, Reason::Maintenance);
            }
            (State::Backup, false) => {
                if self.is_owner() {
                    self.become_master(now, Reason::Maintenance);
                } else {
                    self.arm_startup_timers(now);
                }
            }
            _ => {}
        }
    }

    // ---- accessors ----

    /// The current RFC state.
    pub fn state(&self) -> State {
        self.state
    }
    /// The configuration it runs.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }
    /// Base priority plus tracker weights, clamped (see `set_priority_adjust`).
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }
    /// Current tracker delta.
    pub fn priority_adjust(&self) -> i32 {
        self.adjust
    }
    /// True for the address owner (configured priority 255).
    pub fn is_owner(&self) -> bool {
        self.cfg.priority == 255
    }
    /// The current master as `(address, priority)`: ourselves when Master,
    /// the last heard master when Backup (including one being preempted),
    /// None otherwise or after a priority-0 advert.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        match self.state {
            State::Master => Some((self.cfg.primary_addr, self.effective)),
            State::Backup => self.master,
            State::Initialize | State::Fault => None,
        }
    }
    /// Our own (clamped) `Advertisement_Interval`.
    pub fn advert_interval(&self) -> Duration {
        self.interval
    }
    /// Our interval in centiseconds as sent on the wire.
    pub fn advert_interval_cs(&self) -> u16 {
        interval_cs(self.cfg.version, self.interval)
    }
    /// `Master_Adver_Interval` (v3: adopted from the master's adverts).
    pub fn master_advert_interval(&self) -> Duration {
        self.master_adver_interval
    }
    /// `Skew_Time` with our effective priority.
    pub fn skew_time(&self) -> Duration {
        super::skew_time(self.cfg.version, self.effective, self.master_adver_interval)
    }
    /// `Master_Down_Interval` with our effective priority.
    pub fn master_down_interval(&self) -> Duration {
        super::master_down_interval(self.cfg.version, self.effective, self.master_adver_interval)
    }
    /// Master and (owner or `accept_mode`): the shell should accept packets
    /// addressed to the VIPs (otherwise drop them, RFC 9568 §6.4.3).
    pub fn accepts_vip_traffic(&self) -> bool {
        self.state == State::Master && (self.is_owner() || self.cfg.accept_mode)
    }
    /// The fault raised with `set_fault`, if any.
    pub fn fault(&self) -> Option<&FaultCause> {
        self.fault.as_ref()
    }
    /// In maintenance (see `set_maintenance`).
    pub fn in_maintenance(&self) -> bool {
        self.maintenance
    }
    /// Its counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ---- internals (some used by the Router for sync groups) ----

    fn come_up(&mut self, now: Instant, reason: Reason) {
        if self.cfg.anycast.is_some() {
            if self.anycast_wants() {
                self.become_master(now, reason);
            } else {
                let from = self.state;
                self.state = State::Backup;
                self.master = None;
                self.clear_timers();
                self.notify(now, from, reason);
            }
            return;
        }
        if self.is_owner() && !self.maintenance {
            self.become_master(now, reason);
        } else {
            let from = self.state;
            self.state = State::Backup;
            self.master = None;
            self.arm_startup_timers(now);
            self.notify(now, from, reason);
        }
    }

    /// Active-active: whether this node should announce now.
    fn anycast_wants(&self) -> bool {
        self.cfg.anycast.is_some_and(|min| {
            !self.maintenance && self.fault.is_none() && !self.group_fault && self.effective >= min
        })
    }

    /// Active-active: Backup <-> Master as [`Instance::anycast_wants`] says, the reason being
    /// the priority threshold.
    fn anycast_eval(&mut self, now: Instant) {
        if let Some(min) = self.cfg.anycast {
            let effective = self.effective;
            self.anycast_eval_for(now, Reason::Threshold { effective, min });
        }
    }

    fn anycast_eval_for(&mut self, now: Instant, reason: Reason) {
        if self.cfg.anycast.is_none() {
            return;
        }
        match (self.state, self.anycast_wants()) {
            (State::Backup, true) => self.become_master(now, reason),
            (State::Master, false) => {
                self.leave_master();
                self.state = State::Backup;
                self.master = None;
                self.notify(now, State::Master, reason);
            }
            _ => {}
        }
    }

    fn arm_startup_timers(&mut self, now: Instant) {
        self.master_adver_interval = self.interval;
        self.down_by_prio0 = false;
        self.preempt_reported = false;
        self.preempt_until = if self.preempt_delay > Duration::ZERO {
            Some(after(now, self.preempt_delay))
        } else {
            None
        };
        self.master_down_at = if self.maintenance {
            None
        } else {
            Some(after(now, self.master_down_interval()))
        };
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        let from = self.state;
        // Elected again as the owner that backed off: the other owner is gone.
        self.restore_owner();
        self.wants_master = false;
        self.farewells = 0;
        self.state = State::Master;
        self.master = None;
        self.master_down_at = None;
        self.down_by_prio0 = false;
        self.preempt_until = None;
        self.preempt_reported = false;
        self.stats.became_master += 1;
        // The advert first, then the VIPs and the gratuitous burst (RFC 9568 §6.4.1 and
        // §6.4.2, and keepalived): the other backups stop their own takeover at once, and
        // the addresses follow within microseconds.
        if self.cfg.anycast.is_some() {
            // No VRRP: the VIPs (and their routes) are the announcement.
            self.actions.push_back(Action::ClaimVips);
            self.notify(now, from, reason);
            return;
        }
        self.send_advert(now);
        self.actions.push_back(Action::ClaimVips);
        if self.cfg.garp.repeat > 0 {
            self.actions.push_back(Action::SendGratuitous {
                repeat: self.cfg.garp.repeat,
            });
        }
        self.garp_delay_at =
            (!self.cfg.garp.delay.is_zero()).then(|| after(now, self.cfg.garp.delay));
        self.garp_refresh_at = self
            .cfg
            .garp
            .refresh
            .filter(|r| !r.is_zero())
            .map(|r| after(now, r));
        self.notify(now, from, reason);
    }

    fn send_advert(&mut self, now: Instant) {
        if self.cfg.anycast.is_some() {
            // Never armed; cleared should it ever be, so that it cannot stay due.
            self.adver_at = None;
            return;
        }
        self.stats.adverts_sent += 1;
        self.last_sent = Some(now);
        self.actions.push_back(Action::SendAdvert {
            priority: self.effective,
            max_advert_int_cs: self.advert_interval_cs(),
        });
        // Keep the cadence: the next advert is due one interval after this one was DUE, not
        // after it went out, so neither wake-up latency nor an early send (within the lead)
        // moves the phase. After a stall of a whole interval, or when sent off schedule (a
        // priority change, becoming master), restart from `now`.
        let next = match self.adver_at {
            Some(was_due)
                if was_due <= after(now, self.advert_lead())
                    && now < after(was_due, self.interval) =>
            {
                after(was_due, self.interval)
            }
            _ => self.grid_floor(now, after(now, self.interval)),
        };
        self.adver_at = Some(next);
    }

    /// `t` moved back onto the advert grid (the latest grid point at or before `t`), but
    /// never to `now` or before; `t` itself without a grid.
    fn grid_floor(&self, now: Instant, t: Instant) -> Instant {
        let Some(origin) = self.grid else {
            return t;
        };
        let step = (self.interval / ADVERT_GRID_DIVISOR).as_nanos();
        if step == 0 || t <= origin {
            return t;
        }
        let off = (t - origin).as_nanos() % step;
        let back = Duration::from_nanos(u64::try_from(off).unwrap_or(0));
        match t.checked_sub(back) {
            Some(g) if g > now => g,
            _ => t,
        }
    }

    /// Puts this instance's advert cadence on the grid starting at `origin` (set by
    /// [`super::Router`] for all its instances alike).
    pub(crate) fn set_advert_grid(&mut self, origin: Instant) {
        self.grid = Some(origin);
    }

    /// A farewell advert at our priority, sent as backup (it does not touch the advert
    /// timer, which a backup does not run).
    fn send_farewell(&mut self) {
        if self.cfg.anycast.is_some() {
            return;
        }
        self.stats.adverts_sent += 1;
        self.actions.push_back(Action::SendAdvert {
            priority: self.effective,
            max_advert_int_cs: self.advert_interval_cs(),
        });
    }

    fn send_priority_zero(&mut self) {
        if self.cfg.anycast.is_some() {
            return;
        }
        self.stats.adverts_sent += 1;
        self.stats.priority_zero_sent += 1;
        self.actions.push_back(Action::SendAdvert {
            priority: 0,
            max_advert_int_cs: self.advert_interval_cs(),
        });
    }

    /// Master bookkeeping on the way out (caller sets the new state).
    fn leave_master(&mut self) {
        self.rogue_count = 0;
        self.rogue_window = None;
        self.adver_at = None;
        self.garp_delay_at = None;
        self.garp_refresh_at = None;
        self.garp_lower_at = None;
        self.lower_answered.clear();
        self.actions.push_back(Action::ReleaseVips);
    }

    fn clear_timers(&mut self) {
        self.farewells = 0;
        self.wants_master = false;
        self.rogue_count = 0;
        self.rogue_window = None;
        self.adver_at = None;
        self.garp_delay_at = None;
        self.garp_refresh_at = None;
        self.garp_lower_at = None;
        self.master_down_at = None;
        self.down_by_prio0 = false;
        self.preempt_until = None;
        self.preempt_reported = false;
    }

    fn notify(&mut self, now: Instant, from: State, reason: Reason) {
        self.actions.push_back(Action::Notify(Transition {
            from,
            to: self.state,
            reason,
            at: now,
        }));
    }

    /// Backup/Master -> Fault (no-op otherwise).
    pub(crate) fn enter_fault(&mut self, now: Instant, reason: Reason) {
        let from = self.state;
        match from {
            State::Master => {
                self.send_priority_zero();
                self.leave_master();
            }
            State::Backup => {}
            State::Initialize | State::Fault => {
                if from == State::Initialize {
                    // start() with a remembered fault.
                    self.clear_timers();
                    self.state = State::Fault;
                    self.notify(now, from, reason);
                }
                return;
            }
        }
        self.clear_timers();
        self.master = None;
        self.state = State::Fault;
        self.notify(now, from, reason);
    }

    /// Fault -> Backup with startup timers (owner -> Master).
    pub(crate) fn leave_fault(&mut self, now: Instant, reason: Reason) {
        if self.state == State::Fault {
            self.come_up(now, reason);
        }
    }

    pub(crate) fn set_group_fault(&mut self, on: bool) {
        self.group_fault = on;
    }

    pub(crate) fn own_fault(&self) -> bool {
        self.fault.is_some()
    }

    /// Set the fault flag without transitioning (the Router decides).
    pub(crate) fn set_fault_flag(&mut self, cause: Option<FaultCause>) {
        self.fault = cause;
    }

    /// Sync group: the `Master_Down_Timer` of this backup has run out (it would become
    /// master at `now`).
    pub(crate) fn takeover_due(&self, now: Instant) -> bool {
        self.state == State::Backup && !self.maintenance && due(self.master_down_at, now)
    }

    /// Sync group: this member wants to be master (keepalived's `wantstate`): it is, or its
    /// timer has run out (now or earlier, held by the group).
    pub(crate) fn wants_master(&self, now: Instant) -> bool {
        match self.state {
            State::Master => true,
            State::Backup => self.wants_master || self.takeover_due(now),
            State::Initialize | State::Fault => false,
        }
    }

    /// Sync group: stay Backup although the timer ran out, and try again after
    /// `Master_Down_Interval`. Returns whether the hold begins now (it was not held).
    pub(crate) fn hold_backup(&mut self, now: Instant) -> bool {
        let began = !self.wants_master;
        self.wants_master = true;
        self.master_down_at = Some(after(now, self.master_down_interval()));
        began
    }

    /// Held by its sync group (see [`Instance::hold_backup`]).
    pub fn held_by_sync_group(&self) -> bool {
        self.state == State::Backup && self.wants_master
    }

    /// Sync group: Backup -> Master (skipped in maintenance).
    pub(crate) fn force_master(&mut self, now: Instant, reason: Reason) -> bool {
        if self.state == State::Backup && !self.maintenance {
            self.become_master(now, reason);
            true
        } else {
            false
        }
    }

    /// Sync group: Master -> Backup with `Master_Down_Timer :=
    /// Master_Down_Interval`.
    pub(crate) fn force_backup(&mut self, now: Instant, reason: Reason) -> bool {
        if self.state != State::Master {
            return false;
        }
        // Farewells as when stepping down to a higher advert: a master of this VRID that
        // did not hear us learns that clients may follow us, and re-announces.
        self.send_advert(now);
        self.leave_master();
        self.farewells = FAREWELLS - 1;
        self.state = State::Backup;
        self.master = None;
        self.master_adver_interval = self.interval;
        self.down_by_prio0 = false;
        self.master_down_at = if self.maintenance {
            None
        } else {
            Some(after(now, self.master_down_interval()))
        };
        self.notify(now, State::Master, reason);
        true
    }
}
