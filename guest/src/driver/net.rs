//! TCP connections over wasi:sockets, through `std::net`.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{Limits, Timed};
use crate::convert::{self, NetworkFailure};
use crate::smtp_mailer_mailer_types as wit;

impl Timed for TcpStream {
    fn set_read_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(limit.map(at_least_one_ms))
    }

    fn set_write_limit(&self, limit: Option<Duration>) -> io::Result<()> {
        self.set_write_timeout(limit.map(at_least_one_ms))
    }
}

/// A zero timeout means "none" to std: the shortest real one stands in.
fn at_least_one_ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Resolves the server (or takes its connect address) and connects to the
/// first address that answers, within the connect limit.
pub fn connect(server: &wit::Server, limits: &Limits) -> Result<TcpStream, wit::Error> {
    let addresses = addresses(server)?;
    let mut last_error = None;
    for address in &addresses {
        match TcpStream::connect_timeout(address, limits.connect) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some((address, e)),
        }
    }
    let (address, e) = match last_error {
        Some(found) => found,
        None => {
            return Err(convert::network(
                NetworkFailure::Dns,
                wit::Stage::Connect,
                format!("{} has no address", server.host),
            ))
        }
    };
    let kind = match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetworkFailure::Timeout,
        _ => NetworkFailure::Connection,
    };
    let detail = match kind {
        NetworkFailure::Timeout => format!(
            "connecting to {address} took longer than {} ms",
            limits.connect.as_millis()
        ),
        _ => format!("cannot connect to {address}: {e}"),
    };
    Err(convert::network(kind, wit::Stage::Connect, detail))
}

fn addresses(server: &wit::Server) -> Result<Vec<SocketAddr>, wit::Error> {
    if let Some(ip) = &server.connect_address {
        let ip: IpAddr = ip.parse().map_err(|_| {
            convert::invalid(
                "server.connect-address",
                &format!("{ip:?} is not an IP address"),
            )
        })?;
        return Ok(vec![SocketAddr::new(ip, server.port)]);
    }
    if server.host.is_empty() {
        return Err(convert::invalid("server.host", "is empty"));
    }
    if let Ok(ip) = server.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, server.port)]);
    }
    (server.host.as_str(), server.port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| {
            convert::network(
                NetworkFailure::Dns,
                wit::Stage::Connect,
                format!("cannot resolve {}: {e}", server.host),
            )
        })
}
