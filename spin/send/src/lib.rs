//! What the Spin app's components share: the mailer's `sender` interface,
//! imported (Spin or `smtp-mailer serve` composes the mailer component in as
//! a dependency, so it is never linked twice); the relay's settings, read
//! from Spin variables; a nodemailer-style JSON message made into the
//! mailer's message; and the outcome of a send as a JSON receipt.
//!
//! ```no_run
//! let outcome = smtp_mailer_spin_send::send_json(br#"{"from": "a@example.org", "to": "b@example.org"}"#);
//! match outcome {
//!     Ok(receipt) => println!("{}", receipt.to_json()),
//!     Err(e) => eprintln!("{e}"),
//! }
//! ```

mod bindings;
mod convert;
mod failure;
mod receipt;
mod settings;

pub use failure::{Retry, SendError};
pub use receipt::Receipt;
pub use settings::{dkim_settings, optional, relay_settings, variable, RelaySettings};

/// Parses `body` as a JSON message, reads the relay settings, and sends the
/// message through the mailer.
///
/// Errors: [`SendError::Input`] naming the field for a malformed message
/// (from the JSON, or the mailer's own checks); [`SendError::Settings`]
/// naming the variable at fault; [`SendError::Mail`] for a failed send.
pub fn send_json(body: &[u8]) -> Result<Receipt, SendError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| SendError::input(None, "the body is not UTF-8 text"))?;
    let message =
        smtp_mailer_json::parse_message(text).map_err(|e| SendError::input(e.field, e.reason))?;
    let mut message = convert::message(message)?;
    message.dkim = dkim_settings()?;
    let settings = relay_settings()?;
    let server = settings.server();
    match bindings::sender::send(&server, message) {
        Ok(report) => Ok(Receipt::from_report(report)),
        Err(e) => Err(SendError::from_mailer(e)),
    }
}
