//! The HTTP/1.1 server: one task per connection, one store per request.

use std::sync::Arc;

use hyper::server::conn::http1;

use crate::app::{Io, SpinHttpApp};
use crate::route::{pick, Route};
use crate::{RedisTrigger, ServeError};

/// Serves the HTTP `routes` on `listener` until the process ends, and runs
/// the `redis` triggers beside them (with no listener, only those). Each
/// request goes to the most specific route's app; a path no route matches
/// is answered 404. A request the app fails on (a trap, the deadline) is
/// answered 500 and logged on standard error; the server goes on.
///
/// Errors: [`ServeError::Io`] when the listener cannot be used.
pub fn serve(
    routes: Vec<(Route, SpinHttpApp)>,
    listener: Option<std::net::TcpListener>,
    redis: Vec<RedisTrigger>,
) -> Result<(), ServeError> {
    let io = |e: std::io::Error| ServeError::Io(e.to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    let routes = Arc::new(routes);
    runtime.block_on(async move {
        let mut triggers = Vec::new();
        for trigger in redis {
            triggers.push(tokio::task::spawn(crate::redis::run(trigger)));
        }
        let Some(listener) = listener else {
            for trigger in triggers {
                let _ = trigger.await;
            }
            return Ok(());
        };
        listener.set_nonblocking(true).map_err(io)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(io)?;
        loop {
            let (client, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("serve: accept failed: {e}");
                    continue;
                }
            };
            let _ = client.set_nodelay(true);
            let routes = Arc::clone(&routes);
            tokio::task::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let routes = Arc::clone(&routes);
                    async move { answer(&routes, request).await }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(Io::new(client), service)
                    .await
                {
                    eprintln!("serve: connection from {peer}: {e}");
                }
            });
        }
    })
}

async fn answer(
    routes: &[(Route, SpinHttpApp)],
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<
    hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
    std::convert::Infallible,
> {
    let Some(app) = pick(routes, request.uri().path()) else {
        return Ok(failed(
            hyper::StatusCode::NOT_FOUND,
            "no route matches this path",
        ));
    };
    match app.handle(request).await {
        Ok(response) => Ok(response),
        Err(e) => {
            eprintln!("serve: request failed: {e:#}");
            Ok(failed(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                "the app failed on this request",
            ))
        }
    }
}

/// `{"status":"failed","error":{"message":...}}` with `status`.
fn failed(
    status: hyper::StatusCode,
    message: &str,
) -> hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody> {
    use http_body_util::BodyExt;
    let text = format!("{{\"status\":\"failed\",\"error\":{{\"message\":\"{message}\"}}}}");
    let body = http_body_util::Full::new(bytes::Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
