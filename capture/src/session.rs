//! The server side of one SMTP session as a state machine without I/O:
//! bytes in ([`Session::feed`]), reply bytes out ([`Session::take_output`]),
//! finished messages handed to a callback. The connection driver owns the
//! socket and the clock.

use crate::command::{self, Command};
use crate::data::{DataEnd, DataReader};
use crate::reply::Reply;

/// Longest command line accepted, in bytes without the LF. RFC 5321 asks
/// for 512; extensions and long addresses need more.
const MAX_COMMAND_LINE: usize = 4096;
/// Most recipients per message (RFC 5321 section 4.5.3.1.8 asks for 100).
const MAX_RECIPIENTS: usize = 1000;
/// Protocol errors tolerated before the connection is closed.
const MAX_ERRORS: u32 = 20;

/// A complete message handed to the deliver callback of [`Session::feed`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Transaction {
    /// The reverse path; empty for `<>`.
    pub(crate) mail_from: String,
    /// The accepted forward paths.
    pub(crate) rcpt_to: Vec<String>,
    /// The unstuffed content without the final `.CRLF`.
    pub(crate) data: Vec<u8>,
}

/// The envelope being built between `MAIL` and the end of the data.
#[derive(Debug)]
struct Envelope {
    mail_from: String,
    smtputf8: bool,
    rcpt_to: Vec<String>,
}

/// One SMTP session, server side.
#[derive(Debug)]
pub(crate) struct Session {
    hostname: String,
    max_size: usize,
    out: Vec<u8>,
    line: Vec<u8>,
    discarding_line: bool,
    greeted: bool,
    envelope: Option<Envelope>,
    data: Option<DataReader>,
    errors: u32,
    closed: bool,
}

impl Session {
    /// A new session; the greeting is already queued as output.
    pub(crate) fn new(hostname: &str, max_size: usize) -> Self {
        let mut session = Self {
            hostname: hostname.to_owned(),
            max_size,
            out: Vec::new(),
            line: Vec::new(),
            discarding_line: false,
            greeted: false,
            envelope: None,
            data: None,
            errors: 0,
            closed: false,
        };
        session.reply(220, "", format!("{hostname} ESMTP smtp-mailer capture"));
        session
    }

