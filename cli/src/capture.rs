//! `smtp-mailer capture`: the capture server on its own.

use std::io::Write;

use smtp_mailer_capture::{CaptureOptions, CaptureServer};

use crate::args::CaptureArgs;
use crate::output::EXIT_PERMANENT;

/// Runs the capture server until the process is stopped; the exit code
/// when it cannot start.
pub fn capture(args: CaptureArgs) -> u8 {
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
