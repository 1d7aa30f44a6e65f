//! What the client authenticates with, kept out of logs.
//!
//! # SASLprep
//!
//! RFC 4013 SASLprep (mapping, NFKC normalisation, prohibited and
//! bidirectional characters) is not implemented. This crate applies a
//! simplified profile instead: a username, password or token that is empty
//! or holds a control character (U+0000 to U+001F, U+007F to U+009F) is
//! refused, and every other string is used exactly as given, without any
//! mapping or normalisation. ASCII credentials are unaffected; a non-ASCII
//! password works when the server stored the same code points (true for
//! passwords typed in the usual composed form, NFC).

use std::fmt;

use super::AuthError;

/// A password or an access token. Its `Debug` output is `Secret(<redacted>)`
/// and it has no `Display`, so it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password or a token.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for building the bytes sent to the server.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A username with a password, a token, or both.
///
/// The username is the authentication identity (the mailbox or login
/// name); it is not secret and shows in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: Option<Secret>,
    token: Option<Secret>,
}

impl Credentials {
    /// A username with a password, for SCRAM-SHA-256, PLAIN and LOGIN.
    pub fn with_password(username: impl Into<String>, password: Secret) -> Credentials {
        Credentials {
            username: username.into(),
            password: Some(password),
            token: None,
        }
    }

    /// A username with an OAuth 2.0 access token, for OAUTHBEARER and
    /// XOAUTH2.
    pub fn with_token(username: impl Into<String>, token: Secret) -> Credentials {
        Credentials {
            username: username.into(),
            password: None,
            token: Some(token),
        }
    }

    /// Adds (or replaces) the password.
    pub fn and_password(mut self, password: Secret) -> Credentials {
        self.password = Some(password);
        self
    }

    /// Adds (or replaces) the token.
    pub fn and_token(mut self, token: Secret) -> Credentials {
        self.token = Some(token);
        self
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// True when a password was given.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// True when a token was given.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub(crate) fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    pub(crate) fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }
}

/// The simplified SASLprep of this crate (see the module docs): refuses an
/// empty value or one with a control character.
pub(crate) fn check_field(field: &'static str, value: &str) -> Result<(), AuthError> {
    if value.is_empty() {
        return Err(AuthError::EmptyField { field });
    }
    if value.chars().any(char::is_control) {
        return Err(AuthError::ControlCharacter { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let creds = Credentials::with_password("alice", Secret::new("hunter2"))
            .and_token(Secret::new("ya29.token"));
        let debug = format!("{creds:?} {:#?}", creds);
        assert!(debug.contains("alice"));
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("hunter2"));
        assert!(!debug.contains("ya29"));
    }

    #[test]
    fn check_field_refuses_empty_and_controls() {
        assert_eq!(check_field("username", "alice"), Ok(()));
        assert_eq!(check_field("password", "pässwörd ✓"), Ok(()));
        assert_eq!(
            check_field("username", ""),
            Err(AuthError::EmptyField { field: "username" })
        );
        for bad in ["a\0b", "a\nb", "a\x01", "\x7f", "a\u{85}b"] {
            assert_eq!(
                check_field("password", bad),
                Err(AuthError::ControlCharacter { field: "password" }),
                "{bad:?}"
            );
        }
    }
}