    /// Processes all of `input` (or up to the point the session closes),
    /// queueing one reply per command. Each complete message goes to
    /// `deliver`, which returns the queue id, or `None` if it could not keep
    /// the message (the client then gets a `451`).
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        deliver: &mut dyn FnMut(Transaction) -> Option<u64>,
    ) {
        while !input.is_empty() && !self.closed {
            if let Some(reader) = &mut self.data {
                match reader.feed(input) {
                    DataEnd::NeedMore => return,
                    DataEnd::Complete(used) => {
                        input = input.get(used..).unwrap_or_default();
                        self.end_data(deliver);
                    }
                }
                continue;
            }
            match input.iter().position(|&b| b == b'\n') {
                None => {
                    self.push_line(input);
                    return;
                }
                Some(lf) => {
                    let (head, tail) = input.split_at(lf);
                    self.push_line(head);
                    input = tail.get(1..).unwrap_or_default();
                    self.end_line();
                }
            }
        }
    }

    /// The connection was idle too long: queue `421` and close.
    pub(crate) fn timed_out(&mut self) {
        let text = format!("{} Error: timeout exceeded", self.hostname);
        self.close_with(421, "4.4.2", text);
    }

    /// The server is stopping: queue `421` and close.
    pub(crate) fn shutting_down(&mut self) {
        let text = format!("{} Service shutting down", self.hostname);
        self.close_with(421, "4.3.2", text);
    }

    /// Whether the session is over; the driver sends the output and closes.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Takes the reply bytes queued so far.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn push_line(&mut self, bytes: &[u8]) {
        if self.discarding_line {
            return;
        }
        if self.line.len() + bytes.len() > MAX_COMMAND_LINE {
            self.discarding_line = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.discarding_line) {
            self.error(500, "5.5.2", "Error: line too long");
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        match std::str::from_utf8(&line) {
            Ok(text) => self.command(text),
            Err(_) => self.error(500, "5.5.2", "Error: invalid UTF-8 in command"),
        }
    }

    fn command(&mut self, line: &str) {
        let command = match command::parse(line) {
            Ok(command) => command,
            Err(reply) => return self.error_reply(reply),
        };
        match command {
            Command::Ehlo(client) => {
                self.greet();
                let lines = vec![
                    format!("{} greets {client}", self.hostname),
                    "PIPELINING".to_owned(),
                    format!("SIZE {}", self.max_size),
                    "8BITMIME".to_owned(),
                    "SMTPUTF8".to_owned(),
                    "ENHANCEDSTATUSCODES".to_owned(),
                ];
                self.send(Reply::lines(250, lines));
            }
            Command::Helo(_) => {
                self.greet();
                self.reply(250, "", self.hostname.clone());
            }
            Command::Mail {
                path,
                size,
                smtputf8,
            } => self.mail(path, size, smtputf8),
            Command::Rcpt(path) => self.rcpt(path),
            Command::Data => self.start_data(),
            Command::Rset => {
                self.envelope = None;
                self.reply(250, "2.0.0", "Ok");
            }
            Command::Noop => self.reply(250, "2.0.0", "Ok"),
            Command::Quit => self.close_with(221, "2.0.0", "Bye"),
            Command::Vrfy => self.reply(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::NotImplemented => self.error(502, "5.5.1", "Error: command not implemented"),
            Command::Http => {
                let text = format!("{} Error: this is an SMTP server", self.hostname);
                self.close_with(421, "4.7.0", text);
            }
            Command::Unknown => self.error(500, "5.5.1", "Error: command not recognized"),
        }
    }

    fn greet(&mut self) {
        self.greeted = true;
        self.envelope = None;
    }

    fn mail(&mut self, path: &str, size: Option<u64>, smtputf8: bool) {
        if !self.greeted {
            return self.error(503, "5.5.1", "Error: send HELO/EHLO first");
        }
        if self.envelope.is_some() {
            return self.error(503, "5.5.1", "Error: nested MAIL command");
        }
        if size.is_some_and(|n| n > self.max_size as u64) {
            return self.reply(552, "5.3.4", "Error: message size exceeds fixed limit");
        }
        if !smtputf8 && !path.is_ascii() {
            return self.reply(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8");
        }
        self.envelope = Some(Envelope {
            mail_from: path.to_owned(),
            smtputf8,
            rcpt_to: Vec::new(),
        });
        self.reply(250, "2.1.0", "Ok");
    }

    fn rcpt(&mut self, path: &str) {
        let Some(envelope) = &mut self.envelope else {
            return self.error(503, "5.5.1", "Error: need MAIL command");
        };
        if envelope.rcpt_to.len() >= MAX_RECIPIENTS {
            return self.reply(452, "4.5.3", "Error: too many recipients");
        }
        if !envelope.smtputf8 && !path.is_ascii() {
            return self.reply(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8");
        }
        envelope.rcpt_to.push(path.to_owned());
        self.reply(250, "2.1.5", "Ok");
    }

    fn start_data(&mut self) {
        match &self.envelope {
            None => self.error(503, "5.5.1", "Error: need MAIL command"),
            Some(envelope) if envelope.rcpt_to.is_empty() => {
                self.error(503, "5.5.1", "Error: need RCPT command")
            }
            Some(_) => {
                self.data = Some(DataReader::new(self.max_size));
                self.reply(354, "", "End data with <CR><LF>.<CR><LF>");
            }
        }
    }

    fn end_data(&mut self, deliver: &mut dyn FnMut(Transaction) -> Option<u64>) {
        let (Some(reader), Some(envelope)) = (self.data.take(), self.envelope.take()) else {
            return;
        };
        if reader.too_large() {
            return self.reply(552, "5.3.4", "Error: message too big for system");
        }
        let transaction = Transaction {
            mail_from: envelope.mail_from,
            rcpt_to: envelope.rcpt_to,
            data: reader.into_content(),
        };
        match deliver(transaction) {
            Some(id) => self.reply(250, "2.0.0", format!("Ok: queued as {id}")),
            None => self.reply(451, "4.3.0", "Error: could not store the message"),
        }
    }

    /// A protocol error: reply, and close after too many.
    fn error(&mut self, code: u16, status: &'static str, text: &str) {
        self.error_reply(Reply::new(code, status, text));
    }

    fn error_reply(&mut self, reply: Reply) {
        self.send(reply);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            let text = format!("{} Error: too many errors", self.hostname);
            self.close_with(421, "4.7.0", text);
        }
    }

    fn close_with(&mut self, code: u16, status: &'static str, text: impl Into<String>) {
        self.reply(code, status, text);
        self.closed = true;
    }

    fn reply(&mut self, code: u16, status: &'static str, text: impl Into<String>) {
        self.send(Reply::new(code, status, text));
    }

    fn send(&mut self, reply: Reply) {
        reply.write_to(&mut self.out);
    }
}

#[cfg(test)]
mod tests;
