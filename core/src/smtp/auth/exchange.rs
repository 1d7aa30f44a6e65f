//! One AUTH exchange (RFC 4954), sans I/O.

use std::fmt;

use base64::Engine as _;

use super::credentials::{check_field, Credentials, Secret};
use super::error::sanitize;
use super::scram::{self, ScramClient, ServerCheck};
use super::{AuthError, Mechanism, B64, B64_LENIENT};
use crate::smtp::reply::Reply;

/// The longest AUTH command line with an initial response, CRLF included:
/// RFC 4954 keeps the AUTH command within the command line limit of RFC
/// 5321 (512 octets). A longer initial response (a large OAuth token) is
/// sent instead in answer to the server's empty challenge.
pub const MAX_AUTH_LINE: usize = 512;
/// The longest challenge accepted, base64 and before decoding.
pub const MAX_CHALLENGE_LEN: usize = 12288;

/// The line that cancels an exchange (RFC 4954 section 4).
const CANCEL: &str = "*\r\n";

/// What to do after a reply of the exchange.
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this line, then read the next reply: a base64 response with
    /// CRLF, an empty line, or `*` to cancel (then the server answers 501
    /// and [`Authenticator::finish_failure`] tells why the client
    /// cancelled). It may carry the password: it must not be logged.
    Respond(String),
    /// The server accepted the authentication (and, for SCRAM, proved it
    /// knows the password). Only [`Authenticator::handle_reply`] returns it.
    Done,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Respond(line) if line == CANCEL => f.write_str("Respond(\"*\\r\\n\")"),
            Step::Respond(_) => f.write_str("Respond(<redacted>)"),
            Step::Done => f.write_str("Done"),
        }
    }
}

/// The client side of one AUTH exchange.
///
/// [`Authenticator::start`] gives the AUTH command line. Then, for each
/// reply: a 334 challenge goes to [`Authenticator::step`], which gives the
/// line to send; the final reply goes to [`Authenticator::finish_success`]
/// (235) or [`Authenticator::finish_failure`] (anything else).
/// [`Authenticator::handle_reply`] does that dispatch for a whole [`Reply`].
///
/// Problems with a challenge do not end the exchange at once: the client
/// answers `*` to cancel, as RFC 4954 asks, so that the connection stays in
/// step with the server, and the reason comes from
/// [`Authenticator::finish_failure`] with the server's 501.
pub struct Authenticator {
    mechanism: Mechanism,
    state: State,
}

enum State {
    /// The initial response did not fit on the AUTH line: it is sent in
    /// answer to the server's empty challenge.
    Deferred { response: Secret, then: Box<State> },
    /// PLAIN, or LOGIN after the password: nothing more to send.
    Sent,
    /// LOGIN: answering the server's prompts.
    Login {
        username: String,
        password: Secret,
        sent_username: bool,
    },
    /// XOAUTH2 or OAUTHBEARER after the token: a challenge now is the
    /// server's error.
    OAuthSent,
    /// XOAUTH2 or OAUTHBEARER after the server's error challenge: the
    /// refusal follows.
    OAuthFailed { detail: String },
    /// SCRAM: waiting for the server-first message.
    ScramFirst(ScramClient),
    /// SCRAM: waiting for the server-final message.
    ScramFinal(ServerCheck),
    /// SCRAM: the server's signature is verified; 235 follows.
    ScramVerified,
    /// The client cancelled; the server's 501 follows.
    Cancelled(AuthError),
    /// The final reply was handled.
    Over,
}

