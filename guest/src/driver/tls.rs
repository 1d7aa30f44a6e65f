//! TLS inside the component: rustls with the ring provider, trusting
//! Mozilla's roots (webpki-roots) and the CA certificates of the settings.
//! Chain and host-name checks are always on.
//!
//! Every flight of TLS records goes out in one write: the handshake's
//! final flight waits in rustls and leaves with the first command (WASI 0.2
//! cannot set TCP_NODELAY, and std's `write_vectored` on wasip2 writes only
//! the first buffer, so rustls never writes to the socket directly).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};

use super::tcp::TcpStream;
use super::Timed;
use crate::error;
use crate::smtp_mailer_mailer_types as wit;

/// The client configuration: the built-in roots plus `ca_pem`'s
/// certificates, TLS 1.2 and 1.3.
pub fn client_config(ca_pem: Option<&str>) -> Result<Arc<ClientConfig>, wit::Error> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert
                .map_err(|e| error::invalid("server.ca-pem", &format!("is not valid PEM: {e}")))?;
            roots.add(cert).map_err(|e| {
                error::invalid(
                    "server.ca-pem",
                    &format!("holds an unusable certificate: {e}"),
                )
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(error::invalid(
                "server.ca-pem",
                "holds no CERTIFICATE block",
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS connection over TCP.
pub struct TlsStream {
    conn: ClientConnection,
    sock: TcpStream,
    /// Records waiting to be written, reused between flights.
    outgoing: Vec<u8>,
}

impl TlsStream {
    /// Runs the handshake with `host` within `limit`. A server that answers
    /// with a plaintext SMTP greeting is told apart from other failures.
    pub fn handshake(
        sock: TcpStream,
        host: &str,
        config: Arc<ClientConfig>,
        limit: Duration,
    ) -> Result<TlsStream, wit::Error> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            error::invalid(
                "server.host",
                "is not a valid DNS name or IP address for TLS",
            )
        })?;
        let conn = ClientConnection::new(config, name)
            .map_err(|e| tls_error(format!("cannot start TLS: {e}")))?;
        let mut stream = TlsStream {
            conn,
            sock,
            outgoing: Vec::new(),
        };
        let deadline = Instant::now() + limit;
        let mut first_read = true;
        let mut buf = vec![0u8; 16 * 1024];
        while stream.conn.is_handshaking() {
            if stream.conn.wants_write() {
                stream.flush_tls().map_err(|e| io_failure(e, host, limit))?;
            }
            if !stream.conn.is_handshaking() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(handshake_timeout(host, limit));
            }
            stream
                .sock
                .set_read_limit(Some(left))
                .map_err(|e| io_failure(e, host, limit))?;
            let n = stream
                .sock
                .read(&mut buf)
                .map_err(|e| io_failure(e, host, limit))?;
            if n == 0 {
                return Err(tls_error(format!(
                    "{host} closed the connection during the TLS handshake"
                )));
            }
            if first_read {
                first_read = false;
                if let Some(greeting) = smtp_greeting(&buf[..n]) {
                    return Err(tls_error(format!(
                        "{host} answered with a plaintext SMTP greeting ({greeting}): this port \
                         expects STARTTLS, not implicit TLS; use starttls-required"
                    )));
                }
            }
            let mut fed = &buf[..n];
            while !fed.is_empty() {
                stream
                    .conn
                    .read_tls(&mut fed)
                    .map_err(|e| tls_error(format!("TLS with {host} failed: {e}")))?;
                if let Err(e) = stream.conn.process_new_packets() {
                    // Tell the server why, best effort.
                    let _ = stream.flush_tls();
                    return Err(describe(&e, host));
                }
            }
        }
        Ok(stream)
    }

    /// The protocol version and cipher suite, for traces.
    pub fn describe(&self) -> String {
        let version = self
            .conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        format!("{version} {suite}")
    }

    /// The protocol version, the cipher suite and the server's
    /// certificates (DER, its own first), once the handshake is done.
    pub fn details(&self) -> (String, String, Vec<Vec<u8>>) {
        let version = self
            .conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let certificates = self
            .conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect();
        (version, suite, certificates)
    }

    /// Writes every pending record in one write, and flushes it.
    fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.outgoing)?;
        }
        if !self.outgoing.is_empty() {
            let result = self.sock.write_all(&self.outgoing);
            self.outgoing.clear();
            result?;
            self.sock.flush()?;
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // A pending flight (the handshake's last) goes out before waiting.
            self.flush_tls()?;
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(&mut self.sock)? == 0 {
                return Ok(0);
            }
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.flush_tls()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}

