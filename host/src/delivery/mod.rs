//! Sending at volume: a [`SessionPool`] per relay, failover across relays,
//! per-recipient outcomes with a [`RetryPolicy`], token-bucket rate limits
//! per relay and per recipient domain, the suppression list, and
//! [`Metrics`].
//!
//! A [`Deliverer`] makes one attempt of one message; the queue worker
//! ([`crate::worker`]) decides when the next attempt happens and remembers
//! which recipients are finished.

mod deliverer;
mod metrics;
mod outcome;
mod pool;
mod rate;
mod retry;

pub use deliverer::{envelope_recipients, Attempt, Deliverer, DeliveryOptions, Refusal};
pub use metrics::{Metrics, RecipientCount};
pub use pool::{Outgoing, PoolOptions, SessionPool};
pub use rate::{Rate, RateError, TokenBucket};
pub use retry::RetryPolicy;
