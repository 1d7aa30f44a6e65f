//! Why choosing a mechanism or running an AUTH exchange failed.

use std::fmt;

use super::Mechanism;
use crate::smtp::reply::Reply;

/// An error of SMTP AUTH: choosing a mechanism, checking the credentials,
/// or the exchange with the server.
///
/// No variant holds a password or a token, and none quotes a client
/// message that carries one: an error can be logged as it is. Text that
/// comes from the server is kept to printable characters and shortened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// A mechanism name this crate does not implement was asked for.
    UnknownMechanism {
        /// The name as given.
        name: String,
    },
    /// The mechanism asked for is not among those the server offers.
    NotOffered {
        /// The mechanism asked for.
        requested: Mechanism,
        /// The mechanisms of the server's EHLO AUTH keyword.
        offered: Vec<String>,
    },
    /// None of the mechanisms the server offers fits the credentials.
    NoCommonMechanism {
        /// The mechanisms of the server's EHLO AUTH keyword.
        offered: Vec<String>,
        /// True when a password was given.
        has_password: bool,
        /// True when a token was given.
        has_token: bool,
    },
    /// Neither a password nor a token was given.
    NoCredentials,
    /// The mechanism needs a credential that was not given.
    MissingCredential {
        /// The mechanism.
        mechanism: Mechanism,
        /// `"password"` or `"token"`.
        needed: &'static str,
    },
    /// A field of the credentials is empty.
    EmptyField {
        /// `"username"`, `"password"`, `"token"` or `"host"`.
        field: &'static str,
    },
    /// A field holds a control character (U+0000 to U+001F, U+007F to
    /// U+009F), which the simplified SASLprep of this crate refuses.
    ControlCharacter {
        /// `"username"`, `"password"`, `"token"` or `"host"`.
        field: &'static str,
    },
    /// The client nonce for SCRAM is unusable.
    InvalidClientNonce {
        /// Why.
        reason: &'static str,
    },
    /// A server challenge is not what the mechanism allows at this step.
    MalformedChallenge {
        /// The mechanism.
        mechanism: Mechanism,
        /// What was wrong.
        detail: String,
    },
    /// The server sent a challenge when the mechanism had nothing more to
    /// say, or after the exchange was over.
    UnexpectedChallenge {
        /// The mechanism.
        mechanism: Mechanism,
    },
    /// SCRAM: the server's nonce does not extend the client's nonce.
    NonceMismatch,
    /// SCRAM: the server asked for fewer iterations than the minimum.
    IterationCountTooLow {
        /// The count the server asked for.
        count: u64,
        /// The least count accepted.
        min: u32,
    },
    /// SCRAM: the server asked for more iterations than the maximum, which
    /// would keep the client busy for too long.
    IterationCountTooHigh {
        /// The count the server asked for (`u64::MAX` when it overflows).
        count: u64,
        /// The greatest count accepted.
        max: u32,
    },
    /// SCRAM: the server requires an extension (`m=`) this client lacks.
    MandatoryExtension,
    /// SCRAM: the server's signature is wrong: the server does not know the
    /// password, or the exchange was tampered with.
    ServerSignatureMismatch,
    /// SCRAM: the server accepted the client without proving that it knows
    /// the password (no server-final message).
    ServerSignatureMissing,
    /// SCRAM: the server ended the exchange with an error (`e=`).
    ServerError {
        /// The server's error value, such as `invalid-proof`.
        message: String,
    },
    /// The server refused the authentication.
    Rejected {
        /// The server's reply (535, 454, 501, ...).
        reply: Reply,
        /// For XOAUTH2 and OAUTHBEARER: the error the server sent before
        /// the refusal, as decoded JSON.
        detail: Option<String>,
    },
}

