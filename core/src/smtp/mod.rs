//! A sans-I/O SMTP client (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
//! SMTPUTF8 and CHUNKING).
//!
//! [`Client`] does no I/O and reads no clock. The driver that owns the
//! connection writes what [`Client::take_output`] hands out (in one write:
//! each flight of commands is coalesced), reads replies with a
//! [`reply::ReplyParser`] while [`Client::wait`] says a reply is due (and
//! which time limit applies), passes each to [`Client::handle_reply`], and
//! takes the outcome of each operation from [`Client::poll_event`].
//!
//! The client hands out a flight only once every reply to the previous one
//! was read, so a driver that writes what it gets, when it gets it, never
//! talks early: without PIPELINING a flight is one command (or the content
//! after 354, or one BDAT chunk); with PIPELINING, RSET, MAIL and RCPT are
//! grouped with the DATA or `BDAT LAST` that ends the group (RFC 2920 3.1).
//! A streamed content's BDAT chunks each wait for the reply to the one
//! before: a driver writes a piece only when [`Client::wait`] says no
//! reply is due.
//!
//! A content too large to hold is streamed: [`Client::send_streamed`]
//! declares it, [`Event::ContentWanted`] says when to write it, and the
//! driver passes it in pieces to [`Client::write_content`].

pub mod auth;
pub mod client;
pub mod command;
pub mod content;
pub mod data;
pub mod envelope;
pub mod extensions;
pub mod reply;

pub use client::{AuthSettings, Client, ClientConfig, Event, TlsPolicy, Wait};
pub use content::ContentInfo;
pub use envelope::Envelope;
pub use extensions::Extensions;

use reply::Reply;

/// What happened to one recipient of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The forward path, as given.
    pub address: String,
    /// True when the server accepted the recipient and then the message.
    pub accepted: bool,
    /// The server's reply to this recipient's RCPT command.
    pub reply: Reply,
}

/// A transaction the server accepted for at least one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// One outcome per forward path, in envelope order.
    pub recipients: Vec<RecipientOutcome>,
    /// The reply to the end of the data.
    pub final_reply: Reply,
}
