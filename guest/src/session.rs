//! The `session` resource, and the connection both it and one-shot sends
//! use.

use std::cell::RefCell;
use std::net::TcpStream;
use std::time::Duration;

use smtp_mailer_core::smtp::{Client, ClientConfig, Envelope, Event};

use crate::convert;
use crate::driver::{net, Driver, Limits};
use crate::exports::smtp_mailer::mailer::sessions::GuestSession;
use crate::smtp_mailer_mailer_types as wit;

/// The name given in EHLO when the settings name none.
const DEFAULT_CLIENT_NAME: &str = "localhost";

/// An open connection that has greeted the server.
pub struct Connected {
    driver: Driver<TcpStream>,
}

impl Connected {
    /// Checks the settings, connects, reads the greeting and says EHLO.
    pub fn open(server: &wit::Server) -> Result<Connected, wit::Error> {
        check_security(server)?;
        let limits = limits(server)?;
        let name = server.client_name.as_deref().unwrap_or(DEFAULT_CLIENT_NAME);
        let config = ClientConfig::new(name).map_err(convert::core_error)?;
        let stream = net::connect(server, &limits)?;
        let mut driver = Driver::new(stream, Client::new(config), limits);
        match driver.run()? {
            Event::Ready => Ok(Connected { driver }),
            other => Err(unexpected(other)),
        }
    }

    /// Sends one message; `message_id` goes into the report.
    pub fn send(
        &mut self,
        envelope: Envelope,
        data: &[u8],
        message_id: Option<String>,
    ) -> Result<wit::SendReport, wit::Error> {
        self.driver
            .client()
            .send(envelope, data)
            .map_err(convert::core_error)?;
        match self.driver.run()? {
            Event::Delivered(delivery) => Ok(convert::report(delivery, message_id)),
            Event::Failed(e) => Err(convert::core_error(e)),
            other => Err(unexpected(other)),
        }
    }

    /// RSET.
    pub fn reset(&mut self) -> Result<(), wit::Error> {
        self.driver.client().reset().map_err(convert::core_error)?;
        match self.driver.run()? {
            Event::ResetDone => Ok(()),
            Event::Failed(e) => Err(convert::core_error(e)),
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
    convert::core_error(smtp_mailer_core::Error::Protocol {
        stage: smtp_mailer_core::Stage::Connect,
        detail: format!("the client ended in an unexpected state: {event:?}"),
    })
}

/// TLS and AUTH are not in this version: refuse rather than send in clear.
fn check_security(server: &wit::Server) -> Result<(), wit::Error> {
    if server.security != wit::Security::PlaintextInsecure {
        return Err(convert::unsupported(
            wit::Stage::Tls,
            "TLS is not available in this version of the component; only the \
             plaintext-insecure security mode (for loopback and test servers) works",
        ));
    }
    if server.credentials.is_some() {
        return Err(convert::unsupported(
            wit::Stage::Auth,
            "AUTH is not available in this version of the component",
        ));
    }
    Ok(())
}

fn limits(server: &wit::Server) -> Result<Limits, wit::Error> {
    let Some(t) = &server.timeouts else {
        return Ok(Limits::DEFAULT);
    };
    let ms = |field: &str, v: u32| {
        if v == 0 {
            Err(convert::invalid(field, "must be more than 0 ms"))
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
            return Err(convert::core_error(smtp_mailer_core::Error::Closed));
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
            },
        ))
    }

    fn send(&self, message: wit::Message) -> Result<wit::SendReport, wit::Error> {
        let built = convert::build(message)?;
        self.with(|c| c.send(built.envelope, &built.bytes, Some(built.message_id)))
    }

    fn send_raw(
        &self,
        envelope: wit::Envelope,
        data: Vec<u8>,
    ) -> Result<wit::SendReport, wit::Error> {
        let envelope = Envelope::new(&envelope.reverse_path, &envelope.forward_paths)
            .map_err(convert::core_error)?;
        self.with(|c| c.send(envelope, &data, None))
    }

    fn reset(&self) -> Result<(), wit::Error> {
        self.with(Connected::reset)
    }

    fn close(&self) -> Result<(), wit::Error> {
        if let Some(connection) = self.connection.borrow_mut().take() {
            connection.quit();
        }
        Ok(())
    }
}
