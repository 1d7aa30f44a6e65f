//! The `smtp-mailer` queue commands (`enqueue`, `worker`, `suppression`)
//! run as processes, for the volume and crash tests: test messages with
//! known Message-IDs, a worker whose JSON events and summary can be read,
//! and counts of what a server received by Message-ID.
//!
//! Every command gets its queue by `--queue`; `SMTP_MAILER_QUEUE`,
//! `SMTP_URL` and `SMTP_PASSWORD` are cleared so that the caller's
//! environment does not leak in.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::servers::Received;
use crate::support::{cli_binary, parse};

/// The relay URL of a plaintext test server on 127.0.0.1, as `send` takes it.
pub fn smtp_url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}?security=plaintext-insecure")
}

/// A port of 127.0.0.1 where nothing listens, for a relay that refuses
/// connections.
pub use crate::unanswered::closed_port;

/// A SQLite queue in a temporary directory of its own (the file is created
/// by the first command that uses it).
#[derive(Debug)]
pub struct SqliteQueue {
    dir: tempfile::TempDir,
}

impl SqliteQueue {
    /// A new, empty queue.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("queue-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        SqliteQueue { dir }
    }

    /// The `--queue` value: the file's path.
    pub fn spec(&self) -> String {
        self.dir.path().join("queue.sqlite").display().to_string()
    }
}

impl Default for SqliteQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// A small test message from sender@example.test, as `enqueue` reads it,
/// with `messageId` set to `<id>` (give `id` without angle brackets).
pub fn message_json(id: &str, to: &[&str]) -> Value {
    json!({
        "from": "Sender <sender@example.test>",
        "to": to,
        "subject": format!("Volume test {id}"),
        "text": format!("Message {id}.\n"),
        "messageId": format!("<{id}>"),
    })
}

/// `count` Message-IDs `<tag>-<n>@volume.test`, n from 0, distinct per tag.
pub fn message_ids(tag: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| format!("{tag}-{n}@volume.test"))
        .collect()
}

/// Runs the CLI with `args` and `stdin`; kills it after `timeout` (the output
/// then is what it wrote so far, with a signal as status).
pub fn run_cli_for(args: &[&str], stdin: &[u8], timeout: Duration) -> Output {
    let mut child = command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", cli_binary().display()));
    // Written from a thread: the CLI may write as much as it reads.
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = std::sync::Arc::clone(&done);
        thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: kill(2) on our own child's pid, not yet reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        })
    };
    let output = child.wait_with_output().expect("the CLI's output");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watchdog.join();
    let _ = writer.join();
    output
}

/// The CLI with `args`, the queue and relay variables cleared.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(cli_binary());
    command
        .args(args)
        .env_remove("SMTP_MAILER_QUEUE")
        .env_remove("SMTP_URL")
        .env_remove("SMTP_PASSWORD");
    command
}

/// `smtp-mailer enqueue --queue <queue>` with `messages` as JSON lines on
/// stdin. Asserts exit 0 and one `<queue-id>\t<message-id>` line per message,
/// with the message's own Message-ID; returns (queue id, Message-ID) pairs.
#[track_caller]
pub fn enqueue(queue: &str, messages: &[Value]) -> Vec<(String, String)> {
    let mut input = String::new();
    for message in messages {
        input.push_str(&message.to_string());
        input.push('\n');
    }
    let out = run_cli_for(
        &["enqueue", "--queue", queue],
        input.as_bytes(),
        Duration::from_secs(300),
    );
    check_enqueued(&out, messages)
}

/// Checks the output of an `enqueue` of `messages`: exit 0, and one line per
/// message, `<queue-id>\t<message-id>`, the Message-ID without angle brackets
/// and equal to the message's `messageId` when it has one.
#[track_caller]
pub fn check_enqueued(out: &Output, messages: &[Value]) -> Vec<(String, String)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "enqueue of {} message(s) failed; stderr:\n{stderr}\nstdout:\n{stdout}",
        messages.len()
    );
    let lines: Vec<(String, String)> = stdout
        .lines()
        .map(|line| match line.split_once('\t') {
            Some((queue_id, message_id)) if !queue_id.is_empty() && !message_id.is_empty() => {
                (queue_id.to_owned(), message_id.to_owned())
            }
            _ => panic!("enqueue: expected `<queue-id>\\t<message-id>`, got {line:?}"),
        })
        .collect();
    assert_eq!(
        lines.len(),
        messages.len(),
        "enqueue: one line per message expected; stdout:\n{stdout}"
    );
    for ((_, message_id), message) in lines.iter().zip(messages) {
        if let Some(given) = message["messageId"].as_str() {
            let given = given.trim_start_matches('<').trim_end_matches('>');
            assert_eq!(
                message_id, given,
                "enqueue: Message-ID changed; stdout:\n{stdout}"
            );
        }
    }
    lines
}

