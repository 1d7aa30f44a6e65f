//! The connection's byte stream: plain TCP, or TLS over it after STARTTLS
//! or from the first byte.

use std::io::{self, Read, Write};
use std::time::Duration;

use super::tcp::TcpStream;
use super::tls::TlsStream;
use super::Timed;

/// A plain or TLS stream.
pub enum Stream {
    /// TCP, in clear.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
    /// Given up after a failed upgrade.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Closed => Err(closed()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Closed => Err(closed()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Closed => Err(closed()),
        }
    }
}

impl Timed for Stream {
    fn set_read_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.set_read_limit(limit),
            Stream::Tls(s) => s.set_read_limit(limit),
            Stream::Closed => Err(closed()),
        }
    }

    fn set_write_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.set_write_limit(limit),
            Stream::Tls(s) => s.set_write_limit(limit),
            Stream::Closed => Err(closed()),
        }
    }
}
