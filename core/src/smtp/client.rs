//! The SMTP client state machine.

use std::collections::VecDeque;
use std::io::Write as _;

use super::auth::{AuthError, Authenticator, Credentials, Mechanism, Step};
use super::command::Command;
use super::content::ContentInfo;
use super::data::{encode_data, DataEncoder};
use super::envelope::Envelope;
use super::extensions::Extensions;
use super::reply::Reply;
use super::{Delivery, RecipientOutcome};
use crate::address::check_client_name;
use crate::error::{Error, Stage};

/// How the connection is to be protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// The driver runs TLS from the first byte: the session is protected
    /// from the greeting on.
    Implicit,
    /// STARTTLS, or the session ends before any AUTH or MAIL: when the
    /// server does not offer it, refuses it, or the handshake fails.
    StartTlsRequired,
    /// STARTTLS when offered; plaintext when not offered or refused.
    StartTlsOpportunistic,
    /// No TLS.
    PlaintextInsecure,
}

/// What AUTH needs. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The user name with a password or a token.
    pub credentials: Credentials,
    /// The mechanism the caller insists on, or none for the strongest one
    /// both sides offer.
    pub mechanism: Option<String>,
    /// A fresh random nonce (letters and digits, 16 or more) for SCRAM.
    pub client_nonce: String,
    /// The server's host name and port, for OAUTHBEARER.
    pub host: String,
    /// The server's port.
    pub port: u16,
}

/// Settings of a client that hold for the whole connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    client_name: String,
    tls: TlsPolicy,
    auth: Option<AuthSettings>,
}

impl ClientConfig {
    /// A configuration that greets the server as `client_name`, a host name
    /// or an address literal such as `[127.0.0.1]`, with STARTTLS
    /// required.
    pub fn new(client_name: &str) -> Result<ClientConfig, Error> {
        check_client_name(client_name).map_err(|e| Error::invalid("server.client-name", e))?;
        Ok(ClientConfig {
            client_name: client_name.to_string(),
            tls: TlsPolicy::StartTlsRequired,
            auth: None,
        })
    }

    /// The same configuration, authenticating after the (TLS) EHLO. AUTH is
    /// only ever sent under TLS, unless the policy is
    /// [`TlsPolicy::PlaintextInsecure`], which the caller chose knowingly.
    pub fn with_auth(mut self, auth: AuthSettings) -> ClientConfig {
        self.auth = Some(auth);
        self
    }

    /// The same configuration with another TLS policy.
    pub fn with_tls(mut self, tls: TlsPolicy) -> ClientConfig {
        self.tls = tls;
        self
    }
}

/// The outcome of an operation: the connection's opening, a send, a reset
/// or the goodbye.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server greeted and answered EHLO (or HELO): sends may start.
    Ready,
    /// A message was accepted for at least one recipient.
    Delivered(Delivery),
    /// A send or reset failed; the connection may carry the next message.
    Failed(Error),
    /// The server accepted STARTTLS: the driver must check that no byte
    /// followed the 220 (anything buffered is an injection attempt), run
    /// the TLS handshake, then call [`Client::tls_established`].
    StartTls,
    /// The server is ready for a streamed content: the driver passes it
    /// in pieces to [`Client::write_content`], handling the replies that
    /// become due, then calls [`Client::end_content`].
    ContentWanted,
    /// An explicit reset succeeded.
    ResetDone,
    /// The server answered QUIT (or the client gave up waiting).
    Closed,
}

/// Which time limit applies to the reply the client waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A command's reply (the greeting included).
    Command,
    /// The reply to the end of the data, after the content was written.
    Data,
}

/// The reply the client expects next, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    /// RSET before a transaction, when a failure left one open.
    TxReset,
    /// RSET asked for by the caller.
    Reset,
    Mail,
    Rcpt(usize),
    Data,
    DataEnd,
    /// A BDAT chunk that is not the last.
    BdatChunk,
    /// BDAT ... LAST: the end of the content.
    BdatLast,
    Quit,
}

