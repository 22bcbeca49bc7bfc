//! The Redis store (feature `higress`): entries as strings with a Redis TTL, question vectors
//! as a capped list per semantic context, searched in the plugin. One round trip (a Lua
//! script) fetches the exact entry and, on a miss, the context's vectors; a semantic match
//! costs a second `GET`.

use super::{count, now_ms, AiCache, Mode};
use crate::config::Config;
use crate::entry::Entry;
use crate::key::{self, Digest};
use crate::semantic::cosine;
use aigw::prelude::*;
use aigw::redis::{RedisClient, RedisResult};
use aigw::resp::{Command, Value};

const LOOKUP: &str = "local e = redis.call('GET', KEYS[1]) \
if e or ARGV[1] == '0' then return {e} end \
return {e, redis.call('LRANGE', KEYS[2], 0, -1)}";

const PUSH: &str = "redis.call('LPUSH', KEYS[1], ARGV[1]) \
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1) \
redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1";

fn client(cfg: &Config) -> Option<RedisClient> {
    let r = cfg.redis.as_ref()?;
    Some(RedisClient::new(&r.cluster_name(), r.timeout()))
}

/// Initialises the host's Redis connection for `cfg` (at configuration time).
pub(super) fn init(cfg: &Config) -> Result<(), ConfigError> {
    let (Some(c), Some(r)) = (client(cfg), cfg.redis.as_ref()) else {
        return Err(ConfigError::new(
            "redis",
            "required when store is \"redis\"",
        ));
    };
    c.init(r.username.as_deref(), r.password.as_deref())
        .map_err(|e| {
            ConfigError::new(
                "redis",
                format!(
                    "the gateway refused Redis cluster {:?} ({e}); check service_name/service_port or cluster",
                    c.cluster()
                ),
            )
        })
}

fn entry_key(cfg: &Config, d: &Digest) -> String {
    format!("ai-cache:{}:e:{}", cfg.namespace, key::hex(d))
}

fn vector_key(cfg: &Config, d: &Digest) -> String {
    format!("ai-cache:{}:v:{}", cfg.namespace, key::hex(d))
}

