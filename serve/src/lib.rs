//! The Spin app without Spin: `smtp-mailer serve` runs a Spin manifest's
//! HTTP and Redis triggers the way `spin up` does.
//!
//! - [`Manifest`] reads `spin.toml`: variables with their defaults, triggers,
//!   components, `allowed_outbound_hosts` templates and dependencies.
//!   [`launch`] resolves it as Spin does at start (every required variable
//!   needs a value; defaults always apply) and builds each trigger's app.
//!   The repository's own manifests are built in
//!   ([`BUILT_IN_HTTP_MANIFEST`], [`BUILT_IN_REDIS_MANIFEST`]), with the
//!   components built beside this crate.
//! - [`compose`] plugs the mailer component into the app component (Spin's
//!   `[component.x.dependencies]`), so the mailer runs as it is, once per
//!   request, inside the composition.
//! - [`SpinHttpApp`] serves the composition with wasmtime-wasi-http: a
//!   fresh store per request, a memory limit and a deadline, no files, no
//!   environment, no DNS, no outgoing HTTP, and TCP only to what the
//!   [`AllowList`] names (Spin's `allowed_outbound_hosts` rule: IP or CIDR
//!   with a port, a host name never matches), and only when the mailer
//!   dependency inherits it. Deny by default: an empty list allows no
//!   connection at all.
//! - [`SpinRedisApp`] runs the Redis-triggered component the same way, and
//!   [`subscribe`] feeds it each message of a channel of a real Redis.
//! - [`Variables`] holds the values given for the application variables:
//!   the environment's `SPIN_VARIABLE_<NAME>` (as `spin up`) or a file.
//!
//! ```no_run
//! use smtp_mailer_serve::{launch, App, Overrides, SpinHttpApp, Variables};
//!
//! let mut variables = Variables::new();
//! variables.add_environment();
//! let apps = [App::from_file("spin.toml".as_ref())?];
//! let launched = launch(&apps, &variables, &Overrides::default(), &SpinHttpApp::builder())?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:3000")?;
//! smtp_mailer_serve::serve(launched.http, Some(listener), launched.redis)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod app;
mod compose;
mod error;
mod launch;
mod manifest;
mod outbound;
mod outbound_redis;
mod redis;
mod resp;
mod route;
mod server;
mod store;
mod variables;

/// `fermyon:spin/variables@2.0.0`, `fermyon:spin/redis@2.0.0` and
/// `fermyon:spin/inbound-redis`, from `serve/wit/spin-host` (vendored from
/// spin-sdk 5.2).
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/spin-host",
        world: "smtp-mailer:spin-host/redis-app",
        imports: { default: async },
        exports: { default: async },
        with: {
            "fermyon:spin/redis.connection": crate::outbound_redis::RedisConnection,
        },
    });
}

pub use app::{SpinAppBuilder, SpinHttpApp};
pub use compose::{compose, imports_and_exports};
pub use error::ServeError;
pub use launch::{
    launch, App, Launched, Overrides, Sources, BUILT_IN_HTTP_MANIFEST, BUILT_IN_REDIS_MANIFEST,
};
pub use manifest::{
    Component, Declared, Dependency, HttpTriggerEntry, Manifest, RedisTriggerEntry,
};
pub use outbound::{AllowList, OutboundRule};
pub use outbound_redis::{RedisAllowList, RedisConnection};
pub use redis::{subscribe, RedisTrigger, SpinRedisApp};
pub use route::Route;
pub use server::serve;
pub use variables::Variables;

/// The Spin app's HTTP component (`spin/http`, built with this crate), not
/// yet composed with the mailer.
pub const HTTP_COMPONENT: &[u8] = include_bytes!(env!("SMTP_MAILER_SPIN_HTTP_PATH"));

/// The Spin app's Redis-triggered component (`spin/redis`, built with this
/// crate), not yet composed with the mailer.
pub const REDIS_COMPONENT: &[u8] = include_bytes!(env!("SMTP_MAILER_SPIN_REDIS_PATH"));
