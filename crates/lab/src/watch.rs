//! Watches address changes in a network namespace through netlink and timestamps them, so a
//! drill can say when a VIP really came up (not when somebody next looked).

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vipd::net::netlink::{NetEvent, subscribe};

/// A running watcher; stops on drop.
pub struct AddrWatcher {
    rx: mpsc::Receiver<(Instant, NetEvent)>,
    seen: Vec<(Instant, NetEvent)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AddrWatcher {
    /// Starts watching namespace `netns`; returns once subscribed.
    pub fn start(netns: &str) -> io::Result<AddrWatcher> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let ns = netns.to_owned();
        let thread = std::thread::Builder::new()
            .name("vipd-watch".into())
            .spawn(move || {
                let setup = super::netns::enter(&ns).and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                });
                let rt = match setup {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut events = match subscribe() {
                        Ok(ev) => {
                            let _ = ready_tx.send(Ok(()));
                            ev
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    while !stop2.load(Ordering::Relaxed) {
                        tokio::select! {
                            ev = events.recv() => match ev {
                                Some(ev) => {
                                    if tx.send((Instant::now(), ev)).is_err() {
                                        return;
                                    }
                                }
                                None => return,
                            },
                            () = tokio::time::sleep(Duration::from_millis(50)) => {}
                        }
                    }
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(AddrWatcher {
                rx,
                seen: Vec::new(),
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("watcher thread died")),
        }
    }

    /// Every event seen so far, oldest first (kept; the timestamps are when the watcher
    /// read them, within a millisecond or so of the change on an idle machine).
    pub fn events(&mut self) -> &[(Instant, NetEvent)] {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
        &self.seen
    }

    /// Waits up to `timeout` for `addr` to be added (`added`) or removed at or after `since`;
    /// returns when the kernel reported it.
    pub fn wait(
        &mut self,
        since: Instant,
        addr: IpAddr,
        added: bool,
        timeout: Duration,
    ) -> Option<Instant> {
        let matches = |(at, ev): &(Instant, NetEvent)| {
            *at >= since
                && match ev {
                    NetEvent::AddrAdded { addr: a, .. } => added && *a == addr,
                    NetEvent::AddrRemoved { addr: a, .. } => !added && *a == addr,
                    _ => false,
                }
        };
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(e) = self.rx.try_recv() {
                self.seen.push(e);
            }
            if let Some((at, _)) = self.seen.iter().find(|e| matches(e)) {
                return Some(*at);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(e) => self.seen.push(e),
                Err(_) => return None,
            }
        }
    }
}

impl Drop for AddrWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
