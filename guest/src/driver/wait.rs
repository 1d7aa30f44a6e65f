//! Waiting on a wasi:io pollable under a deadline of the monotonic clock,
//! and the names of wasi:sockets error codes.
//!
//! Every wait of the connection goes through [`Deadline::wait`]: the thing
//! awaited and a timer are polled together, so a time limit holds in any
//! WASI 0.2 host, whatever the host does while the operation is pending.

use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{self, Pollable};
use wasip2::sockets::network::ErrorCode;

/// A point of the monotonic clock, or none (wait as long as it takes).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<monotonic_clock::Instant>);

/// The deadline passed before the pollable was ready.
#[derive(Debug)]
pub struct TimedOut;

impl Deadline {
    /// `limit` from now; `None` never passes.
    pub fn after(limit: Option<Duration>) -> Deadline {
        Deadline(limit.map(|limit| {
            let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
            monotonic_clock::now().saturating_add(nanos)
        }))
    }

    /// Blocks until `pollable` is ready, or fails once the deadline passed.
    /// A pollable that is ready wins over a deadline that passed too.
    pub fn wait(&self, pollable: &Pollable) -> Result<(), TimedOut> {
        let Some(at) = self.0 else {
            pollable.block();
            return Ok(());
        };
        let timer = monotonic_clock::subscribe_instant(at);
        if poll::poll(&[pollable, &timer]).contains(&0) {
            Ok(())
        } else {
            Err(TimedOut)
        }
    }
}

/// The condition an error code names, in words: `connection-refused`
/// reads "connection refused". WASI's codes are not the operating
/// system's, so no number goes with them.
pub fn condition(code: ErrorCode) -> String {
    code.name().replace('-', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_words() {
        assert_eq!(
            condition(ErrorCode::ConnectionRefused),
            "connection refused"
        );
        assert_eq!(condition(ErrorCode::AccessDenied), "access denied");
        assert_eq!(
            condition(ErrorCode::TemporaryResolverFailure),
            "temporary resolver failure"
        );
    }
}
