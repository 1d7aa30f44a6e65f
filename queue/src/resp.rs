//! A small synchronous RESP2 client: commands out, replies in, pipelined.
//!
//! Just what the Redis backend needs (a few stream, hash, set and script
//! commands). The `redis` crate would bring a large dependency tree for
//! that; this keeps the build small and the password's handling in view.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::QueueError;

/// The longest bulk string or array accepted from the server.
const MAX_LEN: usize = 512 << 20;
/// How long to wait for a reply to a command that does not block.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A reply, with `-ERR` lines kept as values (inside a pipeline or an
/// `EXEC`, one command's error does not end the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Status(String),
    Error(String),
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply as a result: an error reply becomes `QueueError::RedisCommand`.
    pub(crate) fn ok(self, command: &str) -> Result<Reply, QueueError> {
        match self {
            Reply::Error(detail) => Err(QueueError::RedisCommand {
                command: command.to_string(),
                detail,
            }),
            other => Ok(other),
        }
    }

    pub(crate) fn int(self, what: &str) -> Result<i64, QueueError> {
        match self {
            Reply::Int(n) => Ok(n),
            other => Err(unexpected(what, &other)),
        }
    }

    pub(crate) fn bytes(self, what: &str) -> Result<Vec<u8>, QueueError> {
        match self {
            Reply::Bulk(b) => Ok(b),
            Reply::Status(s) => Ok(s.into_bytes()),
            other => Err(unexpected(what, &other)),
        }
    }

    pub(crate) fn string(self, what: &str) -> Result<String, QueueError> {
        String::from_utf8(self.bytes(what)?)
            .map_err(|_| QueueError::Corrupt(format!("{what}: not UTF-8")))
    }

    /// An array; `Nil` (a null array) is an empty one.
    pub(crate) fn array(self, what: &str) -> Result<Vec<Reply>, QueueError> {
        match self {
            Reply::Array(a) => Ok(a),
            Reply::Nil => Ok(Vec::new()),
            other => Err(unexpected(what, &other)),
        }
    }
}

fn unexpected(what: &str, reply: &Reply) -> QueueError {
    let kind = match reply {
        Reply::Nil => "nil".to_string(),
        Reply::Int(n) => format!("integer {n}"),
        Reply::Bulk(_) => "a bulk string".to_string(),
        Reply::Status(s) => format!("+{s}"),
        Reply::Error(e) => format!("-{e}"),
        Reply::Array(a) => format!("an array of {}", a.len()),
    };
    QueueError::Corrupt(format!("{what}: unexpected reply {kind}"))
}

/// A command and its arguments.
#[derive(Clone)]
pub(crate) struct Cmd {
    args: Vec<Vec<u8>>,
}

impl Cmd {
    pub(crate) fn new(name: &str) -> Self {
        Cmd {
            args: vec![name.as_bytes().to_vec()],
        }
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<[u8]>) -> Self {
        self.args.push(arg.as_ref().to_vec());
        self
    }

    pub(crate) fn num(self, n: impl std::fmt::Display) -> Self {
        self.arg(n.to_string())
    }

    pub(crate) fn name(&self) -> String {
        String::from_utf8_lossy(&self.args[0]).into_owned()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("*{}\r\n", self.args.len()).as_bytes());
        for a in &self.args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// One connection to a server.
pub(crate) struct Conn {
    stream: BufReader<TcpStream>,
    server: String,
}

impl Conn {
    /// Connects to `host:port` (`server`, used in errors).
    pub(crate) fn connect(host: &str, port: u16, server: &str) -> Result<Conn, QueueError> {
        let fail = |detail: String| QueueError::RedisConnection {
            server: server.to_string(),
            detail,
        };
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve: {e}")))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    stream
                        .set_write_timeout(Some(REPLY_TIMEOUT))
                        .map_err(|e| fail(e.to_string()))?;
                    return Ok(Conn {
                        stream: BufReader::new(stream),
                        server: server.to_string(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(fail(match last {
            Some(e) => format!("cannot connect: {e}"),
            None => "no address".to_string(),
        }))
    }

    fn broken(&self, detail: impl std::fmt::Display) -> QueueError {
        QueueError::RedisConnection {
            server: self.server.clone(),
            detail: detail.to_string(),
        }
    }

    /// Sends `cmds` at once and reads one reply each, waiting at most
    /// `timeout` for each. Error replies are returned as `Reply::Error`.
    pub(crate) fn pipeline(
        &mut self,
        cmds: &[Cmd],
        timeout: Duration,
    ) -> Result<Vec<Reply>, QueueError> {
        let mut out = Vec::new();
        for c in cmds {
            c.encode(&mut out);
        }
        self.stream
            .get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(|e| self.broken(e))?;
        self.stream
            .get_mut()
            .write_all(&out)
            .map_err(|e| self.broken(format!("write: {e}")))?;
        cmds.iter().map(|_| self.read()).collect()
    }

    /// Sends one command; an error reply is an `Err`.
    pub(crate) fn call(&mut self, cmd: Cmd) -> Result<Reply, QueueError> {
        self.call_timeout(cmd, REPLY_TIMEOUT)
    }

    /// Like `call`, waiting at most `timeout` for the reply.
    pub(crate) fn call_timeout(
        &mut self,
        cmd: Cmd,
        timeout: Duration,
    ) -> Result<Reply, QueueError> {
        let name = cmd.name();
        let reply = self
            .pipeline(std::slice::from_ref(&cmd), timeout)?
            .pop()
            .ok_or_else(|| self.broken("no reply"))?;
        reply.ok(&name)
    }

    fn line(&mut self) -> Result<String, QueueError> {
        let mut line = Vec::new();
        (&mut self.stream)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .map_err(|e| self.broken(format!("read: {e}")))?;
        if !line.ends_with(b"\r\n") {
            return Err(self.broken("connection closed or reply line too long"));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| self.broken("reply line is not UTF-8"))
    }

    fn read(&mut self) -> Result<Reply, QueueError> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let len = |s: &str| -> Result<Option<usize>, QueueError> {
            let n: i64 = s
                .parse()
                .map_err(|_| self.broken(format!("bad length {s:?}")))?;
            match usize::try_from(n) {
                Ok(n) if n <= MAX_LEN => Ok(Some(n)),
                Ok(_) => Err(self.broken(format!("length {n} too large"))),
                Err(_) => Ok(None),
            }
        };
        match kind {
            "+" => Ok(Reply::Status(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => rest
                .parse()
                .map(Reply::Int)
                .map_err(|_| self.broken(format!("bad integer {rest:?}"))),
            "$" => match len(rest)? {
                None => Ok(Reply::Nil),
                Some(n) => {
                    let mut data = vec![0; n + 2];
                    self.stream
                        .read_exact(&mut data)
                        .map_err(|e| self.broken(format!("read: {e}")))?;
                    if !data.ends_with(b"\r\n") {
                        return Err(self.broken("bulk string without CRLF"));
                    }
                    data.truncate(n);
                    Ok(Reply::Bulk(data))
                }
            },
            "*" => match len(rest)? {
                None => Ok(Reply::Nil),
                Some(n) => {
                    let mut items = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        items.push(self.read()?);
                    }
                    Ok(Reply::Array(items))
                }
            },
            _ => Err(self.broken(format!("unknown reply type {kind:?}"))),
        }
    }
}
