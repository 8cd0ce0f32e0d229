//! The Redis backend: several Balas processes sharing one Redis server or one
//! Redis Cluster.
//!
//! Every call goes through one connection (`conn`: a reconnecting
//! connection to one node, or the cluster client with `MOVED`/`ASK` handling
//! and topology refresh). Every multi-key or read-modify-write operation is a
//! single Lua script (`EVALSHA`, loaded on first use), so it is atomic on the
//! server. Scripts never read the server clock: the caller's `now_ms` is
//! passed in, and logical expiry is stored next to the value (the Redis TTL
//! set with `PX` is only garbage collection, with a grace period).
//!
//! Key layout (see `docs/redis-keys.md`): every key starts with the configured
//! prefix `P`. A job queue `Q` lives under the hash tag `{P:q:Q}`; every other
//! key is `P:<kind>:<name>`, where the store's name may carry a hash tag
//! (`src/store/slots.rs`) that decides its cluster slot. Keys one script
//! touches together share a slot by design, and the backend checks it before
//! sending ([`colocated`]), on one node as on a Cluster. The prefix must not
//! contain `{` or `}`. One node and a Cluster use the same layout.
//!
//! Live events use pub/sub (`pubsub`; sharded pub/sub on a Cluster).
//! [`Backend::jobs_push_replicated`] pushes and `WAIT`s on a connection of its
//! own, so a slow replica never holds up the other calls.

mod conn;
mod pubsub;

use std::time::Duration;

use async_trait::async_trait;
use redis::{ErrorKind, RedisError, RedisResult, Script};
use tokio::sync::mpsc;

use self::conn::{CONNECTION_TIMEOUT, Conn, Target};
use self::pubsub::PubSub;
use super::backend::{
    Backend, Job, JobCounts, MoveOutcome, NewJob, RawEntry, StoreError, StoreResult, Versioned,
    colocated,
};
use super::{check_score, gcra_params};

/// Extra physical lifetime of keys whose logical expiry is stored in the value,
/// so a key never disappears before the caller's clock says it expired.
const GC_GRACE_MS: i64 = 1_000;

const REMEMBER_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

// KEYS: the document, then counters. ARGV: expected version, data, then one
// delta per counter.
const DOC_PUT_LUA: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
local cur = 0
if v then cur = tonumber(v) end
if cur ~= tonumber(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'v', cur + 1, 'd', ARGV[2])
for i = 2, #KEYS do redis.call('INCRBY', KEYS[i], ARGV[i + 1]) end
return cur + 1
";

// Every job script takes the queue's keys in the order of `QueueKeys::all`:
// pending, leased, due, attempts, payload, lease, seq, dead. `lease` maps a
// leased job's id to its fencing token; `seq` hands out tokens; `dead` is the
// dead-letter list.

// KEYS: the queue's keys, then one dedupe key per job that has one (in
// order). ARGV: now, n, then per job: id, due, attempts, payload, has_dedupe
// ('1'/'0'), dedupe expiry, dedupe px. Also bumps `seq` (see below).
const JOBS_PUSH_LUA: &str = r"
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local out = {}
local a = 3
local k = 9
for i = 1, n do
  local id = ARGV[a]
  local due = ARGV[a + 1]
  local att = ARGV[a + 2]
  local pl = ARGV[a + 3]
  local hd = ARGV[a + 4]
  local exp = ARGV[a + 5]
  local px = ARGV[a + 6]
  a = a + 7
  local ok = 1
  if redis.call('HEXISTS', KEYS[3], id) == 1 then ok = 0 end
  local dk = nil
  if hd == '1' then
    dk = KEYS[k]
    k = k + 1
    if ok == 1 then
      local v = redis.call('GET', dk)
      if v and tonumber(v) and tonumber(v) > now then ok = 0 end
    end
  end
  if ok == 1 then
    if dk then redis.call('SET', dk, exp, 'PX', px) end
    redis.call('HSET', KEYS[3], id, due)
    redis.call('HSET', KEYS[4], id, att)
    redis.call('HSET', KEYS[5], id, pl)
    redis.call('ZADD', KEYS[1], due, id)
  end
  out[i] = ok
end
-- Always a write, so a WAIT after this push also covers the earlier pushes
-- whose jobs it found as duplicates (they are earlier in the replication stream).
redis.call('INCR', KEYS[7])
return out
";

// KEYS: the queue's keys. ARGV: now, lease deadline, max.
const JOBS_CLAIM_LUA: &str = r"
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[6], id)
  local due = redis.call('HGET', KEYS[3], id)
  if due then
    redis.call('HINCRBY', KEYS[4], id, 1)
    redis.call('ZADD', KEYS[1], due, id)
  end
