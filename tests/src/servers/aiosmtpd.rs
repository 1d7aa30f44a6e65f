//! aiosmtpd, run by `tests/servers/aiosmtpd_server.py`.
//!
//! TLS (STARTTLS or implicit) uses Python's `ssl` (OpenSSL); the certificate
//! and key are read once, when the server starts. Each message's `.json`
//! records whether it came over TLS and who authenticated, and when it
//! arrived.
//!
//! Besides the `refuse*` and `defer*` recipients, the script fails some
//! recipients only the first time it sees them, for retry tests:
//! `once421*` gets `421 4.3.2 Service shutting down, try later` and the
//! connection is closed; `once450*` gets `450 4.2.1 Mailbox busy, try
//! later`. Every later RCPT for the same address (over the server's
//! lifetime, case-insensitive) gets `250`. [`Aiosmtpd::rcpt_log`] lists every
//! RCPT reply, [`Aiosmtpd::connections`] counts the connections.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::{kill_group, tail, wait_for_messages, workspace_root, Received, INSTALL_SCRIPT};
use crate::tls::CertPaths;

/// The aiosmtpd version that the install script pins.
pub const AIOSMTPD_VERSION: &str = "1.4.6";

/// How long the script may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of an [`Aiosmtpd`] server.
#[derive(Clone, Debug, Default)]
pub struct AiosmtpdOptions {
    /// Advertise `SIZE n` and refuse larger messages (`552`). `None` keeps
    /// aiosmtpd's default of 32 MiB.
    pub size_limit: Option<usize>,
    /// Advertise and accept SMTPUTF8.
    pub smtputf8: bool,
    /// Offer STARTTLS with this certificate and key.
    pub starttls: Option<CertPaths>,
    /// With [`starttls`](Self::starttls): refuse every command but EHLO,
    /// HELO, NOOP, QUIT and STARTTLS until TLS is on
    /// (`530 Must issue a STARTTLS command first`).
    pub require_starttls: bool,
    /// Speak TLS from the first byte with this certificate and key, as on
    /// port 465; no STARTTLS is offered. Not together with `starttls`.
    pub implicit_tls: Option<CertPaths>,
    /// Offer AUTH PLAIN and LOGIN for this (user, password), only over TLS
    /// unless [`auth_plaintext`](Self::auth_plaintext). Other credentials get
    /// `535 5.7.8 Authentication credentials invalid`; AUTH before TLS gets
    /// `538 5.7.11 Encryption required for requested authentication
    /// mechanism`. Without it, no AUTH is offered and AUTH gets `502 5.5.1`.
    pub auth: Option<(String, String)>,
    /// Offer AUTH on plaintext connections too.
    pub auth_plaintext: bool,
    /// Refuse MAIL until the client authenticated
    /// (`530 5.7.0 Authentication required`).
    pub auth_required: bool,
    /// Close a connection that sent no command for this long after the
    /// server's last reply, saying `421 4.4.2 Idle timeout, closing
    /// connection` first, as Postfix and Exim do. The clock also runs while
    /// a message's data arrives, so keep messages small with short timeouts.
    /// `None` keeps aiosmtpd's default: a silent close after 300 s.
    pub idle_timeout: Option<Duration>,
    /// Listen on this port of 127.0.0.1 (a relay that comes back where it
    /// was); a free one when `None`.
    pub port: Option<u16>,
}

/// One RCPT TO that an [`Aiosmtpd`] server answered, from
/// [`Aiosmtpd::rcpt_log`].
#[derive(Clone, Debug, PartialEq)]
pub struct RcptRecord {
    /// The connection it came over, numbered from 1 as
    /// [`Received::connection`].
    pub session: u64,
    /// The address inside the angle brackets, as the client wrote it.
    pub address: String,
    /// The reply code: 250, 421, 450, 550...
    pub code: u16,
    /// When the server replied, in seconds since the Unix epoch.
    pub at: f64,
}

