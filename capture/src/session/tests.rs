//! In-memory transcripts, each fed in chunks of every size.

use super::*;

const GREETING: &str = "220 test ESMTP smtp-mailer capture\r\n";

/// Runs `input` through a fresh session in chunks of `chunk` bytes.
fn run_chunked(input: &[u8], chunk: usize, max_size: usize) -> (String, Vec<Transaction>, bool) {
    let mut session = Session::new("test", max_size);
    let mut delivered = Vec::new();
    let mut next_id = 0;
    let mut deliver = |t: Transaction| {
        delivered.push(t);
        next_id += 1;
        Some(next_id)
    };
    let mut out = session.take_output();
    for piece in input.chunks(chunk.max(1)) {
        session.feed(piece, &mut deliver);
        out.extend(session.take_output());
    }
    let closed = session.is_closed();
    (
        String::from_utf8(out).expect("ASCII replies"),
        delivered,
        closed,
    )
}

/// Runs `input` in every chunk size and checks they agree.
fn run(input: &str) -> (String, Vec<Transaction>) {
    let first = run_chunked(input.as_bytes(), input.len(), 1000);
    for chunk in 1..input.len() {
        assert_eq!(
            run_chunked(input.as_bytes(), chunk, 1000),
            first,
            "chunk {chunk}"
        );
    }
    let (out, delivered, _) = first;
    let out = out
        .strip_prefix(GREETING)
        .expect("greeting first")
        .to_owned();
    (out, delivered)
}

fn codes(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect()
}

#[test]
fn a_whole_transaction() {
    let (out, delivered) = run(
        "EHLO client\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n\
         RCPT TO:<c@y.example>\r\nDATA\r\nSubject: t\r\n\r\n..hi\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(
        out,
        "250-test greets client\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
         250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
         250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
         250 2.0.0 Ok: queued as 1\r\n221 2.0.0 Bye\r\n"
    );
    assert_eq!(
        delivered,
        vec![Transaction {
            mail_from: "a@x.example".into(),
            rcpt_to: vec!["b@y.example".into(), "c@y.example".into()],
            data: b"Subject: t\r\n\r\n.hi\r\n".to_vec(),
        }]
    );
}

#[test]
fn bare_lf_commands_are_accepted() {
    let (out, delivered) = run("HELO c\nMAIL FROM:<>\nRCPT TO:<b@y>\nDATA\nx\r\n.\r\nQUIT\n");
    assert_eq!(codes(&out), ["250", "250", "250", "354", "250", "221"]);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].mail_from, "");
}

#[test]
fn out_of_order_commands() {
    let (out, _) = run(
        "MAIL FROM:<a@x>\r\nHELO c\r\nRCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<a@x>\r\n\
         DATA\r\nMAIL FROM:<a@x>\r\nRSET\r\nRCPT TO:<b@y>\r\n",
    );
    assert_eq!(
        codes(&out),
        ["503", "250", "503", "503", "250", "503", "503", "250", "503"]
    );
    assert!(out.contains("503 5.5.1 Error: need RCPT command"));
    assert!(out.contains("503 5.5.1 Error: nested MAIL command"));
}

