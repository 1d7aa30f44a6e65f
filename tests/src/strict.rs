//! A strict SMTP server that enforces command synchronization the way Exim
//! does (`smtp_enforce_sync`): a command that arrives before the reply to
//! the one before, where the server did not allow it, is answered
//! `554 5.5.0 SMTP synchronization error` and the connection is dropped.
//!
//! Without PIPELINING ([`StrictOptions::pipelining`] off, the default)
//! every command must wait for the previous reply. With PIPELINING, only
//! the commands RFC 2920 3.1 allows inside a group (RSET, MAIL, RCPT) may
//! be followed by more input; EHLO, DATA, the end of the content, BDAT
//! LAST, QUIT and the others must end theirs. After each such command the
//! server looks for more input before it replies, waiting
//! [`EARLY_TALK_WINDOW`] for it, so that a command written in a second
//! write right behind the first (with TCP_NODELAY) is caught too; Exim
//! only looks at what has already arrived.
//!
//! It also refuses what a real server would: MAIL inside an open
//! transaction (`503 5.5.1 nested MAIL command`: a missing RSET), RCPT
//! before MAIL, DATA without a recipient; and it refuses on purpose, once
//! per server lifetime, a sender or recipient whose local part starts with
//! `once-` (451 to MAIL, 450 to RCPT), and always one that starts with
//! `refuse-` (550).
//!
//! With [`StrictOptions::idle_close`] it drops a connection that stays
//! silent, without a 421, as some servers do.
//!
//! Everything is recorded in a [`Seen`]: connections, synchronization
//! errors, nested MAILs, the commands of each connection, the number of
//! flights (reads that had to wait for the client), and the messages.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the server waits, after each command that must end a flight,
/// for early input before it replies.
pub const EARLY_TALK_WINDOW: Duration = Duration::from_millis(5);

/// What the server offers.
#[derive(Debug, Clone, Copy, Default)]
pub struct StrictOptions {
    /// Offer PIPELINING (RFC 2920 groups allowed).
    pub pipelining: bool,
    /// Offer CHUNKING (BDAT).
    pub chunking: bool,
    /// Close a connection without a word once the client has said nothing
    /// for this long (30 s when `None`), as a server that drops idle
    /// connections silently does.
    pub idle_close: Option<Duration>,
}

impl StrictOptions {
    fn idle(&self) -> Duration {
        self.idle_close.unwrap_or(Duration::from_secs(30))
    }
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The reverse path.
    pub mail_from: String,
    /// The accepted forward paths.
    pub rcpt_to: Vec<String>,
    /// The content, dot-stuffing undone.
    pub data: Vec<u8>,
    /// The connection it came over, counted from 1.
    pub connection: usize,
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Connections accepted.
    pub connections: usize,
    /// One line per synchronization error: the command and what came early.
    pub sync_errors: Vec<String>,
    /// MAIL commands that came inside an open transaction.
    pub nested_mail: usize,
    /// The command lines of each connection, in order (BDAT chunks and
    /// DATA contents left out).
    pub commands: Vec<Vec<String>>,
    /// The flights of each connection: reads that found no input waiting.
    pub flights: Vec<usize>,
    /// The messages accepted.
    pub messages: Vec<Stored>,
}

impl Seen {
    /// How many times `verb` (such as `RSET`) was said, on any connection.
    pub fn count(&self, verb: &str) -> usize {
        self.commands
            .iter()
            .flatten()
            .filter(|c| c.to_ascii_uppercase().starts_with(verb))
            .count()
    }
}

