//! A pool of sessions to one relay: connections reused across messages, a
//! cap of messages per connection, idle expiry, and transparent recovery
//! when the server closed a connection while it sat idle.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use smtp_mailer_host::Mailer;
use smtp_mailer_host::Session;
use smtp_mailer_host::{Content, Envelope, Message, SendReport, Server};
use smtp_mailer_host::{Error, ErrorKind, Stage};

use super::metrics::Metrics;

/// How a [`SessionPool`] uses its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connections open at once to this relay, at most.
    pub max_sessions: usize,
    /// Messages sent over one connection before it is closed (QUIT) and a
    /// new one opened.
    pub messages_per_connection: u32,
    /// A connection unused for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for PoolOptions {
    /// 4 connections, 100 messages each, closed after 30 s idle (below the
    /// 5 minutes RFC 5321 lets servers wait, and the shorter timeouts that
    /// busy servers use).
    fn default() -> Self {
        PoolOptions {
            max_sessions: 4,
            messages_per_connection: 100,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// What to send over a pooled connection.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// A message to build; its recipients are its envelope.
    Message(&'a Message),
    /// Built bytes, to the envelope's recipients.
    Raw {
        /// MAIL FROM and RCPT TO.
        envelope: &'a Envelope,
        /// The message.
        data: &'a Content,
    },
}

/// One open connection and what it has carried.
struct Pooled {
    session: Session,
    sent: u32,
    last_used: Instant,
}

struct State {
    idle: Vec<Pooled>,
    /// Connections open or being opened, idle or in use.
    open: usize,
}

/// Sessions to one relay, shared by many threads. A send borrows an idle
/// connection or opens one (up to [`PoolOptions::max_sessions`], else it
/// waits for one to be returned).
pub struct SessionPool {
    mailer: Arc<Mailer>,
    server: Server,
    relay: String,
    options: PoolOptions,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    returned: Condvar,
}

impl SessionPool {
    /// A pool to `server`; nothing is opened until the first send.
    pub fn new(
        mailer: Arc<Mailer>,
        server: Server,
        options: PoolOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        let relay = format!(
            "{}:{}",
            server.connect_address.as_deref().unwrap_or(&server.host),
            server.port
        );
        SessionPool {
            mailer,
            server,
            relay,
            options: PoolOptions {
                max_sessions: options.max_sessions.max(1),
                messages_per_connection: options.messages_per_connection.max(1),
                ..options
            },
            metrics,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// The relay, as `host:port`.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// Connections open now, idle or in use.
    pub fn open_connections(&self) -> usize {
        self.lock().open
    }

    /// Sends over a pooled connection.
    ///
    /// When a reused connection fails before the server accepted the
    /// transaction (it answers the first command with 421, or the
    /// connection turns out closed), the server closed it while it sat
    /// idle: nothing was sent, so the message goes again over another
    /// connection, at once. A failure of a fresh connection is returned.
    pub fn send(&self, outgoing: Outgoing<'_>) -> Result<SendReport, Error> {
        loop {
            let mut pooled = self.checkout()?;
            let reused = pooled.sent > 0;
            let started = Instant::now();
            let result = match outgoing {
                Outgoing::Message(m) => pooled.session.send(m),
                Outgoing::Raw { envelope, data } => pooled.session.send_raw(envelope, data),
            };
            pooled.sent += 1;
            if reused && closed_while_idle(&result) {
                self.discard(pooled);
                continue;
            }
            self.metrics.send_took(started.elapsed());
            self.checkin(pooled, &result);
            return result;
        }
    }

    /// Closes (QUIT) the connections idle longer than the idle timeout.
    pub fn close_idle(&self) {
        let expired = {
            let mut state = self.lock();
            let timeout = self.options.idle_timeout;
            let (expired, kept) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition::<Vec<_>, _>(|p| p.last_used.elapsed() >= timeout);
            state.idle = kept;
            state.open -= expired.len();
            expired
        };
        if !expired.is_empty() {
            self.returned.notify_all();
        }
        for pooled in expired {
            let _ = pooled.session.close();
        }
    }

    /// Closes every idle connection (QUIT); connections in use close when
    /// they are returned... or when the pool is dropped.
    pub fn close_all(&self) {
        let idle = {
            let mut state = self.lock();
            let idle = std::mem::take(&mut state.idle);
            state.open -= idle.len();
            idle
        };
        for pooled in idle {
            let _ = pooled.session.close();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection that has not expired, or a
    /// new one when fewer than the cap are open; else waits.
    fn checkout(&self) -> Result<Pooled, Error> {
        let mut expired = Vec::new();
        let mut state = self.lock();
        let found = loop {
            let mut fresh = None;
            while let Some(pooled) = state.idle.pop() {
                if pooled.last_used.elapsed() < self.options.idle_timeout {
                    fresh = Some(pooled);
                    break;
                }
                state.open -= 1;
                expired.push(pooled);
            }
            if fresh.is_some() {
                break fresh;
            }
            if state.open < self.options.max_sessions {
                state.open += 1;
                break None;
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        };
        drop(state);
        for pooled in expired {
            let _ = pooled.session.close();
        }
        if let Some(pooled) = found {
            return Ok(pooled);
        }
        match self.mailer.open_session(&self.server) {
            Ok(session) => {
                self.metrics.connection_opened();
                Ok(Pooled {
                    session,
                    sent: 0,
                    last_used: Instant::now(),
                })
            }
            Err(e) => {
                self.lock().open -= 1;
                self.returned.notify_one();
                Err(e)
            }
        }
    }

    /// Returns a connection after a send: kept for the next message when
    /// it is still good and under its cap, else closed.
    fn checkin(&self, mut pooled: Pooled, result: &Result<SendReport, Error>) {
        if !still_usable(result) {
            self.discard(pooled);
            return;
        }
        if pooled.sent >= self.options.messages_per_connection {
            self.lock().open -= 1;
            self.returned.notify_one();
            let _ = pooled.session.close();
            return;
        }
        pooled.last_used = Instant::now();
        self.lock().idle.push(pooled);
        self.returned.notify_one();
    }

    /// Forgets a broken connection (no QUIT: its state is unknown).
    fn discard(&self, pooled: Pooled) {
        drop(pooled);
        self.lock().open -= 1;
        self.returned.notify_one();
    }
}

impl Drop for SessionPool {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// The stage a failure happened at, when it has one.
fn stage(e: &Error) -> Option<Stage> {
    match &e.kind {
        ErrorKind::Connection(f)
        | ErrorKind::Timeout(f)
        | ErrorKind::Protocol(f)
        | ErrorKind::Tls(f) => Some(f.stage),
        ErrorKind::Rejected(r) => Some(r.stage),
        _ => None,
    }
}

/// True when a send over a reused connection failed before the server
/// accepted MAIL FROM because the connection was gone: the server closed it
/// while idle (421 to the MAIL that starts the message, or to the RSET that
/// starts it after a failed one, or a closed socket).
fn closed_while_idle(result: &Result<SendReport, Error>) -> bool {
    let Err(e) = result else { return false };
    match (&e.kind, stage(e)) {
        // The RSET that starts a message after a failed one, refused or
        // unanswered: no transaction had begun.
        (_, Some(Stage::Reset)) => true,
        (ErrorKind::Rejected(r), Some(Stage::MailFrom)) => r.reply.code == 421,
        (
            ErrorKind::Connection(_) | ErrorKind::Timeout(_) | ErrorKind::Protocol(_),
            Some(Stage::Connect | Stage::MailFrom),
        ) => true,
        _ => false,
    }
}

/// True when the connection can carry another message after `result`: a
/// success, or a refusal the server made while keeping the connection.
fn still_usable(result: &Result<SendReport, Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(Error {
            kind: ErrorKind::Rejected(r),
            ..
        }) => r.reply.code != 421,
        Err(_) => false,
    }
}
