//! For unit tests: a transport that answers from a script, and a quiet host.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{ready, LocalBoxFuture};

use super::RetryPolicy;
use crate::host::http::{HttpRequest, HttpResponse, HttpResult, HttpTransport};
use crate::host::NativeHost;

/// Answers with the scripted statuses in turn (then 200), with the body `body(status,
/// authorization sent)`, and remembers each `Authorization` value sent.
pub struct Scripted {
    statuses: RefCell<VecDeque<u16>>,
    body: fn(u16, &str) -> String,
    seen: Rc<RefCell<Vec<String>>>,
}

impl Scripted {
    pub fn new(
        statuses: &[u16],
        body: fn(u16, &str) -> String,
    ) -> (Rc<Scripted>, Rc<RefCell<Vec<String>>>) {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let transport = Scripted {
            statuses: RefCell::new(statuses.iter().copied().collect()),
            body,
            seen: seen.clone(),
        };
        (Rc::new(transport), seen)
    }
}

impl HttpTransport for Scripted {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'static, HttpResult> {
        let authorization = request
            .headers
            .iter()
            .find(|(name, _)| *name == "authorization")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        self.seen.borrow_mut().push(authorization.clone());
        let status = self.statuses.borrow_mut().pop_front().unwrap_or(200);
        Box::pin(ready(Ok(HttpResponse {
            status,
            headers: Vec::new(),
            body: (self.body)(status, &authorization).into_bytes(),
        })))
    }
}

/// A host with an empty environment whose output goes nowhere (inside a Tokio runtime).
pub fn test_host() -> Rc<NativeHost> {
    let sink = Arc::new(Mutex::new(Vec::<u8>::new()));
    Rc::new(NativeHost::new(BTreeMap::new(), sink.clone(), sink))
}

/// Retries without waiting to speak of.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    }
}
