//! How often to ask for the run's state: quick at first, so short runs are noticed at once,
//! then a fixed fraction of the time already waited, capped.

use std::time::Duration;

pub const FIRST_POLL: Duration = Duration::from_millis(500);
pub const MAX_POLL: Duration = Duration::from_secs(10);

/// The wait before the next `runs/get`, given how long the run has been going.
pub fn next_delay(elapsed: Duration) -> Duration {
    (FIRST_POLL + elapsed / 6).min(MAX_POLL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_quick_and_backs_off_to_a_cap() {
        assert_eq!(next_delay(Duration::ZERO), Duration::from_millis(500));
        assert_eq!(
            next_delay(Duration::from_secs(3)),
            Duration::from_millis(1000)
        );
        assert_eq!(
            next_delay(Duration::from_secs(30)),
            Duration::from_millis(5500)
        );
        assert_eq!(next_delay(Duration::from_secs(3600)), MAX_POLL);
        let mut t = Duration::ZERO;
        let mut polls = 0;
        while t < Duration::from_secs(60) {
            t += next_delay(t);
            polls += 1;
        }
        assert!(polls <= 20, "{polls} polls for a one-minute run");
    }
}