impl Expect {
    fn stage(self) -> Stage {
        match self {
            Expect::Greeting => Stage::Greeting,
            Expect::Ehlo | Expect::Helo => Stage::Hello,
            Expect::StartTls => Stage::Tls,
            Expect::Auth => Stage::Auth,
            Expect::TxReset | Expect::Reset => Stage::Reset,
            Expect::Mail => Stage::MailFrom,
            Expect::Rcpt(_) => Stage::RcptTo,
            Expect::Data => Stage::Data,
            Expect::DataEnd | Expect::BdatChunk | Expect::BdatLast => Stage::DataEnd,
            Expect::Quit => Stage::Quit,
        }
    }
}

/// The largest content in memory that goes out as BDAT in the same flight
/// as MAIL and RCPT, before the server said yes to a recipient: one round
/// trip per message, and little wasted should every recipient be refused.
const PIPELINED_BDAT_MAX: usize = 256 * 1024;

/// One message in flight.
#[derive(Debug)]
struct Transaction {
    envelope: Envelope,
    /// The MAIL FROM parameters, kept until MAIL is written (after the
    /// reply to RSET, without PIPELINING).
    params: Vec<String>,
    /// The content in memory, until it is sent; `None` for a streamed
    /// content.
    data: Option<Vec<u8>>,
    /// The content goes in BDAT chunks (CHUNKING), not after DATA.
    chunking: bool,
    /// The encoder of a streamed content while it is written.
    streaming: Option<DataEncoder>,
    /// The content's 8-bitness was unknown and the server lacks 8BITMIME:
    /// an 8-bit byte aborts the send.
    seven_bit_only: bool,
    /// The end of the content was sent (BDAT LAST, or the DATA terminator).
    content_sent: bool,
    replies: Vec<Option<Reply>>,
    /// The first refusal of MAIL, RSET, DATA or a BDAT chunk.
    failure: Option<Error>,
    /// The server answered 354 although the transaction had failed: an
    /// empty content was sent to end it, and its reply is ignored.
    aborted: bool,
    /// The server accepted MAIL: a transaction is open on its side until
    /// the end of the content is answered, or an RSET.
    mail_accepted: bool,
    /// The server answered the end of the content after DATA (accepted or
    /// refused): RFC 5321 4.1.1.4 says that clears the transaction.
    ended: bool,
}

impl Transaction {
    fn fail(&mut self, error: Error) {
        self.failure.get_or_insert(error);
    }

    fn any_accepted(&self) -> bool {
        self.replies.iter().flatten().any(Reply::is_positive)
    }

    fn outcomes(&self, delivered: bool) -> Vec<RecipientOutcome> {
        self.envelope
            .forward_paths()
            .iter()
            .zip(&self.replies)
            .filter_map(|(address, reply)| {
                let reply = reply.clone()?;
                Some(RecipientOutcome {
                    address: address.to_string(),
                    accepted: delivered && reply.is_positive(),
                    reply,
                })
            })
            .collect()
    }

