//! How a capture server is configured.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::CapturedMessage;

/// Called on a connection's thread for each accepted message, after it is
/// stored and before the client gets its `250` reply. Keep it short.
pub type MessageCallback = Arc<dyn Fn(&CapturedMessage) + Send + Sync>;

/// Default for [`CaptureOptions::max_message_size`]: 35 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 35 * 1024 * 1024;

/// Settings for [`CaptureServer::start`](crate::CaptureServer::start).
///
/// `CaptureOptions::default()` listens on `127.0.0.1:0` (a free loopback
/// port), keeps messages in memory only and accepts mail from anyone who can
/// reach the port: the server has no authentication and no TLS, so bind it to
/// a non-loopback address only on a network you trust.
#[derive(Clone)]
pub struct CaptureOptions {
    /// Address to listen on; port 0 picks a free port (see
    /// [`CaptureServer::local_addr`](crate::CaptureServer::local_addr)).
    pub listen: SocketAddr,
    /// If set, each message is also written there as `<id>.eml` (the raw
    /// content) and then `<id>.json` (the envelope), each via a temporary file
    /// and a rename. The directory is created if missing.
    pub dir: Option<PathBuf>,
    /// Largest content accepted, in bytes after dot-unstuffing; advertised as
    /// `SIZE` and refused with `552 5.3.4`.
    pub max_message_size: usize,
    /// Name in the greeting and the `EHLO` reply.
    pub hostname: String,
    /// Called for each accepted message (e.g. to print it as it arrives).
    pub on_message: Option<MessageCallback>,
    /// Most connections served at once; further ones get `421` and are closed.
    pub max_connections: usize,
    /// A connection silent for this long gets `421` and is closed.
    pub idle_timeout: Duration,
    /// Most messages kept in memory (the oldest are dropped first); `None`
    /// keeps all. Files in [`dir`](Self::dir) are never removed.
    pub retain_in_memory: Option<usize>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            dir: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            hostname: "smtp-mailer-capture".to_owned(),
            on_message: None,
            max_connections: 64,
            idle_timeout: Duration::from_secs(300),
            retain_in_memory: None,
        }
    }
}

impl CaptureOptions {
    /// Sets [`listen`](Self::listen).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Sets [`dir`](Self::dir).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets [`on_message`](Self::on_message).
    pub fn on_message(mut self, f: impl Fn(&CapturedMessage) + Send + Sync + 'static) -> Self {
        self.on_message = Some(Arc::new(f));
        self
    }
}

impl fmt::Debug for CaptureOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureOptions")
            .field("listen", &self.listen)
            .field("dir", &self.dir)
            .field("max_message_size", &self.max_message_size)
            .field("hostname", &self.hostname)
            .field("on_message", &self.on_message.as_ref().map(|_| "Fn"))
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("retain_in_memory", &self.retain_in_memory)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_35_mib() {
        let options = CaptureOptions::default();
        assert!(options.listen.ip().is_loopback());
        assert_eq!(options.listen.port(), 0);
        assert_eq!(options.max_message_size, 35 * 1024 * 1024);
        assert_eq!(options.hostname, "smtp-mailer-capture");
        assert!(format!("{options:?}").contains("max_connections: 64"));
    }
}
