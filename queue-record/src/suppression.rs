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

/// Looks addresses up on the suppression list. `KEYS[1]`: the hash
/// ([`RedisKeys::suppressed`](crate::RedisKeys::suppressed)); `ARGV`: the
/// addresses, normalized. Answers one string per address: its entry's JSON,
/// or `''` when it is not suppressed (never a nil, which Spin's outbound
/// Redis drops from an answer).
pub const SUPPRESSED_SCRIPT: &str = r"
local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('HGET', KEYS[1], ARGV[i]) or ''
end
return out
";

/// Reads [`SUPPRESSED_SCRIPT`]'s answer for `addresses`: each one's entry
/// when suppressed.
///
/// Errors: when the answer does not have one item per address.
pub fn parse_suppressed(
    addresses: &[String],
    items: &[Vec<u8>],
) -> Result<Vec<Option<SuppressionEntry>>, String> {
    if items.len() != addresses.len() {
        return Err(format!(
            "the suppression check answered {} items for {} addresses",
            items.len(),
            addresses.len()
        ));
    }
    Ok(items
        .iter()
        .map(|item| match item.is_empty() {
            true => None,
            false => SuppressionEntry::from_json(item),
        })
        .collect())
}