/// A strict server on 127.0.0.1, serving connections until dropped.
pub struct Strict {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Strict {
    /// Starts a server with `options` on a free port.
    pub fn start(options: StrictOptions) -> Strict {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("bound").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || accept_loop(listener, options, seen, stop))
        };
        Strict {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server saw so far.
    pub fn seen(&self) -> Seen {
        lock(&self.seen).clone()
    }
}

impl Drop for Strict {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept_loop(
    listener: TcpListener,
    options: StrictOptions,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    // The `once-` addresses refused so far, over the server's lifetime.
    let refused_once = Arc::new(Mutex::new(HashSet::new()));
    let mut connections = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let number = {
                    let mut seen = lock(&seen);
                    seen.connections += 1;
                    seen.commands.push(Vec::new());
                    seen.flights.push(0);
                    seen.connections
                };
                let seen = Arc::clone(&seen);
                let refused_once = Arc::clone(&refused_once);
                connections.push(std::thread::spawn(move || {
                    let mut connection = Connection {
                        reader: BufReader::new(stream.try_clone().expect("clone")),
                        stream,
                        options,
                        number,
                        seen,
                        refused_once,
                    };
                    let _ = connection.serve();
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    // Connections end when their client leaves, or at their read timeout.
    for connection in connections {
        let _ = connection.join();
    }
}

/// The transaction under way on a connection.
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    data: Vec<u8>,
}

struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    options: StrictOptions,
    number: usize,
    seen: Arc<Mutex<Seen>>,
    refused_once: Arc<Mutex<HashSet<String>>>,
}

/// The connection goes on, or ends after the reply.
enum Next {
    Go,
    End,
}

impl Connection {
    fn serve(&mut self) -> io::Result<()> {
        self.stream.set_read_timeout(Some(self.options.idle()))?;
        // A client that talks before the greeting is an early talker too.
        if !self.in_sync("the connection, before the greeting", true)? {
            return Ok(());
        }
        self.say("220 strict.test ESMTP\r\n")?;
        let mut tx = Transaction::default();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok(());
            }
            self.record(&line);
            match self.command(&line, &mut tx)? {
                Next::Go => {}
                Next::End => return Ok(()),
            }
        }
    }

