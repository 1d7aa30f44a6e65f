//! The SmtpMailer component: the WIT exports of `wit/` over the rules of
//! `smtp-mailer-core`, with a thin I/O driver on wasi:sockets.
//!
//! - [`convert`] turns WIT values into core values and errors back.
//! - [`driver`] owns the connection: it writes each flight of bytes the
//!   client hands out in one write and reads replies under deadlines.
//! - [`session`] is the `session` resource; one-shot sends open one.

mod convert;
mod driver;
mod session;

wit_bindgen::generate!({
    path: "../wit",
    world: "mailer",
    generate_all,
});

use exports::smtp_mailer::mailer::message::Guest as MessageGuest;
use exports::smtp_mailer::mailer::sender::Guest as SenderGuest;
use exports::smtp_mailer::mailer::sessions::Guest as SessionsGuest;
use smtp_mailer_core::smtp::Envelope as CoreEnvelope;
use smtp_mailer_mailer_types::{Envelope, Error, Message, SendReport, Server};

/// The WIT types, under a short name.
pub(crate) use exports::smtp_mailer::mailer::types as smtp_mailer_mailer_types;

struct Component;

impl MessageGuest for Component {
    fn build(message: Message) -> Result<Vec<u8>, Error> {
        Ok(convert::build(message)?.bytes)
    }
}

impl SenderGuest for Component {
    fn send(server: Server, message: Message) -> Result<SendReport, Error> {
        let built = convert::build(message)?;
        let mut connection = session::Connected::open(&server)?;
        let report = connection.send(built.envelope, &built.bytes, Some(built.message_id));
        connection.quit();
        report
    }

    fn send_raw(server: Server, envelope: Envelope, data: Vec<u8>) -> Result<SendReport, Error> {
        let envelope = CoreEnvelope::new(&envelope.reverse_path, &envelope.forward_paths)
            .map_err(convert::core_error)?;
        let mut connection = session::Connected::open(&server)?;
        let report = connection.send(envelope, &data, None);
        connection.quit();
        report
    }
}

impl SessionsGuest for Component {
    type Session = session::Session;
}

export!(Component);
