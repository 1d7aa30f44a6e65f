//! The Redis trigger: the Redis-triggered component composed with the
//! mailer, and a subscription to a channel of a real Redis server whose
//! every message is handed to it, as Spin's `[[trigger.redis]]` does.

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::app::{Sandbox, SpinAppBuilder};
use crate::bindings::RedisAppPre;
use crate::resp::{self, Value};
use crate::{ServeError, REDIS_COMPONENT};

/// The Redis-triggered component composed with the mailer, ready to run:
/// each message runs in a fresh, sandboxed store.
pub struct SpinRedisApp {
    pre: RedisAppPre<crate::store::ServeCtx>,
    sandbox: Sandbox,
}

impl SpinAppBuilder {
    /// Composes the Redis-triggered component with the mailer, compiles it
    /// (or loads it from the cache) and links it.
    ///
    /// Errors: [`ServeError::Compose`] or [`ServeError::Runtime`] when the
    /// components do not fit together or into this host.
    pub fn build_redis(self) -> Result<SpinRedisApp, ServeError> {
        let prepared = self.prepare(REDIS_COMPONENT)?;
        let pre = RedisAppPre::new(prepared.pre).map_err(|e| {
            ServeError::Runtime(format!(
                "the composition is not a Redis-triggered component: {e:#}"
            ))
        })?;
        Ok(SpinRedisApp {
            pre,
            sandbox: prepared.sandbox,
        })
    }
}

impl SpinRedisApp {
    /// Runs the component's `handle-message` on `payload`.
    ///
    /// Errors: [`ServeError::Runtime`] for a trap or the deadline;
    /// [`ServeError::Handler`] when the component answers an error (its log
    /// on standard error says why).
    pub async fn handle_message(&self, payload: Vec<u8>) -> Result<(), ServeError> {
        let trap = |e: wasmtime::Error| ServeError::Runtime(format!("{e:#}"));
        let mut store = self.sandbox.store(self.pre.engine());
        let app = self.pre.instantiate_async(&mut store).await.map_err(trap)?;
        match app
            .fermyon_spin_inbound_redis()
            .call_handle_message(&mut store, &payload)
            .await
            .map_err(trap)?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(ServeError::Handler(
                "the Redis component answered an error".into(),
            )),
        }
    }
}

/// `host:port` of a `redis://host[:port]` address (6379 by default).
fn host_and_port(address: &str) -> Result<String, ServeError> {
    let rest = address
        .strip_prefix("redis://")
        .ok_or_else(|| ServeError::Io(format!("{address:?}: expected redis://host[:port]")))?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') {
        return Err(ServeError::Io(format!(
            "{address:?}: credentials and database numbers are not supported"
        )));
    }
    Ok(
        if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_string()
        } else {
            format!("{rest}:6379")
        },
    )
}

/// Subscribes to `channel` at `address` (`redis://host[:port]`) and runs
/// `app` on every message, each in a task of its own; the outcome is logged
/// on standard error. Returns only when the connection fails.
///
/// Errors: [`ServeError::Io`] when Redis cannot be reached, refuses the
/// subscription, or closes the connection.
pub async fn subscribe(
    app: Arc<SpinRedisApp>,
    address: &str,
    channel: &str,
) -> Result<(), ServeError> {
    let target = host_and_port(address)?;
    let io = |e: std::io::Error| ServeError::Io(format!("redis at {target}: {e}"));
    let mut stream = TcpStream::connect(&target).await.map_err(io)?;
    stream
        .write_all(&resp::command(&[b"SUBSCRIBE", channel.as_bytes()]))
        .await
        .map_err(io)?;
    let mut reader = BufReader::new(stream);
    loop {
        let push = match resp::read(&mut reader).await.map_err(io)? {
            Value::Array(items) => items,
            Value::Error(e) => return Err(ServeError::Io(format!("redis refused: {e}"))),
            other => return Err(ServeError::Io(format!("redis: unexpected {other:?}"))),
        };
        let bulk = |v: &Value| match v {
            Value::Bulk(b) => Some(b.clone()),
            _ => None,
        };
        match push.first().and_then(bulk).as_deref() {
            Some(b"subscribe") => eprintln!("redis: subscribed to {channel} at {target}"),
            Some(b"message") if push.len() == 3 => {
                let payload = bulk(&push[2]).unwrap_or_default();
                let app = Arc::clone(&app);
                tokio::task::spawn(async move {
                    if let Err(e) = app.handle_message(payload).await {
                        eprintln!("redis: a message failed: {e}");
                    }
                });
            }
            _ => {}
        }
    }
}

/// A Redis trigger for [`serve`](crate::serve): the app and where its
/// messages come from.
pub struct RedisTrigger {
    /// The Redis-triggered app.
    pub app: SpinRedisApp,
    /// `redis://host[:port]`.
    pub address: String,
    /// The channel to subscribe to.
    pub channel: String,
}

/// Runs `trigger` until the process ends; a lost connection is retried
/// every two seconds.
pub(crate) async fn run(trigger: RedisTrigger) {
    let app = Arc::new(trigger.app);
    loop {
        if let Err(e) = subscribe(Arc::clone(&app), &trigger.address, &trigger.channel).await {
            eprintln!("redis: {e}; retrying in 2 s");
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            host_and_port("redis://127.0.0.1").unwrap(),
            "127.0.0.1:6379"
        );
        assert_eq!(
            host_and_port("redis://127.0.0.1:7000").unwrap(),
            "127.0.0.1:7000"
        );
        assert!(host_and_port("127.0.0.1:7000").is_err());
        assert!(host_and_port("redis://user:pw@host:1").is_err());
    }
}
