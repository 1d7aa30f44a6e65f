//! [`Mailer`]: the component loaded once, pre-instantiated, and run in a
//! fresh sandboxed store per send or session.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{Instance, Linker};
use wasmtime::{Config, Engine, Store};

use crate::bindings::exports::smtp_mailer::mailer::{message, sender, sessions};
use crate::bindings::{self, MailerPre};
use crate::call::{finish, load_error};
use crate::ctx::{MailerCtx, MailerCtxBuilder, DEFAULT_MEMORY_LIMIT};
use crate::error::{Error, ErrorKind, Failure, Stage};
use crate::session::Session;
use crate::ticker::{Ticker, TICK};
use crate::types::{Content, Envelope, Message, SendReport, Server};
use crate::{cache, COMPONENT};

/// The default deadline of one call into the component: 10 minutes, more
/// than the longest send the default time limits allow.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(600);

/// Configures and builds a [`Mailer`].
///
/// ```no_run
/// use std::time::Duration;
/// use smtp_mailer_host::Mailer;
///
/// let mailer = Mailer::builder()
///     .memory_limit(16 << 20)
///     .call_deadline(Duration::from_secs(60))
///     .cache_dir(None) // compile at every start
///     .build()?;
/// # Ok::<(), smtp_mailer_host::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MailerBuilder {
    component: Option<Vec<u8>>,
    cache_dir: Option<PathBuf>,
    memory_limit: usize,
    call_deadline: Duration,
}

impl Default for MailerBuilder {
    fn default() -> Self {
        MailerBuilder {
            component: None,
            cache_dir: cache::default_dir(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            call_deadline: DEFAULT_CALL_DEADLINE,
        }
    }
}

impl MailerBuilder {
    /// Runs this component instead of the one built into this crate.
    pub fn component_bytes(mut self, wasm: impl Into<Vec<u8>>) -> Self {
        self.component = Some(wasm.into());
        self
    }

    /// Runs the component in `path` instead of the built-in one.
    ///
    /// ```no_run
    /// let mailer = smtp_mailer_host::Mailer::builder()
    ///     .component_file("smtp_mailer_guest.wasm")?
    ///     .build()?;
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn component_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let wasm = std::fs::read(path)
            .map_err(|e| Error::runtime(format!("cannot read {}: {e}", path.display())))?;
        Ok(self.component_bytes(wasm))
    }

    /// Where compiled code is cached; `None` compiles at every start.
    /// Defaults to `~/.cache/smtp-mailer`.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// The limit of the component's linear memory per store, in bytes.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The longest one call into the component may run, waiting included.
    pub fn call_deadline(mut self, deadline: Duration) -> Self {
        self.call_deadline = deadline;
        self
    }

    /// Loads (or compiles and caches) the component and pre-instantiates it.
    /// Fails when the component cannot be compiled or does not fit this
    /// host (an [`ErrorKind::Runtime`] error).
    pub fn build(self) -> Result<Mailer, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config).map_err(Error::runtime)?;
        let wasm = self.component.as_deref().unwrap_or(COMPONENT);
        let component = cache::load(&engine, wasm, self.cache_dir.as_deref())
            .map_err(|e| Error::runtime(format!("cannot load the component: {e:#}")))?;
        let mut linker = Linker::<MailerCtx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(Error::runtime)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| Error::runtime(format!("the component does not fit this host: {e:#}")))?;
        let pre = MailerPre::new(pre).map_err(Error::runtime)?;
        let exports = Exports {
            message: message::GuestIndices::new(pre.instance_pre()).map_err(Error::runtime)?,
            sender: sender::GuestIndices::new(pre.instance_pre()).map_err(Error::runtime)?,
            sessions: sessions::GuestIndices::new(pre.instance_pre()).map_err(Error::runtime)?,
        };
        let ticks = (self.call_deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        Ok(Mailer {
            _ticker: Ticker::start(engine.clone()),
            engine,
            pre,
            exports,
            memory_limit: self.memory_limit,
            deadline_ticks: ticks,
        })
    }
}

