//! `smtp-mailer send` and `smtp-mailer build`; without a server, `send`
//! delivers to the embedded capture server and shows what arrived.

use std::io::Write;
use std::time::Duration;

use smtp_mailer_capture::{CaptureOptions, CaptureServer};
use smtp_mailer_host::{Mailer, Server};

use crate::args::{BuildArgs, Output, SendArgs};
use crate::output::{error_code, exit_code, print_receipt, EXIT_OK, EXIT_PERMANENT};
use crate::url::server_from_args;
use crate::{invalid, prepare};

/// `smtp-mailer send`: the exit code.
pub fn send(args: SendArgs) -> u8 {
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

/// `smtp-mailer build`: prints the message; the exit code.
pub fn build(args: BuildArgs) -> u8 {
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
