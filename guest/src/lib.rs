//! The SmtpMailer component: the WIT exports of `wit/` over the rules of
//! `smtp-mailer-core`, with a thin I/O driver on wasi:sockets.
//!
//! - [`convert`] turns WIT values into core values and deliveries back;
//!   [`error`] makes every failure the WIT error (the lowest module).
//! - [`driver`] owns the connection: it writes each flight of bytes the
//!   client hands out in one write and reads replies under deadlines.
//! - [`session`] is the `session` resource; one-shot sends open one.
//! - [`outgoing`] prepares a message before connecting; [`content`] reads
//!   streamed contents while they are sent.

mod content;
mod convert;
mod dkim;
mod driver;
mod error;
mod outgoing;
mod session;

wit_bindgen::generate!({
    path: "../wit",
    world: "mailer",
    generate_all,
});

use exports::smtp_mailer::mailer::message::Guest as MessageGuest;
use exports::smtp_mailer::mailer::sender::Guest as SenderGuest;
use exports::smtp_mailer::mailer::sessions::Guest as SessionsGuest;
use outgoing::Outgoing;
use smtp_mailer_mailer_types::{Content, Envelope, Error, Message, SendReport, Server};

/// The WIT types, under a short name.
pub(crate) use exports::smtp_mailer::mailer::types as smtp_mailer_mailer_types;

struct Component;

impl MessageGuest for Component {
    fn build(message: Message) -> Result<Vec<u8>, Error> {
        let (built, mut inputs) = convert::build(message)?;
        built.assemble(
            |slot| match inputs.get_mut(slot.attachment).and_then(Option::take) {
                Some(input) => input.read_all(),
                None => Err(error::invalid(
                    "attachments",
                    "a streamed attachment has no stream",
                )),
            },
        )
    }
}

impl SenderGuest for Component {
    fn send(server: Server, message: Message) -> Result<SendReport, Error> {
        send_once(&server, Outgoing::message(message)?)
    }

    fn send_raw(server: Server, envelope: Envelope, data: Content) -> Result<SendReport, Error> {
        send_once(&server, Outgoing::raw(envelope, data)?)
    }
}

impl SessionsGuest for Component {
    type Session = session::Session;
}

/// Connects, sends, and says QUIT.
fn send_once(server: &Server, outgoing: Outgoing) -> Result<SendReport, Error> {
    let mut connection = session::Connected::open(server)?;
    let report = connection.send(outgoing);
    if connection.is_usable() {
        connection.quit();
    }
    report
}

export!(Component);
