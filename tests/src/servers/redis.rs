//! A private `redis-server` on 127.0.0.1 (Debian's, unpacked by
//! `scripts/install-test-tools.sh` under `target/test-tools/redis`), with no
//! persistence, and a `PUBLISH` client.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, kill_group, target_dir, INSTALL_SCRIPT};

/// A running `redis-server`, stopped when dropped.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    port: u16,
}

fn find_redis() -> PathBuf {
    let unpacked = target_dir().join("test-tools/redis/usr/bin/redis-server");
    if unpacked.is_file() {
        return unpacked;
    }
    panic!(
        "redis: {} is missing. Run {INSTALL_SCRIPT} (as root): it unpacks Debian's \
         redis-tools there and installs the libraries it needs",
        unpacked.display()
    );
}

impl Redis {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> Self {
        Self::launch(free_port(), &["--save", "", "--appendonly", "no"])
    }

    /// Starts a server that writes every change to an append-only file in
    /// `dir` before answering (`appendfsync always`), on `port` or a free
    /// one: killed and started again on the same `dir` and port, it comes
    /// back with everything it acknowledged.
    pub fn start_durable(dir: &Path, port: Option<u16>) -> Self {
        let dir = dir.to_str().expect("a UTF-8 directory");
        let args = [
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            dir,
        ];
        Self::launch(port.unwrap_or_else(free_port), &args)
    }

    fn launch(port: u16, persistence: &[&str]) -> Self {
        let binary = find_redis();
        let mut command = Command::new(&binary);
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(persistence)
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("redis: cannot start {}: {e}", binary.display()));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut redis = None;
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                if stream.write_all(b"PING\r\n").is_ok() {
                    let mut line = String::new();
                    let _ = BufReader::new(&stream).read_line(&mut line);
                    if line.starts_with("+PONG") {
                        redis = Some(());
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if redis.is_none() {
            kill_group(&mut child);
            panic!("redis: the server on port {port} did not answer PING within 10 s");
        }
        Redis { child, port }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it with SIGKILL, as a crash.
    pub fn kill(mut self) {
        kill_group(&mut self.child);
    }

    /// The address as Spin writes it: `redis://127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Publishes `payload` on `channel`; answers how many subscribers got it.
    pub fn publish(&self, channel: &str, payload: &[u8]) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("redis: connect");
        let mut out = Vec::new();
        out.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n");
        for part in [channel.as_bytes(), payload] {
            out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        stream.write_all(&out).expect("redis: PUBLISH");
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .expect("redis: reply");
        line.trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("redis: unexpected reply to PUBLISH: {line:?}"))
    }

    /// The integer reply of a command such as `XLEN stream` or `EXISTS key`.
    pub fn integer(&self, parts: &[&str]) -> i64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("redis: connect");
        let mut out = format!("*{}\r\n", parts.len()).into_bytes();
        for part in parts {
            out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
        }
        stream.write_all(&out).expect("redis: command");
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .expect("redis: reply");
        line.trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("redis: {parts:?} answered {line:?}, not an integer"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
