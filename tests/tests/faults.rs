//! The fault matrix of issue 6, through the real component: a scripted
//! server misbehaves at one step of the conversation (refuses, hangs up,
//! goes silent, drips its reply, answers garbage) and the send must end
//! with the right typed error at the right stage, transient or permanent,
//! within its time limit, and never as a success. Sessions are closed
//! after a fatal failure and carry on after a plain refusal.
//!
//! The scripted server ([`serve`]) is a small SMTP server that answers each
//! command as it reads it; a [`Plan`] says where it misbehaves. Each table
//! runs its cases side by side, one server and one thread per case, and
//! reports every case that failed by name.
//!
//! Transient or permanent follows from the kind: 4xx refusals, timeouts and
//! lost connections are transient; 5xx refusals and protocol errors are
//! permanent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_mailer_host::{Error, ErrorKind, Message, Server, Stage};
use smtp_mailer_tests::scripted::{Conversation, Scripted};
use smtp_mailer_tests::support::{loopback, mailer, message};

/// The command time limit of every case: short, so silence costs little.
const COMMAND: Duration = Duration::from_millis(500);
/// The data time limit: longer than the command one, so a timeout of the
/// final reply shows which limit applied.
const DATA: Duration = Duration::from_millis(900);
/// How late past its time limit a failure may come (CI machines are slow).
const MARGIN: Duration = Duration::from_secs(2);
/// How early a timeout may fire (timer granularity).
const EARLY: Duration = Duration::from_millis(50);
/// A 1 MB reply line.
const MEGABYTE: usize = 1 << 20;

// ---------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------

#[test]
fn refusals_at_each_stage_are_rejections_of_that_stage() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    let mut cases = vec![
        case("421 greeting", Step::Greeting, say("421 4.3.2 not now\r\n"))
            .wants(Kind::Rejected(421), Stage::Greeting)
            .not_sent("EHLO"),
        case(
            "554 greeting",
            Step::Greeting,
            say("554 5.3.2 no service\r\n"),
        )
        .wants(Kind::Rejected(554), Stage::Greeting)
        .not_sent("EHLO"),
        case("451 to EHLO", Step::Ehlo, say("451 4.3.0 try later\r\n"))
            .wants(Kind::Rejected(451), Stage::Hello)
            .not_sent("MAIL"),
        case("421 to EHLO", Step::Ehlo, say("421 4.3.2 closing\r\n"))
            .wants(Kind::Rejected(421), Stage::Hello)
            .not_sent("HELO"),
        // A 5xx to EHLO makes the client fall back to HELO.
        case(
            "502 to EHLO, 550 to HELO",
            Step::Ehlo,
            say("502 5.5.1 no EHLO\r\n"),
        )
        .also(Step::Helo, say("550 5.7.1 go away\r\n"))
        .wants(Kind::Rejected(550), Stage::Hello)
        .sent("HELO tests.example\r\n")
        .not_sent("MAIL"),
        case(
            "500 to EHLO, 451 to HELO",
            Step::Ehlo,
            say("500 5.5.2 what\r\n"),
        )
        .also(Step::Helo, say("451 4.3.0 try later\r\n"))
        .wants(Kind::Rejected(451), Stage::Hello)
        .sent("HELO tests.example\r\n")
        .not_sent("MAIL"),
    ];
    for pipelining in [false, true] {
        let refusals = [
            (Step::Mail, "451 4.3.0 try later", Stage::MailFrom),
            (Step::Mail, "550 5.7.1 sender refused", Stage::MailFrom),
            (Step::Mail, "421 4.3.2 closing", Stage::MailFrom),
            (Step::Rcpt, "450 4.2.1 mailbox busy", Stage::RcptTo),
            (Step::Rcpt, "550 5.1.1 no such user", Stage::RcptTo),
            (Step::Data, "451 4.3.0 try later", Stage::Data),
            (Step::Data, "554 5.3.0 no data today", Stage::Data),
            (Step::DataEnd, "451 4.3.0 queue full", Stage::DataEnd),
            (Step::DataEnd, "554 5.6.0 content refused", Stage::DataEnd),
            (Step::DataEnd, "421 4.3.2 closing", Stage::DataEnd),
        ];
        for (step, reply, stage) in refusals {
            let code: u16 = reply[..3].parse().unwrap();
            let mut c = case(
                &format!("{reply:?} to {step:?}"),
                step,
                say(&format!("{reply}\r\n")),
            )
            .wants(Kind::Rejected(code), stage)
            .pipelining(pipelining);
            if step != Step::DataEnd {
                // Refused before the content: the content never goes out.
                c = c.not_sent("Subject: Test message");
            } else {
                c = c.sent("Subject: Test message");
            }
            cases.push(c);
        }
    }
    run_all(cases);
}

