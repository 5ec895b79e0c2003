//! A precise one-shot timer for the event loop: a timerfd (CLOCK_MONOTONIC, nanosecond
//! resolution, the clock of `std::time::Instant`) registered with tokio. tokio's own timer
//! wheel has millisecond slots and rounds deadlines up, which made every protocol timer (the
//! Master_Down_Timer of a takeover included) fire about a millisecond late.

use std::io;
use std::time::Instant;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

use crate::sys::TimerFdHandle;

/// One re-armable deadline; needs a tokio runtime with IO enabled.
pub struct PreciseTimer {
    fd: AsyncFd<TimerFdHandle>,
    /// The deadline the timerfd is armed for: re-arming is a syscall, skipped when the loop
    /// comes round again with the same deadline (after a received packet, say). A stale
    /// expiration costs at most one early wake-up, after which the caller re-checks.
    armed: std::cell::Cell<Option<Instant>>,
}

impl PreciseTimer {
    pub fn new() -> io::Result<PreciseTimer> {
        let t = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        Ok(PreciseTimer {
            fd: crate::sys::async_timerfd(t)?,
            armed: std::cell::Cell::new(None),
        })
    }

    /// Completes at `deadline` (at once if it has passed). Re-arms the timer, so a dropped,
    /// unfinished call leaves nothing behind that matters: the next call sets a new deadline
    /// and a stale expiry only causes one spurious readiness check.
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        if self.armed.get() != Some(deadline) {
            self.fd
                .get_ref()
                .timer()
                .set(
                    Expiration::OneShot(TimeSpec::from_duration(left)),
                    TimerSetTimeFlags::empty(),
                )
                .map_err(io::Error::from)?;
            self.armed.set(Some(deadline));
        }
        // Nonblocking read: EAGAIN (WouldBlock) clears tokio's readiness and we wait again.
        let r = self
            .fd
            .async_io(tokio::io::Interest::READABLE, |fd| {
                fd.timer().wait().map_err(io::Error::from)
            })
            .await;
        self.armed.set(None);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_at_the_deadline_not_before() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(rt) = rt else {
            panic!("runtime");
        };
        rt.block_on(async {
            let Ok(t) = PreciseTimer::new() else {
                panic!("timerfd");
            };
            for us in [300u64, 1500, 2500] {
                let deadline = Instant::now() + Duration::from_micros(us);
                assert!(t.sleep_until(deadline).await.is_ok());
                let now = Instant::now();
                assert!(now >= deadline);
                assert!(now - deadline < Duration::from_millis(20));
            }
            // A deadline in the past returns at once.
            assert!(t.sleep_until(Instant::now()).await.is_ok());
            // An abandoned sleep does not disturb the next one.
            let abandoned = t.sleep_until(Instant::now() + Duration::from_micros(100));
            drop(abandoned);
            tokio::time::sleep(Duration::from_millis(2)).await;
            let deadline = Instant::now() + Duration::from_millis(3);
            assert!(t.sleep_until(deadline).await.is_ok());
            assert!(Instant::now() >= deadline);
        });
    }
}
