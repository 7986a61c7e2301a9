//! How often to ask for the run's state: every second at first, so short runs are noticed
//! within a second, then a quarter of the time already waited, capped at 10 s. Measured against
//! the peers with scripts/bench.sh (README, Performance).

use std::time::Duration;

pub const MIN_POLL: Duration = Duration::from_secs(1);
pub const MAX_POLL: Duration = Duration::from_secs(10);

/// The wait before the next `runs/get`, given how long the run has been going.
pub fn next_delay(elapsed: Duration) -> Duration {
    (elapsed / 4).clamp(MIN_POLL, MAX_POLL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polls_until(end: Duration) -> u32 {
        let mut t = Duration::ZERO;
        let mut polls = 0;
        while t < end {
            t += next_delay(t);
            polls += 1;
        }
        polls
    }

    #[test]
    fn starts_every_second_and_backs_off_to_a_cap() {
        assert_eq!(next_delay(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(next_delay(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(next_delay(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(next_delay(Duration::from_secs(3600)), MAX_POLL);
        assert_eq!(
            polls_until(Duration::from_secs(3)),
            3,
            "a short run is seen within a second"
        );
        assert!(
            polls_until(Duration::from_secs(60)) <= 17,
            "a minute-long run: {}",
            polls_until(Duration::from_secs(60))
        );
    }
}
