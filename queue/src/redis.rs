//! The Redis backend: a stream read through a consumer group.
//!
//! - Ready jobs are stream entries not yet delivered to the group; jobs in
//!   flight are the group's pending entries (claimed, not acknowledged). An
//!   entry pending longer than the lease without a heartbeat (which resets
//!   its idle time) is taken over with `XAUTOCLAIM`.
//! - Deferred jobs wait in the sorted set `<stream>:delayed`, scored by
//!   their `not_before` in milliseconds; a Lua script moves the due ones into
//!   the stream, so a crash can neither lose nor duplicate one.
//! - Finished recipients are a set `<stream>:done:<message_id>`.
//! - Completed and deferred entries are acknowledged and deleted at once
//!   (`MULTI`/`EXEC` or a script), so the stream holds only ready and pending
//!   entries.
//! - The suppression list is the hash `<stream>:suppressed`, address to
//!   `{"reason": ..., "since": <ms>}`.
//! - Messages enter the stream only through `smtp-mailer-queue-record`'s
//!   enqueue script, the one the Spin components run too; each gets a
//!   status at `<stream>:status:<message_id>` and an alias from its first
//!   queue id, `<stream>:alias:<id>`, both expiring.
//!
//! How durable an `enqueue` is depends on the server's persistence
//! (`appendonly yes` and `appendfsync always` for the same guarantee as SQLite).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use smtp_mailer_queue_record::{
    enqueue_arguments, normalize_address, status_candidates, EnqueueReply, MessageStatus,
    RedisKeys, SuppressionEntry, DEFAULT_STATUS_TTL_SECONDS, FIELD_ATTEMPTS, FIELD_MESSAGE_ID,
    FIELD_PAYLOAD, STATUS_SCRIPT,
};

use crate::resp::{Cmd, Conn, Reply, REPLY_TIMEOUT};
use crate::{
    duration_ms, from_millis, millis, Job, NewMessage, Queue, QueueCounts, QueueError, SharedRate,
    Suppressed, Suppressions, DEFAULT_GROUP, DEFAULT_STREAM,
};

/// How many due deferred jobs one claim moves into the stream at most.
const PROMOTE_LIMIT: usize = 1000;

/// Moves due members of the delayed set (KEYS[2]) into the stream (KEYS[1]).
/// ARGV: now in ms, the most to move. A member is
/// `<nonce>:<attempts>:<length of message_id>:<message_id><payload>`.
/// Returns the score of the earliest member left, or nil.
const PROMOTE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local attempts, len, pos = string.match(m, '^[^:]*:(%d+):(%d+):()')
  if attempts then
    local id_end = pos + tonumber(len) - 1
    redis.call('XADD', KEYS[1], '*', 'message_id', string.sub(m, pos, id_end),
      'payload', string.sub(m, id_end + 1), 'attempts', attempts)
  end
  redis.call('ZREM', KEYS[2], m)
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return first[2]
";

/// Resets the idle time of the entries ARGV[3..] that consumer ARGV[2] of
/// group ARGV[1] still holds (not those another consumer took over).
const HEARTBEAT: &str = r"
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  end
end
return 0
";

/// Defers entry ARGV[3] if consumer ARGV[2] of group ARGV[1] still holds it:
/// the member ARGV[5] goes into the delayed set (KEYS[2]) at score ARGV[4],
/// the entry is acknowledged and deleted. Either way the recipients ARGV[6..]
/// are added to the done set KEYS[3].
const DEFER: &str = r"
if #ARGV >= 6 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 6))
end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
";

/// Reserves the next turn of the rate key KEYS[1] for events ARGV[1] ms
/// apart, by the server's clock (so workers on many machines agree);
/// returns the wait in ms. The key expires once it no longer matters.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], start + interval, 'PX', start - now + interval + 1000)
return start - now
";

/// Where and how to connect; `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
struct Config {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    db: u32,
    stream: String,
    group: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("stream", &self.stream)
            .field("group", &self.group)
            .finish()
    }
}

