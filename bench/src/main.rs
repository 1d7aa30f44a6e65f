//! `smtp-mailer-bench`: SmtpMailer side by side with the best senders, in
//! one run, against one Postfix `smtp-sink` on loopback. `scripts/bench`
//! installs the tools and runs it; BENCHMARKS.md holds a run's table.
//!
//! ```text
//! smtp-mailer-bench [--postfix DIR] [--scale X] [--no-callgrind]
//! smtp-mailer-bench worker component|native|lettre ADDRESS COUNT
//! ```
//!
//! The worker sends COUNT messages over one connection and prints its peak
//! resident memory; the benchmark runs it under callgrind and for RSS.

mod callgrind;
mod coldstart;
mod component;
mod lettre_client;
mod native;
mod postfix;
mod stats;
mod turns;
mod workload;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use smtp_mailer_host::{Mailer, MailerCtxBuilder, Message, Security, Server, COMPONENT};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::tls::TestPki;

use stats::{bytes, ms, rate, thousands, Row, Timings};

/// Rounds of the send loops; each sender's best round is kept.
const ROUNDS: usize = 3;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") => worker(&args[1..]),
        _ => Options::parse(&args).and_then(run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtp-mailer-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    /// The unpacked postfix package.
    postfix: PathBuf,
    /// Multiplies every loop's count: 0.2 for a quick look.
    scale: f64,
    callgrind: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, BoxError> {
        let mut options = Options {
            postfix: target_dir().join("bench-tools/postfix"),
            scale: 1.0,
            callgrind: true,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--postfix" => options.postfix = args.next().ok_or("--postfix DIR")?.into(),
                "--scale" => {
                    options.scale = args
                        .next()
                        .and_then(|s| s.parse().ok())
                        .filter(|s: &f64| *s > 0.0)
                        .ok_or("--scale takes a positive number")?
                }
                "--no-callgrind" => options.callgrind = false,
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: smtp-mailer-bench \
                         [--postfix DIR] [--scale X] [--no-callgrind]"
                    )
                    .into())
                }
            }
        }
        Ok(options)
    }

    fn count(&self, n: usize) -> usize {
        ((n as f64 * self.scale).round() as usize).max(10)
    }
}

/// `target/` beside this executable's `release/` folder.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Plaintext settings for the sink, as the tests use them.
fn loopback(address: SocketAddr) -> Server {
    let mut server = Server::new(address.ip().to_string(), address.port()).plaintext_insecure();
    server.client_name = Some("bench.example".into());
    server
}

fn worker(args: &[String]) -> Result<(), BoxError> {
    let (kind, count, address) = match args {
        [kind, count] => (kind, count, None),
        [kind, count, address] => (kind, count, Some(address.parse::<SocketAddr>()?)),
        _ => return Err(WORKER_USAGE.into()),
    };
    let count: usize = count.parse()?;
    let needs_address = || address.ok_or(WORKER_USAGE);
    match kind.as_str() {
        "component" => {
            let mailer = Mailer::new()?;
            let message = workload::host_message();
            let mut session = mailer.open_session(&loopback(needs_address()?))?;
            for _ in 0..count {
                session.send(&message)?;
            }
            session.close()?;
        }
        "component-fresh" => {
            let mailer = Mailer::new()?;
            let message = workload::host_message();
            let server = loopback(needs_address()?);
            for _ in 0..count {
                mailer.send(&server, &message)?;
            }
        }
        "native-fresh" => {
            let address = needs_address()?;
            for _ in 0..count {
                let mut session = native::Session::open(address, None)?;
                session.send_message()?;
                session.quit()?;
            }
        }
        "native" => {
            let mut session = native::Session::open(needs_address()?, None)?;
            for _ in 0..count {
                session.send_message()?;
            }
            session.quit()?;
        }
        "lettre" => {
            let mut session = lettre_client::Session::open(needs_address()?)?;
            for _ in 0..count {
                session.send_message()?;
            }
            session.quit()?;
        }
        "build-wasm" => {
            let mailer = Mailer::new()?;
            let mut builder = component::Builder::from_mailer(&mailer)?;
            let message = workload::RichParts::new().host_message();
            for _ in 0..count {
                builder.build(&message)?;
            }
        }
        "build-core" => {
            let rich = workload::RichParts::new();
            for serial in 0..count {
                rich.core_message()
                    .build(&workload::build_context(serial as u64))?;
            }
        }
        "build-mail-builder" => {
            let rich = workload::RichParts::new();
            for serial in 0..count {
                mail_builder_message(&rich, serial as u64)?;
            }
        }
        other => return Err(format!("unknown worker {other:?}; {WORKER_USAGE}").into()),
    }
    println!("vmhwm_kb={}", vmhwm_kb().unwrap_or(0));
    Ok(())
}

