//! Timestamps. The database keeps microseconds since the epoch (portable across
//! SQLite, MariaDB and PostgreSQL); APIs render them in the formats clients parse.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Keystone's token time format: `2026-01-02T03:04:05.000000Z`. Tempest parses it
/// strictly, so the `Z` must be literal and there must be six fractional digits.
pub fn keystone_time(micros: i64) -> String {
    from_micros(micros).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// ISO 8601 with seconds and a `Z`, as most APIs render `created_at`/`updated_at`.
pub fn iso_seconds(micros: i64) -> String {
    from_micros(micros).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Nova's naive timestamps (`launched_at`, action times): six fractional
/// digits and no zone, `2026-01-02T03:04:05.000000`.
pub fn naive_micros(micros: i64) -> String {
    from_micros(micros).format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Parses an ISO 8601 timestamp as clients send it (`expires_at` of an application
/// credential, say): with or without fraction, with `Z`, an offset, or no zone (UTC).
pub fn parse_iso(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_format_has_literal_z_and_micros() {
        assert_eq!(keystone_time(1_500_000_000_123_456), "2017-07-14T02:40:00.123456Z");
        assert_eq!(iso_seconds(1_500_000_000_123_456), "2017-07-14T02:40:00Z");
    }

    #[test]
    fn parses_the_forms_clients_send() {
        let want = 1_500_000_000_000_000;
        for s in
            ["2017-07-14T02:40:00Z", "2017-07-14T02:40:00.000000Z", "2017-07-14T02:40:00+00:00", "2017-07-14T02:40:00"]
        {
            assert_eq!(parse_iso(s), Some(want), "{s}");
        }
        assert_eq!(parse_iso("yesterday"), None);
    }
}
