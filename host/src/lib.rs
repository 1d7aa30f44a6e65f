//! Runs the SmtpMailer WebAssembly component in wasmtime, sandboxed.
//!
//! The component builds MIME messages and speaks SMTP over wasi:sockets;
//! this crate loads it once (with a compiled-code cache, so a second
//! process start does not recompile), pre-instantiates it, and gives every
//! send or session a fresh store with:
//!
//! - a network that is denied by default: the component may connect to the
//!   configured server's address and nothing else, and cannot resolve names;
//! - no filesystem, environment, arguments or standard input;
//! - a memory limit and a deadline per call.
//!
//! ```no_run
//! use smtp_mailer_host::{Mailbox, Mailer, Message, Server};
//!
//! let mailer = Mailer::new()?;
//! let server = Server::new("127.0.0.1", 2525).plaintext_insecure();
//! let report = mailer.send(&server, &Message {
//!     from: Mailbox::new("app@example.org"),
//!     to: vec![Mailbox::named("Ada", "ada@example.org")],
//!     subject: "Hello".into(),
//!     text: Some("Hi Ada".into()),
//!     ..Message::default()
//! })?;
//! for r in &report.recipients {
//!     println!("{}: {}", r.address, r.reply);
//! }
//! # Ok::<(), smtp_mailer_host::Error>(())
//! ```
//!
//! For many messages over one connection, [`Mailer::open_session`]; for
//! volume, a pool of sessions per relay with retries, rate limits and a
//! suppression list in [`delivery`], and a durable queue and its worker in
//! [`worker`] (on SQLite or Redis Streams, from `smtp-mailer-queue`). Hosts
//! that call the WIT exports themselves use [`Mailer::instantiate`] with a
//! [`MailerCtxBuilder`].

// `Error` is a plain value of about 130 bytes, kept unboxed so that callers
// match on its kind directly; errors are rare next to the sends they end.
#![allow(clippy::result_large_err)]

pub mod bindings;
mod cache;
mod ctx;
pub mod delivery;
mod error;
pub mod json;
mod mailer;
mod session;
pub mod spin;
mod stream;
mod types;
pub mod worker;

pub use ctx::{MailerCtx, MailerCtxBuilder, DEFAULT_MEMORY_LIMIT};
pub use error::{Error, ErrorKind, Failure, Rejection, Stage};
pub use mailer::{Mailer, MailerBuilder, DEFAULT_CALL_DEADLINE};
pub use session::Session;
pub use types::{
    Attachment, Content, Credentials, Dkim, Envelope, Header, Mailbox, Message, RecipientOutcome,
    Reply, Secret, Security, SendReport, Server, Timeouts,
};

/// The durable queue and the suppression list (SQLite or Redis Streams).
pub use smtp_mailer_queue as queue;

/// The mailer component built from `guest/` with this crate, as WebAssembly.
pub const COMPONENT: &[u8] = include_bytes!(env!("SMTP_MAILER_COMPONENT_PATH"));
