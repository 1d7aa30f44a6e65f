//! An entry of the suppression list: the addresses never to send to again,
//! with why and since when. One list for the worker, the edge and whatever
//! processes what comes back.

use serde::{Deserialize, Serialize};

/// Why and since when an address is suppressed (its address is the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionEntry {
    /// A bounce's reply, "unsubscribed", a complaint...
    pub reason: String,
    /// When it was (last) added, in milliseconds since the Unix epoch.
    pub since: u64,
}

impl SuppressionEntry {
    /// The entry as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An entry from JSON text; `None` when it is not one.
    pub fn from_json(text: &[u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }
}

/// The form an address is suppressed under: lowercased, so that
/// `Ada@Example.org` and `ada@example.org` are one entry.
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}
