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
//! For many messages over one connection, [`Mailer::open_session`]. Hosts
//! that call the WIT exports themselves use [`Mailer::instantiate`] with a
//! [`MailerCtxBuilder`], or add WASI to their own linker and instantiate
//! [`COMPONENT`] with [`bindings::Mailer`].
//!
//! This crate is the embedding library alone: it depends on wasmtime and
//! wasmtime-wasi and little else. Sending at volume (session pools,
//! failover, retries, rate limits, the durable queue's worker) is in
//! `smtp-mailer-delivery`; the Spin emulation behind `smtp-mailer serve` in
//! `smtp-mailer-serve`; the `smtp-mailer` command in `smtp-mailer-cli`.

// `Error` is a plain value of about 130 bytes, kept unboxed so that callers
// match on its kind directly; errors are rare next to the sends they end.
#![allow(clippy::result_large_err)]

pub mod bindings;
pub mod cache;
mod call;
mod ctx;
mod error;
mod mailer;
mod session;
mod stream;
mod ticker;
mod types;

pub use ctx::{MailerCtx, MailerCtxBuilder, DEFAULT_MEMORY_LIMIT};
pub use error::{Error, ErrorKind, Failure, Rejection, Stage};
pub use mailer::{Mailer, MailerBuilder, DEFAULT_CALL_DEADLINE};
pub use session::Session;
pub use ticker::{Ticker, TICK};
pub use types::{
    Attachment, Capabilities, Content, Credentials, Dkim, Envelope, Header, Mailbox, Message,
    RecipientOutcome, Reply, Secret, Security, SendReport, Server, Timeouts, TlsDetails,
};

/// The mailer component built from `guest/` with this crate, as WebAssembly.
pub const COMPONENT: &[u8] = include_bytes!(env!("SMTP_MAILER_COMPONENT_PATH"));
