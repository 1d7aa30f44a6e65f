//! The typed Rust API of the mailer: the WIT types of `wit/types.wit`, as
//! plain Rust values. Secrets print as `<redacted>` in `Debug`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// An address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Mailbox {
    /// The display name, or none.
    pub name: Option<String>,
    /// The address, `local-part@domain`.
    pub address: String,
}

impl Mailbox {
    /// A mailbox without a display name.
    pub fn new(address: impl Into<String>) -> Self {
        Mailbox {
            name: None,
            address: address.into(),
        }
    }

    /// A mailbox with a display name.
    pub fn named(name: impl Into<String>, address: impl Into<String>) -> Self {
        Mailbox {
            name: Some(name.into()),
            address: address.into(),
        }
    }
}

/// A file carried by a message; inline (for `cid:` references from the
/// HTML body) when `content_id` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    /// The file name shown to the reader.
    pub filename: String,
    /// The MIME type, such as `application/pdf`.
    pub content_type: String,
    /// The file's content.
    pub content: Content,
    /// The Content-ID, without angle brackets.
    pub content_id: Option<String>,
}

/// Where an attachment's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The whole content, in memory.
    Bytes(Vec<u8>),
    /// A file, opened at each send and lent to the component as a stream:
    /// it is read and encoded while the message is sent, so memory stays
    /// flat whatever its size. Its length, read when it is opened, is
    /// declared to the server (SIZE); a file that changes length while it
    /// is sent fails the send before the message is complete.
    File(PathBuf),
}

impl Default for Content {
    fn default() -> Self {
        Content::Bytes(Vec::new())
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Self {
        Content::Bytes(bytes)
    }
}

impl From<&[u8]> for Content {
    fn from(bytes: &[u8]) -> Self {
        Content::Bytes(bytes.to_vec())
    }
}

/// A header the message has no field for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The name, such as `X-Campaign`.
    pub name: String,
    /// The unfolded value.
    pub value: String,
}

/// A message to build and send. Bcc goes into the envelope only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The author.
    pub from: Mailbox,
    /// Where replies go.
    pub reply_to: Vec<Mailbox>,
    /// Primary recipients.
    pub to: Vec<Mailbox>,
    /// Copied recipients.
    pub cc: Vec<Mailbox>,
    /// Blind-copied recipients.
    pub bcc: Vec<Mailbox>,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// Attachments and inline parts.
    pub attachments: Vec<Attachment>,
    /// Extra headers.
    pub headers: Vec<Header>,
    /// The Message-ID without brackets; generated when none.
    pub message_id: Option<String>,
    /// The Date in seconds since the Unix epoch; the send time when none.
    pub date: Option<i64>,
    /// Sign with DKIM.
    pub dkim: Option<Dkim>,
    /// Send to these paths instead of `from`, `to`, `cc` and `bcc`, the
    /// headers unchanged: to retry the recipients that failed transiently
    /// without resending to the others. Streamed attachments stay streamed.
    pub envelope: Option<Envelope>,
}

/// DKIM signing settings. `Debug` shows no key.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Dkim {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    /// The private key, PKCS#8 PEM (RSA 1024 to 4096 bits, or Ed25519).
    pub private_key_pem: String,
    /// The identity (`i=`), `[local]@domain`.
    pub identity: Option<String>,
    /// Simple header and body canonicalization instead of relaxed.
    pub simple_canonicalization: bool,
}

impl fmt::Debug for Dkim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dkim")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("private_key_pem", &"<redacted>")
            .field("identity", &self.identity)
            .field("simple_canonicalization", &self.simple_canonicalization)
            .finish()
    }
}

/// The envelope of a raw send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// MAIL FROM; empty for the null path `<>`.
    pub reverse_path: String,
    /// RCPT TO, at least one.
    pub forward_paths: Vec<String>,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// TLS from the first byte (port 465).
    ImplicitTls,
    /// STARTTLS, or fail.
    StarttlsRequired,
    /// STARTTLS when offered; an active attacker can strip it.
    StarttlsOpportunistic,
    /// No TLS: everything crosses the network in clear.
    PlaintextInsecure,
}

/// A password or token. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A password.
    Password(String),
    /// An OAuth 2.0 bearer token.
    OAuth2Token(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(<redacted>)"),
            Secret::OAuth2Token(_) => f.write_str("OAuth2Token(<redacted>)"),
        }
    }
}

/// Credentials for SMTP AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password or token.
    pub secret: Secret,
    /// The SASL mechanism, or none for the strongest both sides offer.
    pub mechanism: Option<String>,
}

