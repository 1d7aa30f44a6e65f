//! The durable queue, reached at the edge through Spin's outbound Redis: the
//! same Redis stream the `smtp-mailer worker` processes drain, written with
//! the same records and scripts (`smtp-mailer-queue-record`).
//!
//! Spin's outbound Redis flattens an answer's arrays and drops its nils, so
//! every call here is a script that answers strings only.

use smtp_mailer_queue_record::{
    enqueue_arguments, parse_suppressed, status_candidates, EnqueueReply, IdempotencyCheck,
    IdempotencyRecord, MessageStatus, QueuedMessage, RedisKeys, Scope, SuppressionEntry,
    BEGIN_SCRIPT, DEFAULT_STATUS_TTL_SECONDS, DEFAULT_STREAM, STATUS_SCRIPT, SUPPRESSED_SCRIPT,
};
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

use crate::settings::optional;
use crate::SendError;

/// The Redis server when `redis_address` is empty.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// How long an `Idempotency-Key` is remembered when
/// `idempotency_window_seconds` is empty: 24 hours.
pub const DEFAULT_IDEMPOTENCY_WINDOW_SECONDS: u64 = 24 * 3600;

/// A connection to the queue, with its settings from the variables
/// `redis_address`, `queue_stream`, `status_ttl_seconds` and
/// `idempotency_window_seconds`.
pub struct EdgeQueue {
    conn: Connection,
    keys: RedisKeys,
    status_ttl: u64,
    idempotency_ttl: u64,
}

/// What an `Idempotency-Key` says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The key is new: it is now taken by this request.
    Fresh,
    /// A request with the key was answered before: answer the same.
    Answered(IdempotencyRecord),
}

/// A number from a variable, or `default` when it is empty.
fn number(name: &str, default: u64) -> Result<u64, SendError> {
    match optional(name)? {
        None => Ok(default),
        Some(value) => value
            .parse()
            .map_err(|_| SendError::settings(name, "is not a number of seconds")),
    }
}

/// The address to show in errors: without credentials.
fn shown(address: &str) -> String {
    match address.split_once('@') {
        Some((_, host)) => format!("redis://{host}"),
        None => address.to_string(),
    }
}