/// The positions of the exported interfaces' functions.
struct Exports {
    message: message::GuestIndices,
    sender: sender::GuestIndices,
    sessions: sessions::GuestIndices,
}

/// The mailer component, ready to run. Cheap to share across threads:
/// every call gets a store of its own.
///
/// ```no_run
/// use std::sync::Arc;
/// use smtp_mailer_host::{Mailbox, Mailer, Message, Server};
///
/// let mailer = Arc::new(Mailer::new()?);
/// let workers: Vec<_> = ["ada@example.org", "alan@example.org"]
///     .into_iter()
///     .map(|to| {
///         let mailer = Arc::clone(&mailer);
///         std::thread::spawn(move || {
///             let server = Server::new("smtp.example.org", 587);
///             mailer.send(&server, &Message {
///                 from: Mailbox::new("app@example.org"),
///                 to: vec![Mailbox::new(to)],
///                 subject: "Hello".into(),
///                 text: Some("Hi".into()),
///                 ..Message::default()
///             })
///         })
///     })
///     .collect();
/// for worker in workers {
///     let report = worker.join().expect("no panic")?;
///     assert!(report.all_accepted());
/// }
/// # Ok::<(), smtp_mailer_host::Error>(())
/// ```
///
/// Each store is sandboxed by [`MailerCtxBuilder`]: it may connect to the
/// address of the server it is asked to use, and nothing else.
pub struct Mailer {
    engine: Engine,
    pre: MailerPre<MailerCtx>,
    /// Where each exported interface is, found once: a call loads (and
    /// type-checks) only the functions of the interface it uses.
    exports: Exports,
    memory_limit: usize,
    deadline_ticks: u64,
    /// Advances the epoch while the mailer lives; stopped on drop.
    _ticker: Ticker,
}

impl Mailer {
    /// A builder with the defaults: the built-in component, the default
    /// cache folder, 64 MiB of memory and a 10-minute call deadline.
    pub fn builder() -> MailerBuilder {
        MailerBuilder::default()
    }

    /// The built-in component with the defaults.
    ///
    /// ```no_run
    /// let mailer = smtp_mailer_host::Mailer::new()?;
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn new() -> Result<Mailer, Error> {
        MailerBuilder::default().build()
    }

    /// Builds the message's bytes without sending them (attachment files
    /// are read whole). Bad input is an [`ErrorKind::InvalidInput`] error
    /// naming the field.
    ///
    /// ```
    /// use smtp_mailer_host::{Mailbox, Mailer, Message};
    ///
    /// let mailer = Mailer::new()?;
    /// let bytes = mailer.build_message(&Message {
    ///     from: Mailbox::new("app@example.org"),
    ///     to: vec![Mailbox::named("Ada", "ada@example.org")],
    ///     subject: "Hello".into(),
    ///     text: Some("Hi Ada".into()),
    ///     ..Message::default()
    /// })?;
    /// assert!(String::from_utf8_lossy(&bytes).contains("Subject: Hello"));
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn build_message(&self, message: &Message) -> Result<Vec<u8>, Error> {
        let (mut store, instance) = self.instance(MailerCtxBuilder::new())?;
        let exports = self.exports.message.load(&mut store, &instance);
        let exports = exports.map_err(load_error)?;
        let message = bindings::message(message, &mut store.data_mut().table)?;
        finish(exports.call_build(&mut store, &message))
    }

