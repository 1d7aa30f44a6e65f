//! lettre 0.11 over one reused connection, with TCP_NODELAY forced.
//!
//! lettre never sets TCP_NODELAY and writes the content and the final
//! `.` in two writes, so each message stalls ~40 ms on Nagle and delayed
//! ACK (about 22 messages/s). Its `SmtpConnection` does not expose the
//! socket, so the benchmark finds the descriptor that connecting added to
//! this process and sets the option on it, before the first message.

use std::collections::BTreeSet;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::time::Duration;

use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::extension::ClientId;

use crate::workload;

pub struct Session {
    connection: SmtpConnection,
}

impl Session {
    /// Connects and says EHLO, then sets TCP_NODELAY on the new socket.
    pub fn open(address: SocketAddr) -> io::Result<Session> {
        let before = socket_fds()?;
        let connection = SmtpConnection::connect(
            address,
            Some(Duration::from_secs(60)),
            &ClientId::Domain("bench.example".into()),
            None,
            None,
        )
        .map_err(io::Error::other)?;
        let added: Vec<RawFd> = socket_fds()?.difference(&before).copied().collect();
        let [fd] = added[..] else {
            return Err(io::Error::other(format!(
                "cannot tell lettre's socket: {} new sockets",
                added.len()
            )));
        };
        // SAFETY: `fd` is the socket lettre's connection owns and keeps
        // open; it is borrowed for one setsockopt and handed back with
        // `into_raw_fd`, so it is never closed here.
        let stream = unsafe { TcpStream::from_raw_fd(fd) };
        let set = stream.set_nodelay(true);
        let _ = stream.into_raw_fd();
        set?;
        Ok(Session { connection })
    }

    /// Builds the message with lettre's builder and sends it, as
    /// `SmtpTransport::send` does (without its pool's checks).
    pub fn send_message(&mut self) -> io::Result<()> {
        let message = workload::lettre_message();
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        self.connection
            .send(&envelope, &bytes)
            .map(drop)
            .map_err(io::Error::other)
    }

    pub fn quit(mut self) -> io::Result<()> {
        self.connection.quit().map(drop).map_err(io::Error::other)
    }
}

/// The descriptors of this process that are sockets.
fn socket_fds() -> io::Result<BTreeSet<RawFd>> {
    let mut fds = BTreeSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.to_string_lossy().starts_with("socket:") {
            if let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                fds.insert(fd);
            }
        }
    }
    Ok(fds)
}
