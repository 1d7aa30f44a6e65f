//! RESP2, the Redis protocol, over a tokio stream: commands out, one reply
//! in, for the Redis trigger's subscription and the outbound Redis of the
//! components. Replies are bounded in size and depth.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The longest bulk string accepted: 512 MiB, Redis's own limit.
const MAX_BULK: usize = 512 << 20;

/// The most elements of one array, and the deepest nesting.
const MAX_ARRAY: usize = 1 << 20;
const MAX_DEPTH: usize = 8;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// `$-1` or `*-1`.
    Nil,
    /// `+OK` and other simple strings.
    Status(String),
    /// `-ERR ...`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` and its bytes.
    Bulk(Vec<u8>),
    /// `*n` and its elements.
    Array(Vec<Value>),
}

/// A command as RESP: an array of bulk strings.
pub(crate) fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Reads one reply.
///
/// Errors: the stream's, an end of stream (`UnexpectedEof`), or a reply
/// that is malformed or over the bounds (`InvalidData`).
pub(crate) async fn read<R: AsyncBufRead + Unpin + Send>(reader: &mut R) -> io::Result<Value> {
    read_at(reader, 0).await
}

async fn read_line<R: AsyncBufRead + Unpin + Send>(reader: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    // A line is a header: short. A longer one is not RESP.
    let n = (&mut *reader)
        .take(64 << 10)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "redis closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad("a reply line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| bad("a reply line that is not UTF-8"))
}

fn length(text: &str) -> io::Result<Option<usize>> {
    match text.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n >= 0 => Ok(Some(n as usize)),
        _ => Err(bad(format!("a bad length {text:?}"))),
    }
}

fn read_at<'a, R: AsyncBufRead + Unpin>(
    reader: &'a mut R,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Value>> + Send + 'a>>
where
    R: Send,
{
    Box::pin(async move {
        if depth > MAX_DEPTH {
            return Err(bad("a reply nested too deep"));
        }
        let line = read_line(reader).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(Value::Status(rest.to_string())),
            "-" => Ok(Value::Error(rest.to_string())),
            ":" => rest
                .parse()
                .map(Value::Int)
                .map_err(|_| bad(format!("a bad integer {rest:?}"))),
            "$" => match length(rest)? {
                None => Ok(Value::Nil),
                Some(n) if n > MAX_BULK => Err(bad("a bulk string over 512 MiB")),
                Some(n) => {
                    let mut data = vec![0; n + 2];
                    reader.read_exact(&mut data).await?;
                    if !data.ends_with(b"\r\n") {
                        return Err(bad("a bulk string without CRLF"));
                    }
                    data.truncate(n);
                    Ok(Value::Bulk(data))
                }
            },
            "*" => match length(rest)? {
                None => Ok(Value::Nil),
                Some(n) if n > MAX_ARRAY => Err(bad("an array too long")),
                Some(n) => {
                    let mut items = Vec::with_capacity(n.min(64));
                    for _ in 0..n {
                        items.push(read_at(reader, depth + 1).await?);
                    }
                    Ok(Value::Array(items))
                }
            },
            _ => Err(bad(format!("an unknown reply {line:?}"))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> io::Result<Value> {
        read(&mut tokio::io::BufReader::new(bytes)).await
    }

    #[tokio::test]
    async fn replies_of_every_kind() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Value::Status("OK".into()));
        assert_eq!(parse(b":-3\r\n").await.unwrap(), Value::Int(-3));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Value::Nil);
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n").await.unwrap(),
            Value::Bulk(b"a\r\nb".to_vec())
        );
        assert_eq!(
            parse(b"*2\r\n$1\r\nx\r\n*1\r\n:1\r\n").await.unwrap(),
            Value::Array(vec![
                Value::Bulk(b"x".to_vec()),
                Value::Array(vec![Value::Int(1)])
            ])
        );
        assert!(parse(b"$5\r\nab").await.is_err());
        assert!(parse(b"?\r\n").await.is_err());
        assert!(parse(b"").await.is_err());
        let deep = "*1\r\n".repeat(20) + ":1\r\n";
        assert!(parse(deep.as_bytes()).await.is_err());
        assert_eq!(command(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