impl Config {
    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn invalid(detail: &str) -> QueueError {
    QueueError::InvalidSpec(format!("redis URL: {detail}"))
}

/// Parses `redis://[user:pass@]host[:port][/db][?stream=NAME&group=NAME]`.
/// Errors never quote the URL (it may hold a password).
fn parse_url(spec: &str) -> Result<Config, QueueError> {
    if spec.starts_with("rediss://") {
        return Err(invalid("TLS (rediss://) is not supported"));
    }
    let rest = spec
        .strip_prefix("redis://")
        .ok_or_else(|| invalid("expected redis://"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let user = percent_decode(user).ok_or_else(|| invalid("bad %-escape in the user"))?;
            let pass = pass
                .map(|p| percent_decode(p).ok_or_else(|| invalid("bad %-escape in the password")))
                .transpose()?;
            ((!user.is_empty()).then_some(user), pass)
        }
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid("unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port = match port {
        None => 6379,
        Some(p) => p.parse().map_err(|_| invalid("bad port"))?,
    };
    let db = match path {
        "" => 0,
        p => p
            .parse()
            .map_err(|_| invalid("the path must be a database number"))?,
    };
    let mut stream = DEFAULT_STREAM.to_string();
    let mut group = DEFAULT_GROUP.to_string();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid("empty or badly escaped query value"))?;
        match key {
            "stream" => stream = value,
            "group" => group = value,
            _ => return Err(invalid("unknown query parameter (known: stream, group)")),
        }
    }
    Ok(Config {
        host: host.to_string(),
        port,
        user,
        password,
        db,
        stream,
        group,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A queue and suppression list in Redis.
pub struct RedisStore {
    config: Config,
    lease: Duration,
    /// Idle connections; a claim that blocks holds its own.
    pool: Mutex<Vec<Conn>>,
    keys: RedisKeys,
    delayed: String,
    suppressed: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server of `spec` (a `redis://` URL) and creates the
    /// consumer group (and the stream) unless they exist.
    pub fn open(spec: &str, lease: Duration) -> Result<Self, QueueError> {
        let config = parse_url(spec)?;
        let keys = RedisKeys::new(&config.stream);
        let store = RedisStore {
            delayed: keys.delayed(),
            suppressed: keys.suppressed(),
            keys,
            config,
            lease,
            pool: Mutex::new(Vec::new()),
        };
        store.with_conn(|c| {
            let created = c.call(
                Cmd::new("XGROUP")
                    .arg("CREATE")
                    .arg(&store.config.stream)
                    .arg(&store.config.group)
                    .arg("0")
                    .arg("MKSTREAM"),
            );
            match created {
                Err(QueueError::RedisCommand { detail, .. }) if detail.starts_with("BUSYGROUP") => {
                    Ok(())
                }
                other => other.map(drop),
            }
        })?;
        Ok(store)
    }

    fn connect(&self) -> Result<Conn, QueueError> {
        let c = &self.config;
        let mut conn = Conn::connect(&c.host, c.port, &c.server())?;
        if let Some(password) = &c.password {
            let mut auth = Cmd::new("AUTH");
            if let Some(user) = &c.user {
                auth = auth.arg(user);
            }
            conn.call(auth.arg(password))?;
        }
        if c.db != 0 {
            conn.call(Cmd::new("SELECT").num(c.db))?;
        }
        Ok(conn)
    }

    /// Runs `f` on a pooled connection; one that failed mid-reply is dropped.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&mut conn);
        if !matches!(result, Err(QueueError::RedisConnection { .. })) {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        result
    }

    fn done_key(&self, message_id: &str) -> String {
        self.keys.done(message_id)
    }

    /// Moves due deferred jobs into the stream; answers when the next one is due.
    fn promote(&self, conn: &mut Conn) -> Result<Option<i64>, QueueError> {
        let next = conn.call(
            Cmd::new("EVAL")
                .arg(PROMOTE)
                .num(2)
                .arg(&self.config.stream)
                .arg(&self.delayed)
                .num(millis(SystemTime::now()))
                .num(PROMOTE_LIMIT),
        )?;
        match next {
            Reply::Nil => Ok(None),
            other => {
                let score = other.string("the next delayed score")?;
                Ok(score.parse::<f64>().ok().map(|s| s as i64))
            }
        }
    }

    /// Takes over up to `max` entries idle longer than the lease.
    fn autoclaim(
        &self,
        conn: &mut Conn,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Reply>, QueueError> {
        let mut entries = Vec::new();
        let mut cursor = "0-0".to_string();
        // Each call scans a bounded part of the pending list; a few calls
        // cover it unless it is huge (the next claim goes on from the start).
        for _ in 0..8 {
            if entries.len() >= max {
                break;
            }
            let reply = conn
                .call(
                    Cmd::new("XAUTOCLAIM")
                        .arg(&self.config.stream)
                        .arg(&self.config.group)
                        .arg(consumer)
                        .num(duration_ms(self.lease))
                        .arg(&cursor)
                        .arg("COUNT")
                        .num(max - entries.len()),
                )?
                .array("XAUTOCLAIM")?;
            let mut parts = reply.into_iter();
            cursor = parts
                .next()
                .ok_or_else(|| QueueError::Corrupt("XAUTOCLAIM: empty reply".into()))?
                .string("XAUTOCLAIM cursor")?;
            if let Some(claimed) = parts.next() {
                // Entries deleted while pending come back as nil: skip them.
                entries.extend(
                    claimed
                        .array("XAUTOCLAIM entries")?
                        .into_iter()
                        .filter(|e| *e != Reply::Nil),
                );
            }
            if cursor == "0-0" {
                break;
            }
        }
        Ok(entries)
    }

    /// Reads up to `max` new entries, blocking at most `block` for the first.
    fn read_new(
        &self,
        conn: &mut Conn,
        consumer: &str,
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Reply>, QueueError> {
        let mut cmd = Cmd::new("XREADGROUP")
            .arg("GROUP")
            .arg(&self.config.group)
            .arg(consumer)
            .arg("COUNT")
            .num(max);
        let mut timeout = REPLY_TIMEOUT;
        if let Some(block) = block {
            // BLOCK 0 would wait forever.
            cmd = cmd.arg("BLOCK").num(duration_ms(block).max(1));
            timeout += block;
        }
        let cmd = cmd.arg("STREAMS").arg(&self.config.stream).arg(">");
        let streams = conn.call_timeout(cmd, timeout)?.array("XREADGROUP")?;
        let mut entries = Vec::new();
        for stream in streams {
            let mut parts = stream.array("XREADGROUP stream")?.into_iter();
            if let Some(list) = parts.nth(1) {
                entries.extend(list.array("XREADGROUP entries")?);
            }
        }
        Ok(entries)
    }

    /// Jobs from stream entries, with their done sets (one pipelined round trip).
    fn jobs(
        &self,
        conn: &mut Conn,
        consumer: &str,
        entries: Vec<Reply>,
    ) -> Result<Vec<Job>, QueueError> {
        let mut jobs = entries
            .into_iter()
            .map(|e| entry_to_job(e, consumer))
            .collect::<Result<Vec<_>, _>>()?;
        if jobs.is_empty() {
            return Ok(jobs);
        }
        let cmds: Vec<Cmd> = jobs
            .iter()
            .map(|j| Cmd::new("SMEMBERS").arg(self.done_key(&j.message_id)))
            .collect();
        let replies = conn.pipeline(&cmds, REPLY_TIMEOUT)?;
        for (job, reply) in jobs.iter_mut().zip(replies) {
            let mut done = reply
                .ok("SMEMBERS")?
                .array("SMEMBERS")?
                .into_iter()
                .map(|r| r.string("a done recipient"))
                .collect::<Result<Vec<_>, _>>()?;
            done.sort();
            job.done = done;
        }
        Ok(jobs)
    }
}

/// `[id, [field, value, ...]]` to a job (without its done list yet).
fn entry_to_job(entry: Reply, consumer: &str) -> Result<Job, QueueError> {
    let mut parts = entry.array("a stream entry")?.into_iter();
    let id = parts
        .next()
        .ok_or_else(|| QueueError::Corrupt("a stream entry without an id".into()))?
        .string("a stream entry id")?;
    let mut fields = HashMap::new();
    let mut values = parts
        .next()
        .ok_or_else(|| QueueError::Corrupt(format!("stream entry {id} without fields")))?
        .array("stream entry fields")?
        .into_iter();
    while let (Some(k), Some(v)) = (values.next(), values.next()) {
        fields.insert(k.string("a field name")?, v.bytes("a field value")?);
    }
    let mut field = |name: &str| {
        fields
            .remove(name)
            .ok_or_else(|| QueueError::Corrupt(format!("stream entry {id} has no {name}")))
    };
    let message_id = String::from_utf8(field(FIELD_MESSAGE_ID)?)
        .map_err(|_| QueueError::Corrupt("a message_id is not UTF-8".into()))?;
    let payload = field(FIELD_PAYLOAD)?;
    let attempts = std::str::from_utf8(&field(FIELD_ATTEMPTS)?)
        .ok()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| QueueError::Corrupt(format!("stream entry {id}: bad attempts")))?;
    Ok(Job {
        id,
        message_id,
        payload,
        attempts,
        done: Vec::new(),
        token: consumer.to_string(),
    })
}

/// The delayed set's member for a deferred job (see `PROMOTE`).
fn delayed_member(job: &Job) -> Vec<u8> {
    let mut m = format!(
        "{}:{}:{}:{}",
        job.id,
        job.attempts.saturating_add(1),
        job.message_id.len(),
        job.message_id
    )
    .into_bytes();
    m.extend_from_slice(&job.payload);
    m
}

impl Queue for RedisStore {
    fn enqueue(&self, messages: &[NewMessage]) -> Result<Vec<String>, QueueError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let now = millis(SystemTime::now()) / 1000;
        let args = enqueue_arguments(
            &self.keys,
            messages,
            DEFAULT_STATUS_TTL_SECONDS,
            None,
            u64::try_from(now).unwrap_or(0),
        );
        let mut cmd = Cmd::new("EVAL");
        for arg in &args {
            cmd = cmd.arg(arg);
        }
        let items = self.with_conn(|c| c.call(cmd)?.ok("EVAL")?.array("the enqueue script"))?;
        let items = items
            .into_iter()
            .map(|i| i.bytes("the enqueue script"))
            .collect::<Result<Vec<_>, _>>()?;
        match EnqueueReply::parse(&items).map_err(QueueError::Corrupt)? {
            EnqueueReply::New(ids) => Ok(ids),
            EnqueueReply::Replay(_) => Err(QueueError::Corrupt(
                "the enqueue script replayed a request without an idempotency key".into(),
            )),
        }
    }

    fn claim(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Job>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        self.with_conn(|c| loop {
            let next_due = self.promote(c)?;
            let mut entries = self.autoclaim(c, consumer, max)?;
            let now = Instant::now();
            let block = if entries.is_empty() && now < deadline {
                // Wake up for the next deferred job or lease expiry.
                let until_due = next_due
                    .map(|due| due.saturating_sub(millis(SystemTime::now())).max(1))
                    .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(1)));
                let mut block = (deadline - now).min(self.lease);
                if let Some(d) = until_due {
                    block = block.min(d);
                }
                Some(block)
            } else {
                None
            };
            if entries.len() < max {
                entries.extend(self.read_new(c, consumer, max - entries.len(), block)?);
            }
            if !entries.is_empty() || Instant::now() >= deadline {
                return self.jobs(c, consumer, entries);
            }
        })
    }

    fn heartbeat(&self, consumer: &str, jobs: &[&Job]) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut cmd = Cmd::new("EVAL")
            .arg(HEARTBEAT)
            .num(1)
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(consumer);
        for job in jobs {
            cmd = cmd.arg(&job.id);
        }
        self.with_conn(|c| c.call(cmd).map(drop))
    }

