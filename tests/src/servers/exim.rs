//! Debian's exim4-daemon-light as a private instance, configured from
//! `tests/servers/exim.conf.in`.
//!
//! The binary comes from `target/test-tools/exim/usr/sbin/exim4`, unpacked
//! there by `scripts/install-test-tools.sh` from the Debian package without
//! installing it (it would conflict with the machine's MTA). It is run as
//! `exim4 -C <config> -bdf -odi` in its own process group: in the
//! foreground, listening on 127.0.0.1 only, with its spool, logs and
//! delivered messages in its temporary directory.
//!
//! Debian's build fixes two things that shape this:
//! * Exim's own user is looked up by name at start (`ref:Debian-exim`), so
//!   that user must exist: the install script creates it.
//! * A daemon needs an admin caller (root or Exim's user), `-C` keeps
//!   privileges for root only, and no delivery may run as root
//!   (`FIXED_NEVER_USERS=root`): so tests run as root, deliveries run as
//!   `Debian-exim`, and the temporary directory is handed to that user.
//!
//! Each message is one maildir file: the content as received (CRLF line
//! endings, no `Received:` header added) after a `Return-path:` and an
//! `Envelope-to:` header line that carry the envelope, and before those two
//! lines `X-Fixture-TLS:` (`$tls_in_ver $tls_in_cipher`) and
//! `X-Fixture-Auth:` (`$authenticated_id`) that tell how it came in.
//!
//! TLS and AUTH ([`EximOptions::starttls`], [`EximOptions::auth`]) are
//! switched on by Exim macros written at the top of the configuration.
//! Debian's build uses GnuTLS; the certificate and key are copied into the
//! server's directory, owned by Exim's user, so that both the daemon (root)
//! and the processes that serve connections (Exim's user) can read them.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, kill_group, tail, target_dir, wait_for_messages, workspace_root};
use super::{Received, INSTALL_SCRIPT};
use crate::tls::CertPaths;

/// Exim's user in Debian's build.
const EXIM_USER: &str = "Debian-exim";
/// How long Exim may take to answer on its port.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at a free port, should another process take the one picked.
const PORT_ATTEMPTS: usize = 5;

/// Settings of an [`Exim`] server.
#[derive(Clone, Debug, Default)]
pub struct EximOptions {
    /// Advertise `SIZE n` and refuse larger messages (`552`). `None` keeps
    /// Exim's default of 50 MiB.
    pub size_limit: Option<usize>,
    /// Offer STARTTLS with this certificate and key (`tls_certificate`,
    /// `tls_privatekey`, `tls_advertise_hosts = *`).
    pub starttls: Option<CertPaths>,
    /// Offer AUTH PLAIN and LOGIN for this (user, password), only over TLS
    /// unless [`auth_plaintext`](Self::auth_plaintext), and accept
    /// recipients from authenticated clients only: others get
    /// `550 5.7.1 relay not permitted` (`refuse*` and `defer*` still get
    /// their answers first). A wrong password gets
    /// `535 Incorrect authentication data`; AUTH where it is not offered
    /// `503 AUTH command used when not advertised`. The user and password
    /// may hold any character but `\` and control characters.
    pub auth: Option<(String, String)>,
    /// Offer AUTH on plaintext connections too.
    pub auth_plaintext: bool,
    /// Do not offer PIPELINING (`pipelining_advertise_hosts =` empty): a
    /// client must then wait for each reply, or Exim answers `554 SMTP
    /// synchronization error` and drops the connection.
    pub no_pipelining: bool,
}

/// A private Exim daemon on 127.0.0.1, stopped when dropped.
///
/// The binary is `$SMTP_MAILER_EXIM` if set, else the one unpacked by the
/// install script under the target directory, else `/usr/sbin/exim4`.
#[derive(Debug)]
pub struct Exim {
    child: Child,
    port: u16,
    outdir: PathBuf,
    dir: tempfile::TempDir,
    /// The client port of the start-up probe, whose connection is not
    /// counted by [`Exim::connections`].
    probe_port: u16,
}

