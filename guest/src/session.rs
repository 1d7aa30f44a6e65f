//! The `session` resource, and the connection both it and one-shot sends
//! use.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use smtp_mailer_core::smtp::auth::{Credentials, Secret};
use smtp_mailer_core::smtp::{AuthSettings, Client, ClientConfig, Event, TlsPolicy};

use crate::convert;
use crate::driver::stream::Stream;
use crate::driver::tls::{self, TlsStream};
use crate::driver::{net, Driver, Limits, TlsSetup};
use crate::error;
use crate::exports::smtp_mailer::mailer::sessions::{Capabilities, GuestSession, TlsDetails};
use crate::outgoing::Outgoing;
use crate::smtp_mailer_mailer_types as wit;

/// The name given in EHLO when the settings name none.
const DEFAULT_CLIENT_NAME: &str = "localhost";

/// An open connection that has greeted the server.
pub struct Connected {
    driver: Driver,
    /// TLS from the first byte.
    implicit_tls: bool,
    /// The opening authenticated with the settings' credentials.
    authenticated: bool,
}

impl Connected {
    /// Checks the settings, connects (with TLS from the first byte in
    /// implicit-TLS mode), reads the greeting, says EHLO, and upgrades
    /// with STARTTLS when the security mode asks for it.
    pub fn open(server: &wit::Server) -> Result<Connected, wit::Error> {
        let policy = tls_policy(server)?;
        let limits = limits(server)?;
        let name = server.client_name.as_deref().unwrap_or(DEFAULT_CLIENT_NAME);
        let mut config = ClientConfig::new(name)
            .map_err(error::core_error)?
            .with_tls(policy);
        if let Some(auth) = auth_settings(server)? {
            config = config.with_auth(auth);
        }
        let tls = match policy {
            TlsPolicy::PlaintextInsecure => None,
            _ => Some(TlsSetup {
                config: tls::client_config(server.ca_pem.as_deref())?,
                host: server.host.clone(),
            }),
        };
        let tcp = net::connect(server, &limits)?;
        let stream = match (&tls, policy) {
            (Some(setup), TlsPolicy::Implicit) => Stream::Tls(Box::new(TlsStream::handshake(
                tcp,
                &setup.host,
                setup.config.clone(),
                limits.command,
            )?)),
            _ => Stream::Plain(tcp),
        };
        if server.trace {
            eprintln!(
                "* connected to {}:{}",
                server.connect_address.as_deref().unwrap_or(&server.host),
                server.port
            );
        }
        let mut driver = Driver::new(stream, tls, Client::new(config), limits, server.trace);
        match driver.run()? {
            Event::Ready => Ok(Connected {
                driver,
                implicit_tls: policy == TlsPolicy::Implicit,
                // The client reports Ready with credentials only once the
                // server accepted them.
                authenticated: server.credentials.is_some(),
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Sends one message; a streamed one is read while it goes.
    pub fn send(&mut self, outgoing: Outgoing) -> Result<wit::SendReport, wit::Error> {
        let (event, message_id) = match outgoing {
            Outgoing::Whole {
                envelope,
                bytes,
                message_id,
            } => {
                self.driver
                    .client()
                    .send(envelope, &bytes)
                    .map_err(error::core_error)?;
                (self.driver.run()?, message_id)
            }
            Outgoing::Streamed {
                envelope,
                info,
                mut source,
                message_id,
            } => {
                self.driver
                    .client()
                    .send_streamed(envelope, info)
                    .map_err(error::core_error)?;
                let event = match self.driver.run()? {
                    Event::ContentWanted => self.driver.stream_content(source.as_mut())?,
                    other => other,
                };
                (event, message_id)
            }
        };
        match event {
            Event::Delivered(delivery) => Ok(convert::report(delivery, message_id)),
            Event::Failed(e) => Err(error::core_error(e)),
            other => Err(unexpected(other)),
        }
    }

    /// What the server announced and how the connection is protected.
    pub fn capabilities(&mut self) -> Capabilities {
        let tls = self
            .driver
            .tls_details()
            .map(|(version, cipher_suite, peer_certificates)| TlsDetails {
                implicit: self.implicit_tls,
                version,
                cipher_suite,
                peer_certificates,
            });
        let extensions = self.driver.client().extensions();
        Capabilities {
            extensions: extensions.keywords.clone(),
            auth_mechanisms: extensions.auth.clone(),
            size: extensions.size,
            tls,
            authenticated: self.authenticated,
        }
    }

    /// RSET.
    pub fn reset(&mut self) -> Result<(), wit::Error> {
        self.driver.client().reset().map_err(error::core_error)?;
        match self.driver.run()? {
            Event::ResetDone => Ok(()),
            Event::Failed(e) => Err(error::core_error(e)),
            other => Err(unexpected(other)),
        }
    }

    /// True when the connection can carry another command.
    pub fn is_usable(&mut self) -> bool {
        !self.driver.client().is_closed()
    }

    /// QUIT, then close.
    pub fn quit(self) {
        self.driver.quit();
    }
}

fn unexpected(event: Event) -> wit::Error {
    error::core_error(smtp_mailer_core::Error::Protocol {
        stage: smtp_mailer_core::Stage::Connect,
        detail: format!("the client ended in an unexpected state: {event:?}"),
    })
}

/// The AUTH settings of the server's credentials, with a fresh nonce.
/// Control characters are refused here, before anything is sent.
fn auth_settings(server: &wit::Server) -> Result<Option<AuthSettings>, wit::Error> {
    let Some(c) = server.credentials.as_ref() else {
        return Ok(None);
    };
    let secret = match &c.secret {
        wit::Secret::Password(p) | wit::Secret::Oauth2Token(p) => p,
    };
    if c.user.is_empty() || c.user.chars().any(char::is_control) {
        return Err(error::invalid(
            "server.credentials.user",
            "must be non-empty and hold no control character",
        ));
    }
    if secret.is_empty() || secret.chars().any(char::is_control) {
        return Err(error::invalid(
            "server.credentials.secret",
            "must be non-empty and hold no control character",
        ));
    }
    if let Some(mechanism) = &c.mechanism {
        let is_name = !mechanism.is_empty()
            && mechanism.len() <= 20
            && mechanism
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !is_name {
            return Err(error::invalid(
                "server.credentials.mechanism",
                "is not a SASL mechanism name (letters, digits, - and _)",
            ));
        }
    }
    let credentials = match &c.secret {
        wit::Secret::Password(p) => {
            Credentials::with_password(c.user.clone(), Secret::new(p.clone()))
        }
        wit::Secret::Oauth2Token(t) => {
            Credentials::with_token(c.user.clone(), Secret::new(t.clone()))
        }
    };
    Ok(Some(AuthSettings {
        credentials,
        mechanism: c.mechanism.clone(),
        client_nonce: convert::random_hex(16),
        host: server.host.clone(),
        port: server.port,
    }))
}

/// The TLS policy of the security mode. Port 465 is implicit TLS: any
/// other mode there would wait for a greeting that never comes.
fn tls_policy(server: &wit::Server) -> Result<TlsPolicy, wit::Error> {
    let policy = match server.security {
        wit::Security::ImplicitTls => TlsPolicy::Implicit,
        wit::Security::StarttlsRequired => TlsPolicy::StartTlsRequired,
        wit::Security::StarttlsOpportunistic => TlsPolicy::StartTlsOpportunistic,
        wit::Security::PlaintextInsecure => TlsPolicy::PlaintextInsecure,
    };
    if server.port == 465 && policy != TlsPolicy::Implicit {
        return Err(tls::tls_error(
            "port 465 is the implicit-TLS (SMTPS) port, where the server waits for a TLS \
             handshake before its greeting: use the implicit-tls security mode"
                .into(),
        ));
    }
    Ok(policy)
}

fn limits(server: &wit::Server) -> Result<Limits, wit::Error> {
    let Some(t) = &server.timeouts else {
        return Ok(Limits::DEFAULT);
    };
    let ms = |field: &str, v: u32| {
        if v == 0 {
            Err(error::invalid(field, "must be more than 0 ms"))
        } else {
            Ok(Duration::from_millis(u64::from(v)))
        }
    };
    Ok(Limits {
        connect: ms("server.timeouts.connect-ms", t.connect_ms)?,
        command: ms("server.timeouts.command-ms", t.command_ms)?,
        data: ms("server.timeouts.data-ms", t.data_ms)?,
    })
}

/// The `session` resource: a connection that stays open between calls.
pub struct Session {
    /// None once closed, by `close` or by a failure that broke it.
    connection: RefCell<Option<Connected>>,
    /// True once the caller closed the session: later calls say so, rather
    /// than blame a failure.
    closed_by_caller: Cell<bool>,
}

impl Session {
    /// Runs `op` on the open connection; drops the connection when the
    /// operation leaves it unusable.
    fn with<T>(
        &self,
        op: impl FnOnce(&mut Connected) -> Result<T, wit::Error>,
    ) -> Result<T, wit::Error> {
        let mut slot = self.connection.borrow_mut();
        let Some(connection) = slot.as_mut() else {
            let closed = if self.closed_by_caller.get() {
                smtp_mailer_core::Error::ClosedByCaller
            } else {
                smtp_mailer_core::Error::Closed
            };
            return Err(error::core_error(closed));
        };
        let result = op(connection);
        if !connection.is_usable() {
            *slot = None;
        }
        result
    }
}

impl GuestSession for Session {
    fn open(
        server: wit::Server,
    ) -> Result<crate::exports::smtp_mailer::mailer::sessions::Session, wit::Error> {
        let connection = Connected::open(&server)?;
        Ok(crate::exports::smtp_mailer::mailer::sessions::Session::new(
            Session {
                connection: RefCell::new(Some(connection)),
                closed_by_caller: Cell::new(false),
            },
        ))
    }

    fn send(&self, message: wit::Message) -> Result<wit::SendReport, wit::Error> {
        let outgoing = Outgoing::message(message)?;
        self.with(|c| c.send(outgoing))
    }

    fn send_raw(
        &self,
        envelope: wit::Envelope,
        data: wit::Content,
    ) -> Result<wit::SendReport, wit::Error> {
        let outgoing = Outgoing::raw(envelope, data)?;
        self.with(|c| c.send(outgoing))
    }

    fn capabilities(&self) -> Result<Capabilities, wit::Error> {
        self.with(|c| Ok(c.capabilities()))
    }

    fn reset(&self) -> Result<(), wit::Error> {
        self.with(Connected::reset)
    }

    fn close(&self) -> Result<(), wit::Error> {
        self.closed_by_caller.set(true);
        if let Some(connection) = self.connection.borrow_mut().take() {
            connection.quit();
        }
        Ok(())
    }
}
