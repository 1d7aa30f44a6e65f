//! `smtp-mailer serve`: the Spin app, run the way Spin does.

use std::io::Write;

use smtp_mailer_serve::{AllowList, SpinHttpApp, Variables};

use crate::args::ServeArgs;
use crate::invalid;
use crate::output::{EXIT_OK, EXIT_PERMANENT};

/// Serves until the process is stopped; the exit code when it cannot.
pub fn serve(args: ServeArgs) -> u8 {
    let allow = match AllowList::parse(&args.allow_outbound) {
        Ok(allow) => allow,
        Err(e) => return invalid(format!("--allow-outbound: {e}")),
    };
    let mut variables = Variables::new();
    variables.add_environment();
    if let Some(path) = &args.variables_file {
        if let Err(e) = variables.add_file(path) {
            return invalid(e);
        }
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| invalid(format!("{}: {e}", path.display())))
    };
    let mut builder = SpinHttpApp::builder().allow(allow).variables(variables);
    if let Some(path) = &args.component {
        match read(path) {
            Ok(wasm) => builder = builder.mailer_component(wasm),
            Err(code) => return code,
        }
    }
    if let Some(mib) = args.memory_limit {
        builder = builder.memory_limit((mib as usize) << 20);
    }
    let redis = match &args.redis_address {
        Some(address) => match builder.clone().build_redis() {
            Ok(app) => Some(smtp_mailer_serve::RedisTrigger {
                app,
                address: address.clone(),
                channel: args.redis_channel.clone(),
            }),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_PERMANENT;
            }
        },
        None => None,
    };
    if let Some(path) = &args.http_component {
        match read(path) {
            Ok(wasm) => builder = builder.app_component(wasm),
            Err(code) => return code,
        }
    }
    let app = match builder.build_http() {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_PERMANENT;
        }
    };
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return EXIT_PERMANENT;
        }
    };
    match listener.local_addr() {
        Ok(address) => println!("listening on http://{address}"),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_PERMANENT;
        }
    }
    let _ = std::io::stdout().flush();
    match smtp_mailer_serve::serve(app, listener, redis) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_PERMANENT
        }
    }
}