impl Exim {
    /// Starts a server with default options.
    pub fn start() -> Self {
        Self::start_with(EximOptions::default())
    }

    /// Starts a server. Panics, saying how to install what is missing, when
    /// Exim or its user is not there, or when not running as root.
    pub fn start_with(opts: EximOptions) -> Self {
        let exim = find_exim();
        let (uid, gid) = exim_ids();
        if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0) != 0 {
            panic!(
                "exim: the Exim fixture must run as root: Debian's exim4 starts a \
                 daemon only for root and never delivers as root"
            );
        }

        let dir = tempfile::Builder::new()
            .prefix("exim-")
            .tempdir()
            .unwrap_or_else(|e| panic!("exim: cannot create a temporary directory: {e}"));
        let spool = dir.path().join("spool");
        let logdir = dir.path().join("log");
        let outdir = dir.path().join("messages");
        for path in [dir.path(), &spool, &logdir, &outdir] {
            if path != dir.path() {
                fs::create_dir(path).unwrap_or_else(|e| panic!("exim: {}: {e}", path.display()));
            }
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("exim: chown {}: {e}", path.display()));
        }

        let template_path = workspace_root().join("tests/servers/exim.conf.in");
        let template = fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("exim: {}: {e}", template_path.display()));
        let config_path = dir.path().join("exim.conf");
        let macros = macros(&opts, dir.path(), uid, gid);

        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let token = banner_token();
            let config = template
                .replace("@EXIM_PATH@", &exim.display().to_string())
                .replace("@EXIM_USER@", EXIM_USER)
                .replace("@EXIM_GROUP@", EXIM_USER)
                .replace("@PORT@", &port.to_string())
                .replace("@SPOOL@", &spool.display().to_string())
                .replace("@LOGDIR@", &logdir.display().to_string())
                .replace("@OUTDIR@", &outdir.display().to_string())
                .replace(
                    "@SIZE_LIMIT@",
                    &opts.size_limit.unwrap_or(50 << 20).to_string(),
                )
                .replace("@BANNER_TOKEN@", &token)
                .replace("@HELD_FLAG@", &held_flag(dir.path()).display().to_string())
                .replace("@MACROS@", &macros);
            // Exim refuses a configuration that others may write.
            fs::write(&config_path, config)
                .unwrap_or_else(|e| panic!("exim: {}: {e}", config_path.display()));

            let stderr_path = dir.path().join("stderr.log");
            let stderr = File::create(&stderr_path)
                .unwrap_or_else(|e| panic!("exim: {}: {e}", stderr_path.display()));
            let mut child = Command::new(&exim)
                .arg("-C")
                .arg(&config_path)
                .args(["-bdf", "-odi"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("exim: cannot run {}: {e}", exim.display()));

            match wait_until_listening(&mut child, port, &token) {
                Ok(probe_port) => {
                    return Exim {
                        child,
                        port,
                        outdir,
                        dir,
                        probe_port,
                    }
                }
                Err(why) => {
                    kill_group(&mut child);
                    let log = format!(
                        "{}\n{}\n{}",
                        tail(&stderr_path),
                        tail(&logdir.join("paniclog")),
                        tail(&logdir.join("mainlog"))
                    );
                    if log.contains("Address already in use") {
                        continue;
                    }
                    panic!("exim: {why}; its logs:\n{log}");
                }
            }
        }
        panic!("exim: no free port on 127.0.0.1 after {PORT_ATTEMPTS} attempts");
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages delivered so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        read_messages(&self.outdir.join("new"))
    }

    /// Waits until at least `n` messages were delivered and returns them all.
    /// Panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        wait_for_messages("exim", n, timeout, || self.messages())
    }

    /// Exim's main log so far, to explain a failing test.
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("log/mainlog"))
    }

    /// Refuses recipients whose local part starts with `held` (450 4.2.0)
    /// while `held` is true; accepts them again once it is false.
    pub fn hold(&self, held: bool) {
        let flag = held_flag(self.dir.path());
        let result = if held {
            fs::write(&flag, b"")
        } else {
            fs::remove_file(&flag)
        };
        result.unwrap_or_else(|e| panic!("exim: {}: {e}", flag.display()));
    }

    /// The SMTP connections Exim accepted so far, the start-up probe's
    /// left out, as its main log records them.
    pub fn connections(&self) -> usize {
        let probe = format!("]:{} ", self.probe_port);
        self.main_log()
            .lines()
            .filter(|l| l.contains("SMTP connection from") && l.contains("connection count"))
            .filter(|l| !l.contains(&probe))
            .count()
    }

    /// The lines of the main log that report a synchronization error
    /// (`SMTP protocol synchronization error`: input sent too soon).
    pub fn sync_errors(&self) -> Vec<String> {
        self.main_log()
            .lines()
            .filter(|l| l.contains("synchronization error"))
            .map(str::to_owned)
            .collect()
    }

    /// The whole main log.
    fn main_log(&self) -> String {
        let path = self.dir.path().join("log/mainlog");
        match fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => panic!("exim: {}: {e}", path.display()),
        }
    }
}