    fn progress(&self, job: &Job, done: &[String]) -> Result<(), QueueError> {
        if done.is_empty() {
            return Ok(());
        }
        let mut cmd = Cmd::new("SADD").arg(self.done_key(&job.message_id));
        for d in done {
            cmd = cmd.arg(d);
        }
        self.with_conn(|c| c.call(cmd).map(drop))
    }

    fn complete(&self, job: &Job) -> Result<(), QueueError> {
        let s = &self.config.stream;
        let cmds = [
            Cmd::new("MULTI"),
            Cmd::new("XACK").arg(s).arg(&self.config.group).arg(&job.id),
            Cmd::new("XDEL").arg(s).arg(&job.id),
            Cmd::new("DEL").arg(self.done_key(&job.message_id)),
            Cmd::new("EXEC"),
        ];
        self.with_conn(|c| {
            for (cmd, reply) in cmds.iter().zip(c.pipeline(&cmds, REPLY_TIMEOUT)?) {
                for r in reply.ok(&cmd.name())?.array("EXEC").unwrap_or_default() {
                    r.ok("EXEC")?;
                }
            }
            Ok(())
        })
    }

    fn defer(&self, job: &Job, done: &[String], not_before: SystemTime) -> Result<(), QueueError> {
        let mut cmd = Cmd::new("EVAL")
            .arg(DEFER)
            .num(3)
            .arg(&self.config.stream)
            .arg(&self.delayed)
            .arg(self.done_key(&job.message_id))
            .arg(&self.config.group)
            .arg(&job.token)
            .arg(&job.id)
            .num(millis(not_before))
            .arg(delayed_member(job));
        for d in done {
            cmd = cmd.arg(d);
        }
        self.with_conn(|c| c.call(cmd).map(drop))
    }

