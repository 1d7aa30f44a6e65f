//! SmtpMailer's durable queue of messages to send, and its suppression list
//! (addresses never to send to again), behind two traits with two backends:
//!
//! - SQLite: one file, shared by the threads of a process and by several
//!   processes (WAL mode); `enqueue` is fsync'd before it returns.
//! - Redis Streams with a consumer group, for workers on several machines.
//!
//! The queue stores opaque payloads (the JSON text of a message) and knows
//! nothing of SMTP. Delivery is at least once: a worker claims jobs under a
//! lease that it renews with [`Queue::heartbeat`]; if it dies, another
//! consumer claims the jobs once the lease has run out, and skips the
//! recipients that [`Queue::progress`] recorded as finished.
//!
//! ```no_run
//! use std::time::Duration;
//! use smtp_mailer_queue::{open, NewMessage};
//!
//! let store = open("sqlite:/var/lib/smtp-mailer/queue.db", Duration::from_secs(60))?;
//! store.queue.enqueue(&[NewMessage { message_id: "<1@example.com>".into(), payload: b"{}".to_vec() }])?;
//! for job in store.queue.claim("worker-1", 10, Duration::from_secs(1))? {
//!     // ... send job.payload, skipping job.done ...
//!     store.queue.complete(&job)?;
//! }
//! # Ok::<(), smtp_mailer_queue::QueueError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod redis;
mod resp;
mod sqlite;

pub use crate::redis::RedisStore;
pub use crate::sqlite::SqliteStore;
pub use smtp_mailer_queue_record::{
    MessageStatus, RecipientState, RecipientStatus, State, DEFAULT_GROUP,
    DEFAULT_STATUS_TTL_SECONDS, DEFAULT_STREAM,
};

/// A message to put on the queue: its stable id (its Message-ID) and the
/// message itself, opaque to the queue (the JSON text of a message). The
/// same record the Spin components enqueue.
pub use smtp_mailer_queue_record::QueuedMessage as NewMessage;

/// A message claimed by a worker.
#[derive(Clone, PartialEq, Eq)]
pub struct Job {
    /// The queue's id: the SQLite row id as text, or the Redis stream entry id.
    pub id: String,
    /// The message's id, stable across attempts and crashes.
    pub message_id: String,
    /// The message, as given to [`Queue::enqueue`].
    pub payload: Vec<u8>,
    /// Attempts made before this claim (0 the first time).
    pub attempts: u32,
    /// Recipients finished in earlier attempts (delivered or bounced): skip them.
    pub done: Vec<String>,
    /// The backend's proof of this claim (SQLite: the claim's lease token).
    token: String,
}

impl Job {
    /// A job with no backend token, for other [`Queue`] implementations and tests.
    pub fn new(
        id: String,
        message_id: String,
        payload: Vec<u8>,
        attempts: u32,
        done: Vec<String>,
    ) -> Self {
        Job {
            id,
            message_id,
            payload,
            attempts,
            done,
            token: String::new(),
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("payload_len", &self.payload.len())
            .field("attempts", &self.attempts)
            .field("done", &self.done)
            .finish()
    }
}

/// How many jobs the queue holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Claimable now.
    pub ready: u64,
    /// Deferred: claimable once their `not_before` has passed.
    pub delayed: u64,
    /// Claimed by a consumer (including ones whose lease ran out but that no
    /// one has reclaimed yet, for Redis).
    pub in_flight: u64,
}

/// What went wrong in the queue or the suppression list. `Display` is one
/// line and never contains a password from a Redis URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// The store spec given to [`open`] is not one this crate understands.
    InvalidSpec(String),
    /// An SQLite error (opening the file, a query, a busy database past its timeout).
    Sqlite(String),
    /// Redis could not be reached, or the connection failed mid-command.
    RedisConnection {
        /// `host:port` of the server.
        server: String,
        /// What failed.
        detail: String,
    },
    /// Redis answered a command with an error (`-ERR ...`, `-NOAUTH ...`).
    RedisCommand {
        /// The command's name.
        command: String,
        /// The server's error line.
        detail: String,
    },
    /// Stored data or a server reply is not what this crate writes or expects.
    Corrupt(String),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one_line = |s: &str| s.replace(['\r', '\n'], " ");
        match self {
            QueueError::InvalidSpec(d) => write!(f, "invalid queue spec: {}", one_line(d)),
            QueueError::Sqlite(d) => write!(f, "sqlite queue: {}", one_line(d)),
            QueueError::RedisConnection { server, detail } => {
                write!(f, "redis queue at {server}: {}", one_line(detail))
            }
            QueueError::RedisCommand { command, detail } => {
                write!(f, "redis queue: {command}: {}", one_line(detail))
            }
            QueueError::Corrupt(d) => write!(f, "queue data not understood: {}", one_line(d)),
        }
    }
}

impl std::error::Error for QueueError {}

