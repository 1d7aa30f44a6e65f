//! What the Spin app does with a request, apart from HTTP itself: accept
//! messages into the durable queue (`POST /messages`), send one now
//! (`POST /send`, the Redis trigger) with the suppression list consulted
//! and the queue as a fallback, answer a message's status, and make
//! repeated requests with one `Idempotency-Key` act once.

use serde_json::{json, Value};
use smtp_mailer_json::JsonMessage;
use smtp_mailer_queue_record::{
    normalize_address, stamp, EnqueueReply, IdempotencyRecord, QueuedMessage, Scope,
};

use crate::bindings::{message as mailer_message, sender, types};
use crate::queue::{EdgeQueue, Seen};
use crate::{convert, dkim_settings, relay_settings, Receipt, Retry, SendError};

/// An answer to give: its status, its JSON body, and whether it says when
/// to retry (`Retry-After`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
    /// True when a retry may help: the answer carries `Retry-After`.
    pub retry_after: bool,
}

impl Answer {
    fn ok(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body,
            retry_after: false,
        }
    }

    /// The answer to a failure.
    pub fn error(e: &SendError) -> Answer {
        let status = e.http_status();
        Answer {
            status,
            body: e.to_json(),
            retry_after: e.retry() == Retry::Transient && status >= 500,
        }
    }
}

fn now() -> (u64, u64) {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_millis() as u64, since.as_secs())
}

fn random() -> u64 {
    let mut bytes = [0u8; 8];
    // Should the source fail, the Message-ID still holds the time.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// One message of a request, stamped and checked: its queue record and its
/// parsed form.
struct Prepared {
    queued: QueuedMessage,
    parsed: JsonMessage,
}

/// The mailer's message for `parsed`, fields named with `prefix`.
fn mailer_message_of(parsed: &JsonMessage, prefix: &str) -> Result<types::Message, SendError> {
    convert::message(parsed.clone()).map_err(|e| match e {
        SendError::Input { field, reason } => {
            SendError::input(Some(format!("{prefix}{}", field.unwrap_or_default())), reason)
        }
        other => other,
    })
}

/// Stamps `value` with a stable Message-ID and Date and checks it as a send
/// would: the JSON, then the mailer's own checks (`message.build`). Fields
/// are named with `prefix` (`[2].` in a batch).
fn prepare(mut value: Value, prefix: &str) -> Result<Prepared, SendError> {
    let within = |field: Option<String>| Some(format!("{prefix}{}", field.unwrap_or_default()));
    let (millis, _) = now();
    let queued = stamp(&mut value, millis, random())
        .map_err(|e| SendError::input(within(e.field), e.reason))?;
    let text = String::from_utf8_lossy(&queued.payload);
    let parsed = smtp_mailer_json::parse_message(&text)
        .map_err(|e| SendError::input(within(e.field), e.reason))?;
    if let Err(e) = mailer_message::build(mailer_message_of(&parsed, prefix)?) {
        return Err(match SendError::from_mailer(e) {
            SendError::Input { field, reason } => SendError::input(within(field), reason),
            other => other,
        });
    }
    Ok(Prepared { queued, parsed })
}

fn parse_body(body: &[u8]) -> Result<Value, SendError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| SendError::input(None, "the body is not UTF-8 text"))?;
    serde_json::from_str(text)
        .map_err(|e| SendError::input(None, format!("invalid JSON message: {e}")))
}

fn queued_answer(queue_ids: &[String], message_ids: &[String]) -> Answer {
    let messages: Vec<Value> = queue_ids
        .iter()
        .zip(message_ids)
        .map(|(id, message_id)| json!({ "id": id, "message_id": message_id }))
        .collect();
    Answer::ok(202, json!({ "status": "queued", "messages": messages }))
}

/// `POST /messages`: one JSON message or an array of them, each checked as a
/// send would check it, then all appended to the queue in one go, or none.
/// 202 with each message's queue id and Message-ID; 400 naming
/// `[index].field`; 503 when the queue is unreachable; with an
/// `Idempotency-Key` seen before, the first answer (422 for another body).
pub fn post_messages(body: &[u8], idempotency_key: Option<&str>) -> Answer {
    match accept(body, idempotency_key) {
        Ok(answer) => answer,
        Err(e) => Answer::error(&e),
    }
}