/// The file whose presence makes Exim hold `held*` recipients.
fn held_flag(dir: &Path) -> PathBuf {
    dir.join("held")
}

impl Drop for Exim {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// The macro definitions that switch on TLS and AUTH in the template.
fn macros(opts: &EximOptions, dir: &Path, uid: u32, gid: u32) -> String {
    let mut macros = String::new();
    if let Some(tls) = &opts.starttls {
        let tls_dir = dir.join("tls");
        fs::create_dir(&tls_dir).unwrap_or_else(|e| panic!("exim: {}: {e}", tls_dir.display()));
        for (from, name, macro_name) in [
            (&tls.cert, "cert.pem", "FIXTURE_TLS_CERT"),
            (&tls.key, "key.pem", "FIXTURE_TLS_KEY"),
        ] {
            let to = tls_dir.join(name);
            fs::copy(from, &to).unwrap_or_else(|e| {
                panic!("exim: copy {} to {}: {e}", from.display(), to.display())
            });
            std::os::unix::fs::chown(&to, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("exim: chown {}: {e}", to.display()));
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("exim: chmod {}: {e}", to.display()));
            macros.push_str(&format!("{macro_name} = {}\n", to.display()));
        }
        std::os::unix::fs::chown(&tls_dir, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("exim: chown {}: {e}", tls_dir.display()));
    }
    if opts.no_pipelining {
        macros.push_str("FIXTURE_NO_PIPELINING = yes\n");
    }
    if let Some((user, password)) = &opts.auth {
        for value in [user, password] {
            if value.chars().any(|c| c == '\\' || c.is_control()) {
                panic!("exim: AUTH credentials may not hold `\\` or control characters: {value:?}");
            }
        }
        // \N...\N: taken as is, never expanded.
        macros.push_str(&format!("FIXTURE_AUTH_USER = \\N{user}\\N\n"));
        macros.push_str(&format!("FIXTURE_AUTH_PASSWORD = \\N{password}\\N\n"));
        if opts.auth_plaintext {
            macros.push_str("FIXTURE_AUTH_PLAINTEXT = yes\n");
        }
    }
    macros
}

fn find_exim() -> PathBuf {
    if let Some(path) = std::env::var_os("SMTP_MAILER_EXIM") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            panic!(
                "exim: $SMTP_MAILER_EXIM names {}, which does not exist",
                path.display()
            );
        }
        return path;
    }
    let unpacked = target_dir().join("test-tools/exim/usr/sbin/exim4");
    if unpacked.is_file() {
        return unpacked;
    }
    let system = PathBuf::from("/usr/sbin/exim4");
    if system.is_file() {
        return system;
    }
    panic!(
        "exim: {} is missing. Run {INSTALL_SCRIPT} (as root): it unpacks Debian's \
         exim4-daemon-light there and creates the user {EXIM_USER}",
        unpacked.display()
    );
}

