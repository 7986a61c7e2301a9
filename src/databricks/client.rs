//! The Databricks workspace client: the workspace URL, the credential slot and the Databricks
//! error envelope, on top of the REST layer (`rest/`), which sends, retries and reads answers.

use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{parse_error_body, ApiError};
use super::workspace_url::WorkspaceUrl;
use crate::host::http::Transport;
use crate::host::proxy::ProxySettings;
use crate::host::Host;
use crate::rest::{
    Answer, Body, Caller, Credential, CredentialHeaders, Masker, Method, Notice, Request,
    RetryPolicy,
};

pub struct Client {
    caller: Caller,
    base: WorkspaceUrl,
    credential: Rc<dyn Credential>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Deliberately without the credential.
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `databricks-azdo/<version>`, plus `cicd/azure-devops` inside a pipeline, as the SDKs do.
pub fn user_agent(in_pipeline: bool) -> String {
    let mut agent = format!("databricks-azdo/{}", env!("CARGO_PKG_VERSION"));
    if in_pipeline {
        agent.push_str(" cicd/azure-devops");
    }
    agent
}

impl Client {
    pub fn new(
        base: WorkspaceUrl,
        credential: Rc<dyn Credential>,
        user_agent: String,
        policy: RetryPolicy,
        host: Rc<dyn Host>,
    ) -> Client {
        Client {
            caller: Caller::new(user_agent, policy, host),
            base,
            credential,
        }
    }

    /// A client whose requests go through `caller` (configured with its proxy, masking, notices
    /// and traces).
    pub fn from_caller(
        base: WorkspaceUrl,
        credential: Rc<dyn Credential>,
        caller: Caller,
    ) -> Client {
        Client {
            caller,
            base,
            credential,
        }
    }

    /// Sends every request through the agent's proxy.
    pub fn with_proxy(mut self, proxy: &ProxySettings) -> Client {
        self.caller.set_proxy(proxy);
        self
    }

    /// Sends every request through `transport` instead of the host's.
    pub fn with_transport(mut self, transport: Transport) -> Client {
        self.caller.set_transport(transport);
        self
    }

    /// Bounds every request from now on, retries included, by `deadline` on the host's clock
    /// (`None`: no bound beyond the retry budget). A request that would pass it fails with
    /// [`ApiError::OutOfTime`].
    pub fn set_deadline(&self, deadline: Option<Duration>) {
        self.caller.set_deadline(deadline);
    }

    /// Masks server texts with `masker` before they are shortened into errors and notices.
    pub fn with_masker(mut self, masker: Masker) -> Client {
        self.caller.set_masker(masker);
        self
    }

    pub fn with_notice(mut self, notice: Notice) -> Client {
        self.caller.set_notice(notice);
        self
    }

    /// Told about every attempt (method, path, status, time): for debug logs.
    pub fn with_trace(mut self, trace: Notice) -> Client {
        self.caller.set_trace(trace);
        self
    }

    pub fn base(&self) -> &WorkspaceUrl {
        &self.base
    }

    pub fn host(&self) -> &dyn Host {
        self.caller.host()
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        self.call(Method::Get, path, query, None::<&()>).await
    }

    pub(crate) async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(method, path, &[], Some(body)).await
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let body =
            body.map(|b| Body::json(serde_json::to_vec(b).expect("request bodies serialize")));
        let request = self.request(method, path, query, body);
        let (answer, started) = self.call_answer(&request).await?;
        self.caller
            .read_traced(&request.label(), started, Ok(answer))
    }

    /// A call whose answer is not JSON (the Files API answers with the file itself, or with
    /// nothing): its body as it came.
    pub(crate) async fn call_raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<Vec<u8>, ApiError> {
        let request = self.request(method, path, query, body);
        let (answer, started) = self.call_answer(&request).await?;
        self.caller.traced(&request.label(), started, None);
        Ok(answer.into_bytes())
    }

    /// The retried part of a call, written once for every answer type: the answer comes back
    /// unread, with the time its attempt started (for the trace, told once it is read).
    async fn call_answer(&self, request: &Request) -> Result<(Answer, Duration), ApiError> {
        let attempt = || async {
            let started = self.host().elapsed();
            match self.exchange(request.clone()).await {
                Ok(answer) => Ok((answer, started)),
                Err(error) => {
                    self.caller.traced(&request.label(), started, Some(&error));
                    Err(error)
                }
            }
        };
        self.retrying(request, attempt, || async { None }).await
    }