    /// Handles one command line, with its content for DATA and BDAT.
    fn command(&mut self, line: &str, tx: &mut Transaction) -> io::Result<Next> {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split([' ', '\r']).next().unwrap_or_default();
        let ends_group = !matches!(verb, "RSET" | "MAIL" | "RCPT");
        if verb != "BDAT" && !self.in_sync(line, ends_group)? {
            return Ok(Next::End);
        }
        match verb {
            "EHLO" => {
                *tx = Transaction::default();
                let mut reply = String::from("250-strict.test\r\n");
                if self.options.pipelining {
                    reply.push_str("250-PIPELINING\r\n");
                }
                if self.options.chunking {
                    reply.push_str("250-CHUNKING\r\n");
                }
                reply.push_str("250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
                self.say(&reply)?;
            }
            "HELO" => {
                *tx = Transaction::default();
                self.say("250 strict.test\r\n")?;
            }
            "MAIL" => {
                if tx.mail_from.is_some() {
                    lock(&self.seen).nested_mail += 1;
                    self.say("503 5.5.1 nested MAIL command\r\n")?;
                    return Ok(Next::Go);
                }
                let from = path(line);
                match self.refusal(&from, "451 4.3.0") {
                    Some(reply) => self.say(&reply)?,
                    None => {
                        tx.mail_from = Some(from);
                        self.say("250 2.1.0 ok\r\n")?;
                    }
                }
            }
            "RCPT" => {
                if tx.mail_from.is_none() {
                    self.say("503 5.5.1 MAIL first\r\n")?;
                    return Ok(Next::Go);
                }
                let to = path(line);
                match self.refusal(&to, "450 4.2.0") {
                    Some(reply) => self.say(&reply)?,
                    None => {
                        tx.rcpt_to.push(to);
                        self.say("250 2.1.5 ok\r\n")?;
                    }
                }
            }
            "DATA" => {
                if tx.rcpt_to.is_empty() {
                    self.say("554 5.5.1 no valid recipients\r\n")?;
                    return Ok(Next::Go);
                }
                self.say("354 end with <CRLF>.<CRLF>\r\n")?;
                tx.data = self.read_data()?;
                if !self.in_sync("the end of the data", true)? {
                    return Ok(Next::End);
                }
                self.store(std::mem::take(tx));
                self.say("250 2.0.0 queued\r\n")?;
            }
            "BDAT" if self.options.chunking => return self.bdat(&upper, tx),
            "RSET" => {
                *tx = Transaction::default();
                self.say("250 2.0.0 ok\r\n")?;
            }
            "NOOP" => self.say("250 2.0.0 ok\r\n")?,
            "QUIT" => {
                self.say("221 2.0.0 bye\r\n")?;
                return Ok(Next::End);
            }
            _ => self.say("500 5.5.2 command not recognized\r\n")?,
        }
        Ok(Next::Go)
    }

    /// `BDAT n [LAST]` and its chunk. A chunk not LAST is a command that
    /// may be pipelined only with PIPELINING (RFC 3030 4.2).
    fn bdat(&mut self, upper: &str, tx: &mut Transaction) -> io::Result<Next> {
        let mut words = upper.split_ascii_whitespace().skip(1);
        let size: Option<usize> = words.next().and_then(|n| n.parse().ok());
        let last = words.next() == Some("LAST");
        let Some(size) = size else {
            self.say("501 5.5.4 BDAT needs a size\r\n")?;
            return Ok(Next::Go);
        };
        let mut chunk = vec![0; size];
        self.reader.read_exact(&mut chunk)?;
        let what = format!("BDAT {size}{}", if last { " LAST" } else { "" });
        if !self.in_sync(&what, last)? {
            return Ok(Next::End);
        }
        if tx.rcpt_to.is_empty() {
            self.say("554 5.5.1 no valid recipients\r\n")?;
            return Ok(Next::Go);
        }
        tx.data.extend_from_slice(&chunk);
        if last {
            self.store(std::mem::take(tx));
            self.say("250 2.0.0 queued\r\n")?;
        } else {
            self.say(&format!("250 2.0.0 {size} octets received\r\n"))?;
        }
        Ok(Next::Go)
    }

    /// The refusal planned for `address`, if any: `refuse-` always (550),
    /// `once-` the first time (`transient`).
    fn refusal(&self, address: &str, transient: &str) -> Option<String> {
        let local = address.split('@').next().unwrap_or_default();
        let local = local.to_ascii_lowercase();
        if local.starts_with("refuse-") {
            return Some(format!("550 5.1.1 <{address}>: refused\r\n"));
        }
        if local.starts_with("once-") {
            let mut refused = self.refused_once.lock().unwrap_or_else(|p| p.into_inner());
            if refused.insert(address.to_ascii_lowercase()) {
                return Some(format!("{transient} <{address}>: try again later\r\n"));
            }
        }
        None
    }

    /// Checks that nothing more came in after `what` when it must end the
    /// client's flight; on early input, says 554 and records the error.
    fn in_sync(&mut self, what: &str, ends_group: bool) -> io::Result<bool> {
        let sync_needed = ends_group || !self.options.pipelining;
        if !sync_needed || !self.input_waiting()? {
            return Ok(true);
        }
        let early = String::from_utf8_lossy(self.reader.buffer()).into_owned();
        lock(&self.seen).sync_errors.push(format!(
            "connection {}: {:?} then, before its reply: {early:?}",
            self.number,
            what.trim_end()
        ));
        self.say("554 5.5.0 SMTP synchronization error\r\n")?;
        Ok(false)
    }

    /// True when input is waiting, or arrives within the early-talk window.
    fn input_waiting(&mut self) -> io::Result<bool> {
        if !self.reader.buffer().is_empty() {
            return Ok(true);
        }
        self.stream.set_read_timeout(Some(EARLY_TALK_WINDOW))?;
        let mut byte = [0u8; 1];
        let waiting = match self.stream.peek(&mut byte) {
            Ok(n) => n > 0,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(e) => return Err(e),
        };
        self.stream.set_read_timeout(Some(self.options.idle()))?;
        if waiting {
            // Pull it into the buffer, to show it in the report.
            self.reader.fill_buf()?;
        }
        Ok(waiting)
    }

    /// One line, CRLF included; empty at the end. A read that finds
    /// nothing buffered counts as a new flight.
    fn read_line(&mut self) -> io::Result<String> {
        self.note_flight();
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// The content after 354 up to the `.` line, dot-stuffing undone.
    fn read_data(&mut self) -> io::Result<Vec<u8>> {
        self.note_flight();
        let mut data = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == b".\r\n" {
                return Ok(data);
            }
            data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
        }
    }

    /// Counts a flight when nothing the client sent is waiting in the
    /// buffer: the next read waits for the client's next write.
    fn note_flight(&self) {
        if self.reader.buffer().is_empty() {
            lock(&self.seen).flights[self.number - 1] += 1;
        }
    }

    fn record(&self, line: &str) {
        let mut seen = lock(&self.seen);
        seen.commands[self.number - 1].push(line.trim_end().to_string());
    }

    fn store(&self, tx: Transaction) {
        lock(&self.seen).messages.push(Stored {
            mail_from: tx.mail_from.unwrap_or_default(),
            rcpt_to: tx.rcpt_to,
            data: tx.data,
            connection: self.number,
        });
    }

    fn say(&mut self, reply: &str) -> io::Result<()> {
        self.stream.write_all(reply.as_bytes())
    }
}

/// The path of `MAIL FROM:<path> params` or `RCPT TO:<path>`.
fn path(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}