    fn counts(&self) -> Result<QueueCounts, QueueError> {
        let s = &self.config.stream;
        let cmds = [
            Cmd::new("MULTI"),
            Cmd::new("XLEN").arg(s),
            Cmd::new("XPENDING").arg(s).arg(&self.config.group),
            Cmd::new("ZCARD").arg(&self.delayed),
            Cmd::new("EXEC"),
        ];
        let exec = self.with_conn(|c| {
            let mut replies = c.pipeline(&cmds, REPLY_TIMEOUT)?;
            for (cmd, r) in cmds.iter().zip(&replies) {
                r.clone().ok(&cmd.name())?;
            }
            replies
                .pop()
                .ok_or_else(|| QueueError::Corrupt("no reply to EXEC".into()))?
                .array("EXEC")
        })?;
        let mut exec = exec.into_iter();
        let mut next = |what: &str| {
            exec.next()
                .ok_or_else(|| QueueError::Corrupt(format!("EXEC: no reply to {what}")))?
                .ok(what)
        };
        let len = next("XLEN")?.int("XLEN")?;
        let pending = next("XPENDING")?
            .array("XPENDING")?
            .into_iter()
            .next()
            .ok_or_else(|| QueueError::Corrupt("XPENDING: empty summary".into()))?
            .int("XPENDING count")?;
        let delayed = next("ZCARD")?.int("ZCARD")?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(QueueCounts {
            ready: n(len.saturating_sub(pending)),
            delayed: n(delayed),
            in_flight: n(pending),
        })
    }

