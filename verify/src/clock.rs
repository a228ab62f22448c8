//! Timestamps in the reference's format: Python's `datetime.isoformat()` of an aware UTC time.

use chrono::{DateTime, Timelike, Utc};

/// `2026-02-12T20:12:11.123456+00:00`; the fraction is omitted when the microseconds are zero,
/// as Python does, so consumers that compare against the reference see the same shape.
pub fn isoformat(t: DateTime<Utc>) -> String {
    let micros = t.nanosecond() / 1_000 % 1_000_000;
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        format!("{}.{micros:06}+00:00", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// The current time, [`isoformat`]ted.
pub fn now() -> String {
    isoformat(Utc::now())
}

/// Milliseconds rounded to one decimal, as the reference reports latencies.
pub fn round_ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn python_isoformat() {
        let t = Utc.with_ymd_and_hms(2026, 2, 12, 20, 12, 11).unwrap();
        assert_eq!(isoformat(t), "2026-02-12T20:12:11+00:00");
        let t = t + chrono::Duration::microseconds(123_456);
        assert_eq!(isoformat(t), "2026-02-12T20:12:11.123456+00:00");
        let t = t + chrono::Duration::nanoseconds(999);
        assert_eq!(isoformat(t), "2026-02-12T20:12:11.123456+00:00");
        let t = Utc.with_ymd_and_hms(2026, 2, 12, 20, 12, 11).unwrap()
            + chrono::Duration::microseconds(5);
        assert_eq!(isoformat(t), "2026-02-12T20:12:11.000005+00:00");
    }

    #[test]
    fn one_decimal() {
        assert_eq!(round_ms(std::time::Duration::from_micros(1_234)), 1.2);
        assert_eq!(round_ms(std::time::Duration::from_micros(1_250)), 1.3);
        assert_eq!(round_ms(std::time::Duration::ZERO), 0.0);
    }
}
