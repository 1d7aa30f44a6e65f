//! The Spin app's Redis-triggered component: each message published on the
//! channel of its `[[trigger.redis]]` is a nodemailer-style JSON message
//! (as the CLI's `--json`), sent through the mailer component. The outcome
//! is logged on standard error; a failed send answers the trigger's error.

use spin_sdk::redis_component;

#[redis_component]
fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
    match smtp_mailer_spin_send::send_json(&payload) {
        Ok(receipt) => {
            let (accepted, total) = receipt.accepted_count();
            eprintln!(
                "redis send: <{}> accepted for {accepted} of {total} recipients: {}",
                receipt.message_id().unwrap_or(""),
                receipt.to_json()
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("redis send: failed: {}", e.to_json());
            Err(anyhow::Error::new(e))
        }
    }
}
