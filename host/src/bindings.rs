//! The wasmtime bindings of the `mailer` world, and their conversions to and
//! from the typed API of this crate ([`Message`], [`Server`], [`Error`], ...).
//!
//! A host that calls the WIT exports itself instantiates [`Mailer`] (the
//! world's bindings) in a store whose data implements
//! [`wasmtime_wasi::WasiView`], after adding WASI to its linker: see
//! `examples/src/bin/own_wasi_ctx.rs` for a whole program, or
//! [`crate::Mailer::instantiate`] for a store sandboxed by this crate.
//!
//! ```no_run
//! use smtp_mailer_host::bindings::exports::smtp_mailer::mailer::types as wit;
//! use smtp_mailer_host::{Mailer, MailerCtxBuilder};
//!
//! let mailer = Mailer::new()?;
//! let (mut store, exports) = mailer.instantiate(MailerCtxBuilder::new())?;
//! let message = wit::Message {
//!     from: wit::Mailbox { name: None, address: "app@example.org".into() },
//!     reply_to: vec![],
//!     to: vec![wit::Mailbox { name: None, address: "ada@example.org".into() }],
//!     cc: vec![],
//!     bcc: vec![],
//!     subject: "Hello".into(),
//!     text: Some("Hi".into()),
//!     html: None,
//!     attachments: vec![],
//!     headers: vec![],
//!     message_id: None,
//!     date: None,
//!     dkim: None,
//!     envelope: None,
//! };
//! let bytes = exports
//!     .smtp_mailer_mailer_message()
//!     .call_build(&mut store, &message)?
//!     .map_err(|e| e.message)?;
//! assert!(bytes.starts_with(b"From: "));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

wasmtime::component::bindgen!({
    path: "../wit",
    world: "mailer",
    with: {
        "wasi:io/streams": wasmtime_wasi::p2::bindings::sync::io::streams,
    },
});

use exports::smtp_mailer::mailer::types as wit;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::DynInputStream;

use crate::error::{Error, ErrorKind, Failure, Rejection, Stage};
use crate::stream::FileStream;
use crate::types::{
    Capabilities, Content, Credentials, Envelope, Header, Mailbox, Message, RecipientOutcome,
    Reply, Secret, Security, SendReport, Server, TlsDetails,
};

fn millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

impl From<&Mailbox> for wit::Mailbox {
    fn from(m: &Mailbox) -> Self {
        wit::Mailbox {
            name: m.name.clone(),
            address: m.address.clone(),
        }
    }
}

fn mailboxes(list: &[Mailbox]) -> Vec<wit::Mailbox> {
    list.iter().map(wit::Mailbox::from).collect()
}

/// The WIT content of `content`; a file is opened and lent to the store's
/// `table` as a stream, twice when `first_pass` (a DKIM-signed message
/// reads it once for the body hash). `field` names it in errors.
pub fn content(
    content: &Content,
    table: &mut ResourceTable,
    field: &str,
    first_pass: bool,
) -> Result<wit::Content, Error> {
    match content {
        Content::Bytes(bytes) => Ok(wit::Content::Bytes(bytes.clone())),
        Content::File(path) => {
            let cannot = |e: std::io::Error| {
                Error::invalid(field, format!("cannot read {}: {e}", path.display()))
            };
            let mut lend = || -> Result<_, Error> {
                let file = std::fs::File::open(path).map_err(cannot)?;
                let size = file.metadata().map_err(cannot)?.len();
                let stream: DynInputStream = Box::new(FileStream::new(file));
                let stream = table
                    .push(stream)
                    .map_err(|e| Error::runtime(format!("cannot lend {}: {e}", path.display())))?;
                Ok((stream, size))
            };
            let (body, size) = lend()?;
            let first_pass = match first_pass {
                true => Some(lend()?.0),
                false => None,
            };
            Ok(wit::Content::Stream(wit::ContentStream {
                body,
                size: Some(size),
                first_pass,
            }))
        }
    }
}

impl From<&Header> for wit::Header {
    fn from(h: &Header) -> Self {
        wit::Header {
            name: h.name.clone(),
            value: h.value.clone(),
        }
    }
}

/// The WIT message of `m`; its files are lent to the store's `table`.
pub fn message(m: &Message, table: &mut ResourceTable) -> Result<wit::Message, Error> {
    let mut attachments = Vec::with_capacity(m.attachments.len());
    for (i, a) in m.attachments.iter().enumerate() {
        attachments.push(wit::Attachment {
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            content: content(
                &a.content,
                table,
                &format!("attachments[{i}].content"),
                m.dkim.is_some(),
            )?,
            content_id: a.content_id.clone(),
        });
    }
    Ok(wit::Message {
        from: (&m.from).into(),
        reply_to: mailboxes(&m.reply_to),
        to: mailboxes(&m.to),
        cc: mailboxes(&m.cc),
        bcc: mailboxes(&m.bcc),
        subject: m.subject.clone(),
        text: m.text.clone(),
        html: m.html.clone(),
        attachments,
        headers: m.headers.iter().map(Into::into).collect(),
        message_id: m.message_id.clone(),
        date: m.date,
        dkim: m.dkim.as_ref().map(|d| {
            let canonicalization = Some(if d.simple_canonicalization {
                wit::Canonicalization::Simple
            } else {
                wit::Canonicalization::Relaxed
            });
            wit::Dkim {
                domain: d.domain.clone(),
                selector: d.selector.clone(),
                private_key_pem: d.private_key_pem.clone(),
                identity: d.identity.clone(),
                header_canonicalization: canonicalization,
                body_canonicalization: canonicalization,
            }
        }),
        envelope: m.envelope.as_ref().map(Into::into),
    })
}