const WORKER_USAGE: &str = "usage: smtp-mailer-bench worker \
    component|native|lettre|component-fresh|native-fresh COUNT ADDRESS, or build-wasm|build-core|build-mail-builder COUNT";

/// The MIME row's message built by mail-builder alone, natively.
fn mail_builder_message(rich: &workload::RichParts, serial: u64) -> std::io::Result<Vec<u8>> {
    mail_builder::MessageBuilder::new()
        .from((workload::FROM_NAME, workload::FROM))
        .to(workload::TO)
        .subject(workload::SUBJECT)
        .message_id(format!("{serial}@example.test"))
        .date(mail_builder::headers::date::Date::new(1_700_000_000))
        .text_body(rich.text.as_str())
        .html_body(rich.html.as_str())
        .attachment(
            workload::ATTACHMENT_TYPE,
            workload::ATTACHMENT_NAME,
            rich.attachment.as_slice(),
        )
        .write_to_vec()
}

/// This process's peak resident set, in KiB.
fn vmhwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs a worker (not under valgrind) and returns its peak RSS in bytes.
fn worker_rss(kind: &str, address: SocketAddr, count: usize) -> Result<usize, BoxError> {
    let output = Command::new(std::env::current_exe()?)
        .args(["worker", kind, &count.to_string(), &address.to_string()])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "the {kind} worker failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let kb: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("vmhwm_kb="))
        .and_then(|v| v.parse().ok())
        .ok_or("the worker printed no vmhwm_kb")?;
    Ok(kb * 1024)
}

fn step(what: &str) {
    eprintln!("bench: {what}");
}

