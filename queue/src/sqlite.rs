//! The SQLite backend: one file with the queue and the suppression list.
//!
//! Several processes may share the file (WAL mode, a busy timeout); in one
//! process the threads share one connection behind a mutex. A claim sets
//! `owner`, `lease_until` and a fresh `token` on the rows it takes, in one
//! `BEGIN IMMEDIATE` transaction, so two claimers never get the same row;
//! a row whose `lease_until` has passed is claimable again (its worker died
//! or stalled). `enqueue` commits with `synchronous=FULL`: once it returns the
//! messages survive a crash or a power loss. The rest commits with `NORMAL`,
//! which in WAL mode may lose the last commits on power loss (never on a
//! process crash): a lost completion only means the message is sent again.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use smtp_mailer_queue_record::{
    normalize_address, status_candidates, MessageStatus, DEFAULT_STATUS_TTL_SECONDS,
};

use crate::{
    duration_ms, from_millis, millis, Job, NewMessage, Queue, QueueCounts, QueueError, SharedRate,
    Suppressed, Suppressions,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done TEXT NOT NULL DEFAULT '[]',
    not_before INTEGER NOT NULL,
    owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    token INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_due ON queue (not_before, id);
CREATE TABLE IF NOT EXISTS suppressed (
    address TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rates (
    key TEXT PRIMARY KEY,
    next_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS status (
    message_id TEXT PRIMARY KEY,
    queue_id TEXT NOT NULL,
    record TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS status_queue_id ON status (queue_id);
CREATE INDEX IF NOT EXISTS status_expiry ON status (expires_at);
";

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause between two polls of the file while a claim waits
/// (jobs enqueued by this process wake the claim at once).
const MAX_POLL: Duration = Duration::from_millis(200);

/// A queue and suppression list in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    lease: Duration,
    /// Bumped on each enqueue and defer, to wake this process's waiting claims.
    changes: (Mutex<u64>, Condvar),
}

fn sql(e: rusqlite::Error) -> QueueError {
    QueueError::Sqlite(e.to_string())
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the file at `path`.
    pub fn open(path: &Path, lease: Duration) -> Result<Self, QueueError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                QueueError::Sqlite(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| QueueError::Sqlite(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(QueueError::Sqlite(format!(
                "{}: cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL;")
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            lease,
            changes: (Mutex::new(0), Condvar::new()),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A thread that panicked mid-statement leaves no open transaction
        // (rusqlite rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        let (count, cond) = &self.changes;
        *count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        cond.notify_all();
    }

    fn try_claim(&self, consumer: &str, max: usize) -> Result<Vec<Job>, QueueError> {
        let now = millis(SystemTime::now());
        let lease_until = now.saturating_add(duration_ms(self.lease));
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let mut jobs = Vec::new();
        {
            let mut select = tx
                .prepare_cached(
                    "SELECT id, message_id, payload, attempts, done, token FROM queue
                     WHERE not_before <= ?1 AND lease_until < ?1
                     ORDER BY not_before, id LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = select
                .query_map(params![now, i64::try_from(max).unwrap_or(i64::MAX)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .map_err(sql)?;
            let mut update = tx
                .prepare_cached(
                    "UPDATE queue SET owner = ?2, lease_until = ?3, token = ?4 WHERE id = ?1",
                )
                .map_err(sql)?;
            for row in rows {
                let (id, message_id, payload, attempts, done, token) = row.map_err(sql)?;
                let token = token.wrapping_add(1);
                update
                    .execute(params![id, consumer, lease_until, token])
                    .map_err(sql)?;
                jobs.push(Job {
                    id: id.to_string(),
                    message_id,
                    payload,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    done: parse_done(&done)?,
                    token: token.to_string(),
                });
            }
        }
        tx.commit().map_err(sql)?;
        Ok(jobs)
    }
}

fn parse_done(text: &str) -> Result<Vec<String>, QueueError> {
    serde_json::from_str(text)
        .map_err(|e| QueueError::Corrupt(format!("the done list {text:?}: {e}")))
}

fn row_id(job: &Job) -> Result<i64, QueueError> {
    job.id
        .parse()
        .map_err(|_| QueueError::Corrupt(format!("{:?} is not an SQLite queue id", job.id)))
}

/// Adds `done` to the row's recorded list (a set union, in order of first
/// appearance), inside the caller's transaction.
fn merge_done(tx: &rusqlite::Transaction<'_>, id: i64, done: &[String]) -> Result<(), QueueError> {
    let current: Option<String> = tx
        .query_row("SELECT done FROM queue WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    let Some(current) = current else {
        return Ok(());
    };
    let merged = union(parse_done(&current)?, done);
    tx.execute(
        "UPDATE queue SET done = ?2 WHERE id = ?1",
        params![id, to_json(&merged)],
    )
    .map_err(sql)?;
    Ok(())
}

fn union(mut list: Vec<String>, more: &[String]) -> Vec<String> {
    let mut seen: BTreeSet<String> = list.iter().cloned().collect();
    for d in more {
        if seen.insert(d.clone()) {
            list.push(d.clone());
        }
    }
    list
}

fn to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn id_and_token(job: &Job) -> Result<(i64, i64), QueueError> {
    let token = job
        .token
        .parse()
        .map_err(|_| QueueError::Corrupt(format!("job {} was not claimed from SQLite", job.id)))?;
    Ok((row_id(job)?, token))
}

impl Queue for SqliteStore {
    fn enqueue(&self, messages: &[NewMessage]) -> Result<Vec<String>, QueueError> {
        let now = millis(SystemTime::now());
        let mut conn = self.conn();
        // Durable on return: WAL synced at commit. The pragma cannot change
        // inside a transaction, and is restored whatever happens.
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .map_err(sql)?;
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let mut ids = Vec::with_capacity(messages.len());
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO queue (message_id, payload, not_before) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(sql)?;
                let mut status = tx
                    .prepare_cached(
                        "INSERT INTO status (message_id, queue_id, record, expires_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (message_id) DO UPDATE SET queue_id = excluded.queue_id,
                         record = excluded.record, expires_at = excluded.expires_at",
                    )
                    .map_err(sql)?;
                let expires = now + DEFAULT_STATUS_TTL_SECONDS as i64 * 1000;
                for m in messages {
                    insert
                        .execute(params![m.message_id, m.payload, now])
                        .map_err(sql)?;
                    let id = tx.last_insert_rowid().to_string();
                    let queued = MessageStatus::queued(&m.message_id, (now / 1000) as u64);
                    status
                        .execute(params![m.message_id, id, queued.to_json(), expires])
                        .map_err(sql)?;
                    ids.push(id);
                }
            }
            tx.commit().map_err(sql)?;
            Ok(ids)
        })();
        let restored = conn
            .execute_batch("PRAGMA synchronous=NORMAL;")
            .map_err(sql);
        drop(conn);
        let ids = result?;
        restored?;
        self.notify();
        Ok(ids)
    }

    fn claim(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Job>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        let mut poll = Duration::from_millis(10);
        loop {
            let seen = *self.changes.0.lock().unwrap_or_else(|p| p.into_inner());
            let jobs = self.try_claim(consumer, max)?;
            let now = Instant::now();
            if !jobs.is_empty() || now >= deadline {
                return Ok(jobs);
            }
            let pause = poll.min(deadline - now);
            let (count, cond) = &self.changes;
            let guard = count.lock().unwrap_or_else(|p| p.into_inner());
            if *guard == seen {
                drop(
                    cond.wait_timeout(guard, pause)
                        .unwrap_or_else(|p| p.into_inner()),
                );
            }
            poll = (poll * 2).min(MAX_POLL);
        }
    }

    fn heartbeat(&self, consumer: &str, jobs: &[&Job]) -> Result<(), QueueError> {
        let lease_until = millis(SystemTime::now()).saturating_add(duration_ms(self.lease));
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql)?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE queue SET lease_until = ?4 WHERE id = ?1 AND owner = ?2 AND token = ?3",
                )
                .map_err(sql)?;
            for job in jobs {
                let (id, token) = id_and_token(job)?;
                update
                    .execute(params![id, consumer, token, lease_until])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn progress(&self, job: &Job, done: &[String]) -> Result<(), QueueError> {
        let id = row_id(job)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        merge_done(&tx, id, done)?;
        tx.commit().map_err(sql)
    }

    fn complete(&self, job: &Job) -> Result<(), QueueError> {
        let id = row_id(job)?;
        self.conn()
            .execute("DELETE FROM queue WHERE id = ?1", [id])
            .map_err(sql)?;
        Ok(())
    }

    fn defer(&self, job: &Job, done: &[String], not_before: SystemTime) -> Result<(), QueueError> {
        let (id, token) = id_and_token(job)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        merge_done(&tx, id, done)?;
        // Only while this claim still holds the row: if the lease ran out
        // and another consumer took it, that consumer decides.
        tx.execute(
            "UPDATE queue SET attempts = attempts + 1, not_before = ?3, owner = NULL,
                 lease_until = 0
             WHERE id = ?1 AND token = ?2",
            params![id, token, millis(not_before)],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        drop(conn);
        self.notify();
        Ok(())
    }

    fn counts(&self) -> Result<QueueCounts, QueueError> {
        let now = millis(SystemTime::now());
        let (ready, delayed, in_flight): (i64, i64, i64) = self
            .conn()
            .query_row(
                "SELECT
                     coalesce(sum(lease_until < ?1 AND not_before <= ?1), 0),
                     coalesce(sum(lease_until < ?1 AND not_before > ?1), 0),
                     coalesce(sum(lease_until >= ?1), 0)
                 FROM queue",
                [now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(sql)?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(QueueCounts {
            ready: n(ready),
            delayed: n(delayed),
            in_flight: n(in_flight),
        })
    }

    fn record_status(&self, status: &MessageStatus, ttl: Duration) -> Result<(), QueueError> {
        let now = millis(SystemTime::now());
        let expires = now.saturating_add(duration_ms(ttl).max(1000));
        let conn = self.conn();
        // Forget what has expired; the index makes this cheap.
        conn.execute("DELETE FROM status WHERE expires_at < ?1", [now])
            .map_err(sql)?;
        conn.execute(
            "INSERT INTO status (message_id, queue_id, record, expires_at) VALUES (?1, '', ?2, ?3)
             ON CONFLICT (message_id) DO UPDATE SET record = excluded.record,
             expires_at = excluded.expires_at",
            params![status.message_id, status.to_json(), expires],
        )
        .map_err(sql)?;
        Ok(())
    }

    fn status(&self, id: &str) -> Result<Option<MessageStatus>, QueueError> {
        let [id, bare, bracketed] = status_candidates(id);
        let record: Option<String> = self
            .conn()
            .query_row(
                "SELECT record FROM status WHERE (message_id IN (?1, ?2, ?3) OR queue_id = ?1)
                 AND expires_at >= ?4 ORDER BY message_id IN (?1, ?2, ?3) DESC LIMIT 1",
                params![id, bare, bracketed, millis(SystemTime::now())],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        record
            .map(|text| {
                MessageStatus::from_json(text.as_bytes())
                    .ok_or_else(|| QueueError::Corrupt(format!("the status of {id}")))
            })
            .transpose()
    }
}

impl Suppressions for SqliteStore {
    fn add(&self, address: &str, reason: &str) -> Result<(), QueueError> {
        self.conn()
            .execute(
                "INSERT INTO suppressed (address, reason, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (address) DO UPDATE SET reason = excluded.reason,
                     since = excluded.since",
                params![
                    normalize_address(address),
                    reason,
                    millis(SystemTime::now())
                ],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn remove(&self, address: &str) -> Result<bool, QueueError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM suppressed WHERE address = ?1",
                [normalize_address(address)],
            )
            .map_err(sql)?;
        Ok(n > 0)
    }

    fn check(&self, addresses: &[String]) -> Result<Vec<Option<Suppressed>>, QueueError> {
        let lower: Vec<String> = addresses.iter().map(|a| normalize_address(a)).collect();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT address, reason, since FROM suppressed
                 WHERE address IN (SELECT value FROM json_each(?1))",
            )
            .map_err(sql)?;
        let found: HashMap<String, Suppressed> = stmt
            .query_map([to_json(&lower)], row_to_suppressed)
            .map_err(sql)?
            .map(|r| r.map(|s| (s.address.clone(), s)))
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        Ok(lower.iter().map(|a| found.get(a).cloned()).collect())
    }

    fn list(&self) -> Result<Vec<Suppressed>, QueueError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT address, reason, since FROM suppressed ORDER BY address")
            .map_err(sql)?;
        let list = stmt
            .query_map([], row_to_suppressed)
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        Ok(list)
    }
}

fn row_to_suppressed(r: &rusqlite::Row<'_>) -> rusqlite::Result<Suppressed> {
    Ok(Suppressed {
        address: r.get(0)?,
        reason: r.get(1)?,
        since: from_millis(r.get(2)?),
    })
}

impl SharedRate for SqliteStore {
    fn reserve(&self, key: &str, interval: Duration) -> Result<Duration, QueueError> {
        let now = millis(SystemTime::now());
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let next: Option<i64> = tx
            .query_row("SELECT next_ms FROM rates WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        let start = next.unwrap_or(now).max(now);
        tx.execute(
            "INSERT INTO rates (key, next_ms) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET next_ms = excluded.next_ms",
            params![key, start.saturating_add(duration_ms(interval))],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(Duration::from_millis(
            u64::try_from(start - now).unwrap_or(0),
        ))
    }
}
