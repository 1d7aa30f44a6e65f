//! The sandbox of one store: WASI with a deny-by-default network, no
//! filesystem, no environment, and bounded memory.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The default limit of the component's linear memory: 64 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

/// Builds a [`MailerCtx`].
///
/// Everything is denied unless allowed here: the component may open TCP
/// connections only to the addresses given to [`allow_connect`], may not
/// resolve names, and sees no files, no environment variables, no
/// arguments and no standard input. Its standard output is discarded, and
/// so is its standard error unless [`inherit_stderr`] is set.
///
/// ```no_run
/// use smtp_mailer_host::{Mailer, MailerCtxBuilder};
///
/// let mut ctx = MailerCtxBuilder::new();
/// ctx.allow_connect("192.0.2.10:587".parse()?)
///     .memory_limit(16 << 20)
///     .inherit_stderr(true);
/// let (store, exports) = Mailer::new()?.instantiate(ctx)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`inherit_stderr`]: MailerCtxBuilder::inherit_stderr
///
/// [`allow_connect`]: MailerCtxBuilder::allow_connect
#[derive(Debug, Clone)]
pub struct MailerCtxBuilder {
    allowed: Vec<SocketAddr>,
    memory_limit: usize,
    inherit_stderr: bool,
}

impl Default for MailerCtxBuilder {
    fn default() -> Self {
        MailerCtxBuilder {
            allowed: Vec::new(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            inherit_stderr: false,
        }
    }
}

impl MailerCtxBuilder {
    /// A builder that allows nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows TCP connections to `address` (an IP and port).
    pub fn allow_connect(&mut self, address: SocketAddr) -> &mut Self {
        if !self.allowed.contains(&address) {
            self.allowed.push(address);
        }
        self
    }

    /// Bounds the component's linear memory, in bytes.
    pub fn memory_limit(&mut self, bytes: usize) -> &mut Self {
        self.memory_limit = bytes;
        self
    }

    /// Lets the component write to this process's standard error (its
    /// traces); discarded otherwise.
    pub fn inherit_stderr(&mut self, inherit: bool) -> &mut Self {
        self.inherit_stderr = inherit;
        self
    }

    /// Builds the context for one store.
    pub fn build(&self) -> MailerCtx {
        let allowed: Arc<[SocketAddr]> = self.allowed.clone().into();
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(!allowed.is_empty())
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |address, usage| {
                let allowed = Arc::clone(&allowed);
                Box::pin(async move { is_allowed(&allowed, address, usage) })
            });
        if self.inherit_stderr {
            wasi.inherit_stderr();
        }
        MailerCtx {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: Limits {
                store: StoreLimitsBuilder::new()
                    .memory_size(self.memory_limit)
                    .instances(16)
                    .tables(64)
                    .memories(4)
                    .build(),
                peak_memory: 0,
            },
        }
    }
}

/// The policy: connect only to an allowed address; bind only the wildcard
/// address with port 0, which every outgoing connection binds first.
fn is_allowed(allowed: &[SocketAddr], address: SocketAddr, usage: SocketAddrUse) -> bool {
    match usage {
        SocketAddrUse::TcpConnect => allowed.contains(&address),
        SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
        _ => false,
    }
}

/// The state of one store running the mailer component.
pub struct MailerCtx {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: Limits,
}

/// The store's limits, and the largest linear memory it granted.
pub(crate) struct Limits {
    store: StoreLimits,
    peak_memory: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.store.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.store.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.store.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.store.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.store.instances()
    }

    fn tables(&self) -> usize {
        self.store.tables()
    }

    fn memories(&self) -> usize {
        self.store.memories()
    }
}

impl MailerCtx {
    /// The store's resource table, where the host lends streams (see
    /// [`crate::bindings::message`]).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The largest linear memory the component has had in this store, in
    /// bytes: WebAssembly memory never shrinks, so this is its size now.
    pub fn peak_memory(&self) -> usize {
        self.limits.peak_memory
    }
}

impl WasiView for MailerCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_allows_only_the_listed_server() {
        let server: SocketAddr = "127.0.0.1:2525".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:2526".parse().unwrap();
        let allowed = [server];
        assert!(is_allowed(&allowed, server, SocketAddrUse::TcpConnect));
        assert!(!is_allowed(&allowed, other, SocketAddrUse::TcpConnect));
        assert!(is_allowed(
            &allowed,
            "0.0.0.0:0".parse().unwrap(),
            SocketAddrUse::TcpBind
        ));
        assert!(!is_allowed(
            &allowed,
            "0.0.0.0:25".parse().unwrap(),
            SocketAddrUse::TcpBind
        ));
        assert!(!is_allowed(&allowed, server, SocketAddrUse::TcpListen));
        assert!(!is_allowed(&allowed, server, SocketAddrUse::UdpBind));
    }
}
