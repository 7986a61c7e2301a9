//! The identity parties' clock: wall time plus an offset tests can push forward, so expiry is
//! tested without sleeping; and the date formats the parties print.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Default)]
pub(crate) struct Clock {
    /// Milliseconds added to the wall clock (only ever grows: time does not run backwards).
    ahead_ms: AtomicU64,
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        wall + self.ahead_ms.load(Ordering::Relaxed)
    }

    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    pub fn advance(&self, by: Duration) {
        self.ahead_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Civil UTC date and time of `secs` after the epoch (Howard Hinnant's days-from-civil,
/// inverted): no date crate for four format strings.
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2025-10-13 14:54:34Z`, as Entra's `timestamp` and error descriptions print it.
pub(crate) fn entra_timestamp(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// `2024-10-02T22:05:03.6755165Z`, as AADSTS700024 prints times (seven fractional digits).
pub(crate) fn entra_instant(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    let frac = (ms % 1000) * 10_000;
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:07}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(entra_timestamp(0), "1970-01-01 00:00:00Z");
        // 2025-10-13 14:54:34 UTC
        assert_eq!(entra_timestamp(1_760_367_274), "2025-10-13 14:54:34Z");
        // A leap day.
        assert_eq!(entra_timestamp(1_709_208_000), "2024-02-29 12:00:00Z");
        assert_eq!(
            entra_instant(1_727_906_703_675),
            "2024-10-02T22:05:03.6750000Z"
        );
        assert_eq!(entra_instant(0), "1970-01-01T00:00:00.0000000Z");
    }

    #[test]
    fn advancing_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now_ms();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now_ms() >= before + 3_600_000);
    }
}
