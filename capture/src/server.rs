//! The public server handle and its accept loop.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::shared::Shared;
use crate::{connection, store, CaptureError, CaptureOptions, CapturedMessage};

/// How long stopping waits for connections to finish their last reply.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// A running SMTP capture server.
///
/// It accepts connections on a thread of its own and serves each on another
/// thread, up to [`CaptureOptions::max_connections`] at once. Dropping the
/// handle stops it like [`shutdown`](Self::shutdown).
pub struct CaptureServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl CaptureServer {
    /// Binds [`CaptureOptions::listen`], prepares [`CaptureOptions::dir`] (if
    /// set) and starts accepting; returns as soon as the port is open.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Bind`] if the address cannot be bound,
    /// [`CaptureError::Dir`] if the directory cannot be created or listed,
    /// [`CaptureError::Io`] if a thread cannot be spawned.
    pub fn start(options: CaptureOptions) -> Result<Self, CaptureError> {
        let addr = options.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| CaptureError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| CaptureError::Io {
            context: "reading the bound address",
            source,
        })?;
        let first_id = match &options.dir {
            None => 1,
            Some(dir) => {
                let dir_error = |source| CaptureError::Dir {
                    path: dir.clone(),
                    source,
                };
                fs::create_dir_all(dir).map_err(dir_error)?;
                store::highest_id(dir).map_err(dir_error)?.saturating_add(1)
            }
        };
        let shared = Arc::new(Shared::new(options, first_id));
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("smtp-capture-accept".into())
                .spawn(move || accept_loop(&shared, &listener))
                .map_err(|source| CaptureError::Io {
                    context: "spawning the accept thread",
                    source,
                })?
        };
        Ok(Self {
            shared,
            local_addr,
            accept: Some(accept),
        })
    }

    /// The address the server listens on (with the real port if port 0 was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The messages received so far, oldest first (at most
    /// [`CaptureOptions::retain_in_memory`] of them).
    pub fn messages(&self) -> Vec<CapturedMessage> {
        self.shared.messages()
    }

    /// Waits until at least `n` messages have arrived since the start, or
    /// `timeout` passes, then returns [`messages`](Self::messages). On timeout
    /// the result simply has fewer than `n` messages.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<CapturedMessage> {
        self.shared.wait_for(n, Instant::now().checked_add(timeout))
    }

    /// Stops accepting, closes all connections and waits for the server's
    /// threads to end. Idle clients get `421 4.3.2`; a message still being
    /// transferred is lost, one already stored still gets its `250`.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stop();
        // Wake the blocking accept() with a connection of our own.
        let wake = match self.local_addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => (Ipv4Addr::LOCALHOST, a.port()).into(),
            SocketAddr::V6(a) if a.ip().is_unspecified() => (Ipv6Addr::LOCALHOST, a.port()).into(),
            addr => addr,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = accept.join();
    }
}

impl fmt::Debug for CaptureServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureServer")
            .field("local_addr", &self.local_addr)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts until the server stops, then closes and joins all connections.
fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let Ok(stream) = stream else {
            // E.g. out of file descriptors: back off instead of spinning.
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        workers.retain(|worker| !worker.is_finished());
        if workers.len() >= shared.options.max_connections {
            refuse(shared, stream);
            continue;
        }
        let connection = shared.next_connection();
        if let Ok(clone) = stream.try_clone() {
            shared.register(connection, clone);
        }
        let worker = {
            let shared = Arc::clone(shared);
            thread::Builder::new()
                .name(format!("smtp-capture-{connection}"))
                .spawn(move || connection::serve(&shared, stream, connection))
        };
        match worker {
            Ok(worker) => workers.push(worker),
            Err(_) => shared.deregister(connection),
        }
    }
    // Let connections send their last reply (e.g. the `250` for a message
    // just stored) and a `421`, then cut off any that still hang.
    shared.close_all(Shutdown::Read);
    let grace = Instant::now() + STOP_GRACE;
    while Instant::now() < grace && workers.iter().any(|w| !w.is_finished()) {
        thread::sleep(Duration::from_millis(5));
    }
    shared.close_all(Shutdown::Both);
    for worker in workers {
        let _ = worker.join();
    }
}

/// Turns a connection away when the server is at its connection limit.
fn refuse(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let line = format!(
        "421 4.7.0 {} Error: too many connections, try again later\r\n",
        shared.options.hostname
    );
    let _ = stream.write_all(line.as_bytes());
}
