//! The Spin app's Redis-triggered component: each message published on the
//! channel of its `[[trigger.redis]]` is a nodemailer-style JSON message
//! (as the CLI's `--json`), sent through the mailer component. A send that
//! fails transiently is put on the durable queue for the worker (Spin's
//! Redis trigger never delivers a message twice, so nothing else would
//! retry it); a permanent failure is logged with the server's reply and
//! answers the trigger's error. Each outcome is one line on standard error.

use spin_sdk::redis_component;

#[redis_component]
fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
    match smtp_mailer_spin_send::redis_message(&payload) {
        Ok(outcome) => {
            eprintln!("redis send: {outcome}");
            Ok(())
        }
        Err(e) => {
            eprintln!("redis send: failed for good: {}", e.to_json());
            Err(anyhow::Error::new(e))
        }
    }
}
