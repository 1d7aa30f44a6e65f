//! What the worker last recorded of a message: its state, and each
//! recipient's last reply and attempts. Written when the message is
//! enqueued (`queued`) and after every attempt; kept for a while
//! ([`DEFAULT_STATUS_TTL_SECONDS`] unless configured), then forgotten.

use serde::{Deserialize, Serialize};

/// How long a status is kept by default: 7 days.
pub const DEFAULT_STATUS_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// A message's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Waiting for its first attempt.
    Queued,
    /// Some recipient failed transiently and will be tried again.
    Deferred,
    /// Nothing is left to try and some recipient accepted it (the
    /// recipients say which).
    Delivered,
    /// Nothing is left to try, no recipient accepted it, and some refused it
    /// for good.
    Bounced,
    /// Nothing is left to try: the retries ran out, or the message could not
    /// be read.
    Failed,
    /// Every recipient is on the suppression list: nothing was sent.
    Suppressed,
}

impl State {
    /// The state's name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Deferred => "deferred",
            State::Delivered => "delivered",
            State::Bounced => "bounced",
            State::Failed => "failed",
            State::Suppressed => "suppressed",
        }
    }
}

/// One recipient's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecipientState {
    /// Accepted by a relay.
    Delivered,
    /// Failed transiently: to be tried again.
    Deferred,
    /// Refused for good.
    Bounced,
    /// Failed transiently until the retries ran out.
    Failed,
    /// On the suppression list: not sent.
    Suppressed,
}

impl RecipientState {
    /// The state's name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            RecipientState::Delivered => "delivered",
            RecipientState::Deferred => "deferred",
            RecipientState::Bounced => "bounced",
            RecipientState::Failed => "failed",
            RecipientState::Suppressed => "suppressed",
        }
    }
}

/// One recipient's last outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientStatus {
    /// The address.
    pub address: String,
    /// Its state.
    pub state: RecipientState,
    /// The last reply or failure, in one line.
    pub reply: Option<String>,
    /// The attempts that included this recipient.
    pub attempts: u32,
}

/// A message's status, as the worker last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageStatus {
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// The message's state, derived from its recipients'.
    pub state: State,
    /// Attempts made so far.
    pub attempts: u32,
    /// When this was recorded, in seconds since the Unix epoch.
    pub updated: u64,
    /// Each recipient attempted so far, in the order first attempted.
    pub recipients: Vec<RecipientStatus>,
}

impl MessageStatus {
    /// The status of a message just enqueued.
    pub fn queued(message_id: impl Into<String>, now_secs: u64) -> Self {
        MessageStatus {
            message_id: message_id.into(),
            state: State::Queued,
            attempts: 0,
            updated: now_secs,
            recipients: Vec::new(),
        }
    }

    /// Folds in attempt number `attempt` (from 1): each outcome replaces the
    /// recipient's last one and counts an attempt for it; the message's
    /// state is derived again.
    pub fn record(
        &mut self,
        attempt: u32,
        now_secs: u64,
        outcomes: impl IntoIterator<Item = (String, RecipientState, Option<String>)>,
    ) {
        for (address, state, reply) in outcomes {
            let attempted = state != RecipientState::Suppressed;
            match self
                .recipients
                .iter_mut()
                .find(|r| r.address.eq_ignore_ascii_case(&address))
            {
                Some(r) => {
                    r.state = state;
                    r.reply = reply;
                    r.attempts += u32::from(attempted);
                }
                None => self.recipients.push(RecipientStatus {
                    address,
                    state,
                    reply,
                    attempts: u32::from(attempted),
                }),
            }
        }
        self.attempts = self.attempts.max(attempt);
        self.updated = now_secs;
        self.state = self.derived_state();
    }

    /// The message's state from its recipients': deferred while any waits
    /// for a retry; then delivered if any accepted it; then bounced, failed,
    /// suppressed; queued before any attempt.
    pub fn derived_state(&self) -> State {
        let any = |s: RecipientState| self.recipients.iter().any(|r| r.state == s);
        if self.recipients.is_empty() {
            return self.state;
        }
        if any(RecipientState::Deferred) {
            State::Deferred
        } else if any(RecipientState::Delivered) {
            State::Delivered
        } else if any(RecipientState::Bounced) {
            State::Bounced
        } else if any(RecipientState::Failed) {
            State::Failed
        } else {
            State::Suppressed
        }
    }

    /// The status as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A status from JSON text; `None` when it is not one.
    pub fn from_json(text: &[u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }
}

/// Finds a message's status. `KEYS[1]`: the stream; `ARGV[1..3]`: the
/// Message-IDs to try (as given, bare, in angle brackets) — the first is
/// also tried as a first queue id. Answers `{json}`, or `{''}` when unknown
/// (never a nil, which Spin's outbound Redis drops).
pub const STATUS_SCRIPT: &str = r"
for i = 1, #ARGV do
  local s = redis.call('GET', KEYS[1] .. ':status:' .. ARGV[i])
  if s then return {s} end
end
local alias = redis.call('GET', KEYS[1] .. ':alias:' .. ARGV[1])
if alias then
  local s = redis.call('GET', KEYS[1] .. ':status:' .. alias)
  if s then return {s} end
end
return {''}
";

/// The ids [`STATUS_SCRIPT`] tries for `id`: as given, without angle
/// brackets, and within them.
pub fn status_candidates(id: &str) -> [String; 3] {
    let id = id.trim();
    let bare = id.trim_start_matches('<').trim_end_matches('>');
    [id.to_string(), bare.to_string(), format!("<{bare}>")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_fold_into_per_recipient_states() {
        let mut s = MessageStatus::queued("m@x", 10);
        assert_eq!(s.state, State::Queued);
        s.record(
            1,
            11,
            [
                (
                    "a@x".into(),
                    RecipientState::Delivered,
                    Some("250 ok".into()),
                ),
                (
                    "b@x".into(),
                    RecipientState::Deferred,
                    Some("450 busy".into()),
                ),
            ],
        );
        assert_eq!(s.state, State::Deferred);
        s.record(
            2,
            12,
            [(
                "B@x".into(),
                RecipientState::Delivered,
                Some("250 ok".into()),
            )],
        );
        assert_eq!(s.state, State::Delivered);
        assert_eq!(s.attempts, 2);
        assert_eq!(s.recipients[0].attempts, 1);
        assert_eq!(s.recipients[1].attempts, 2);
        assert_eq!(MessageStatus::from_json(s.to_json().as_bytes()), Some(s));
        let mut none = MessageStatus::queued("n@x", 0);
        none.record(1, 1, [("c@x".into(), RecipientState::Suppressed, None)]);
        assert_eq!(none.state, State::Suppressed);
        assert_eq!(none.recipients[0].attempts, 0);
    }
}