#[test]
fn a_dropped_connection_at_each_stage_is_a_transient_connection_error() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    let mut cases = vec![
        case("hang-up before the greeting", Step::Greeting, Act::HangUp)
            .wants(Kind::Connection, Stage::Greeting),
        case("hang-up after EHLO", Step::Ehlo, Act::HangUp).wants(Kind::Connection, Stage::Hello),
    ];
    for pipelining in [false, true] {
        cases.extend([
            case("hang-up after MAIL", Step::Mail, Act::HangUp)
                .wants(Kind::Connection, Stage::MailFrom)
                .pipelining(pipelining),
            case("hang-up after RCPT", Step::Rcpt, Act::HangUp)
                .wants(Kind::Connection, Stage::RcptTo)
                .pipelining(pipelining),
            case("hang-up after DATA", Step::Data, Act::HangUp)
                .wants(Kind::Connection, Stage::Data)
                .pipelining(pipelining),
            case(
                "354 to DATA, then hang-up",
                Step::Data,
                Act::SayAndHangUp("354 go ahead\r\n".into()),
            )
            .wants(Kind::Connection, Stage::DataEnd)
            .pipelining(pipelining),
            case(
                "hang-up mid-content (1 MB message)",
                Step::Content,
                Act::HangUp,
            )
            .wants(Kind::Connection, Stage::DataEnd)
            .big()
            .pipelining(pipelining),
            case("hang-up before the final reply", Step::DataEnd, Act::HangUp)
                .wants(Kind::Connection, Stage::DataEnd)
                .sent("Subject: Test message")
                .pipelining(pipelining),
        ]);
    }
    run_all(cases);
}

#[test]
fn a_silent_server_at_each_stage_times_out() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    let mut cases = vec![
        case("silent greeting", Step::Greeting, Act::Silent).wants(Kind::Timeout, Stage::Greeting),
        case("silent after EHLO", Step::Ehlo, Act::Silent).wants(Kind::Timeout, Stage::Hello),
        case("no reply to HELO", Step::Ehlo, say("502 5.5.1 no EHLO\r\n"))
            .also(Step::Helo, Act::Silent)
            .wants(Kind::Timeout, Stage::Hello),
    ];
    for pipelining in [false, true] {
        cases.extend([
            case("silent after MAIL", Step::Mail, Act::Silent)
                .wants(Kind::Timeout, Stage::MailFrom)
                .pipelining(pipelining),
            case("silent after RCPT", Step::Rcpt, Act::Silent)
                .wants(Kind::Timeout, Stage::RcptTo)
                .pipelining(pipelining),
            case("silent after DATA", Step::Data, Act::Silent)
                .wants(Kind::Timeout, Stage::Data)
                .pipelining(pipelining),
            // The final reply is bounded by the data limit, not the command one.
            case("silent after the content", Step::DataEnd, Act::Silent)
                .wants(Kind::Timeout, Stage::DataEnd)
                .sent("Subject: Test message")
                .pipelining(pipelining),
        ]);
    }
    // A reply that arrives after the time limit does not revive the send.
    cases.extend([
        case(
            "the greeting arrives late",
            Step::Greeting,
            Act::Late(COMMAND * 2),
        )
        .wants(Kind::Timeout, Stage::Greeting),
        case(
            "the RCPT reply arrives late",
            Step::Rcpt,
            Act::Late(COMMAND * 2),
        )
        .wants(Kind::Timeout, Stage::RcptTo)
        .not_sent("DATA"),
        case(
            "the final reply arrives late",
            Step::DataEnd,
            Act::Late(DATA * 2),
        )
        .wants(Kind::Timeout, Stage::DataEnd),
    ]);
    run_all(cases);
}

#[test]
fn a_reply_dripped_slower_than_the_time_limit_times_out() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    // Every byte comes 50 ms after the last, so the connection is never
    // idle for long, but no reply is complete within 500 ms: the limit is
    // per reply, not per read.
    let slow = Duration::from_millis(50);
    let cases = vec![
        case(
            "dripped greeting",
            Step::Greeting,
            Act::Drip("220 scripted.test ESMTP at a snail's pace\r\n".into(), slow),
        )
        .wants(Kind::Timeout, Stage::Greeting),
        case(
            "dripped EHLO reply",
            Step::Ehlo,
            Act::Drip(
                "250-scripted.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n".into(),
                slow,
            ),
        )
        .wants(Kind::Timeout, Stage::Hello),
        case(
            "dripped MAIL reply",
            Step::Mail,
            Act::Drip("250 2.1.0 sender ok, eventually\r\n".into(), slow),
        )
        .wants(Kind::Timeout, Stage::MailFrom),
        case(
            "dripped RCPT reply",
            Step::Rcpt,
            Act::Drip("250 2.1.5 recipient ok, eventually\r\n".into(), slow),
        )
        .wants(Kind::Timeout, Stage::RcptTo)
        .pipelining(true),
        case(
            "dripped final reply",
            Step::DataEnd,
            Act::Drip("250 2.0.0 queued as 12345, eventually\r\n".into(), slow),
        )
        .wants(Kind::Timeout, Stage::DataEnd),
        // Complete lines keep coming, but the reply never ends.
        case(
            "endless continuation lines, one every 20 ms",
            Step::Ehlo,
            Act::Endless("250-x\r\n", Duration::from_millis(20)),
        )
        .wants(Kind::Timeout, Stage::Hello),
    ];
    run_all(cases);
}