fn run(options: Options) -> Result<(), BoxError> {
    let tools = postfix::Tools::new(&options.postfix)?;
    let work = target_dir().join("bench");
    std::fs::create_dir_all(&work)?;

    step("loading the component (compiling it once into the cache if needed)");
    drop(Mailer::new()?);
    let mailer = Mailer::new()?;
    let sink = postfix::Sink::start(&tools)?;
    let address = sink.address;
    let server = loopback(address);
    let message = workload::host_message();
    let size = workload::core_message()
        .build(&workload::build_context(0))?
        .bytes
        .len();

    // 1. One reused connection, and 2. a new connection per message: each
    // sender in turn, ROUNDS times, keeping each sender's best round, so
    // that a burst of load on this shared machine hits no sender alone.
    let reused = options.count(2000);
    let fresh = options.count(500);
    step(&format!(
        "reused session ({reused} messages) and new connection per message ({fresh}), \
         {ROUNDS} rounds per sender"
    ));
    let mut rounds: [Vec<Timings>; 5] = Default::default();
    let mut source_reused = Duration::MAX;
    let mut source_fresh = Duration::MAX;
    for _ in 0..ROUNDS {
        let mut session = mailer.open_session(&server)?;
        for _ in 0..20 {
            session.send(&message)?;
        }
        rounds[0].push(Timings::measure(reused, || {
            session.send(&message).map(drop)
        })?);
        session.close()?;

        let mut native_session = native::Session::open(address, None)?;
        for _ in 0..20 {
            native_session.send_message()?;
        }
        rounds[1].push(Timings::measure(reused, || native_session.send_message())?);
        native_session.quit()?;

        let mut lettre_session = lettre_client::Session::open(address)?;
        for _ in 0..20 {
            lettre_session.send_message()?;
        }
        rounds[2].push(Timings::measure(reused, || lettre_session.send_message())?);
        lettre_session.quit()?;

        source_reused = source_reused.min(tools.source(address, reused, size, true)?);

        rounds[3].push(Timings::measure(fresh, || {
            mailer.send(&server, &message).map(drop)
        })?);
        rounds[4].push(Timings::measure(fresh, || {
            let mut s = native::Session::open(address, None)?;
            s.send_message()?;
            s.quit()
        })?);
        source_fresh = source_fresh.min(tools.source(address, fresh, size, false)?);
    }
    let [component_reused, native_reused, lettre_reused, component_fresh, native_fresh] =
        rounds.map(Timings::rounds);
    let source_reused_rate = reused as f64 / source_reused.as_secs_f64();
    let source_fresh_rate = fresh as f64 / source_fresh.as_secs_f64();

    // 2b. A server without PIPELINING (smtp-sink -p): each command waits
    // for its reply. The rate over a reused session, and the round trips
    // per message with and without PIPELINING, counted by a relay.
    let strict = options.count(1000);
    step(&format!(
        "reused session against smtp-sink -p (no PIPELINING): {strict} messages, \
         {ROUNDS} rounds per sender; round trips per message"
    ));
    let strict_sink = postfix::Sink::start_with(&tools, false)?;
    let strict_address = strict_sink.address;
    let strict_server = loopback(strict_address);
    let mut strict_rounds: [Vec<Timings>; 2] = Default::default();
    let mut source_strict = Duration::MAX;
    for _ in 0..ROUNDS {
        let mut session = mailer.open_session(&strict_server)?;
        for _ in 0..20 {
            session.send(&message)?;
        }
        strict_rounds[0].push(Timings::measure(strict, || {
            session.send(&message).map(drop).map_err(BoxError::from)
        })?);
        session.close()?;

        let mut native_session = native::Session::open(strict_address, None)?;
        for _ in 0..20 {
            native_session.send_message()?;
        }
        strict_rounds[1].push(Timings::measure(strict, || native_session.send_message())?);
        native_session.quit()?;

        source_strict = source_strict.min(tools.source(strict_address, strict, size, true)?);
    }
    let [component_strict, native_strict] = strict_rounds.map(Timings::rounds);
    let source_strict_rate = strict as f64 / source_strict.as_secs_f64();
    let counted = options.count(50);
    let round_trips = RoundTrips {
        component_pipelining: component_round_trips(&mailer, address, &message, counted)?,
        component_strict: component_round_trips(&mailer, strict_address, &message, counted)?,
        source_pipelining: source_round_trips(&tools, address, size, counted)?,
        source_strict: source_round_trips(&tools, strict_address, size, counted)?,
    };
    drop(strict_sink);

    // 3. STARTTLS on a new connection, against aiosmtpd.
    let tls_count = options.count(40);
    step(&format!("STARTTLS sends: {tls_count} per client, aiosmtpd"));
    let pki = TestPki::generate();
    let tls_sink = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        ..Default::default()
    });
    let mut tls_server = Server::new("localhost", tls_sink.port());
    tls_server.connect_address = Some("127.0.0.1".into());
    tls_server.security = Security::StarttlsRequired;
    tls_server.ca_pem = Some(pki.ca_pem.clone());
    tls_server.client_name = Some("bench.example".into());
    let tls_address = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), tls_sink.port());
    let native_tls_send = || -> Result<(), BoxError> {
        let tls = native::Tls {
            config: native::tls_config(&pki.ca_pem),
            host: "localhost".into(),
        };
        let mut s = native::Session::open(tls_address, Some(tls))?;
        s.send_message()?;
        s.quit()?;
        Ok(())
    };
    for _ in 0..3 {
        mailer.send(&tls_server, &message)?;
        native_tls_send()?;
    }
    let component_tls =
        Timings::measure(tls_count, || mailer.send(&tls_server, &message).map(drop))?;
    let native_tls = Timings::measure(tls_count, native_tls_send)?;
    drop(tls_sink);

    // 4. Instructions per message.
    let instructions = if options.callgrind && callgrind::available() {
        let n1 = options.count(50);
        let n2 = n1 + options.count(200);
        step(&format!(
            "callgrind: {n1} and {n2} messages per sender (slow: the component runs ~50x slower)"
        ));
        let at = Some(address);
        let component = callgrind::per_message("component", at, n1, n2, &work)?;
        let native = callgrind::per_message("native", at, n1, n2, &work)?;
        let lettre = callgrind::per_message("lettre", at, n1, n2, &work)?;
        let f1 = options.count(20);
        let f2 = f1 + options.count(100);
        step(&format!(
            "callgrind: new connection per message, {f1} and {f2} per sender"
        ));
        let component_fresh = callgrind::per_message("component-fresh", at, f1, f2, &work)?;
        let native_fresh = callgrind::per_message("native-fresh", at, f1, f2, &work)?;
        let b1 = options.count(20);
        let b2 = b1 + options.count(50);
        step(&format!(
            "callgrind: MIME builds, {b1} and {b2} per builder"
        ));
        let build_wasm = callgrind::per_message("build-wasm", None, b1, b2, &work)?;
        let build_core = callgrind::per_message("build-core", None, b1, b2, &work)?;
        let build_mb = callgrind::per_message("build-mail-builder", None, b1, b2, &work)?;
        Some(Profiles {
            component,
            native,
            lettre,
            build_wasm,
            build_core,
            build_mb,
            component_fresh,
            native_fresh,
            sends: (n1, n2),
            fresh: (f1, f2),
            builds: (b1, b2),
        })
    } else {
        step("callgrind skipped (--no-callgrind, or valgrind missing)");
        None
    };

    // 5. MIME building.
    let mime = options.count(300);
    step(&format!("MIME building: {mime} messages per builder"));
    let rich = workload::RichParts::new();
    let rich_host = rich.host_message();
    let watched = component::Watched::new(&mailer)?;
    let mut builder = watched.builder()?;
    for _ in 0..10 {
        builder.build(&rich_host)?;
    }
    let wasm_build = Timings::measure(mime, || builder.build(&rich_host).map(drop))?;
    let build_memory = builder.peak_memory();
    let wasm_fresh_build = Timings::measure(mime, || mailer.build_message(&rich_host).map(drop))?;
    let mut serial = 0;
    let core_build = Timings::measure(mime, || {
        serial += 1;
        rich.core_message()
            .build(&workload::build_context(serial))
            .map(drop)
    })?;
    let mail_builder = Timings::measure(mime, || {
        serial += 1;
        mail_builder_message(&rich, serial).map(drop)
    })?;

    // 6. Cold start and load times.
    step("cold start of the CLI, load and instantiate times");
    let cli = target_dir().join("release/smtp-mailer");
    let mut cold = Vec::new();
    if cli.exists() {
        coldstart::cli_once(&cli)?; // warms the page cache and the code cache
        for _ in 0..options.count(15) {
            cold.push(coldstart::cli_once(&cli)?);
        }
    }
    let load = Timings::measure(options.count(10), || Mailer::new().map(drop))?;
    let instantiate = Timings::measure(options.count(300), || {
        mailer.instantiate(MailerCtxBuilder::new()).map(drop)
    })?;
    let compile_started = Instant::now();
    drop(Mailer::builder().cache_dir(None).build()?);
    let compile = compile_started.elapsed();

    // 7. Memory.
    step("memory");
    let send_memory = watched.memory_of_send(address, &server, &message)?;
    let session_count = options.count(1000);
    let session_memory = watched.memory_of_session(address, &server, &message, session_count)?;
    let host_rss = worker_rss("component", address, session_count)?;
    let lettre_rss = worker_rss("lettre", address, session_count)?;
    drop(sink);

    // The table.
    let reused_ratio = component_reused.best / source_reused_rate;
    let fresh_ratio = component_fresh.best / source_fresh_rate;
    let mut sends = vec![
        Row::new(
            format!("reused session, {reused} msgs: component (host library session)"),
            rate(component_reused.best),
        )
        .against(
            format!("{} smtp-source -d", rate(source_reused_rate)),
            reused_ratio,
        )
        .target(">= 1.0x smtp-source -d", reused_ratio >= 1.0),
        Row::new(
            "reused session: same core, native",
            rate(native_reused.best),
        )
        .against(
            format!("{} smtp-source -d", rate(source_reused_rate)),
            native_reused.best / source_reused_rate,
        ),
        Row::new(
            "reused session: component vs lettre 0.11 (TCP_NODELAY forced)",
            rate(component_reused.best),
        )
        .against(
            format!("{} lettre", rate(lettre_reused.best)),
            component_reused.best / lettre_reused.best,
        ),
        Row::new(
            "reused session: component vs the same core native",
            rate(component_reused.best),
        )
        .against(
            format!("{} native core", rate(native_reused.best)),
            component_reused.best / native_reused.best,
        ),
        Row::new(
            "reused session, per send: component",
            component_reused.all.latencies(),
        )
        .reference(format!("native core: {}", native_reused.all.latencies()))
        .target("no 40 ms stall", component_reused.all.stalls() == 0),
        Row::new(
            "reused session, per send: lettre",
            lettre_reused.all.latencies(),
        ),
        Row::new(
            format!("reused session, no PIPELINING (smtp-sink -p), {strict} msgs: component"),
            rate(component_strict.best),
        )
        .against(
            format!("{} smtp-source -d", rate(source_strict_rate)),
            component_strict.best / source_strict_rate,
        ),
        Row::new(
            "reused session, no PIPELINING: same core, native",
            rate(native_strict.best),
        )
        .against(
            format!("{} smtp-source -d", rate(source_strict_rate)),
            native_strict.best / source_strict_rate,
        ),
        Row::new(
            "reused session, no PIPELINING, per send: component",
            component_strict.all.latencies(),
        )
        .reference(format!("native core: {}", native_strict.all.latencies()))
        .target("no 40 ms stall", component_strict.all.stalls() == 0),
        Row::new(
            format!(
                "round trips per message, reused session, PIPELINING (smtp-sink; {counted} msgs \
                 through a counting relay): component"
            ),
            format!("{:.2}", round_trips.component_pipelining),
        )
        .reference(format!(
            "{:.2} smtp-source -d",
            round_trips.source_pipelining
        ))
        .target(
            "2 (MAIL RCPT DATA, then the content)",
            round_trips.component_pipelining == 2.0,
        ),
        Row::new(
            "round trips per message, reused session, no PIPELINING (smtp-sink -p): component",
            format!("{:.2}", round_trips.component_strict),
        )
        .reference(format!("{:.2} smtp-source -d", round_trips.source_strict))
        .target(
            "4 (MAIL, RCPT, DATA, the content)",
            round_trips.component_strict == 4.0,
        ),
        Row::new(
            format!("new connection per message, {fresh} msgs: component"),
            rate(component_fresh.best),
        )
        .against(
            format!("{} smtp-source", rate(source_fresh_rate)),
            fresh_ratio,
        )
        .target(">= 0.8x smtp-source", fresh_ratio >= 0.8),
        Row::new(
            "new connection per message: same core, native",
            rate(native_fresh.best),
        )
        .against(
            format!("{} smtp-source", rate(source_fresh_rate)),
            native_fresh.best / source_fresh_rate,
        ),
        Row::new(
            "new connection, per send: component",
            component_fresh.all.latencies(),
        )
        .reference(format!("native core: {}", native_fresh.all.latencies()))
        .target("no 40 ms stall", component_fresh.all.stalls() == 0),
        Row::new(
            format!("STARTTLS send on a new connection (aiosmtpd), {tls_count} sends: median"),
            ms(component_tls.quantile(0.5)),
        )
        .against(
            format!("{} native core + rustls", ms(native_tls.quantile(0.5))),
            component_tls.quantile(0.5).as_secs_f64() / native_tls.quantile(0.5).as_secs_f64(),
        )
        .note("time ratio: lower is better"),
        Row::new(
            "STARTTLS send, per send: component",
            component_tls.latencies(),
        )
        .reference(format!("native: {}", native_tls.latencies()))
        .target("no 40 ms stall", component_tls.stalls() == 0),
    ];
    if let Some(Profiles {
        component,
        native,
        lettre,
        component_fresh,
        native_fresh,
        sends: (n1, n2),
        fresh: (f1, f2),
        ..
    }) = &instructions
    {
        let ratio = component.instructions / lettre.instructions;
        sends.push(
            Row::new(
                format!("instructions per message, reused session (callgrind, {n2} - {n1} msgs): component + host"),
                thousands(component.instructions.round() as u64),
            )
            .against(
                format!("{} lettre", thousands(lettre.instructions.round() as u64)),
                ratio,
            )
            .target("<= 1.5x lettre", ratio <= 1.5),
        );
        sends.push(
            Row::new(
                "instructions per message: same core, native",
                thousands(native.instructions.round() as u64),
            )
            .against(
                format!("{} lettre", thousands(lettre.instructions.round() as u64)),
                native.instructions / lettre.instructions,
            ),
        );
        sends.push(
            Row::new(
                format!("instructions per message, new connection each (callgrind, {f2} - {f1} msgs): component + host"),
                thousands(component_fresh.instructions.round() as u64),
            )
            .against(
                format!("{} native core", thousands(native_fresh.instructions.round() as u64)),
                component_fresh.instructions / native_fresh.instructions,
            ),
        );
    }
    let build_ratio = wasm_build.per_second() / mail_builder.per_second();
    let build = vec![
        Row::new(
            format!("MIME build, text + html + 100 KB attachment, {mime} msgs: wasm (`build` export, one instance)"),
            rate(wasm_build.per_second()),
        )
        .against(
            format!("{} native mail-builder", rate(mail_builder.per_second())),
            build_ratio,
        )
        .target(">= 0.5x native", build_ratio >= 0.5),
        Row::new(
            "MIME build: wasm vs the same core native (checks + mail-builder + CRLF pass)",
            rate(wasm_build.per_second()),
        )
        .against(
            format!("{} native core", rate(core_build.per_second())),
            wasm_build.per_second() / core_build.per_second(),
        ),
        Row::new(
            "MIME build: `Mailer::build_message` (a fresh store per build)",
            rate(wasm_fresh_build.per_second()),
        )
        .against(
            format!("{} native mail-builder", rate(mail_builder.per_second())),
            wasm_fresh_build.per_second() / mail_builder.per_second(),
        ),
    ];
    let mut start = Vec::new();
    if !cold.is_empty() {
        let mut connected: Vec<Duration> = cold.iter().map(|c| c.connected).collect();
        let mut first: Vec<Duration> = cold.iter().map(|c| c.first_byte).collect();
        connected.sort();
        first.sort();
        start.push(
            Row::new(
                format!(
                    "CLI process start to first byte on the wire (EHLO), warm cache, median of {}",
                    first.len()
                ),
                ms(first[first.len() / 2]),
            )
            .reference(format!(
                "to connect: {}; fastest first byte: {}",
                ms(connected[connected.len() / 2]),
                ms(first[0])
            )),
        );
    }
    start.push(Row::new(
        "component load, warm cache (`Mailer::new`): median",
        ms(load.quantile(0.5)),
    ));
    start.push(Row::new(
        "component compile, no cache (Cranelift, 2 cores)",
        ms(compile),
    ));
    start.push(Row::new(
        "instantiate (fresh store + instance): median",
        ms(instantiate.quantile(0.5)),
    ));
    let memory = vec![
        Row::new(
            format!("peak RSS, host process, session of {session_count} sends"),
            bytes(host_rss),
        )
        .against(
            format!("{} lettre process", bytes(lettre_rss)),
            host_rss as f64 / lettre_rss as f64,
        ),
        Row::new(
            "guest linear memory, one send (fresh store)",
            bytes(send_memory),
        ),
        Row::new(
            format!("guest linear memory, session of {session_count} sends"),
            bytes(session_memory),
        ),
        Row::new(
            "guest linear memory, MIME builds with a 100 KB attachment",
            bytes(build_memory),
        ),
        Row::new("component size (`COMPONENT`)", bytes(COMPONENT.len()))
            .reference(format!("{} bytes", thousands(COMPONENT.len() as u64))),
    ];

    println!("## SmtpMailer benchmarks");
    println!(
        "\nAll rows from one run, against one Postfix smtp-sink on {address} \
         (aiosmtpd with STARTTLS for the TLS row); messages of {size} bytes \
         (smtp-source: -l {size}). Rates are each sender's best of {ROUNDS} rounds, sender after \
         sender; latencies cover every round. Ratios compare SmtpMailer with the reference of \
         the same row."
    );
    println!("\nMachine: {}.", machine());
    stats::print_table("Sending", &sends);
    stats::print_table("MIME building", &build);
    stats::print_table("Start-up", &start);
    stats::print_table("Memory and size", &memory);
    if let Some(p) = &instructions {
        let (b1, b2) = p.builds;
        let builds = vec![
            Row::new(
                format!("instructions per MIME build (callgrind, {b2} - {b1} builds): wasm + host"),
                thousands(p.build_wasm.instructions.round() as u64),
            )
            .against(
                format!(
                    "{} native mail-builder",
                    thousands(p.build_mb.instructions.round() as u64)
                ),
                p.build_wasm.instructions / p.build_mb.instructions,
            ),
            Row::new(
                "instructions per MIME build: wasm vs the same core native",
                thousands(p.build_wasm.instructions.round() as u64),
            )
            .against(
                format!(
                    "{} native core",
                    thousands(p.build_core.instructions.round() as u64)
                ),
                p.build_wasm.instructions / p.build_core.instructions,
            ),
        ];
        stats::print_table("MIME building, instructions", &builds);
        print_breakdown(
            "one send over a reused session, component + host",
            &p.component,
            20,
        );
        print_breakdown(
            "one send over a reused session, same core native",
            &p.native,
            12,
        );
        print_breakdown("one send over a reused session, lettre", &p.lettre, 12);
        print_breakdown(
            "one send on a new connection, component + host",
            &p.component_fresh,
            15,
        );
        print_breakdown(
            "one send on a new connection, same core native",
            &p.native_fresh,
            8,
        );
        print_breakdown(
            "one MIME build in wasm, through the host",
            &p.build_wasm,
            12,
        );
        print_breakdown("one MIME build, same core native", &p.build_core, 12);
        print_breakdown("one MIME build, mail-builder native", &p.build_mb, 8);
    }
    Ok(())
}

