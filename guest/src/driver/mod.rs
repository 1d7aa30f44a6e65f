//! The I/O driver: runs a [`Client`] over a byte stream.
//!
//! The stream is any `Read + Write` with settable time limits ([`Timed`]):
//! a TCP connection over wasi:sockets ([`tcp`]), or TLS over it. Each flight of bytes
//! the client hands out goes out in one write (WASI 0.2 cannot set
//! TCP_NODELAY; two small writes before a read stall on Nagle and delayed
//! ACK). Each reply is read under a deadline: a server that stays silent,
//! or drips bytes, ends the operation with a timeout.

pub mod net;
pub mod stream;
pub mod tcp;
pub mod tls;
mod wait;

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig as TlsConfig;
use stream::Stream;
use tls::TlsStream;

use smtp_mailer_core::smtp::reply::ReplyParser;
use smtp_mailer_core::smtp::{Client, Event, Wait};
use smtp_mailer_core::Stage;

use crate::content::ContentSource;
use crate::error::{self, NetworkFailure};
use crate::smtp_mailer_mailer_types as wit;

/// A stream whose reads and writes can be bounded in time.
pub trait Timed: Read + Write {
    /// Bounds the next reads; `None` waits forever.
    fn set_read_limit(&self, limit: Option<Duration>) -> io::Result<()>;
    /// Bounds the next writes; `None` waits forever.
    fn set_write_limit(&self, limit: Option<Duration>) -> io::Result<()>;
}

/// Time limits of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Establishing the connection.
    pub connect: Duration,
    /// Each command's reply.
    pub command: Duration,
    /// Writing the content and its final reply.
    pub data: Duration,
}

impl Limits {
    /// 10 s to connect, 60 s per command, 120 s for the data.
    pub const DEFAULT: Limits = Limits {
        connect: Duration::from_secs(10),
        command: Duration::from_secs(60),
        data: Duration::from_secs(120),
    };
}

/// The size of one read from the stream. Replies are a few dozen bytes;
/// the host zero-fills a buffer of the size asked for at every read, so a
/// small one is cheaper, and a long reply just takes another read.
const READ_CHUNK: usize = 1024;

/// How much streamed content after DATA is gathered before a write.
const FLUSH_AT: usize = 256 * 1024;

/// What a STARTTLS upgrade needs: the TLS configuration and the name the
/// certificate must carry.
pub struct TlsSetup {
    /// The rustls configuration.
    pub config: Arc<TlsConfig>,
    /// The server's host name.
    pub host: String,
}

/// A client and its stream.
pub struct Driver {
    stream: Stream,
    tls: Option<TlsSetup>,
    client: Client,
    parser: ReplyParser,
    /// Bytes read but not parsed yet (pipelined replies arrive together).
    input: Vec<u8>,
    /// Where each read lands: zeroed once, not at every read.
    read_buffer: Box<[u8; READ_CHUNK]>,
    limits: Limits,
    /// Write the conversation to standard error, secrets redacted.
    trace: bool,
}

impl Driver {
    /// A driver for a fresh connection; nothing is read yet. `tls` is
    /// needed when the client may ask for STARTTLS.
    pub fn new(
        stream: Stream,
        tls: Option<TlsSetup>,
        client: Client,
        limits: Limits,
        trace: bool,
    ) -> Self {
        if trace {
            if let Stream::Tls(tls) = &stream {
                eprintln!("* TLS from the first byte: {}", tls.describe());
            }
        }
        Driver {
            stream,
            tls,
            client,
            parser: ReplyParser::new(),
            input: Vec::with_capacity(READ_CHUNK),
            read_buffer: Box::new([0; READ_CHUNK]),
            limits,
            trace,
        }
    }

    /// The client, to start operations.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The TLS version, cipher suite and server certificates, when TLS
    /// protects the connection.
    pub fn tls_details(&self) -> Option<(String, String, Vec<Vec<u8>>)> {
        match &self.stream {
            Stream::Tls(tls) => Some(tls.details()),
            _ => None,
        }
    }

    /// Writes and reads until the current operation's event. Any error
    /// leaves the connection unusable: the client is closed.
    pub fn run(&mut self) -> Result<Event, wit::Error> {
        let result = self.run_inner();
        if result.is_err() {
            self.client.connection_lost();
        }
        result
    }

