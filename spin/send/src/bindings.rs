//! The mailer's `sender` interface and its types, imported (world
//! `smtp-mailer:mailer/sender-client` of the root `wit/`).

wit_bindgen::generate!({
    world: "smtp-mailer:mailer/sender-client",
    path: "../../wit",
    generate_all,
});

pub use smtp_mailer::mailer::message;
pub use smtp_mailer::mailer::sender;
pub use smtp_mailer::mailer::types;
