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
}

pub struct Refreshing {
    source: Box<dyn TokenSource>,
    host: Rc<dyn Host>,
    current: RefCell<Option<Current>>,
    renewing: Mutex<()>,
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
        });
        Ok(obtained.headers)
    }
}

impl Credential for Refreshing {
    fn headers(&self) -> LocalBoxFuture<'_, Result<CredentialHeaders, ApiError>> {
        Box::pin(async move {
            if let Some(headers) = self.valid() {
                return Ok(headers);
            }
            let _renewing = self.renewing.lock().await;
            // Another request may have renewed it while this one waited.
            if let Some(headers) = self.valid() {
                return Ok(headers);
            }
            self.renew().await
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