#[test]
fn size_limits() {
    let (out, delivered) = run(
        "EHLO c\r\nMAIL FROM:<a@x> SIZE=1001\r\nMAIL FROM:<a@x> SIZE=1000\r\n\
         RCPT TO:<b@y>\r\nDATA\r\n",
    );
    assert!(out.contains("552 5.3.4 Error: message size exceeds fixed limit\r\n250 2.1.0 Ok"));
    assert!(delivered.is_empty());
    let big = format!(
        "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n{}\r\n.\r\nNOOP\r\n",
        "x".repeat(1001)
    );
    let (out, delivered, _) = run_chunked(big.as_bytes(), 100, 1000);
    assert!(out.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n552 5.3.4 Error: message too big for system\r\n250 2.0.0 Ok\r\n"));
    assert!(delivered.is_empty());
}

#[test]
fn smtputf8_is_required_for_non_ascii_addresses() {
    let (out, delivered) = run(
        "EHLO c\r\nMAIL FROM:<jürgen@x>\r\nMAIL FROM:<a@x>\r\nRCPT TO:<ö@y>\r\nRSET\r\n\
         MAIL FROM:<jürgen@x> SMTPUTF8\r\nRCPT TO:<ö@y>\r\nDATA\r\n.\r\n",
    );
    assert_eq!(
        codes(&out),
        ["250", "553", "250", "553", "250", "250", "250", "354", "250"]
    );
    assert_eq!(delivered[0].rcpt_to, ["ö@y"]);
}

#[test]
fn other_commands() {
    let (out, _) = run("EHLO c\r\nNOOP\r\nVRFY bob\r\nEXPN list\r\nFOO\r\nRSET\r\n");
    assert!(out.ends_with(
        "250 2.0.0 Ok\r\n252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n\
         502 5.5.1 Error: command not implemented\r\n500 5.5.1 Error: command not recognized\r\n\
         250 2.0.0 Ok\r\n"
    ));
}

#[test]
fn too_many_recipients() {
    let mut input = String::from("EHLO c\r\nMAIL FROM:<a@x>\r\n");
    for i in 0..1001 {
        input.push_str(&format!("RCPT TO:<r{i}@y>\r\n"));
    }
    let (out, _, _) = run_chunked(input.as_bytes(), input.len(), 1000);
    assert_eq!(out.matches("250 2.1.5 Ok").count(), 1000);
    assert!(out.ends_with("452 4.5.3 Error: too many recipients\r\n"));
}

#[test]
fn long_lines_and_garbage_then_too_many_errors_closes() {
    let mut input = format!("EHLO c\r\n{}\r\nNOOP\r\n", "A".repeat(100_000)).into_bytes();
    input.extend_from_slice(b"\xff\xfe\x00\r\n");
    for chunk in [1, 7, 4096, input.len()] {
        let (out, _, closed) = run_chunked(&input, chunk, 1000);
        assert!(out.ends_with(
            "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n\
             500 5.5.2 Error: invalid UTF-8 in command\r\n"
        ));
        assert!(!closed);
    }
    let input = "BAD\r\n".repeat(25);
    let (out, _, closed) = run_chunked(input.as_bytes(), 3, 1000);
    assert!(closed);
    assert_eq!(out.matches("500 ").count(), 20);
    assert!(out.ends_with("421 4.7.0 test Error: too many errors\r\n"));
}

#[test]
fn quit_and_http_close_and_ignore_the_rest() {
    let (out, _, closed) = run_chunked(b"QUIT\r\nNOOP\r\n", 100, 1000);
    assert!(closed);
    assert!(out.ends_with("221 2.0.0 Bye\r\n"));
    let (out, _, closed) = run_chunked(b"POST / HTTP/1.1\r\nHost: x\r\n", 100, 1000);
    assert!(closed);
    assert!(out.ends_with("421 4.7.0 test Error: this is an SMTP server\r\n"));
}

#[test]
fn failed_delivery_is_a_451_and_the_session_goes_on() {
    let mut session = Session::new("test", 100);
    let input = b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n";
    session.feed(input, &mut |_| None);
    let out = String::from_utf8(session.take_output()).expect("ASCII");
    assert!(out.ends_with("451 4.3.0 Error: could not store the message\r\n250 2.0.0 Ok\r\n"));
}

#[test]
fn timeout_closes_with_421() {
    let mut session = Session::new("test", 100);
    session.take_output();
    session.timed_out();
    assert!(session.is_closed());
    assert_eq!(
        session.take_output(),
        b"421 4.4.2 test Error: timeout exceeded\r\n"
    );
}

#[test]
fn shutting_down_closes_with_421() {
    let mut session = Session::new("test", 100);
    session.take_output();
    session.shutting_down();
    assert!(session.is_closed());
    assert_eq!(
        session.take_output(),
        b"421 4.3.2 test Service shutting down\r\n"
    );
}
