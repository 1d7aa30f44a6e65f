//! Answers: JSON bodies, and the status code of each failure.

use smtp_mailer_spin_send::{Retry, SendError};
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

/// The answer to a failed send: 400 for bad input, 500 for bad settings or
/// a destination the app may not reach, 503 with `Retry-After` when a retry
/// can help, 502 otherwise.
pub fn error_answer(e: &SendError) -> Response {
    let status = match e {
        SendError::Input { .. } => 400,
        SendError::Settings { .. } => 500,
        SendError::Mail {
            kind: "not-allowed",
            ..
        } => 500,
        SendError::Mail { .. } if e.retry() == Retry::Transient => 503,
        SendError::Mail { .. } => 502,
    };
    let mut response = json_answer(status, &e.to_json());
    if status == 503 {
        response.set_header("retry-after", RETRY_AFTER_SECONDS.to_string());
    }
    response
}
