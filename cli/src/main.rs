//! `smtp-mailer`: send email from a shell or a job, through the sandboxed
//! mailer component.

// `Error` is a plain value of about 130 bytes, kept unboxed so that callers
// match on its kind directly; errors are rare next to the sends they end.
#![allow(clippy::result_large_err)]

mod args;
mod capture;
mod doctor;
mod keygen;
mod message;
mod output;
mod queue;
mod send;
mod serve;
mod url;
mod worker;

use std::process::ExitCode;

use clap::Parser;
use smtp_mailer_host::Mailer;

use args::{Cli, Command};
use message::message_from_args;
use output::{EXIT_INVALID, EXIT_PERMANENT};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Send(args) => send::send(args),
        Command::Build(args) => send::build(args),
        Command::Capture(args) => capture::capture(args),
        Command::Serve(args) => serve::serve(args),
        Command::Enqueue(args) => queue::enqueue(args),
        Command::Worker(args) => worker::worker(args),
        Command::Suppression(args) => queue::suppression(args),
        Command::Status(args) => queue::status(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::DkimKeygen(args) => match keygen::keygen(&args) {
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
pub(crate) fn invalid(reason: impl std::fmt::Display) -> u8 {
    eprintln!("error: {reason}");
    EXIT_INVALID
}

pub(crate) fn mailer(
    component: Option<&std::path::Path>,
    memory_mib: Option<u32>,
) -> Result<Mailer, u8> {
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
pub(crate) fn prepare(
    message: &args::MessageArgs,
    component: Option<&std::path::Path>,
    memory_mib: Option<u32>,
) -> Result<(smtp_mailer_host::Message, Mailer), u8> {
    let message = message_from_args(message).map_err(invalid)?;
    Ok((message, mailer(component, memory_mib)?))
}