impl From<&Envelope> for wit::Envelope {
    fn from(e: &Envelope) -> Self {
        wit::Envelope {
            reverse_path: e.reverse_path.clone(),
            forward_paths: e.forward_paths.clone(),
        }
    }
}

impl From<Security> for wit::Security {
    fn from(s: Security) -> Self {
        match s {
            Security::ImplicitTls => wit::Security::ImplicitTls,
            Security::StarttlsRequired => wit::Security::StarttlsRequired,
            Security::StarttlsOpportunistic => wit::Security::StarttlsOpportunistic,
            Security::PlaintextInsecure => wit::Security::PlaintextInsecure,
        }
    }
}

impl From<&Credentials> for wit::Credentials {
    fn from(c: &Credentials) -> Self {
        wit::Credentials {
            user: c.user.clone(),
            secret: match &c.secret {
                Secret::Password(p) => wit::Secret::Password(p.clone()),
                Secret::OAuth2Token(t) => wit::Secret::Oauth2Token(t.clone()),
            },
            mechanism: c.mechanism.clone(),
        }
    }
}

/// The WIT settings for `server`, connecting to `connect_address` (the
/// address the sandbox allows).
pub fn server(server: &Server, connect_address: Option<String>) -> wit::Server {
    wit::Server {
        host: server.host.clone(),
        connect_address,
        port: server.port,
        security: server.security.into(),
        credentials: server.credentials.as_ref().map(Into::into),
        timeouts: Some(wit::Timeouts {
            connect_ms: millis(server.timeouts.connect),
            command_ms: millis(server.timeouts.command),
            data_ms: millis(server.timeouts.data),
        }),
        client_name: server.client_name.clone(),
        ca_pem: server.ca_pem.clone(),
        trace: server.trace,
    }
}

impl From<wit::Reply> for Reply {
    fn from(r: wit::Reply) -> Self {
        Reply {
            code: r.code,
            enhanced_code: r.enhanced_code,
            text: r.text,
        }
    }
}

impl From<wit::RecipientOutcome> for RecipientOutcome {
    fn from(o: wit::RecipientOutcome) -> Self {
        RecipientOutcome {
            address: o.address,
            accepted: o.accepted,
            reply: o.reply.into(),
        }
    }
}

impl From<wit::SendReport> for SendReport {
    fn from(r: wit::SendReport) -> Self {
        SendReport {
            message_id: r.message_id,
            recipients: r.recipients.into_iter().map(Into::into).collect(),
            final_reply: r.final_reply.into(),
        }
    }
}

impl From<exports::smtp_mailer::mailer::sessions::Capabilities> for Capabilities {
    fn from(c: exports::smtp_mailer::mailer::sessions::Capabilities) -> Self {
        Capabilities {
            extensions: c.extensions,
            auth_mechanisms: c.auth_mechanisms,
            size: c.size,
            tls: c.tls.map(|t| TlsDetails {
                implicit: t.implicit,
                version: t.version,
                cipher_suite: t.cipher_suite,
                peer_certificates: t.peer_certificates,
            }),
            authenticated: c.authenticated,
        }
    }
}

impl From<wit::Stage> for Stage {
    fn from(s: wit::Stage) -> Self {
        match s {
            wit::Stage::Connect => Stage::Connect,
            wit::Stage::Greeting => Stage::Greeting,
            wit::Stage::Hello => Stage::Hello,
            wit::Stage::Tls => Stage::Tls,
            wit::Stage::Auth => Stage::Auth,
            wit::Stage::MailFrom => Stage::MailFrom,
            wit::Stage::RcptTo => Stage::RcptTo,
            wit::Stage::Data => Stage::Data,
            wit::Stage::DataEnd => Stage::DataEnd,
            wit::Stage::Reset => Stage::Reset,
            wit::Stage::Quit => Stage::Quit,
        }
    }
}

fn failure(f: wit::Failure) -> Failure {
    Failure {
        stage: f.stage.into(),
        detail: f.detail,
    }
}

fn rejection(r: wit::Rejection) -> Rejection {
    Rejection {
        stage: r.stage.into(),
        reply: r.reply.into(),
        recipients: r.recipients.into_iter().map(Into::into).collect(),
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        let kind = match e.code {
            wit::ErrorCode::InvalidInput(f) => ErrorKind::InvalidInput {
                field: f.field,
                reason: f.reason,
            },
            wit::ErrorCode::Dns(f) => ErrorKind::Dns(failure(f)),
            wit::ErrorCode::Connection(f) => ErrorKind::Connection(failure(f)),
            wit::ErrorCode::Timeout(f) => ErrorKind::Timeout(failure(f)),
            wit::ErrorCode::Protocol(f) => ErrorKind::Protocol(failure(f)),
            wit::ErrorCode::Rejected(r) => ErrorKind::Rejected(rejection(r)),
            wit::ErrorCode::Tls(f) => ErrorKind::Tls(failure(f)),
            wit::ErrorCode::Authentication(r) => ErrorKind::Authentication(rejection(r)),
            wit::ErrorCode::Unsupported(f) => ErrorKind::Unsupported(failure(f)),
            wit::ErrorCode::NotAllowed(f) => ErrorKind::NotAllowed(failure(f)),
        };
        Error {
            kind,
            transient: e.retry == wit::Retry::Transient,
            message: e.message,
        }
    }
}
