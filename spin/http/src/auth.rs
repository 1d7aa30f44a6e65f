//! The API key: `Authorization: Bearer <api_key>`, where `api_key` is a
//! secret Spin variable.

use spin_sdk::http::{IncomingRequest, Response};

use crate::answer;

/// Lets the request through when it carries the right bearer token;
/// otherwise the answer to give: 401 (with `WWW-Authenticate: Bearer`), or
/// 500 when no key is configured (every request is then refused).
pub fn check(request: &IncomingRequest) -> Result<(), Response> {
    let key = match smtp_mailer_spin_send::variable("api_key") {
        Ok(key) if !key.is_empty() => key,
        Ok(_) => {
            eprintln!("send: refused: the api_key variable is empty");
            return Err(answer::plain(500, "the service has no API key configured"));
        }
        Err(e) => {
            eprintln!("send: refused: {e}");
            return Err(answer::error_answer(&e));
        }
    };
    let given = request.headers().get("authorization");
    let token = given
        .first()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(token) if same(token.as_bytes(), key.as_bytes()) => Ok(()),
        _ => {
            let mut refusal = answer::plain(
                401,
                "a valid API key is needed: Authorization: Bearer <key>",
            );
            refusal.set_header("www-authenticate", "Bearer");
            Err(refusal)
        }
    }
}

/// Compares in a time that depends on the lengths only, not on where the
/// bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