impl Authenticator {
    /// Starts an exchange: checks the credentials for `mechanism` and
    /// returns the AUTH command line (such as `"AUTH PLAIN AGFsaWNl...\r\n"`,
    /// with the initial response whenever the mechanism has one and it
    /// fits the line) and the exchange.
    ///
    /// `client_nonce` is used by SCRAM only: at least 16 printable ASCII
    /// characters without `,`, fresh and random for every exchange (such as
    /// 18 random bytes in base64). `host` and `port` are the server's, for
    /// OAUTHBEARER only.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingCredential`] when the credentials lack what the
    /// mechanism needs; [`AuthError::EmptyField`] and
    /// [`AuthError::ControlCharacter`] for an unusable username, password,
    /// token or host; [`AuthError::InvalidClientNonce`] for SCRAM.
    pub fn start(
        mechanism: Mechanism,
        credentials: &Credentials,
        client_nonce: &str,
        host: &str,
        port: u16,
    ) -> Result<(String, Authenticator), AuthError> {
        let username = credentials.username();
        check_field("username", username)?;
        let (initial, then) = match mechanism {
            Mechanism::Plain => {
                let password = password(mechanism, credentials)?;
                let message = format!("\0{username}\0{}", password.expose());
                (Some(Secret::new(B64.encode(message))), State::Sent)
            }
            Mechanism::Login => {
                let password = password(mechanism, credentials)?;
                let state = State::Login {
                    username: username.to_string(),
                    password: password.clone(),
                    sent_username: false,
                };
                (None, state)
            }
            Mechanism::XOAuth2 => {
                let token = token(mechanism, credentials)?;
                let message = format!("user={username}\x01auth=Bearer {}\x01\x01", token.expose());
                (Some(Secret::new(B64.encode(message))), State::OAuthSent)
            }
            Mechanism::OAuthBearer => {
                let token = token(mechanism, credentials)?;
                check_field("host", host)?;
                let message = format!(
                    "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
                    gs2_name(username),
                    token.expose()
                );
                (Some(Secret::new(B64.encode(message))), State::OAuthSent)
            }
            Mechanism::ScramSha256 => {
                let password = password(mechanism, credentials)?;
                let client = ScramClient::new(username, password, client_nonce)?;
                let first = B64.encode(client.client_first());
                (Some(Secret::new(first)), State::ScramFirst(client))
            }
        };
        let name = mechanism.name();
        let (line, state) = match initial {
            None => (format!("AUTH {name}\r\n"), then),
            Some(response) => {
                let line = format!("AUTH {name} {}\r\n", response.expose());
                if line.len() <= MAX_AUTH_LINE {
                    (line, then)
                } else {
                    let state = State::Deferred {
                        response,
                        then: Box::new(then),
                    };
                    (format!("AUTH {name}\r\n"), state)
                }
            }
        };
        Ok((line, Authenticator { mechanism, state }))
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Why the client cancelled the exchange, once it has.
    pub fn cancel_reason(&self) -> Option<&AuthError> {
        match &self.state {
            State::Cancelled(error) => Some(error),
            _ => None,
        }
    }

    /// Answers a 334 challenge: `challenge` is the reply's text, base64.
    ///
    /// Returns the line to send. A challenge the mechanism does not allow
    /// (malformed, a wrong SCRAM server signature, one too many) is
    /// answered with `*` to cancel, and its reason is kept for
    /// [`Authenticator::finish_failure`].
    ///
    /// # Errors
    ///
    /// [`AuthError::UnexpectedChallenge`] when the exchange is already
    /// cancelled or over: the server broke the protocol, and the
    /// connection must be closed.
    pub fn step(&mut self, challenge: &str) -> Result<Step, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Over);
        if matches!(state, State::Cancelled(_) | State::Over) {
            self.state = state;
            return Err(self.unexpected());
        }
        match self.advance(state, challenge) {
            Ok((line, next)) => {
                self.state = next;
                Ok(Step::Respond(line))
            }
            Err(error) => {
                self.state = State::Cancelled(error);
                Ok(Step::Respond(CANCEL.to_string()))
            }
        }
    }

    /// Handles a 235 reply.
    ///
    /// For SCRAM the server's signature must have been verified, from the
    /// last 334 challenge or from `reply`'s text, where some servers carry
    /// the server-final message as base64.
    ///
    /// # Errors
    ///
    /// For SCRAM: [`AuthError::ServerSignatureMissing`],
    /// [`AuthError::ServerSignatureMismatch`] or [`AuthError::ServerError`];
    /// the session is then not trustworthy and must be closed. After a
    /// cancel: the reason of the cancel.
    pub fn finish_success(&mut self, reply: &Reply) -> Result<(), AuthError> {
        let state = std::mem::replace(&mut self.state, State::Over);
        match state {
            State::ScramFinal(check) => {
                let server_final = reply
                    .lines
                    .iter()
                    .flat_map(|l| l.split_whitespace())
                    .find_map(|word| {
                        B64_LENIENT
                            .decode(word)
                            .ok()
                            .filter(|data| scram::is_server_final(data))
                    });
                match server_final {
                    Some(data) => check.verify(&data),
                    None => Err(AuthError::ServerSignatureMissing),
                }
            }
            State::ScramFirst(_) => Err(AuthError::ServerSignatureMissing),
            State::Deferred { then, .. } if matches!(*then, State::ScramFirst(_)) => {
                Err(AuthError::ServerSignatureMissing)
            }
            State::Cancelled(error) => Err(error),
            State::Over => Err(self.unexpected()),
            _ => Ok(()),
        }
    }

    /// Handles a reply other than 235 or 334 (535, 454, 501, ...) and
    /// returns the error to report: after a cancel, the client's reason;
    /// otherwise [`AuthError::Rejected`] with the reply and, for the
    /// OAuth mechanisms, the error the server sent before it.
    pub fn finish_failure(&mut self, reply: &Reply) -> AuthError {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Cancelled(error) => error,
            State::OAuthFailed { detail } => AuthError::Rejected {
                reply: reply.clone(),
                detail: Some(detail),
            },
            _ => AuthError::Rejected {
                reply: reply.clone(),
                detail: None,
            },
        }
    }

    /// Handles any reply of the exchange: a 334 goes to
    /// [`Authenticator::step`], a 2xx to [`Authenticator::finish_success`]
    /// (giving [`Step::Done`]), anything else to
    /// [`Authenticator::finish_failure`].
    pub fn handle_reply(&mut self, reply: &Reply) -> Result<Step, AuthError> {
        if reply.code == 334 {
            self.step(&reply.lines.concat())
        } else if reply.is_positive() {
            self.finish_success(reply).map(|()| Step::Done)
        } else {
            Err(self.finish_failure(reply))
        }
    }

    /// The answer to a challenge in `state`, and the state after it.
    fn advance(&self, state: State, challenge: &str) -> Result<(String, State), AuthError> {
        let data = self.decode(challenge)?;
        match state {
            State::Deferred { response, then } => {
                if !data.is_empty() {
                    return Err(self.malformed("expected an empty challenge"));
                }
                Ok((format!("{}\r\n", response.expose()), *then))
            }
            State::Login {
                username,
                password,
                sent_username,
            } => {
                let prompt = String::from_utf8_lossy(&data).to_ascii_lowercase();
                let wants_password = if prompt.contains("pass") {
                    true
                } else if prompt.contains("user") {
                    if sent_username {
                        return Err(self.malformed("the username prompt came twice"));
                    }
                    false
                } else {
                    // An unknown prompt: username first, then password.
                    sent_username
                };
                if wants_password {
                    Ok((line(password.expose()), State::Sent))
                } else {
                    let line = line(&username);
                    let next = State::Login {
                        username,
                        password,
                        sent_username: true,
                    };
                    Ok((line, next))
                }
            }
            State::OAuthSent => {
                // The server's error, JSON such as {"status":"401",...}.
                // XOAUTH2 answers an empty line, OAUTHBEARER a single ^A
                // (RFC 7628 section 3.2.3); the refusal follows.
                let detail = sanitize(&String::from_utf8_lossy(&data), 300);
                let answer = match self.mechanism {
                    Mechanism::OAuthBearer => line("\x01"),
                    _ => "\r\n".to_string(),
                };
                Ok((answer, State::OAuthFailed { detail }))
            }
            State::ScramFirst(client) => {
                let (client_final, check) = client.client_final(&data)?;
                Ok((line(&client_final), State::ScramFinal(check)))
            }
            State::ScramFinal(check) => {
                check.verify(&data)?;
                Ok(("\r\n".to_string(), State::ScramVerified))
            }
            State::Sent
            | State::OAuthFailed { .. }
            | State::ScramVerified
            | State::Cancelled(_)
            | State::Over => Err(self.unexpected()),
        }
    }

    fn decode(&self, challenge: &str) -> Result<Vec<u8>, AuthError> {
        let challenge = challenge.trim();
        if challenge.len() > MAX_CHALLENGE_LEN {
            return Err(self.malformed("challenge too long"));
        }
        B64_LENIENT
            .decode(challenge)
            .map_err(|_| self.malformed("challenge is not base64"))
    }

    fn malformed(&self, detail: &str) -> AuthError {
        AuthError::MalformedChallenge {
            mechanism: self.mechanism,
            detail: detail.to_string(),
        }
    }

    fn unexpected(&self) -> AuthError {
        AuthError::UnexpectedChallenge {
            mechanism: self.mechanism,
        }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Deferred { .. } => "deferred initial response",
            State::Sent => "sent",
            State::Login { .. } => "login prompts",
            State::OAuthSent => "token sent",
            State::OAuthFailed { .. } => "token refused",
            State::ScramFirst(_) => "awaiting server-first",
            State::ScramFinal(_) => "awaiting server-final",
            State::ScramVerified => "server verified",
            State::Cancelled(_) => "cancelled",
            State::Over => "over",
        };
        f.debug_struct("Authenticator")
            .field("mechanism", &self.mechanism)
            .field("state", &state)
            .finish()
    }
}

