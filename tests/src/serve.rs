//! `smtp-mailer serve` as a process, and a small HTTP/1.1 client to talk to
//! it (no client library: each request is one connection, `Connection:
//! close`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::cli_binary;

/// The API key the tests configure.
pub const API_KEY: &str = "test-key-0123456789";

/// A running `smtp-mailer serve`; killed on drop.
pub struct ServeProcess {
    child: Child,
    /// Where it listens; none for an app with no HTTP trigger.
    address: Option<SocketAddr>,
}

/// A file of the repository, such as `spin.toml`.
pub fn repository_file(name: &str) -> std::path::PathBuf {
    crate::servers::workspace_root().join(name)
}

impl ServeProcess {
    /// Starts `smtp-mailer serve` on a free loopback port with `allow` as
    /// its allowed outbound hosts and `variables` as SPIN_VARIABLE_<NAME>
    /// (plus `api_key` = [`API_KEY`] unless given), and waits until it
    /// listens.
    pub fn start(allow: &[String], variables: &[(&str, &str)]) -> Self {
        Self::start_with(allow, variables, &[])
    }

    /// [`start`](Self::start), with more options of `serve` (such as
    /// `--redis-address`).
    pub fn start_with(allow: &[String], variables: &[(&str, &str)], options: &[&str]) -> Self {
        let mut args: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        for entry in allow {
            args.extend(["--allow-outbound".to_string(), entry.clone()]);
        }
        let mut variables = variables.to_vec();
        if !variables.iter().any(|(name, _)| *name == "api_key") {
            variables.push(("api_key", API_KEY));
        }
        Self::spawn(&args, &variables)
    }

    /// `smtp-mailer serve --app MANIFEST` with `variables` as
    /// SPIN_VARIABLE_<NAME> (nothing added) and more `options`, once it
    /// listens (or, for an app without HTTP trigger, once it runs).
    pub fn start_app(
        manifest: &std::path::Path,
        variables: &[(&str, &str)],
        options: &[&str],
    ) -> Self {
        let mut args = vec!["--app".to_string(), manifest.display().to_string()];
        args.extend(options.iter().map(|o| o.to_string()));
        Self::spawn(&args, variables)
    }

    fn spawn(args: &[String], variables: &[(&str, &str)]) -> Self {
        let mut command = Command::new(cli_binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args);
        // Only the variables the test gives: none of the runner's own.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SPIN_VARIABLE_")) {
            command.env_remove(name);
        }
        for (name, value) in variables {
            command.env(
                format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
                value,
            );
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smtp-mailer serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("serve prints where it listens");
        let line = line.trim();
        let address = match line.strip_prefix("listening on http://") {
            Some(address) => Some(address.parse().expect("a socket address")),
            None if line.starts_with("no HTTP trigger") => None,
            None => {
                let _ = child.kill();
                panic!("unexpected first line from serve: {line:?}")
            }
        };
        ServeProcess { child, address }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address.expect("this serve has an HTTP trigger")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one request and reads the whole answer.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect to serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    // The server may answer (413) and close before reading a large body.
    let _ = stream.write_all(&out);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_answer(&raw)
}

/// Sends `bytes` as they are (a whole request, head and body) and reads the
/// whole answer.
pub fn raw_request(address: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect to serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = unchunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// POST /send with `body`, with the bearer `key` when given.
pub fn post_send(address: SocketAddr, key: Option<&str>, body: &[u8]) -> Answer {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    request(address, "POST", "/send", &headers, body)
}
