//! A credential made of tokens that expire: obtained from a source when first needed, renewed
//! a margin before they expire (Azure Databricks refuses a token with 30 s or less left), and
//! renewed at once when the workspace refuses one. Concurrent requests share one renewal.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::lock::Mutex;

use crate::host::Host;
use crate::rest::{ApiError, Credential, CredentialHeaders};

/// Renew this long before a token expires (the Databricks Go SDK uses 40 s)...
const MARGIN: Duration = Duration::from_secs(40);

/// ...or after three quarters of its life, for tokens that live less than a few minutes.
pub fn refresh_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(MARGIN.min(lifetime / 4))
}

/// How long a token of `lifetime` is accepted: Azure Databricks refuses one with 1/120 of its
/// life or less left (30 s of an hour), and never before the renewal was due.
fn usable_for(lifetime: Duration) -> Duration {
    let refused_within = (lifetime / 120).max(Duration::from_secs(1));
    lifetime
        .saturating_sub(refused_within)
        .max(refresh_after(lifetime))
}

/// What a source hands back: the headers to send and how long they stay valid.
pub struct Obtained {
    pub headers: CredentialHeaders,
    pub lifetime: Duration,
}

/// Where tokens come from (an identity provider). Each call asks for a new one.
pub trait TokenSource {
    fn obtain(&self) -> LocalBoxFuture<'_, Result<Obtained, ApiError>>;
}

struct Current {
    headers: CredentialHeaders,
    /// On the host's clock.
    renew_at: Duration,
    /// Until when the workspace still accepts it, on the host's clock.
    usable_until: Duration,
}

pub struct Refreshing {
    source: Box<dyn TokenSource>,
    host: Rc<dyn Host>,
    current: RefCell<Option<Current>>,
    renewing: Mutex<()>,
    /// The last renewal failed (and was reported to the request that asked).
    renewal_failed: std::cell::Cell<bool>,
    refused_hint: Option<String>,
}

impl Refreshing {
    pub fn new(
        source: Box<dyn TokenSource>,
        host: Rc<dyn Host>,
        refused_hint: Option<String>,
    ) -> Refreshing {
        Refreshing {
            source,
            host,
            current: RefCell::new(None),
            renewing: Mutex::new(()),
            renewal_failed: std::cell::Cell::new(false),
            refused_hint,
        }
    }

    fn valid(&self) -> Option<CredentialHeaders> {
        let now = self.host.elapsed();
        self.current
            .borrow()
            .as_ref()
            .filter(|current| now < current.renew_at)
            .map(|current| current.headers.clone())
    }

    async fn renew(&self) -> Result<CredentialHeaders, ApiError> {
        let asked_at = self.host.elapsed();
        let obtained = self.source.obtain().await?;
        let renew_at = asked_at + refresh_after(obtained.lifetime);
        *self.current.borrow_mut() = Some(Current {
            headers: obtained.headers.clone(),
            renew_at,
            usable_until: asked_at + usable_for(obtained.lifetime),
        });
        self.renewal_failed.set(false);
        Ok(obtained.headers)
    }

    /// A renewal that was due failed. The request that asked gets the failure (the step stops
    /// following its run, and says why); the requests after it, the cancel of that run first,
    /// get the token in hand while the workspace still accepts it, instead of failing again on
    /// a provider that refused (or is down): a run is never left going for want of a token.
    fn after_failed_renewal(&self, failure: ApiError) -> Result<CredentialHeaders, ApiError> {
        self.renewal_failed.set(true);
        Err(failure)
    }

    /// The token in hand, after a failed renewal, while the workspace still accepts it.
    fn in_hand_after_failure(&self) -> Option<CredentialHeaders> {
        let now = self.host.elapsed();
        self.current
            .borrow()
            .as_ref()
            .filter(|current| self.renewal_failed.get() && now < current.usable_until)
            .map(|current| current.headers.clone())
    }
}