    fn run_inner(&mut self) -> Result<Event, wit::Error> {
        loop {
            let output = self.client.take_output();
            if !output.is_empty() {
                self.write_flight(&output)?;
            }
            if let Some(event) = self.client.poll_event() {
                if event == Event::StartTls {
                    self.upgrade()?;
                    continue;
                }
                return Ok(event);
            }
            let Some(wait) = self.client.wait() else {
                return Err(error::core_error(smtp_mailer_core::Error::Closed));
            };
            let stage = self.client.pending_stage().unwrap_or(Stage::Connect);
            let limit = match wait {
                Wait::Command => self.limits.command,
                Wait::Data => self.limits.data,
            };
            let reply = self.read_reply(stage, limit)?;
            if self.trace {
                trace_reply(&reply);
            }
            self.client.handle_reply(reply).map_err(error::core_error)?;
        }
    }

    /// Streams a content after [`Event::ContentWanted`], piece by piece,
    /// and waits for the final reply. After DATA, pieces are written as
    /// they come (the last ones together with the terminator, in one
    /// write); with BDAT, each piece is a chunk whose reply is read before
    /// the next. Any error leaves the connection unusable, and the message
    /// unfinished, so the server drops it.
    pub fn stream_content(&mut self, source: &mut dyn ContentSource) -> Result<Event, wit::Error> {
        let result = self.stream_content_inner(source);
        if result.is_err() {
            self.client.connection_lost();
        }
        result
    }

    fn stream_content_inner(
        &mut self,
        source: &mut dyn ContentSource,
    ) -> Result<Event, wit::Error> {
        let mut pending: Vec<u8> = Vec::new();
        while let Some(piece) = source.next_piece()? {
            self.client
                .write_content(piece)
                .map_err(error::core_error)?;
            let output = self.client.take_output();
            if self.client.wait().is_none() {
                // DATA: no reply is due until the end.
                if pending.is_empty() {
                    pending = output;
                } else {
                    pending.extend_from_slice(&output);
                }
                if pending.len() >= FLUSH_AT {
                    self.write_content(&std::mem::take(&mut pending))?;
                }
                continue;
            }
            self.write_content(&output)?;
            while let Some(Wait::Command | Wait::Data) = self.client.wait() {
                let reply = self.read_reply(Stage::DataEnd, self.limits.data)?;
                if self.trace {
                    trace_reply(&reply);
                }
                self.client.handle_reply(reply).map_err(error::core_error)?;
                if let Some(event) = self.client.poll_event() {
                    // A refused chunk: the send is over.
                    return Ok(event);
                }
            }
        }
        self.client.end_content().map_err(error::core_error)?;
        pending.extend_from_slice(&self.client.take_output());
        self.write_content(&pending)?;
        self.run_inner()
    }

    /// Writes content bytes; the trace shows their count.
    fn write_content(&mut self, bytes: &[u8]) -> Result<(), wit::Error> {
        if self.trace {
            trace_content(bytes);
        }
        let limit = self.limits.data;
        let result = self
            .stream
            .set_write_limit(Some(limit))
            .and_then(|()| self.stream.write_all(bytes))
            .and_then(|()| self.stream.flush());
        result.map_err(|e| io_error(e, Stage::DataEnd, limit, "sending the content"))
    }

    fn write_flight(&mut self, bytes: &[u8]) -> Result<(), wit::Error> {
        let stage = self.client.pending_stage().unwrap_or(Stage::Connect);
        if self.trace {
            trace_flight(stage, bytes);
        }
        let limit = if bytes.len() > 64 * 1024 {
            self.limits.data
        } else {
            self.limits.command
        };
        let result = self
            .stream
            .set_write_limit(Some(limit))
            .and_then(|()| self.stream.write_all(bytes))
            .and_then(|()| self.stream.flush());
        result.map_err(|e| io_error(e, stage, limit, "sending"))
    }

    /// Reads one reply; the whole reply must arrive within `limit`.
    fn read_reply(
        &mut self,
        stage: Stage,
        limit: Duration,
    ) -> Result<smtp_mailer_core::smtp::reply::Reply, wit::Error> {
        let deadline = Instant::now() + limit;
        loop {
            if !self.input.is_empty() {
                let (used, reply) = self
                    .parser
                    .feed(&self.input)
                    .map_err(|e| protocol(stage, e.to_string()))?;
                self.input.drain(..used);
                if let Some(reply) = reply {
                    return Ok(reply);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout(stage, limit));
            }
            let read = self
                .stream
                .set_read_limit(Some(left))
                .and_then(|()| self.stream.read(&mut self.read_buffer[..]));
            let read = match read {
                Ok(n) => n,
                Err(e) => return Err(io_error(e, stage, limit, "waiting for the reply")),
            };
            self.input.extend_from_slice(&self.read_buffer[..read]);
            if read == 0 {
                return Err(error::network(
                    NetworkFailure::Connection,
                    error::stage(stage),
                    format!(
                        "the server closed the connection while the client waited for the \
                         reply to {}",
                        stage.describe()
                    ),
                ));
            }
        }
    }