/// `smtp-mailer suppression <args> --queue <queue>`; asserts exit 0 and
/// returns stdout.
#[track_caller]
pub fn suppression(queue: &str, args: &[&str]) -> String {
    let mut all = vec!["suppression"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--queue", queue]);
    let out = run_cli_for(&all, b"", Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "`smtp-mailer {}` failed; stderr:\n{}\nstdout:\n{stdout}",
        all.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `suppression list` as (address, reason) pairs.
#[track_caller]
pub fn suppression_list(queue: &str) -> Vec<(String, String)> {
    suppression(queue, &["list"])
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once('\t') {
            Some((address, reason)) => (address.to_owned(), reason.to_owned()),
            None => panic!("suppression list: expected `ADDRESS\\tREASON`, got {line:?}"),
        })
        .collect()
}

/// A running `smtp-mailer worker`, killed when dropped. Its stdout and stderr
/// go to files, so they can be read while it runs.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    args: Vec<String>,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

/// How a worker ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// The JSON summary line of stdout
    /// (`{"delivered","deferred","bounced","suppressed","failed"}`), or
    /// `Value::Null` when there was none.
    pub summary: Value,
    /// The JSON events of stderr, in order.
    pub events: Vec<Value>,
    /// All of stdout.
    pub stdout: String,
    /// All of stderr.
    pub stderr: String,
}

impl Finished {
    /// A count of the summary (0 when missing).
    pub fn count(&self, outcome: &str) -> u64 {
        self.summary[outcome].as_u64().unwrap_or_default()
    }

    /// Asserts exit 0 and a summary line, showing the output otherwise.
    #[track_caller]
    pub fn assert_success(&self) {
        assert_eq!(
            self.status.code(),
            Some(0),
            "the worker failed ({}); {}",
            self.status,
            self.output()
        );
        assert!(
            self.summary.is_object(),
            "the worker printed no JSON summary on stdout; {}",
            self.output()
        );
    }

    /// Stdout and the end of stderr, for panic messages.
    pub fn output(&self) -> String {
        let start = self.stderr.len().saturating_sub(6000);
        let start = (start..self.stderr.len())
            .find(|&i| self.stderr.is_char_boundary(i))
            .unwrap_or(start);
        format!(
            "stdout:\n{}\nstderr (end):\n{}",
            self.stdout,
            &self.stderr[start..]
        )
    }

    /// The events named `event` (`delivered`, `deferred`, ...).
    pub fn events_named(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }

    /// Whether an event named `event` lists `recipient`.
    pub fn has_event_for(&self, event: &str, recipient: &str) -> bool {
        self.events_named(event)
            .iter()
            .any(|e| lists(&e["recipients"], recipient))
    }
}

/// Whether a JSON array of recipients holds `recipient` (as a string, or as
/// an object with an `address`).
fn lists(recipients: &Value, recipient: &str) -> bool {
    recipients.as_array().is_some_and(|items| {
        items.iter().any(|item| {
            item.as_str() == Some(recipient) || item["address"].as_str() == Some(recipient)
        })
    })
}

impl Worker {
    /// Starts `smtp-mailer worker --queue <queue> --server <url>... <extra>`.
    pub fn spawn(queue: &str, servers: &[String], extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("worker-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let stdout = dir.path().join("stdout");
        let stderr = dir.path().join("stderr");
        let mut args: Vec<String> = vec!["worker".into(), "--queue".into(), queue.into()];
        for server in servers {
            args.push("--server".into());
            args.push(server.clone());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = command(&arg_refs)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("worker stdout file"))
            .stderr(File::create(&stderr).expect("worker stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cli_binary().display()));
        Worker {
            child,
            args,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The JSON events written to stderr so far.
    pub fn events(&self) -> Vec<Value> {
        json_objects(&read_lossy(&self.stderr))
            .into_iter()
            .filter(|v| v.get("event").is_some())
            .collect()
    }

    /// Whether it is still running; panics, with its output, if it exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "`smtp-mailer {}` exited early ({status}); stdout:\n{}\nstderr:\n{}",
                self.args.join(" "),
                read_lossy(&self.stdout),
                read_lossy(&self.stderr)
            );
        }
    }

    /// Waits for it to exit on its own; kills it and panics, with its output,
    /// after `timeout`.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let (finished, exited) = self.wait_or_kill(timeout);
        if !exited {
            panic!(
                "`smtp-mailer {}` did not exit within {timeout:?}; {}",
                self.args.join(" "),
                finished.output()
            );
        }
        finished
    }

    /// Sends SIGTERM and waits up to `grace` for it to exit, then SIGKILL.
    pub fn terminate(mut self, grace: Duration) -> Finished {
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.wait_or_kill(grace).0
    }

    /// SIGKILL (as a crash), and reaps it.
    pub fn kill(mut self) -> Finished {
        self.kill_and_reap()
    }

    /// Waits up to `timeout` for it to exit, then SIGKILL: what it left, and
    /// whether it exited by itself.
    fn wait_or_kill(&mut self, timeout: Duration) -> (Finished, bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (self.finished(status), true);
            }
            if Instant::now() >= deadline {
                return (self.kill_and_reap(), false);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and reaps it.
    fn kill_and_reap(&mut self) -> Finished {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait");
        self.finished(status)
    }

    fn finished(&self, status: ExitStatus) -> Finished {
        let stdout = read_lossy(&self.stdout);
        let stderr = read_lossy(&self.stderr);
        let summary = json_objects(&stdout)
            .into_iter()
            .rev()
            .find(|v| v.get("delivered").is_some())
            .unwrap_or(Value::Null);
        let events = json_objects(&stderr)
            .into_iter()
            .filter(|v| v.get("event").is_some())
            .collect();
        Finished {
            status,
            summary,
            events,
            stdout,
            stderr,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

/// The lines of `text` that are JSON objects.
fn json_objects(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| line.trim_start().starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

/// The Message-ID of a received message, without angle brackets.
#[track_caller]
pub fn received_id(message: &Received) -> String {
    parse(&message.data)
        .message_id()
        .unwrap_or_else(|| {
            panic!(
                "a received message has no Message-ID:\n{}",
                String::from_utf8_lossy(&message.data)
            )
        })
        .to_owned()
}

/// How many times each Message-ID arrived.
pub fn arrivals_by_id(received: &[Received]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for message in received {
        *counts.entry(received_id(message)).or_insert(0) += 1;
    }
    counts
}

/// Asserts that every one of `expected` arrived exactly once and nothing
/// else arrived.
#[track_caller]
pub fn assert_each_once(received: &[Received], expected: &[String]) {
    let counts = arrivals_by_id(received);
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let unexpected: Vec<&String> = counts.keys().filter(|id| !expected.contains(id)).collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && unexpected.is_empty(),
        "each of {} message(s) should arrive exactly once; {} arrived; \
         missing: {missing:?}; more than once: {repeated:?}; unexpected: {unexpected:?}",
        expected.len(),
        received.len()
    );
}

/// Calls `check` every 100 ms until it answers true; panics after `timeout`
/// saying what was awaited.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// The samples of a Prometheus text exposition, by series: the name and its
/// labels as written, without spaces (`m{outcome="delivered"}`), to the value.
pub fn prometheus_samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            // The value follows the last space after the labels' `}`, or the
            // first space without labels; a timestamp may follow it.
            let (series, rest) = match line.find('}') {
                Some(end) => (&line[..=end], line[end + 1..].trim()),
                None => line.split_once(' ')?,
            };
            let value = rest.split_whitespace().next()?;
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().ok()?,
            };
            let series: String = series.chars().filter(|c| !c.is_whitespace()).collect();
            Some((series, value))
        })
        .collect()
}
