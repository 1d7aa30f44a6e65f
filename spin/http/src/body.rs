//! The request body, read up to a cap (`max_body_bytes`): a larger body is
//! refused with 413 without being read whole.

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Response};

use crate::answer;

/// The cap when `max_body_bytes` is empty: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 << 20;

fn cap() -> Result<usize, Response> {
    let value =
        smtp_mailer_spin_send::optional("max_body_bytes").map_err(|e| answer::error_answer(&e))?;
    let Some(value) = value else {
        return Ok(DEFAULT_MAX_BODY_BYTES);
    };
    value.parse().map_err(|_| {
        eprintln!("send: refused: the max_body_bytes variable is not a number");
        answer::plain(500, "the service's max_body_bytes setting is not a number")
    })
}

/// The whole body, or the answer to give: 413 past the cap (declared by
/// Content-Length or found while reading), 400 when it cannot be read.
pub async fn read_capped(request: IncomingRequest) -> Result<Vec<u8>, Response> {
    let cap = cap()?;
    let too_large = || answer::plain(413, &format!("the body is larger than {cap} bytes"));
    let declared = request.headers().get("content-length");
    if let Some(length) = declared
        .first()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if length > cap as u64 {
            return Err(too_large());
        }
    }
    let mut body = Vec::new();
    let mut stream = request.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| answer::plain(400, "the body could not be read"))?;
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
