//! The one error of `smtp-mailer serve`'s setup.

use std::fmt;

/// Why the Spin app could not be set up or served. Never holds a variable's
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeError {
    /// An `allowed_outbound_hosts` entry is not `tcp://IP:port` or
    /// `tcp://CIDR:port`.
    Outbound(String),
    /// A variable's name, or the variables file, is malformed; a required
    /// variable has no value; a template names an undeclared variable.
    Variables(String),
    /// The manifest cannot be read, or asks for what serve cannot run.
    Manifest(String),
    /// The app and the mailer could not be composed.
    Compose(String),
    /// The composition does not run in this host (compilation, linking), or
    /// trapped.
    Runtime(String),
    /// A component's handler answered an error.
    Handler(String),
    /// The listening socket failed.
    Io(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Outbound(m) => write!(f, "allowed outbound host {m}"),
            ServeError::Variables(m) => write!(f, "variables: {m}"),
            ServeError::Manifest(m) => write!(f, "manifest: {m}"),
            ServeError::Compose(m) => write!(f, "composing the app with the mailer: {m}"),
            ServeError::Runtime(m) => write!(f, "running the app: {m}"),
            ServeError::Handler(m) => f.write_str(m),
            ServeError::Io(m) => write!(f, "serving: {m}"),
        }
    }
}

impl std::error::Error for ServeError {}