#[test]
fn a_server_dripping_every_reply_within_the_limit_is_served() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    for pipelining in [false, true] {
        let plan = Plan {
            pipelining,
            drip: Some(Duration::from_millis(3)),
            ..Plan::default()
        };
        let server = Scripted::start(move |c| serve(c, plan));
        let mut settings = loopback(server.port());
        settings.timeouts.command = Duration::from_secs(2);
        settings.timeouts.data = Duration::from_secs(2);
        let started = Instant::now();
        let result = mailer().send(&settings, &message(&["bob@example.test"]));
        let elapsed = started.elapsed();
        let heard = text(server.finish());
        let report = result.unwrap_or_else(|e| {
            panic!("pipelining {pipelining}: a dripping server within the limits failed: {e:?}\nthe client said:\n{heard}")
        });
        assert!(report.all_accepted(), "pipelining {pipelining}: {report:?}");
        assert!(
            heard.ends_with("QUIT\r\n"),
            "pipelining {pipelining}: {heard}"
        );
        println!("ok    dripped replies, pipelining {pipelining} ({elapsed:?})");
    }
}

#[test]
fn garbage_replies_are_permanent_protocol_errors() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    let long_line = |prefix: &str, end: &str| format!("{prefix}{}{end}", "x".repeat(MEGABYTE));
    let cases = vec![
        case(
            "words for a greeting",
            Step::Greeting,
            say("hello, anybody there?\r\n"),
        )
        .wants(Kind::Protocol, Stage::Greeting)
        .not_sent("EHLO"),
        case("an empty line for a greeting", Step::Greeting, say("\r\n"))
            .wants(Kind::Protocol, Stage::Greeting),
        case(
            "code 199 (out of range) for a greeting",
            Step::Greeting,
            say("199 hi\r\n"),
        )
        .wants(Kind::Protocol, Stage::Greeting),
        case("250 for a greeting", Step::Greeting, say("250 hi\r\n"))
            .wants(Kind::Protocol, Stage::Greeting),
        case("354 to EHLO", Step::Ehlo, say("354 go ahead\r\n"))
            .wants(Kind::Protocol, Stage::Hello),
        case(
            "a multi-line EHLO reply switching codes",
            Step::Ehlo,
            say("250-scripted.test\r\n251 PIPELINING\r\n"),
        )
        .wants(Kind::Protocol, Stage::Hello),
        case(
            "a 1 MB line in the EHLO reply",
            Step::Ehlo,
            Act::Say(long_line("250-", "\r\n250 OK\r\n")),
        )
        .wants(Kind::Protocol, Stage::Hello),
        case(
            "endless 250-x continuation lines to EHLO",
            Step::Ehlo,
            Act::Endless("250-x\r\n", Duration::ZERO),
        )
        .wants(Kind::Protocol, Stage::Hello),
        case(
            "code 600 (out of range) to MAIL",
            Step::Mail,
            say("600 ok\r\n"),
        )
        .wants(Kind::Protocol, Stage::MailFrom),
        case("NUL bytes to MAIL", Step::Mail, say("\0\0\0 ok\r\n"))
            .wants(Kind::Protocol, Stage::MailFrom),
        case("354 to MAIL", Step::Mail, say("354 go ahead\r\n"))
            .wants(Kind::Protocol, Stage::MailFrom)
            .not_sent("Subject:"),
        case(
            "endless 250-x continuation lines to MAIL",
            Step::Mail,
            Act::Endless("250-x\r\n", Duration::ZERO),
        )
        .wants(Kind::Protocol, Stage::MailFrom)
        .pipelining(true),
        case("wrong separator '_' to RCPT", Step::Rcpt, say("250_ok\r\n"))
            .wants(Kind::Protocol, Stage::RcptTo),
        case("a two-digit code to RCPT", Step::Rcpt, say("25 ok\r\n"))
            .wants(Kind::Protocol, Stage::RcptTo),
        case(
            "a 1 MB line without an end to RCPT",
            Step::Rcpt,
            Act::Say(long_line("250 ", "")),
        )
        .wants(Kind::Protocol, Stage::RcptTo),
        case("250 to DATA", Step::Data, say("250 ok\r\n"))
            .wants(Kind::Protocol, Stage::Data)
            .not_sent("Subject:"),
        case(
            "wrong separator '\\t' in the final reply",
            Step::DataEnd,
            say("250\tqueued\r\n"),
        )
        .wants(Kind::Protocol, Stage::DataEnd),
        case(
            "a final reply switching from 250 to 550",
            Step::DataEnd,
            say("250-queued\r\n550 oops\r\n"),
        )
        .wants(Kind::Protocol, Stage::DataEnd),
        case(
            "a 1 MB line in the final reply",
            Step::DataEnd,
            Act::Say(long_line("250 ", "\r\n")),
        )
        .wants(Kind::Protocol, Stage::DataEnd),
    ];
    run_all(cases);
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