    /// Runs the STARTTLS handshake. Bytes received after the 220 and before
    /// the handshake would be read as if protected: they abort the session
    /// (the STARTTLS response injection of CVE-2011-0411 and its kin).
    fn upgrade(&mut self) -> Result<(), wit::Error> {
        if !self.input.is_empty() || self.parser.is_partial() {
            return Err(protocol(
                Stage::Tls,
                format!(
                    "the server sent {} bytes after its 220 to STARTTLS, before TLS began; \
                     they could be an injection, so the session is aborted",
                    self.input.len()
                ),
            ));
        }
        let Some(setup) = &self.tls else {
            return Err(protocol(
                Stage::Tls,
                "STARTTLS without a TLS configuration".into(),
            ));
        };
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(protocol(
                Stage::Tls,
                "STARTTLS on a stream that is not plain TCP".into(),
            ));
        };
        let tls =
            TlsStream::handshake(tcp, &setup.host, setup.config.clone(), self.limits.command)?;
        self.stream = Stream::Tls(Box::new(tls));
        self.client.tls_established();
        Ok(())
    }

    /// Says QUIT and waits briefly for the goodbye; errors are ignored, the
    /// connection is dropped either way.
    pub fn quit(mut self) {
        if self.client.quit().is_ok() {
            self.limits.command = self.limits.command.min(Duration::from_secs(5));
            let _ = self.run();
        }
    }
}

/// Writes what the client sends: commands as they are, the content as a
/// byte count, AUTH payloads redacted.
fn trace_flight(stage: Stage, bytes: &[u8]) {
    if stage == Stage::DataEnd {
        trace_content(bytes);
        return;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        rest = after;
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(size) = bdat_size(line) {
            eprintln!("C: {line}");
            eprintln!("C: <content: {size} bytes>");
            rest = rest.get(size..).unwrap_or_default();
        } else if stage != Stage::Auth {
            eprintln!("C: {line}");
        } else if let Some(rest) = line.strip_prefix("AUTH ") {
            let mechanism = rest.split(' ').next().unwrap_or_default();
            eprintln!("C: AUTH {mechanism} <redacted>");
        } else {
            eprintln!("C: <redacted>");
        }
    }
}

/// Writes content as a byte count, and BDAT commands as they are.
fn trace_content(bytes: &[u8]) {
    if bytes.starts_with(b"BDAT ") {
        return trace_flight(Stage::Data, bytes);
    }
    eprintln!("C: <content: {} bytes>", bytes.len());
}

/// The size of a BDAT command's chunk.
fn bdat_size(line: &str) -> Option<usize> {
    line.strip_prefix("BDAT ")?.split(' ').next()?.parse().ok()
}

/// Writes a reply, line by line.
fn trace_reply(reply: &smtp_mailer_core::smtp::reply::Reply) {
    let last = reply.lines.len().saturating_sub(1);
    for (i, line) in reply.lines.iter().enumerate() {
        let separator = if i == last { ' ' } else { '-' };
        match (&reply.enhanced, i) {
            (Some(code), 0) => eprintln!("S: {}{separator}{code} {line}", reply.code),
            _ => eprintln!("S: {}{separator}{line}", reply.code),
        }
    }
}

fn protocol(stage: Stage, detail: String) -> wit::Error {
    error::core_error(smtp_mailer_core::Error::Protocol { stage, detail })
}

fn timeout(stage: Stage, limit: Duration) -> wit::Error {
    let detail = match stage {
        Stage::Greeting => format!(
            "no greeting within {} ms; if the server expects TLS from the first byte (SMTPS), \
             use the implicit-tls security mode",
            limit.as_millis()
        ),
        _ => format!(
            "no complete reply to {} within {} ms",
            stage.describe(),
            limit.as_millis()
        ),
    };
    error::network(NetworkFailure::Timeout, error::stage(stage), detail)
}

fn io_error(e: io::Error, stage: Stage, limit: Duration, doing: &str) -> wit::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timeout(stage, limit),
        _ => error::network(
            NetworkFailure::Connection,
            error::stage(stage),
            format!("connection lost while {doing} ({}): {e}", stage.describe()),
        ),
    }
}
