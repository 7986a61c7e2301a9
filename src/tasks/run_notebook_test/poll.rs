//! How often to ask for the run's state.
//!
//! The wait grows by a second per poll (1 s, 2 s, 3 s, ...) up to 10.5 s: the shape of the
//! Databricks SDK's waiter, minus what it spends for nothing. The SDK asks once right after
//! submitting (the run is always still pending then) and adds up to a second of random jitter
//! to every wait; we do neither. So we never make more requests than the SDK, see the end of
//! runs under ~45 s sooner than it on average and of longer ones about as soon (both wait
//! 10.5 s by then), and see a short run within a second or so (the first polls are 1 s, 3 s
//! and 6 s after submitting).
//!
//! Polling can't beat this on both counts at once: seeing the end sooner needs shorter waits,
//! which are more requests. README, Performance, has the figures (`cargo bench --bench
//! poll_schedule` and `scripts/bench.sh`).

use std::time::Duration;

/// The longest wait between two polls: the SDK's, 10 s plus its jitter's mean.
pub const MAX_POLL: Duration = Duration::from_millis(10_500);

/// The wait before the next `runs/get`, given how many were made already.
pub fn delay_before_poll(polls_made: u32) -> Duration {
    Duration::from_secs(u64::from(polls_made) + 1).min(MAX_POLL)
}

/// When each poll happens, in seconds after submitting (the first `count` of them).
pub fn poll_times(count: usize) -> Vec<f64> {
    let mut at = Duration::ZERO;
    (0..count as u32)
        .map(|polls_made| {
            at += delay_before_poll(polls_made);
            at.as_secs_f64()
        })
        .collect()
}

/// The Databricks SDK's waiter (`jobs.submit(...).result()`), as its source reads: a poll
/// right after submitting, then waits of `min(attempt, 10)` s plus a uniform 0–1 s jitter.
/// With the jitter at its mean, for comparisons.
pub fn sdk_poll_times(count: usize) -> Vec<f64> {
    let mut at = 0.0;
    (0..count)
        .map(|attempt| {
            if attempt > 0 {
                at += (attempt as f64).min(10.0) + 0.5;
            }
            at
        })
        .collect()
}

/// The polls a schedule makes for a run that ends `end` seconds after submitting, and when
/// the last of them (the one that sees the end) happens; `None` if `times` stop before `end`.
pub fn polls_to_see(times: &[f64], end: f64) -> Option<(usize, f64)> {
    let index = times.partition_point(|&t| t < end);
    times.get(index).map(|&seen| (index + 1, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF_AN_HOUR: usize = 400;

    #[test]
    fn waits_grow_by_a_second_up_to_the_cap() {
        let waits: Vec<f64> = (0..13)
            .map(|n| delay_before_poll(n).as_secs_f64())
            .collect();
        assert_eq!(
            waits,
            [1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 10.5, 10.5, 10.5]
        );
        assert_eq!(delay_before_poll(u32::MAX), MAX_POLL);
        assert_eq!(&poll_times(4), &[1.0, 3.0, 6.0, 10.0]);
    }

    #[test]
    fn never_more_polls_than_the_sdk_for_any_run_length() {
        let ours = poll_times(HALF_AN_HOUR);
        let sdk = sdk_poll_times(HALF_AN_HOUR);
        for tenth in 1..(1800 * 10) {
            let end = f64::from(tenth) / 10.0;
            let (our_polls, _) = polls_to_see(&ours, end).unwrap();
            let (sdk_polls, _) = polls_to_see(&sdk, end).unwrap();
            assert!(
                our_polls <= sdk_polls,
                "a run of {end} s: {our_polls} polls, the SDK makes {sdk_polls}"
            );
        }
    }

    #[test]
    fn a_short_run_is_seen_within_about_a_second() {
        let ours = poll_times(10);
        for end in [0.5, 1.0, 2.0, 2.6, 3.0] {
            let (_, seen) = polls_to_see(&ours, end).unwrap();
            assert!(seen - end <= 1.0, "a run of {end} s is seen at {seen} s");
        }
    }

    #[test]
    fn the_end_is_seen_sooner_than_by_the_sdk_then_about_as_soon() {
        let ours = poll_times(HALF_AN_HOUR);
        let sdk = sdk_poll_times(HALF_AN_HOUR);
        // Run lengths spread evenly over each window, like the runs of a test suite that varies.
        let windows = [(1, 5), (5, 15), (15, 45), (45, 90), (90, 300), (300, 1800)];
        for (from, to) in windows {
            let lengths: Vec<f64> = (from * 10..to * 10).map(|t| f64::from(t) / 10.0).collect();
            let mean_latency = |times: &[f64]| {
                lengths
                    .iter()
                    .map(|&end| polls_to_see(times, end).unwrap().1 - end)
                    .sum::<f64>()
                    / lengths.len() as f64
            };
            let (our_latency, sdk_latency) = (mean_latency(&ours), mean_latency(&sdk));
            let why = format!("runs of {from}–{to} s: seen after {our_latency:.2} s on average, by the SDK after {sdk_latency:.2} s");
            if to <= 45 {
                assert!(our_latency < sdk_latency, "{why}");
            } else {
                // Both wait 10.5 s by then; which is sooner depends on where the polls fall.
                assert!(our_latency < sdk_latency + 0.5, "{why}");
            }
        }
    }
}
