//! Spin's outbound Redis (`fermyon:spin/redis@2.0.0`), the way Spin answers
//! it: a component may open a connection only to an address that a
//! `redis://` entry of its `allowed_outbound_hosts` names (anything else is
//! `invalid-address`); the host connects (host names resolve on the host);
//! `execute` flattens the reply's arrays and drops its nils and `OK`s, as
//! Spin does.

use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use wasmtime::component::{Resource, ResourceTable};

use crate::bindings::fermyon::spin2_0_0::redis::{
    Error, Host, HostConnection, RedisParameter, RedisResult,
};
use crate::resp::{self, Value};
use crate::ServeError;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis address: `redis://[user[:password]@]host[:port][/db]`.
#[derive(Clone, PartialEq, Eq)]
struct Address {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    db: Option<u32>,
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis://{}:{}", self.host, self.port)
    }
}

fn parse_address(url: &str) -> Option<Address> {
    let rest = url.strip_prefix("redis://")?;
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path),
        None => (rest, ""),
    };
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((credentials, host_port)) => (Some(credentials), host_port),
        None => (None, authority),
    };
    let (user, password) = match credentials.map(|c| c.split_once(':')) {
        None => (None, None),
        Some(None) => (credentials.map(String::from), None),
        Some(Some((user, password))) => (
            (!user.is_empty()).then(|| user.to_string()),
            Some(password.to_string()),
        ),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            (host, port.parse().ok()?)
        }
        _ => (host_port, 6379),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    let db = match path.trim_end_matches('/') {
        "" => None,
        n => Some(n.parse().ok()?),
    };
    Some(Address {
        host: host.to_ascii_lowercase(),
        port,
        user,
        password,
        db,
    })
}

/// The `redis://` entries of a component's `allowed_outbound_hosts`: empty
/// allows no Redis at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisAllowList {
    entries: Vec<(String, u16)>,
}

impl RedisAllowList {
    /// Reads `redis://host[:port]` entries (`*` as the host matches any).
    ///
    /// Errors: [`ServeError::Outbound`] for an entry that is not one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, ServeError> {
        let mut list = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            let address = parse_address(entry).ok_or_else(|| {
                ServeError::Outbound(format!(
                    "{entry:?}: expected redis://host[:port] (6379 by default)"
                ))
            })?;
            list.push((address.host, address.port));
        }
        Ok(RedisAllowList { entries: list })
    }

    fn allows(&self, address: &Address) -> bool {
        self.entries
            .iter()
            .any(|(host, port)| (host == "*" || *host == address.host) && *port == address.port)
    }
}

/// An open connection of a component.
pub struct RedisConnection {
    stream: BufReader<TcpStream>,
}

/// One store's view for `fermyon:spin/redis`.
pub(crate) struct RedisView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) allow: &'a RedisAllowList,
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

async fn connect(address: &Address) -> Result<RedisConnection, Error> {
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((address.host.as_str(), address.port)),
    )
    .await
    .map_err(|_| other("the connection timed out"))?
    .map_err(other)?;
    let _ = stream.set_nodelay(true);
    let mut conn = RedisConnection {
        stream: BufReader::new(stream),
    };
    if let Some(password) = &address.password {
        let mut auth: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = &address.user {
            auth.push(user.as_bytes());
        }
        auth.push(password.as_bytes());
        conn.call(&auth).await?;
    }
    if let Some(db) = address.db {
        conn.call(&[b"SELECT", db.to_string().as_bytes()]).await?;
    }
    Ok(conn)
}

impl RedisConnection {
    /// Sends one command and reads its reply; an error reply is an error.
    async fn call(&mut self, parts: &[&[u8]]) -> Result<Value, Error> {
        self.stream
            .get_mut()
            .write_all(&resp::command(parts))
            .await
            .map_err(other)?;
        match resp::read(&mut self.stream).await.map_err(other)? {
            Value::Error(e) => Err(Error::Other(e)),
            value => Ok(value),
        }
    }
}

/// Spin's answer to `execute`: arrays flattened, nils and `OK` dropped.
fn flatten(value: Value, out: &mut Vec<RedisResult>) {
    match value {
        Value::Nil => {}
        Value::Status(s) if s == "OK" => {}
        Value::Status(s) => out.push(RedisResult::Status(s)),
        Value::Error(e) => out.push(RedisResult::Status(e)),
        Value::Int(n) => out.push(RedisResult::Int64(n)),
        Value::Bulk(b) => out.push(RedisResult::Binary(b)),
        Value::Array(items) => items.into_iter().for_each(|v| flatten(v, out)),
    }
}

fn int(value: Value) -> Result<i64, Error> {
    match value {
        Value::Int(n) => Ok(n),
        _ => Err(Error::TypeError),
    }
}

fn count(value: Value) -> Result<u32, Error> {
    u32::try_from(int(value)?).map_err(|_| Error::TypeError)
}

