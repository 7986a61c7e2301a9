use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use tokio::sync::watch;

use super::http::Transport;
use super::native_http::ReqwestTransport;
use super::proxy::ProxySettings;
use super::Host;

/// The host of the native binary (and of in-process tests). Must be created inside a Tokio
/// runtime. Output is written through a shared sink so tests can capture it.
pub struct NativeHost {
    started: tokio::time::Instant,
    env: BTreeMap<String, String>,
    out: Arc<Mutex<dyn Write + Send>>,
    err: Arc<Mutex<dyn Write + Send>>,
    cancel_tx: Arc<watch::Sender<bool>>,
    status_bar: Option<indicatif::ProgressBar>,
    line_sink: Option<LineSink>,
}

/// Where [`NativeHost::with_line_sink`] sends each stdout line instead of writing it.
pub type LineSink = Box<dyn Fn(&str) + Send + Sync>;

impl NativeHost {
    /// A host writing to `out` and `err` with the given environment; cancel only through
    /// [`Self::canceller`].
    pub fn new(
        env: BTreeMap<String, String>,
        out: Arc<Mutex<dyn Write + Send>>,
        err: Arc<Mutex<dyn Write + Send>>,
    ) -> Self {
        let (cancel_tx, _) = watch::channel(false);
        NativeHost {
            started: tokio::time::Instant::now(),
            env,
            out,
            err,
            cancel_tx: Arc::new(cancel_tx),
            status_bar: None,
            line_sink: None,
        }
    }

    /// Hands each stdout line to `sink` instead of writing it (the demo renders them).
    pub fn with_line_sink(mut self, sink: LineSink) -> Self {
        self.line_sink = Some(sink);
        self
    }

    /// The real process: stdout, stderr, and SIGINT/SIGTERM as the cancel signal, with `env`
    /// as the environment the task reads.
    pub fn for_process(env: BTreeMap<String, String>, live_status: bool) -> Self {
        let mut host = NativeHost::new(
            env,
            Arc::new(Mutex::new(std::io::stdout())),
            Arc::new(Mutex::new(std::io::stderr())),
        );
        let tx = host.cancel_tx.clone();
        tokio::spawn(async move {
            wait_for_stop_signal().await;
            tx.send_replace(true);
        });
        if live_status {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            host.status_bar = Some(bar);
        }
        host
    }

    /// Writes a whole line at once, above the live status line when there is one.
    fn write_to(&self, sink: &Mutex<dyn Write + Send>, line: &str) {
        self.above_status(|| {
            let mut sink = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = writeln!(sink, "{line}");
            let _ = sink.flush();
        });
    }

    fn above_status(&self, write: impl FnOnce()) {
        match &self.status_bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// A handle that triggers the cancel signal, as SIGINT would.
    pub fn canceller(&self) -> impl Fn() + Send + Sync + 'static {
        let tx = self.cancel_tx.clone();
        move || {
            tx.send_replace(true);
        }
    }
}

#[cfg(unix)]
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return futures::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

impl Host for NativeHost {
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn unix_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()> {
        tokio::time::sleep(duration).boxed_local()
    }

    fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    fn write_line(&self, line: &str) {
        match &self.line_sink {
            Some(sink) => self.above_status(|| sink(line)),
            None => self.write_to(&self.out, line),
        }
    }

    fn write_err_line(&self, line: &str) {
        self.write_to(&self.err, line);
    }

    fn status(&self, text: Option<&str>) {
        if let Some(bar) = &self.status_bar {
            match text {
                Some(text) => bar.set_message(text.to_string()),
                None => bar.finish_and_clear(),
            }
        }
    }

    fn cancelled(&self) -> LocalBoxFuture<'static, ()> {
        let mut rx = self.cancel_tx.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
        .boxed_local()
    }

    fn read_bytes(&self, path: &str, max_bytes: usize) -> std::io::Result<Vec<u8>> {
        read_bounded(std::path::Path::new(path), max_bytes)
    }

    fn list_dir(&self, path: &str) -> std::io::Result<Vec<super::DirEntry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            // `file_type` does not follow symbolic links: a link is neither a folder nor a file.
            let kind = entry.file_type()?;
            entries.push(super::DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_dir: kind.is_dir(),
                is_file: kind.is_file(),
            });
        }
        Ok(entries)
    }

    fn file_size(&self, path: &str) -> std::io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn write_file(&self, path: &str, contents: &str) -> std::io::Result<()> {
        std::fs::write(path, contents)
    }

    fn transport(&self, proxy: Option<&ProxySettings>) -> Transport {
        Rc::new(ReqwestTransport::new(proxy))
    }

    fn load_certificate(
        &self,
        pem: &str,
    ) -> Result<Rc<dyn super::certificate::SigningCertificate>, String> {
        super::certificate::load(pem)
    }
}

/// Reads a regular file of at most `max_bytes` as text. Anything else is refused before it
/// is read: a device such as /dev/zero never ends, and a FIFO waits for a writer forever.
pub fn read_small_file(path: &std::path::Path, max_bytes: usize) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, max_bytes)?)
        .map_err(|_| std::io::Error::other("it is not UTF-8 text"))
}

/// The bytes of a regular file of at most `max_bytes`.
pub fn read_bounded(path: &std::path::Path, max_bytes: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    // Checked on the path first, so a FIFO is never opened (opening one blocks).
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let file = std::fs::File::open(path)?;
    let too_large = || std::io::Error::other(format!("it is larger than {max_bytes} bytes"));
    if file.metadata()?.len() > max_bytes as u64 {
        return Err(too_large());
    }
    // The file may grow after the check: the read itself is bounded too.
    let mut bytes = Vec::new();
    file.take(max_bytes as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}
