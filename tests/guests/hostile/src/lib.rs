//! A hostile `mailer` component for the sandbox tests (tests/tests/limits.rs).
//!
//! - `message.build`: subject `spin` loops forever; subject `grow` allocates
//!   (and touches) memory without bound; any other subject is returned as
//!   the message's bytes.
//! - `sender.send`: connects with `std::net::TcpStream` to the address in
//!   the subject (`IP:PORT`), or to the configured server when the subject
//!   is empty, and reports the address it reached.
//! - Everything else answers `unsupported`.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "mailer",
    generate_all,
});

use std::hint::black_box;
use std::net::TcpStream;

use exports::smtp_mailer::mailer::message::Guest as MessageGuest;
use exports::smtp_mailer::mailer::sender::Guest as SenderGuest;
use exports::smtp_mailer::mailer::sessions::{
    Capabilities, Guest as SessionsGuest, GuestSession, Session,
};
use exports::smtp_mailer::mailer::types::{
    Content, Envelope, Error, ErrorCode, Failure, Message, Reply, Retry, SendReport, Server, Stage,
};

struct Component;

fn unsupported() -> Error {
    Error {
        code: ErrorCode::Unsupported(Failure {
            stage: Stage::Connect,
            detail: "not in the hostile test component".into(),
        }),
        retry: Retry::Permanent,
        message: "not in the hostile test component".into(),
    }
}

impl MessageGuest for Component {
    fn build(message: Message) -> Result<Vec<u8>, Error> {
        match message.subject.as_str() {
            "spin" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut kept: Vec<Vec<u8>> = Vec::new();
                loop {
                    // 1 MiB at a time, every page written.
                    kept.push(black_box(vec![0xA5u8; 1 << 20]));
                    black_box(&kept);
                }
            }
            other => Ok(other.as_bytes().to_vec()),
        }
    }
}

impl SenderGuest for Component {
    fn send(server: Server, message: Message) -> Result<SendReport, Error> {
        let target = if message.subject.is_empty() {
            let ip = server.connect_address.unwrap_or(server.host);
            format!("{ip}:{}", server.port)
        } else {
            message.subject
        };
        match TcpStream::connect(target.as_str()) {
            Ok(_stream) => Ok(SendReport {
                message_id: None,
                recipients: Vec::new(),
                final_reply: Reply {
                    code: 250,
                    enhanced_code: None,
                    text: format!("connected to {target}"),
                },
            }),
            Err(e) => {
                let detail = format!("cannot connect to {target}: {e} ({:?})", e.kind());
                Err(Error {
                    code: ErrorCode::Connection(Failure {
                        stage: Stage::Connect,
                        detail: detail.clone(),
                    }),
                    retry: Retry::Transient,
                    message: detail,
                })
            }
        }
    }

    fn send_raw(_: Server, _: Envelope, _: Content) -> Result<SendReport, Error> {
        Err(unsupported())
    }
}

struct NoSession;

impl GuestSession for NoSession {
    fn open(_: Server) -> Result<Session, Error> {
        Err(unsupported())
    }
    fn send(&self, _: Message) -> Result<SendReport, Error> {
        Err(unsupported())
    }
    fn send_raw(&self, _: Envelope, _: Content) -> Result<SendReport, Error> {
        Err(unsupported())
    }
    fn capabilities(&self) -> Result<Capabilities, Error> {
        Err(unsupported())
    }
    fn reset(&self) -> Result<(), Error> {
        Err(unsupported())
    }
    fn close(&self) -> Result<(), Error> {
        Err(unsupported())
    }
}

impl SessionsGuest for Component {
    type Session = NoSession;
}

export!(Component);
