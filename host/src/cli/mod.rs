//! The `smtp-mailer` command line, over the host library.

pub mod args;
pub mod keygen;
pub mod message;
pub mod output;
pub mod queue;
pub mod url;
pub mod worker;
