//! The platform seam: everything the core needs from the outside world that differs between
//! the native binary and the wasm module loaded by the agent's Node handler.
//!
//! The core never calls `std::time`, `std::env`, `println!` or a runtime directly: on wasm32
//! `Instant::now()` traps, the environment is empty and stdout goes nowhere.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::LocalBoxFuture;

pub mod certificate;
pub mod http;
pub mod proxy;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
mod native_http;
#[cfg(not(target_arch = "wasm32"))]
pub use native::{read_small_file, LineSink, NativeHost};
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
mod wasm_http;
#[cfg(target_arch = "wasm32")]
pub use wasm::WasmHost;

use std::rc::Rc;

use self::certificate::SigningCertificate;
use self::http::Transport;
use self::proxy::ProxySettings;

/// The largest file an input may point at (a cluster spec, a token file).
pub const MAX_INPUT_FILE_BYTES: usize = 1024 * 1024;

pub trait Host {
    /// Monotonic time since the host was created.
    fn elapsed(&self) -> Duration;
    /// Wall-clock milliseconds since the Unix epoch (for seeds and tokens, never for timing).
    fn unix_millis(&self) -> u64;
    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()>;
    /// The process environment, read once: the agent passes inputs and variables this way.
    fn env(&self) -> &BTreeMap<String, String>;
    /// Writes one line (no trailing newline) to standard output, immediately.
    fn write_line(&self, line: &str);
    /// Writes one line to standard error (diagnostics when stdout carries a JSON document).
    fn write_err_line(&self, line: &str);
    /// Terminal mode only: replaces the transient status line (`None` clears it).
    fn status(&self, _text: Option<&str>) {}
    /// Resolves once the process was asked to stop (SIGINT/SIGTERM, or the agent's abort signal).
    fn cancelled(&self) -> LocalBoxFuture<'static, ()>;
    /// Reads a text file the user pointed an input at (e.g. a cluster spec): only a regular
    /// file (not a device or a FIFO, which may never end), of at most `max_bytes`.
    fn read_file(&self, path: &str, max_bytes: usize) -> std::io::Result<String> {
        String::from_utf8(self.read_bytes(path, max_bytes)?)
            .map_err(|_| std::io::Error::other("it is not UTF-8 text"))
    }
    /// As [`Host::read_file`], any bytes (a wheel to upload).
    fn read_bytes(&self, path: &str, max_bytes: usize) -> std::io::Result<Vec<u8>>;
    /// The entries of a folder (the agent's checkout, for notebook globs): names, and whether
    /// each is a folder or a regular file. Symbolic links are neither, and are not followed.
    fn list_dir(&self, path: &str) -> std::io::Result<Vec<DirEntry>>;
    /// The size of a file, in bytes (checked before anything is sent).
    fn file_size(&self, path: &str) -> std::io::Result<u64>;
    /// Writes a report file (JUnit results, the run summary) for the agent to pick up.
    fn write_file(&self, path: &str, contents: &str) -> std::io::Result<()>;
    /// Where requests go out (see [`http`]); through the agent's `proxy` when it has one.
    fn transport(&self, proxy: Option<&ProxySettings>) -> Transport;
    /// Parses a certificate with its private key (PEM) for signing client assertions; the
    /// error says what is wrong without quoting the text.
    fn load_certificate(&self, pem: &str) -> Result<Rc<dyn SigningCertificate>, String>;
}

/// One entry of [`Host::list_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    pub is_file: bool,
}

/// Races `work` against the host's cancel signal.
pub async fn or_cancelled<T>(
    host: &dyn Host,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    use futures::future::{select, Either};
    let work = std::pin::pin!(work);
    match select(work, host.cancelled()).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(((), _)) => None,
    }
}
