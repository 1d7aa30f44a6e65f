//! The client side of SMTP AUTH (RFC 4954): SASL mechanisms, sans I/O.
//!
//! - [`Mechanism`] names the mechanisms (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER,
//!   SCRAM-SHA-256) and [`Mechanism::choose`] picks the strongest one that
//!   the server offers and the credentials fit.
//! - [`Credentials`] holds the username with a password or a token, each a
//!   [`Secret`] whose `Debug` is redacted. No error and no `Debug` output of
//!   this module shows a secret.
//! - [`Authenticator`] runs one exchange: it gives the AUTH command line,
//!   then the line to send for each 334 challenge, and checks the final
//!   reply. It does no I/O, reads no clock and draws no random numbers: the
//!   SCRAM client nonce is passed in.
//!
//! Credentials go through a simplified SASLprep: control characters are
//! refused and nothing is normalised (see [`credentials`]).
//!
//! ```
//! use smtp_mailer_core::smtp::auth::{Authenticator, Credentials, Mechanism, Secret, Step};
//! use smtp_mailer_core::smtp::reply::Reply;
//!
//! let offered = vec!["LOGIN".to_string(), "PLAIN".to_string()];
//! let mechanism = Mechanism::choose(&offered, true, false, None).unwrap();
//! let creds = Credentials::with_password("alice", Secret::new("wonderland"));
//! let (line, mut auth) =
//!     Authenticator::start(mechanism, &creds, "unused-by-plain", "mx.example", 587).unwrap();
//! assert_eq!(line, "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n");
//! let step = auth.handle_reply(&Reply::new(235, "2.7.0 Authentication successful"));
//! assert_eq!(step, Ok(Step::Done));
//! ```

pub mod credentials;
pub mod error;
pub mod exchange;
pub mod mechanism;
pub mod scram;

pub use credentials::{Credentials, Secret};
pub use error::AuthError;
pub use exchange::{Authenticator, Step};
pub use mechanism::Mechanism;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;

/// Base64 as sent: RFC 4648 with padding.
const B64: GeneralPurpose = STANDARD;
/// Base64 as accepted from servers: padding optional.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