impl RedisView<'_> {
    fn conn(
        &mut self,
        connection: &Resource<RedisConnection>,
    ) -> Result<&mut RedisConnection, Error> {
        self.table
            .get_mut(connection)
            .map_err(|_| other("could not find connection for resource"))
    }
}

impl Host for RedisView<'_> {}

impl HostConnection for RedisView<'_> {
    async fn open(&mut self, address: String) -> Result<Resource<RedisConnection>, Error> {
        let parsed = parse_address(&address).ok_or(Error::InvalidAddress)?;
        if !self.allow.allows(&parsed) {
            eprintln!("serve: outbound Redis to {parsed:?} is not in allowed_outbound_hosts");
            return Err(Error::InvalidAddress);
        }
        let conn = connect(&parsed).await?;
        self.table.push(conn).map_err(|_| Error::TooManyConnections)
    }

    async fn publish(
        &mut self,
        connection: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        let conn = self.conn(&connection)?;
        conn.call(&[b"PUBLISH", channel.as_bytes(), &payload])
            .await
            .map(drop)
    }

    async fn get(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        match self
            .conn(&connection)?
            .call(&[b"GET", key.as_bytes()])
            .await?
        {
            Value::Nil => Ok(None),
            Value::Bulk(b) => Ok(Some(b)),
            _ => Err(Error::TypeError),
        }
    }

    async fn set(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let conn = self.conn(&connection)?;
        conn.call(&[b"SET", key.as_bytes(), &value]).await.map(drop)
    }

    async fn incr(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<i64, Error> {
        let conn = self.conn(&connection)?;
        int(conn.call(&[b"INCRBY", key.as_bytes(), b"1"]).await?)
    }

    async fn del(
        &mut self,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> Result<u32, Error> {
        let mut parts: Vec<&[u8]> = vec![b"DEL"];
        parts.extend(keys.iter().map(|k| k.as_bytes()));
        count(self.conn(&connection)?.call(&parts).await?)
    }

    async fn sadd(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let mut parts: Vec<&[u8]> = vec![b"SADD", key.as_bytes()];
        parts.extend(values.iter().map(|v| v.as_bytes()));
        count(self.conn(&connection)?.call(&parts).await?)
    }

    async fn smembers(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<Vec<String>, Error> {
        match self
            .conn(&connection)?
            .call(&[b"SMEMBERS", key.as_bytes()])
            .await?
        {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Bulk(b) => String::from_utf8(b).map_err(|_| Error::TypeError),
                    _ => Err(Error::TypeError),
                })
                .collect(),
            _ => Err(Error::TypeError),
        }
    }

    async fn srem(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let mut parts: Vec<&[u8]> = vec![b"SREM", key.as_bytes()];
        parts.extend(values.iter().map(|v| v.as_bytes()));
        count(self.conn(&connection)?.call(&parts).await?)
    }

    async fn execute(
        &mut self,
        connection: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        let arguments: Vec<Vec<u8>> = arguments
            .into_iter()
            .map(|a| match a {
                RedisParameter::Int64(n) => n.to_string().into_bytes(),
                RedisParameter::Binary(b) => b,
            })
            .collect();
        let mut parts: Vec<&[u8]> = vec![command.as_bytes()];
        parts.extend(arguments.iter().map(Vec::as_slice));
        let value = self.conn(&connection)?.call(&parts).await?;
        let mut out = Vec::new();
        flatten(value, &mut out);
        Ok(out)
    }

    async fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_the_allow_list() {
        let a = parse_address("redis://user:pw@Cache.example:6380/2").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.db),
            ("cache.example", 6380, Some(2))
        );
        assert_eq!(a.password.as_deref(), Some("pw"));
        assert!(!format!("{a:?}").contains("pw"));
        let b = parse_address("redis://127.0.0.1").unwrap();
        assert_eq!(b.port, 6379);
        assert!(parse_address("rediss://x").is_none());
        assert!(parse_address("redis://x:port").is_none());

        let list = RedisAllowList::parse(&["redis://127.0.0.1:6379", "redis://*:7000"]).unwrap();
        assert!(list.allows(&b));
        assert!(list.allows(&parse_address("redis://anything:7000").unwrap()));
        assert!(!list.allows(&parse_address("redis://127.0.0.1:6380").unwrap()));
        assert!(!RedisAllowList::default().allows(&b));
        assert!(RedisAllowList::parse(&["tcp://127.0.0.1:6379"]).is_err());
    }

    #[test]
    fn execute_answers_as_spin_does() {
        let mut out = Vec::new();
        flatten(
            Value::Array(vec![
                Value::Bulk(b"a".to_vec()),
                Value::Nil,
                Value::Status("OK".into()),
                Value::Array(vec![Value::Int(2)]),
            ]),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], RedisResult::Binary(b) if b == b"a"));
        assert!(matches!(out[1], RedisResult::Int64(2)));
    }
}
