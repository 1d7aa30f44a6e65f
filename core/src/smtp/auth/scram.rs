//! SCRAM-SHA-256 (RFC 5802, RFC 7677), client side, without channel
//! binding (`n,,`) and without an authorization identity.
//!
//! The client nonce comes from the caller, since this crate holds no source
//! of randomness. The server's messages are parsed with bounds: the nonce
//! must extend the client nonce, the salt must be base64, and the iteration
//! count must lie in [`MIN_ITERATIONS`]`..=`[`MAX_ITERATIONS`].

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Secret;
use super::error::sanitize;
use super::{AuthError, Mechanism, B64, B64_LENIENT};

/// The least iteration count accepted: RFC 7677 asks for at least 4096.
pub const MIN_ITERATIONS: u32 = 4096;
/// The greatest iteration count accepted, so that a hostile server cannot
/// keep the client computing for minutes.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// The least length of the client nonce, in characters.
pub const MIN_NONCE_LEN: usize = 16;
/// The longest server message accepted, decoded.
const MAX_MESSAGE_LEN: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

/// The client before the server-first message.
pub(crate) struct ScramClient {
    client_nonce: String,
    client_first_bare: String,
    password: Secret,
}

/// What the client keeps to check the server-final message.
pub(crate) struct ServerCheck {
    server_key: [u8; 32],
    auth_message: String,
}

impl ScramClient {
    /// Checks the client nonce (printable ASCII without `,`, at least
    /// [`MIN_NONCE_LEN`] characters) and prepares the client-first message.
    pub(crate) fn new(
        username: &str,
        password: &Secret,
        client_nonce: &str,
    ) -> Result<ScramClient, AuthError> {
        if client_nonce.len() < MIN_NONCE_LEN {
            return Err(AuthError::InvalidClientNonce {
                reason: "shorter than 16 characters",
            });
        }
        if !client_nonce.bytes().all(is_nonce_byte) {
            return Err(AuthError::InvalidClientNonce {
                reason: "not printable ASCII without ','",
            });
        }
        Ok(ScramClient {
            client_nonce: client_nonce.to_string(),
            client_first_bare: format!("n={},r={client_nonce}", escape_username(username)),
            password: password.clone(),
        })
    }

    /// The client-first message: GS2 header and client-first-bare.
    pub(crate) fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Parses the server-first message and computes the client-final
    /// message with the proof.
    pub(crate) fn client_final(
        self,
        server_first: &[u8],
    ) -> Result<(String, ServerCheck), AuthError> {
        let server_first = message_text(server_first)?;
        let parsed = parse_server_first(server_first, &self.client_nonce)?;
        let iterations = u32::try_from(parsed.iterations).unwrap_or(MAX_ITERATIONS);

        let mut salted_password = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            self.password.expose().as_bytes(),
            &parsed.salt,
            iterations,
            &mut salted_password,
        );
        let client_key = hmac(&salted_password, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted_password, b"Server Key");

        // c= is the base64 of the GS2 header "n,,".
        let without_proof = format!("c=biws,r={}", parsed.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        let client_final = format!("{without_proof},p={}", B64.encode(proof));
        Ok((
            client_final,
            ServerCheck {
                server_key,
                auth_message,
            },
        ))
    }
}

impl ServerCheck {
    /// Checks the server-final message: `v=` with the right signature, in
    /// constant time. `e=` is the server's error.
    pub(crate) fn verify(&self, server_final: &[u8]) -> Result<(), AuthError> {
        let server_final = message_text(server_final)?;
        let first = server_final.split(',').next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(AuthError::ServerError {
                message: sanitize(error, 100),
            });
        }
        let Some(verifier) = first.strip_prefix("v=") else {
            return Err(malformed("server-final message lacks v="));
        };
        let signature = B64_LENIENT
            .decode(verifier)
            .map_err(|_| malformed("server signature is not base64"))?;
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.server_key) else {
            return Err(AuthError::ServerSignatureMismatch);
        };
        mac.update(self.auth_message.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| AuthError::ServerSignatureMismatch)
    }
}

/// True when `data` looks like a server-final message (`v=` or `e=`), for
/// finding one carried in the text of a 235 reply.
pub(crate) fn is_server_final(data: &[u8]) -> bool {
    data.starts_with(b"v=") || data.starts_with(b"e=")
}

struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u64,
}

