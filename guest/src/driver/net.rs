//! Finding the server and connecting to it, over wasi:sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;
use wasip2::sockets::network::{ErrorCode, IpAddress, Network};

use super::tcp::{ConnectError, TcpStream};
use super::wait::{condition, Deadline};
use super::Limits;
use crate::error::{self, NetworkFailure};
use crate::smtp_mailer_mailer_types as wit;

/// Resolves the server (or takes its connect address) and connects to the
/// first address that answers, each within the connect limit. A refusal is
/// a connection error and a connect that outlives the limit a timeout,
/// both at the connect stage.
pub fn connect(server: &wit::Server, limits: &Limits) -> Result<TcpStream, wit::Error> {
    let network = instance_network();
    let addresses = addresses(&network, server, limits)?;
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(&network, address, limits.connect) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some((address, e)),
        }
    }
    let Some((address, e)) = last_error else {
        return Err(error::network(
            NetworkFailure::Dns,
            wit::Stage::Connect,
            format!("{} has no address", server.host),
        ));
    };
    let (kind, detail) = match e {
        ConnectError::TimedOut => (
            NetworkFailure::Timeout,
            format!(
                "connecting to {address} took longer than {} ms",
                limits.connect.as_millis()
            ),
        ),
        ConnectError::Failed(ErrorCode::Timeout) => (
            NetworkFailure::Timeout,
            format!("cannot connect to {address}: {e}"),
        ),
        ConnectError::Failed(ErrorCode::AccessDenied) => return Err(error::not_allowed(address)),
        ConnectError::Failed(_) => (
            NetworkFailure::Connection,
            format!("cannot connect to {address}: {e}"),
        ),
    };
    Err(error::network(kind, wit::Stage::Connect, detail))
}

fn addresses(
    network: &Network,
    server: &wit::Server,
    limits: &Limits,
) -> Result<Vec<SocketAddr>, wit::Error> {
    if let Some(ip) = &server.connect_address {
        let ip: IpAddr = ip.parse().map_err(|_| {
            error::invalid(
                "server.connect-address",
                &format!("{ip:?} is not an IP address"),
            )
        })?;
        return Ok(vec![SocketAddr::new(ip, server.port)]);
    }
    if server.host.is_empty() {
        return Err(error::invalid("server.host", "is empty"));
    }
    if let Ok(ip) = server.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, server.port)]);
    }
    resolve(network, &server.host, Deadline::after(Some(limits.connect)))
        .map(|ips| {
            ips.into_iter()
                .map(|ip| SocketAddr::new(ip, server.port))
                .collect()
        })
        .map_err(|detail| {
            error::network(
                NetworkFailure::Dns,
                wit::Stage::Connect,
                format!("cannot resolve {}: {detail}", server.host),
            )
        })
}

/// The addresses of `host` by wasi:sockets/ip-name-lookup, before the
/// deadline.
fn resolve(network: &Network, host: &str, deadline: Deadline) -> Result<Vec<IpAddr>, String> {
    let stream = resolve_addresses(network, host).map_err(condition)?;
    let pending = stream.subscribe();
    let mut found = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(address)) => found.push(ip(address)),
            Ok(None) => return Ok(found),
            Err(ErrorCode::WouldBlock) => deadline
                .wait(&pending)
                .map_err(|_| "no answer within the connect limit".to_string())?,
            Err(code) => return Err(condition(code)),
        }
    }
}

fn ip(address: IpAddress) -> IpAddr {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}
