//! Embedding the SmtpMailer plugin with the library's API: load it once,
//! send one message, then several over one session.
//!
//! ```sh
//! cargo run -p smtp-mailer-examples --bin embed -- 127.0.0.1:2525
//! ```
//!
//! The server is plaintext here (a local capture server such as
//! `smtp-mailer capture`); use `Server::new(host, 587)` and credentials for a
//! real relay: STARTTLS is then required by default.

use smtp_mailer_host::{Error, Mailbox, Mailer, Message, Server};

fn main() -> Result<(), Error> {
    let address = std::env::args().nth(1).unwrap_or("127.0.0.1:2525".into());
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let port = port.parse().expect("a port number");

    // The built-in component, compiled once and cached in ~/.cache/smtp-mailer.
    let mailer = Mailer::new()?;
    let server = Server::new(host, port).plaintext_insecure();

    // One message over a new connection.
    let report = mailer.send(&server, &welcome("ada@example.org"))?;
    for r in &report.recipients {
        println!("{}: {} {}", r.address, r.accepted, r.reply);
    }

    // Many messages over one connection.
    let mut session = mailer.open_session(&server)?;
    for to in ["alan@example.org", "grace@example.org"] {
        let report = session.send(&welcome(to))?;
        println!("{to}: {}", report.recipients[0].reply);
    }
    session.close()
}

fn welcome(to: &str) -> Message {
    Message {
        from: Mailbox::named("Example app", "app@example.org"),
        to: vec![Mailbox::new(to)],
        subject: "Welcome".into(),
        text: Some(format!("Hello {to}, welcome aboard.")),
        ..Message::default()
    }
}