    fn record_status(&self, status: &MessageStatus, ttl: Duration) -> Result<(), QueueError> {
        let cmd = Cmd::new("SET")
            .arg(self.keys.status(&status.message_id))
            .arg(status.to_json())
            .arg("EX")
            .num(ttl.as_secs().max(1));
        self.with_conn(|c| c.call(cmd)?.ok("SET").map(drop))
    }

    fn status(&self, id: &str) -> Result<Option<MessageStatus>, QueueError> {
        let mut cmd = Cmd::new("EVAL")
            .arg(STATUS_SCRIPT)
            .num(1)
            .arg(self.keys.stream());
        for candidate in status_candidates(id) {
            cmd = cmd.arg(candidate);
        }
        let found = self.with_conn(|c| c.call(cmd)?.ok("EVAL")?.array("the status script"))?;
        let Some(json) = found.into_iter().next() else {
            return Ok(None);
        };
        let json = json.bytes("the status script")?;
        if json.is_empty() {
            return Ok(None);
        }
        MessageStatus::from_json(&json)
            .map(Some)
            .ok_or_else(|| QueueError::Corrupt(format!("the status of {id}")))
    }
}

impl Suppressions for RedisStore {
    fn add(&self, address: &str, reason: &str) -> Result<(), QueueError> {
        let entry = SuppressionEntry {
            reason: reason.to_string(),
            since: u64::try_from(millis(SystemTime::now())).unwrap_or(0),
        };
        let cmd = Cmd::new("HSET")
            .arg(&self.suppressed)
            .arg(normalize_address(address))
            .arg(entry.to_json());
        self.with_conn(|c| c.call(cmd).map(drop))
    }