/// The uid and gid of Exim's user.
fn exim_ids() -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id")
            .args([flag, EXIM_USER])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => (uid, gid),
        _ => panic!(
            "exim: the user {EXIM_USER}, which Debian's exim4 runs as, does not exist. \
             Run {INSTALL_SCRIPT} (as root) to create it"
        ),
    }
}

/// A string unique to one start, put in the banner so that a server that took
/// the port first is not mistaken for ours.
fn banner_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits until our Exim greets on `port`; returns the client port of the
/// connection that saw the greeting.
fn wait_until_listening(child: &mut Child, port: u16, token: &str) -> Result<u16, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exim exited at start ({status})"));
        }
        if let Ok((banner, probe_port)) = read_banner(port) {
            if banner.contains(token) {
                return Ok(probe_port);
            }
            return Err(format!(
                "another server answers on port {port}: Address already in use"
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "exim did not answer on port {port} within {START_TIMEOUT:?}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn read_banner(port: u16) -> std::io::Result<(String, u16)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let probe_port = stream.local_addr()?.port();
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut banner = String::new();
    BufReader::new(&stream).read_line(&mut banner)?;
    if banner.is_empty() {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    let _ = stream.write_all(b"QUIT\r\n");
    Ok((banner, probe_port))
}

/// Reads every message in the maildir's `new/`, in the order Exim received
/// them, joining files that belong to one message.
fn read_messages(new: &Path) -> Vec<Received> {
    let entries = match fs::read_dir(new) {
        Ok(entries) => entries,
        // Exim creates the maildir at the first delivery.
        Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("exim: {}: {e}", new.display()),
    };
    let mut files: Vec<(MessageId, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let id = MessageId::from_file_name(entry.file_name().to_str()?)?;
            Some((id, entry.path()))
        })
        .collect();
    // Deliveries run in parallel, so files appear in any order; ids follow
    // the order of reception.
    files.sort();

    let mut messages: Vec<(MessageId, Received)> = Vec::new();
    for (id, path) in files {
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("exim: {}: {e}", path.display()));
        let mut message = parse_delivered(&bytes).unwrap_or_else(|| {
            let start = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            panic!(
                "exim: {} does not start with the lines the configuration puts first: {start:?}",
                path.display()
            )
        });
        message.received_at = modified_secs(&path);
        match messages.last_mut() {
            Some((last, earlier)) if *last == id => earlier.rcpt_to.extend(message.rcpt_to),
            _ => messages.push((id, message)),
        }
    }
    messages.into_iter().map(|(_, message)| message).collect()
}

/// A file's modification time in seconds since the Unix epoch, 0.0 if the
/// file system cannot tell.
fn modified_secs(path: &Path) -> f64 {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |age| age.as_secs_f64())
}

/// An Exim message id, `<time>-<pid>-<fraction of a second>` in base 62
/// (`1xXNKT-00026q-0e`), as the maildir tag puts it at the end of each file
/// name. It orders by time of reception.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MessageId {
    /// (time, fraction, pid), each as (length, digits) so that base-62
    /// numbers compare by value: `0-9A-Za-z` is ASCII order.
    key: [(usize, String); 3],
}

impl MessageId {
    fn from_file_name(name: &str) -> Option<Self> {
        let (_, id) = name.rsplit_once(',')?;
        let mut parts = id.split('-');
        let (time, pid, fraction) = (parts.next()?, parts.next()?, parts.next()?);
        let number = |s: &str| (s.len(), s.to_owned());
        Some(MessageId {
            key: [number(time), number(fraction), number(pid)],
        })
    }
}

