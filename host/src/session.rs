//! [`Session`]: one SMTP connection inside one store, for many messages.

use wasmtime::component::ResourceAny;
use wasmtime::Store;

use crate::bindings;
use crate::bindings::exports::smtp_mailer::mailer::sessions::Guest as Sessions;
use crate::bindings::exports::smtp_mailer::mailer::types as wit;
use crate::call::finish;
use crate::ctx::MailerCtx;
use crate::error::Error;
use crate::types::{Capabilities, Content, Envelope, Message, SendReport};

/// An open SMTP connection that carries messages one after the other.
///
/// Any failure that leaves the connection in an unknown state closes it;
/// later calls then fail with a connection error, and a new session is
/// needed. Dropping the session closes the connection without QUIT.
///
/// ```no_run
/// use smtp_mailer_host::{Mailbox, Mailer, Message, Server};
///
/// let mailer = Mailer::new()?;
/// let mut session = mailer.open_session(&Server::new("smtp.example.org", 587))?;
/// let message = |to: &str| Message {
///     from: Mailbox::new("app@example.org"),
///     to: vec![Mailbox::new(to)],
///     subject: "Hello".into(),
///     text: Some("Hi".into()),
///     ..Message::default()
/// };
/// session.send(&message("ada@example.org"))?;
/// if let Err(e) = session.send(&message("not-an-address")) {
///     println!("refused before anything was sent: {e}");
/// }
/// session.send(&message("alan@example.org"))?;
/// println!("guest memory: {} bytes", session.peak_memory());
/// session.close()?;
/// # Ok::<(), smtp_mailer_host::Error>(())
/// ```
pub struct Session {
    store: Store<MailerCtx>,
    exports: Sessions,
    handle: Option<ResourceAny>,
    deadline_ticks: u64,
}

impl Session {
    pub(crate) fn open(
        mut store: Store<MailerCtx>,
        exports: Sessions,
        server: &wit::Server,
        deadline_ticks: u64,
    ) -> Result<Session, Error> {
        let call = exports.session().call_open(&mut store, server);
        let handle = finish(call)?;
        Ok(Session {
            store,
            exports,
            handle: Some(handle),
            deadline_ticks,
        })
    }

    fn handle(&mut self) -> Result<ResourceAny, Error> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.handle
            .ok_or_else(|| Error::runtime("the session was stopped by an earlier failure"))
    }

    /// Forgets the guest's state after a trap: the instance is unusable.
    fn check<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error {
            kind: crate::error::ErrorKind::Runtime { .. },
            ..
        }) = &result
        {
            self.handle = None;
        }
        result
    }

    /// Sends a message over this connection. Attachments given as
    /// [`Content::File`] are streamed.
    pub fn send(&mut self, message: &Message) -> Result<SendReport, Error> {
        let handle = self.handle()?;
        let message = bindings::message(message, &mut self.store.data_mut().table)?;
        let call = self
            .exports
            .session()
            .call_send(&mut self.store, handle, &message);
        let result = finish(call).map(Into::into);
        self.check(result)
    }

    /// Sends a raw message over this connection; a [`Content::File`] is
    /// streamed.
    pub fn send_raw(&mut self, envelope: &Envelope, data: &Content) -> Result<SendReport, Error> {
        let handle = self.handle()?;
        let data = bindings::content(data, &mut self.store.data_mut().table, "data", false)?;
        let call =
            self.exports
                .session()
                .call_send_raw(&mut self.store, handle, &envelope.into(), &data);
        let result = finish(call).map(Into::into);
        self.check(result)
    }

    /// The component's linear memory in this session so far, in bytes (it
    /// never shrinks): what the sends cost in guest memory.
    pub fn peak_memory(&self) -> usize {
        self.store.data().peak_memory()
    }

    /// What the server announced in EHLO (under TLS after STARTTLS) and how
    /// the connection is protected: for checking a relay without sending
    /// mail. Sends nothing.
    ///
    /// ```no_run
    /// use smtp_mailer_host::{Mailer, Server};
    ///
    /// let mailer = Mailer::new()?;
    /// let mut session = mailer.open_session(&Server::new("smtp.example.org", 587))?;
    /// let offered = session.capabilities()?;
    /// println!("SIZE {:?}, DSN {}", offered.size, offered.offers("DSN"));
    /// session.close()?;
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn capabilities(&mut self) -> Result<Capabilities, Error> {
        let handle = self.handle()?;
        let call = self
            .exports
            .session()
            .call_capabilities(&mut self.store, handle);
        let result = finish(call).map(Into::into);
        self.check(result)
    }

    /// Resets the server's transaction state (RSET).
    pub fn reset(&mut self) -> Result<(), Error> {
        let handle = self.handle()?;
        let call = self.exports.session().call_reset(&mut self.store, handle);
        let result = finish(call);
        self.check(result)
    }

    /// Says QUIT and closes the connection.
    pub fn close(mut self) -> Result<(), Error> {
        let handle = self.handle()?;
        let call = self.exports.session().call_close(&mut self.store, handle);
        finish(call)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.resource_drop(&mut self.store);
        }
    }
}