    /// Sends `message` to `server` over a new connection. Attachments given
    /// as [`Content::File`](crate::Content::File) are streamed.
    ///
    /// The report has one outcome per recipient: a refused recipient does not
    /// stop the others. An error means nothing was delivered; it says whether
    /// a retry may help ([`Error::is_transient`]) and carries the server's
    /// reply when there was one.
    ///
    /// ```no_run
    /// use smtp_mailer_host::{Attachment, Content, Credentials, Mailbox, Mailer, Message, Server};
    ///
    /// let mailer = Mailer::new()?;
    /// let mut server = Server::new("smtp.example.org", 587); // STARTTLS required
    /// server.credentials = Some(Credentials::password("app", "secret"));
    /// let report = mailer.send(&server, &Message {
    ///     from: Mailbox::new("shop@example.org"),
    ///     to: vec![Mailbox::new("ada@example.org")],
    ///     subject: "Your receipt".into(),
    ///     text: Some("Thanks!".into()),
    ///     attachments: vec![Attachment {
    ///         filename: "receipt.pdf".into(),
    ///         content_type: "application/pdf".into(),
    ///         content: Content::File("receipt.pdf".into()), // streamed
    ///         content_id: None,
    ///     }],
    ///     ..Message::default()
    /// });
    /// match report {
    ///     Ok(report) if report.all_accepted() => println!("sent"),
    ///     Ok(report) => println!("some refused: {:?}", report.recipients),
    ///     Err(e) if e.is_transient() => println!("try again later: {e}"),
    ///     Err(e) => println!("failed: {e}"),
    /// }
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn send(&self, server: &Server, message: &Message) -> Result<SendReport, Error> {
        let (address, settings) = sandboxed_server(server)?;
        let (mut store, instance) = self.instance(allow(address, server))?;
        let exports = self.exports.sender.load(&mut store, &instance);
        let exports = exports.map_err(load_error)?;
        let message = bindings::message(message, &mut store.data_mut().table)?;
        finish(exports.call_send(&mut store, &settings, &message)).map(Into::into)
    }

    /// Sends `data` as is (CRLF-normalised and dot-stuffed on the wire) to
    /// `envelope`'s recipients. A [`Content::File`](crate::Content::File)
    /// is streamed.
    ///
    /// ```no_run
    /// use smtp_mailer_host::{Content, Envelope, Mailer, Server};
    ///
    /// let mailer = Mailer::new()?;
    /// let envelope = Envelope {
    ///     reverse_path: "bounces@example.org".into(),
    ///     forward_paths: vec!["ada@example.org".into()],
    /// };
    /// let data = Content::File("message.eml".into());
    /// mailer.send_raw(&Server::new("smtp.example.org", 587), &envelope, &data)?;
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn send_raw(
        &self,
        server: &Server,
        envelope: &Envelope,
        data: &Content,
    ) -> Result<SendReport, Error> {
        let (address, settings) = sandboxed_server(server)?;
        let (mut store, instance) = self.instance(allow(address, server))?;
        let exports = self.exports.sender.load(&mut store, &instance);
        let exports = exports.map_err(load_error)?;
        let data = bindings::content(data, &mut store.data_mut().table, "data", false)?;
        let call = exports.call_send_raw(&mut store, &settings, &envelope.into(), &data);
        finish(call).map(Into::into)
    }

    /// Opens a session: one connection for many messages (see [`Session`]).
    ///
    /// ```no_run
    /// use smtp_mailer_host::{Mailbox, Mailer, Message, Server};
    ///
    /// let mailer = Mailer::new()?;
    /// let mut session = mailer.open_session(&Server::new("smtp.example.org", 587))?;
    /// for to in ["ada@example.org", "alan@example.org"] {
    ///     session.send(&Message {
    ///         from: Mailbox::new("app@example.org"),
    ///         to: vec![Mailbox::new(to)],
    ///         subject: "Hello".into(),
    ///         text: Some("Hi".into()),
    ///         ..Message::default()
    ///     })?;
    /// }
    /// session.close()?;
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn open_session(&self, server: &Server) -> Result<Session, Error> {
        let (address, settings) = sandboxed_server(server)?;
        let (mut store, instance) = self.instance(allow(address, server))?;
        let exports = self.exports.sessions.load(&mut store, &instance);
        let exports = exports.map_err(load_error)?;
        Session::open(store, exports, &settings, self.deadline_ticks)
    }

