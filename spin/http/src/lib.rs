//! The Spin app's HTTP component.
//!
//! - `POST /send`: the body is a nodemailer-style JSON message (as the CLI's
//!   `--json`), sent now through the mailer component, skipping addresses on
//!   the suppression list (reported as such). Answers 200 with the receipt
//!   (`status` is `partial` when a recipient was refused, each recipient
//!   with its reply); 400 naming the field at fault; 401 without
//!   `Authorization: Bearer <api_key>`; 413 over `max_body_bytes`; 503 with
//!   `Retry-After` when the relay failed transiently, or, with
//!   `?fallback=queue`, 202 with the message put on the durable queue
//!   instead; 502 when it failed permanently; 500 when a variable is
//!   misconfigured or the relay is not an allowed destination.
//! - `POST /messages`: one JSON message or an array of them, checked as a
//!   send would check them, then all put on the durable queue (Redis
//!   Streams, drained by `smtp-mailer worker`) or none: 202 with each
//!   queue id and Message-ID; 400 naming `[index].field`; 503 with
//!   `Retry-After` when Redis cannot be reached.
//! - `GET /messages/{id}`: the message's status as the worker last recorded
//!   it (by queue id or Message-ID); 404 when unknown.
//! - `Idempotency-Key` on either POST: a repeated key gets the first
//!   answer and acts no more; the same key with another body is 422.
//! - `GET /health`: 200 while the component runs.
//!
//! The mailer is not linked in: `sender` and `message` are imported, and
//! Spin (a component dependency in `spin.toml`) or `smtp-mailer serve`
//! supplies them.

mod answer;
mod auth;
mod body;

use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;

use answer::json_answer;

#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    let path_and_query = request.path_with_query().unwrap_or_default();
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (path_and_query, String::new()),
    };
    let status_id = path.strip_prefix("/messages/").filter(|id| !id.is_empty());
    match (request.method(), path.as_str(), status_id) {
        (Method::Get, "/health", _) => json_answer(200, &serde_json::json!({ "status": "ok" })),
        (Method::Post, "/send", _) => {
            let fallback = query.split('&').any(|p| p == "fallback=queue");
            post(request, |body, key| {
                smtp_mailer_spin_send::post_send(body, key, fallback)
            })
            .await
        }
        (Method::Post, "/messages", _) => post(request, smtp_mailer_spin_send::post_messages).await,
        (Method::Get, _, Some(id)) => {
            if let Err(refusal) = auth::check(&request) {
                return refusal;
            }
            let id = percent_decode(id);
            answer::from(smtp_mailer_spin_send::get_status(&id))
        }
        (_, "/health" | "/send" | "/messages", _) | (_, _, Some(_)) => {
            answer::plain(405, "method not allowed")
        }
        _ => answer::plain(
            404,
            "not found: POST /send, POST /messages, GET /messages/{id} or GET /health",
        ),
    }
}

/// Checks the API key, reads the body under its cap, and answers with
/// `act` (given the body and the `Idempotency-Key`, if any).
async fn post(
    request: IncomingRequest,
    act: impl FnOnce(&[u8], Option<&str>) -> smtp_mailer_spin_send::Answer,
) -> Response {
    if let Err(refusal) = auth::check(&request) {
        return refusal;
    }
    let key = request
        .headers()
        .get("idempotency-key")
        .first()
        .and_then(|v| String::from_utf8(v.clone()).ok())
        .filter(|k| !k.trim().is_empty());
    let body = match body::read_capped(request).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    answer::from(act(&body, key.as_deref()))
}

/// `%XX` escapes decoded (a Message-ID in a path has its `@`, `<` and `>`
/// escaped); anything malformed is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
