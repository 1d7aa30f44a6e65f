//! A host that runs the SmtpMailer component with its own engine, linker and
//! WASI context, and calls the WIT exports itself: what an application that
//! already embeds wasmtime (and loads other plugins) does.
//!
//! ```sh
//! cargo run -p smtp-mailer-examples --bin own-wasi-ctx -- 127.0.0.1:2525
//! ```
//!
//! The sandbox is this host's to decide: here the component may open a TCP
//! connection to the one server address and nothing else (the bind of
//! `0.0.0.0:0` that precedes every outgoing connection is allowed too), and
//! gets no files, environment or name resolution.

use std::net::SocketAddr;

use smtp_mailer_host::bindings::exports::smtp_mailer::mailer::types as wit;
use smtp_mailer_host::bindings::Mailer;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// This host's per-store state: its own WASI context and resource table.
struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn main() -> wasmtime::Result<()> {
    let server: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or("127.0.0.1:2525".into())
        .parse()?;

    let engine = Engine::new(Config::new().wasm_component_model(true))?;
    let component = Component::new(&engine, smtp_mailer_host::COMPONENT)?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;

    // Deny by default; allow TCP to the server only.
    let wasi = WasiCtx::builder()
        .allow_tcp(true)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(move |address, usage| {
            Box::pin(async move {
                match usage {
                    SocketAddrUse::TcpConnect => address == server,
                    SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
                    _ => false,
                }
            })
        })
        .build();
    let mut store = Store::new(
        &engine,
        Host {
            wasi,
            table: ResourceTable::new(),
        },
    );
    let mailer = Mailer::instantiate(&mut store, &component, &linker)?;

    let settings = wit::Server {
        host: server.ip().to_string(),
        connect_address: Some(server.ip().to_string()),
        port: server.port(),
        security: wit::Security::PlaintextInsecure,
        credentials: None,
        timeouts: None,
        client_name: None,
        ca_pem: None,
        trace: false,
    };
    let message = wit::Message {
        from: wit::Mailbox {
            name: Some("Example host".into()),
            address: "host@example.org".into(),
        },
        reply_to: vec![],
        to: vec![wit::Mailbox {
            name: None,
            address: "ada@example.org".into(),
        }],
        cc: vec![],
        bcc: vec![],
        subject: "Sent through the WIT exports".into(),
        text: Some("This host called smtp-mailer:mailer/sender.send itself.".into()),
        html: None,
        attachments: vec![],
        headers: vec![],
        message_id: None,
        date: None,
        dkim: None,
        envelope: None,
    };

    // The component's own errors are values (`wit::Error`); a trap is the
    // outer error.
    match mailer
        .smtp_mailer_mailer_sender()
        .call_send(&mut store, &settings, &message)?
    {
        Ok(report) => {
            for r in &report.recipients {
                println!("{}: {} {}", r.address, r.reply.code, r.reply.text);
            }
            Ok(())
        }
        Err(e) => Err(wasmtime::Error::msg(format!("{:?}: {}", e.code, e.message))),
    }
}
