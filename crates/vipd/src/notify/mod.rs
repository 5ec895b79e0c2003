//! Notifications: keepalived-style notify programs, and the JSON-lines events socket.
//!
//! Notify programs run in one dedicated task, strictly in the order the transitions happened,
//! fed by a bounded queue: the protocol loop only enqueues (never waits), a full queue drops
//! the job with a warning, and a program running past `notify_timeout` is killed with its
//! whole process group. For each transition, the state's program (`notify_master`,
//! `notify_backup`, `notify_fault`, `notify_stop`) runs first, then the generic `notify` with
//! keepalived's arguments: `INSTANCE|GROUP NAME MASTER|BACKUP|FAULT|STOP PRIORITY`.

pub mod events;
pub mod fifo;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::track::exec::{self, RunAs};
use vipd_config::{Config, Notify};
use vipd_proto::State;

/// Jobs waiting at most.
pub const NOTIFY_QUEUE: usize = 256;
/// Output kept from a notify program.
pub const OUTPUT_CAP: usize = 4096;

/// Who a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Instance,
    Group,
}

impl Target {
    /// `INSTANCE` / `GROUP` (keepalived's `$1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Instance => "INSTANCE",
            Target::Group => "GROUP",
        }
    }
}

/// keepalived's state word for a state (`$3`): Initialize is `STOP`.
pub fn state_word(s: State) -> &'static str {
    match s {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "STOP",
    }
}

/// One notification to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub target: Target,
    pub name: String,
    pub state: State,
    pub priority: u8,
    pub notify: Arc<Notify>,
}

impl Job {
    /// The argv lists to run, in order.
    pub fn programs(&self) -> Vec<Vec<String>> {
        let n = &self.notify;
        let specific = match self.state {
            State::Master => &n.master,
            State::Backup => &n.backup,
            State::Fault => &n.fault,
            State::Initialize => &n.stop,
        };
        let mut out: Vec<Vec<String>> = specific.iter().cloned().collect();
        if let Some(any) = &n.any {
            let mut argv = any.clone();
            argv.extend([
                self.target.as_str().to_string(),
                self.name.clone(),
                state_word(self.state).to_string(),
                self.priority.to_string(),
            ]);
            out.push(argv);
        }
        out
    }
}

/// Runs notify programs and publishes events.
pub struct Notifier {
    tx: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<()>>,
    out: Outputs,
}

/// What a notifier writes to besides programs, handed from one configuration to the next
/// when unchanged: the events socket (clients stay connected, the sequence goes on) and the
/// notify FIFO (its reader keeps running).
#[derive(Default)]
pub struct Outputs {
    pub hub: Option<events::Hub>,
    pub fifo: Option<fifo::Fifo>,
    /// The FIFO's reader as configured when it was started (to tell a change).
    fifo_script: Option<Vec<String>>,
}