/// The best stored vector at or above `threshold`: records are the entry digest (16 bytes),
/// the expiry (8 bytes, ms) and the f32 components.
fn best_match(records: &[Value], query: &[f32], threshold: f32, now: u64) -> Option<(Digest, f32)> {
    let mut best: Option<(Digest, f32)> = None;
    let mut v = Vec::with_capacity(query.len());
    for r in records {
        let Some(bytes) = r.as_bytes() else { continue };
        let (Some(d), Some(exp), Some(rest)) =
            (bytes.get(..16), bytes.get(16..24), bytes.get(24..))
        else {
            continue;
        };
        let expires = exp.try_into().map_or(0, u64::from_le_bytes);
        if expires <= now {
            continue;
        }
        v.clear();
        // chunks_exact(4) yields 4-byte slices only, so indexes 0..4 are in bounds.
        for c in rest.chunks_exact(4) {
            v.push(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        let score = cosine(query, &v);
        if score >= threshold && best.is_none_or(|(_, s)| score > s) {
            let mut digest = [0u8; 16];
            // `d` is `get(..16)`: exactly 16 bytes.
            digest.copy_from_slice(d);
            best = Some((digest, score));
        }
    }
    best
}

fn parse_entry(v: &Value) -> Option<Entry> {
    serde_json::from_slice(v.as_bytes()?).ok()
}

impl AiCache {
    fn redis_failed(&mut self, ctx: &mut Ctx<Self>, what: &str, e: impl std::fmt::Display) {
        aigw::warn!("redis {what} failed: {e}");
        count("ai_cache_store_errors", &[("op", what)]);
        self.finish_lookup(ctx);
    }

    /// The lookup is over without a hit: let the request go upstream.
    fn finish_lookup(&mut self, ctx: &mut Ctx<Self>) {
        self.decide();
        if let Err(e) = ctx.resume_request() {
            aigw::warn!("cannot resume request: {e}");
        }
    }

    /// Looks the request up in Redis; `true` when the call is under way (the request stays
    /// paused until it answers).
    pub(super) fn redis_lookup(&mut self, ctx: &mut Ctx<Self>) -> bool {
        let cfg = ctx.config_rc();
        let (Some(c), Some(k)) = (client(&cfg), &self.key) else {
            return false;
        };
        let semantic = cfg.semantic.is_some() && self.vector.is_some();
        let ekey = entry_key(&cfg, &k.exact);
        let vkey = vector_key(&cfg, &k.context);
        let cmd = Command::eval(LOOKUP, &[&ekey, &vkey], &[if semantic { "1" } else { "0" }]);
        let sent = ctx.redis_call(&c, &cmd, |plugin: &mut AiCache, ctx, reply| {
            plugin.on_lookup(ctx, reply);
        });
        match sent {
            Ok(()) => true,
            Err(e) => {
                aigw::warn!("redis lookup not sent: {e}");
                count("ai_cache_store_errors", &[("op", "lookup")]);
                false
            }
        }
    }

    fn on_lookup(&mut self, ctx: &mut Ctx<Self>, reply: RedisResult) {
        let items = match reply {
            Ok(Value::Array(Some(items))) => items,
            Ok(_) => return self.redis_failed(ctx, "lookup", "unexpected reply"),
            Err(e) => return self.redis_failed(ctx, "lookup", e),
        };
        if let Some(entry) = items.first().and_then(parse_entry) {
            if self.dialect == Some(entry.dialect) && self.reply_hit(ctx, &entry, None) {
                return;
            }
        }
        let cfg = ctx.config_rc();
        let records = match items.get(1) {
            Some(Value::Array(Some(r))) => r.as_slice(),
            _ => &[],
        };
        let found = match (&cfg.semantic, &self.vector) {
            (Some(sem), Some(q)) => best_match(records, q, sem.threshold, now_ms()),
            _ => None,
        };
        let Some((digest, score)) = found else {
            return self.finish_lookup(ctx);
        };
        let Some(c) = client(&cfg) else {
            return self.finish_lookup(ctx);
        };
        let cmd = Command::get(&entry_key(&cfg, &digest));
        let sent = ctx.redis_call(
            &c,
            &cmd,
            move |plugin: &mut AiCache, ctx, reply| match reply {
                Ok(v) => {
                    if let Some(entry) = parse_entry(&v) {
                        if plugin.dialect == Some(entry.dialect)
                            && plugin.reply_hit(ctx, &entry, Some(score))
                        {
                            return;
                        }
                    }
                    plugin.finish_lookup(ctx);
                }
                Err(e) => plugin.redis_failed(ctx, "lookup", e),
            },
        );
        if let Err(e) = sent {
            self.redis_failed(ctx, "lookup", e);
        }
    }

    /// Stores `entry` (and the question vector) in Redis, without waiting for the answer.
    pub(super) fn redis_store(&mut self, ctx: &mut Ctx<Self>, entry: &Entry) {
        let cfg = ctx.config_rc();
        let (Some(c), Some(k)) = (client(&cfg), &self.key) else {
            return;
        };
        if self.mode == Mode::Bypass {
            return;
        }
        let Ok(json) = serde_json::to_vec(entry) else {
            return;
        };
        let ttl_ms = cfg.ttl_seconds.saturating_mul(1000);
        let set = Command::new("SET")
            .arg(entry_key(&cfg, &k.exact).as_str())
            .arg(json.as_slice())
            .arg("PX")
            .arg(ttl_ms);
        let sent = ctx.redis_call(&c, &set, |_p: &mut AiCache, _ctx, reply| match reply {
            Ok(_) => count("ai_cache_stored", &[]),
            Err(e) => {
                aigw::warn!("redis store failed: {e}");
                count("ai_cache_store_errors", &[("op", "store")]);
            }
        });
        if let Err(e) = sent {
            aigw::warn!("redis store not sent: {e}");
            count("ai_cache_store_errors", &[("op", "store")]);
            return;
        }
        let (Some(sem), Some(v)) = (&cfg.semantic, &self.vector) else {
            return;
        };
        let expires = now_ms().saturating_add(ttl_ms);
        let mut rec = Vec::with_capacity(24 + v.len() * 4);
        rec.extend_from_slice(&k.exact);
        rec.extend_from_slice(&expires.to_le_bytes());
        for x in v {
            rec.extend_from_slice(&x.to_le_bytes());
        }
        let push = Command::new("EVAL")
            .arg(PUSH)
            .arg(1i64)
            .arg(vector_key(&cfg, &k.context).as_str())
            .arg(rec.as_slice())
            .arg(u64::from(sem.max_vectors))
            .arg(ttl_ms);
        let sent = ctx.redis_call(&c, &push, |_p: &mut AiCache, _ctx, reply| {
            if let Err(e) = reply {
                aigw::warn!("redis vector store failed: {e}");
                count("ai_cache_store_errors", &[("op", "vector")]);
            }
        });
        if let Err(e) = sent {
            aigw::warn!("redis vector store not sent: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(d: u8, exp: u64, v: &[f32]) -> Value {
        let mut b = vec![d; 16];
        b.extend_from_slice(&exp.to_le_bytes());
        for x in v {
            b.extend_from_slice(&x.to_le_bytes());
        }
        Value::Bulk(Some(b))
    }

    #[test]
    fn best_match_threshold_and_expiry() {
        let records = vec![
            rec(1, 100, &[1.0, 0.0]),
            rec(2, 100, &[0.0, 1.0]),
            rec(3, 5, &[1.0, 0.1]),
        ];
        assert_eq!(
            best_match(&records, &[1.0, 0.05], 0.9, 10).map(|b| b.0[0]),
            Some(1)
        );
        assert_eq!(best_match(&records, &[0.7, 0.7], 0.9, 10), None);
        assert_eq!(
            best_match(&[Value::Bulk(Some(vec![1, 2]))], &[1.0], 0.1, 0),
            None
        );
    }
}
