//! Kernel receive timestamps (`SO_TIMESTAMPNS`) on the monotonic clock: the VRRP sockets and
//! the lab's sniffer both time a datagram by when the kernel received it.

use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::ControlMessageOwned;

/// The kernel's receive time of a datagram (`SCM_TIMESTAMPNS`), if it came with one.
pub fn kernel_time(c: &ControlMessageOwned) -> Option<SystemTime> {
    match c {
        ControlMessageOwned::ScmTimestampns(ts) => {
            let secs = u64::try_from(ts.tv_sec()).ok()?;
            let nanos = u32::try_from(ts.tv_nsec()).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        }
        _ => None,
    }
}

/// The kernel timestamp older than this is not believed (a wall-clock step between the
/// receive and now): the packet counts as received now.
pub const MAX_RX_AGE: Duration = Duration::from_secs(1);

/// The monotonic time a datagram arrived, from the kernel's wall-clock receive time
/// (`SO_TIMESTAMPNS`) and the two clocks read together now: `now - (wall_now - kernel)`.
/// Without a timestamp, or when it is in the future or older than [`MAX_RX_AGE`] (the wall
/// clock was stepped), `now`. So a priority-0 advert's Skew_Time counts from its arrival,
/// not from when the loop got to it (waking an idle process takes tens of microseconds).
pub fn received_at(now: Instant, wall_now: SystemTime, kernel: Option<SystemTime>) -> Instant {
    kernel
        .and_then(|k| wall_now.duration_since(k).ok())
        .filter(|age| *age <= MAX_RX_AGE)
        .and_then(|age| now.checked_sub(age))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_time_from_the_kernel_timestamp() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let us = Duration::from_micros;
        // Arrived 80 us ago.
        assert_eq!(received_at(now, wall, Some(wall - us(80))), now - us(80));
        // No timestamp, a timestamp in the future, or one older than a second (the wall
        // clock was stepped): now.
        assert_eq!(received_at(now, wall, None), now);
        assert_eq!(received_at(now, wall, Some(wall + us(5))), now);
        assert_eq!(
            received_at(now, wall, Some(wall - Duration::from_secs(2))),
            now
        );
        assert_eq!(
            received_at(now, wall, Some(wall - MAX_RX_AGE)),
            now - MAX_RX_AGE
        );
    }
}