fn accept(body: &[u8], idempotency_key: Option<&str>) -> Result<Answer, SendError> {
    let (values, batch) = match parse_body(body)? {
        Value::Array(items) => (items, true),
        one => (vec![one], false),
    };
    if values.is_empty() {
        return Err(SendError::input(None, "the array holds no message"));
    }
    let mut queued = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let prefix = if batch { format!("[{i}].") } else { String::new() };
        queued.push(prepare(value, &prefix)?.queued);
    }
    let queue = EdgeQueue::open()?;
    let hash = IdempotencyRecord::hash_of(body);
    let key = idempotency_key.map(|k| queue.idempotency_key(Scope::Messages, k));
    let (_, secs) = now();
    match queue.enqueue(&queued, key.as_deref().map(|k| (k, hash.as_str())), secs)? {
        EnqueueReply::New(ids) => {
            let message_ids: Vec<String> = queued.iter().map(|q| q.message_id.clone()).collect();
            eprintln!("messages: {} enqueued", ids.len());
            Ok(queued_answer(&ids, &message_ids))
        }
        EnqueueReply::Replay(record) if record.hash == hash => {
            Ok(queued_answer(&record.queue_ids, &record.message_ids))
        }
        EnqueueReply::Replay(_) => Err(SendError::KeyReused {
            reason: "this Idempotency-Key was used with another body; nothing was enqueued".into(),
        }),
    }
}

/// `GET /messages/{id}`: the message's status as the worker last recorded
/// it, found by Message-ID or queue id; 404 when unknown or expired.
pub fn get_status(id: &str) -> Answer {
    let queue = match EdgeQueue::open() {
        Ok(queue) => queue,
        Err(e) => return Answer::error(&e),
    };
    match queue.status(id) {
        Ok(Some(status)) => Answer::ok(
            200,
            serde_json::to_value(&status).unwrap_or(Value::Null),
        ),
        Ok(None) => Answer::ok(
            404,
            json!({ "status": "failed", "error": { "kind": "not-found",
                "message": format!("no message {id} (or its status expired)") } }),
        ),
        Err(e) => Answer::error(&e),
    }
}

/// `POST /send`: sends one message now, skipping suppressed recipients;
/// with `fallback_to_queue`, a transient failure enqueues it instead (202).
/// With an `Idempotency-Key`, a repeated request gets the first answer
/// (422 for another body, 409 while the first is still being answered).
pub fn post_send(body: &[u8], idempotency_key: Option<&str>, fallback_to_queue: bool) -> Answer {
    let prepared = match parse_body(body).and_then(|value| match value {
        Value::Object(_) => prepare(value, ""),
        _ => Err(SendError::input(None, "invalid JSON message: expected an object")),
    }) {
        Ok(prepared) => prepared,
        Err(e) => return Answer::error(&e),
    };
    let Some(key) = idempotency_key else {
        let queue = EdgeQueue::open().ok();
        return send_now(prepared, queue.as_ref(), fallback_to_queue);
    };
    // Idempotency needs the queue's Redis: without it, acting could repeat.
    let queue = match EdgeQueue::open() {
        Ok(queue) => queue,
        Err(e) => return Answer::error(&e),
    };
    let key = queue.idempotency_key(Scope::Send, key);
    let hash = IdempotencyRecord::hash_of(body);
    match queue.begin(&key, &hash) {
        Err(e) => Answer::error(&e),
        Ok(Seen::Answered(record)) if record.hash != hash => Answer::error(&SendError::KeyReused {
            reason: "this Idempotency-Key was used with another body; nothing was sent".into(),
        }),
        Ok(Seen::Answered(record)) => match (record.status, record.body) {
            (Some(status), Some(body)) => {
                Answer::ok(status, serde_json::from_str(&body).unwrap_or(Value::Null))
            }
            _ if !record.queue_ids.is_empty() => {
                queued_answer(&record.queue_ids, &record.message_ids)
            }
            _ => Answer::error(&SendError::KeyInProgress),
        },
        Ok(Seen::Fresh) => {
            let answer = send_now(prepared, Some(&queue), fallback_to_queue);
            if answer.retry_after {
                // Nothing to remember: a retry with the key may act.
                queue.release(&key);
            } else {
                let record = IdempotencyRecord {
                    hash,
                    queue_ids: Vec::new(),
                    message_ids: Vec::new(),
                    status: Some(answer.status),
                    body: Some(answer.body.to_string()),
                };
                if let Err(e) = queue.finish(&key, &record) {
                    eprintln!("send: the idempotency record was not kept: {e}");
                }
            }
            answer
        }
    }
}

