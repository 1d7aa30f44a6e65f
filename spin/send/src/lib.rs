//! What the Spin app's components share: the mailer's `sender` and `message`
//! interfaces, imported (Spin or `smtp-mailer serve` composes the mailer
//! component in as a dependency, so it is never linked twice); the relay's
//! settings, read from Spin variables; nodemailer-style JSON messages made
//! into the mailer's; the durable queue reached through Spin's outbound
//! Redis (`queue`), and what each request does (`edge`): accept messages
//! into the queue, send one now with the suppression list consulted and
//! the queue as a fallback, answer a status, honour `Idempotency-Key`.
//!
//! ```no_run
//! let answer = smtp_mailer_spin_send::post_send(
//!     br#"{"from": "a@example.org", "to": "b@example.org"}"#,
//!     None,
//!     false,
//! );
//! println!("{} {}", answer.status, answer.body);
//! ```

mod bindings;
mod convert;
mod edge;
mod failure;
mod queue;
mod receipt;
mod settings;

pub use edge::{get_status, post_messages, post_send, redis_message, Answer};
pub use failure::{Retry, SendError};
pub use queue::{EdgeQueue, Seen, DEFAULT_IDEMPOTENCY_WINDOW_SECONDS, DEFAULT_REDIS_ADDRESS};
pub use receipt::Receipt;
pub use settings::{dkim_settings, optional, relay_settings, variable, RelaySettings};