#[test]
fn a_session_is_closed_after_a_fatal_failure_and_never_reused() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    let cases = [
        (
            "wrong separator to MAIL",
            Step::Mail,
            say("250_ok\r\n"),
            Kind::Protocol,
            Stage::MailFrom,
        ),
        (
            "endless continuation lines to DATA",
            Step::Data,
            Act::Endless("354-x\r\n", Duration::ZERO),
            Kind::Protocol,
            Stage::Data,
        ),
        (
            "a 1 MB line to RCPT",
            Step::Rcpt,
            Act::Say(format!("250 {}\r\n", "x".repeat(MEGABYTE))),
            Kind::Protocol,
            Stage::RcptTo,
        ),
        (
            "the RCPT reply after the time limit",
            Step::Rcpt,
            Act::Late(COMMAND * 2),
            Kind::Timeout,
            Stage::RcptTo,
        ),
        (
            "silence after the content",
            Step::DataEnd,
            Act::Silent,
            Kind::Timeout,
            Stage::DataEnd,
        ),
        (
            "421 to MAIL",
            Step::Mail,
            say("421 4.3.2 closing\r\n"),
            Kind::Rejected(421),
            Stage::MailFrom,
        ),
        (
            "hang-up before the final reply",
            Step::DataEnd,
            Act::HangUp,
            Kind::Connection,
            Stage::DataEnd,
        ),
    ];
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(name, step, act, kind, stage)| {
                let run = s.spawn(move || session_closed_after(*step, act.clone(), *kind, *stage));
                (name, run)
            })
            .collect();
        collect(runs)
    });
    report(failures, cases.len());
}

/// Opens a session, makes its first send fail by `act` at `step`, and
/// checks the session is closed: the connection is gone while the session
/// object lives on, and later calls fail at once with a connection error.
fn session_closed_after(step: Step, act: Act, kind: Kind, stage: Stage) -> Result<String, String> {
    let plan = Plan::default().fault(step, act);
    let server = Scripted::start(move |c| serve(c, plan));
    let settings = settings(server.port());
    let mut session = mailer()
        .open_session(&settings)
        .map_err(|e| format!("the session did not open: {e:?}"))?;
    let started = Instant::now();
    let first = session.send(&message(&["bob@example.test"]));
    let elapsed = started.elapsed();
    let err = match first {
        Ok(report) => return Err(format!("the first send succeeded: {report:?}")),
        Err(err) => err,
    };
    check_error(&err, kind, stage).map_err(|e| format!("first send: {e}"))?;
    check_time(elapsed, &err, kind, stage).map_err(|e| format!("first send: {e}"))?;

    // The guest dropped the connection: the script sees the end of it
    // while the session object is still alive.
    let waited = Instant::now();
    let heard = text(server.finish());
    if waited.elapsed() > Duration::from_secs(5) {
        return Err(format!(
            "the connection stayed open {:?} after the failure",
            waited.elapsed()
        ));
    }

    let started = Instant::now();
    let second = session.send(&message(&["carol@example.test"]));
    let elapsed = started.elapsed();
    match second {
        Ok(report) => return Err(format!("the broken session sent again: {report:?}")),
        Err(err) if matches!(err.kind, ErrorKind::Connection(_)) && err.is_transient() => {}
        Err(err) => {
            return Err(format!(
                "second send: want a transient connection error, got {err:?}"
            ))
        }
    }
    if elapsed > MARGIN {
        return Err(format!(
            "the second send took {elapsed:?}: it should fail at once"
        ));
    }
    match session.reset() {
        Err(err) if matches!(err.kind, ErrorKind::Connection(_)) => {}
        other => {
            return Err(format!(
                "reset on the closed session: want a connection error, got {other:?}"
            ))
        }
    }
    let _ = session.close();
    let mails = heard.matches("MAIL FROM").count();
    if mails != 1 || heard.contains("carol@") || heard.contains("RSET") {
        return Err(format!(
            "the connection was reused; the client said:\n{heard}"
        ));
    }
    Ok(format!("{err}"))
}

