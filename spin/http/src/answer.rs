//! Answers: JSON bodies, and the status code of each failure.

use smtp_mailer_spin_send::{Answer, SendError};
use spin_sdk::http::Response;

/// Seconds a client should wait before retrying a transiently failed send.
pub const RETRY_AFTER_SECONDS: u32 = 60;

/// An answer with a JSON body.
pub fn json_answer(status: u16, body: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

/// An answer with a JSON body `{"status":"failed","error":{"message":...}}`.
pub fn plain(status: u16, message: &str) -> Response {
    json_answer(
        status,
        &serde_json::json!({ "status": "failed", "error": { "message": message } }),
    )
}

/// The answer to a failure ([`SendError::http_status`]), with `Retry-After`
/// when a retry can help.
pub fn error_answer(e: &SendError) -> Response {
    from(Answer::error(e))
}

/// The response for an [`Answer`].
pub fn from(answer: Answer) -> Response {
    let mut response = json_answer(answer.status, &answer.body);
    if answer.retry_after {
        response.set_header("retry-after", RETRY_AFTER_SECONDS.to_string());
    }
    response
}
