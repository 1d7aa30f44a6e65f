//! Postfix's `smtp-sink` (the server every plaintext row sends to) and
//! `smtp-source` (the reference sender), unpacked from Debian's postfix
//! package by `scripts/bench`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where the package was unpacked: `usr/sbin/` and `usr/lib/postfix/`.
#[derive(Clone)]
pub struct Tools {
    root: PathBuf,
}

impl Tools {
    pub fn new(root: &Path) -> io::Result<Tools> {
        let tools = Tools {
            root: root.to_path_buf(),
        };
        for bin in ["smtp-sink", "smtp-source"] {
            if !tools.binary(bin).exists() {
                return Err(io::Error::other(format!(
                    "{} is missing: run scripts/bench, which unpacks Debian's postfix there",
                    tools.binary(bin).display()
                )));
            }
        }
        Ok(tools)
    }

    fn binary(&self, name: &str) -> PathBuf {
        self.root.join("usr/sbin").join(name)
    }

    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(self.binary(name));
        command.env("LD_LIBRARY_PATH", self.root.join("usr/lib/postfix"));
        command
    }

    /// Runs `smtp-source` for `messages` messages of about `size` bytes,
    /// one session at a time; `reuse` (`-d`) keeps one connection for all.
    /// Returns the wall time of the whole run.
    pub fn source(
        &self,
        address: SocketAddr,
        messages: usize,
        size: usize,
        reuse: bool,
    ) -> io::Result<Duration> {
        let mut command = self.command("smtp-source");
        if reuse {
            command.arg("-d");
        }
        command
            .args([
                "-s",
                "1",
                "-m",
                &messages.to_string(),
                "-l",
                &size.to_string(),
            ])
            .args(["-f", crate::workload::FROM, "-t", crate::workload::TO])
            .arg(address.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let output = command.output()?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "smtp-source failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(elapsed)
    }
}

/// A running `smtp-sink` on a free loopback port; killed on drop.
pub struct Sink {
    child: Child,
    pub address: SocketAddr,
}

impl Sink {
    /// Starts `smtp-sink` (PIPELINING and 8BITMIME on, as by default) and
    /// waits until it accepts connections.
    pub fn start(tools: &Tools) -> io::Result<Sink> {
        Sink::start_with(tools, true)
    }

    /// Starts `smtp-sink` with PIPELINING announced or not (`-p`): without
    /// it a client must wait for each reply.
    pub fn start_with(tools: &Tools, pipelining: bool) -> io::Result<Sink> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut command = tools.command("smtp-sink");
        // As root, smtp-sink drops privileges to `postfix` unless told
        // another user; the unpacked package has created no such user.
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        if !pipelining {
            command.arg("-p");
        }
        let child = command
            .arg(address.to_string())
            .arg("1000")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut sink = Sink { child, address };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(address).is_err() {
            if let Some(status) = sink.child.try_wait()? {
                return Err(io::Error::other(format!("smtp-sink exited: {status}")));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("smtp-sink did not listen within 10 s"));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(sink)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
