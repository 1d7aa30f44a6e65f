//! A message as it sits in a queue: its stable Message-ID and its JSON
//! text (nodemailer's field names), stamped with the Message-ID and Date
//! that every attempt, and every copy sent again after a crash, reuses.

use serde_json::Value;

/// A message to put on a queue.
#[derive(Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The Message-ID, without angle brackets: stable across attempts.
    pub message_id: String,
    /// The JSON message, with `messageId` and `date` set.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for QueuedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMessage")
            .field("message_id", &self.message_id)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Why a JSON message cannot be queued: the field at fault (none when the
/// value itself is wrong) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampError {
    /// `from`, `to[1]`, `attachments[0].content`...
    pub field: Option<String>,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for StampError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for StampError {}

/// Reads `value` as a JSON message (refusing what a send would refuse at
/// the JSON level, naming the field), gives it a `messageId` (from
/// `now_millis` and `random`, at the sender's domain) and a `date`
/// (`now_millis`) unless it has them, and returns it ready for a queue.
///
/// Errors: [`StampError`] naming the field, for a value that is not a
/// message.
pub fn stamp(value: &mut Value, now_millis: u64, random: u64) -> Result<QueuedMessage, StampError> {
    let text = value.to_string();
    let parsed = smtp_mailer_json::parse_message(&text).map_err(|e| StampError {
        field: e.field,
        reason: e.reason,
    })?;
    let object = value.as_object_mut().ok_or_else(|| StampError {
        field: None,
        reason: "a message must be a JSON object".into(),
    })?;
    let message_id = match parsed.message_id {
        Some(id) => id,
        None => {
            let id = new_message_id(&parsed.from.address, now_millis, random);
            object.insert("messageId".into(), Value::String(id.clone()));
            id
        }
    };
    if parsed.date.is_none() {
        object.insert("date".into(), Value::from(now_millis / 1000));
    }
    Ok(QueuedMessage {
        message_id,
        payload: value.to_string().into_bytes(),
    })
}

/// A Message-ID unique to one message, at the sender's domain (or
/// `smtp-mailer.invalid`): the time in milliseconds and 64 random bits.
pub fn new_message_id(from: &str, now_millis: u64, random: u64) -> String {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .unwrap_or("smtp-mailer.invalid");
    format!("{now_millis:x}.{random:016x}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_gets_a_stable_id_and_date_once() {
        let mut value = json!({"from": "Shop <shop@example.org>", "to": "ada@example.org"});
        let queued = stamp(&mut value, 1_700_000_000_123, 0xabc).unwrap();
        assert_eq!(
            queued.message_id,
            "18bcfe5687b.0000000000000abc@example.org"
        );
        assert_eq!(value["messageId"], queued.message_id.as_str());
        assert_eq!(value["date"], 1_700_000_000);
        // Stamping again keeps what is there.
        let again = stamp(&mut value, 1, 2).unwrap();
        assert_eq!(again, queued);
    }

    #[test]
    fn bad_messages_name_the_field() {
        let mut value = json!({"from": "shop@example.org", "to": 5});
        let e = stamp(&mut value, 0, 0).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("to"));
        let mut value = json!([1]);
        assert!(stamp(&mut value, 0, 0).is_err());
    }
}