    /// The error of a transaction that did not deliver, in order of cause:
    /// a refused MAIL, every recipient refused, then a refused DATA.
    fn error(&mut self) -> Error {
        match self.failure.take() {
            Some(
                error @ Error::Rejected {
                    stage: Stage::MailFrom | Stage::Reset,
                    ..
                },
            ) => error,
            _ if !self.any_accepted() && self.replies.iter().all(Option::is_some) => {
                let recipients = self.outcomes(false);
                let reply = recipients
                    .last()
                    .map(|r| r.reply.clone())
                    .unwrap_or_else(|| Reply::new(554, "no valid recipients"));
                Error::Rejected {
                    stage: Stage::RcptTo,
                    reply,
                    recipients,
                }
            }
            Some(error) => error,
            None => Error::Protocol {
                stage: Stage::RcptTo,
                detail: "the transaction ended without a reply to every command".into(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Greeting and EHLO under way.
    Opening,
    /// Idle: a send, reset or quit may start.
    Ready,
    /// A send, reset or quit is under way.
    Busy,
    /// Closed by QUIT or a fatal error.
    Closed,
}

/// A sans-I/O SMTP client for one connection. See the module docs of
/// [`crate::smtp`] for how a driver uses it.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    extensions: Extensions,
    state: State,
    output: Vec<u8>,
    expect: VecDeque<Expect>,
    events: VecDeque<Event>,
    transaction: Option<Transaction>,
    /// True when a failed transaction may still be open on the server's
    /// side (MAIL was accepted, the content's end was never answered): the
    /// next one starts with RSET. A completed transaction needs none
    /// (RFC 5321 4.1.1.4).
    needs_reset: bool,
    /// True once the caller asked for QUIT: later operations say so.
    quit_requested: bool,
    /// True once TLS protects the connection.
    tls_active: bool,
    /// The AUTH exchange under way.
    authenticator: Option<Authenticator>,
}

impl Client {
    /// A client for a new connection, waiting for the server's greeting.
    pub fn new(config: ClientConfig) -> Client {
        Client {
            extensions: Extensions::default(),
            state: State::Opening,
            output: Vec::new(),
            expect: VecDeque::from([Expect::Greeting]),
            events: VecDeque::new(),
            transaction: None,
            needs_reset: false,
            quit_requested: false,
            tls_active: config.tls == TlsPolicy::Implicit,
            authenticator: None,
            config,
        }
    }

    /// True when TLS protects the connection.
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    /// Called by the driver once the STARTTLS handshake succeeded: all that
    /// the server said before is forgotten, and EHLO is said again.
    pub fn tls_established(&mut self) {
        self.tls_active = true;
        self.extensions = Extensions::default();
        let name = self.config.client_name.clone();
        self.push(Command::Ehlo(&name), Expect::Ehlo);
    }

    /// What the server announced in its EHLO reply.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// True after QUIT or a fatal error: the connection must be closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes to write, all of them in one write. Empty when none.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Whether a reply is due, and which time limit applies to it.
    pub fn wait(&self) -> Option<Wait> {
        match self.expect.front()? {
            Expect::DataEnd | Expect::BdatChunk | Expect::BdatLast => Some(Wait::Data),
            _ => Some(Wait::Command),
        }
    }

    /// The step the next due reply answers, for error messages.
    pub fn pending_stage(&self) -> Option<Stage> {
        self.expect.front().map(|e| e.stage())
    }

    /// The next outcome of an operation, once all its replies were read.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Starts sending `message` to `envelope`. The message is sent as is,
    /// but for CRLF line endings and dot-stuffing.
    ///
    /// Fails without writing anything when the client is not idle, or when
    /// the message needs what the server lacks: a size over its SIZE limit,
    /// SMTPUTF8 for non-ASCII addresses or headers, 8BITMIME for 8-bit
    /// content.
    ///
    /// The content goes in one BDAT chunk when the server offers CHUNKING
    /// (in the same flight as MAIL and RCPT when it also offers PIPELINING
    /// and the message is small), after DATA otherwise.
    ///
    /// Without PIPELINING each command waits for the reply to the one
    /// before (RFC 5321 4.3, RFC 2920). RSET comes first only when an
    /// earlier failure left a transaction open.
    pub fn send(&mut self, envelope: Envelope, message: &[u8]) -> Result<(), Error> {
        self.start(envelope, ContentInfo::of(message), Some(message.to_vec()))
    }

    /// Starts sending a content that the driver streams once the server
    /// accepted a recipient: after [`Event::ContentWanted`], the driver
    /// passes it in pieces to [`Client::write_content`] and ends it with
    /// [`Client::end_content`]. `info` is declared in MAIL FROM.
    ///
    /// The content goes in BDAT chunks when the server offers CHUNKING,
    /// after DATA otherwise. Fails like [`Client::send`].
    pub fn send_streamed(&mut self, envelope: Envelope, info: ContentInfo) -> Result<(), Error> {
        self.start(envelope, info, None)
    }

    fn start(
        &mut self,
        envelope: Envelope,
        info: ContentInfo,
        data: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        self.check_idle(Stage::MailFrom)?;
        let (params, seven_bit_only) = self.mail_params(&envelope, &info)?;
        self.transaction = Some(Transaction {
            replies: vec![None; envelope.forward_paths().len()],
            envelope,
            params,
            data,
            chunking: self.extensions.chunking,
            streaming: None,
            seven_bit_only,
            content_sent: false,
            failure: None,
            aborted: false,
            mail_accepted: false,
            ended: false,
        });
        self.state = State::Busy;
        if self.needs_reset {
            // An earlier failure left a transaction open: RSET ends it.
            self.push(Command::Rset, Expect::TxReset);
            if !self.extensions.pipelining {
                // RFC 2920: without PIPELINING, MAIL waits for RSET's reply.
                return Ok(());
            }
        }
        self.write_transaction();
        Ok(())
    }

    /// Writes MAIL FROM; with PIPELINING, every RCPT TO and then DATA, or
    /// BDAT LAST with a small content, in the same flight (RFC 2920 3.1:
    /// only DATA, or the content, may end a group).
    fn write_transaction(&mut self) {
        let Some(mut tx) = self.transaction.take() else {
            return;
        };
        self.push(
            Command::Mail {
                from: tx.envelope.reverse_path(),
                params: &tx.params,
            },
            Expect::Mail,
        );
        if self.extensions.pipelining {
            for (i, rcpt) in tx.envelope.forward_paths().iter().enumerate() {
                self.push(Command::Rcpt(rcpt), Expect::Rcpt(i));
            }
            if !tx.chunking {
                self.push(Command::Data, Expect::Data);
            } else if let Some(data) = tx.data.take_if(|d| d.len() <= PIPELINED_BDAT_MAX) {
                self.push_bdat_last(bdat_content(&data));
                tx.content_sent = true;
            }
        }
        self.transaction = Some(tx);
    }

    /// Writes a piece of a streamed content (after [`Event::ContentWanted`]).
    /// With CHUNKING each piece is a BDAT chunk whose reply becomes due; a
    /// refused chunk ends the send with [`Event::Failed`], and no more
    /// content is wanted.
    ///
    /// An error is fatal: the content was not ended, so the server drops
    /// the message once the driver drops the connection.
    pub fn write_content(&mut self, piece: &[u8]) -> Result<(), Error> {
        let Some(tx) = self.transaction.as_mut() else {
            return Err(content_not_wanted());
        };
        let Some(encoder) = tx.streaming.as_mut() else {
            return Err(content_not_wanted());
        };
        if tx.seven_bit_only && !piece.is_ascii() {
            return Err(self.fatal(Error::Unsupported {
                stage: Stage::DataEnd,
                detail: "the content holds 8-bit bytes, and the server does not offer \
                         8BITMIME; the send was aborted before the end of the content, so \
                         nothing is delivered"
                    .into(),
            }));
        }
        if !tx.chunking {
            encoder.encode(piece, &mut self.output);
            return Ok(());
        }
        let mut chunk = Vec::with_capacity(piece.len() + piece.len() / 32 + 2);
        encoder.encode(piece, &mut chunk);
        if !chunk.is_empty() {
            let _ = write!(self.output, "BDAT {}\r\n", chunk.len());
            self.output.extend_from_slice(&chunk);
            self.expect.push_back(Expect::BdatChunk);
        }
        Ok(())
    }

    /// Ends a streamed content: the last line's CRLF, then the DATA
    /// terminator or BDAT LAST. The final reply becomes due.
    pub fn end_content(&mut self) -> Result<(), Error> {
        let Some(tx) = self.transaction.as_mut() else {
            return Err(content_not_wanted());
        };
        let Some(encoder) = tx.streaming.take() else {
            return Err(content_not_wanted());
        };
        tx.content_sent = true;
        if tx.chunking {
            let mut last = Vec::new();
            encoder.finish_line(&mut last);
            self.push_bdat_last(last);
        } else {
            encoder.finish(&mut self.output);
            self.expect.push_back(Expect::DataEnd);
        }
        Ok(())
    }

    fn push_bdat_last(&mut self, chunk: Vec<u8>) {
        let _ = write!(self.output, "BDAT {} LAST\r\n", chunk.len());
        self.output.extend_from_slice(&chunk);
        self.expect.push_back(Expect::BdatLast);
    }

    /// Starts an explicit RSET.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.check_idle(Stage::Reset)?;
        self.push(Command::Rset, Expect::Reset);
        self.state = State::Busy;
        Ok(())
    }

    /// Starts QUIT. After its reply the client is closed.
    pub fn quit(&mut self) -> Result<(), Error> {
        self.check_idle(Stage::Quit)?;
        self.quit_requested = true;
        self.push(Command::Quit, Expect::Quit);
        self.state = State::Busy;
        Ok(())
    }

    /// Handles the next reply from the server. An error is fatal: the
    /// client is closed and the connection must be dropped. Other failures
    /// come as [`Event::Failed`].
    pub fn handle_reply(&mut self, reply: Reply) -> Result<(), Error> {
        let Some(expect) = self.expect.pop_front() else {
            return Err(self.fatal(Error::Protocol {
                stage: Stage::Greeting,
                detail: format!("a reply nobody asked for: {}", reply.one_line()),
            }));
        };
        let stage = expect.stage();
        if reply.code == 421 && expect != Expect::Quit {
            return Err(self.fatal(Error::Rejected {
                stage,
                reply,
                recipients: Vec::new(),
            }));
        }
        match expect {
            Expect::Greeting => self.on_greeting(reply),
            Expect::Ehlo => self.on_ehlo(reply),
            Expect::Helo => self.on_helo(reply),
            Expect::StartTls => self.on_starttls(reply),
            Expect::Auth => self.on_auth(reply),
            Expect::Reset => self.on_reset(reply),
            Expect::TxReset => self.on_tx_reply(expect, reply),
            Expect::Mail
            | Expect::Rcpt(_)
            | Expect::Data
            | Expect::DataEnd
            | Expect::BdatChunk
            | Expect::BdatLast => self.on_tx_reply(expect, reply),
            Expect::Quit => {
                self.state = State::Closed;
                self.events.push_back(Event::Closed);
                Ok(())
            }
        }
    }

    /// Called by the driver when the connection ended: any pending
    /// operation fails, and nothing more is written.
    pub fn connection_lost(&mut self) {
        self.output.clear();
        self.expect.clear();
        self.transaction = None;
        self.state = State::Closed;
    }

    fn check_idle(&self, stage: Stage) -> Result<(), Error> {
        match self.state {
            State::Ready => Ok(()),
            State::Closed if self.quit_requested => Err(Error::ClosedByCaller),
            State::Closed => Err(Error::Closed),
            State::Opening | State::Busy => Err(Error::Protocol {
                stage,
                detail: "another operation is under way on this connection".into(),
            }),
        }
    }

    fn push(&mut self, command: Command<'_>, expect: Expect) {
        let _ = write!(self.output, "{command}");
        self.expect.push_back(expect);
    }

    fn fatal(&mut self, error: Error) -> Error {
        self.connection_lost();
        error
    }

    /// The MAIL FROM parameters, and whether the content must stay 7-bit.
    fn mail_params(
        &self,
        envelope: &Envelope,
        info: &ContentInfo,
    ) -> Result<(Vec<String>, bool), Error> {
        let ext = &self.extensions;
        let mut params = Vec::new();
        let needs_utf8 = envelope.needs_smtputf8() || info.utf8_headers;
        let needs_8bit = info.eight_bit.unwrap_or(ext.eight_bit_mime);
        let seven_bit_only = info.eight_bit.is_none() && !ext.eight_bit_mime;
        if needs_utf8 && !ext.smtp_utf8 {
            return Err(Error::Unsupported {
                stage: Stage::MailFrom,
                detail: "the message has non-ASCII addresses or headers, and the server does \
                         not offer SMTPUTF8"
                    .into(),
            });
        }
        if needs_8bit && !ext.eight_bit_mime {
            return Err(Error::Unsupported {
                stage: Stage::MailFrom,
                detail: "the message has 8-bit content, and the server does not offer 8BITMIME; \
                         encode it as quoted-printable or base64"
                    .into(),
            });
        }
        if let (Some(_), Some(size)) = (ext.size, info.size) {
            if let Some(limit) = ext.size_limit().filter(|&limit| size > limit) {
                return Err(Error::Unsupported {
                    stage: Stage::MailFrom,
                    detail: format!(
                        "the message has {size} bytes, over the server's SIZE limit of {limit}"
                    ),
                });
            }
            params.push(format!("SIZE={size}"));
        }
        if needs_8bit {
            params.push("BODY=8BITMIME".into());
        }
        if needs_utf8 {
            params.push("SMTPUTF8".into());
        }
        Ok((params, seven_bit_only))
    }

    fn on_greeting(&mut self, reply: Reply) -> Result<(), Error> {
        if reply.code != 220 {
            return Err(self.unexpected_or_rejected(Stage::Greeting, reply));
        }
        let name = self.config.client_name.clone();
        self.push(Command::Ehlo(&name), Expect::Ehlo);
        Ok(())
    }

    fn on_ehlo(&mut self, reply: Reply) -> Result<(), Error> {
        if reply.is_positive() {
            self.extensions = Extensions::from_ehlo(&reply);
            return self.after_hello();
        }
        if reply.is_permanent_negative() {
            // A server that does not know EHLO (RFC 5321 3.2).
            let name = self.config.client_name.clone();
            self.push(Command::Helo(&name), Expect::Helo);
            return Ok(());
        }
        Err(self.unexpected_or_rejected(Stage::Hello, reply))
    }

    fn on_helo(&mut self, reply: Reply) -> Result<(), Error> {
        if reply.is_positive() {
            self.extensions = Extensions::default();
            return self.after_hello();
        }
        Err(self.unexpected_or_rejected(Stage::Hello, reply))
    }

    /// After a positive EHLO or HELO: STARTTLS if the policy asks for it.
    fn after_hello(&mut self) -> Result<(), Error> {
        let wants_starttls = matches!(
            self.config.tls,
            TlsPolicy::StartTlsRequired | TlsPolicy::StartTlsOpportunistic
        );
        if wants_starttls && !self.tls_active {
            if self.extensions.starttls {
                let _ = write!(self.output, "STARTTLS\r\n");
                self.expect.push_back(Expect::StartTls);
                return Ok(());
            }
            if self.config.tls == TlsPolicy::StartTlsRequired {
                return Err(self.fatal(Error::Tls {
                    detail: "the server does not offer STARTTLS, and the security mode \
                             requires it (an attacker may have stripped it); use \
                             implicit-tls if the server expects TLS from the first byte"
                        .into(),
                    reply: None,
                }));
            }
        }
        self.authenticate_or_open()
    }

    /// Starts AUTH when credentials are set, else the session is ready.
    fn authenticate_or_open(&mut self) -> Result<(), Error> {
        let Some(auth) = self.config.auth.clone() else {
            self.opened();
            return Ok(());
        };
        if !self.tls_active && self.config.tls != TlsPolicy::PlaintextInsecure {
            return Err(self.fatal(Error::Auth {
                detail: "the connection is not protected by TLS, so the credentials were not \
                         sent; use starttls-required or implicit-tls (plaintext-insecure \
                         allows AUTH in clear, for test servers only)"
                    .into(),
                reply: None,
            }));
        }
        let credentials = &auth.credentials;
        let chosen = Mechanism::choose(
            &self.extensions.auth,
            credentials.has_password(),
            credentials.has_token(),
            auth.mechanism.as_deref(),
        )
        .and_then(|mechanism| {
            Authenticator::start(
                mechanism,
                credentials,
                &auth.client_nonce,
                &auth.host,
                auth.port,
            )
        });
        match chosen {
            Ok((line, authenticator)) => {
                self.output.extend_from_slice(line.as_bytes());
                self.expect.push_back(Expect::Auth);
                self.authenticator = Some(authenticator);
                Ok(())
            }
            Err(e) => Err(self.fatal(auth_error(e))),
        }
    }

    fn on_auth(&mut self, reply: Reply) -> Result<(), Error> {
        let Some(authenticator) = self.authenticator.as_mut() else {
            return Err(self.unexpected(Stage::Auth, &reply));
        };
        match authenticator.handle_reply(&reply) {
            Ok(Step::Respond(line)) => {
                self.output.extend_from_slice(line.as_bytes());
                self.expect.push_back(Expect::Auth);
                Ok(())
            }
            Ok(Step::Done) => {
                self.authenticator = None;
                self.opened();
                Ok(())
            }
            Err(e) => {
                self.authenticator = None;
                Err(self.fatal(auth_error(e)))
            }
        }
    }

    fn on_starttls(&mut self, reply: Reply) -> Result<(), Error> {
        if reply.code == 220 {
            self.events.push_back(Event::StartTls);
            return Ok(());
        }
        if reply.is_positive() || reply.is_intermediate() {
            return Err(self.unexpected(Stage::Tls, &reply));
        }
        if self.config.tls == TlsPolicy::StartTlsOpportunistic {
            return self.authenticate_or_open();
        }
        let detail = format!(
            "the server refused STARTTLS ({}), and the security mode requires it",
            reply.one_line()
        );
        Err(self.fatal(Error::Tls {
            detail,
            reply: Some(reply),
        }))
    }

    fn opened(&mut self) {
        self.state = State::Ready;
        self.events.push_back(Event::Ready);
    }

    fn on_reset(&mut self, reply: Reply) -> Result<(), Error> {
        self.state = State::Ready;
        if reply.is_positive() {
            self.needs_reset = false;
            self.events.push_back(Event::ResetDone);
            return Ok(());
        }
        if reply.is_intermediate() {
            return Err(self.unexpected(Stage::Reset, &reply));
        }
        self.events.push_back(Event::Failed(Error::Rejected {
            stage: Stage::Reset,
            reply,
            recipients: Vec::new(),
        }));
        Ok(())
    }

    fn on_tx_reply(&mut self, expect: Expect, reply: Reply) -> Result<(), Error> {
        let stage = expect.stage();
        let refused = reply.code >= 400;
        // DATA is answered by 354 or a refusal; every other command by 2xx
        // or a refusal.
        let fitting = refused || reply.is_intermediate() == (expect == Expect::Data);
        if !fitting {
            return Err(self.unexpected(stage, &reply));
        }
        let pipelining = self.extensions.pipelining;
        let Some(tx) = self.transaction.as_mut() else {
            return Err(self.unexpected(stage, &reply));
        };
        let rejection = |reply: Reply| Error::Rejected {
            stage,
            reply,
            recipients: Vec::new(),
        };
        match expect {
            Expect::TxReset => {
                if refused {
                    tx.fail(rejection(reply));
                    if !pipelining {
                        // MAIL was not sent: the message fails here.
                        return self.finish_failed();
                    }
                    return Ok(());
                }
                self.needs_reset = false;
                if !pipelining {
                    self.write_transaction();
                }
                return Ok(());
            }
            Expect::Mail => {
                tx.mail_accepted = !refused;
                if refused {
                    tx.fail(rejection(reply));
                    if !pipelining {
                        return self.finish_failed();
                    }
                } else if !pipelining {
                    let first = tx.envelope.forward_paths()[0].clone();
                    self.push(Command::Rcpt(&first), Expect::Rcpt(0));
                }
            }
            Expect::Rcpt(i) => {
                if let Some(slot) = tx.replies.get_mut(i) {
                    *slot = Some(reply);
                }
                match tx.envelope.forward_paths().get(i + 1).cloned() {
                    Some(next) if !pipelining => {
                        self.push(Command::Rcpt(&next), Expect::Rcpt(i + 1))
                    }
                    Some(_) => {}
                    None => return self.recipients_done(),
                }
            }
            Expect::Data => {
                if refused {
                    tx.fail(rejection(reply));
                    return self.finish_failed();
                }
                if tx.failure.is_some() || !tx.any_accepted() {
                    // RFC 2920 3.1: end the unwanted content at once.
                    tx.aborted = true;
                    self.output.extend_from_slice(b".\r\n");
                } else if let Some(data) = tx.data.take() {
                    self.output.extend_from_slice(&encode_data(&data));
                    tx.content_sent = true;
                } else {
                    tx.streaming = Some(DataEncoder::new());
                    self.events.push_back(Event::ContentWanted);
                    return Ok(());
                }
                self.expect.push_back(Expect::DataEnd);
            }
            Expect::BdatChunk => {
                if refused {
                    // RFC 3030 2: no more chunks after a refused one.
                    tx.streaming = None;
                    tx.fail(rejection(reply));
                    return self.finish_failed();
                }
            }
            Expect::BdatLast => {
                if refused || tx.failure.is_some() || !tx.any_accepted() {
                    if refused {
                        tx.fail(rejection(reply));
                    }
                    return self.finish_failed();
                }
                return self.delivered(reply);
            }
            Expect::DataEnd => {
                tx.ended = true;
                if tx.aborted {
                    return self.finish_failed();
                }
                if refused {
                    tx.fail(rejection(reply));
                    return self.finish_failed();
                }
                return self.delivered(reply);
            }
            Expect::Greeting
            | Expect::Ehlo
            | Expect::Helo
            | Expect::StartTls
            | Expect::Auth
            | Expect::Reset
            | Expect::Quit => return Err(self.unexpected(stage, &reply)),
        }
        Ok(())
    }

    /// After the last recipient's reply: DATA without pipelining; with
    /// CHUNKING, the content, or [`Event::ContentWanted`] for a streamed
    /// one, when a recipient was accepted.
    fn recipients_done(&mut self) -> Result<(), Error> {
        let pipelining = self.extensions.pipelining;
        let Some(tx) = self.transaction.as_mut() else {
            return Ok(());
        };
        if tx.content_sent || (pipelining && !tx.chunking) {
            // The content or DATA is already in the flight.
            return Ok(());
        }
        if !tx.chunking {
            if !tx.any_accepted() {
                return self.finish_failed();
            }
            self.push(Command::Data, Expect::Data);
            return Ok(());
        }
        if tx.failure.is_some() || !tx.any_accepted() {
            return self.finish_failed();
        }
        match tx.data.take() {
            Some(data) => {
                tx.content_sent = true;
                self.push_bdat_last(bdat_content(&data));
            }
            None => {
                tx.streaming = Some(DataEncoder::for_bdat());
                self.events.push_back(Event::ContentWanted);
            }
        }
        Ok(())
    }

    /// Ends a transaction the server accepted.
    fn delivered(&mut self, reply: Reply) -> Result<(), Error> {
        let Some(tx) = self.transaction.take() else {
            return Ok(());
        };
        self.state = State::Ready;
        self.needs_reset = false;
        self.events.push_back(Event::Delivered(Delivery {
            recipients: tx.outcomes(true),
            final_reply: reply,
        }));
        Ok(())
    }

    /// Ends a transaction that did not deliver, once every reply of its
    /// flight was read.
    fn finish_failed(&mut self) -> Result<(), Error> {
        if !self.expect.is_empty() {
            // Pipelined replies still due: they are read before the error
            // is reported, and the last one lands here again.
            return Ok(());
        }
        let Some(mut tx) = self.transaction.take() else {
            return Ok(());
        };
        self.state = State::Ready;
        if tx.mail_accepted && !tx.ended {
            // The server may hold the transaction open: the next one
            // starts with RSET (RFC 5321 4.1.1.5).
            self.needs_reset = true;
        }
        self.events.push_back(Event::Failed(tx.error()));
        Ok(())
    }

    fn unexpected(&mut self, stage: Stage, reply: &Reply) -> Error {
        self.fatal(Error::Protocol {
            stage,
            detail: format!("unexpected reply: {}", reply.one_line()),
        })
    }

    fn unexpected_or_rejected(&mut self, stage: Stage, reply: Reply) -> Error {
        if reply.is_positive() || reply.is_intermediate() {
            return self.unexpected(stage, &reply);
        }
        self.fatal(Error::Rejected {
            stage,
            reply,
            recipients: Vec::new(),
        })
    }
}

/// A whole content for one BDAT chunk: CRLF line endings, the last line
/// ended.
fn bdat_content(data: &[u8]) -> Vec<u8> {
    let mut encoder = DataEncoder::for_bdat();
    let mut out = Vec::with_capacity(data.len() + data.len() / 32 + 2);
    encoder.encode(data, &mut out);
    encoder.finish_line(&mut out);
    out
}

fn content_not_wanted() -> Error {
    Error::Protocol {
        stage: Stage::DataEnd,
        detail: "no streamed content is wanted now".into(),
    }
}

/// The core error of a failed authentication, with a hint for refusals.
fn auth_error(e: AuthError) -> Error {
    match e {
        AuthError::Rejected { reply, detail } => {
            let mut text = format!("the server refused the credentials: {}", reply.one_line());
            if let Some(detail) = detail {
                text.push_str(&format!(" ({detail})"));
            }
            if reply.is_permanent_negative() {
                text.push_str(
                    "; check the user name, the password or token, and the mechanism (Gmail \
                     and Microsoft 365 want an OAuth2 token: XOAUTH2 or OAUTHBEARER)",
                );
            }
            Error::Auth {
                detail: text,
                reply: Some(reply),
            }
        }
        other => Error::Auth {
            detail: format!("authentication failed: {other}"),
            reply: None,
        },
    }
}
