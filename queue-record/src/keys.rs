//! The Redis keys of a queue: the stream and everything stored beside it,
//! each named after the stream.

use sha2::{Digest, Sha256};

/// The stream of the default queue (`redis://host:port` without `stream=`).
pub const DEFAULT_STREAM: &str = "smtp-mailer:queue";

/// The consumer group of the default queue.
pub const DEFAULT_GROUP: &str = "smtp-mailer";

/// The stream entry's field holding the Message-ID.
pub const FIELD_MESSAGE_ID: &str = "message_id";

/// The stream entry's field holding the JSON message.
pub const FIELD_PAYLOAD: &str = "payload";

/// The stream entry's field holding the attempts made so far.
pub const FIELD_ATTEMPTS: &str = "attempts";

/// The keys of the queue whose stream is `stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisKeys {
    stream: String,
}

impl RedisKeys {
    /// The keys of the queue on `stream`.
    pub fn new(stream: impl Into<String>) -> Self {
        RedisKeys {
            stream: stream.into(),
        }
    }

    /// The stream itself.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The sorted set of deferred messages, scored by when they are due.
    pub fn delayed(&self) -> String {
        format!("{}:delayed", self.stream)
    }

    /// The hash of suppressed addresses (lowercase address to a
    /// [`SuppressionEntry`](crate::SuppressionEntry)).
    pub fn suppressed(&self) -> String {
        format!("{}:suppressed", self.stream)
    }

    /// The set of recipients finished for `message_id`.
    pub fn done(&self, message_id: &str) -> String {
        format!("{}:done:{message_id}", self.stream)
    }

    /// The [`MessageStatus`](crate::MessageStatus) of `message_id`.
    pub fn status(&self, message_id: &str) -> String {
        format!("{}:status:{message_id}", self.stream)
    }

    /// The Message-ID of the message first enqueued as `queue_id` (a
    /// deferred message gets a new stream entry; its first id still finds
    /// it).
    pub fn alias(&self, queue_id: &str) -> String {
        format!("{}:alias:{queue_id}", self.stream)
    }

    /// The rate limit `key`.
    pub fn rate(&self, key: &str) -> String {
        format!("{}:rate:{key}", self.stream)
    }

    /// The record of an `Idempotency-Key` in `scope`: hashed, so that any
    /// key a client sends makes a well-formed Redis key.
    pub fn idempotency(&self, scope: crate::Scope, key: &str) -> String {
        let digest = Sha256::digest(format!("{}\n{key}", scope.name()).as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:idempotency:{hex}", self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_after_the_stream() {
        let keys = RedisKeys::new(DEFAULT_STREAM);
        assert_eq!(keys.delayed(), "smtp-mailer:queue:delayed");
        assert_eq!(keys.status("a@b"), "smtp-mailer:queue:status:a@b");
        let send = keys.idempotency(crate::Scope::Send, "k\r\n1");
        let messages = keys.idempotency(crate::Scope::Messages, "k\r\n1");
        assert_ne!(send, messages, "the endpoints do not share keys");
        assert!(send.bytes().all(|b| b.is_ascii_graphic()));
    }
}
