//! What the transcript tests share.

use smtp_mailer_core::smtp::reply::ReplyParser;
use smtp_mailer_core::smtp::Client;
use smtp_mailer_core::Error;

/// Feeds whole replies; returns what the client wrote and the fatal error.
pub fn feed(client: &mut Client, server: &str) -> (String, Option<Error>) {
    let mut parser = ReplyParser::new();
    let mut pending = server.as_bytes().to_vec();
    let mut written = Vec::new();
    loop {
        let (used, reply) = parser.feed(&pending).unwrap();
        pending.drain(..used);
        let Some(reply) = reply else { break };
        if let Err(e) = client.handle_reply(reply) {
            return (String::from_utf8(written).unwrap(), Some(e));
        }
        written.extend(client.take_output());
    }
    (String::from_utf8(written).unwrap(), None)
}
