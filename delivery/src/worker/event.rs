//! What a worker reports about each message, as it happens.

use serde::Serialize;

/// What happened to some recipients of a queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Accepted by a relay.
    Delivered,
    /// Failed transiently; the message is back on the queue for them.
    Deferred,
    /// Refused for good.
    Bounced,
    /// On the suppression list: skipped.
    Suppressed,
    /// Still failing after the last attempt, or unreadable: given up.
    Failed,
}

/// One event; serialised as one JSON line in the worker's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
    /// The queue's id of the message.
    pub queue_id: String,
    /// The message's Message-ID, without angle brackets.
    pub message_id: String,
    /// The recipients it happened to.
    pub recipients: Vec<String>,
    /// The relay that accepted them (`host:port`), when delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// Which attempt this was, from 1.
    pub attempt: u32,
    /// The reply or failure, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// When deferred: the delay before the next attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// How long the attempt took.
    pub ms: u64,
}
