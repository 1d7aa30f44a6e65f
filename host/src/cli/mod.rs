//! The `smtp-mailer` command line, over the host library.

pub mod args;
pub mod json;
pub mod keygen;
pub mod message;
pub mod output;
pub mod url;
