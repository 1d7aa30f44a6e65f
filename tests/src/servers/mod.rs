//! Real SMTP servers on loopback for end-to-end tests.
//!
//! Each server runs as a child process on its own free port of 127.0.0.1,
//! with its own temporary directory, so tests may run in parallel threads.
//! Dropping the handle kills the process (and its children), reaps it and
//! removes the directory.
//!
//! * [`Aiosmtpd`]: Python's aiosmtpd, driven by `tests/servers/aiosmtpd_server.py`.
//!   Knows which connection carried each message, logs every RCPT reply
//!   ([`Aiosmtpd::rcpt_log`]) and connection ([`Aiosmtpd::connections`]),
//!   and can close idle connections with a 421
//!   ([`AiosmtpdOptions::idle_timeout`]).
//! * [`Exim`]: Debian's exim4-daemon-light, configured from
//!   `tests/servers/exim.conf.in`. Offers PIPELINING, 8BITMIME, SIZE, CHUNKING
//!   and SMTPUTF8. Needs root.
//!
//! Both offer STARTTLS and AUTH (PLAIN, LOGIN) on request, aiosmtpd also
//! implicit TLS, with certificates from [`crate::tls::TestPki`]; each
//! [`Received`] tells whether its message came over TLS and who
//! authenticated.
//!
//! Both answer a recipient by its local part: `refuse*` gets
//! `550 5.1.1 <addr>: mailbox unavailable`, `defer*` gets
//! `450 4.2.0 <addr>: try later`, anything else is accepted. aiosmtpd also
//! fails `once421*` and `once450*` recipients the first time it sees each
//! address, with a 421 (closing the connection) or a 450.
//!
//! [`Redis`] is not an SMTP server: Debian's redis-server, for the Spin
//! app's Redis trigger.
//!
//! A missing tool is a panic that says how to install it
//! (`scripts/install-test-tools.sh`); tests are never skipped silently.
//!
//! ```no_run
//! use smtp_mailer_tests::servers::Aiosmtpd;
//! use std::time::Duration;
//!
//! let server = Aiosmtpd::start();
//! // ... send one message to 127.0.0.1:server.port() ...
//! let received = server.wait_for(1, Duration::from_secs(5));
//! assert_eq!(received[0].rcpt_to, ["bob@example.test"]);
//! ```

mod aiosmtpd;
mod exim;
mod redis;

pub use aiosmtpd::{Aiosmtpd, AiosmtpdOptions, RcptRecord};
pub use exim::{Exim, EximOptions};
pub use redis::Redis;

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

/// The script that installs every tool these servers need.
pub const INSTALL_SCRIPT: &str = "scripts/install-test-tools.sh";

/// One message as a server accepted it.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The reverse path of `MAIL FROM`, without angle brackets (empty for `<>`).
    pub mail_from: String,
    /// The accepted recipients, without angle brackets, in the order given.
    pub rcpt_to: Vec<String>,
    /// The message content exactly as sent after DATA (dot-unstuffed, CRLF
    /// line endings, without the final `.` line) or by BDAT.
    pub data: Vec<u8>,
    /// Equal for messages that arrived over one connection (aiosmtpd only,
    /// numbered from 1); always 0 for Exim.
    pub connection: u64,
    /// The parameters of `MAIL FROM`, upper-cased, e.g. `BODY=8BITMIME`,
    /// `SIZE=1234`, `SMTPUTF8` (aiosmtpd only; empty for Exim).
    pub mail_options: Vec<String>,
    /// Whether the message came over TLS (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The TLS version when [`tls`](Self::tls), spelt as OpenSSL does:
    /// `TLSv1.3`, `TLSv1.2` (Exim's `TLS1.3` is rewritten to match).
    pub tls_version: Option<String>,
    /// The user name that AUTH succeeded with, if the client authenticated.
    pub auth_user: Option<String>,
    /// When the server had the whole message, in seconds since the Unix
    /// epoch: aiosmtpd's clock at the end of the data; for Exim, the
    /// modification time of the delivered file (0.0 if unknown).
    pub received_at: f64,
}

/// The root of the Cargo workspace (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory, as the install script computes it.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// A port on 127.0.0.1 that was free a moment ago. Another process may take
/// it before the server binds it: callers retry when the bind fails.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind a port on 127.0.0.1: {e}"));
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// Polls `read` until it returns at least `n` messages.
///
/// Panics when `timeout` passes first, listing what did arrive.
pub(crate) fn wait_for_messages(
    server: &str,
    n: usize,
    timeout: Duration,
    mut read: impl FnMut() -> Vec<Received>,
) -> Vec<Received> {
    let deadline = Instant::now() + timeout;
    loop {
        let messages = read();
        if messages.len() >= n {
            return messages;
        }
        if Instant::now() >= deadline {
            panic!(
                "{server}: expected {n} message(s) within {timeout:?}, got {}: {messages:#?}",
                messages.len()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a child that leads its own process group, with everything it
/// started, and reaps it.
pub(crate) fn kill_group(child: &mut Child) {
    let pid = child.id();
    // The shell's `kill` reaches the whole group; `Child::kill` only the leader.
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -s KILL -- -{pid} 2>/dev/null")])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// The end of a log file, for panic messages.
pub(crate) fn tail(path: &Path) -> String {
    const KEEP: usize = 4000;
    match fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(KEEP);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}