impl Timed for TlsStream {
    fn set_read_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_limit(limit)
    }

    fn set_write_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_limit(limit)
    }
}

/// The first line, if `bytes` start like an SMTP reply (`220 ...`).
fn smtp_greeting(bytes: &[u8]) -> Option<String> {
    let looks_like_reply = bytes.len() >= 4
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && matches!(bytes[3], b' ' | b'-');
    if !looks_like_reply {
        return None;
    }
    let line = bytes
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let line = &line[..line.len().min(60)];
    Some(String::from_utf8_lossy(line).into_owned())
}

/// A TLS failure, permanent: the same settings will fail the same way.
pub fn tls_error(detail: String) -> wit::Error {
    wit::Error {
        code: wit::ErrorCode::Tls(wit::Failure {
            stage: wit::Stage::Tls,
            detail: detail.clone(),
        }),
        retry: wit::Retry::Permanent,
        message: detail,
    }
}

fn handshake_timeout(host: &str, limit: Duration) -> wit::Error {
    error::network(
        error::NetworkFailure::Timeout,
        wit::Stage::Tls,
        format!(
            "the TLS handshake with {host} did not finish within {} ms",
            limit.as_millis()
        ),
    )
}

fn io_failure(e: io::Error, host: &str, limit: Duration) -> wit::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => handshake_timeout(host, limit),
        _ => error::network(
            error::NetworkFailure::Connection,
            wit::Stage::Tls,
            format!("the connection to {host} failed during the TLS handshake: {e}"),
        ),
    }
}

/// Names the cause of a handshake failure, and what to do about it.
fn describe(e: &rustls::Error, host: &str) -> wit::Error {
    let detail = match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "the certificate of {host} is signed by an unknown issuer; if it comes from \
                 a private CA, give that CA's certificate (ca-pem, CLI: --ca-file)"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the certificate presented is not valid for the name {host} (wrong name); \
                     the host setting must be the name on the server's certificate"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the certificate of {host} has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the certificate of {host} is not valid yet (check the clock)")
            }
            other => format!("the certificate of {host} is invalid: {other:?}"),
        },
        rustls::Error::PeerIncompatible(why) => format!(
            "{host} offers no TLS version or cipher suite this client accepts (TLS 1.2 or 1.3 \
             is required): {why:?}"
        ),
        rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) => format!(
            "{host} refused the TLS protocol version: it supports neither TLS 1.2 nor 1.3, \
             which this client requires"
        ),
        rustls::Error::AlertReceived(alert) => {
            format!("{host} ended the TLS handshake with the alert {alert:?}")
        }
        rustls::Error::InvalidMessage(_) => format!(
            "{host} did not answer with TLS; if this port uses STARTTLS, use starttls-required"
        ),
        other => format!("TLS with {host} failed: {other}"),
    };
    tls_error(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_a_plaintext_greeting() {
        assert_eq!(
            smtp_greeting(b"220 mx ESMTP\r\n").as_deref(),
            Some("220 mx ESMTP")
        );
        assert_eq!(smtp_greeting(b"220-mx\r\n").as_deref(), Some("220-mx"));
        assert_eq!(smtp_greeting(b"\x16\x03\x03\x00"), None);
    }
}