    /// A request to the workspace, without its credential (each attempt asks for it).
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Request {
        let mut url = self.base.join(path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        Request {
            method,
            url,
            path: path.to_string(),
            headers: Vec::new(),
            body,
        }
    }

    /// See [`Caller::retrying`].
    pub(crate) async fn retrying<T, A, AF, R, RF>(
        &self,
        request: &Request,
        attempt: A,
        reconcile: R,
    ) -> Result<T, ApiError>
    where
        A: FnMut() -> AF,
        AF: std::future::Future<Output = Result<T, ApiError>>,
        R: FnMut() -> RF,
        RF: std::future::Future<Output = Option<T>>,
    {
        self.caller
            .retrying(&request.label(), attempt, reconcile)
            .await
    }

    /// One attempt with the credential's current value; a 401 is answered by one refresh of
    /// the credential and one more attempt, when the credential has something new to give.
    pub(crate) async fn attempt<T: DeserializeOwned>(
        &self,
        request: Request,
    ) -> Result<T, ApiError> {
        let started = self.host().elapsed();
        let label = request.label();
        let exchanged = self.exchange(request).await;
        self.caller.read_traced(&label, started, exchanged)
    }

    async fn exchange(&self, request: Request) -> Result<Answer, ApiError> {
        let sent = self.credential.headers().await?;
        let result = match self.exchange_with(request.clone(), sent.clone()).await {
            Err(error) if error.status() == Some(401) => {
                if self.credential.refresh(&sent).await? {
                    let renewed = self.credential.headers().await?;
                    self.exchange_with(request, renewed).await
                } else {
                    Err(error)
                }
            }
            other => other,
        };
        result.map_err(|error| self.explain_refusal(error))
    }

    /// A refused credential is explained by the credential itself: where it came from and
    /// what to check (a personal access token leaves the generic hints).
    fn explain_refusal(&self, error: ApiError) -> ApiError {
        let refused = match error.status() {
            Some(401) => true,
            Some(403) => {
                let message = error.message().to_ascii_lowercase();
                [
                    "token",
                    "not authorized",
                    "unauthorized",
                    "not a member",
                    "identity",
                    "principal",
                ]
                .iter()
                .any(|word| message.contains(word))
            }
            _ => false,
        };
        match self.credential.refused_hint() {
            Some(hint) if refused => ApiError::Hinted {
                error: Box::new(error),
                hint,
            },
            _ => error,
        }
    }

    async fn exchange_with(
        &self,
        mut request: Request,
        credential: CredentialHeaders,
    ) -> Result<Answer, ApiError> {
        request.headers.extend(credential);
        self.caller.exchange(request, parse_error_body).await
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use futures::future::{ready, LocalBoxFuture};

    use super::Client;
    use crate::databricks::{ApiError, WorkspaceUrl};
    use crate::rest::scripted::{fast_retries, test_host, Scripted};
    use crate::rest::{Credential, CredentialHeaders, StaticToken};

    #[test]
    fn user_agent_names_us_and_the_pipeline() {
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            super::user_agent(false),
            format!("databricks-azdo/{version}")
        );
        assert_eq!(
            super::user_agent(true),
            format!("databricks-azdo/{version} cicd/azure-devops")
        );
    }

    /// A token that expires: each refresh hands out the next one.
    #[derive(Default)]
    struct Expiring {
        generation: Cell<u32>,
        refreshes: Cell<u32>,
        asked: Cell<u32>,
    }

    impl Credential for Expiring {
        fn headers(&self) -> LocalBoxFuture<'_, Result<CredentialHeaders, ApiError>> {
            self.asked.set(self.asked.get() + 1);
            let value = format!("Bearer token-{}", self.generation.get());
            Box::pin(ready(Ok(vec![("authorization", value)])))
        }
        fn refresh<'a>(
            &'a self,
            _refused: &'a CredentialHeaders,
        ) -> LocalBoxFuture<'a, Result<bool, ApiError>> {
            self.refreshes.set(self.refreshes.get() + 1);
            self.generation.set(self.generation.get() + 1);
            Box::pin(ready(Ok(true)))
        }
    }

    fn scripted_client(
        credential: Rc<dyn Credential>,
        statuses: &[u16],
    ) -> (Client, Rc<RefCell<Vec<String>>>) {
        let (transport, seen) = Scripted::new(statuses, |status, authorization| {
            if status == 200 {
                r#"{"objects":[]}"#.to_string()
            } else {
                // A server that repeats the credential it refused.
                format!(r#"{{"error_code":"{status}","message":"refused {authorization}"}}"#)
            }
        });
        let (host, policy) = (test_host(), fast_retries());
        let url = WorkspaceUrl::parse("https://adb-1.2.azuredatabricks.net").unwrap();
        let client =
            Client::new(url, credential, "test".into(), policy, host).with_transport(transport);
        (client, seen)
    }

    #[tokio::test]
    async fn a_401_is_answered_by_one_refresh_and_one_retry() {
        let credential = Rc::new(Expiring::default());
        let (client, seen) = scripted_client(credential.clone(), &[401]);
        client.list_objects("/Repos").await.unwrap();
        assert_eq!(*seen.borrow(), ["Bearer token-0", "Bearer token-1"]);
        assert_eq!(credential.refreshes.get(), 1);

        // A refused fresh token stands: no second refresh, no loop.
        let credential = Rc::new(Expiring::default());
        let (client, seen) = scripted_client(credential.clone(), &[401, 401, 401]);
        let error = client.list_objects("/Repos").await.unwrap_err();
        assert_eq!(error.status(), Some(401));
        assert_eq!(seen.borrow().len(), 2);
        assert_eq!(credential.refreshes.get(), 1);
        // The refused credential, repeated by the server, is hidden in the error.
        assert!(!error.to_string().contains("token-1"), "{error}");
    }

    #[tokio::test]
    async fn a_personal_access_token_has_nothing_to_refresh() {
        let (client, seen) = scripted_client(Rc::new(StaticToken::new("dapi-secret")), &[401]);
        let error = client.list_objects("/Repos").await.unwrap_err();
        assert_eq!(error.status(), Some(401));
        assert_eq!(*seen.borrow(), ["Bearer dapi-secret"]);
        assert!(!error.to_string().contains("dapi-secret"), "{error}");
    }

    #[tokio::test]
    async fn every_retry_asks_the_credential_again() {
        let credential = Rc::new(Expiring::default());
        let (client, seen) = scripted_client(credential.clone(), &[503, 503]);
        client.list_objects("/Repos").await.unwrap();
        assert_eq!(seen.borrow().len(), 3);
        assert_eq!(credential.asked.get(), 3);
        assert_eq!(credential.refreshes.get(), 0);
    }
}
