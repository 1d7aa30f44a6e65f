//! Spin's rule for raw TCP: a component may connect only to an address that
//! an `allowed_outbound_hosts` entry of the form `tcp://IP:port` or
//! `tcp://CIDR:port` names. A host name never matches (components have no
//! DNS), so entries that are not IP addresses are refused when read.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::ServeError;

/// One `allowed_outbound_hosts` entry: an IP network and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundRule {
    network: IpAddr,
    prefix: u8,
    port: u16,
}

impl OutboundRule {
    /// True when `address` is in the network and has the port.
    pub fn allows(&self, address: SocketAddr) -> bool {
        address.port() == self.port && in_network(address.ip(), self.network, self.prefix)
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

impl FromStr for OutboundRule {
    type Err = ServeError;

    /// Parses `tcp://IP:port`, `tcp://[IPv6]:port` or `tcp://CIDR:port`.
    fn from_str(entry: &str) -> Result<Self, ServeError> {
        let bad = |why: &str| ServeError::Outbound(format!("{entry:?}: {why}"));
        let rest = entry
            .strip_prefix("tcp://")
            .ok_or_else(|| bad("only tcp:// entries are supported (Spin's raw TCP rule)"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("needs a port, as in tcp://192.0.2.10:587"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port must be a number (no ranges or wildcards)"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let (ip, prefix) = match host.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (host, None),
        };
        let network: IpAddr = ip.parse().map_err(|_| {
            bad("must be an IP address or CIDR range: a host name never matches, since components have no DNS")
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad("the CIDR prefix length is out of range"))?,
        };
        Ok(OutboundRule {
            network,
            prefix,
            port,
        })
    }
}

impl fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.network {
            IpAddr::V4(ip) => write!(f, "tcp://{ip}/{}:{}", self.prefix, self.port),
            IpAddr::V6(ip) => write!(f, "tcp://[{ip}/{}]:{}", self.prefix, self.port),
        }
    }
}

/// The allowed outbound TCP destinations: empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<OutboundRule>,
}

impl AllowList {
    /// Parses every entry.
    ///
    /// Errors: [`ServeError::Outbound`] naming the first entry that is not
    /// `tcp://IP:port` or `tcp://CIDR:port`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, ServeError> {
        let rules = entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(AllowList { rules })
    }

    /// A list of these rules.
    pub fn from_rules(rules: Vec<OutboundRule>) -> Self {
        AllowList { rules }
    }

    /// True when some entry allows `address`.
    pub fn allows(&self, address: SocketAddr) -> bool {
        self.rules.iter().any(|r| r.allows(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_ranges_with_a_port() {
        let list = AllowList::parse(&[
            "tcp://192.0.2.10:587",
            "tcp://10.1.0.0/16:25",
            "tcp://[::1]:2525",
        ])
        .unwrap();
        assert!(list.allows(addr("192.0.2.10:587")));
        assert!(!list.allows(addr("192.0.2.10:25")));
        assert!(!list.allows(addr("192.0.2.11:587")));
        assert!(list.allows(addr("10.1.200.3:25")));
        assert!(!list.allows(addr("10.2.0.1:25")));
        assert!(list.allows(addr("[::1]:2525")));
        assert!(!AllowList::default().allows(addr("127.0.0.1:25")));
    }

    #[test]
    fn host_names_and_other_schemes_are_refused() {
        for entry in [
            "tcp://smtp.example.org:587",
            "https://192.0.2.1:443",
            "tcp://192.0.2.1",
            "tcp://192.0.2.1:*",
            "tcp://10.0.0.0/33:25",
        ] {
            assert!(entry.parse::<OutboundRule>().is_err(), "{entry}");
        }
        let e = "tcp://smtp.example.org:587"
            .parse::<OutboundRule>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("host name never matches"), "{e}");
    }
}
