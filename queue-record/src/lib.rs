//! What a queued message is, in the one form that the native queue
//! (`smtp-mailer-queue`: SQLite, Redis Streams) and the Spin components
//! (wasm32-wasip2, through Spin's outbound Redis) both write and read, so
//! that the edge and the worker can never disagree about it:
//!
//! - [`QueuedMessage`] and [`stamp`]: a JSON message (nodemailer's field
//!   names) with the stable Message-ID and Date every attempt reuses;
//! - [`RedisKeys`]: the stream, its fields, and the keys beside it;
//! - [`ENQUEUE_SCRIPT`] and [`enqueue_arguments`]: the one way messages enter
//!   a Redis queue, all of a batch or none, with their `queued` status and,
//!   for a request with an `Idempotency-Key`, its record;
//! - [`MessageStatus`]: what the worker last recorded of a message;
//! - [`IdempotencyRecord`], [`SuppressionEntry`].
//!
//! The crate does no I/O and reads no clock: times and random numbers are
//! passed in.

mod enqueue;
mod idempotency;
mod keys;
mod message;
mod status;
mod suppression;

pub use enqueue::{enqueue_arguments, EnqueueReply, IdempotencyCheck, ENQUEUE_SCRIPT};
pub use idempotency::{IdempotencyRecord, Scope, BEGIN_SCRIPT};
pub use keys::{
    RedisKeys, DEFAULT_GROUP, DEFAULT_STREAM, FIELD_ATTEMPTS, FIELD_MESSAGE_ID, FIELD_PAYLOAD,
};
pub use message::{new_message_id, stamp, QueuedMessage, StampError};
pub use status::{
    status_candidates, MessageStatus, RecipientState, RecipientStatus, State,
    DEFAULT_STATUS_TTL_SECONDS, STATUS_SCRIPT,
};
pub use suppression::{normalize_address, parse_suppressed, SuppressionEntry, SUPPRESSED_SCRIPT};
