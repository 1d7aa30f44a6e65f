//! Loopback ports for connects that fail: one where nothing listens (the
//! kernel refuses), and one that drops every SYN (the connect is neither
//! accepted nor refused, so only a time limit ends it).
//!
//! The SYN-dropping port needs no privilege, namespace or firewall: it is a
//! listener with a backlog of 0 that never accepts, whose accept queue one
//! connection fills. Linux drops a SYN that arrives at a full accept queue
//! (the client is meant to retry later), so every further connect waits.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// A port of 127.0.0.1 where nothing listens (it was free a moment ago).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind a port on 127.0.0.1: {e}"));
    listener.local_addr().expect("a bound address").port()
}

/// A port of 127.0.0.1 that drops every SYN, while it lives.
#[derive(Debug)]
pub struct SynDroppingPort {
    listener: TcpListener,
    /// The connections that fill the accept queue.
    _queued: Vec<TcpStream>,
}

impl SynDroppingPort {
    /// Binds the listener and fills its queue; panics, saying why, when a
    /// probe connect is still answered after that (a kernel that answers
    /// SYNs at a full queue, such as with SYN cookies forced).
    pub fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a port on 127.0.0.1: {e}"));
        // A second listen(2) sets the backlog of a listening socket.
        // SAFETY: listen(2) on a socket this function owns.
        let status = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(
            status,
            0,
            "listen(fd, 0) failed: {}",
            std::io::Error::last_os_error()
        );
        let address = listener.local_addr().expect("a bound address");
        let mut queued = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return SynDroppingPort {
                        listener,
                        _queued: queued,
                    }
                }
                Err(e) => panic!("a connect to fill the queue of {address} failed: {e}"),
            }
        }
        panic!(
            "{address} still answers SYNs after {} connects fill its accept queue: this \
             kernel does not drop SYNs at a full queue, so no connect timeout can be arranged",
            queued.len()
        )
    }

    /// Its address.
    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound address")
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.address().port()
    }
}