#[test]
fn a_session_carries_the_next_message_after_a_refusal() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    // Every message is tried whatever happened to the one before, in both
    // modes; the problems are reported together at the end.
    let mut problems = Vec::new();
    for pipelining in [false, true] {
        let plan = Plan {
            pipelining,
            ..Plan::default()
        }
        .fault(Step::Mail, say("550 5.7.1 sender refused\r\n"))
        .fault(Step::Rcpt, say("450 4.2.1 mailbox busy\r\n"))
        .fault(Step::Data, say("554 5.3.0 no data today\r\n"))
        .fault(Step::DataEnd, say("552 5.3.4 message too big\r\n"));
        let server = Scripted::start(move |c| serve(c, plan));
        let mut session = mailer().open_session(&settings(server.port())).unwrap();
        let refusals = [
            (Stage::MailFrom, 550),
            (Stage::RcptTo, 450),
            (Stage::Data, 554),
            (Stage::DataEnd, 552),
        ];
        for (i, (stage, code)) in refusals.into_iter().enumerate() {
            match session.send(&message(&["bob@example.test"])) {
                Ok(report) => problems.push(format!(
                    "pipelining {pipelining}, message {}: delivered ({report:?}), want refused \
                     at {stage:?}",
                    i + 1
                )),
                Err(err) => {
                    if let Err(e) = check_error(&err, Kind::Rejected(code), stage) {
                        problems.push(format!("pipelining {pipelining}, message {}: {e}", i + 1));
                    }
                }
            }
        }
        match session.send(&message(&["bob@example.test"])) {
            Ok(report) if report.all_accepted() => {}
            other => problems.push(format!(
                "pipelining {pipelining}: message 5 did not go through: {other:?}"
            )),
        }
        session.close().unwrap();
        let heard = text(server.finish());
        assert_eq!(heard.matches("MAIL FROM").count(), 5, "{heard}");
        assert_eq!(
            heard.matches("Subject: Test message").count(),
            2,
            "pipelining {pipelining}: content only for the 4th and 5th messages:\n{heard}"
        );
        assert!(heard.ends_with("QUIT\r\n"), "{heard}");
    }
    assert!(
        problems.is_empty(),
        "the session after refusals:\n- {}",
        problems.join("\n- ")
    );
}

#[test]
fn a_pipelined_refused_first_recipient_has_every_reply_read_before_the_result() {
    // Load the component first: its one-time compilation is not the fault's time.
    let _ = mailer();
    // The replies after the first RCPT's come 300 ms later; the flag says
    // the script is about to send them.
    let pause = Duration::from_millis(300);
    let rest_sent = [(); 3].map(|_| Arc::new(AtomicBool::new(false)));
    let flags = rest_sent.clone();
    let server = Scripted::start(move |c| {
        c.open();
        // 1: a refused, b accepted: delivered to b.
        let flight = hear_flight(c);
        assert_eq!(
            flight.len(),
            4,
            "MAIL, 2 RCPT, DATA in one flight: {flight:?}"
        );
        c.say("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n");
        std::thread::sleep(pause);
        flags[0].store(true, Ordering::SeqCst);
        c.say("250 2.1.5 ok\r\n354 go ahead\r\n");
        c.hear_data();
        c.say("250 2.0.0 queued\r\n");
        // 2: both refused, DATA refused. Message 1 was delivered: no RSET.
        let flight = hear_flight(c);
        assert_eq!(flight.len(), 4, "MAIL, 2 RCPT, DATA: {flight:?}");
        c.say("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n");
        std::thread::sleep(pause);
        flags[1].store(true, Ordering::SeqCst);
        c.say("550 5.1.1 no such user either\r\n554 5.5.1 no valid recipients\r\n");
        // 3: both refused, but a sloppy server says 354: the client must
        // end the content at once with a lone dot. Message 2 left its
        // transaction open (MAIL accepted, DATA refused): RSET first.
        let flight = hear_flight(c);
        assert_eq!(flight.len(), 5, "RSET, MAIL, 2 RCPT, DATA: {flight:?}");
        c.say("250 2.0.0 ok\r\n250 2.1.0 ok\r\n550 5.1.1 no such user\r\n");
        std::thread::sleep(pause);
        flags[2].store(true, Ordering::SeqCst);
        c.say("550 5.1.1 no such user either\r\n354 go ahead anyway\r\n");
        let data = c.hear_data();
        assert!(data.is_empty(), "content sent to no recipient: {data:?}");
        c.say("554 5.5.1 no valid recipients\r\n");
        // 4: a plain message: any reply left unread would now be taken
        // for the reply to MAIL. The end of message 3's data was answered:
        // its transaction is over, no RSET.
        let flight = hear_flight(c);
        assert_eq!(flight.len(), 3, "MAIL, RCPT, DATA: {flight:?}");
        c.say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
        c.hear_data();
        c.say("250 2.0.0 queued\r\n");
        if c.hear_line() == "QUIT\r\n" {
            c.say("221 2.0.0 bye\r\n");
        }
        c.drain();
    });
    let mut session = mailer().open_session(&settings(server.port())).unwrap();
    let two = message(&["alice@example.test", "bob@example.test"]);

    let started = Instant::now();
    let report = session
        .send(&two)
        .expect("message 1 is delivered to the second recipient");
    assert!(rest_sent[0].load(Ordering::SeqCst));
    assert!(started.elapsed() >= pause);
    let outcome: Vec<_> = report
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.accepted, r.reply.code))
        .collect();
    assert_eq!(
        outcome,
        [
            ("alice@example.test", false, 550),
            ("bob@example.test", true, 250)
        ],
        "message 1"
    );

    for (i, flag) in rest_sent.iter().enumerate().skip(1) {
        let started = Instant::now();
        let err = session
            .send(&two)
            .expect_err(&format!("message {}: every recipient was refused", i + 1));
        let elapsed = started.elapsed();
        assert!(
            flag.load(Ordering::SeqCst) && elapsed >= pause,
            "message {}: the error came back after {elapsed:?}, before the replies to the second \
             RCPT and to DATA were sent: {err:?}",
            i + 1
        );
        let ErrorKind::Rejected(rejection) = &err.kind else {
            panic!(
                "message {}: want a rejection of the recipients, got {err:?}",
                i + 1
            )
        };
        assert_eq!(rejection.stage, Stage::RcptTo, "message {}: {err:?}", i + 1);
        let codes: Vec<_> = rejection.recipients.iter().map(|r| r.reply.code).collect();
        assert_eq!(codes, [550, 550], "message {}: {err:?}", i + 1);
        assert!(err.is_permanent(), "message {}: {err:?}", i + 1);
    }

    let report = session
        .send(&message(&["carol@example.test"]))
        .expect("message 4 goes through: no reply was left unread");
    assert!(report.all_accepted());
    session.close().unwrap();
    let heard = text(server.finish());
    assert_eq!(heard.matches("Subject: Test message").count(), 2, "{heard}");
}

