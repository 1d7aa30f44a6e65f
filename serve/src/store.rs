//! What one request's store holds: WASI with the outbound rule, wasi:http
//! without outgoing requests, the variables, and the memory limit.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::{HasData, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::outbound::AllowList;
use crate::outbound_redis::{RedisAllowList, RedisView};
use crate::variables::{Variables, VariablesView};

/// One request's state.
pub(crate) struct ServeCtx {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoingHttp,
    table: ResourceTable,
    variables: Arc<Variables>,
    redis_allow: Arc<RedisAllowList>,
    pub(crate) limits: StoreLimits,
}

impl ServeCtx {
    /// A fresh state: TCP connections only where `allow` says, no UDP, no
    /// name lookups, standard error inherited (the components' logs).
    pub(crate) fn new(
        allow: Arc<AllowList>,
        redis_allow: Arc<RedisAllowList>,
        variables: Arc<Variables>,
        memory_limit: usize,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(true)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .inherit_stderr()
            .socket_addr_check(move |address, usage| {
                let allow = Arc::clone(&allow);
                Box::pin(async move {
                    match usage {
                        SocketAddrUse::TcpConnect => allow.allows(address),
                        SocketAddrUse::TcpBind => {
                            address.ip().is_unspecified() && address.port() == 0
                        }
                        _ => false,
                    }
                })
            });
        ServeCtx {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            variables,
            redis_allow,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .instances(32)
                .tables(64)
                .memories(8)
                .build(),
        }
    }
}

impl WasiView for ServeCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ServeCtx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The `fermyon:spin/variables` view of a store.
pub(crate) struct VariablesData;

impl HasData for VariablesData {
    type Data<'a> = VariablesView<'a>;
}

/// The getter that `add_to_linker` needs.
pub(crate) fn variables_view(ctx: &mut ServeCtx) -> VariablesView<'_> {
    VariablesView(&ctx.variables)
}

/// The `fermyon:spin/redis` view of a store.
pub(crate) struct RedisData;

impl HasData for RedisData {
    type Data<'a> = RedisView<'a>;
}

/// The getter that `add_to_linker` needs.
pub(crate) fn redis_view(ctx: &mut ServeCtx) -> RedisView<'_> {
    RedisView {
        table: &mut ctx.table,
        allow: &ctx.redis_allow,
    }
}

/// Outgoing HTTP is denied: the app sends mail, over TCP, nothing else.
struct NoOutgoingHttp;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
