//! The resolver every check uses: hickory-resolver (through mail-auth),
//! asking one configured name server (or the system's), with a bounded time
//! per query, and lookups that tell "no such record" from "no answer".

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_auth::hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ProtocolConfig, ResolveHosts,
    ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::net::NetError;
use mail_auth::hickory_resolver::proto::rr::{Name, RData};
use mail_auth::hickory_resolver::system_conf::read_system_conf;
use mail_auth::MessageAuthenticator;

/// Why a lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name server answered: the name or the record type does not
    /// exist (NXDOMAIN or no data).
    NotFound,
    /// No usable answer: a time-out, SERVFAIL, a refused query. Nothing is
    /// known either way.
    Failed(String),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::NotFound => f.write_str("no such record"),
            LookupError::Failed(why) => f.write_str(why),
        }
    }
}

/// The resolver, and the name of the server it asks (for messages).
#[derive(Clone)]
pub struct Dns {
    authenticator: MessageAuthenticator,
    server: String,
    timeout: Duration,
}

impl Dns {
    /// Asks `server` (UDP, then TCP for truncated answers), or the system's
    /// name servers when `None`, waiting at most `timeout` per query, once.
    /// `/etc/hosts` is not read: what receivers see is the DNS.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Dns, String> {
        let mut opts = ResolverOpts::default();
        let (config, shown) = match server {
            Some(address) => {
                let mut udp = ConnectionConfig::new(ProtocolConfig::Udp);
                udp.port = address.port();
                let mut tcp = ConnectionConfig::new(ProtocolConfig::Tcp);
                tcp.port = address.port();
                let name_server = NameServerConfig::new(address.ip(), true, vec![udp, tcp]);
                (
                    ResolverConfig::from_name_servers(vec![name_server]),
                    address.to_string(),
                )
            }
            None => {
                let (config, system) = read_system_conf()
                    .map_err(|e| format!("cannot read the system's resolver settings: {e}"))?;
                opts = system;
                (config, "the system's name servers".to_string())
            }
        };
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let authenticator = MessageAuthenticator::new(config, opts)
            .map_err(|e| format!("cannot set up the resolver: {e}"))?;
        Ok(Dns {
            authenticator,
            server: shown,
            timeout,
        })
    }

    /// mail-auth's evaluator over this resolver.
    pub fn authenticator(&self) -> &MessageAuthenticator {
        &self.authenticator
    }

    /// The time one query may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Every TXT record at `name`, each one's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let lookup = self
            .authenticator
            .resolver()
            .txt_lookup(fqdn(name)?)
            .await
            .map_err(|e| self.failure("TXT", name, e))?;
        let records: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(LookupError::NotFound);
        }
        Ok(records)
    }

    /// The MX records at `name`: preference and exchange (without the final
    /// dot), by preference.
    pub async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, LookupError> {
        let lookup = self
            .authenticator
            .resolver()
            .mx_lookup(fqdn(name)?)
            .await
            .map_err(|e| self.failure("MX", name, e))?;
        let mut records: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, host_name(&mx.exchange.to_ascii()))),
                _ => None,
            })
            .collect();
        records.sort();
        if records.is_empty() {
            return Err(LookupError::NotFound);
        }
        Ok(records)
    }

    /// The PTR names of `ip` (without the final dot).
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, LookupError> {
        let lookup = self
            .authenticator
            .resolver()
            .reverse_lookup(ip)
            .await
            .map_err(|e| self.failure("PTR", &reverse_name(ip), e))?;
        let names: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(ptr) => Some(host_name(&ptr.to_ascii())),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(LookupError::NotFound);
        }
        Ok(names)
    }

    /// The A and AAAA addresses of `name`.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let lookup = self
            .authenticator
            .resolver()
            .lookup_ip(fqdn(name)?)
            .await
            .map_err(|e| self.failure("A/AAAA", name, e))?;
        let addresses: Vec<IpAddr> = lookup.iter().collect();
        if addresses.is_empty() {
            return Err(LookupError::NotFound);
        }
        Ok(addresses)
    }

    fn failure(&self, kind: &str, name: &str, e: NetError) -> LookupError {
        if e.is_no_records_found() {
            return LookupError::NotFound;
        }
        LookupError::Failed(format!(
            "the {kind} query for {name} got no answer from {} within {} ms ({e})",
            self.server,
            self.timeout.as_millis()
        ))
    }
}

/// `name` as an absolute DNS name, so that no search domain is tried.
fn fqdn(name: &str) -> Result<Name, LookupError> {
    let absolute = format!("{}.", name.trim_end_matches('.'));
    Name::from_str_relaxed(absolute.as_str())
        .map_err(|e| LookupError::Failed(format!("{name:?} is not a DNS name: {e}")))
}

/// A host name without its final dot, lower-cased.
fn host_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The reverse-DNS name of `ip`: `4.3.2.1.in-addr.arpa` or the nibbles of
/// an IPv6 address under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = Vec::with_capacity(34);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push("ip6.arpa".into());
            labels.join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }
}
