//! The record an `Idempotency-Key` leaves: a request repeated with the same
//! key (within the window) gets the first one's answer instead of acting
//! again; the same key with another body is refused.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which endpoint a key belongs to: the same key on two endpoints is two
/// keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `POST /send`.
    Send,
    /// `POST /messages`.
    Messages,
}

impl Scope {
    /// The endpoint's name in keys.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Messages => "messages",
        }
    }
}

/// What the first request with a key did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The SHA-256 of the first request's body, in hex: another body with
    /// the same key is refused.
    pub hash: String,
    /// `POST /messages`: the queue ids, in order.
    #[serde(default)]
    pub queue_ids: Vec<String>,
    /// `POST /messages`: the Message-IDs, in order.
    #[serde(default)]
    pub message_ids: Vec<String>,
    /// `POST /send`: the answer's status, once it is known.
    #[serde(default)]
    pub status: Option<u16>,
    /// `POST /send`: the answer's body, once it is known.
    #[serde(default)]
    pub body: Option<String>,
}

/// Starts a `POST /send` under an `Idempotency-Key`. `KEYS[1]`: the record's
/// key; `ARGV[1]`: the record of a request in progress (JSON); `ARGV[2]`: its
/// TTL in seconds. Answers `{'fresh'}` when the key was free (and is now
/// taken), or `{'seen', record}` (never a nil, which Spin's outbound Redis
/// drops).
pub const BEGIN_SCRIPT: &str = r"
local prior = redis.call('GET', KEYS[1])
if prior then return {'seen', prior} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {'fresh'}
";

impl IdempotencyRecord {
    /// The hash of a request `body`, as [`IdempotencyRecord::hash`] holds it.
    pub fn hash_of(body: &[u8]) -> String {
        Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The record as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record from JSON text; `None` when it is not one.
    pub fn from_json(text: &[u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }

    /// True while the first request has not finished (`POST /send`).
    pub fn in_progress(&self) -> bool {
        self.queue_ids.is_empty() && self.status.is_none()
    }
}
