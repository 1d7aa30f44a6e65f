//! End-to-end test support for SmtpMailer.

pub mod dkim;
pub mod dns;
pub mod jco;
pub mod large;
pub mod scripted;
pub mod serve;
pub mod servers;
pub mod strict;
pub mod support;
pub mod tls;
pub mod unanswered;
pub mod worker;