fn parse_server_first<'a>(
    message: &'a str,
    client_nonce: &str,
) -> Result<ServerFirst<'a>, AuthError> {
    let mut attributes = message.split(',');
    let mut next = |name: &str| -> Result<&'a str, AuthError> {
        let attribute = attributes.next().unwrap_or_default();
        if attribute.starts_with("m=") {
            return Err(AuthError::MandatoryExtension);
        }
        attribute
            .strip_prefix(name)
            .ok_or_else(|| malformed(format!("server-first message lacks {name}")))
    };
    let nonce = next("r=")?;
    let salt = next("s=")?;
    let iterations = next("i=")?;
    // Further attributes are extensions, which a client ignores.

    if !nonce.bytes().all(is_nonce_byte) {
        return Err(malformed("server nonce is not printable ASCII"));
    }
    if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
        return Err(AuthError::NonceMismatch);
    }
    let salt = B64_LENIENT
        .decode(salt)
        .map_err(|_| malformed("salt is not base64"))?;
    if salt.is_empty() {
        return Err(malformed("salt is empty"));
    }
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("iteration count is not a number"));
    }
    // All digits: only an overflow can fail, and that is too high anyway.
    let iterations = iterations.parse::<u64>().unwrap_or(u64::MAX);
    if iterations < u64::from(MIN_ITERATIONS) {
        return Err(AuthError::IterationCountTooLow {
            count: iterations,
            min: MIN_ITERATIONS,
        });
    }
    if iterations > u64::from(MAX_ITERATIONS) {
        return Err(AuthError::IterationCountTooHigh {
            count: iterations,
            max: MAX_ITERATIONS,
        });
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// A decoded server message as text, bounded in length.
fn message_text(data: &[u8]) -> Result<&str, AuthError> {
    if data.len() > MAX_MESSAGE_LEN {
        return Err(malformed("server message too long"));
    }
    std::str::from_utf8(data).map_err(|_| malformed("server message is not UTF-8"))
}

/// A nonce character: printable ASCII except `,` (RFC 5802 `printable`).
fn is_nonce_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// The username as a SCRAM `saslname`: `=` and `,` escaped.
fn escape_username(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: the fallback is never used.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn malformed(detail: impl Into<String>) -> AuthError {
    AuthError::MalformedChallenge {
        mechanism: Mechanism::ScramSha256,
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3.
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn client() -> ScramClient {
        ScramClient::new("user", &Secret::new("pencil"), NONCE).unwrap()
    }

    #[test]
    fn rfc7677_test_vector() {
        let client = client();
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (client_final, check) = client.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(client_final, CLIENT_FINAL);
        assert_eq!(check.verify(SERVER_FINAL.as_bytes()), Ok(()));
        assert_eq!(
            check.verify(format!("{SERVER_FINAL},x=ext").as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn wrong_server_signature_is_rejected() {
        let (_, check) = client().client_final(SERVER_FIRST.as_bytes()).unwrap();
        let wrong = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        assert_eq!(
            check.verify(wrong.as_bytes()),
            Err(AuthError::ServerSignatureMismatch)
        );
        assert_eq!(
            check.verify(b"v=AAAA"),
            Err(AuthError::ServerSignatureMismatch)
        );
        assert_eq!(
            check.verify(b"e=invalid-proof"),
            Err(AuthError::ServerError {
                message: "invalid-proof".into()
            })
        );
        assert!(matches!(
            check.verify(b"x=1"),
            Err(AuthError::MalformedChallenge { .. })
        ));
        assert!(matches!(
            check.verify(b"v=not base64!"),
            Err(AuthError::MalformedChallenge { .. })
        ));
    }

    #[test]
    fn nonce_must_extend_the_client_nonce() {
        let other = SERVER_FIRST.replace("r=rOpr", "r=xOpr");
        assert!(matches!(
            client().client_final(other.as_bytes()),
            Err(AuthError::NonceMismatch)
        ));
        let same = format!("r={NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        assert!(matches!(
            client().client_final(same.as_bytes()),
            Err(AuthError::NonceMismatch)
        ));
    }

    #[test]
    fn iteration_count_bounds() {
        let with = |i: &str| SERVER_FIRST.replace("i=4096", &format!("i={i}"));
        assert!(matches!(
            client().client_final(with("4095").as_bytes()),
            Err(AuthError::IterationCountTooLow {
                count: 4095,
                min: 4096
            })
        ));
        assert!(matches!(
            client().client_final(with("1000001").as_bytes()),
            Err(AuthError::IterationCountTooHigh {
                count: 1_000_001,
                max: 1_000_000
            })
        ));
        assert!(matches!(
            client().client_final(with("99999999999999999999999").as_bytes()),
            Err(AuthError::IterationCountTooHigh {
                count: u64::MAX,
                ..
            })
        ));
        for bad in ["", "-1", "+4096", "4096x", "0x1000"] {
            assert!(
                matches!(
                    client().client_final(with(bad).as_bytes()),
                    Err(AuthError::MalformedChallenge { .. })
                ),
                "{bad:?}"
            );
        }
        let err = client()
            .client_final(with("1").as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "the SCRAM server asks for 1 iterations; fewer than 4096 are refused as too weak"
        );
    }

    #[test]
    fn malformed_server_first() {
        let cases = [
            "",
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=!!!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ];
        for case in cases {
            assert!(
                matches!(
                    client().client_final(case.as_bytes()),
                    Err(AuthError::MalformedChallenge { .. })
                ),
                "{case:?}"
            );
        }
        assert!(matches!(
            client().client_final(format!("m=ext,{SERVER_FIRST}").as_bytes()),
            Err(AuthError::MandatoryExtension)
        ));
        assert!(matches!(
            client().client_final(&[0xff, 0xfe]),
            Err(AuthError::MalformedChallenge { .. })
        ));
        assert!(matches!(
            client().client_final(&vec![b'a'; MAX_MESSAGE_LEN + 1]),
            Err(AuthError::MalformedChallenge { .. })
        ));
        // Extensions after the iteration count are ignored.
        let extended = format!("{SERVER_FIRST},x=whatever");
        assert!(client().client_final(extended.as_bytes()).is_ok());
    }

    #[test]
    fn client_nonce_is_checked() {
        let secret = Secret::new("pencil");
        assert!(matches!(
            ScramClient::new("user", &secret, "short"),
            Err(AuthError::InvalidClientNonce { .. })
        ));
        assert!(matches!(
            ScramClient::new("user", &secret, "rOprNGfwEbeRWgbNEkqO,"),
            Err(AuthError::InvalidClientNonce { .. })
        ));
        assert!(matches!(
            ScramClient::new("user", &secret, "rOprNGfwEbeRWgbN kqO"),
            Err(AuthError::InvalidClientNonce { .. })
        ));
    }

    #[test]
    fn username_is_escaped() {
        let client = ScramClient::new("a=b,c", &Secret::new("p"), NONCE).unwrap();
        assert_eq!(client.client_first(), format!("n,,n=a=3Db=2Cc,r={NONCE}"));
    }
}
