//! A TCP connection over wasi:sockets, used directly.
//!
//! The connect is decided by `finish-connect` alone: its streams are the
//! connection, its error code is the failure (a refusal is
//! `connection-refused`). The socket's pollable only says when to ask
//! again; nothing is concluded from it being ready, so a host that wakes
//! the pollable before or after it records the outcome (wasmtime, jco)
//! gives the same answer. (std's `TcpStream::connect_timeout`, through
//! wasi-libc's emulation, concluded "connected" from a `poll` that reports
//! a failed connect as merely writable, then failed the first read with
//! "not connected".)
//!
//! Reads and writes go through the connection's wasi:io streams, each
//! wait under the limit [`Timed`] sets.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use super::wait::{condition, Deadline};
use super::Timed;

/// Why a connect failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The host, the network or the server said no (`connection-refused`,
    /// `access-denied`, `remote-unreachable`...), or the host gave up
    /// (`timeout`).
    Failed(ErrorCode),
    /// The connect limit passed first.
    TimedOut,
}

/// An established TCP connection.
///
/// Fields drop in order: the pollables before their streams, the streams
/// before their socket (a host refuses to drop a resource whose children
/// live).
pub struct TcpStream {
    readable: Pollable,
    writable: Pollable,
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
    read_limit: Cell<Option<Duration>>,
    write_limit: Cell<Option<Duration>>,
}

impl TcpStream {
    /// Connects to `address` through `network` within `limit`.
    pub fn connect(
        network: &Network,
        address: SocketAddr,
        limit: Duration,
    ) -> Result<TcpStream, ConnectError> {
        let deadline = Deadline::after(Some(limit));
        let family = match address {
            SocketAddr::V4(_) => IpAddressFamily::Ipv4,
            SocketAddr::V6(_) => IpAddressFamily::Ipv6,
        };
        let socket = create_tcp_socket(family).map_err(ConnectError::Failed)?;
        socket
            .start_connect(network, wasi_address(address))
            .map_err(ConnectError::Failed)?;
        let pending = socket.subscribe();
        let (input, output) = loop {
            match socket.finish_connect() {
                Ok(streams) => break streams,
                Err(ErrorCode::WouldBlock) => deadline
                    .wait(&pending)
                    .map_err(|_| ConnectError::TimedOut)?,
                Err(code) => return Err(ConnectError::Failed(code)),
            }
        };
        drop(pending);
        Ok(TcpStream {
            readable: input.subscribe(),
            writable: output.subscribe(),
            input,
            output,
            _socket: socket,
            read_limit: Cell::new(None),
            write_limit: Cell::new(None),
        })
    }

    /// Waits, up to the write limit, until the output stream takes bytes;
    /// returns how many.
    fn write_permit(&self) -> io::Result<usize> {
        let mut deadline = None;
        loop {
            let permit = self.output.check_write().map_err(stream_error)?;
            if permit > 0 {
                return Ok(usize::try_from(permit).unwrap_or(usize::MAX));
            }
            deadline
                .get_or_insert_with(|| Deadline::after(self.write_limit.get()))
                .wait(&self.writable)
                .map_err(|_| timed_out())?;
        }
    }
}

impl Read for TcpStream {
    /// Reads what has arrived, waiting for the first bytes up to the read
    /// limit. The end of the stream reads as 0 bytes.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut deadline = None;
        loop {
            // A read may give 0 bytes before the end: nothing arrived yet.
            match self.input.read(buf.len() as u64) {
                Ok(bytes) if !bytes.is_empty() => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    return Ok(n);
                }
                Ok(_) => {}
                Err(StreamError::Closed) => return Ok(0),
                Err(e) => return Err(stream_error(e)),
            }
            deadline
                .get_or_insert_with(|| Deadline::after(self.read_limit.get()))
                .wait(&self.readable)
                .map_err(|_| timed_out())?;
        }
    }
}

impl Write for TcpStream {
    /// Writes as much of `buf` as the stream permits in one write, waiting
    /// up to the write limit for a permit. A flight under the permit (64
    /// KiB in wasmtime) leaves whole.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let permit = self.write_permit()?;
        let n = permit.min(buf.len());
        self.output.write(&buf[..n]).map_err(stream_error)?;
        Ok(n)
    }

    /// Asks the stream to send what was written. WASI lets a host hold
    /// written bytes until a flush, so every flight ends with one; it does
    /// not wait: the next write waits for its permit, and a read for the
    /// reply, each under its limit.
    fn flush(&mut self) -> io::Result<()> {
        self.output.flush().map_err(stream_error)
    }
}

impl Timed for TcpStream {
    fn set_read_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.read_limit.set(limit);
        Ok(())
    }

    fn set_write_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.write_limit.set(limit);
        Ok(())
    }
}

fn wasi_address(address: SocketAddr) -> IpSocketAddress {
    match address {
        SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: a.port(),
                address: (a0, a1, a2, a3),
            })
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            })
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

/// A failed stream operation. WASI 0.2 gives no portable error code for
/// it, only the host's description, which is kept.
fn stream_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed")
        }
        StreamError::LastOperationFailed(e) => io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("the connection failed ({})", e.to_debug_string()),
        ),
    }
}

/// The text of a failed connect: the condition, without a number.
impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Failed(code) => f.write_str(&condition(*code)),
            ConnectError::TimedOut => f.write_str("timed out"),
        }
    }
}
