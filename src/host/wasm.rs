use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use js_sys::{Date, Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::certificate::SigningCertificate;
use super::http::Transport;
use super::proxy::ProxySettings;
use super::wasm_http::NodeTransport;
use super::Host;

/// The host inside the agent's Node process: time from `Date`, timers from `setTimeout`, and
/// output, file reads and the abort signal through functions `index.js` hands over.
pub struct WasmHost {
    started: f64,
    env: BTreeMap<String, String>,
    write: Function,
    write_err: Function,
    read_bytes: Function,
    list_dir: Function,
    file_size: Function,
    write_file: Function,
    request: Function,
    certificate: Function,
    cancelled: Promise,
}

impl WasmHost {
    /// `io` carries `write(line)`, `writeErr(line)`, `readBytes(path, maxBytes) -> Uint8Array`,
    /// `listDir(path) -> [{name, dir, file}]`, `fileSize(path) -> number`,
    /// `writeFile(path, text)`, `request(spec) -> { promise, abort }` (`task/http.js`),
    /// `certificate(pem) -> { sha1, sha256, sign(bytes) }` (Node's `crypto`, in `index.js`) and
    /// `cancelled` (a Promise that resolves when the step is cancelled).
    pub fn new(env: BTreeMap<String, String>, io: &JsValue) -> Result<WasmHost, String> {
        let field = |name: &str| {
            js_sys::Reflect::get(io, &JsValue::from_str(name))
                .map_err(|_| format!("io.{name} is missing"))
        };
        let function = |name: &str| {
            field(name)?
                .dyn_into::<Function>()
                .map_err(|_| format!("io.{name} is not a function"))
        };
        Ok(WasmHost {
            started: Date::now(),
            env,
            write: function("write")?,
            write_err: function("writeErr")?,
            read_bytes: function("readBytes")?,
            list_dir: function("listDir")?,
            file_size: function("fileSize")?,
            write_file: function("writeFile")?,
            request: function("request")?,
            certificate: function("certificate")?,
            cancelled: field("cancelled")?
                .dyn_into::<Promise>()
                .map_err(|_| "io.cancelled is not a Promise".to_string())?,
        })
    }
}

impl Host for WasmHost {
    fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(((Date::now() - self.started) / 1000.0).max(0.0))
    }

    fn unix_millis(&self) -> u64 {
        Date::now() as u64
    }

    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()> {
        let millis = duration.as_millis().min(u32::MAX as u128) as u32;
        Box::pin(gloo_timers::future::TimeoutFuture::new(millis))
    }

    fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    fn write_line(&self, line: &str) {
        let _ = self.write.call1(&JsValue::NULL, &JsValue::from_str(line));
    }

    fn write_err_line(&self, line: &str) {
        let _ = self
            .write_err
            .call1(&JsValue::NULL, &JsValue::from_str(line));
    }

    fn cancelled(&self) -> LocalBoxFuture<'static, ()> {
        let signal = JsFuture::from(self.cancelled.clone());
        Box::pin(async move {
            let _ = signal.await;
        })
    }

    fn read_bytes(&self, path: &str, max_bytes: usize) -> std::io::Result<Vec<u8>> {
        let bytes = self
            .read_bytes
            .call2(
                &JsValue::NULL,
                &JsValue::from_str(path),
                &JsValue::from_f64(max_bytes as f64),
            )
            .map_err(io_error)?;
        bytes
            .dyn_into::<js_sys::Uint8Array>()
            .map(|array| array.to_vec())
            .map_err(|_| std::io::Error::other("readBytes did not return bytes"))
    }

    fn list_dir(&self, path: &str) -> std::io::Result<Vec<super::DirEntry>> {
        let listed = self
            .list_dir
            .call1(&JsValue::NULL, &JsValue::from_str(path))
            .map_err(io_error)?;
        let field = |entry: &JsValue, name: &str| {
            js_sys::Reflect::get(entry, &JsValue::from_str(name)).ok()
        };
        Ok(js_sys::Array::from(&listed)
            .iter()
            .filter_map(|entry| {
                Some(super::DirEntry {
                    name: field(&entry, "name")?.as_string()?,
                    is_dir: field(&entry, "dir")?.as_bool()?,
                    is_file: field(&entry, "file")?.as_bool()?,
                })
            })
            .collect())
    }

    fn file_size(&self, path: &str) -> std::io::Result<u64> {
        let size = self
            .file_size
            .call1(&JsValue::NULL, &JsValue::from_str(path))
            .map_err(io_error)?;
        size.as_f64()
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64)
            .ok_or_else(|| std::io::Error::other("fileSize did not return a size"))
    }

    fn write_file(&self, path: &str, contents: &str) -> std::io::Result<()> {
        self.write_file
            .call2(
                &JsValue::NULL,
                &JsValue::from_str(path),
                &JsValue::from_str(contents),
            )
            .map(drop)
            .map_err(io_error)
    }

    fn transport(&self, proxy: Option<&ProxySettings>) -> Transport {
        Rc::new(NodeTransport {
            request: self.request.clone(),
            proxy: proxy.cloned(),
        })
    }

    fn load_certificate(&self, pem: &str) -> Result<Rc<dyn SigningCertificate>, String> {
        let loaded = self
            .certificate
            .call1(&JsValue::NULL, &JsValue::from_str(pem))
            .map_err(|e| io_error(e).to_string())?;
        let bytes = |name: &str| {
            js_sys::Reflect::get(&loaded, &JsValue::from_str(name))
                .ok()
                .filter(|v| v.is_object())
                .map(|v| js_sys::Uint8Array::new(&v).to_vec())
                .ok_or_else(|| format!("the certificate has no {name} thumbprint"))
        };
        let sign = js_sys::Reflect::get(&loaded, &JsValue::from_str("sign"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or("the certificate cannot sign")?;
        Ok(Rc::new(NodeCertificate {
            sha1: bytes("sha1")?,
            sha256: bytes("sha256")?,
            sign,
        }))
    }
}

/// A certificate and key held by Node's `crypto` module.
struct NodeCertificate {
    sha1: Vec<u8>,
    sha256: Vec<u8>,
    sign: Function,
}

impl SigningCertificate for NodeCertificate {
    fn thumbprint_sha1(&self) -> Vec<u8> {
        self.sha1.clone()
    }

    fn thumbprint_sha256(&self) -> Vec<u8> {
        self.sha256.clone()
    }

    fn sign_rs256(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let signed = self
            .sign
            .call1(&JsValue::NULL, &js_sys::Uint8Array::from(data))
            .map_err(|e| io_error(e).to_string())?;
        Ok(js_sys::Uint8Array::new(&signed).to_vec())
    }
}

/// A JavaScript exception (from `fs`) as an I/O error carrying its message.
fn io_error(error: JsValue) -> std::io::Error {
    let message = js_sys::Reflect::get(&error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| "file system error".to_string());
    std::io::Error::other(message)
}
