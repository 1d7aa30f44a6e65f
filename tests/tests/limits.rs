//! The sandbox's limits, proved with a component built to break them
//! (`tests/guests/hostile`, built by `tests/build.rs`): an endless loop is
//! stopped by the call deadline, unbounded allocation by the memory limit,
//! and a connect outside the allow-list is denied by the host. After each,
//! the same mailer goes on serving calls.

use std::io::ErrorKind as IoErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use smtp_mailer_host::{Error, ErrorKind, Mailer, MailerBuilder, Message};
use smtp_mailer_tests::support::{loopback, mailer, message};

/// The hostile component, built for wasm32-wasip2 by `tests/build.rs`.
const HOSTILE: &str = env!("SMTP_MAILER_TEST_GUEST_HOSTILE");

fn hostile() -> MailerBuilder {
    Mailer::builder()
        .component_file(HOSTILE)
        .expect("the hostile test component is readable")
}

/// A message whose subject tells the hostile component what to do.
fn asking(subject: &str) -> Message {
    Message {
        subject: subject.into(),
        ..message(&["bob@example.test"])
    }
}

/// The detail of a runtime error; panics on any other kind.
fn runtime_detail(err: &Error) -> &str {
    match &err.kind {
        ErrorKind::Runtime { detail } => detail,
        _ => panic!("expected a runtime error, got {err:?}"),
    }
}

/// A trap's detail without its wasm backtrace.
fn trap(detail: &str) -> &str {
    detail.find("wasm trap").map_or(detail, |at| &detail[at..])
}

/// The same mailer still builds with a well-behaved call, and the real
/// component still works beside it.
fn still_serving(hostile: &Mailer) {
    assert_eq!(hostile.build_message(&asking("hello")).unwrap(), b"hello");
    let built = mailer()
        .build_message(&message(&["bob@example.test"]))
        .expect("the real component still builds");
    assert!(String::from_utf8_lossy(&built).contains("Subject: Test message"));
}

#[test]
fn an_endless_loop_is_stopped_by_the_call_deadline() {
    let hostile = hostile()
        .call_deadline(Duration::from_millis(500))
        .build()
        .unwrap();
    for round in 0..2 {
        let started = Instant::now();
        let err = hostile.build_message(&asking("spin")).unwrap_err();
        let elapsed = started.elapsed();
        let detail = runtime_detail(&err);
        eprintln!(
            "spin, round {round}: stopped after {elapsed:?}: {}",
            trap(detail)
        );
        assert!(detail.contains("interrupt"), "round {round}: {detail}");
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2),
            "round {round}: stopped after {elapsed:?}"
        );
        still_serving(&hostile);
    }
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    let hostile = hostile()
        .memory_limit(16 << 20)
        // Far beyond what the allocation takes: the memory limit, not the
        // deadline, must end it.
        .call_deadline(Duration::from_secs(4))
        .build()
        .unwrap();
    for round in 0..2 {
        let started = Instant::now();
        let err = hostile.build_message(&asking("grow")).unwrap_err();
        let elapsed = started.elapsed();
        let detail = runtime_detail(&err);
        eprintln!(
            "grow, round {round}: stopped after {elapsed:?}: {}",
            trap(detail)
        );
        assert!(!detail.contains("interrupt"), "round {round}: {detail}");
        assert!(detail.contains("unreachable"), "round {round}: {detail}");
        assert!(
            elapsed < Duration::from_secs(2),
            "round {round}: stopped after {elapsed:?}"
        );
        still_serving(&hostile);
    }
}

#[test]
fn a_connect_outside_the_allow_list_is_denied() {
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let outside = TcpListener::bind("127.0.0.1:0").unwrap();
    allowed.set_nonblocking(true).unwrap();
    outside.set_nonblocking(true).unwrap();
    let server = loopback(allowed.local_addr().unwrap().port());
    let target = outside.local_addr().unwrap().to_string();
    let hostile = hostile()
        .call_deadline(Duration::from_secs(4))
        .build()
        .unwrap();

    for round in 0..2 {
        // The component, sent to the configured server, connects elsewhere.
        let started = Instant::now();
        let err = hostile.send(&server, &asking(&target)).unwrap_err();
        let ErrorKind::Connection(failure) = &err.kind else {
            panic!("round {round}: expected a connection error, got {err:?}")
        };
        eprintln!("connect to {target}, round {round}: {}", failure.detail);
        assert!(
            failure.detail.contains("PermissionDenied"),
            "round {round}: {failure:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));

        // The configured server is reachable from the same mailer.
        let report = hostile.send(&server, &asking("")).unwrap();
        assert_eq!(
            report.final_reply.text,
            format!("connected to {}", allowed.local_addr().unwrap())
        );
        assert!(
            accepted_within(&allowed, Duration::from_secs(2)),
            "round {round}"
        );
        still_serving(&hostile);
    }

    // The outside listener never saw a connection.
    assert!(!accepted_within(&outside, Duration::from_millis(300)));
}

/// True when `listener` (non-blocking) accepts a connection within `wait`.
fn accepted_within(listener: &TcpListener, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok(_) => return true,
            Err(e) if e.kind() == IoErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.kind() == IoErrorKind::WouldBlock => return false,
            Err(e) => panic!("accept: {e}"),
        }
    }
}
