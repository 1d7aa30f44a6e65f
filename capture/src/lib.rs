//! An in-process SMTP capture server, in the manner of Mailpit: it accepts
//! every message sent to it, keeps it in memory and optionally on disk, and
//! delivers nothing. The `smtp-mailer` CLI runs it on loopback as its default
//! destination and as `smtp-mailer capture --dir DIR`.
//!
//! It speaks RFC 5321 with `PIPELINING`, `SIZE`, `8BITMIME`, `SMTPUTF8` and
//! `ENHANCEDSTATUSCODES`, strictly enough to catch client mistakes (commands
//! out of order, missing dot-stuffing, oversized messages, non-ASCII
//! addresses without `SMTPUTF8`). It offers no TLS and no authentication.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//! use std::time::Duration;
//! use smtp_mailer_capture::{CaptureOptions, CaptureServer};
//!
//! let server = CaptureServer::start(CaptureOptions::default())?;
//! let mut stream = TcpStream::connect(server.local_addr())?;
//! stream.write_all(
//!     b"EHLO me\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
//! )?;
//! stream.write_all(b"Subject: hello\r\n\r\nHi!\r\n.\r\nQUIT\r\n")?;
//! let mut replies = String::new();
//! for line in BufReader::new(stream).lines() {
//!     replies.push_str(&line?);
//! }
//! assert!(replies.contains("250 2.0.0 Ok: queued as 1"));
//!
//! let messages = server.wait_for(1, Duration::from_secs(5));
//! assert_eq!(messages[0].rcpt_to, ["b@example.com"]);
//! assert_eq!(messages[0].data, b"Subject: hello\r\n\r\nHi!\r\n");
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The protocol lives in a state machine without I/O (`session`), tested with
//! in-memory transcripts fed in chunks of every size; one thread per
//! connection drives it over a `TcpStream`.

#![warn(missing_docs)]

mod command;
mod connection;
mod data;
mod error;
mod message;
mod options;
mod reply;
mod server;
mod session;
mod shared;
mod store;

pub use error::CaptureError;
pub use message::CapturedMessage;
pub use options::{CaptureOptions, MessageCallback, DEFAULT_MAX_MESSAGE_SIZE};
pub use server::CaptureServer;
