//! Sending at volume: a [`SessionPool`] per relay, failover across relays,
//! per-recipient outcomes with a [`RetryPolicy`], token-bucket rate limits
//! per relay and per recipient domain, the suppression list, and
//! [`Metrics`].
//!
//! A [`Deliverer`] makes one attempt of one message; the queue worker
//! ([`worker::Worker`]) decides when the next attempt happens and remembers
//! which recipients are finished, over any [`queue::Queue`] (SQLite or Redis
//! Streams). [`json`] reads the JSON message format (nodemailer's field
//! names) that the queue stores and the CLI takes.
//!
//! This crate sits over the embedding library (`smtp-mailer-host`) and the
//! queue (`smtp-mailer-queue`); an application that only loads the plugin
//! needs neither it nor their dependencies.
//!
//! ```no_run
//! use std::sync::Arc;
//! use smtp_mailer_delivery::{Deliverer, DeliveryOptions, Metrics, PoolOptions};
//! use smtp_mailer_host::{Mailbox, Mailer, Message, Server};
//!
//! let mailer = Arc::new(Mailer::new()?);
//! let relays = vec![
//!     Server::new("smtp1.example.org", 587),
//!     Server::new("smtp2.example.org", 587),
//! ];
//! let options = DeliveryOptions {
//!     pool: PoolOptions { max_sessions: 8, ..PoolOptions::default() },
//!     relay_rate: Some("50/s".parse().expect("a rate")),
//!     ..DeliveryOptions::default()
//! };
//! let metrics = Arc::new(Metrics::default());
//! let deliverer = Deliverer::new(mailer, relays, options, None, metrics.clone())?;
//! let message = Message {
//!     from: Mailbox::new("shop@example.org"),
//!     to: vec![Mailbox::new("ada@example.org"), Mailbox::new("alan@example.org")],
//!     subject: "Your receipt".into(),
//!     text: Some("Thanks!".into()),
//!     ..Message::default()
//! };
//! let attempt = deliverer.attempt(&message, &[]);
//! for d in &attempt.delivered {
//!     println!("{}: accepted by {} ({})", d.address, d.relay, d.reply);
//! }
//! // Retry these later, with the others as `done`, so only they go again.
//! let done: Vec<String> = attempt.finished().map(String::from).collect();
//! for refusal in &attempt.deferred {
//!     println!("{}: {} (retry later)", refusal.address, refusal.reason);
//! }
//! # let _ = done;
//! print!("{}", metrics.render_prometheus());
//! # Ok::<(), smtp_mailer_host::Error>(())
//! ```

// `Error` is the host library's plain value of about 130 bytes, kept
// unboxed so that callers match on its kind directly.
#![allow(clippy::result_large_err)]

mod deliverer;
pub mod json;
mod metrics;
mod outcome;
mod pool;
mod rate;
mod retry;
pub mod worker;

pub use deliverer::{envelope_recipients, Attempt, Delivered, Deliverer, DeliveryOptions, Refusal};
pub use metrics::{Metrics, RecipientCount};
pub use pool::{Outgoing, PoolOptions, SessionPool};
pub use rate::{Rate, RateError, TokenBucket};
pub use retry::RetryPolicy;

/// The durable queue and the suppression list (SQLite or Redis Streams).
pub use smtp_mailer_queue as queue;
