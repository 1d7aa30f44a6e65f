//! The one error of this crate: a field of the input that is not acceptable.

use std::fmt;

/// Why a JSON message (or an address) was refused: the field at fault, when
/// there is one, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// The field, such as `to[1]` or `attachments[0].content`; none when the
    /// text is not JSON at all.
    pub field: Option<String>,
    /// Why it was refused, in a few words.
    pub reason: String,
}

impl JsonError {
    /// An error about `field`.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        JsonError {
            field: Some(field.into()),
            reason: reason.into(),
        }
    }

    /// An error about the text as a whole.
    pub fn whole(reason: impl Into<String>) -> Self {
        JsonError {
            field: None,
            reason: reason.into(),
        }
    }

    /// The same error, about `outer` followed by this error's field (or
    /// about `outer` alone).
    pub(crate) fn within(self, outer: &str) -> Self {
        let field = match self.field {
            Some(inner) => format!("{outer}{inner}"),
            None => outer.to_string(),
        };
        JsonError {
            field: Some(field),
            reason: self.reason,
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for JsonError {}
