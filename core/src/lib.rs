//! The rules of SmtpMailer in plain Rust: building RFC 5322 messages and
//! speaking SMTP (RFC 5321), with no I/O and no clock.
//!
//! The crate compiles natively and to `wasm32-wasip2`. The component in
//! `guest/` drives it over wasi:sockets; tests drive it in memory.
//!
//! - [`message`] validates a [`Message`](message::Message) and builds its
//!   bytes with `mail-builder`.
//! - [`smtp`] is a sans-I/O SMTP client: feed it the server's replies, send
//!   the bytes it hands out.
//! - [`address`] parses and checks mailbox addresses.
//!
//! ```
//! use smtp_mailer_core::smtp::{Client, ClientConfig, Event, TlsPolicy};
//! use smtp_mailer_core::smtp::reply::Reply;
//!
//! let config = ClientConfig::new("client.example").unwrap();
//! let mut client = Client::new(config.with_tls(TlsPolicy::PlaintextInsecure));
//! client.handle_reply(Reply::new(220, "mx.example ESMTP")).unwrap();
//! assert_eq!(client.take_output(), b"EHLO client.example\r\n");
//! client.handle_reply(Reply::parse_lines(&["250-mx.example", "250 PIPELINING"]).unwrap()).unwrap();
//! assert!(matches!(client.poll_event(), Some(Event::Ready)));
//! ```

pub mod address;
pub mod dkim;
pub mod error;
pub mod message;
pub mod smtp;

pub use error::{Error, Stage};
