//! Rate-limited log lines: a source that can repeat without bound (refused connections,
//! a tracker starved of descriptors, a flapping tracked file) writes at most one line per
//! period and says how many it held back.

use std::time::{Duration, Instant};

/// One rate-limited log source.
#[derive(Debug, Clone)]
pub struct LogEvery {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl LogEvery {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> LogEvery {
        LogEvery {
            every,
            last: None,
            held: 0,
        }
    }

    /// Whether a line may be written at `now`: `Some(held)` with the number of lines held
    /// back since the last one written, or `None` (this one is held back and counted).
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.every => {
                self.held = self.held.saturating_add(1);
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

/// ", 12 more like it held back" (empty for 0): the tail of a rate-limited line.
pub fn held_note(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} more like it since the last such line)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_held_back() {
        let t0 = Instant::now();
        let mut l = LogEvery::new(Duration::from_secs(10));
        assert_eq!(l.check(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(l.check(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(l.check(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(l.check(t0 + Duration::from_secs(11)), None);
        assert_eq!(l.check(t0 + Duration::from_secs(25)), Some(1));
        assert_eq!(held_note(0), "");
        assert!(held_note(3).contains("3 more"));
    }
}