end
local max = tonumber(ARGV[3])
local out = {}
if max <= 0 then return out end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local due = redis.call('HGET', KEYS[3], id)
  if due then
    local token = redis.call('INCR', KEYS[7])
    redis.call('HSET', KEYS[6], id, token)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    local att = redis.call('HGET', KEYS[4], id) or '0'
    local pl = redis.call('HGET', KEYS[5], id) or ''
    out[#out + 1] = {id, due, att, pl, token}
  end
end
return out
";

// KEYS: the queue's keys. ARGV: id, then a lease token or '' (unfenced).
const JOBS_DELETE_LUA: &str = r"
if ARGV[2] ~= '' and redis.call('HGET', KEYS[6], ARGV[1]) ~= ARGV[2] then return 0 end
local existed = redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
local z = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
if existed == 1 or z > 0 then return 1 end
return 0
";

// KEYS: the queue's keys. ARGV: id, token, due, has_payload, payload, failed.
const JOBS_RETRY_LUA: &str = r"
if redis.call('HGET', KEYS[6], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[4], ARGV[1], 1) end
if ARGV[4] == '1' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[5]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
";

// KEYS: the queue's keys. ARGV: deadline, then id, token pairs.
const JOBS_EXTEND_LUA: &str = r"
local out = {}
local n = 0
for i = 2, #ARGV, 2 do
  n = n + 1
  if redis.call('HGET', KEYS[6], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[2], 'XX', ARGV[1], ARGV[i])
    out[n] = 1
  else
    out[n] = 0
  end
end
return out
";

// KEYS: the queue's keys. ARGV: id, token, dead-letter entry.
const JOBS_BURY_LUA: &str = r"
if redis.call('HGET', KEYS[6], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[8], ARGV[3])
return 1
";

// KEYS: index_1..index_n, holder. ARGV: capacity, holder_score.
const INDEX_POP_MIN_INTO_LUA: &str = r"
local holder = KEYS[#KEYS]
if redis.call('ZCARD', holder) >= tonumber(ARGV[1]) then return false end
local best_i = nil
local best_m = nil
local best_s = nil
for i = 1, #KEYS - 1 do
  local r = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if r[1] then
    local s = tonumber(r[2])
    if best_s == nil or s < best_s then
      best_i = i
      best_m = r[1]
      best_s = s
    end
  end
end
if best_i == nil then return false end
redis.call('ZREM', KEYS[best_i], best_m)
redis.call('ZADD', holder, ARGV[2], best_m)
return {best_i - 1, best_m}
";

// KEYS: from, to. ARGV: member, capacity, score. Answers 1 moved, 0 not in
// the source, -1 full.
const INDEX_MOVE_LUA: &str = r"
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -1 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
";

// KEYS: lock. ARGV: owner, now, expiry, px.
const LOCK_LUA: &str = r"
local o = redis.call('HGET', KEYS[1], 'o')
if o and o ~= ARGV[1] then
  local e = tonumber(redis.call('HGET', KEYS[1], 'e'))
  if e and e > tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

// KEYS: lock. ARGV: owner.
const UNLOCK_LUA: &str = r"
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

// KEYS: rate. ARGV: now, emission interval ms, burst * interval, grace ms.
const RATE_TAKE_LUA: &str = r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local bt = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if not tat or tat < now then tat = now end
local new = tat + t
local allow = new - bt
if allow > now then return math.ceil(allow - now) end
redis.call('SET', KEYS[1], string.format('%.17g', new), 'PX', math.ceil(new - now) + tonumber(ARGV[4]))
return 0
";

// KEYS: list. ARGV: index, item.
const LIST_SET_LUA: &str = r"
if tonumber(ARGV[1]) >= redis.call('LLEN', KEYS[1]) then return 0 end
redis.call('LSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// The loaded scripts (hashes computed once).
struct Scripts {
    remember: Script,
    doc_put: Script,
    jobs_push: Script,
    jobs_claim: Script,
    jobs_delete: Script,
    jobs_retry: Script,
    jobs_extend: Script,
    jobs_bury: Script,
    index_pop_min_into: Script,
    index_move: Script,
    lock: Script,
    unlock: Script,
    rate_take: Script,
    list_set: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            remember: Script::new(REMEMBER_LUA),
            doc_put: Script::new(DOC_PUT_LUA),
            jobs_push: Script::new(JOBS_PUSH_LUA),
            jobs_claim: Script::new(JOBS_CLAIM_LUA),
            jobs_delete: Script::new(JOBS_DELETE_LUA),
            jobs_retry: Script::new(JOBS_RETRY_LUA),
            jobs_extend: Script::new(JOBS_EXTEND_LUA),
            jobs_bury: Script::new(JOBS_BURY_LUA),
            index_pop_min_into: Script::new(INDEX_POP_MIN_INTO_LUA),
            index_move: Script::new(INDEX_MOVE_LUA),
            lock: Script::new(LOCK_LUA),
            unlock: Script::new(UNLOCK_LUA),
            rate_take: Script::new(RATE_TAKE_LUA),
            list_set: Script::new(LIST_SET_LUA),
        }
    }
}

/// The keys of one job queue (all under the queue's hash tag).
struct QueueKeys {
    pending: String,
    leased: String,
    due: String,
    attempts: String,
    payload: String,
    lease: String,
    seq: String,
    dead: String,
    tag: String,
}

impl QueueKeys {
    fn all(&self) -> [&str; 8] {
        [
            &self.pending,
            &self.leased,
            &self.due,
            &self.attempts,
            &self.payload,
            &self.lease,
            &self.seq,
            &self.dead,
        ]
    }

    fn dedupe(&self, key: &str) -> String {
        format!("{}:dedupe:{key}", self.tag)
    }
}

/// [`Backend`] on a Redis server or Cluster; see the module docs.
pub struct RedisBackend {
    target: Target,
    conn: Conn,
    /// A connection of its own for pushes that `WAIT` for replicas: `WAIT`
    /// blocks its connection until the replicas answer.
    replicated: Conn,
    pubsub: PubSub,
    prefix: String,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("nodes", &self.target.describe())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Maps a client error: undecodable replies are corrupt data, everything else
/// (refused, timed out, dropped, server errors) means the store is unavailable.
fn map_err(what: &str, e: RedisError) -> StoreError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Corrupt {
            key: what.to_owned(),
            reason: e.to_string(),
        },
        _ => StoreError::Unavailable(format!("redis {what}: {e}")),
    }
}

