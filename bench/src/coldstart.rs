//! Cold start of the `smtp-mailer` CLI: from spawning the process to its
//! connection, and to its first byte on the wire (EHLO, once the greeting
//! arrived), against a listener that greets at once and then answers 421.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{workload, BoxError};

pub struct ColdStart {
    /// Spawn to the accepted connection.
    pub connected: Duration,
    /// Spawn to the first byte the CLI sent.
    pub first_byte: Duration,
}

pub fn cli_once(cli: &Path) -> Result<ColdStart, BoxError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let started = Instant::now();
    let mut child = Command::new(cli)
        .arg("send")
        .arg("--server")
        .arg(format!(
            "smtp://127.0.0.1:{port}?security=plaintext-insecure"
        ))
        .args(["--from", workload::FROM, "--to", workload::TO])
        .args(["--subject", workload::SUBJECT, "--text", workload::TEXT])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> Result<ColdStart, BoxError> {
        let (mut stream, connected) = loop {
            match listener.accept() {
                Ok((stream, _)) => break (stream, started.elapsed()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Some(status) = child.try_wait()? {
                        return Err(format!("the CLI exited before connecting: {status}").into());
                    }
                    if started.elapsed() > Duration::from_secs(60) {
                        return Err("the CLI did not connect within 60 s".into());
                    }
                    thread::sleep(Duration::from_micros(50));
                }
                Err(e) => return Err(e.into()),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(b"220 cold.example ESMTP\r\n")?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        let first_byte = started.elapsed();
        let _ = stream.write_all(b"421 4.3.2 the benchmark has what it needs\r\n");
        Ok(ColdStart {
            connected,
            first_byte,
        })
    })();
    if result.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    result
}
