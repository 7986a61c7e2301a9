//! The native side of the HTTP seam: reqwest with rustls, trusting the operating system's
//! certificate store (and `SSL_CERT_FILE`/`SSL_CERT_DIR`, the usual way to add a company CA on
//! a self-hosted agent) as well as the bundled web PKI roots.

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::http::{
    timed_out, too_large, HttpRequest, HttpResponse, HttpResult, HttpTransport, TransportError,
    TransportKind,
};
use super::proxy::ProxySettings;

pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A proxy given here replaces the `HTTPS_PROXY`/`NO_PROXY` variables reqwest reads
    /// otherwise. Redirects are never followed: the token would go wherever they point.
    pub fn new(proxy: Option<&ProxySettings>) -> ReqwestTransport {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(proxy) = proxy {
            builder = builder.proxy(through(proxy.clone()));
        }
        ReqwestTransport {
            client: builder.build().unwrap_or_default(),
        }
    }
}

impl HttpTransport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'static, HttpResult> {
        let client = self.client.clone();
        let timeout = request.timeout;
        async move {
            match tokio::time::timeout(timeout, exchange(client, request)).await {
                Ok(result) => result,
                Err(_) => Err(timed_out(timeout)),
            }
        }
        .boxed_local()
    }
}

/// reqwest asks for each request whether it goes through the proxy: [`ProxySettings::route`]
/// answers, and its credentials are sent as the same header the Node side sends.
fn through(proxy: ProxySettings) -> reqwest::Proxy {
    let authorization = proxy
        .authorization()
        .and_then(|value| reqwest::header::HeaderValue::from_str(value).ok());
    let target = proxy.url().clone();
    let custom =
        reqwest::Proxy::custom(move |url| proxy.route(url.as_str()).map(|_| target.clone()));
    match authorization {
        Some(mut value) => {
            value.set_sensitive(true);
            custom.custom_http_auth(value)
        }
        None => custom,
    }
}

async fn exchange(client: reqwest::Client, request: HttpRequest) -> HttpResult {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .expect("the core sends standard methods");
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = builder.send().await.map_err(|e| classify(&e))?;
    let max = request.max_body;
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(too_large(max));
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.into())))
        .collect();
    // Counted while it streams: a body without Content-Length (chunked, or closed by the
    // server) is stopped as soon as it passes the limit, not after it was all read.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if body.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The kind of a reqwest failure, from the error types in its cause chain where they exist
/// (rustls' certificate errors); name resolution only reports text (getaddrinfo's messages
/// through std), so an unknown host is recognised by the words the resolvers use.
fn classify(error: &reqwest::Error) -> TransportError {
    let message = describe(error);
    let kind = if error.is_timeout() {
        TransportKind::TimedOut
    } else if causes(error).any(is_certificate_error) {
        TransportKind::Certificate
    } else {
        kind_from_text(&message)
    };
    TransportError { kind, message }
}

/// What only the words of an error tell: reqwest's for a proxy refusing the tunnel (407), and
/// the resolver's for a name that does not exist.
fn kind_from_text(message: &str) -> TransportKind {
    if message.contains("proxy authorization required") {
        TransportKind::ProxyAuthentication
    } else if UNKNOWN_HOST.iter().any(|marker| message.contains(marker)) {
        TransportKind::UnknownHost
    } else {
        TransportKind::Other
    }
}

/// getaddrinfo's "this name does not exist" (glibc, musl, macOS, Windows). A temporary DNS
/// failure (EAI_AGAIN: "Temporary failure in name resolution") is not among them: it is
/// retried like any other network error.
const UNKNOWN_HOST: [&str; 4] = [
    "Name or service not known",
    "No address associated with hostname",
    "nodename nor servname provided",
    "No such host is known",
];

fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| {
        // An io::Error's source() skips the error it wraps; get_ref() is that error.
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        }
    })
}

fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        error.downcast_ref::<rustls::Error>(),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::InvalidCertRevocationList(_)
        )
    )
}

/// reqwest's Display stops at the outermost layer ("error sending request for url (...)");
/// the causes say what actually happened (refused, reset, the TLS error).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "the request timed out".to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error).skip(1) {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_host_is_told_from_a_passing_network_fault() {
        use TransportKind::{Other, ProxyAuthentication, UnknownHost};
        let cases = [
            ("client error (Connect): dns error: failed to lookup address information: Name or service not known", UnknownHost),
            ("client error (Connect): dns error: failed to lookup address information: No address associated with hostname", UnknownHost),
            ("dns error: failed to lookup address information: nodename nor servname provided, or not known", UnknownHost),
            ("client error (Connect): dns error: failed to lookup address information: Temporary failure in name resolution", Other),
            ("client error (Connect): tcp connect error: Connection refused (os error 111)", Other),
            ("client error (Connect): tunnel error: proxy authorization required", ProxyAuthentication),
        ];
        for (message, kind) in cases {
            assert_eq!(kind_from_text(message), kind, "{message}");
        }
    }
}