/// An aiosmtpd server on 127.0.0.1, stopped when dropped.
///
/// Python 3 is `python3` from `PATH`, or `$SMTP_MAILER_PYTHON`.
#[derive(Debug)]
pub struct Aiosmtpd {
    child: Child,
    /// Closing it tells the script to exit, should this process die first.
    _stdin: ChildStdin,
    port: u16,
    outdir: PathBuf,
    rcpt_log: PathBuf,
    connection_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Aiosmtpd {
    /// Starts a server with default options.
    pub fn start() -> Self {
        Self::start_with(AiosmtpdOptions::default())
    }

    /// Starts a server. Panics, saying how to install what is missing, when
    /// Python or aiosmtpd is not there.
    pub fn start_with(opts: AiosmtpdOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aiosmtpd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("aiosmtpd: cannot create a temporary directory: {e}"));
        let outdir = dir.path().join("messages");
        fs::create_dir(&outdir).unwrap_or_else(|e| panic!("aiosmtpd: {}: {e}", outdir.display()));
        let stderr_path = dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("aiosmtpd: {}: {e}", stderr_path.display()));

        let python = std::env::var("SMTP_MAILER_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = workspace_root().join("tests/servers/aiosmtpd_server.py");
        let mut command = Command::new(&python);
        // Outside the message directory, which holds only message files.
        let rcpt_log = dir.path().join("rcpt.log");
        let connection_log = dir.path().join("connections.log");
        let port = opts.port.unwrap_or(0).to_string();
        command.arg(&script).arg(&port).arg(&outdir);
        command.arg("--rcpt-log").arg(&rcpt_log);
        command.arg("--connection-log").arg(&connection_log);
        if let Some(timeout) = opts.idle_timeout {
            command
                .arg("--idle-timeout")
                .arg(timeout.as_secs_f64().to_string());
        }
        if let Some(limit) = opts.size_limit {
            command.arg("--size-limit").arg(limit.to_string());
        }
        if opts.smtputf8 {
            command.arg("--smtputf8");
        }
        let tls = match (&opts.starttls, &opts.implicit_tls) {
            (Some(_), Some(_)) => panic!("aiosmtpd: starttls and implicit_tls exclude each other"),
            (Some(tls), None) => Some(tls),
            (None, Some(tls)) => {
                command.arg("--implicit-tls");
                Some(tls)
            }
            (None, None) => None,
        };
        if let Some(tls) = tls {
            command.arg("--tls-cert").arg(&tls.cert);
            command.arg("--tls-key").arg(&tls.key);
        }
        if opts.require_starttls {
            command.arg("--require-starttls");
        }
        if let Some((user, password)) = &opts.auth {
            // One argument each, so that a value that starts with `-` is
            // not taken for an option.
            command.arg(format!("--auth-user={user}"));
            command.arg(format!("--auth-password={password}"));
        }
        if opts.auth_plaintext {
            command.arg("--auth-plaintext");
        }
        if opts.auth_required {
            command.arg("--auth-required");
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("PYTHONUNBUFFERED", "1");
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);

        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "aiosmtpd: `{python}` was not found. Install Python 3 and run \
                 {INSTALL_SCRIPT} (or `pip install aiosmtpd=={AIOSMTPD_VERSION}`); \
                 $SMTP_MAILER_PYTHON may name another interpreter"
            ),
            Err(e) => panic!("aiosmtpd: cannot run `{python}`: {e}"),
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        match read_ready_line(stdout) {
            Some(port) => Aiosmtpd {
                child,
                _stdin: stdin,
                port,
                outdir,
                rcpt_log,
                connection_log,
                _dir: dir,
            },
            None => {
                kill_group(&mut child);
                let log = tail(&stderr_path);
                if log.contains("No module named 'aiosmtpd'") {
                    panic!(
                        "aiosmtpd: the Python module aiosmtpd is missing for `{python}`. \
                         Run {INSTALL_SCRIPT} (or `{python} -m pip install \
                         aiosmtpd=={AIOSMTPD_VERSION}`)"
                    );
                }
                panic!(
                    "aiosmtpd: {} did not print READY within {START_TIMEOUT:?}; stderr:\n{log}",
                    script.display()
                );
            }
        }
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages accepted so far, in the order they were accepted.
    pub fn messages(&self) -> Vec<Received> {
        read_messages(&self.outdir)
    }