impl Notifier {
    /// Starts the worker (and the events socket, if configured). `hub` is the running events
    /// socket of the configuration being replaced: kept as it is (clients stay connected, the
    /// sequence goes on) when the path is unchanged, and left in place when this fails.
    pub fn start(cfg: &Config, prev: &mut Outputs) -> io::Result<Notifier> {
        let any = cfg.instances.iter().any(|i| !i.notify.is_empty())
            || cfg.sync_groups.iter().any(|g| !g.notify.is_empty())
            || cfg.global.notify_fifo_script.is_some();
        let run_as = if any {
            RunAs::resolve(&cfg.global.script_user)?
        } else {
            None
        };
        let hub = match &cfg.global.events_socket {
            Some(p) if prev.hub.as_ref().is_some_and(|h| h.path() == p.as_path()) => {
                prev.hub.take()
            }
            Some(p) => Some(events::Hub::bind(p)?),
            None => None,
        };
        let same_fifo = |f: &fifo::Fifo, p: &std::path::Path| {
            f.path() == p && prev.fifo_script == cfg.global.notify_fifo_script
        };
        let fifo = match &cfg.global.notify_fifo {
            Some(p) if prev.fifo.as_ref().is_some_and(|f| same_fifo(f, p)) => prev.fifo.take(),
            Some(p) => {
                // The previous one goes first (it may have created this very path).
                prev.fifo = None;
                let reader = cfg
                    .global
                    .notify_fifo_script
                    .clone()
                    .map(|argv| (argv, run_as.clone()));
                Some(fifo::Fifo::open(p, reader)?)
            }
            None => None,
        };
        let (tx, mut rx) = mpsc::channel::<Job>(NOTIFY_QUEUE);
        let worker = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                for argv in job.programs() {
                    let timeout = job.notify.timeout;
                    let o = exec::run(&argv, run_as.as_ref(), timeout, OUTPUT_CAP).await;
                    let result = o.describe(timeout);
                    if o.success() {
                        info!(target_kind = job.target.as_str(), name = %job.name, state = state_word(job.state),
                              program = %argv.join(" "), result = %result, elapsed_ms = o.elapsed.as_millis() as u64,
                              "notify program ran");
                    } else {
                        warn!(target_kind = job.target.as_str(), name = %job.name, state = state_word(job.state),
                              program = %argv.join(" "), result = %result, output = %o.first_line(),
                              "notify program failed");
                    }
                    debug!(name = %job.name, output = %o.output, discarded = o.discarded, "notify output");
                }
            }
        });
        Ok(Notifier {
            tx: Some(tx),
            worker: Some(worker),
            out: Outputs {
                hub,
                fifo,
                fifo_script: cfg.global.notify_fifo_script.clone(),
            },
        })
    }

    /// Queues `job` (if it has programs); never waits. False if the queue was full.
    pub fn notify(&self, job: Job) -> bool {
        if job.notify.is_empty() {
            return true;
        }
        let Some(tx) = &self.tx else { return false };
        match tx.try_send(job) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(j)) => {
                warn!(name = %j.name, state = state_word(j.state), queue = NOTIFY_QUEUE,
                      "notify queue full: dropping this notification");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Publishes an event (a JSON object with `type`) on the events socket, if any.
    pub fn event(&mut self, obj: Map<String, Value>) {
        if let Some(h) = &mut self.out.hub {
            h.send(obj);
        }
    }

    /// Writes a line to the notify FIFO, if any (`INSTANCE|GROUP "NAME" STATE PRIORITY`).
    pub fn fifo(&mut self, target: Target, name: &str, state: &str, priority: u8) {
        if let Some(f) = &mut self.out.fifo {
            f.line(target.as_str(), name, state, priority);
        }
    }

    /// Hands over the events socket and FIFO (to the notifier of a reloaded configuration).
    pub fn take_outputs(&mut self) -> Outputs {
        std::mem::take(&mut self.out)
    }

    /// Takes them back (the reload that took them failed).
    pub fn put_outputs(&mut self, out: Outputs) {
        if self.out.hub.is_none() {
            self.out.hub = out.hub;
        }
        if self.out.fifo.is_none() {
            self.out.fifo = out.fifo;
            self.out.fifo_script = out.fifo_script;
        }
    }

    /// True when an events socket is configured.
    pub fn has_events(&self) -> bool {
        self.out.hub.is_some()
    }

    /// Lets queued notifications (e.g. STOP) run, waiting at most `bound`.
    pub async fn finish(&mut self, bound: Duration) {
        if let Some(f) = &self.out.fifo {
            f.drain(bound.min(Duration::from_secs(1))).await;
        }
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let abort = w.abort_handle();
            if tokio::time::timeout(bound, w).await.is_err() {
                warn!(
                    bound_ms = bound.as_millis() as u64,
                    "notify programs still running at exit; abandoning them"
                );
                abort.abort();
            }
        }
    }
}

/// Builds an event object: `{"type": kind, ...fields}`.
pub fn event(
    kind: &str,
    fields: impl IntoIterator<Item = (&'static str, Value)>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(kind));
    for (k, v) in fields {
        m.insert(k.into(), v);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_arguments() {
        let n = Notify {
            master: Some(vec!["/m".into()]),
            any: Some(vec!["/n".into(), "x".into()]),
            ..Notify::default()
        };
        let job = Job {
            target: Target::Instance,
            name: "VI_1".into(),
            state: State::Master,
            priority: 150,
            notify: Arc::new(n),
        };
        assert_eq!(
            job.programs(),
            vec![
                vec!["/m".to_string()],
                ["/n", "x", "INSTANCE", "VI_1", "MASTER", "150"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            ]
        );
        let stop = Job {
            target: Target::Group,
            state: State::Initialize,
            ..job
        };
        assert_eq!(
            stop.programs(),
            vec![
                ["/n", "x", "GROUP", "VI_1", "STOP", "150"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            ]
        );
    }
}