impl Credentials {
    /// A user name and password, with the strongest mechanism both sides
    /// offer (SCRAM-SHA-256, PLAIN or LOGIN).
    pub fn password(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            secret: Secret::Password(password.into()),
            mechanism: None,
        }
    }

    /// A user name and an OAuth 2.0 access token (XOAUTH2 or OAUTHBEARER).
    pub fn oauth2(user: impl Into<String>, token: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            secret: Secret::OAuth2Token(token.into()),
            mechanism: None,
        }
    }
}

/// Time limits of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the connection.
    pub connect: Duration,
    /// Each command's reply.
    pub command: Duration,
    /// The content and its final reply.
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            command: Duration::from_secs(60),
            data: Duration::from_secs(120),
        }
    }
}

/// Where and how to reach the SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The host name: for DNS, EHLO's peer and the TLS certificate.
    pub host: String,
    /// An IP address to connect to instead of resolving `host`.
    pub connect_address: Option<String>,
    /// The TCP port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// Credentials for AUTH.
    pub credentials: Option<Credentials>,
    /// Time limits.
    pub timeouts: Timeouts,
    /// The name given in EHLO; `localhost` when none.
    pub client_name: Option<String>,
    /// Extra PEM CA certificates to trust.
    pub ca_pem: Option<String>,
    /// Write the SMTP conversation to this process's standard error, AUTH
    /// payloads redacted and the content as a byte count.
    pub trace: bool,
}

impl Server {
    /// A server at `host:port` with STARTTLS required and default limits.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Server {
            host: host.into(),
            connect_address: None,
            port,
            security: if port == 465 {
                Security::ImplicitTls
            } else {
                Security::StarttlsRequired
            },
            credentials: None,
            timeouts: Timeouts::default(),
            client_name: None,
            ca_pem: None,
            trace: false,
        }
    }

    /// The same server reached in plaintext: for loopback and test servers.
    pub fn plaintext_insecure(mut self) -> Self {
        self.security = Security::PlaintextInsecure;
        self
    }
}

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code, such as `5.1.1`.
    pub enhanced_code: Option<String>,
    /// The text of every line, joined with a line feed.
    pub text: String,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = &self.enhanced_code {
            write!(f, " {e}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text.replace('\n', " "))?;
        }
        Ok(())
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientOutcome {
    /// The forward path.
    pub address: String,
    /// True when the server accepted it, and then the message.
    pub accepted: bool,
    /// The reply to its RCPT command.
    pub reply: Reply,
}

/// The result of a send accepted for at least one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// One outcome per recipient, in envelope order.
    pub recipients: Vec<RecipientOutcome>,
    /// The reply to the end of the data.
    pub final_reply: Reply,
}

impl SendReport {
    /// True when every recipient was accepted.
    pub fn all_accepted(&self) -> bool {
        self.recipients.iter().all(|r| r.accepted)
    }
}

/// How TLS protects a connection; the certificate chain was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsDetails {
    /// TLS from the first byte (implicit TLS) rather than after STARTTLS.
    pub implicit: bool,
    /// The protocol version: `TLSv1_3` or `TLSv1_2`.
    pub version: String,
    /// The cipher suite, such as `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The certificates the server presented, DER, its own first.
    #[serde(skip)]
    pub peer_certificates: Vec<Vec<u8>>,
}

/// What a server offers on an open session, and how the session is
/// protected ([`Session::capabilities`](crate::Session::capabilities)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The extension lines of the last EHLO reply, as the server wrote
    /// them (`SIZE 10240000`, `DSN`, ...); those of the EHLO under TLS
    /// after STARTTLS.
    pub extensions: Vec<String>,
    /// The AUTH mechanisms offered, upper-cased.
    pub auth_mechanisms: Vec<String>,
    /// SIZE: `None` when not offered, `Some(0)` without a limit, else the
    /// limit in octets.
    pub size: Option<u64>,
    /// TLS, or `None` for a plaintext session.
    pub tls: Option<TlsDetails>,
    /// True when the session authenticated with the server's credentials.
    pub authenticated: bool,
}

impl Capabilities {
    /// True when the server announced the extension `keyword` (case
    /// insensitive), such as `DSN` or `CHUNKING`.
    pub fn offers(&self, keyword: &str) -> bool {
        self.extensions.iter().any(|line| {
            line.split_ascii_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_in_debug() {
        let server = Server {
            credentials: Some(Credentials {
                user: "u".into(),
                secret: Secret::Password("hunter2".into()),
                mechanism: None,
            }),
            ..Server::new("mx.example", 587)
        };
        let shown = format!("{server:?} {:?}", Secret::OAuth2Token("tok-123".into()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok-123"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }
}