    /// Waits until at least `n` messages were accepted and returns them all.
    /// Panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        wait_for_messages("aiosmtpd", n, timeout, || self.messages())
    }

    /// How many messages were accepted so far: cheaper than
    /// [`messages`](Self::messages) (it reads only the directory), for
    /// polling while thousands arrive.
    pub fn message_count(&self) -> usize {
        fs::read_dir(&self.outdir)
            .unwrap_or_else(|e| panic!("aiosmtpd: {}: {e}", self.outdir.display()))
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".eml"))
            .count()
    }

    /// Every RCPT TO the server answered so far, in order (over all
    /// connections).
    pub fn rcpt_log(&self) -> Vec<RcptRecord> {
        json_lines(&self.rcpt_log)
            .iter()
            .map(|line| RcptRecord {
                session: line["session"].as_u64().unwrap_or_default(),
                address: line["address"].as_str().unwrap_or_default().to_owned(),
                code: line["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or_default(),
                at: line["at"].as_f64().unwrap_or_default(),
            })
            .collect()
    }

    /// How many connections the server accepted so far.
    pub fn connections(&self) -> u64 {
        json_lines(&self.connection_log).len() as u64
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Reads `READY <port>` from the script's stdout; `None` on end of file,
/// anything else or timeout.
fn read_ready_line(stdout: std::process::ChildStdout) -> Option<u16> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).ok()?;
    line.trim().strip_prefix("READY ")?.parse().ok()
}

/// The complete JSON lines of a log the script appends to; a last line
/// still being written is left out. No file yet: no lines.
fn json_lines(path: &Path) -> Vec<Value> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("aiosmtpd: {}: {e}", path.display()),
    };
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => return Vec::new(),
    };
    complete
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "aiosmtpd: {}: {e}: {}",
                    path.display(),
                    String::from_utf8_lossy(line)
                )
            })
        })
        .collect()
}

/// Reads every complete `NNNNNN.json` + `NNNNNN.eml` pair in `outdir`.
fn read_messages(outdir: &Path) -> Vec<Received> {
    let entries =
        fs::read_dir(outdir).unwrap_or_else(|e| panic!("aiosmtpd: {}: {e}", outdir.display()));
    let mut numbers: Vec<u64> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".eml")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers
        .into_iter()
        .map(|number| {
            let base = outdir.join(format!("{number:06}"));
            let meta = fs::read(base.with_extension("json"))
                .unwrap_or_else(|e| panic!("aiosmtpd: {}.json: {e}", base.display()));
            let meta: Value = serde_json::from_slice(&meta)
                .unwrap_or_else(|e| panic!("aiosmtpd: {}.json: {e}", base.display()));
            let data = fs::read(base.with_extension("eml"))
                .unwrap_or_else(|e| panic!("aiosmtpd: {}.eml: {e}", base.display()));
            Received {
                mail_from: meta["mail_from"].as_str().unwrap_or_default().to_owned(),
                rcpt_to: strings(&meta["rcpt_tos"]),
                data,
                connection: meta["session"].as_u64().unwrap_or_default(),
                mail_options: strings(&meta["mail_options"]),
                tls: meta["tls"].as_bool().unwrap_or_default(),
                tls_version: meta["tls_version"].as_str().map(str::to_owned),
                auth_user: meta["auth_user"].as_str().map(str::to_owned),
                received_at: meta["received_at"].as_f64().unwrap_or_default(),
            }
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