/// The URL with its credentials' secret part replaced by `***`
/// (`redis://user:***@host:6379/0`), for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let user = rest[..at].split_once(':').map_or("", |(u, _)| u);
    format!("{}{user}:***@{}", &url[..scheme_end], &rest[at + 1..])
}

/// The secret part of a URL's credentials, if any.
fn url_secret(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest[..rest.find('/').unwrap_or(rest.len())].rfind('@')?];
    let secret = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!secret.is_empty()).then_some(secret)
}

/// Replaces the URL (and its password, wherever quoted) in an error message.
fn scrub_password(e: StoreError, url: &str) -> StoreError {
    let clean = |m: String| {
        let m = m.replace(url, &redact_url(url));
        match url_secret(url) {
            Some(secret) => m.replace(secret, "***"),
            None => m,
        }
    };
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(clean(m)),
        StoreError::Corrupt { key, reason } => StoreError::Corrupt {
            key: clean(key),
            reason: clean(reason),
        },
        other => other,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Longest physical TTL set (ten years); Redis rejects expiries that overflow.
const MAX_PX: i64 = 10 * 365 * 24 * 3_600 * 1_000;

/// Physical TTL for a key whose logical lifetime is `ttl`.
fn gc_px(ttl: Duration) -> i64 {
    ms(ttl).saturating_add(GC_GRACE_MS).clamp(1, MAX_PX)
}

/// Whether the servers know `SPUBLISH` (Redis ≥ 7.0): `COMMAND INFO` answers
/// nil for an unknown command.
async fn has_sharded_pubsub(conn: &mut Conn) -> bool {
    let info: RedisResult<Vec<redis::Value>> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("SPUBLISH")
        .query_async(conn)
        .await;
    matches!(info.as_deref(), Ok([v]) if *v != redis::Value::Nil)
}

/// Keys and arguments of `JOBS_PUSH` for `jobs`.
fn push_call(q: &QueueKeys, jobs: &[NewJob], now_ms: i64) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut keys: Vec<String> = q.all().iter().map(|k| (*k).to_owned()).collect();
    let text = |v: &dyn ToString| v.to_string().into_bytes();
    let mut args = vec![text(&now_ms), text(&jobs.len())];
    for nj in jobs {
        args.push(nj.job.id.clone().into_bytes());
        args.push(text(&nj.job.due_ms));
        args.push(text(&nj.job.attempts));
        args.push(nj.job.payload.clone());
        match &nj.dedupe {
            Some((key, ttl)) => {
                keys.push(q.dedupe(key));
                args.push(b"1".to_vec());
                args.push(text(&now_ms.saturating_add(ms(*ttl))));
                args.push(text(&gc_px(*ttl)));
            }
            None => args.extend([b"0".to_vec(), b"0".to_vec(), b"0".to_vec()]),
        }
    }
    (keys, args)
}

/// Reads `JOBS_PUSH`'s answer: one flag per job.
fn pushed(q: &QueueKeys, n: usize, out: Vec<i64>) -> StoreResult<Vec<bool>> {
    if out.len() != n {
        return Err(StoreError::Corrupt {
            key: q.tag.clone(),
            reason: format!("jobs_push answered {} for {n} jobs", out.len()),
        });
    }
    Ok(out.into_iter().map(|n| n == 1).collect())
}

impl RedisBackend {
    /// Connects to one Redis server at `url` (e.g. `redis://127.0.0.1:6379/0`,
    /// `rediss://:password@host:6380/0` for TLS); every key starts with
    /// `key_prefix`, which must not contain `{` or `}` (they form hash tags).
    pub async fn connect(url: &str, key_prefix: &str) -> StoreResult<Self> {
        // Errors may quote the URL; none may show its password.
        let scrub = |e: StoreError| scrub_password(e, url);
        let target = Target::node(url).map_err(|e| scrub(map_err("url", e)))?;
        Self::open(target, key_prefix).await.map_err(scrub)
    }

