//! Human durations: `"10ms"`, `"1s"`, `"1.5s"`, `"2m"`, `"1h"` (and a bare `"0"`).

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected. `Display` gives the message; [`DurationError::hint`] a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The string is empty.
    Empty,
    /// Starts with `-`.
    Negative,
    /// A number without a unit, e.g. `"5"`.
    MissingUnit(String),
    /// A unit we do not know, e.g. `"5x"`.
    UnknownUnit(String),
    /// `1e9s` and friends.
    Exponent,
    /// Not a number followed by a unit.
    Malformed,
    /// More precise than a nanosecond.
    TooPrecise,
    /// Does not fit in 64-bit nanoseconds (~584 years).
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("empty duration"),
            DurationError::Negative => f.write_str("durations cannot be negative"),
            DurationError::MissingUnit(n) => write!(f, "duration `{n}` has no unit"),
            DurationError::UnknownUnit(u) => write!(f, "unknown duration unit `{u}`"),
            DurationError::Exponent => f.write_str("exponent notation is not allowed in durations"),
            DurationError::Malformed => f.write_str("not a duration"),
            DurationError::TooPrecise => f.write_str("duration is more precise than a nanosecond"),
            DurationError::Overflow => f.write_str("duration is too large"),
        }
    }
}

impl std::error::Error for DurationError {}

impl DurationError {
    /// A suggestion for fixing the string.
    pub fn hint(&self) -> String {
        match self {
            DurationError::MissingUnit(n) => format!("write \"{n}s\" or \"{n}ms\""),
            DurationError::Exponent => "write the number out, e.g. \"1500ms\"".to_string(),
            _ => "write a number and a unit (ms, s, m or h), e.g. \"100ms\", \"1s\", \"1.5s\", \"2m\""
                .to_string(),
        }
    }
}

/// Parses `<digits>[.<digits>]<unit>` with unit `ms`, `s`, `m` or `h`; `"0"` alone is also accepted.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    if num.is_empty() {
        return Err(DurationError::Malformed);
    }
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (num, None),
    };
    if int.is_empty() || frac.is_some_and(|f| f.is_empty() || f.contains('.')) {
        return Err(DurationError::Malformed);
    }
    if unit.starts_with(['e', 'E'])
        && unit.len() > 1
        && unit[1..].starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-')
    {
        return Err(DurationError::Exponent);
    }
    let unit_ns: u64 = match unit {
        "" => return Err(DurationError::MissingUnit(num.to_string())),
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => {
            let shown: String = other.chars().take(16).collect();
            return Err(DurationError::UnknownUnit(shown));
        }
    };
    let mut whole: u64 = 0;
    for b in int.bytes() {
        whole = whole
            .checked_mul(10)
            .and_then(|w| w.checked_add(u64::from(b - b'0')))
            .ok_or(DurationError::Overflow)?;
    }
    let mut nanos = whole.checked_mul(unit_ns).ok_or(DurationError::Overflow)?;
    if let Some(frac) = frac {
        // Exact decimal arithmetic: the fraction contributes frac * unit_ns / 10^len nanoseconds.
        let mut scale = unit_ns;
        for b in frac.bytes() {
            let digit = u64::from(b - b'0');
            if !scale.is_multiple_of(10) {
                if digit != 0 {
                    return Err(DurationError::TooPrecise);
                }
                continue;
            }
            scale /= 10;
            nanos = nanos
                .checked_add(digit * scale)
                .ok_or(DurationError::Overflow)?;
        }
    }
    Ok(Duration::from_nanos(nanos))
}

/// Renders a duration the way [`parse_duration`] reads it: `"0s"`, `"15ms"`, `"1.5s"`, `"2m"`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos.is_multiple_of(3_600_000_000_000) {
        return format!("{}h", nanos / 3_600_000_000_000);
    }
    if nanos.is_multiple_of(60_000_000_000) {
        return format!("{}m", nanos / 60_000_000_000);
    }
    if nanos >= 1_000_000_000 {
        let secs = nanos / 1_000_000_000;
        let frac = nanos % 1_000_000_000;
        if frac == 0 {
            return format!("{secs}s");
        }
        let frac = format!("{frac:09}");
        return format!("{secs}.{}s", frac.trim_end_matches('0'));
    }
    let ms = nanos / 1_000_000;
    let frac = nanos % 1_000_000;
    if frac == 0 {
        return format!("{ms}ms");
    }
    let frac = format!("{frac:06}");
    format!("{ms}.{}ms", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn accepts() {
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("100ms"), Ok(ms(100)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("40.95s"), Ok(ms(40_950)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1.000000000s"), Ok(ms(1000)));
        assert_eq!(parse_duration("0.25m"), Ok(ms(15_000)));
    }

    #[test]
    fn rejects() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("-1s"), Err(DurationError::Negative));
        assert_eq!(
            parse_duration("1x"),
            Err(DurationError::UnknownUnit("x".into()))
        );
        assert_eq!(parse_duration("1e9s"), Err(DurationError::Exponent));
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit("5".into()))
        );
        assert_eq!(parse_duration(".5s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("1.s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("1.2.3s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration(" 1s"), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("1 s"),
            Err(DurationError::UnknownUnit(" s".into()))
        );
        assert_eq!(
            parse_duration("0.0000000001s"),
            Err(DurationError::TooPrecise)
        );
        assert_eq!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(parse_duration("6000000h"), Err(DurationError::Overflow));
    }

    #[test]
    fn formats() {
        for (d, s) in [
            (ms(0), "0s"),
            (ms(15), "15ms"),
            (ms(1500), "1.5s"),
            (ms(1000), "1s"),
            (ms(120_000), "2m"),
            (ms(3_600_000), "1h"),
            (Duration::from_micros(1500), "1.5ms"),
            (ms(40_950), "40.95s"),
        ] {
            assert_eq!(format_duration(d), s);
            assert_eq!(parse_duration(s), Ok(d));
        }
    }
}
