//! [`Mailer`]: the component loaded once, pre-instantiated, and run in a
//! fresh sandboxed store per send or session.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Instance, Linker};
use wasmtime::{Config, Engine, Store};

use crate::bindings::exports::smtp_mailer::mailer::{message, sender, sessions};
use crate::bindings::{self, MailerPre};
use crate::ctx::{MailerCtx, MailerCtxBuilder, DEFAULT_MEMORY_LIMIT};
use crate::error::{Error, ErrorKind, Failure, Stage};
use crate::session::Session;
use crate::types::{Content, Envelope, Message, SendReport, Server};
use crate::{cache, COMPONENT};

/// How often the epoch advances: the granularity of call deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// The default deadline of one call into the component: 10 minutes, more
/// than the longest send the default time limits allow.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(600);

/// Configures and builds a [`Mailer`].
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
    pub fn new() -> Result<Mailer, Error> {
        MailerBuilder::default().build()
    }

    /// Builds the message's bytes without sending them (attachment files
    /// are read whole).
    pub fn build_message(&self, message: &Message) -> Result<Vec<u8>, Error> {
        let (mut store, instance) = self.instance(MailerCtxBuilder::new())?;
        let exports = self.exports.message.load(&mut store, &instance);
        let exports = exports.map_err(load_error)?;
        let message = bindings::message(message, &mut store.data_mut().table)?;
        finish(exports.call_build(&mut store, &message))
    }

    /// Sends `message` to `server` over a new connection. Attachments given
    /// as [`Content::File`](crate::Content::File) are streamed.
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

    /// Opens a session: one connection for many messages.
    pub fn open_session(&self, server: &Server) -> Result<Session, Error> {
        let (address, settings) = sandboxed_server(server)?;
        let (mut store, instance) = self.instance(allow(address, server))?;
        let exports = self.exports.sessions.load(&mut store, &instance);
        let exports = exports.map_err(load_error)?;
        Session::open(store, exports, &settings, self.deadline_ticks)
    }

    /// A store sandboxed by `ctx` and an instance of the component in it:
    /// the low-level entry for hosts that call the WIT exports themselves.
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

    /// The engine the component runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn load_error(e: wasmtime::Error) -> Error {
    Error::runtime(format!(
        "the component lacks an export this host uses: {e:#}"
    ))
}

fn allow(address: SocketAddr, server: &Server) -> MailerCtxBuilder {
    let mut ctx = MailerCtxBuilder::new();
    ctx.allow_connect(address).inherit_stderr(server.trace);
    ctx
}

/// Turns a call's two layers of result (trap, then the component's own
/// error) into one.
pub(crate) fn finish<T, E: Into<Error>>(call: wasmtime::Result<Result<T, E>>) -> Result<T, Error> {
    match call {
        Ok(result) => result.map_err(Into::into),
        Err(trap) => Err(Error::runtime(describe_trap(&trap))),
    }
}

/// One line for a trap: what the sandbox stopped, without the backtrace.
fn describe_trap(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            "interrupted at the call deadline (epoch interruption): the call ran too long".into()
        }
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "the component aborted (wasm `unreachable`): \
             a panic, or an allocation refused at the memory limit"
                .into()
        }
        Some(trap) => format!("the component trapped: {trap}"),
        None => error
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
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

/// A thread that advances the engine's epoch, so that call deadlines fire.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("smtp-mailer-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Ticker { stop, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