/// Reads one pipelined flight: lines up to and including DATA.
fn hear_flight(c: &mut Conversation) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = c.hear_line();
        if line.is_empty() {
            return lines;
        }
        let done = line == "DATA\r\n";
        lines.push(line);
        if done {
            return lines;
        }
    }
}

// ---------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------

/// What the error of a case must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Refused with this code.
    Rejected(u16),
    Connection,
    Timeout,
    Protocol,
}

impl Kind {
    /// 4xx refusals, lost connections and timeouts may succeed later.
    fn transient(self) -> bool {
        match self {
            Kind::Rejected(code) => code < 500,
            Kind::Connection | Kind::Timeout => true,
            Kind::Protocol => false,
        }
    }
}

/// One send against a misbehaving server.
struct Case {
    name: String,
    plan: Plan,
    kind: Kind,
    stage: Stage,
    /// A 1 MB message, long enough to be cut off mid-content.
    big: bool,
    /// What the client must, and must not, have said.
    sent: Vec<&'static str>,
    not_sent: Vec<&'static str>,
}

fn case(name: &str, step: Step, act: Act) -> Case {
    Case {
        name: name.to_string(),
        plan: Plan::default().fault(step, act),
        kind: Kind::Protocol,
        stage: Stage::Connect,
        big: false,
        sent: Vec::new(),
        not_sent: Vec::new(),
    }
}

impl Case {
    fn wants(mut self, kind: Kind, stage: Stage) -> Case {
        self.kind = kind;
        self.stage = stage;
        self
    }

    fn also(mut self, step: Step, act: Act) -> Case {
        self.plan = self.plan.fault(step, act);
        self
    }

    fn pipelining(mut self, on: bool) -> Case {
        self.plan.pipelining = on;
        if on {
            self.name.push_str(" (pipelined)");
        }
        self
    }

    fn big(mut self) -> Case {
        self.big = true;
        self
    }

    fn sent(mut self, text: &'static str) -> Case {
        self.sent.push(text);
        self
    }

    fn not_sent(mut self, text: &'static str) -> Case {
        self.not_sent.push(text);
        self
    }

    /// Runs the case; on success, a line for the log.
    fn run(&self) -> Result<String, String> {
        let plan = self.plan.clone();
        let server = Scripted::start(move |c| serve(c, plan));
        let msg = if self.big {
            big_message()
        } else {
            message(&["bob@example.test"])
        };
        let started = Instant::now();
        let result = mailer().send(&settings(server.port()), &msg);
        let elapsed = started.elapsed();
        let heard = text(server.finish());
        let err = match result {
            Ok(report) => return Err(format!("succeeded ({report:?}); the client said:\n{heard}")),
            Err(err) => err,
        };
        check_error(&err, self.kind, self.stage)?;
        check_time(elapsed, &err, self.kind, self.stage)?;
        for text in &self.sent {
            if !heard.contains(text) {
                return Err(format!("the client never said {text:?}; it said:\n{heard}"));
            }
        }
        for text in &self.not_sent {
            if heard.contains(text) {
                return Err(format!("the client said {text:?}; it said:\n{heard}"));
            }
        }
        Ok(format!("{elapsed:>6.0?}  {err}"))
    }
}

