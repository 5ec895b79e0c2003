//! A passive observer for drills, tests and benchmarks: an AF_PACKET socket in a network
//! namespace that timestamps every VRRP advert, gratuitous ARP and unsolicited NA it sees,
//! and keeps everything (a test's lifetime). Decoding is the daemon's own
//! [`vipd::net::observe::classify`], which `vipctl drill failover` uses too.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use vipd::net::observe::recv_stamped;
pub use vipd::net::observe::{EthernetAddressBytes, Event, Seen, classify};

/// A running observer; stops (and joins its thread) on drop.
pub struct Sniffer {
    rx: mpsc::Receiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    seen: Vec<Event>,
}

impl Sniffer {
    /// Starts observing every interface of network namespace `netns` (`None`: the caller's).
    /// Returns once the socket is open, so nothing sent afterwards is missed.
    pub fn start(netns: Option<&str>) -> io::Result<Sniffer> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let ns = netns.map(str::to_owned);
        let thread = std::thread::Builder::new()
            .name("vipd-sniff".into())
            .spawn(move || {
                let sock = (|| {
                    if let Some(ns) = &ns {
                        super::netns::enter(ns)?;
                    }
                    let all = i32::from((libc::ETH_P_ALL as u16).to_be());
                    let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(all)))?;
                    s.set_read_timeout(Some(Duration::from_millis(20)))?;
                    s.set_recv_buffer_size(1 << 20)?;
                    // Kernel receive timestamps: a busy machine delaying this thread must
                    // not show up as late packets.
                    nix::sys::socket::setsockopt(
                        &s,
                        nix::sys::socket::sockopt::ReceiveTimestampns,
                        &true,
                    )
                    .map_err(io::Error::from)?;
                    Ok::<_, io::Error>(s)
                })();
                let sock = match sock {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut buf = [0u8; 2048];
                while !stop2.load(Ordering::Relaxed) {
                    match recv_stamped(&sock, &mut buf) {
                        Ok((n, at)) => {
                            if let Some((eth_src, what)) = buf.get(..n).and_then(classify)
                                && tx.send(Event { at, eth_src, what }).is_err()
                            {
                                return;
                            }
                        }
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::TimedOut
                                || e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Sniffer {
                rx,
                stop,
                thread: Some(thread),
                seen: Vec::new(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("sniffer thread died")),
        }
    }

    fn pull(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
    }

    /// Everything seen so far (kept).
    pub fn events(&mut self) -> &[Event] {
        self.pull();
        &self.seen
    }

    /// Waits up to `timeout` for the first event at or after `since` matching `pred`.
    pub fn wait_for(
        &mut self,
        since: Instant,
        timeout: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            self.pull();
            if let Some(e) = self
                .seen
                .iter()
                .skip(checked)
                .find(|e| e.at >= since && pred(e))
            {
                return Some(e.clone());
            }
            checked = self.seen.len();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(e) => self.seen.push(e),
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

impl std::ops::Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
