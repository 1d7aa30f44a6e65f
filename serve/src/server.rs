//! The HTTP/1.1 server: one task per connection, one store per request.

use std::sync::Arc;

use hyper::server::conn::http1;

use crate::app::{Io, SpinHttpApp};
use crate::{RedisTrigger, ServeError};

/// Serves `app` on `listener` until the process ends, and runs `redis`
/// beside it when given. A request the app fails on (a trap, the deadline)
/// is answered 500 and logged on standard error; the server goes on.
///
/// Errors: [`ServeError::Io`] when the listener cannot be used.
pub fn serve(
    app: SpinHttpApp,
    listener: std::net::TcpListener,
    redis: Option<RedisTrigger>,
) -> Result<(), ServeError> {
    let io = |e: std::io::Error| ServeError::Io(e.to_string());
    listener.set_nonblocking(true).map_err(io)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    let app = Arc::new(app);
    runtime.block_on(async move {
        if let Some(trigger) = redis {
            tokio::task::spawn(crate::redis::run(trigger));
        }
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
            let app = Arc::clone(&app);
            tokio::task::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let app = Arc::clone(&app);
                    async move { answer(&app, request).await }
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
    app: &SpinHttpApp,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<
    hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
    std::convert::Infallible,
> {
    match app.handle(request).await {
        Ok(response) => Ok(response),
        Err(e) => {
            eprintln!("serve: request failed: {e:#}");
            use http_body_util::BodyExt;
            let body = http_body_util::Full::new(bytes::Bytes::from_static(
                b"{\"status\":\"failed\",\"error\":{\"message\":\"the app failed on this request\"}}",
            ))
            .map_err(|never| match never {})
            .boxed_unsync();
            let mut response = hyper::Response::new(body);
            *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            Ok(response)
        }
    }
}
