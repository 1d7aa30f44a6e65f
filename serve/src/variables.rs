//! `fermyon:spin/variables`, answered from the host's configuration: the
//! environment's `SPIN_VARIABLE_<NAME>` (as `spin up` reads them) and a
//! file of `name=value` lines. Values are secrets as far as this module
//! knows: `Debug` shows names only, and errors never hold a value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::bindings::fermyon::spin2_0_0::variables::{Error as VariableError, Host};
use crate::ServeError;

/// The application variables, by lowercase name.
#[derive(Clone, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for Variables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Variables {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` (Spin's form: lowercase letters, digits, `_`).
    ///
    /// Errors: [`ServeError::Variables`] for a name Spin would not accept.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> Result<&mut Self, ServeError> {
        if !valid_name(name) {
            return Err(ServeError::Variables(format!(
                "{name:?} is not a variable name (lowercase letters, digits and _)"
            )));
        }
        self.values.insert(name.to_string(), value.into());
        Ok(self)
    }

    /// Adds every `SPIN_VARIABLE_<NAME>` of the environment as `<name>`.
    pub fn add_environment(&mut self) -> &mut Self {
        for (key, value) in std::env::vars() {
            if let Some(name) = key.strip_prefix("SPIN_VARIABLE_") {
                let name = name.to_ascii_lowercase();
                if valid_name(&name) {
                    self.values.insert(name, value);
                }
            }
        }
        self
    }

    /// Adds the `name=value` lines of a file; blank lines and lines starting
    /// with `#` are skipped.
    ///
    /// Errors: [`ServeError::Variables`] when the file cannot be read or a
    /// line is not `name=value` (the line number is given, not its text).
    pub fn add_file(&mut self, path: &Path) -> Result<&mut Self, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Variables(format!("{}: {e}", path.display())))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once('=').ok_or_else(|| {
                ServeError::Variables(format!(
                    "{} line {}: expected name=value",
                    path.display(),
                    i + 1
                ))
            })?;
            self.set(name.trim(), value.trim())?;
        }
        Ok(self)
    }

    /// The value of `name`, when set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// The store's view of the variables, for the `fermyon:spin/variables` host
/// implementation.
pub struct VariablesView<'a>(pub &'a Variables);

impl Host for VariablesView<'_> {
    async fn get(&mut self, name: String) -> Result<String, VariableError> {
        if !valid_name(&name) {
            return Err(VariableError::InvalidName(name));
        }
        self.0
            .get(&name)
            .map(str::to_string)
            .ok_or(VariableError::Undefined(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_values_and_secrets() {
        let mut v = Variables::new();
        v.set("api_key", "s3cret").unwrap();
        assert!(v.set("Api-Key", "x").is_err());
        assert!(
            matches!(VariablesView(&v).get("api_key".into()).await, Ok(value) if value == "s3cret")
        );
        assert!(matches!(
            VariablesView(&v).get("smtp_host".into()).await,
            Err(VariableError::Undefined(_))
        ));
        assert!(matches!(
            VariablesView(&v).get("BAD".into()).await,
            Err(VariableError::InvalidName(_))
        ));
        assert!(!format!("{v:?}").contains("s3cret"));
    }
}