impl Credential for Refreshing {
    fn headers(&self) -> LocalBoxFuture<'_, Result<CredentialHeaders, ApiError>> {
        Box::pin(async move {
            if let Some(headers) = self.valid() {
                return Ok(headers);
            }
            let _renewing = self.renewing.lock().await;
            // Another request may have renewed it while this one waited; or the renewal failed
            // a moment ago, and the token in hand serves the requests after (the cancel).
            if let Some(headers) = self.valid().or_else(|| self.in_hand_after_failure()) {
                return Ok(headers);
            }
            match self.renew().await {
                Ok(headers) => Ok(headers),
                Err(failure) => self.after_failed_renewal(failure),
            }
        })
    }

    fn refresh<'a>(
        &'a self,
        refused: &'a CredentialHeaders,
    ) -> LocalBoxFuture<'a, Result<bool, ApiError>> {
        Box::pin(async move {
            let _renewing = self.renewing.lock().await;
            // Several requests refused with the same token renew it once.
            let still_current = self
                .current
                .borrow()
                .as_ref()
                .is_none_or(|current| &current.headers == refused);
            if still_current {
                self.renew().await?;
            }
            Ok(true)
        })
    }

    fn refused_hint(&self) -> Option<String> {
        self.refused_hint.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    use futures::future::LocalBoxFuture;

    use super::{refresh_after, Obtained, Refreshing, TokenSource};
    use crate::rest::scripted::test_host;
    use crate::rest::{ApiError, Credential};

    struct Counting {
        issued: Rc<Cell<u32>>,
        lifetime: Duration,
    }

    impl TokenSource for Counting {
        fn obtain(&self) -> LocalBoxFuture<'_, Result<Obtained, ApiError>> {
            self.issued.set(self.issued.get() + 1);
            let token = format!("Bearer t{}", self.issued.get());
            let lifetime = self.lifetime;
            Box::pin(async move {
                Ok(Obtained {
                    headers: vec![("authorization", token)],
                    lifetime,
                })
            })
        }
    }

    #[test]
    fn tokens_are_renewed_a_margin_before_they_expire() {
        assert_eq!(
            refresh_after(Duration::from_secs(3599)),
            Duration::from_secs(3559)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(8)),
            Duration::from_secs(6)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_reused_until_its_margin_then_renewed() {
        let issued = Rc::new(Cell::new(0));
        let source = Counting {
            issued: issued.clone(),
            lifetime: Duration::from_secs(3600),
        };
        let credential = Refreshing::new(Box::new(source), test_host(), None);
        assert_eq!(credential.headers().await.unwrap()[0].1, "Bearer t1");
        tokio::time::advance(Duration::from_secs(3500)).await;
        assert_eq!(credential.headers().await.unwrap()[0].1, "Bearer t1");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(credential.headers().await.unwrap()[0].1, "Bearer t2");
        assert_eq!(issued.get(), 2);
    }

    /// Hands out one token, then fails every time (a rotated secret, a provider that is down).
    struct FailingAfterFirst {
        asked: Rc<Cell<u32>>,
    }

    impl TokenSource for FailingAfterFirst {
        fn obtain(&self) -> LocalBoxFuture<'_, Result<Obtained, ApiError>> {
            self.asked.set(self.asked.get() + 1);
            let first = self.asked.get() == 1;
            Box::pin(async move {
                if first {
                    Ok(Obtained {
                        headers: vec![("authorization", "Bearer first-token".into())],
                        lifetime: Duration::from_secs(3600),
                    })
                } else {
                    Err(ApiError::SignIn {
                        message: "the identity provider refused".into(),
                        hint: None,
                    })
                }
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failed_renewal_the_cancel_still_has_the_token_in_hand() {
        let asked = Rc::new(Cell::new(0));
        let source = FailingAfterFirst {
            asked: asked.clone(),
        };
        let credential = Refreshing::new(Box::new(source), test_host(), None);
        assert_eq!(
            credential.headers().await.unwrap()[0].1,
            "Bearer first-token"
        );
        // The renewal is due 40 s before expiry, and fails: the request that asked is told.
        tokio::time::advance(Duration::from_secs(3561)).await;
        let failure = credential.headers().await.unwrap_err();
        assert!(failure.to_string().contains("refused"), "{failure}");
        // The next (the run's cancel) gets the token in hand: the workspace accepts it still.
        assert_eq!(
            credential.headers().await.unwrap()[0].1,
            "Bearer first-token"
        );
        // Not once it would be refused (30 s before expiry).
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(credential.headers().await.is_err());
        assert_eq!(
            asked.get(),
            3,
            "the provider is asked again only once the token is spent"
        );
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_token_and_one_renewal() {
        let issued = Rc::new(Cell::new(0));
        let source = Counting {
            issued: issued.clone(),
            lifetime: Duration::from_secs(3600),
        };
        let credential = Refreshing::new(Box::new(source), test_host(), None);
        let (a, b) = futures::join!(credential.headers(), credential.headers());
        assert_eq!(a.unwrap(), b.unwrap());
        assert_eq!(issued.get(), 1);
        // Two requests refused with the same token renew it once.
        let refused = credential.headers().await.unwrap();
        let (a, b) = futures::join!(credential.refresh(&refused), credential.refresh(&refused));
        assert!(a.unwrap() && b.unwrap());
        assert_eq!(issued.get(), 2);
        assert_eq!(credential.headers().await.unwrap()[0].1, "Bearer t2");
    }
}