    /// Connects to a Redis Cluster through any of its `nodes` (seed URLs, as
    /// for [`RedisBackend::connect`]; the client learns the rest of the
    /// cluster from them).
    pub async fn connect_cluster(nodes: &[String], key_prefix: &str) -> StoreResult<Self> {
        // Errors may quote a seed URL; none may show its password.
        let scrub = |e: StoreError| nodes.iter().fold(e, |e, url| scrub_password(e, url));
        let target = Target::cluster(nodes).map_err(|e| scrub(map_err("cluster nodes", e)))?;
        Self::open(target, key_prefix).await.map_err(scrub)
    }

    async fn open(target: Target, key_prefix: &str) -> StoreResult<Self> {
        if key_prefix.contains(['{', '}']) {
            return Err(StoreError::Unavailable(format!(
                "invalid redis key prefix {key_prefix:?}: it must not contain '{{' or '}}'"
            )));
        }
        let connect = async {
            let conn = target.connect().await?;
            let replicated = target.connect().await?;
            Ok::<_, RedisError>((conn, replicated))
        };
        let (mut conn, replicated) = tokio::time::timeout(CONNECTION_TIMEOUT * 3, connect)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "redis connect to {}: timed out",
                    target.describe()
                ))
            })?
            .map_err(|e| map_err(&format!("connect to {}", target.describe()), e))?;
        let sharded = target.is_cluster() && has_sharded_pubsub(&mut conn).await;
        Ok(Self {
            pubsub: PubSub::new(target.clone(), sharded),
            target,
            conn,
            replicated,
            prefix: key_prefix.to_owned(),
            scripts: Scripts::new(),
        })
    }

    fn queue(&self, queue: &str) -> QueueKeys {
        let tag = format!("{{{}:q:{queue}}}", self.prefix);
        QueueKeys {
            pending: format!("{tag}:pending"),
            leased: format!("{tag}:leased"),
            due: format!("{tag}:due"),
            attempts: format!("{tag}:attempts"),
            payload: format!("{tag}:payload"),
            lease: format!("{tag}:lease"),
            seq: format!("{tag}:seq"),
            dead: format!("{tag}:dead"),
            tag,
        }
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    fn index_key(&self, index: &str) -> String {
        self.key("ix", index)
    }

    fn topic(&self, topic: &str) -> String {
        self.key("topic", topic)
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| map_err(what, e))
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        what: &str,
        inv: &redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        inv.invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(what, e))
    }

    /// Deletes a job; only under `lease` when one is given.
    async fn jobs_delete(&self, queue: &str, id: &str, lease: Option<u64>) -> StoreResult<bool> {
        let q = self.queue(queue);
        let mut inv = self.scripts.jobs_delete.prepare_invoke();
        for k in q.all() {
            inv.key(k);
        }
        inv.arg(id)
            .arg(lease.map_or_else(String::new, |l| l.to_string()));
        let n: i64 = self.invoke("jobs_delete", &inv).await?;
        Ok(n == 1)
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        if self.target.is_cluster() {
            "redis-cluster"
        } else {
            "redis"
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = self.query("ping", &redis::cmd("PING")).await?;
        Ok(())
    }

    async fn remember(&self, key: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        let mut inv = self.scripts.remember.prepare_invoke();
        inv.key(self.key("seen", key))
            .arg(now_ms)
            .arg(now_ms.saturating_add(ms(ttl)))
            .arg(gc_px(ttl));
        let n: i64 = self.invoke("remember", &inv).await?;
        Ok(n == 1)
    }

    async fn forget(&self, key: &str) -> StoreResult<()> {
        let _: i64 = self
            .query("forget", redis::cmd("DEL").arg(self.key("seen", key)))
            .await?;
        Ok(())
    }

    async fn doc_get(&self, key: &str) -> StoreResult<Option<Versioned>> {
        let mut docs = self.doc_get_many(&[key.to_owned()]).await?;
        Ok(docs.pop().flatten())
    }

    async fn doc_put(&self, key: &str, expected: u64, data: &[u8]) -> StoreResult<Option<u64>> {
        self.doc_put_counted(key, expected, data, &[]).await
    }

    async fn doc_put_counted(
        &self,
        key: &str,
        expected: u64,
        data: &[u8],
        counters: &[(String, i64)],
    ) -> StoreResult<Option<u64>> {
        colocated(
            "doc_put_counted",
            std::iter::once(key).chain(counters.iter().map(|(c, _)| c.as_str())),
        )?;
        let mut inv = self.scripts.doc_put.prepare_invoke();
        inv.key(self.key("doc", key)).arg(expected).arg(data);
        for (counter, delta) in counters {
            inv.key(self.key("n", counter)).arg(*delta);
        }
        self.invoke("doc_put", &inv).await
    }

    async fn doc_delete(&self, key: &str) -> StoreResult<bool> {
        let n: i64 = self
            .query("doc_delete", redis::cmd("DEL").arg(self.key("doc", key)))
            .await?;
        Ok(n == 1)
    }

    async fn doc_get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Versioned>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET")
                .arg(self.key("doc", key))
                .arg("v")
                .arg("d");
        }
        let mut conn = self.conn.clone();
        let rows: Vec<(Option<String>, Option<Vec<u8>>)> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| map_err("doc_get_many", e))?;
        if rows.len() != keys.len() {
            return Err(StoreError::Corrupt {
                key: "doc_get_many".into(),
                reason: format!("{} replies for {} keys", rows.len(), keys.len()),
            });
        }
        rows.into_iter()
            .zip(keys)
            .map(|(row, key)| match row {
                (None, _) => Ok(None),
                (Some(v), data) => {
                    let version = v.parse::<u64>().map_err(|e| StoreError::Corrupt {
                        key: self.key("doc", key),
                        reason: format!("version {v:?}: {e}"),
                    })?;
                    Ok(Some(Versioned {
                        version,
                        data: data.unwrap_or_default(),
                    }))
                }
            })
            .collect()
    }

    async fn jobs_push(&self, queue: &str, jobs: &[NewJob], now_ms: i64) -> StoreResult<Vec<bool>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let q = self.queue(queue);
        let (keys, args) = push_call(&q, jobs, now_ms);
        let mut inv = self.scripts.jobs_push.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        for a in &args {
            inv.arg(&a[..]);
        }
        let out: Vec<i64> = self.invoke("jobs_push", &inv).await?;
        pushed(&q, jobs.len(), out)
    }

    async fn jobs_push_replicated(
        &self,
        queue: &str,
        jobs: &[NewJob],
        now_ms: i64,
        replicas: u32,
        timeout: Duration,
    ) -> StoreResult<(Vec<bool>, u32)> {
        if jobs.is_empty() {
            return Ok((Vec::new(), replicas));
        }
        let q = self.queue(queue);
        let (keys, args) = push_call(&q, jobs, now_ms);
        // The push and its WAIT back to back in one pipeline on one connection
        // to the queue's master: the WAIT covers exactly this push (and, on
        // that master, everything before it). If the connection breaks in
        // between, the whole call fails and the caller answers 503. EVAL, not
        // EVALSHA: a freshly promoted replica has no script cache.
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(JOBS_PUSH_LUA)
            .arg(keys.len())
            .arg(&keys)
            .arg(&args)
            .cmd("WAIT")
            .arg(replicas)
            .arg(ms(timeout).max(1));
        let mut conn = self.replicated.clone();
        let answers = conn
            .pipeline_on_master_of(&q.pending, &pipe)
            .await
            .map_err(|e| map_err("jobs_push_replicated", e))?;
        let [push, wait] =
            <[redis::Value; 2]>::try_from(answers).map_err(|a| StoreError::Corrupt {
                key: q.tag.clone(),
                reason: format!("jobs_push_replicated answered {} replies for 2", a.len()),
            })?;
        let out: Vec<i64> =
            redis::from_redis_value(push).map_err(|e| map_err("jobs_push_replicated", e.into()))?;
        let acked: u32 =
            redis::from_redis_value(wait).map_err(|e| map_err("jobs_push_replicated", e.into()))?;
        Ok((pushed(&q, jobs.len(), out)?, acked.min(replicas)))
    }

    async fn jobs_claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Job>> {
        let q = self.queue(queue);
        let mut inv = self.scripts.jobs_claim.prepare_invoke();
        for k in q.all() {
            inv.key(k);
        }
        inv.arg(now_ms)
            .arg(now_ms.saturating_add(ms(lease)))
            .arg(u64::try_from(max).unwrap_or(u64::MAX).min(1 << 31));
        let rows: Vec<(String, i64, u32, Vec<u8>, u64)> = self.invoke("jobs_claim", &inv).await?;
        Ok(rows
            .into_iter()
            .map(|(id, due_ms, attempts, payload, lease)| Job {
                id,
                due_ms,
                attempts,
                payload,
                lease,
            })
            .collect())
    }

    async fn jobs_ack(&self, queue: &str, id: &str, lease: u64) -> StoreResult<bool> {
        self.jobs_delete(queue, id, Some(lease)).await
    }

    async fn jobs_retry(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        due_ms: i64,
        payload: Option<&[u8]>,
        failed: bool,
    ) -> StoreResult<bool> {
        let q = self.queue(queue);
        let mut inv = self.scripts.jobs_retry.prepare_invoke();
        for k in q.all() {
            inv.key(k);
        }
        inv.arg(id).arg(lease).arg(due_ms);
        match payload {
            Some(p) => inv.arg("1").arg(p),
            None => inv.arg("0").arg(""),
        };
        inv.arg(if failed { "1" } else { "0" });
        let n: i64 = self.invoke("jobs_retry", &inv).await?;
        Ok(n == 1)
    }

    async fn jobs_extend(
        &self,
        queue: &str,
        leases: &[(String, u64)],
        deadline_ms: i64,
    ) -> StoreResult<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let q = self.queue(queue);
        let mut inv = self.scripts.jobs_extend.prepare_invoke();
        for k in q.all() {
            inv.key(k);
        }
        inv.arg(deadline_ms);
        for (id, lease) in leases {
            inv.arg(id).arg(*lease);
        }
        let out: Vec<i64> = self.invoke("jobs_extend", &inv).await?;
        Ok(out.into_iter().map(|n| n == 1).collect())
    }

    async fn jobs_bury(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        entry: &[u8],
    ) -> StoreResult<bool> {
        let q = self.queue(queue);
        let mut inv = self.scripts.jobs_bury.prepare_invoke();
        for k in q.all() {
            inv.key(k);
        }
        inv.arg(id).arg(lease).arg(entry);
        let n: i64 = self.invoke("jobs_bury", &inv).await?;
        Ok(n == 1)
    }

    async fn jobs_dead(&self, queue: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let q = self.queue(queue);
        let stop = start.saturating_add(limit - 1).min(i64::MAX as u64);
        self.query(
            "jobs_dead",
            redis::cmd("LRANGE").arg(&q.dead).arg(start).arg(stop),
        )
        .await
    }

    async fn jobs_dead_remove(&self, queue: &str, entry: &[u8]) -> StoreResult<bool> {
        let q = self.queue(queue);
        let n: i64 = self
            .query(
                "jobs_dead_remove",
                redis::cmd("LREM").arg(&q.dead).arg(1).arg(entry),
            )
            .await?;
        Ok(n > 0)
    }

    async fn jobs_cancel(&self, queue: &str, id: &str) -> StoreResult<bool> {
        self.jobs_delete(queue, id, None).await
    }

    async fn jobs_get(&self, queue: &str, id: &str) -> StoreResult<Option<Job>> {
        let q = self.queue(queue);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hget(&q.due, id)
            .hget(&q.attempts, id)
            .hget(&q.payload, id)
            .hget(&q.lease, id);
        let mut conn = self.conn.clone();
        #[allow(clippy::type_complexity)]
        let (due, attempts, payload, lease): (
            Option<i64>,
            Option<u32>,
            Option<Vec<u8>>,
            Option<u64>,
        ) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| map_err("jobs_get", e))?;
        Ok(due.map(|due_ms| Job {
            id: id.to_owned(),
            due_ms,
            attempts: attempts.unwrap_or(0),
            payload: payload.unwrap_or_default(),
            lease: lease.unwrap_or(0),
        }))
    }

    async fn jobs_counts(&self, queue: &str) -> StoreResult<JobCounts> {
        let q = self.queue(queue);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zcard(&q.pending)
            .zcard(&q.leased)
            .llen(&q.dead);
        let mut conn = self.conn.clone();
        let (pending, leased, dead): (u64, u64, u64) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| map_err("jobs_counts", e))?;
        Ok(JobCounts {
            pending,
            leased,
            dead,
        })
    }

    async fn jobs_next_due(&self, queue: &str) -> StoreResult<Option<i64>> {
        let q = self.queue(queue);
        let first: Vec<(String, f64)> = self
            .query(
                "jobs_next_due",
                redis::cmd("ZRANGE")
                    .arg(&q.pending)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES"),
            )
            .await?;
        #[allow(clippy::cast_possible_truncation)]
        Ok(first.first().map(|(_, s)| *s as i64))
    }

    async fn index_put(&self, index: &str, member: &str, score: f64) -> StoreResult<()> {
        let score = check_score("score", score)?;
        let _: i64 = self
            .query(
                "index_put",
                redis::cmd("ZADD")
                    .arg(self.index_key(index))
                    .arg(score)
                    .arg(member),
            )
            .await?;
        Ok(())
    }

    async fn index_put_many(&self, entries: &[(String, String, f64)]) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        for (index, member, score) in entries {
            let score = check_score("score", *score)?;
            pipe.cmd("ZADD")
                .arg(self.index_key(index))
                .arg(score)
                .arg(member)
                .ignore();
        }
        if entries.is_empty() {
            return Ok(());
        }
        // One pipeline: on a Cluster the client splits it by node.
        let mut conn = self.conn.clone();
        let () = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| map_err("index_put_many", e))?;
        Ok(())
    }

    async fn index_remove(&self, index: &str, member: &str) -> StoreResult<bool> {
        let n: i64 = self
            .query(
                "index_remove",
                redis::cmd("ZREM").arg(self.index_key(index)).arg(member),
            )
            .await?;
        Ok(n > 0)
    }

    async fn index_range(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let (min, max) = (check_score("min", min)?, check_score("max", max)?);
        if limit == 0 || min > max {
            return Ok(Vec::new());
        }
        self.query(
            "index_range",
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.index_key(index))
                .arg(min)
                .arg(max)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(
                    u64::try_from(limit)
                        .unwrap_or(u64::MAX)
                        .min(i64::MAX as u64),
                ),
        )
        .await
    }

    async fn index_range_rev(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let (min, max) = (check_score("min", min)?, check_score("max", max)?);
        if limit == 0 || min > max {
            return Ok(Vec::new());
        }
        self.query(
            "index_range_rev",
            redis::cmd("ZREVRANGEBYSCORE")
                .arg(self.index_key(index))
                .arg(max)
                .arg(min)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(
                    u64::try_from(limit)
                        .unwrap_or(u64::MAX)
                        .min(i64::MAX as u64),
                ),
        )
        .await
    }

    async fn index_rank(&self, index: &str, member: &str) -> StoreResult<Option<u64>> {
        self.query(
            "index_rank",
            redis::cmd("ZRANK").arg(self.index_key(index)).arg(member),
        )
        .await
    }

    async fn index_score(&self, index: &str, member: &str) -> StoreResult<Option<f64>> {
        self.query(
            "index_score",
            redis::cmd("ZSCORE").arg(self.index_key(index)).arg(member),
        )
        .await
    }

    async fn index_len(&self, index: &str) -> StoreResult<u64> {
        self.query("index_len", redis::cmd("ZCARD").arg(self.index_key(index)))
            .await
    }

    async fn index_pop_min_into(
        &self,
        indexes: &[String],
        holder: &str,
        capacity: u64,
        holder_score: f64,
    ) -> StoreResult<Option<(String, String)>> {
        let holder_score = check_score("holder_score", holder_score)?;
        if indexes.is_empty() || capacity == 0 {
            return Ok(None);
        }
        colocated(
            "index_pop_min_into",
            indexes.iter().map(String::as_str).chain([holder]),
        )?;
        let mut inv = self.scripts.index_pop_min_into.prepare_invoke();
        for index in indexes {
            inv.key(self.index_key(index));
        }
        inv.key(self.index_key(holder))
            .arg(capacity.min(1 << 53))
            .arg(holder_score);
        let hit: Option<(usize, String)> = self.invoke("index_pop_min_into", &inv).await?;
        match hit {
            None => Ok(None),
            Some((i, member)) => match indexes.get(i) {
                Some(index) => Ok(Some((index.clone(), member))),
                None => Err(StoreError::Corrupt {
                    key: self.index_key(holder),
                    reason: format!("index_pop_min_into answered index #{i}"),
                }),
            },
        }
    }

    async fn index_move(
        &self,
        from: &str,
        member: &str,
        to: &str,
        capacity: u64,
        score: f64,
    ) -> StoreResult<MoveOutcome> {
        let score = check_score("score", score)?;
        colocated("index_move", [from, to])?;
        let mut inv = self.scripts.index_move.prepare_invoke();
        inv.key(self.index_key(from))
            .key(self.index_key(to))
            .arg(member)
            .arg(capacity.min(1 << 53))
            .arg(score);
        let n: i64 = self.invoke("index_move", &inv).await?;
        Ok(match n {
            1 => MoveOutcome::Moved,
            0 => MoveOutcome::NotInSource,
            _ => MoveOutcome::Full,
        })
    }

    async fn list_push(&self, key: &str, item: &[u8]) -> StoreResult<u64> {
        self.query(
            "list_push",
            redis::cmd("RPUSH").arg(self.key("list", key)).arg(item),
        )
        .await
    }

    async fn list_range(&self, key: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        let stop = start.saturating_add(i64::try_from(limit).unwrap_or(i64::MAX) - 1);
        self.query(
            "list_range",
            redis::cmd("LRANGE")
                .arg(self.key("list", key))
                .arg(start)
                .arg(stop),
        )
        .await
    }

    async fn list_len(&self, key: &str) -> StoreResult<u64> {
        self.query("list_len", redis::cmd("LLEN").arg(self.key("list", key)))
            .await
    }

    async fn list_set(&self, key: &str, index: u64, item: &[u8]) -> StoreResult<bool> {
        let mut inv = self.scripts.list_set.prepare_invoke();
        inv.key(self.key("list", key))
            .arg(index.min(i64::MAX as u64))
            .arg(item);
        let n: i64 = self.invoke("list_set", &inv).await?;
        Ok(n == 1)
    }

    async fn list_delete(&self, key: &str) -> StoreResult<bool> {
        let n: i64 = self
            .query("list_delete", redis::cmd("DEL").arg(self.key("list", key)))
            .await?;
        Ok(n == 1)
    }

    async fn lock(&self, key: &str, owner: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        let mut inv = self.scripts.lock.prepare_invoke();
        inv.key(self.key("lock", key))
            .arg(owner)
            .arg(now_ms)
            .arg(now_ms.saturating_add(ms(ttl)))
            .arg(gc_px(ttl));
        let n: i64 = self.invoke("lock", &inv).await?;
        Ok(n == 1)
    }

    async fn unlock(&self, key: &str, owner: &str) -> StoreResult<bool> {
        let mut inv = self.scripts.unlock.prepare_invoke();
        inv.key(self.key("lock", key)).arg(owner);
        let n: i64 = self.invoke("unlock", &inv).await?;
        Ok(n == 1)
    }

    async fn rate_take(
        &self,
        key: &str,
        per_second: f64,
        burst: u32,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let (interval, tolerance) = gcra_params(per_second, burst)?;
        let mut inv = self.scripts.rate_take.prepare_invoke();
        inv.key(self.key("rate", key))
            .arg(now_ms)
            .arg(interval)
            .arg(tolerance)
            .arg(GC_GRACE_MS);
        self.invoke("rate_take", &inv).await
    }

    async fn rate_reset(&self, key: &str) -> StoreResult<()> {
        let _: i64 = self
            .query("rate_reset", redis::cmd("DEL").arg(self.key("rate", key)))
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, _now_ms: i64, _max: usize) -> StoreResult<usize> {
        // Every key with an expiry carries a Redis TTL (`PX`): Redis deletes them.
        Ok(0)
    }

    async fn scan(
        &self,
        cursor: &str,
        limit: usize,
    ) -> StoreResult<(Vec<RawEntry>, Option<String>)> {
        // The cursor is `<master>:<that master's SCAN cursor>`: a Cluster is
        // scanned one master after the other (on one node there is one). A
        // failover or resharding during a scan may skip or repeat keys, as
        // SCAN itself may; this is for tests and audits, not live paths.
        let corrupt = || StoreError::Corrupt {
            key: "scan".into(),
            reason: format!("invalid scan cursor {cursor:?}"),
        };
        let (node, start) = if cursor.is_empty() {
            (0, "0")
        } else {
            let (node, start) = cursor.split_once(':').ok_or_else(corrupt)?;
            (node.parse::<usize>().map_err(|_| corrupt())?, start)
        };
        let mut conn = self.conn.clone();
        let masters = conn.master_slots().await.map_err(|e| map_err("scan", e))?;
        let Some(&slot) = masters.get(node) else {
            return Ok((Vec::new(), None));
        };
        let (next, keys): (String, Vec<String>) = conn
            .query_on_master_of_slot(
                slot,
                redis::cmd("SCAN")
                    .arg(start)
                    .arg("COUNT")
                    .arg(limit.clamp(1, 10_000)),
            )
            .await
            .map_err(|e| map_err("scan", e))?;
        let next = if next != "0" {
            Some(format!("{node}:{next}"))
        } else if node + 1 < masters.len() {
            Some(format!("{}:0", node + 1))
        } else {
            None
        };
        // Only this deployment's keys (another prefix is another store).
        let plain = format!("{}:", self.prefix);
        let tagged = format!("{{{}:", self.prefix);
        let mut out = Vec::new();
        for key in keys {
            if !(key.starts_with(&plain) || key.starts_with(&tagged)) {
                continue;
            }
            let kind: String = self.query("scan", redis::cmd("TYPE").arg(&key)).await?;
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => {
                    let v: Option<Vec<u8>> =
                        self.query("scan", redis::cmd("GET").arg(&key)).await?;
                    v.into_iter().collect()
                }
                "hash" => self.query("scan", redis::cmd("HGETALL").arg(&key)).await?,
                "list" => {
                    self.query("scan", redis::cmd("LRANGE").arg(&key).arg(0).arg(-1))
                        .await?
                }
                "zset" => {
                    self.query(
                        "scan",
                        redis::cmd("ZRANGE")
                            .arg(&key)
                            .arg(0)
                            .arg(-1)
                            .arg("WITHSCORES"),
                    )
                    .await?
                }
                "set" => self.query("scan", redis::cmd("SMEMBERS").arg(&key)).await?,
                // Gone meanwhile, or a type Balas never writes.
                _ => continue,
            };
            out.push(RawEntry { key, values });
        }
        Ok((out, next))
    }

    async fn counter_add(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.query(
            "counter_add",
            redis::cmd("INCRBY").arg(self.key("n", key)).arg(delta),
        )
        .await
    }

    async fn counter_get(&self, key: &str) -> StoreResult<i64> {
        let v: Option<i64> = self
            .query("counter_get", redis::cmd("GET").arg(self.key("n", key)))
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn publish(&self, topic: &str, payload: &[u8]) -> StoreResult<()> {
        let cmd = self.pubsub.publish_cmd(&self.topic(topic), payload);
        let _: i64 = self.query("publish", &cmd).await?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> StoreResult<mpsc::Receiver<Vec<u8>>> {
        self.pubsub.subscribe(&self.topic(topic)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        for (url, shown) in [
            (
                "redis://:hunter2@10.0.0.5:6379/0",
                "redis://:***@10.0.0.5:6379/0",
            ),
            ("redis://app:hunter2@cache/1", "redis://app:***@cache/1"),
            ("rediss://hunter2@cache:6380", "rediss://:***@cache:6380"),
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
            ("redis://cache/0?x=a@b", "redis://cache/0?x=a@b"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let e = scrub_password(
            StoreError::Unavailable("cannot reach redis://:hunter2@h:1/ (hunter2)".into()),
            "redis://:hunter2@h:1/",
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
