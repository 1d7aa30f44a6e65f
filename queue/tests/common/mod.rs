//! What the backend test files share: constants, test messages and the
//! behaviour checks that every backend must pass ([`behaviours`]).

pub mod behaviours;

use std::time::Duration;

use smtp_mailer_queue::NewMessage;

/// A claim that returns at once when nothing is ready.
pub const NO_WAIT: Duration = Duration::ZERO;
/// A lease long enough that no test sees it run out.
pub const LEASE: Duration = Duration::from_secs(60);

/// Message `n`: id `<n@example.com>`, payload `{"n":n}`.
pub fn message(n: usize) -> NewMessage {
    NewMessage {
        message_id: format!("<{n}@example.com>"),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}
