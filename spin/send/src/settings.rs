//! The relay's settings, from Spin variables (see `spin.toml`):
//!
//! | variable | meaning |
//! |---|---|
//! | `smtp_host` | the relay's host name: the name its TLS certificate must match |
//! | `smtp_connect_address` | the IP address to connect to (Spin gives components no DNS) |
//! | `smtp_port` | the port, whatever the security mode: 587 when empty (set 465 for `implicit-tls`) |
//! | `smtp_security` | `implicit-tls`, `starttls-required` (when empty), `starttls-opportunistic`, `plaintext-insecure` |
//! | `smtp_user` | the AUTH user; no AUTH when empty |
//! | `smtp_password` | the password (secret) |
//! | `smtp_token` | an OAuth 2.0 token instead of a password (secret) |
//! | `smtp_client_name` | the name given in EHLO; `localhost` when empty |
//! | `smtp_ca_pem` | PEM CA certificates to trust besides Mozilla's roots (`\n` may stand for newlines) |
//!
//! The port follows one rule in every host: `smtp_port`, else 587. Spin
//! applies `spin.toml`'s default ("587") whenever the variable is unset, so
//! a default that depended on the security mode could never take effect
//! there; implicit TLS on 587 fails at once with the mode to use.

use std::fmt;

use crate::bindings::types;
use crate::SendError;

/// A variable's value: the empty string stands for "not set", since a Spin
/// variable cannot be absent once the component declares it.
///
/// Errors: [`SendError::Settings`] when the variable is not declared or the
/// provider fails.
pub fn variable(name: &str) -> Result<String, SendError> {
    spin_sdk::variables::get(name).map_err(|e| {
        let reason = match e {
            spin_sdk::variables::Error::InvalidName(_) => {
                "is not a valid variable name".to_string()
            }
            spin_sdk::variables::Error::Undefined(_) => {
                "is not defined: declare it in spin.toml's [component.<name>.variables]".to_string()
            }
            spin_sdk::variables::Error::Provider(p) | spin_sdk::variables::Error::Other(p) => {
                format!("cannot be read: {p}")
            }
        };
        SendError::settings(name, reason)
    })
}

/// A variable that may be left out: empty, or not defined at all (a host
/// other than Spin may only answer the variables it was given), is `None`.
///
/// Errors: [`SendError::Settings`] when the provider fails.
pub fn optional(name: &str) -> Result<Option<String>, SendError> {
    let value = match spin_sdk::variables::get(name) {
        Err(spin_sdk::variables::Error::Undefined(_)) => return Ok(None),
        _ => variable(name)?,
    };
    Ok((!value.trim().is_empty()).then(|| value.trim().to_string()))
}

/// Where and how to reach the relay. `Debug` hides the secret.
#[derive(Clone)]
pub struct RelaySettings {
    host: String,
    connect_address: Option<String>,
    port: u16,
    security: types::Security,
    user: Option<String>,
    secret: Option<types::Secret>,
    client_name: Option<String>,
    ca_pem: Option<String>,
}

impl fmt::Debug for RelaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelaySettings")
            .field("host", &self.host)
            .field("connect_address", &self.connect_address)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("client_name", &self.client_name)
            .field("ca_pem", &self.ca_pem.as_ref().map(|pem| pem.len()))
            .finish()
    }
}

/// Reads the relay's settings from the variables.
///
/// Errors: [`SendError::Settings`] naming the first variable that is
/// missing or malformed.
pub fn relay_settings() -> Result<RelaySettings, SendError> {
    let host = optional("smtp_host")?
        .ok_or_else(|| SendError::settings("smtp_host", "is empty: give the relay's host name"))?;
    let security = match optional("smtp_security")?.as_deref() {
        None | Some("starttls-required") => types::Security::StarttlsRequired,
        Some("implicit-tls") => types::Security::ImplicitTls,
        Some("starttls-opportunistic") => types::Security::StarttlsOpportunistic,
        Some("plaintext-insecure") => types::Security::PlaintextInsecure,
        Some(_) => {
            return Err(SendError::settings(
                "smtp_security",
                "is not one of implicit-tls, starttls-required, starttls-opportunistic, plaintext-insecure",
            ))
        }
    };
    let port = match optional("smtp_port")? {
        None => 587,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| SendError::settings("smtp_port", "is not a port number"))?,
    };
    let user = optional("smtp_user")?;
    let secret = match (optional("smtp_password")?, optional("smtp_token")?) {
        (Some(_), Some(_)) => {
            return Err(SendError::settings(
                "smtp_token",
                "give smtp_password or smtp_token, not both",
            ))
        }
        (Some(password), None) => Some(types::Secret::Password(password)),
        (None, Some(token)) => Some(types::Secret::Oauth2Token(token)),
        (None, None) => None,
    };
    if user.is_some() && secret.is_none() {
        return Err(SendError::settings(
            "smtp_password",
            "is empty while smtp_user is set",
        ));
    }
    Ok(RelaySettings {
        host,
        connect_address: optional("smtp_connect_address")?,
        port,
        security,
        user,
        secret,
        client_name: optional("smtp_client_name")?,
        // PEM in a variable often arrives with `\n` written out.
        ca_pem: optional("smtp_ca_pem")?.map(|pem| pem.replace("\\n", "\n")),
    })
}

impl RelaySettings {
    /// The mailer's server settings.
    pub(crate) fn server(&self) -> types::Server {
        let credentials = match (&self.user, &self.secret) {
            (Some(user), Some(secret)) => Some(types::Credentials {
                user: user.clone(),
                secret: secret.clone(),
                mechanism: None,
            }),
            _ => None,
        };
        types::Server {
            host: self.host.clone(),
            connect_address: self.connect_address.clone(),
            port: self.port,
            security: self.security,
            credentials,
            timeouts: None,
            client_name: self.client_name.clone(),
            ca_pem: self.ca_pem.clone(),
            trace: false,
        }
    }
}

/// DKIM signing from the variables: `dkim_private_key` (a secret, PKCS#8
/// PEM), `dkim_selector`, `dkim_domain` and optionally `dkim_identity`.
/// `None` when no key is set; the mailer checks the key and names
/// `dkim.private-key` when it is not one, never echoing it.
///
/// Errors: [`SendError::Settings`] when a key is set without its selector
/// or domain.
pub fn dkim_settings() -> Result<Option<types::Dkim>, SendError> {
    let Some(private_key_pem) = optional("dkim_private_key")? else {
        return Ok(None);
    };
    let needed = |name: &str| {
        optional(name)?.ok_or_else(|| {
            SendError::settings(name, "must be set when dkim_private_key is".to_string())
        })
    };
    Ok(Some(types::Dkim {
        domain: needed("dkim_domain")?,
        selector: needed("dkim_selector")?,
        // PEM keys in a variable often arrive with `\n` written out.
        private_key_pem: private_key_pem.replace("\\n", "\n"),
        identity: optional("dkim_identity")?,
        header_canonicalization: None,
        body_canonicalization: None,
    }))
}
