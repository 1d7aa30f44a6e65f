//! `smtp-mailer serve`: a Spin manifest's triggers, run the way `spin up`
//! runs them.

use std::io::Write;

use smtp_mailer_serve::{
    launch, AllowList, App, Overrides, SpinHttpApp, Variables, BUILT_IN_HTTP_MANIFEST,
    BUILT_IN_REDIS_MANIFEST,
};

use crate::args::ServeArgs;
use crate::invalid;
use crate::output::{EXIT_OK, EXIT_PERMANENT};

/// Serves until the process is stopped; the exit code when it cannot.
pub fn serve(args: ServeArgs) -> u8 {
    let failed = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        EXIT_PERMANENT
    };
    let apps = match &args.app {
        Some(path) => App::from_file(path).map(|app| vec![app]),
        None => {
            let mut apps = vec![App::built_in(BUILT_IN_HTTP_MANIFEST)];
            if args.redis_address.is_some() {
                apps.push(App::built_in(BUILT_IN_REDIS_MANIFEST));
            }
            apps.into_iter().collect()
        }
    };
    let apps = match apps {
        Ok(apps) => apps,
        Err(e) => return invalid(e),
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
    let mut overrides = Overrides {
        redis_address: args.redis_address.clone(),
        redis_channel: args.redis_channel.clone(),
        ..Overrides::default()
    };
    if !args.allow_outbound.is_empty() {
        match AllowList::parse(&args.allow_outbound) {
            Ok(allow) => overrides.allow = Some(allow),
            Err(e) => return invalid(format!("--allow-outbound: {e}")),
        }
    }
    if let Some(path) = &args.component {
        match read(path) {
            Ok(wasm) => overrides.mailer_component = Some(wasm),
            Err(code) => return code,
        }
    }
    if let Some(path) = &args.http_component {
        match read(path) {
            Ok(wasm) => overrides.http_component = Some(wasm),
            Err(code) => return code,
        }
    }
    let mut base = SpinHttpApp::builder();
    if let Some(mib) = args.memory_limit {
        base = base.memory_limit((mib as usize) << 20);
    }
    let launched = match launch(&apps, &variables, &overrides, &base) {
        Ok(launched) => launched,
        Err(e) => return failed(&e),
    };
    let listener = if launched.http.is_empty() {
        println!("no HTTP trigger: running the Redis trigger only");
        None
    } else {
        let listener = match std::net::TcpListener::bind(args.listen) {
            Ok(listener) => listener,
            Err(e) => return failed(&format!("cannot listen on {}: {e}", args.listen)),
        };
        match listener.local_addr() {
            Ok(address) => println!("listening on http://{address}"),
            Err(e) => return failed(&e),
        }
        Some(listener)
    };
    let _ = std::io::stdout().flush();
    match smtp_mailer_serve::serve(launched.http, listener, launched.redis) {
        Ok(()) => EXIT_OK,
        Err(e) => failed(&e),
    }
}