/// Cores, CPU model, kernel and compiler of this machine.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_else(|_| "unknown kernel".into());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc unknown".into());
    format!("{cores} cores, {cpu}, {kernel}, {rustc}")
}

/// Round trips per message over a reused session, counted by a relay.
struct RoundTrips {
    component_pipelining: f64,
    component_strict: f64,
    source_pipelining: f64,
    source_strict: f64,
}

/// The component's round trips per message over a session to `sink`: the
/// client's turns at a relay over `count` sends, the opening left out.
fn component_round_trips(
    mailer: &Mailer,
    sink: SocketAddr,
    message: &Message,
    count: usize,
) -> Result<f64, BoxError> {
    let relay = turns::Relay::start(sink)?;
    let mut session = mailer.open_session(&loopback(relay.address))?;
    session.send(message)?;
    let before = relay.turns();
    for _ in 0..count {
        session.send(message)?;
    }
    let after = relay.turns();
    session.close()?;
    Ok((after - before) as f64 / count as f64)
}

/// `smtp-source -d`'s round trips per message to `sink`: the difference
/// between runs of `count` and `2 * count` messages, which cancels the
/// opening and the goodbye.
fn source_round_trips(
    tools: &postfix::Tools,
    sink: SocketAddr,
    size: usize,
    count: usize,
) -> Result<f64, BoxError> {
    let mut turns = Vec::new();
    for messages in [count, 2 * count] {
        let relay = turns::Relay::start(sink)?;
        tools.source(relay.address, messages, size, true)?;
        let counted = relay.turns();
        drop(relay);
        turns.push(counted);
    }
    Ok((turns[1] as f64 - turns[0] as f64) / count as f64)
}