fn password(mechanism: Mechanism, credentials: &Credentials) -> Result<&Secret, AuthError> {
    let password = credentials.password().ok_or(AuthError::MissingCredential {
        mechanism,
        needed: "password",
    })?;
    check_field("password", password.expose())?;
    Ok(password)
}

fn token(mechanism: Mechanism, credentials: &Credentials) -> Result<&Secret, AuthError> {
    let token = credentials.token().ok_or(AuthError::MissingCredential {
        mechanism,
        needed: "token",
    })?;
    check_field("token", token.expose())?;
    Ok(token)
}

/// A response line: `data` in base64 with CRLF.
fn line(data: &str) -> String {
    format!("{}\r\n", B64.encode(data))
}

/// The username as a GS2 `saslname` (RFC 5801): `=` and `,` escaped.
fn gs2_name(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";

    fn password_creds(user: &str, password: &str) -> Credentials {
        Credentials::with_password(user, Secret::new(password))
    }

    fn token_creds(user: &str, token: &str) -> Credentials {
        Credentials::with_token(user, Secret::new(token))
    }

    fn start(mechanism: Mechanism, creds: &Credentials) -> (String, Authenticator) {
        Authenticator::start(mechanism, creds, NONCE, "smtp.example.com", 587).unwrap()
    }

    fn respond(step: Result<Step, AuthError>) -> String {
        match step {
            Ok(Step::Respond(line)) => line,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn plain_exact_bytes() {
        let (line, mut auth) = start(Mechanism::Plain, &password_creds("alice", "wonderland"));
        // base64 of "\0alice\0wonderland"
        assert_eq!(line, "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n");
        assert_eq!(
            auth.handle_reply(&Reply::new(235, "2.7.0 Authentication successful")),
            Ok(Step::Done)
        );
    }

    #[test]
    fn login_exact_bytes() {
        let (line, mut auth) = start(Mechanism::Login, &password_creds("alice", "wonderland"));
        assert_eq!(line, "AUTH LOGIN\r\n");
        // "Username:" and "Password:"
        assert_eq!(respond(auth.step("VXNlcm5hbWU6")), "YWxpY2U=\r\n");
        assert_eq!(respond(auth.step("UGFzc3dvcmQ6")), "d29uZGVybGFuZA==\r\n");
        // A third prompt cancels.
        assert_eq!(respond(auth.step("UGFzc3dvcmQ6")), "*\r\n");
        assert_eq!(
            auth.finish_failure(&Reply::new(501, "5.7.0 cancelled")),
            AuthError::UnexpectedChallenge {
                mechanism: Mechanism::Login
            }
        );
    }

    #[test]
    fn login_with_unknown_prompts_answers_in_order() {
        let (_, mut auth) = start(Mechanism::Login, &password_creds("alice", "wonderland"));
        // "Who?" and "Secret?"
        assert_eq!(respond(auth.step("V2hvPw==")), "YWxpY2U=\r\n");
        assert_eq!(respond(auth.step("U2VjcmV0Pw==")), "d29uZGVybGFuZA==\r\n");
        assert_eq!(
            auth.handle_reply(&Reply::new(535, "5.7.8 Authentication credentials invalid")),
            Err(AuthError::Rejected {
                reply: Reply::new(535, "5.7.8 Authentication credentials invalid"),
                detail: None
            })
        );
    }

    #[test]
    fn xoauth2_matches_googles_example() {
        let creds = token_creds(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        );
        let (line, mut auth) = start(Mechanism::XOAuth2, &creds);
        assert_eq!(
            line,
            "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==\r\n"
        );
        assert_eq!(
            auth.handle_reply(&Reply::new(235, "2.7.0 Accepted")),
            Ok(Step::Done)
        );
    }

    #[test]
    fn xoauth2_error_challenge_gets_an_empty_line() {
        let (_, mut auth) = start(Mechanism::XOAuth2, &token_creds("u@example.com", "tok"));
        let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        let challenge = B64.encode(json);
        assert_eq!(respond(auth.step(&challenge)), "\r\n");
        let reply = Reply::new(535, "5.7.8 Username and Password not accepted");
        assert_eq!(
            auth.handle_reply(&reply),
            Err(AuthError::Rejected {
                reply: reply.clone(),
                detail: Some(json.to_string())
            })
        );
    }

    #[test]
    fn oauthbearer_matches_rfc7628_example() {
        // RFC 7628 section 4.1 (the example is IMAP on port 143; the
        // message is the same for SMTP).
        let creds = token_creds(
            "user@example.com",
            "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==",
        );
        let (line, _) = Authenticator::start(
            Mechanism::OAuthBearer,
            &creds,
            "",
            "server.example.com",
            143,
        )
        .unwrap();
        assert_eq!(
            line,
            "AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2c9PQEB\r\n"
        );
    }

    #[test]
    fn oauthbearer_error_challenge_gets_a_kvsep() {
        let (_, mut auth) = start(Mechanism::OAuthBearer, &token_creds("u@example.com", "t"));
        // RFC 7628 section 4.3's error.
        let challenge = "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=";
        assert_eq!(respond(auth.step(challenge)), "AQ==\r\n");
        let err = auth.finish_failure(&Reply::new(535, "5.7.8 no"));
        let AuthError::Rejected {
            detail: Some(detail),
            ..
        } = err
        else {
            panic!("{err:?}");
        };
        assert!(
            detail.starts_with(r#"{"status":"invalid_token""#),
            "{detail}"
        );
        // Another challenge after that breaks the protocol.
        assert!(auth.step("").is_err());
    }

    #[test]
    fn oauthbearer_escapes_the_username() {
        let (line, _) = start(Mechanism::OAuthBearer, &token_creds("a,b=c", "t"));
        let b64 = line.trim_end().rsplit(' ').next().unwrap();
        let message = String::from_utf8(B64.decode(b64).unwrap()).unwrap();
        assert_eq!(
            message,
            "n,a=a=2Cb=3Dc,\x01host=smtp.example.com\x01port=587\x01auth=Bearer t\x01\x01"
        );
    }

    #[test]
    fn long_initial_response_waits_for_an_empty_challenge() {
        let token = "t".repeat(2000);
        let (line, mut auth) = start(Mechanism::XOAuth2, &token_creds("u@example.com", &token));
        assert_eq!(line, "AUTH XOAUTH2\r\n");
        let response = respond(auth.handle_reply(&Reply::new(334, "")));
        let expected = B64.encode(format!("user=u@example.com\x01auth=Bearer {token}\x01\x01"));
        assert_eq!(response, format!("{expected}\r\n"));
        assert_eq!(
            auth.handle_reply(&Reply::new(235, "2.7.0 Accepted")),
            Ok(Step::Done)
        );
    }

    #[test]
    fn scram_transcript_rfc7677() {
        let (line, mut auth) = start(Mechanism::ScramSha256, &password_creds("user", "pencil"));
        // base64 of "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        assert_eq!(
            line,
            "AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=\r\n"
        );
        let server_first = B64.encode(
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        );
        let client_final = respond(auth.handle_reply(&Reply::new(334, &server_first)));
        assert_eq!(
            client_final,
            format!("{}\r\n", B64.encode("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
        );
        let server_final = B64.encode("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert_eq!(
            respond(auth.handle_reply(&Reply::new(334, &server_final))),
            "\r\n"
        );
        assert_eq!(
            auth.handle_reply(&Reply::new(235, "2.7.0 Authentication successful")),
            Ok(Step::Done)
        );
    }

    fn scram_after_server_first() -> Authenticator {
        let (_, mut auth) = start(Mechanism::ScramSha256, &password_creds("user", "pencil"));
        let server_first = B64.encode(
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        );
        respond(auth.step(&server_first));
        auth
    }

    #[test]
    fn scram_server_final_in_the_235_reply() {
        let mut auth = scram_after_server_first();
        let server_final = B64.encode("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        let reply = Reply::new(235, &format!("2.7.0 {server_final}"));
        assert_eq!(auth.handle_reply(&reply), Ok(Step::Done));
    }

    #[test]
    fn scram_wrong_signature_cancels_and_is_reported() {
        let mut auth = scram_after_server_first();
        let wrong = B64.encode("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert_eq!(respond(auth.step(&wrong)), "*\r\n");
        assert_eq!(
            auth.cancel_reason(),
            Some(&AuthError::ServerSignatureMismatch)
        );
        assert_eq!(
            auth.handle_reply(&Reply::new(501, "5.7.0 Authentication cancelled")),
            Err(AuthError::ServerSignatureMismatch)
        );

        // The same in a 235 reply is an error too.
        let mut auth = scram_after_server_first();
        let reply = Reply::new(235, &format!("2.7.0 {wrong}"));
        assert_eq!(
            auth.handle_reply(&reply),
            Err(AuthError::ServerSignatureMismatch)
        );
    }

    #[test]
    fn scram_success_without_signature_is_an_error() {
        let mut auth = scram_after_server_first();
        assert_eq!(
            auth.handle_reply(&Reply::new(235, "2.7.0 Authentication successful")),
            Err(AuthError::ServerSignatureMissing)
        );
        let (_, mut auth) = start(Mechanism::ScramSha256, &password_creds("user", "pencil"));
        assert_eq!(
            auth.handle_reply(&Reply::new(235, "2.7.0 ok")),
            Err(AuthError::ServerSignatureMissing)
        );
    }

    #[test]
    fn scram_bad_server_first_cancels() {
        let (_, mut auth) = start(Mechanism::ScramSha256, &password_creds("user", "pencil"));
        let low = B64.encode("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1024");
        assert_eq!(respond(auth.step(&low)), "*\r\n");
        assert_eq!(
            auth.finish_failure(&Reply::new(501, "cancelled")),
            AuthError::IterationCountTooLow {
                count: 1024,
                min: 4096
            }
        );

        let (_, mut auth) = start(Mechanism::ScramSha256, &password_creds("user", "pencil"));
        let other = B64.encode("r=someoneelse12345678,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        assert_eq!(respond(auth.step(&other)), "*\r\n");
        assert_eq!(auth.cancel_reason(), Some(&AuthError::NonceMismatch));

        let (_, mut auth) = start(Mechanism::ScramSha256, &password_creds("user", "pencil"));
        assert_eq!(respond(auth.step("!!not base64!!")), "*\r\n");
        assert!(matches!(
            auth.cancel_reason(),
            Some(AuthError::MalformedChallenge { .. })
        ));
        // A challenge after the cancel breaks the protocol.
        assert_eq!(
            auth.step(""),
            Err(AuthError::UnexpectedChallenge {
                mechanism: Mechanism::ScramSha256
            })
        );
    }

    #[test]
    fn plain_does_not_expect_a_challenge() {
        let (_, mut auth) = start(Mechanism::Plain, &password_creds("alice", "pw"));
        assert_eq!(respond(auth.step("")), "*\r\n");
        assert_eq!(
            auth.cancel_reason(),
            Some(&AuthError::UnexpectedChallenge {
                mechanism: Mechanism::Plain
            })
        );
    }

    #[test]
    fn start_checks_credentials() {
        let start = |m, creds: &Credentials| {
            Authenticator::start(m, creds, NONCE, "smtp.example.com", 587).map(|_| ())
        };
        assert_eq!(
            start(Mechanism::XOAuth2, &password_creds("a", "p")),
            Err(AuthError::MissingCredential {
                mechanism: Mechanism::XOAuth2,
                needed: "token"
            })
        );
        assert_eq!(
            start(Mechanism::Plain, &token_creds("a", "t")),
            Err(AuthError::MissingCredential {
                mechanism: Mechanism::Plain,
                needed: "password"
            })
        );
        assert_eq!(
            start(Mechanism::Plain, &password_creds("a\nb", "p")),
            Err(AuthError::ControlCharacter { field: "username" })
        );
        assert_eq!(
            start(Mechanism::Login, &password_creds("a", "p\0")),
            Err(AuthError::ControlCharacter { field: "password" })
        );
        assert_eq!(
            start(Mechanism::XOAuth2, &token_creds("a", "t\x01")),
            Err(AuthError::ControlCharacter { field: "token" })
        );
        assert_eq!(
            start(Mechanism::Plain, &password_creds("", "p")),
            Err(AuthError::EmptyField { field: "username" })
        );
        assert!(matches!(
            start(Mechanism::ScramSha256, &password_creds("a", "p")).and(
                Authenticator::start(
                    Mechanism::ScramSha256,
                    &password_creds("a", "p"),
                    "short",
                    "h",
                    1
                )
                .map(|_| ())
            ),
            Err(AuthError::InvalidClientNonce { .. })
        ));
        assert_eq!(
            Authenticator::start(
                Mechanism::OAuthBearer,
                &token_creds("a", "t"),
                "",
                "h\r\n",
                1
            )
            .map(|_| ()),
            Err(AuthError::ControlCharacter { field: "host" })
        );
    }

    /// No error's Display or Debug, and no Debug of the inputs, the
    /// exchange or a step, holds the password or the token.
    #[test]
    fn secrets_never_show() {
        const PASSWORD: &str = "Pa55-w0rd-SECRET";
        const TOKEN: &str = "ya29.TOKEN-SECRET";
        fn error(shown: &mut Vec<String>, e: &AuthError) {
            shown.push(e.to_string());
            shown.push(format!("{e:?}"));
        }
        let creds =
            Credentials::with_password("user", Secret::new(PASSWORD)).and_token(Secret::new(TOKEN));
        let mut shown = vec![
            format!("{creds:?}"),
            format!("{creds:#?}"),
            format!("{:?}", Secret::new(PASSWORD)),
        ];

        for mechanism in Mechanism::PREFERENCE {
            let (_, mut auth) = start(mechanism, &creds);
            shown.push(format!("{auth:?}"));
            // Odd challenges, then a refusal.
            for challenge in ["VXNlcm5hbWU6", "UGFzc3dvcmQ6", "e30=", "!!", ""] {
                let step = auth.step(challenge);
                shown.push(format!("{step:?} {auth:?}"));
                if let Err(e) = step {
                    error(&mut shown, &e);
                }
            }
            error(
                &mut shown,
                &auth.finish_failure(&Reply::new(535, "5.7.8 no")),
            );
        }

        // SCRAM through every failure of the server's messages.
        let server_firsts = [
            "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
            "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=9999999",
            "r=other0000000000000000,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "m=x,r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ];
        for server_first in server_firsts {
            for server_final in ["v=AAAA", "e=invalid-proof", "x"] {
                let (_, mut auth) = start(Mechanism::ScramSha256, &creds);
                let first = auth.step(&B64.encode(server_first));
                let last = auth.step(&B64.encode(server_final));
                shown.push(format!("{first:?} {last:?} {auth:?}"));
                error(
                    &mut shown,
                    &auth.finish_failure(&Reply::new(501, "cancelled")),
                );
            }
        }

        // Errors of start and choose.
        let bad = [
            Credentials::with_password("user", Secret::new(format!("{PASSWORD}\n"))),
            Credentials::with_token("user", Secret::new(format!("{TOKEN}\x01"))),
            Credentials::with_token("user", Secret::new("")),
        ];
        for creds in &bad {
            for mechanism in Mechanism::PREFERENCE {
                if let Err(e) = Authenticator::start(mechanism, creds, NONCE, "h", 25) {
                    error(&mut shown, &e);
                }
            }
        }
        for (p, t) in [(true, false), (false, true), (false, false)] {
            if let Err(e) = Mechanism::choose(&["CRAM-MD5".into()], p, t, None) {
                error(&mut shown, &e);
            }
        }

        assert!(shown.len() > 100, "{}", shown.len());
        for text in &shown {
            assert!(!text.contains(PASSWORD), "password in {text:?}");
            assert!(!text.contains(TOKEN), "token in {text:?}");
            assert!(!text.contains(&B64.encode(PASSWORD)), "{text:?}");
        }
    }
}
