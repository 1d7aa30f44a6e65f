//! `smtp-mailer`: send email from a shell or a job, through the sandboxed
//! mailer component.

// `Error` is a plain value of about 130 bytes, kept unboxed so that callers
// match on its kind directly; errors are rare next to the sends they end.
#![allow(clippy::result_large_err)]

mod cli;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use smtp_mailer_capture::{CaptureOptions, CaptureServer};
use smtp_mailer_host::{Mailer, Server};

use cli::args::{BuildArgs, CaptureArgs, Cli, Command, Output, SendArgs, ServeArgs};
use cli::message::message_from_args;
use cli::output::{error_code, exit_code, print_receipt, EXIT_INVALID, EXIT_OK, EXIT_PERMANENT};
use cli::url::server_from_args;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Send(args) => send(args),
        Command::Build(args) => build(args),
        Command::Capture(args) => capture(args),
        Command::Serve(args) => serve(args),
        Command::Enqueue(args) => cli::queue::enqueue(args),
        Command::Worker(args) => cli::worker::worker(args),
        Command::Suppression(args) => cli::queue::suppression(args),
        Command::DkimKeygen(args) => match cli::keygen::keygen(&args) {
            Ok(record) => {
                println!("{record}");
                0
            }
            Err(e) => invalid(e),
        },
    };
    ExitCode::from(code)
}

/// Reports bad input in one line.
fn invalid(reason: impl std::fmt::Display) -> u8 {
    eprintln!("error: {reason}");
    EXIT_INVALID
}

fn mailer(component: Option<&std::path::Path>, memory_mib: Option<u32>) -> Result<Mailer, u8> {
    let mut builder = Mailer::builder();
    if let Some(mib) = memory_mib {
        builder = builder.memory_limit((mib as usize) << 20);
    }
    let builder = match component {
        Some(path) => builder.component_file(path).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_PERMANENT
        })?,
        None => builder,
    };
    builder.build().map_err(|e| {
        eprintln!("error: {e}");
        EXIT_PERMANENT
    })
}

/// The message the options describe and the mailer to run it, or the exit
/// code of the failure, already reported.
fn prepare(
    message: &cli::args::MessageArgs,
    component: Option<&std::path::Path>,
    memory_mib: Option<u32>,
) -> Result<(smtp_mailer_host::Message, Mailer), u8> {
    let message = message_from_args(message).map_err(invalid)?;
    Ok((message, mailer(component, memory_mib)?))
}

fn send(args: SendArgs) -> u8 {
    let (message, mailer) =
        match prepare(&args.message, args.component.as_deref(), args.memory_limit) {
            Ok(ready) => ready,
            Err(code) => return code,
        };
    let Some(url) = &args.server else {
        return send_to_embedded_capture(&mailer, &message, args.output, args.verbose);
    };
    let server = match server_from_args(url, &args.connection, args.verbose) {
        Ok(s) => s,
        Err(e) => return invalid(e),
    };
    let shown = format!("{}:{}", server.host, server.port);
    let result = mailer.send(&server, &message);
    print_receipt(&result, &shown, args.output == Output::Json);
    exit_code(&result)
}

/// The embedded default: a capture server on loopback receives the message,
/// and what arrived is shown.
fn send_to_embedded_capture(
    mailer: &Mailer,
    message: &smtp_mailer_host::Message,
    output: Output,
    verbose: bool,
) -> u8 {
    let capture = match CaptureServer::start(CaptureOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot start the embedded capture server: {e}");
            return EXIT_PERMANENT;
        }
    };
    let address = capture.local_addr();
    let mut server = Server::new(address.ip().to_string(), address.port()).plaintext_insecure();
    server.trace = verbose;
    let shown = format!("the embedded capture server ({address})");
    let result = mailer.send(&server, message);
    print_receipt(&result, &shown, output == Output::Json);
    if result.is_ok() && output == Output::Human {
        for captured in capture.wait_for(1, Duration::from_secs(5)) {
            println!(
                "\nNo --server or SMTP_URL given, so the embedded capture server received it:"
            );
            println!("MAIL FROM:<{}>", captured.mail_from);
            for rcpt in &captured.rcpt_to {
                println!("RCPT TO:<{rcpt}>");
            }
            println!("---- {} bytes ----", captured.data.len());
            let _ = std::io::stdout().write_all(&captured.data);
            println!("---- end ----");
        }
    }
    capture.shutdown();
    exit_code(&result)
}

fn build(args: BuildArgs) -> u8 {
    let (message, mailer) = match prepare(&args.message, args.component.as_deref(), None) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    match mailer.build_message(&message) {
        Ok(bytes) => {
            let _ = std::io::stdout().write_all(&bytes);
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            error_code(&e)
        }
    }
}

fn capture(args: CaptureArgs) -> u8 {
    let options = CaptureOptions::default()
        .listen(args.listen)
        .dir(&args.dir)
        .on_message(|m| {
            // A closed standard output must not stop the server.
            let _ = writeln!(
                std::io::stdout(),
                "#{} from <{}> to {} ({} bytes)",
                m.id,
                m.mail_from,
                m.rcpt_to
                    .iter()
                    .map(|r| format!("<{r}>"))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.data.len()
            );
        });
    match CaptureServer::start(options) {
        Ok(server) => {
            println!(
                "capturing on {} into {} (Ctrl-C to stop)",
                server.local_addr(),
                args.dir.display()
            );
            let _ = std::io::stdout().flush();
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            match std::error::Error::source(&e) {
                Some(cause) => eprintln!("error: {e}: {cause}"),
                None => eprintln!("error: {e}"),
            }
            EXIT_PERMANENT
        }
    }
}

fn serve(args: ServeArgs) -> u8 {
    use smtp_mailer_host::spin::{AllowList, SpinHttpApp, Variables};

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
            Ok(app) => Some(smtp_mailer_host::spin::RedisTrigger {
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
    match smtp_mailer_host::spin::serve(app, listener, redis) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_PERMANENT
        }
    }
}