/// Checks the kind, stage, code and retry class of an error.
fn check_error(err: &Error, kind: Kind, stage: Stage) -> Result<(), String> {
    let (got_kind, got_stage) = match &err.kind {
        ErrorKind::Rejected(r) => (Kind::Rejected(r.reply.code), r.stage),
        ErrorKind::Connection(f) => (Kind::Connection, f.stage),
        ErrorKind::Timeout(f) => (Kind::Timeout, f.stage),
        ErrorKind::Protocol(f) => (Kind::Protocol, f.stage),
        _ => return Err(format!("want {kind:?} at {stage:?}, got {err:?}")),
    };
    if (got_kind, got_stage) != (kind, stage) {
        return Err(format!(
            "want {kind:?} at {stage:?}, got {got_kind:?} at {got_stage:?}: {}",
            err.message
        ));
    }
    if err.is_transient() != kind.transient() {
        let want = if kind.transient() {
            "transient"
        } else {
            "permanent"
        };
        return Err(format!("{kind:?} at {stage:?} should be {want}: {err:?}"));
    }
    // A refusal's one-line message quotes the reply that refused.
    if let ErrorKind::Rejected(r) = &err.kind {
        if !err.message.contains(&r.reply.code.to_string()) || !err.message.contains(&r.reply.text)
        {
            return Err(format!(
                "the message of a refusal at {stage:?} does not quote the refusing reply \
                 \"{} {}\": {:?}",
                r.reply.code, r.reply.text, err.message
            ));
        }
    }
    Ok(())
}

/// Checks the error came within its time limit plus a margin, and a
/// timeout not before its limit: the data limit for the final reply, the
/// command limit for the rest.
fn check_time(elapsed: Duration, err: &Error, kind: Kind, stage: Stage) -> Result<(), String> {
    let limit = if stage == Stage::DataEnd {
        DATA
    } else {
        COMMAND
    };
    if elapsed > limit + MARGIN {
        return Err(format!(
            "took {elapsed:?}, over the {limit:?} limit plus {MARGIN:?}: {}",
            err.message
        ));
    }
    if kind == Kind::Timeout && elapsed + EARLY < limit {
        return Err(format!(
            "timed out after {elapsed:?}, before the {limit:?} limit: {}",
            err.message
        ));
    }
    Ok(())
}

/// Runs the cases side by side and fails with the list of those that failed.
fn run_all(cases: Vec<Case>) {
    let _ = mailer();
    let failures = std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|case| (&case.name, s.spawn(move || case.run())))
            .collect();
        collect(runs)
    });
    report(failures, cases.len());
}

fn collect(
    runs: Vec<(
        &impl std::fmt::Display,
        std::thread::ScopedJoinHandle<'_, Result<String, String>>,
    )>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, run) in runs {
        match run.join() {
            Ok(Ok(log)) => println!("ok    {name}: {log}"),
            Ok(Err(why)) => {
                println!("FAIL  {name}: {why}");
                failures.push(format!("{name}: {why}"));
            }
            Err(_) => failures.push(format!("{name}: panicked (see the output above)")),
        }
    }
    failures
}

fn report(failures: Vec<String>, total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}

/// Loopback settings with the short time limits.
fn settings(port: u16) -> Server {
    let mut server = loopback(port);
    server.timeouts.command = COMMAND;
    server.timeouts.data = DATA;
    server
}

