//! The Spin app's HTTP component.
//!
//! - `POST /send`: the body is a nodemailer-style JSON message (as the CLI's
//!   `--json`), sent through the mailer component. Answers 200 with the
//!   receipt (`status` is `partial` when a recipient was refused, each
//!   recipient with its reply); 400 naming the field at fault; 401 without
//!   `Authorization: Bearer <api_key>`; 413 over `max_body_bytes`; 503 with
//!   `Retry-After` when the relay failed transiently; 502 when it failed
//!   permanently; 500 when a variable is misconfigured.
//! - `GET /health`: 200 while the component runs.
//!
//! The mailer is not linked in: `sender` is imported, and Spin (a component
//! dependency in `spin.toml`) or `smtp-mailer serve` supplies it.

mod answer;
mod auth;
mod body;

use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;

use answer::{error_answer, json_answer};

#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    let path = request.path_with_query().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default().to_string();
    match (request.method(), path.as_str()) {
        (Method::Get, "/health") => json_answer(200, &serde_json::json!({ "status": "ok" })),
        (Method::Post, "/send") => send(request).await,
        (_, "/health" | "/send") => answer::plain(405, "method not allowed"),
        _ => answer::plain(404, "not found: POST /send or GET /health"),
    }
}

async fn send(request: IncomingRequest) -> Response {
    if let Err(refusal) = auth::check(&request) {
        return refusal;
    }
    let body = match body::read_capped(request).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    match smtp_mailer_spin_send::send_json(&body) {
        Ok(receipt) => {
            let (accepted, total) = receipt.accepted_count();
            eprintln!(
                "send: <{}> accepted for {accepted} of {total} recipients",
                receipt.message_id().unwrap_or("")
            );
            json_answer(200, &receipt.to_json())
        }
        Err(e) => {
            eprintln!("send: failed: {e}");
            error_answer(&e)
        }
    }
}
