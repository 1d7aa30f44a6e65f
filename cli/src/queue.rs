//! `enqueue` and `suppression`: the durable queue and the suppression list
//! from the command line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use smtp_mailer_delivery::worker::prepare;
use smtp_mailer_queue::{self as queue, NewMessage, Store};

use crate::args::{EnqueueArgs, Output, StatusArgs, SuppressionAction, SuppressionArgs};
use crate::output::{EXIT_INVALID, EXIT_OK, EXIT_TEMPFAIL};

/// Opens the queue, or reports why not (the exit code of the failure).
pub fn open_store(spec: &str, lease: Duration) -> Result<Store, u8> {
    queue::open(spec, lease).map_err(|e| {
        eprintln!("error: the queue: {e}");
        EXIT_TEMPFAIL
    })
}

/// `smtp-mailer enqueue`.
pub fn enqueue(args: EnqueueArgs) -> u8 {
    let mailer = match crate::mailer(args.component.as_deref(), None) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let sources: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|f| (f.as_os_str() != "-").then(|| f.clone()))
            .collect()
    };
    let mut messages: Vec<NewMessage> = Vec::new();
    for source in &sources {
        let (input, base, name) = match read_source(source.as_deref()) {
            Ok(read) => read,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INVALID;
            }
        };
        match prepare(&input, &base, &mailer) {
            Ok(prepared) => messages.extend(prepared),
            Err(e) => {
                eprintln!("error: {name}: {e}; nothing was enqueued");
                return EXIT_INVALID;
            }
        }
    }
    let store = match open_store(&args.queue.queue, Duration::from_secs(60)) {
        Ok(store) => store,
        Err(code) => return code,
    };
    match store.queue.enqueue(&messages) {
        Ok(ids) => {
            for (id, message) in ids.iter().zip(&messages) {
                println!("{id}\t{}", message.message_id);
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: the queue: {e}; nothing was enqueued");
            EXIT_TEMPFAIL
        }
    }
}

/// The input, the folder relative attachment paths start from, and its
/// name for messages.
fn read_source(source: Option<&Path>) -> Result<(String, PathBuf, String), String> {
    match source {
        None => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| format!("standard input: {e}"))?;
            let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
            Ok((input, cwd, "standard input".into()))
        }
        Some(path) => {
            let input =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let base = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            Ok((input, base, path.display().to_string()))
        }
    }
}

/// `smtp-mailer suppression`.
pub fn suppression(args: SuppressionArgs) -> u8 {
    if let SuppressionAction::Add { addresses, .. } | SuppressionAction::Remove { addresses } =
        &args.action
    {
        for address in addresses {
            if let Err(reason) = smtp_mailer_core::address::Address::parse(address) {
                eprintln!("error: {address:?} is not an address: {reason}");
                return EXIT_INVALID;
            }
        }
    }
    let store = match open_store(&args.queue.queue, Duration::from_secs(60)) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let list = &store.suppressions;
    let result = match args.action {
        SuppressionAction::List => list.list().map(|entries| {
            for entry in entries {
                println!(
                    "{}\t{}",
                    entry.address,
                    entry.reason.replace(['\t', '\n'], " ")
                );
            }
        }),
        SuppressionAction::Add { addresses, reason } => addresses
            .iter()
            .try_for_each(|address| list.add(address, &reason)),
        SuppressionAction::Remove { addresses } => addresses.iter().try_for_each(|address| {
            if !list.remove(address)? {
                eprintln!("note: {address} was not suppressed");
            }
            Ok(())
        }),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: the suppression list: {e}");
            EXIT_TEMPFAIL
        }
    }
}

/// `smtp-mailer status`: 0 when the message is known, 1 when it is not (or
/// its status expired), 75 when the queue cannot be read.
pub fn status(args: StatusArgs) -> u8 {
    let store = match open_store(&args.queue.queue, Duration::from_secs(60)) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let status = match store.queue.status(&args.id) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: the queue: {e}");
            return EXIT_TEMPFAIL;
        }
    };
    let Some(status) = status else {
        eprintln!(
            "error: no message {} in this queue (or its status expired)",
            args.id
        );
        return 1;
    };
    if args.output == Output::Json {
        println!("{}", status.to_json());
        return EXIT_OK;
    }
    println!(
        "<{}>: {} after {} attempt(s)",
        status
            .message_id
            .trim_start_matches('<')
            .trim_end_matches('>'),
        status.state.name(),
        status.attempts
    );
    for r in &status.recipients {
        println!(
            "  {:<10} {:<30} {} attempt(s)  {}",
            r.state.name(),
            r.address,
            r.attempts,
            r.reply.as_deref().unwrap_or("")
        );
    }
    EXIT_OK
}