/// A message of about 1 MB of text.
fn big_message() -> Message {
    let line = "The quick brown fox jumps over the lazy dog, again and again.\n";
    Message {
        text: Some(line.repeat(MEGABYTE / line.len())),
        ..message(&["bob@example.test"])
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---------------------------------------------------------------------------
// The scripted server
// ---------------------------------------------------------------------------

/// A step of the conversation where the server can misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    /// Reading the content after the 354.
    Content,
    /// The reply to the end of the content.
    DataEnd,
}

/// What the server does instead of its usual reply.
#[derive(Debug, Clone)]
enum Act {
    /// Says these bytes.
    Say(String),
    /// Says these bytes, then hangs up.
    SayAndHangUp(String),
    /// Hangs up without a word; at [`Step::Content`], after reading the
    /// first part of the content.
    HangUp,
    /// Says nothing, and reads until the client leaves.
    Silent,
    /// Says nothing for this long, then the usual reply.
    Late(Duration),
    /// Says these bytes one per segment, pausing after each.
    Drip(String, Duration),
    /// Says this line again and again, pausing after each, until the client
    /// leaves.
    Endless(&'static str, Duration),
}

fn say(reply: &str) -> Act {
    Act::Say(reply.to_string())
}

/// How the scripted server behaves.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// Offer PIPELINING.
    pipelining: bool,
    /// Misbehaviour, each used once, at the first time its step would
    /// otherwise get a positive reply.
    faults: Vec<(Step, Act)>,
    /// Drip every usual reply, pausing this long after each byte.
    drip: Option<Duration>,
}

impl Plan {
    fn fault(mut self, step: Step, act: Act) -> Plan {
        self.faults.push((step, act));
        self
    }

    fn take(&mut self, step: Step) -> Option<Act> {
        let i = self.faults.iter().position(|(s, _)| *s == step)?;
        Some(self.faults.remove(i).1)
    }
}

/// A small SMTP server: answers each command as it reads it, refuses what
/// a real server would (RCPT without MAIL, DATA without a recipient), and
/// misbehaves as planned. Ends when the client leaves or QUITs.
fn serve(c: &mut Conversation, mut plan: Plan) {
    let mut mail = false;
    let mut recipients = 0;
    if answer(c, &mut plan, Step::Greeting, "220 scripted.test ESMTP\r\n").is_none() {
        return;
    }
    loop {
        let line = c.hear_line();
        if line.is_empty() {
            return;
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let (step, usual) = match verb.as_str() {
            "EHLO" if plan.pipelining => (
                Step::Ehlo,
                "250-scripted.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            ),
            "EHLO" => (Step::Ehlo, "250-scripted.test\r\n250 8BITMIME\r\n"),
            "HELO" => (Step::Helo, "250 scripted.test\r\n"),
            "MAIL" => (Step::Mail, "250 2.1.0 ok\r\n"),
            "RCPT" if mail => (Step::Rcpt, "250 2.1.5 ok\r\n"),
            "RCPT" => (Step::Rcpt, "503 5.5.1 MAIL first\r\n"),
            "DATA" if recipients > 0 => (Step::Data, "354 go ahead\r\n"),
            "DATA" => (Step::Data, "554 5.5.1 no valid recipients\r\n"),
            "RSET" => {
                (mail, recipients) = (false, 0);
                c.say("250 2.0.0 ok\r\n");
                continue;
            }
            "QUIT" => {
                c.say("221 2.0.0 bye\r\n");
                c.drain();
                return;
            }
            _ => {
                c.say("500 5.5.2 what?\r\n");
                continue;
            }
        };
        let Some(said) = answer(c, &mut plan, step, usual) else {
            return;
        };
        let positive = said.starts_with('2') || said.starts_with('3');
        match step {
            Step::Mail => mail = positive,
            Step::Rcpt if positive => recipients += 1,
            Step::Data if said.starts_with("354") => {
                if let Some(act) = plan.take(Step::Content) {
                    assert!(matches!(act, Act::HangUp), "only hang-ups mid-content");
                    c.hear_some();
                    return;
                }
                c.hear_data();
                (mail, recipients) = (false, 0);
                if answer(c, &mut plan, Step::DataEnd, "250 2.0.0 queued\r\n").is_none() {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Gives the reply to `step`: the planned misbehaviour when there is one
/// and the usual reply would be positive, else the usual reply. Returns
/// what was said, or `None` when the conversation is over.
fn answer(c: &mut Conversation, plan: &mut Plan, step: Step, usual: &str) -> Option<String> {
    let positive = usual.starts_with('2') || usual.starts_with('3');
    let act = if positive { plan.take(step) } else { None };
    let reply = match act {
        None => usual.to_string(),
        Some(Act::Say(reply)) => reply,
        Some(Act::SayAndHangUp(reply)) => {
            c.say(&reply);
            return None;
        }
        Some(Act::HangUp) => return None,
        Some(Act::Silent) => {
            c.drain();
            return None;
        }
        Some(Act::Late(delay)) => {
            std::thread::sleep(delay);
            usual.to_string()
        }
        Some(Act::Drip(reply, pause)) => {
            c.drip(&reply, pause);
            return Some(reply);
        }
        Some(Act::Endless(line, pause)) => {
            // Fast floods go out in batches; a slow one line by line.
            let batch = if pause.is_zero() {
                line.repeat(1024)
            } else {
                line.to_string()
            };
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until && c.try_say_bytes(batch.as_bytes()) {
                std::thread::sleep(pause);
            }
            c.drain();
            return None;
        }
    };
    match plan.drip {
        Some(pause) => {
            c.drip(&reply, pause);
        }
        None => c.say(&reply),
    }
    Some(reply)
}