    fn remove(&self, address: &str) -> Result<bool, QueueError> {
        let cmd = Cmd::new("HDEL")
            .arg(&self.suppressed)
            .arg(normalize_address(address));
        Ok(self.with_conn(|c| c.call(cmd)?.int("HDEL"))? > 0)
    }

    fn check(&self, addresses: &[String]) -> Result<Vec<Option<Suppressed>>, QueueError> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let lower: Vec<String> = addresses.iter().map(|a| normalize_address(a)).collect();
        let mut cmd = Cmd::new("HMGET").arg(&self.suppressed);
        for a in &lower {
            cmd = cmd.arg(a);
        }
        let values = self.with_conn(|c| c.call(cmd)?.array("HMGET"))?;
        lower
            .into_iter()
            .zip(values)
            .map(|(address, value)| match value {
                Reply::Nil => Ok(None),
                v => parse_suppressed(address, &v.bytes("HMGET")?).map(Some),
            })
            .collect()
    }

    fn list(&self) -> Result<Vec<Suppressed>, QueueError> {
        let cmd = Cmd::new("HGETALL").arg(&self.suppressed);
        let all = self.with_conn(|c| c.call(cmd)?.array("HGETALL"))?;
        let mut list = Vec::with_capacity(all.len() / 2);
        let mut all = all.into_iter();
        while let (Some(k), Some(v)) = (all.next(), all.next()) {
            list.push(parse_suppressed(
                k.string("a suppressed address")?,
                &v.bytes("HGETALL")?,
            )?);
        }
        list.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(list)
    }
}

fn parse_suppressed(address: String, json: &[u8]) -> Result<Suppressed, QueueError> {
    let entry = SuppressionEntry::from_json(json)
        .ok_or_else(|| QueueError::Corrupt(format!("the suppression entry of {address}")))?;
    Ok(Suppressed {
        address,
        reason: entry.reason,
        since: from_millis(i64::try_from(entry.since).unwrap_or(i64::MAX)),
    })
}

impl SharedRate for RedisStore {
    fn reserve(&self, key: &str, interval: Duration) -> Result<Duration, QueueError> {
        let cmd = Cmd::new("EVAL")
            .arg(RESERVE)
            .num(1)
            .arg(self.keys.rate(key))
            .num(duration_ms(interval).max(1));
        let wait = self.with_conn(|c| c.call(cmd)?.int("the rate reservation"))?;
        Ok(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = parse_url("redis://127.0.0.1:6380").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("127.0.0.1", 6380, 0));
        assert_eq!(
            (c.stream.as_str(), c.group.as_str()),
            (DEFAULT_STREAM, DEFAULT_GROUP)
        );
        assert_eq!(c.user, None);
        assert_eq!(c.password, None);

        let c = parse_url("redis://me:p%40ss:w@[::1]:7000/3?stream=s&group=g").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("::1", 7000, 3));
        assert_eq!(c.user.as_deref(), Some("me"));
        assert_eq!(c.password.as_deref(), Some("p@ss:w"));
        assert_eq!((c.stream.as_str(), c.group.as_str()), ("s", "g"));
        assert_eq!(c.server(), "[::1]:7000");
        assert!(!format!("{c:?}").contains("p@ss"));

        let c = parse_url("redis://:secret@cache").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("cache", 6379));
        assert_eq!(c.user, None);
        assert_eq!(c.password.as_deref(), Some("secret"));

        for bad in [
            "redis://:secret@cache:port",
            "redis://:secret@cache/x",
            "redis://:secret@cache?foo=1",
            "redis://:secret@",
            "rediss://:secret@cache",
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn delayed_members_round_trip_through_the_format() {
        let mut job = Job::new(
            "1-0".into(),
            "<a:b@x>".into(),
            b"{\"x\":1}".to_vec(),
            2,
            vec![],
        );
        job.token = "c".into();
        let m = delayed_member(&job);
        assert_eq!(m, b"1-0:3:7:<a:b@x>{\"x\":1}");
    }
}
