//! When to retry a failed request and how long to wait: pure functions, tested without I/O.

use std::time::Duration;

use super::error::ApiError;
#[cfg(test)]
use super::error::TransportKind;

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// No new attempt starts once this much time has passed since the first one.
    pub budget: Duration,
    /// First backoff delay; doubles on each attempt up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A server's `Retry-After` is honoured up to this much.
    pub max_retry_after: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            budget: Duration::from_secs(300),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Whether a failure is worth another attempt: what the Databricks SDKs retry, plus 500/502/504
/// which the Jobs API documentation advises retrying.
pub fn is_retryable(error: &ApiError) -> bool {
    match error {
        ApiError::Http {
            status,
            message,
            error_code,
            ..
        } => {
            matches!(status, 429 | 500 | 502 | 503 | 504)
                || error_code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED")
                || message.contains("REQUEST_LIMIT_EXCEEDED")
                || message.contains("Timed out after")
                || message.to_ascii_lowercase().contains("deadline exceeded")
        }
        ApiError::Transport { kind, .. } => kind.may_heal(),
        ApiError::Decode { .. }
        | ApiError::OutOfTime { .. }
        | ApiError::GaveUp { .. }
        | ApiError::SignIn { .. }
        | ApiError::Hinted { .. } => false,
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempts count from 1), or `None` when the
    /// budget does not allow another attempt. `jitter` is a number in [0, 1).
    pub fn delay_after(
        &self,
        attempt: u32,
        error: &ApiError,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        let delay = match error {
            ApiError::Http {
                retry_after: Some(after),
                ..
            } => {
                // Honour the server, capped, plus a little jitter so parallel agents spread out.
                (*after).min(self.max_retry_after) + Duration::from_millis((jitter * 250.0) as u64)
            }
            _ => {
                let exp = self
                    .base_delay
                    .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
                    .min(self.max_delay);
                // "Equal jitter": half fixed, half random, so delays never collapse to zero.
                exp / 2 + exp.mul_f64(jitter / 2.0)
            }
        };
        (elapsed + delay < self.budget).then_some(delay)
    }
}

/// Reads a `Retry-After` header: delta-seconds (what Databricks sends). HTTP dates are rare
/// here and ignored, which falls back to exponential backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::error::RequestLabel;

    fn http(status: u16, retry_after: Option<u64>) -> ApiError {
        ApiError::Http {
            request: RequestLabel {
                method: "GET",
                path: "/x".into(),
            },
            status,
            error_code: None,
            message: "m".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn retries_what_the_sdks_retry() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_retryable(&http(status, None)), "{status}");
        }
        for status in [400, 401, 403, 404, 409] {
            assert!(!is_retryable(&http(status, None)), "{status}");
        }
        let transport = ApiError::Transport {
            request: RequestLabel {
                method: "POST",
                path: "/x".into(),
            },
            message: "connection reset".into(),
            kind: TransportKind::Other,
        };
        assert!(is_retryable(&transport));
        let unknown_host = ApiError::Transport {
            request: RequestLabel {
                method: "GET",
                path: "/x".into(),
            },
            message: "getaddrinfo ENOTFOUND adb-1.2.azuredatabricks.nett".into(),
            kind: TransportKind::UnknownHost,
        };
        assert!(
            !is_retryable(&unknown_host),
            "a typo in the host fails at once"
        );
        let limited = ApiError::Http {
            request: RequestLabel {
                method: "GET",
                path: "/x".into(),
            },
            status: 400,
            error_code: Some("REQUEST_LIMIT_EXCEEDED".into()),
            message: "slow down".into(),
            retry_after: None,
        };
        assert!(is_retryable(&limited));
    }

    #[test]
    fn backs_off_exponentially_with_jitter_and_a_cap() {
        let policy = RetryPolicy::default();
        let delays: Vec<_> = (1..=8)
            .map(|attempt| {
                policy
                    .delay_after(attempt, &http(503, None), Duration::ZERO, 0.0)
                    .unwrap()
            })
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        let max = policy
            .delay_after(3, &http(503, None), Duration::ZERO, 0.999)
            .unwrap();
        assert!(
            max > Duration::from_millis(1990) && max <= Duration::from_secs(2),
            "{max:?}"
        );
    }

    #[test]
    fn honours_retry_after_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let d = policy
            .delay_after(1, &http(429, Some(3)), Duration::ZERO, 0.0)
            .unwrap();
        assert_eq!(d, Duration::from_secs(3));
        let d = policy
            .delay_after(1, &http(429, Some(3600)), Duration::ZERO, 0.0)
            .unwrap();
        assert_eq!(d, Duration::from_secs(60));
    }

    #[test]
    fn stops_at_the_budget() {
        let policy = RetryPolicy::default();
        assert!(policy
            .delay_after(1, &http(503, None), Duration::from_millis(299_900), 0.5)
            .is_none());
        assert!(policy
            .delay_after(1, &http(429, Some(30)), Duration::from_secs(280), 0.0)
            .is_none());
        assert!(policy
            .delay_after(1, &http(429, Some(30)), Duration::from_secs(200), 0.0)
            .is_some());
    }

    #[test]
    fn reads_retry_after() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
