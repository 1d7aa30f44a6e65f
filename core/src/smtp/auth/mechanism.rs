//! The SASL mechanisms this crate speaks, and how one is chosen.

use std::fmt;

use super::AuthError;

/// A SASL mechanism for SMTP AUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// PLAIN (RFC 4616): username and password in one message.
    Plain,
    /// LOGIN (draft-murchison-sasl-login): username and password in answer
    /// to two prompts.
    Login,
    /// XOAUTH2 (Google, Microsoft): an OAuth 2.0 bearer token.
    XOAuth2,
    /// OAUTHBEARER (RFC 7628): an OAuth 2.0 bearer token.
    OAuthBearer,
    /// SCRAM-SHA-256 (RFC 7677): a challenge-response on the password that
    /// never sends it, and proves that the server knows it too.
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, strongest first: the order [`Mechanism::choose`]
    /// tries them in. Token mechanisms come first: whoever configures a
    /// token means it to be used.
    pub const PREFERENCE: [Mechanism; 5] = [
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
        Mechanism::ScramSha256,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The name on the wire, as in `AUTH PLAIN`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// The mechanism of a wire name, in any case; `None` for a mechanism
    /// this crate does not implement.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::PREFERENCE
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// True for the mechanisms that take a token rather than a password.
    pub fn uses_token(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }

    /// Chooses the mechanism to authenticate with.
    ///
    /// `offered` holds the mechanisms of the server's EHLO `AUTH` keyword
    /// (compared without regard to case). With `requested`, that mechanism
    /// is used if the server offers it and the credentials fit it.
    /// Otherwise the first of [`Mechanism::PREFERENCE`] that both sides
    /// support and the credentials fit is chosen: OAUTHBEARER, then XOAUTH2
    /// for a token; SCRAM-SHA-256, then PLAIN, then LOGIN for a password.
    ///
    /// # Errors
    ///
    /// [`AuthError::UnknownMechanism`] for a requested name this crate does
    /// not implement, [`AuthError::NotOffered`] (naming what the server
    /// offers) and [`AuthError::MissingCredential`] for a requested
    /// mechanism that cannot be used, [`AuthError::NoCredentials`] and
    /// [`AuthError::NoCommonMechanism`] otherwise.
    pub fn choose(
        offered: &[String],
        has_password: bool,
        has_token: bool,
        requested: Option<&str>,
    ) -> Result<Mechanism, AuthError> {
        let is_offered = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
        let fits = |m: Mechanism| {
            if m.uses_token() {
                has_token
            } else {
                has_password
            }
        };
        if let Some(name) = requested {
            let mechanism =
                Mechanism::from_name(name.trim()).ok_or_else(|| AuthError::UnknownMechanism {
                    name: name.to_string(),
                })?;
            if !is_offered(mechanism) {
                return Err(AuthError::NotOffered {
                    requested: mechanism,
                    offered: offered.to_vec(),
                });
            }
            if !fits(mechanism) {
                return Err(AuthError::MissingCredential {
                    mechanism,
                    needed: if mechanism.uses_token() {
                        "token"
                    } else {
                        "password"
                    },
                });
            }
            return Ok(mechanism);
        }
        if !has_password && !has_token {
            return Err(AuthError::NoCredentials);
        }
        Mechanism::PREFERENCE
            .into_iter()
            .find(|&m| fits(m) && is_offered(m))
            .ok_or_else(|| AuthError::NoCommonMechanism {
                offered: offered.to_vec(),
                has_password,
                has_token,
            })
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_round_trip() {
        for m in Mechanism::PREFERENCE {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(Mechanism::from_name(&m.name().to_lowercase()), Some(m));
        }
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    }

    #[test]
    fn password_prefers_scram_then_plain_then_login() {
        let all = offered(&["LOGIN", "PLAIN", "SCRAM-SHA-256", "XOAUTH2"]);
        assert_eq!(
            Mechanism::choose(&all, true, false, None),
            Ok(Mechanism::ScramSha256)
        );
        assert_eq!(
            Mechanism::choose(&offered(&["LOGIN", "PLAIN"]), true, false, None),
            Ok(Mechanism::Plain)
        );
        assert_eq!(
            Mechanism::choose(&offered(&["login"]), true, false, None),
            Ok(Mechanism::Login)
        );
    }

    #[test]
    fn token_prefers_oauthbearer_then_xoauth2() {
        let both = offered(&["XOAUTH2", "OAUTHBEARER", "PLAIN"]);
        assert_eq!(
            Mechanism::choose(&both, false, true, None),
            Ok(Mechanism::OAuthBearer)
        );
        assert_eq!(
            Mechanism::choose(&offered(&["PLAIN", "XOAUTH2"]), false, true, None),
            Ok(Mechanism::XOAuth2)
        );
        // With both credentials the token wins; without a token mechanism
        // the password is used.
        assert_eq!(
            Mechanism::choose(&both, true, true, None),
            Ok(Mechanism::OAuthBearer)
        );
        assert_eq!(
            Mechanism::choose(&offered(&["PLAIN"]), true, true, None),
            Ok(Mechanism::Plain)
        );
    }

    #[test]
    fn nothing_in_common() {
        let err = Mechanism::choose(&offered(&["PLAIN", "LOGIN"]), false, true, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no AUTH mechanism of the server works with a token; it offers PLAIN, LOGIN"
        );
        let err = Mechanism::choose(&[], true, false, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no AUTH mechanism of the server works with a password; it offers no AUTH mechanism"
        );
        assert_eq!(
            Mechanism::choose(&offered(&["PLAIN"]), false, false, None),
            Err(AuthError::NoCredentials)
        );
    }

    #[test]
    fn requested_mechanism() {
        let server = offered(&["PLAIN", "LOGIN"]);
        assert_eq!(
            Mechanism::choose(&server, true, false, Some("login")),
            Ok(Mechanism::Login)
        );
        let err = Mechanism::choose(&server, false, true, Some("XOAUTH2")).unwrap_err();
        assert_eq!(
            err,
            AuthError::NotOffered {
                requested: Mechanism::XOAuth2,
                offered: server.clone(),
            }
        );
        assert!(err.to_string().contains("it offers PLAIN, LOGIN"));
        assert_eq!(
            Mechanism::choose(&server, false, true, Some("PLAIN")),
            Err(AuthError::MissingCredential {
                mechanism: Mechanism::Plain,
                needed: "password"
            })
        );
        assert_eq!(
            Mechanism::choose(&server, true, false, Some("CRAM-MD5")),
            Err(AuthError::UnknownMechanism {
                name: "CRAM-MD5".into()
            })
        );
    }
}