/// The callgrind results of one run.
struct Profiles {
    component: callgrind::PerMessage,
    native: callgrind::PerMessage,
    lettre: callgrind::PerMessage,
    build_wasm: callgrind::PerMessage,
    build_core: callgrind::PerMessage,
    build_mb: callgrind::PerMessage,
    component_fresh: callgrind::PerMessage,
    native_fresh: callgrind::PerMessage,
    sends: (usize, usize),
    fresh: (usize, usize),
    builds: (usize, usize),
}

/// Where the instructions of one message go: by part of the stack, then
/// the costliest functions (self cost).
fn print_breakdown(who: &str, profile: &callgrind::PerMessage, top: usize) {
    println!("\n#### Instructions per message: {who}\n");
    println!("| instructions / msg | share | where |");
    println!("|---:|---:|---|");
    for (bucket, ir) in callgrind::buckets(profile) {
        println!(
            "| {} | {:.1}% | {bucket} |",
            thousands(ir.round() as u64),
            100.0 * ir / profile.instructions
        );
    }
    println!("\nCostliest functions:\n");
    println!("| instructions / msg | share | function |");
    println!("|---:|---:|---|");
    for (name, ir) in profile.functions.iter().take(top) {
        println!(
            "| {} | {:.1}% | `{}` |",
            thousands(ir.round() as u64),
            100.0 * ir / profile.instructions,
            name.replace('|', "\\|")
        );
    }
}
