//! The composed HTTP app, compiled once, instantiated per request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::bindings::fermyon::spin2_0_0::{redis, variables};
use crate::outbound::AllowList;
use crate::outbound_redis::RedisAllowList;
use crate::store::{redis_view, variables_view, RedisData, ServeCtx, VariablesData};
use crate::variables::Variables;
use crate::{compose, ServeError, HTTP_COMPONENT};
use smtp_mailer_host::{cache, Ticker, COMPONENT, DEFAULT_MEMORY_LIMIT, TICK};

/// Builds a [`SpinHttpApp`] or a [`SpinRedisApp`](crate::SpinRedisApp): the
/// built-in components, no allowed destination, no variables, 64 MiB of
/// memory and a 2-minute deadline per request unless told otherwise.
#[derive(Debug, Default, Clone)]
pub struct SpinAppBuilder {
    app: Option<Vec<u8>>,
    mailer: Option<Vec<u8>>,
    allow: AllowList,
    redis_allow: RedisAllowList,
    variables: Variables,
    memory_limit: Option<usize>,
    deadline: Option<Duration>,
    cache_dir: Option<Option<PathBuf>>,
}

impl SpinAppBuilder {
    /// Another app component (for example `spin build`'s output) instead of
    /// the built-in HTTP or Redis one.
    pub fn app_component(mut self, wasm: Vec<u8>) -> Self {
        self.app = Some(wasm);
        self
    }

    /// Another mailer component instead of the built-in one.
    pub fn mailer_component(mut self, wasm: Vec<u8>) -> Self {
        self.mailer = Some(wasm);
        self
    }

    /// Where the components may connect (Spin's `allowed_outbound_hosts`).
    pub fn allow(mut self, allow: AllowList) -> Self {
        self.allow = allow;
        self
    }

    /// The Redis servers the component may open with Spin's outbound Redis
    /// (the `redis://` entries of `allowed_outbound_hosts`).
    pub fn redis_allow(mut self, allow: RedisAllowList) -> Self {
        self.redis_allow = allow;
        self
    }

    /// The answers to `fermyon:spin/variables`.
    pub fn variables(mut self, variables: Variables) -> Self {
        self.variables = variables;
        self
    }

    /// The memory limit of each request's store.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// How long one request may run.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The compiled-code cache folder; `None` compiles at every start.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = Some(dir);
        self
    }

    /// Composes the HTTP component with the mailer, compiles it (or loads it
    /// from the cache) and links it.
    ///
    /// Errors: [`ServeError::Compose`] or [`ServeError::Runtime`] when the
    /// components do not fit together or into this host.
    pub fn build_http(self) -> Result<SpinHttpApp, ServeError> {
        let prepared = self.prepare(HTTP_COMPONENT)?;
        let pre = ProxyPre::new(prepared.pre).map_err(|e| {
            ServeError::Runtime(format!("the composition is not an HTTP component: {e:#}"))
        })?;
        Ok(SpinHttpApp {
            pre,
            sandbox: prepared.sandbox,
        })
    }

    /// Composes `default_app` (or the component given) with the mailer,
    /// compiles and links it.
    pub(crate) fn prepare(self, default_app: &[u8]) -> Result<Prepared, ServeError> {
        let runtime = |e: &dyn std::fmt::Display| ServeError::Runtime(e.to_string());
        let composed = compose(
            self.app.as_deref().unwrap_or(default_app),
            self.mailer.as_deref().unwrap_or(COMPONENT),
        )?;
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| runtime(&e))?;
        let cache_dir = self.cache_dir.unwrap_or_else(cache::default_dir);
        let component = cache::load(&engine, &composed, cache_dir.as_deref())
            .map_err(|e| runtime(&format!("cannot compile the composition: {e:#}")))?;
        let mut linker = Linker::<ServeCtx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| runtime(&e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| runtime(&e))?;
        variables::add_to_linker::<ServeCtx, VariablesData>(&mut linker, variables_view)
            .map_err(|e| runtime(&e))?;
        redis::add_to_linker::<ServeCtx, RedisData>(&mut linker, redis_view)
            .map_err(|e| runtime(&e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| runtime(&format!("the composition does not fit this host: {e:#}")))?;
        let deadline = self.deadline.unwrap_or(Duration::from_secs(120));
        Ok(Prepared {
            pre,
            sandbox: Sandbox {
                _ticker: Arc::new(Ticker::start(engine.clone())),
                allow: Arc::new(self.allow),
                redis_allow: Arc::new(self.redis_allow),
                variables: Arc::new(self.variables),
                memory_limit: self.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
                deadline_ticks: (deadline.as_millis() / TICK.as_millis()).max(1) as u64,
            },
        })
    }
}

/// A composition, linked, with the rules of its stores.
pub(crate) struct Prepared {
    pub(crate) pre: InstancePre<ServeCtx>,
    pub(crate) sandbox: Sandbox,
}

/// What every store of an app gets: the allow-list, the variables, the
/// memory limit and the deadline.
#[derive(Clone)]
pub(crate) struct Sandbox {
    allow: Arc<AllowList>,
    redis_allow: Arc<RedisAllowList>,
    variables: Arc<Variables>,
    memory_limit: usize,
    deadline_ticks: u64,
    /// Advances the epoch while the app lives.
    _ticker: Arc<Ticker>,
}

impl Sandbox {
    /// A fresh store under the rules.
    pub(crate) fn store(&self, engine: &Engine) -> Store<ServeCtx> {
        let ctx = ServeCtx::new(
            Arc::clone(&self.allow),
            Arc::clone(&self.redis_allow),
            Arc::clone(&self.variables),
            self.memory_limit,
        );
        let mut store = Store::new(engine, ctx);
        store.limiter(|ctx| &mut ctx.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        store.epoch_deadline_trap();
        store
    }
}

/// The Spin app's HTTP component composed with the mailer, ready to serve:
/// each request runs in a fresh, sandboxed store.
pub struct SpinHttpApp {
    pre: ProxyPre<ServeCtx>,
    sandbox: Sandbox,
}

impl SpinHttpApp {
    /// A builder with the defaults.
    pub fn builder() -> SpinAppBuilder {
        SpinAppBuilder::default()
    }

    /// Runs one request through the app.
    ///
    /// Errors: a trap, the deadline, or a component that never answered.
    pub(crate) async fn handle(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
        let mut store = self.sandbox.store(self.pre.engine());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, request, out)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::Error::msg("the app never answered the request")),
                Ok(Err(e)) => Err(e.context("the app failed before answering")),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// Hyper's view of a TCP stream, for [`crate::serve`].
pub(crate) type Io = TokioIo<tokio::net::TcpStream>;
