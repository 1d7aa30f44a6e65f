//! A 100 MiB attachment streamed from disk through the real component and
//! host: throughput, peak guest memory, and the CLI's peak RSS, after DATA
//! (aiosmtpd) and in BDAT chunks (Exim, which needs root). Prints one
//! table; run with `cargo bench -p smtp-mailer-tests --bench large` after
//! `scripts/install-test-tools.sh`.

use std::process::Command;
use std::time::{Duration, Instant};

use smtp_mailer_host::{Attachment, Content, Mailer};
use smtp_mailer_tests::large::{process_cpu_seconds, random_file, run_measured};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions, Exim, EximOptions};
use smtp_mailer_tests::support::{cli_binary, loopback, message};

const SIZE: usize = 100 << 20;
const WAIT: Duration = Duration::from_secs(300);

fn mib(bytes: f64) -> f64 {
    bytes / (1 << 20) as f64
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, _) = random_file(dir.path(), "report.bin", SIZE);
    let mut msg = message(&["bob@example.test"]);
    msg.attachments.push(Attachment {
        filename: "report.bin".into(),
        content_type: "application/octet-stream".into(),
        content: Content::File(path.clone()),
        content_id: None,
    });
    let mailer = Mailer::new().expect("the mailer loads");
    let mut rows: Vec<(String, String)> = Vec::new();

    // Library, one session: after DATA (aiosmtpd) and in BDAT chunks (Exim).
    let aiosmtpd = Aiosmtpd::start_with(AiosmtpdOptions {
        size_limit: Some(300 << 20),
        ..Default::default()
    });
    let exim = Exim::start_with(EximOptions {
        size_limit: Some(300 << 20),
        ..Default::default()
    });
    let servers: [(&str, u16, &dyn Fn() -> usize); 2] = [
        ("aiosmtpd, DATA", aiosmtpd.port(), &|| {
            aiosmtpd.wait_for(1, WAIT).len()
        }),
        ("Exim, BDAT", exim.port(), &|| exim.wait_for(1, WAIT).len()),
    ];
    for (name, port, stored) in servers {
        let mut session = mailer.open_session(&loopback(port)).expect("open");
        let started = Instant::now();
        let cpu = process_cpu_seconds();
        session.send(&msg).expect("send");
        let cpu = process_cpu_seconds() - cpu;
        let elapsed = started.elapsed();
        let peak = session.peak_memory();
        session.close().expect("close");
        assert_eq!(stored(), 1, "{name}: the message was stored");
        rows.push((
            format!("100 MiB attachment, {name}: time, throughput, host CPU"),
            format!(
                "{:.2} s, {:.1} MiB/s of file, {:.2} s",
                elapsed.as_secs_f64(),
                mib(SIZE as f64) / elapsed.as_secs_f64(),
                cpu
            ),
        ));
        rows.push((
            format!("100 MiB attachment, {name}: peak guest memory"),
            format!("{:.2} MiB", mib(peak as f64)),
        ));
    }

    // The CLI, as a process: peak RSS of the whole host.
    let url = format!(
        "smtp://127.0.0.1:{}?security=plaintext-insecure",
        exim.port()
    );
    let mut command = Command::new(cli_binary());
    command
        .args(["send", "--server", &url, "--from", "a@example.test"])
        .args([
            "--to",
            "bob@example.test",
            "--subject",
            "report",
            "--text",
            "attached",
        ])
        .arg("--attach")
        .arg(&path)
        .args(["--memory-limit", "16"]);
    let started = Instant::now();
    let run = run_measured(command);
    let elapsed = started.elapsed();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    rows.push((
        "CLI, 100 MiB attachment to Exim: time, CPU time, peak RSS".into(),
        format!(
            "{:.2} s, {:.2} s, {:.1} MiB",
            elapsed.as_secs_f64(),
            run.cpu_seconds,
            mib(run.max_rss as f64)
        ),
    ));

    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("| {:width$} | result |", "measure");
    println!("|{}|---|", "-".repeat(width + 2));
    for (measure, result) in rows {
        println!("| {measure:width$} | {result} |");
    }
}
