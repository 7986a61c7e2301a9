//! The wasm side of the HTTP seam: the `request` function `index.js` hands over
//! (`task/http.js`, over Node's http/https). Each request carries its proxy route, decided
//! here; Node only opens the tunnel. Dropping a request's future aborts it in Node.

use futures::future::LocalBoxFuture;
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::http::{
    HttpRequest, HttpResponse, HttpResult, HttpTransport, TransportError, TransportKind,
};
use super::proxy::{ProxyRoute, ProxySettings};

pub struct NodeTransport {
    pub(super) request: Function,
    pub(super) proxy: Option<ProxySettings>,
}

/// Calls `abort()` of a request still in flight when its future is dropped.
struct AbortOnDrop {
    abort: Option<Function>,
}

impl AbortOnDrop {
    /// The request settled: nothing to abort any more.
    fn disarm(&mut self) {
        self.abort = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(abort) = self.abort.take() {
            let _ = abort.call0(&JsValue::NULL);
        }
    }
}

fn get(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn set(object: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(name), value);
}

fn route(route: Option<ProxyRoute>) -> JsValue {
    let Some(route) = route else {
        return JsValue::NULL;
    };
    let object = Object::new();
    set(&object, "host", &JsValue::from_str(&route.host));
    set(&object, "port", &JsValue::from_f64(f64::from(route.port)));
    set(&object, "secure", &JsValue::from_bool(route.secure));
    let authorization = match &route.authorization {
        Some(value) => JsValue::from_str(value),
        None => JsValue::NULL,
    };
    set(&object, "authorization", &authorization);
    object.into()
}

fn spec(request: &HttpRequest, proxy: Option<ProxyRoute>) -> Object {
    let spec = Object::new();
    set(&spec, "method", &JsValue::from_str(request.method));
    set(&spec, "url", &JsValue::from_str(&request.url));
    let headers = Array::new();
    for (name, value) in &request.headers {
        let pair = Array::of2(&JsValue::from_str(name), &JsValue::from_str(value));
        headers.push(&pair);
    }
    set(&spec, "headers", &headers);
    let body = match &request.body {
        Some(body) => Uint8Array::from(body.as_slice()).into(),
        None => JsValue::NULL,
    };
    set(&spec, "body", &body);
    set(
        &spec,
        "timeoutMs",
        &JsValue::from_f64(request.timeout.as_millis() as f64),
    );
    set(
        &spec,
        "maxBytes",
        &JsValue::from_f64(request.max_body as f64),
    );
    set(&spec, "proxy", &route(proxy));
    spec
}

fn failure(error: JsValue) -> TransportError {
    let text = |name| get(&error, name).as_string();
    TransportError {
        kind: TransportKind::from_name(&text("kind").unwrap_or_default()),
        message: text("message")
            .or_else(|| error.as_string())
            .unwrap_or_else(|| "the request failed in Node.js".into()),
    }
}

fn response(answer: JsValue) -> HttpResponse {
    let headers = Array::from(&get(&answer, "headers"))
        .iter()
        .filter_map(|pair| {
            let pair = Array::from(&pair);
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
        })
        .collect();
    HttpResponse {
        status: get(&answer, "status").as_f64().unwrap_or(0.0) as u16,
        headers,
        body: Uint8Array::new(&get(&answer, "body")).to_vec(),
    }
}

impl HttpTransport for NodeTransport {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'static, HttpResult> {
        // The request starts now; the guard is taken now too, so a future dropped before it
        // is ever polled still aborts it.
        let proxy = self.proxy.as_ref().and_then(|p| p.route(&request.url));
        let handle = match self.request.call1(&JsValue::NULL, &spec(&request, proxy)) {
            Ok(handle) => handle,
            Err(error) => return Box::pin(futures::future::ready(Err(failure(error)))),
        };
        let guard = AbortOnDrop {
            abort: get(&handle, "abort").dyn_into::<Function>().ok(),
        };
        Box::pin(async move {
            let mut guard = guard;
            let promise: Promise = get(&handle, "promise")
                .dyn_into()
                .map_err(|_| failure(JsValue::from_str("io.request returned no promise")))?;
            let outcome = JsFuture::from(promise).await;
            guard.disarm();
            outcome.map(response).map_err(failure)
        })
    }
}
