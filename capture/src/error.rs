//! The crate's one error type.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a [`CaptureServer`](crate::CaptureServer) could not start.
///
/// Once running, the server reports per-message problems to the SMTP client
/// (as `4xx`/`5xx` replies), never to the embedder.
#[derive(Debug)]
#[non_exhaustive]
pub enum CaptureError {
    /// The listening socket could not be bound (address in use, no permission…).
    Bind {
        /// The address from [`CaptureOptions::listen`](crate::CaptureOptions::listen).
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// The message directory could not be created or read.
    Dir {
        /// The directory from [`CaptureOptions::dir`](crate::CaptureOptions::dir).
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Any other I/O failure while starting (spawning a thread, socket queries).
    Io {
        /// What the server was doing.
        context: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { addr, .. } => write!(f, "cannot listen on {addr}"),
            Self::Dir { path, .. } => {
                write!(f, "cannot use message directory {}", path.display())
            }
            Self::Io { context, .. } => write!(f, "capture server: {context}"),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } | Self::Dir { source, .. } | Self::Io { source, .. } => {
                Some(source)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_names_the_address_and_keeps_the_source() {
        let err = CaptureError::Bind {
            addr: "127.0.0.1:25".parse().expect("literal address"),
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        assert_eq!(err.to_string(), "cannot listen on 127.0.0.1:25");
        assert!(err.source().is_some());
    }
}