/// Splits a delivered file into the lines that the configuration puts first
/// (`X-Fixture-TLS:`, `X-Fixture-Auth:`, `Return-path:`, `Envelope-to:`)
/// and the message.
fn parse_delivered(bytes: &[u8]) -> Option<Received> {
    let mut rest = bytes;
    let mut next_line = || -> Option<&str> {
        let end = rest.windows(2).position(|w| w == b"\r\n")? + 2;
        let line = std::str::from_utf8(&rest[..end - 2]).ok();
        rest = &rest[end..];
        line
    };
    let tls = next_line()?
        .strip_prefix("X-Fixture-TLS:")?
        .trim()
        .to_owned();
    let auth = next_line()?
        .strip_prefix("X-Fixture-Auth:")?
        .trim()
        .to_owned();
    let mail_from = next_line()?
        .strip_prefix("Return-path:")?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    let mut rcpt_to = Vec::new();
    push_addresses(&mut rcpt_to, next_line()?.strip_prefix("Envelope-to:")?);
    // Continuation lines of Envelope-to, then the message.
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")? + 2;
        if !rest.starts_with(b" ") && !rest.starts_with(b"\t") {
            break;
        }
        push_addresses(&mut rcpt_to, std::str::from_utf8(&rest[..end - 2]).ok()?);
        rest = &rest[end..];
    }
    // `TLS1.3 <cipher>`: GnuTLS's name for the version; Python's ssl (and
    // OpenSSL) say `TLSv1.3`.
    let tls_version = tls
        .split_whitespace()
        .next()
        .map(|v| match v.strip_prefix("TLS") {
            Some(number) if !number.starts_with('v') => format!("TLSv{number}"),
            _ => v.to_owned(),
        });
    Some(Received {
        mail_from,
        rcpt_to,
        data: rest.to_vec(),
        connection: 0,
        mail_options: Vec::new(),
        tls: !tls.is_empty(),
        tls_version,
        auth_user: (!auth.is_empty()).then_some(auth),
        received_at: 0.0,
    })
}

fn push_addresses(rcpt_to: &mut Vec<String>, list: &str) {
    rcpt_to.extend(
        list.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_envelope_headers_from_the_message() {
        let file = b"X-Fixture-TLS: \r\nX-Fixture-Auth: \r\n\
                     Return-path: <a@x.test>\r\nEnvelope-to: b@y.test,\r\n c@z.test\r\n\
                     Subject: hi\r\n\r\n body\r\n";
        let received = parse_delivered(file).unwrap();
        assert_eq!(received.mail_from, "a@x.test");
        assert_eq!(received.rcpt_to, ["b@y.test", "c@z.test"]);
        assert_eq!(received.data, b"Subject: hi\r\n\r\n body\r\n");
        assert!(!received.tls);
        assert_eq!(received.tls_version, None);
        assert_eq!(received.auth_user, None);
    }

    #[test]
    fn reads_tls_and_auth_lines() {
        let file = b"X-Fixture-TLS: TLS1.3 TLS1.3:ECDHE_SECP256R1__AES_256_GCM:256\r\n\
                     X-Fixture-Auth: bob\r\nReturn-path: <>\r\nEnvelope-to: b@y.test\r\n\
                     \r\nbody\r\n";
        let received = parse_delivered(file).unwrap();
        assert!(received.tls);
        assert_eq!(received.tls_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(received.auth_user.as_deref(), Some("bob"));
        assert_eq!(received.mail_from, "");
        assert_eq!(received.data, b"\r\nbody\r\n");
        assert!(parse_delivered(b"Return-path: <>\r\nEnvelope-to: b@y.test\r\n\r\n").is_none());
    }

    #[test]
    fn orders_files_by_message_id() {
        let id = |name| MessageId::from_file_name(name).unwrap();
        let first = id("1795891162.M1P9.exim.test,1xXNKT-00026q-0e");
        let second = id("1795891161.M2P8.exim.test,1xXNKT-00026q-0h");
        let third = id("1795891161.M3P7.exim.test,1xXNKU-00011q-00");
        assert!(first < second && second < third);
        assert!(MessageId::from_file_name("1795891161.M3P7.exim.test").is_none());
    }
}