impl AuthError {
    /// True when the same credentials may succeed later: a 4xx refusal
    /// such as `454 4.7.0 Temporary authentication failure`.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Rejected { reply, .. } if reply.is_transient_negative())
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::UnknownMechanism { name } => {
                write!(f, "unsupported AUTH mechanism {name:?}")
            }
            AuthError::NotOffered { requested, offered } => {
                write!(f, "the server does not offer AUTH {requested}; ")?;
                write_offered(f, offered)
            }
            AuthError::NoCommonMechanism {
                offered,
                has_password,
                has_token,
            } => {
                let what = match (has_password, has_token) {
                    (true, true) => "a password or a token",
                    (true, false) => "a password",
                    _ => "a token",
                };
                write!(f, "no AUTH mechanism of the server works with {what}; ")?;
                write_offered(f, offered)
            }
            AuthError::NoCredentials => write!(f, "AUTH needs a password or a token"),
            AuthError::MissingCredential { mechanism, needed } => {
                write!(f, "AUTH {mechanism} needs a {needed}")
            }
            AuthError::EmptyField { field } => write!(f, "the AUTH {field} is empty"),
            AuthError::ControlCharacter { field } => {
                write!(f, "the AUTH {field} contains a control character")
            }
            AuthError::InvalidClientNonce { reason } => {
                write!(f, "invalid SCRAM client nonce: {reason}")
            }
            AuthError::MalformedChallenge { mechanism, detail } => {
                write!(f, "malformed AUTH {mechanism} challenge: {detail}")
            }
            AuthError::UnexpectedChallenge { mechanism } => {
                write!(f, "unexpected AUTH {mechanism} challenge")
            }
            AuthError::NonceMismatch => write!(
                f,
                "the SCRAM server nonce does not extend the client nonce"
            ),
            AuthError::IterationCountTooLow { count, min } => write!(
                f,
                "the SCRAM server asks for {count} iterations; fewer than {min} are refused as too weak"
            ),
            AuthError::IterationCountTooHigh { count, max } => write!(
                f,
                "the SCRAM server asks for {count} iterations; more than {max} are refused as too costly"
            ),
            AuthError::MandatoryExtension => {
                write!(f, "the SCRAM server requires an unsupported extension")
            }
            AuthError::ServerSignatureMismatch => write!(
                f,
                "the SCRAM server signature is wrong: the server did not prove it knows the password"
            ),
            AuthError::ServerSignatureMissing => write!(
                f,
                "the server accepted SCRAM authentication without sending its signature"
            ),
            AuthError::ServerError { message } => {
                write!(f, "the SCRAM server reported an error: {message}")
            }
            AuthError::Rejected { reply, detail } => {
                write!(f, "server refused AUTH: {}", reply.one_line())?;
                if let Some(detail) = detail {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AuthError {}

fn write_offered(f: &mut fmt::Formatter<'_>, offered: &[String]) -> fmt::Result {
    if offered.is_empty() {
        write!(f, "it offers no AUTH mechanism")
    } else {
        write!(f, "it offers {}", offered.join(", "))
    }
}

/// Server text made fit for an error message: control characters become
/// `?`, and the text is cut after `max` characters.
pub(crate) fn sanitize(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_replaces_controls_and_truncates() {
        assert_eq!(sanitize("a\r\nb", 10), "a??b");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize("abc", 3), "abc");
    }

    #[test]
    fn transient_only_for_4xx_refusals() {
        let rejected = |code| AuthError::Rejected {
            reply: Reply::new(code, "no"),
            detail: None,
        };
        assert!(rejected(454).is_transient());
        assert!(!rejected(535).is_transient());
        assert!(!AuthError::ServerSignatureMismatch.is_transient());
    }

    #[test]
    fn not_offered_names_what_is_offered() {
        let e = AuthError::NotOffered {
            requested: Mechanism::XOAuth2,
            offered: vec!["PLAIN".into(), "LOGIN".into()],
        };
        assert_eq!(
            e.to_string(),
            "the server does not offer AUTH XOAUTH2; it offers PLAIN, LOGIN"
        );
    }
}
