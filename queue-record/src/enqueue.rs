//! The one way messages enter a Redis queue, for the native queue and the
//! Spin components alike: one Lua script, run by `EVAL`, so that a batch
//! is appended whole or not at all, each message with its `queued` status
//! and the alias of its queue id, and a request's `Idempotency-Key` is
//! checked and recorded in the same atomic step.

use crate::keys::{FIELD_ATTEMPTS, FIELD_MESSAGE_ID, FIELD_PAYLOAD};
use crate::{IdempotencyRecord, MessageStatus, QueuedMessage, RedisKeys};

/// The script. `KEYS[1]`: the stream; `KEYS[2]`: the idempotency record's
/// key, or `''`. `ARGV[1]`: the status TTL in seconds; `ARGV[2]`: the
/// idempotency TTL; `ARGV[3]`: the request body's hash; then for each
/// message its Message-ID, payload and `queued` status. Answers `{'new',
/// queue ids...}`, or `{'replay', record}` when the key was seen before.
/// The key names it builds are [`RedisKeys::status`] and
/// [`RedisKeys::alias`]'s, and the stream fields [`FIELD_MESSAGE_ID`],
/// [`FIELD_PAYLOAD`] and [`FIELD_ATTEMPTS`] (checked by the queue's tests).
pub const ENQUEUE_SCRIPT: &str = r"
if KEYS[2] ~= '' then
  local prior = redis.call('GET', KEYS[2])
  if prior then return {'replay', prior} end
end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'stream' and kind ~= 'none' then
  return redis.error_reply('the queue key ' .. KEYS[1] .. ' holds a ' .. kind .. ', not a stream')
end
local ids, mids = {}, {}
for i = 4, #ARGV, 3 do
  local id = redis.call('XADD', KEYS[1], '*', 'message_id', ARGV[i], 'payload', ARGV[i + 1], 'attempts', '0')
  ids[#ids + 1] = id
  mids[#mids + 1] = ARGV[i]
  redis.call('SET', KEYS[1] .. ':status:' .. ARGV[i], ARGV[i + 2], 'EX', ARGV[1])
  redis.call('SET', KEYS[1] .. ':alias:' .. id, ARGV[i], 'EX', ARGV[1])
end
if KEYS[2] ~= '' then
  redis.call('SET', KEYS[2], cjson.encode({hash = ARGV[3], queue_ids = ids, message_ids = mids}), 'EX', ARGV[2])
end
table.insert(ids, 1, 'new')
return ids
";

// The script spells the fields out; these must stay what it writes.
const _: () = {
    assert!(matches_bytes(FIELD_MESSAGE_ID.as_bytes(), b"message_id"));
    assert!(matches_bytes(FIELD_PAYLOAD.as_bytes(), b"payload"));
    assert!(matches_bytes(FIELD_ATTEMPTS.as_bytes(), b"attempts"));
};

const fn matches_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// An `Idempotency-Key` to check and record with an enqueue.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyCheck<'a> {
    /// The record's key ([`RedisKeys::idempotency`]).
    pub key: &'a str,
    /// The request body's hash ([`IdempotencyRecord::hash_of`]).
    pub body_hash: &'a str,
    /// How long the record is kept, in seconds.
    pub ttl_seconds: u64,
}

/// The arguments of `EVAL` (after the command name) that enqueue
/// `messages` on the queue of `keys`, each with a `queued` status kept
/// `status_ttl_seconds`, and check and record `idempotency` when given.
pub fn enqueue_arguments(
    keys: &RedisKeys,
    messages: &[QueuedMessage],
    status_ttl_seconds: u64,
    idempotency: Option<IdempotencyCheck<'_>>,
    now_secs: u64,
) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = vec![
        ENQUEUE_SCRIPT.as_bytes().to_vec(),
        b"2".to_vec(),
        keys.stream().as_bytes().to_vec(),
        idempotency.map(|i| i.key).unwrap_or("").as_bytes().to_vec(),
        status_ttl_seconds.max(1).to_string().into_bytes(),
        idempotency
            .map(|i| i.ttl_seconds.max(1))
            .unwrap_or(1)
            .to_string()
            .into_bytes(),
        idempotency
            .map(|i| i.body_hash)
            .unwrap_or("")
            .as_bytes()
            .to_vec(),
    ];
    for m in messages {
        args.push(m.message_id.as_bytes().to_vec());
        args.push(m.payload.clone());
        args.push(
            MessageStatus::queued(&m.message_id, now_secs)
                .to_json()
                .into_bytes(),
        );
    }
    args
}

/// What the script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueReply {
    /// Enqueued: the queue ids, in order.
    New(Vec<String>),
    /// The key was seen before: nothing was enqueued; its record.
    Replay(IdempotencyRecord),
}

impl EnqueueReply {
    /// Reads the script's answer, given as the strings of its array.
    ///
    /// Errors: a line saying what is not as the script answers.
    pub fn parse(items: &[Vec<u8>]) -> Result<EnqueueReply, String> {
        let text = |b: &Vec<u8>| String::from_utf8(b.clone()).map_err(|_| "not UTF-8".to_string());
        match items.split_first() {
            Some((kind, ids)) if kind == b"new" => Ok(EnqueueReply::New(
                ids.iter().map(text).collect::<Result<_, _>>()?,
            )),
            Some((kind, [record])) if kind == b"replay" => IdempotencyRecord::from_json(record)
                .map(EnqueueReply::Replay)
                .ok_or_else(|| "the idempotency record is not one this version writes".into()),
            _ => Err("the enqueue script's answer is not new or replay".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_answers() {
        let keys = RedisKeys::new("q");
        let m = QueuedMessage {
            message_id: "1@x".into(),
            payload: b"{}".to_vec(),
        };
        let args = enqueue_arguments(&keys, &[m], 0, None, 5);
        assert_eq!(args[1], b"2");
        assert_eq!(args[2], b"q");
        assert_eq!(args[3], b"");
        assert_eq!(args[4], b"1", "a TTL is at least a second");
        assert_eq!(args.len(), 7 + 3);
        assert_eq!(
            EnqueueReply::parse(&[b"new".to_vec(), b"1-0".to_vec()]),
            Ok(EnqueueReply::New(vec!["1-0".into()]))
        );
        let record = br#"{"hash":"h","queue_ids":["1-0"],"message_ids":["1@x"]}"#;
        match EnqueueReply::parse(&[b"replay".to_vec(), record.to_vec()]) {
            Ok(EnqueueReply::Replay(r)) => assert_eq!(r.message_ids, ["1@x"]),
            other => panic!("{other:?}"),
        }
        assert!(EnqueueReply::parse(&[]).is_err());
    }
}