/// A durable queue of messages, shared by worker threads and processes.
pub trait Queue: Send + Sync {
    /// All or nothing, durable when it returns (fsync'd for SQLite), each message with a `queued`
    /// [`MessageStatus`] kept [`DEFAULT_STATUS_TTL_SECONDS`]. Returns the queue ids in order.
    fn enqueue(&self, messages: &[NewMessage]) -> Result<Vec<String>, QueueError>;
    /// Up to `max` jobs for `consumer`: due deferred ones, new ones, and ones whose lease expired
    /// (a dead worker's). Waits at most `wait` for one to be available; Ok(empty) if none.
    /// `consumer` names one live worker: two workers must not share a name (Redis checks
    /// ownership of a job by the name).
    fn claim(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Job>, QueueError>;
    /// Extends the lease of jobs still being worked on (called periodically by the worker).
    fn heartbeat(&self, consumer: &str, jobs: &[&Job]) -> Result<(), QueueError>;
    /// Records recipients finished so far, so a job reclaimed after a crash skips them.
    fn progress(&self, job: &Job, done: &[String]) -> Result<(), QueueError>;
    /// The job is finished (delivered, bounced, or given up): removed from the queue.
    fn complete(&self, job: &Job) -> Result<(), QueueError>;
    /// A transient failure: back on the queue with attempts+1, not claimable before `not_before`,
    /// with `done` (all recipients finished so far) recorded.
    fn defer(&self, job: &Job, done: &[String], not_before: SystemTime) -> Result<(), QueueError>;
    /// What the queue holds now.
    fn counts(&self) -> Result<QueueCounts, QueueError>;
    /// Records what became of a message (the worker, after each attempt), kept for `ttl`.
    fn record_status(&self, status: &MessageStatus, ttl: Duration) -> Result<(), QueueError>;
    /// The last recorded status of a message, found by its Message-ID (with or without angle
    /// brackets) or by the queue id it was first enqueued under; `None` when unknown or expired.
    fn status(&self, id: &str) -> Result<Option<MessageStatus>, QueueError>;
    /// True when nothing is ready, delayed or in flight (for any consumer): a draining worker may exit.
    fn is_empty(&self) -> Result<bool, QueueError> {
        let c = self.counts()?;
        Ok(c.ready == 0 && c.delayed == 0 && c.in_flight == 0)
    }
}

/// An address on the suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// The address, lowercased.
    pub address: String,
    /// Why it is suppressed (a bounce's reply, "unsubscribed", ...).
    pub reason: String,
    /// When it was (last) added.
    pub since: SystemTime,
}

/// Addresses never to send to again. Addresses are compared
/// case-insensitively: they are stored lowercased.
pub trait Suppressions: Send + Sync {
    /// Adds `address`, or replaces its reason and time if it is there already.
    fn add(&self, address: &str, reason: &str) -> Result<(), QueueError>;
    /// Removes `address`; true if it was there.
    fn remove(&self, address: &str) -> Result<bool, QueueError>;
    /// For each address, its entry if suppressed (one round trip / one query for the batch).
    fn check(&self, addresses: &[String]) -> Result<Vec<Option<Suppressed>>, QueueError>;
    /// Every suppressed address, sorted by address.
    fn list(&self) -> Result<Vec<Suppressed>, QueueError>;
}

/// Rate limits shared by every worker of a store: each key's events are
/// spaced by an interval across all of them, wherever they run.
pub trait SharedRate: Send + Sync {
    /// Reserves the next turn of `key` for events `interval` apart and
    /// answers how long to wait for it (zero when it is now).
    fn reserve(&self, key: &str, interval: Duration) -> Result<Duration, QueueError>;
}

/// A queue, a suppression list and rate limits kept in the same place.
#[derive(Clone)]
pub struct Store {
    /// The queue of messages.
    pub queue: Arc<dyn Queue>,
    /// The suppression list.
    pub suppressions: Arc<dyn Suppressions>,
    /// The rate limits, shared by the workers of this store.
    pub rates: Arc<dyn SharedRate>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Opens a store from a spec: `redis://[user:pass@]host:port[/db][?stream=NAME&group=NAME]` for Redis,
/// `sqlite:PATH` or a plain PATH for SQLite (file and parent dirs created). `lease`: how long a claimed
/// job stays owned without heartbeat before another consumer may take it.
pub fn open(spec: &str, lease: Duration) -> Result<Store, QueueError> {
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        let store = Arc::new(RedisStore::open(spec, lease)?);
        return Ok(Store {
            queue: store.clone(),
            suppressions: store.clone(),
            rates: store,
        });
    }
    if spec.contains("://") {
        return Err(QueueError::InvalidSpec(
            "expected redis://HOST:PORT, sqlite:PATH or a file path".into(),
        ));
    }
    let path = spec.strip_prefix("sqlite:").unwrap_or(spec);
    let store = Arc::new(SqliteStore::open(std::path::Path::new(path), lease)?);
    Ok(Store {
        queue: store.clone(),
        suppressions: store.clone(),
        rates: store,
    })
}

/// Milliseconds since the Unix epoch (0 for times before it).
fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The time `ms` milliseconds after the Unix epoch.
fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `Duration` in whole milliseconds, saturating.
fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