    /// A store sandboxed by `ctx` and an instance of the component in it:
    /// the low-level entry for hosts that call the WIT exports themselves.
    /// The store has this mailer's memory limit and call deadline.
    ///
    /// ```no_run
    /// use smtp_mailer_host::bindings::exports::smtp_mailer::mailer::types as wit;
    /// use smtp_mailer_host::{Mailer, MailerCtxBuilder};
    ///
    /// let mailer = Mailer::new()?;
    /// let mut ctx = MailerCtxBuilder::new();
    /// ctx.allow_connect("192.0.2.10:587".parse()?);
    /// let (mut store, exports) = mailer.instantiate(ctx)?;
    /// let settings = wit::Server {
    ///     host: "smtp.example.org".into(),
    ///     connect_address: Some("192.0.2.10".into()),
    ///     port: 587,
    ///     security: wit::Security::StarttlsRequired,
    ///     credentials: None,
    ///     timeouts: None,
    ///     client_name: None,
    ///     ca_pem: None,
    ///     trace: false,
    /// };
    /// let session = exports.smtp_mailer_mailer_sessions().session();
    /// let handle = session.call_open(&mut store, &settings)?.map_err(|e| e.message)?;
    /// session.call_close(&mut store, handle)?.map_err(|e| e.message)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn instantiate(
        &self,
        ctx: MailerCtxBuilder,
    ) -> Result<(Store<MailerCtx>, bindings::Mailer), Error> {
        let (mut store, instance) = self.instance(ctx)?;
        let exports = bindings::Mailer::new(&mut store, &instance);
        Ok((store, exports.map_err(load_error)?))
    }

    /// A sandboxed store and an instance in it, with no export loaded yet.
    fn instance(&self, ctx: MailerCtxBuilder) -> Result<(Store<MailerCtx>, Instance), Error> {
        let mut ctx = ctx;
        ctx.memory_limit(self.memory_limit);
        let mut store = Store::new(&self.engine, ctx.build());
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        let instance = self
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .map_err(|e| Error::runtime(format!("cannot instantiate the component: {e:#}")))?;
        Ok((store, instance))
    }

    /// The engine the component runs on: for a host that also runs other
    /// components on it.
    ///
    /// ```no_run
    /// let mailer = smtp_mailer_host::Mailer::new()?;
    /// let other = wasmtime::Module::new(mailer.engine(), "(module)").expect("compiles");
    /// # Ok::<(), smtp_mailer_host::Error>(())
    /// ```
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn allow(address: SocketAddr, server: &Server) -> MailerCtxBuilder {
    let mut ctx = MailerCtxBuilder::new();
    ctx.allow_connect(address).inherit_stderr(server.trace);
    ctx
}

/// The one address the sandbox lets the component reach for `server`, and
/// the settings that make the component connect to it: the host resolves
/// the name, so the component needs no DNS.
fn sandboxed_server(
    server: &Server,
) -> Result<
    (
        SocketAddr,
        bindings::exports::smtp_mailer::mailer::types::Server,
    ),
    Error,
> {
    let address = resolve(server)?;
    let settings = bindings::server(server, Some(address.ip().to_string()));
    Ok((address, settings))
}

fn resolve(server: &Server) -> Result<SocketAddr, Error> {
    if let Some(ip) = &server.connect_address {
        let ip: IpAddr = ip.parse().map_err(|_| {
            Error::invalid(
                "server.connect-address",
                format!("{ip:?} is not an IP address"),
            )
        })?;
        return Ok(SocketAddr::new(ip, server.port));
    }
    if server.host.is_empty() {
        return Err(Error::invalid("server.host", "is empty"));
    }
    let dns_error = |detail: String| Error {
        message: detail.clone(),
        kind: ErrorKind::Dns(Failure {
            stage: Stage::Connect,
            detail,
        }),
        transient: true,
    };
    let addresses: Vec<SocketAddr> = (server.host.as_str(), server.port)
        .to_socket_addrs()
        .map_err(|e| dns_error(format!("cannot resolve {}: {e}", server.host)))?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| dns_error(format!("{} has no address", server.host)))
}
