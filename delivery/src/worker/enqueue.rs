//! Messages read from JSON and made ready for the queue: checked whole
//! (all or nothing), attachment paths made absolute, and a stable
//! Message-ID and Date given to each, so that a retry or a resend after a
//! crash is the same message.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::RngCore;
use serde_json::Value;
use smtp_mailer_queue::NewMessage;
use smtp_mailer_queue_record::stamp;

use crate::json::parse_message;
use smtp_mailer_host::Content;
use smtp_mailer_host::Mailer;

/// Why input could not be enqueued; nothing was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueError {
    /// The message's position in the input, from 0 (none when the input
    /// itself is not JSON).
    pub index: Option<usize>,
    /// Why, naming the field.
    pub reason: String,
}

impl fmt::Display for EnqueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "message {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for EnqueueError {}

/// Reads every message of `input`: one JSON message object, an array of
/// them, or several (one per line or concatenated). Relative attachment
/// paths are resolved against `base_dir`. Each message is built once by
/// the component (attachment files left out) to check it as a send would.
pub fn prepare(
    input: &str,
    base_dir: &Path,
    mailer: &Mailer,
) -> Result<Vec<NewMessage>, EnqueueError> {
    let mut values = Vec::new();
    for value in serde_json::Deserializer::from_str(input).into_iter::<Value>() {
        let value = value.map_err(|e| EnqueueError {
            index: Some(values.len()),
            reason: format!("not JSON: {e}"),
        })?;
        match value {
            Value::Array(items) => values.extend(items),
            other => values.push(other),
        }
    }
    if values.is_empty() {
        return Err(EnqueueError {
            index: None,
            reason: "no message in the input".into(),
        });
    }
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            prepare_one(value, base_dir, mailer).map_err(|reason| EnqueueError {
                index: Some(index),
                reason,
            })
        })
        .collect()
}

fn prepare_one(mut value: Value, base_dir: &Path, mailer: &Mailer) -> Result<NewMessage, String> {
    let object = value
        .as_object_mut()
        .ok_or("a message must be a JSON object")?;
    if let Some(Value::Array(attachments)) = object.get_mut("attachments") {
        for attachment in attachments {
            if let Some(Value::String(path)) = attachment.get_mut("path") {
                let absolute = std::path::absolute(base_dir.join(&*path))
                    .map_err(|e| format!("attachments path {path}: {e}"))?;
                *path = absolute.to_string_lossy().into_owned();
            }
        }
    }
    // A stable Message-ID and Date, as the Spin app's POST /messages gives.
    let now_millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let queued =
        stamp(&mut value, now_millis, rand_core::OsRng.next_u64()).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&queued.payload);
    let mut message = parse_message(&text, Path::new("/"))?;
    // Check it as the component would, without reading attachment files.
    for attachment in &mut message.attachments {
        if matches!(attachment.content, Content::File(_)) {
            attachment.content = Content::Bytes(Vec::new());
        }
    }
    mailer.build_message(&message).map_err(|e| e.message)?;
    Ok(queued)
}