/// The Redis trigger's message: sent now, or, when the send fails
/// transiently, enqueued for the worker. `Ok` tells which (a line for the
/// log); `Err` is a failure nothing will retry, logged by the caller.
pub fn redis_message(payload: &[u8]) -> Result<String, SendError> {
    let prepared = match parse_body(payload)? {
        value @ Value::Object(_) => prepare(value, "")?,
        _ => return Err(SendError::input(None, "invalid JSON message: expected an object")),
    };
    let queue = EdgeQueue::open().ok();
    let answer = send_now(prepared, queue.as_ref(), true);
    match answer.status {
        200 | 202 => Ok(answer.body.to_string()),
        _ => Err(SendError::Mail {
            kind: "failed",
            retry: if answer.retry_after { Retry::Transient } else { Retry::Permanent },
            message: answer.body.to_string(),
            reply: None,
            recipients: Vec::new(),
        }),
    }
}

/// Sends `prepared` now. Suppressed recipients are skipped and reported
/// (with no queue the list cannot be consulted: the receipt says
/// `"suppression": "unchecked"`); with `fallback_to_queue`, a transient
/// failure enqueues the message (202).
fn send_now(prepared: Prepared, queue: Option<&EdgeQueue>, fallback_to_queue: bool) -> Answer {
    let Prepared { queued, parsed } = prepared;
    let mut message = match mailer_message_of(&parsed, "") {
        Ok(message) => message,
        Err(e) => return Answer::error(&e),
    };
    let recipients: Vec<String> = parsed
        .to
        .iter()
        .chain(&parsed.cc)
        .chain(&parsed.bcc)
        .map(|m| m.address.clone())
        .collect();
    let normalized: Vec<String> = recipients.iter().map(|a| normalize_address(a)).collect();
    let (suppressed, unchecked) = match queue.map(|q| q.suppressed(&normalized)) {
        Some(Ok(entries)) => (entries, false),
        Some(Err(e)) => {
            eprintln!("send: the suppression list was not consulted: {e}");
            (vec![None; recipients.len()], true)
        }
        None => (vec![None; recipients.len()], true),
    };
    let skipped: Vec<Value> = recipients
        .iter()
        .zip(&suppressed)
        .filter_map(|(address, entry)| {
            entry.as_ref().map(|e| {
                json!({ "address": address, "suppressed": true, "reason": e.reason })
            })
        })
        .collect();
    let remaining: Vec<String> = recipients
        .iter()
        .zip(&suppressed)
        .filter(|(_, entry)| entry.is_none())
        .map(|(address, _)| address.clone())
        .collect();
    let with_suppression = |mut body: Value| {
        if !skipped.is_empty() {
            body["suppressed"] = Value::Array(skipped.clone());
        }
        if unchecked {
            body["suppression"] = json!("unchecked");
        }
        body
    };
    if remaining.is_empty() {
        eprintln!("send: <{}> every recipient is suppressed", queued.message_id);
        return Answer::ok(
            200,
            with_suppression(json!({ "status": "suppressed", "message_id": queued.message_id })),
        );
    }
    if !skipped.is_empty() {
        message.envelope = Some(types::Envelope {
            reverse_path: parsed.from.address.clone(),
            forward_paths: remaining,
        });
    }
    let result = dkim_settings().and_then(|dkim| {
        message.dkim = dkim;
        let server = relay_settings()?.server();
        sender::send(&server, message).map_err(SendError::from_mailer)
    });
    match result {
        Ok(report) => {
            let receipt = Receipt::from_report(report);
            let (accepted, total) = receipt.accepted_count();
            eprintln!(
                "send: <{}> accepted for {accepted} of {total} recipients",
                queued.message_id
            );
            Answer::ok(200, with_suppression(receipt.to_json()))
        }
        Err(e) if fallback_to_queue && e.retry() == Retry::Transient => {
            let enqueued = queue
                .ok_or_else(|| SendError::QueueUnavailable {
                    reason: "Redis could not be reached".into(),
                })
                .and_then(|q| q.enqueue(std::slice::from_ref(&queued), None, now().1));
            match enqueued {
                Ok(EnqueueReply::New(ids)) => {
                    eprintln!(
                        "send: <{}> failed transiently ({e}); enqueued as {} for the worker",
                        queued.message_id,
                        ids.join(",")
                    );
                    let mut answer = queued_answer(&ids, &[queued.message_id.clone()]);
                    answer.body["reason"] = json!(e.to_string());
                    answer
                }
                Ok(EnqueueReply::Replay(_)) | Err(_) => {
                    eprintln!(
                        "send: <{}> failed transiently ({e}) and could not be enqueued",
                        queued.message_id
                    );
                    Answer::error(&e)
                }
            }
        }
        Err(e) => {
            eprintln!("send: <{}> failed: {e}", queued.message_id);
            Answer::error(&e)
        }
    }
}