impl EdgeQueue {
    /// Opens the queue.
    ///
    /// Errors: [`SendError::Settings`] for a malformed variable;
    /// [`SendError::QueueUnavailable`] when Redis cannot be reached (or
    /// `allowed_outbound_hosts` does not allow it).
    pub fn open() -> Result<EdgeQueue, SendError> {
        let address =
            optional("redis_address")?.unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string());
        let stream = optional("queue_stream")?.unwrap_or_else(|| DEFAULT_STREAM.to_string());
        let status_ttl = number("status_ttl_seconds", DEFAULT_STATUS_TTL_SECONDS)?;
        let idempotency_ttl = number(
            "idempotency_window_seconds",
            DEFAULT_IDEMPOTENCY_WINDOW_SECONDS,
        )?;
        let conn = Connection::open(&address).map_err(|e| {
            let why = match e {
                spin_sdk::redis::Error::InvalidAddress => {
                    "the address is invalid or not in allowed_outbound_hosts".to_string()
                }
                spin_sdk::redis::Error::TooManyConnections => "too many connections".into(),
                spin_sdk::redis::Error::TypeError => "a type error".into(),
                spin_sdk::redis::Error::Other(detail) => detail,
            };
            SendError::QueueUnavailable {
                reason: format!("cannot reach {}: {why}", shown(&address)),
            }
        })?;
        Ok(EdgeQueue {
            conn,
            keys: RedisKeys::new(stream),
            status_ttl,
            idempotency_ttl,
        })
    }

    /// Runs a script; its answer as byte strings.
    fn eval(&self, args: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, SendError> {
        let params: Vec<RedisParameter> = args.into_iter().map(RedisParameter::Binary).collect();
        let results = self.conn.execute("EVAL", &params).map_err(|e| {
            let detail = match e {
                spin_sdk::redis::Error::Other(detail) => detail,
                other => format!("{other:?}"),
            };
            SendError::QueueUnavailable { reason: detail }
        })?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                RedisResult::Binary(bytes) => bytes,
                RedisResult::Status(text) => text.into_bytes(),
                RedisResult::Int64(n) => n.to_string().into_bytes(),
                RedisResult::Nil => Vec::new(),
            })
            .collect())
    }

    fn corrupt(what: String) -> SendError {
        SendError::QueueUnavailable {
            reason: format!("the queue answered what this version does not write: {what}"),
        }
    }

    /// The key of an `Idempotency-Key` in `scope`.
    pub fn idempotency_key(&self, scope: Scope, key: &str) -> String {
        self.keys.idempotency(scope, key)
    }

    /// Appends `messages` to the stream, all or none, each with its
    /// `queued` status; with `idempotency` (a record key and the body's
    /// hash), only if the key is new, recording what was enqueued.
    pub fn enqueue(
        &self,
        messages: &[QueuedMessage],
        idempotency: Option<(&str, &str)>,
        now_secs: u64,
    ) -> Result<EnqueueReply, SendError> {
        let check = idempotency.map(|(key, body_hash)| IdempotencyCheck {
            key,
            body_hash,
            ttl_seconds: self.idempotency_ttl,
        });
        let args = enqueue_arguments(&self.keys, messages, self.status_ttl, check, now_secs);
        let items = self.eval(args)?;
        EnqueueReply::parse(&items).map_err(Self::corrupt)
    }

    /// Each address's suppression entry, if it has one.
    pub fn suppressed(&self, addresses: &[String]) -> Result<Vec<Option<SuppressionEntry>>, SendError> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![
            SUPPRESSED_SCRIPT.as_bytes().to_vec(),
            b"1".to_vec(),
            self.keys.suppressed().into_bytes(),
        ];
        args.extend(addresses.iter().map(|a| a.clone().into_bytes()));
        let items = self.eval(args)?;
        parse_suppressed(addresses, &items).map_err(Self::corrupt)
    }

    /// A message's status, by Message-ID or first queue id.
    pub fn status(&self, id: &str) -> Result<Option<MessageStatus>, SendError> {
        let mut args = vec![
            STATUS_SCRIPT.as_bytes().to_vec(),
            b"1".to_vec(),
            self.keys.stream().as_bytes().to_vec(),
        ];
        args.extend(status_candidates(id).map(String::into_bytes));
        let items = self.eval(args)?;
        match items.first() {
            None => Err(Self::corrupt("no answer to a status lookup".into())),
            Some(json) if json.is_empty() => Ok(None),
            Some(json) => MessageStatus::from_json(json)
                .map(Some)
                .ok_or_else(|| Self::corrupt(format!("the status of {id}"))),
        }
    }

    /// Takes the idempotency `key` for a request with body hash `hash`, or
    /// finds what an earlier request with it answered.
    pub fn begin(&self, key: &str, hash: &str) -> Result<Seen, SendError> {
        let in_progress = IdempotencyRecord {
            hash: hash.to_string(),
            queue_ids: Vec::new(),
            message_ids: Vec::new(),
            status: None,
            body: None,
        };
        let args = vec![
            BEGIN_SCRIPT.as_bytes().to_vec(),
            b"1".to_vec(),
            key.as_bytes().to_vec(),
            in_progress.to_json().into_bytes(),
            self.idempotency_ttl.max(1).to_string().into_bytes(),
        ];
        let items = self.eval(args)?;
        match items.as_slice() {
            [fresh] if fresh == b"fresh" => Ok(Seen::Fresh),
            [seen, record] if seen == b"seen" => IdempotencyRecord::from_json(record)
                .map(Seen::Answered)
                .ok_or_else(|| Self::corrupt("an idempotency record".into())),
            _ => Err(Self::corrupt("the answer to an idempotency check".into())),
        }
    }

    /// Records the answer to the request that took `key`.
    pub fn finish(&self, key: &str, record: &IdempotencyRecord) -> Result<(), SendError> {
        let params = [
            key.as_bytes().to_vec(),
            record.to_json().into_bytes(),
            b"EX".to_vec(),
            self.idempotency_ttl.max(1).to_string().into_bytes(),
        ]
        .map(RedisParameter::Binary);
        self.conn
            .execute("SET", &params)
            .map(drop)
            .map_err(|e| SendError::QueueUnavailable {
                reason: format!("{e:?}"),
            })
    }

    /// Frees `key`: the request that took it ended with nothing to
    /// remember (a failure a retry may cure), so a retry may act.
    pub fn release(&self, key: &str) {
        let _ = self
            .conn
            .execute("DEL", &[RedisParameter::Binary(key.as_bytes().to_vec())]);
    }
}
