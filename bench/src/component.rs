//! Calls into the component below the host's typed API, where a row needs
//! what that API hides: an instance reused across `build` calls, and the
//! size of the guest's linear memory.
//!
//! The host keeps its `InstancePre` private and installs its own limiter,
//! so this module pre-instantiates the same component on the mailer's
//! engine with the same linker (WASI 0.2) and the same sandbox
//! (`MailerCtxBuilder`), and installs a `ResourceLimiter` of its own
//! before instantiation, so that the initial memory is seen too. The
//! limiter is a zero-sized value that records into statics, because a
//! store's limiter must live inside its data, which the host owns.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use smtp_mailer_host::bindings::{self, exports::smtp_mailer::mailer::types as wit, MailerPre};
use smtp_mailer_host::{Mailer, MailerCtx, MailerCtxBuilder, Message, Server, COMPONENT};
use wasmtime::component::{Component, Linker};
use wasmtime::{ResourceLimiter, Store};

use crate::BoxError;

/// The largest linear memory a watched store asked for, in bytes.
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Watch;

impl ResourceLimiter for Watch {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        PEAK.fetch_max(desired, Ordering::Relaxed);
        Ok(desired <= smtp_mailer_host::DEFAULT_MEMORY_LIMIT)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The largest linear memory of the stores watched since the last call.
fn take_peak() -> usize {
    PEAK.swap(0, Ordering::Relaxed)
}

/// A call's two layers of failure (a trap, the component's error) as one.
fn finish<T, E: Into<smtp_mailer_host::Error>>(
    call: wasmtime::Result<Result<T, E>>,
) -> Result<T, BoxError> {
    match call {
        Ok(result) => result.map_err(|e| e.into().into()),
        Err(trap) => Err(format!("trap: {trap:#}").into()),
    }
}

/// The built-in component, pre-instantiated on the mailer's engine.
pub struct Watched {
    engine: wasmtime::Engine,
    pre: MailerPre<MailerCtx>,
}

impl Watched {
    /// Compiles the component again (about a second): the host's compiled
    /// copy is private.
    pub fn new(mailer: &Mailer) -> Result<Watched, BoxError> {
        let engine = mailer.engine().clone();
        let component = Component::new(&engine, COMPONENT)?;
        let mut linker = Linker::<MailerCtx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = MailerPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Watched { engine, pre })
    }

    fn instantiate(
        &self,
        ctx: &MailerCtxBuilder,
    ) -> Result<(Store<MailerCtx>, bindings::Mailer), BoxError> {
        let mut store = Store::new(&self.engine, ctx.build());
        // A zero-sized `Box` allocates nothing: leaking it is free.
        store.limiter(|_| Box::leak(Box::new(Watch)));
        // The engine interrupts at epoch deadlines; the benchmark sets none.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate(&mut store)?;
        Ok((store, instance))
    }

    /// The guest's memory over one `sender.send` (connect, send, QUIT) in
    /// a fresh store, as `Mailer::send` runs it.
    pub fn memory_of_send(
        &self,
        address: SocketAddr,
        server: &Server,
        message: &Message,
    ) -> Result<usize, BoxError> {
        take_peak();
        let (mut store, instance) = self.instantiate(&sandbox(address))?;
        let settings = bindings::server(server, Some(address.ip().to_string()));
        let message = bindings::message(message, store.data_mut().table())?;
        let call = instance
            .smtp_mailer_mailer_sender()
            .call_send(&mut store, &settings, &message);
        finish(call)?;
        Ok(take_peak())
    }

    /// The guest's memory over a session that carries `count` messages.
    pub fn memory_of_session(
        &self,
        address: SocketAddr,
        server: &Server,
        message: &Message,
        count: usize,
    ) -> Result<usize, BoxError> {
        take_peak();
        let (mut store, instance) = self.instantiate(&sandbox(address))?;
        let settings = bindings::server(server, Some(address.ip().to_string()));
        let sessions = instance.smtp_mailer_mailer_sessions();
        let handle = finish(sessions.session().call_open(&mut store, &settings))?;
        let message: wit::Message = bindings::message(message, store.data_mut().table())?;
        for _ in 0..count {
            finish(sessions.session().call_send(&mut store, handle, &message))?;
        }
        finish(sessions.session().call_close(&mut store, handle))?;
        handle
            .resource_drop(&mut store)
            .map_err(|e| format!("{e:#}"))?;
        Ok(take_peak())
    }

    /// An instance kept for many `build` calls.
    pub fn builder(&self) -> Result<Builder, BoxError> {
        take_peak();
        let (store, instance) = self.instantiate(&MailerCtxBuilder::new())?;
        Ok(Builder { store, instance })
    }
}

fn sandbox(address: SocketAddr) -> MailerCtxBuilder {
    let mut ctx = MailerCtxBuilder::new();
    ctx.allow_connect(address);
    ctx
}

/// One instance kept for many `build` calls: the cost of MIME building in
/// wasm without the cost of a fresh store.
pub struct Builder {
    store: Store<MailerCtx>,
    instance: bindings::Mailer,
}

impl Builder {
    /// An instance made by the host itself (its own limiter; no memory
    /// figures): for callgrind, where compiling again would be slow.
    pub fn from_mailer(mailer: &Mailer) -> Result<Builder, BoxError> {
        let (store, instance) = mailer.instantiate(MailerCtxBuilder::new())?;
        Ok(Builder { store, instance })
    }

    pub fn build(&mut self, message: &Message) -> Result<Vec<u8>, BoxError> {
        let message: wit::Message = bindings::message(message, self.store.data_mut().table())?;
        let call = self
            .instance
            .smtp_mailer_mailer_message()
            .call_build(&mut self.store, &message);
        finish(call)
    }

    /// The largest linear memory since the builder was made.
    pub fn peak_memory(&self) -> usize {
        PEAK.load(Ordering::Relaxed)
    }
}
