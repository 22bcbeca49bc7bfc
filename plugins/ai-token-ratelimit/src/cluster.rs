//! Cluster mode: fixed-window counters in Redis, shared by every gateway replica. This module
//! holds the pure half (key names, Lua scripts, commands, reply decoding); the calls are made
//! by the filter through the SDK's Higress Redis support (feature `higress`).
//!
//! Admission is one `EVAL` over every window of every limit that applies to a request: it
//! reads all counters, and only when the amount fits in all of them adds it to all of them —
//! atomically, since Redis runs a script without interleaving. Settling is a second `EVAL`
//! that moves each counter by the difference between the real cost and the reservation
//! (never below zero). Keys carry the window index and expire one minute after their window
//! ends, so Redis cleans up expired windows by itself.
//!
//! Scripts are sent by SHA-1 (`EVALSHA`); when Redis does not know one (`NOSCRIPT`, after a
//! restart or `SCRIPT FLUSH`) the same call is sent again with `EVAL`, which also reloads it.

use aigw::resp::{Command, Script, Value};

/// Seconds a key outlives its window.
pub const TTL_MARGIN_SECS: u64 = 60;

/// Checks and (if everything fits) charges. `KEYS[i]`: counters; `ARGV[3i-2..3i]`: amount,
/// limit, ttl. Returns `{admitted (1|0), usage_1, ..., usage_n}` (usage after the charge when
/// admitted, before otherwise). An amount of 0 still needs one unit of room.
const ADMIT: &str = "local n = #KEYS
local used = {}
local ok = 1
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  used[i] = c
  local need = tonumber(ARGV[3*i-2])
  if need < 1 then need = 1 end
  if c + need > tonumber(ARGV[3*i-1]) then ok = 0 end
end
if ok == 1 then
  for i = 1, n do
    used[i] = redis.call('INCRBY', KEYS[i], ARGV[3*i-2])
    if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3*i]) end
  end
end
local out = {ok}
for i = 1, n do out[i+1] = used[i] end
return out";

/// Moves counters. `KEYS[i]`: counters; `ARGV[2i-1..2i]`: delta, ttl. Never below zero.
const SETTLE: &str = "for i = 1, #KEYS do
  local d = tonumber(ARGV[2*i-1])
  if d ~= 0 then
    local v = redis.call('INCRBY', KEYS[i], d)
    if v < 0 then redis.call('INCRBY', KEYS[i], -v) end
    if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[2*i]) end
  end
end
return 1";

/// One Redis counter: a window of a limit for an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The Redis key.
    pub key: String,
    /// Start of its window (ms since the epoch).
    pub start_ms: u64,
    /// Window length in seconds.
    pub secs: u64,
    /// The window's limit.
    pub limit: u64,
}

impl Counter {
    /// The counter of window `secs` at `now_ms`: `<prefix>:<limit>:<id hex>:<secs>:<index>`.
    pub fn new(
        prefix: &str,
        limit_name: &str,
        id: u64,
        secs: u64,
        limit: u64,
        now_ms: u64,
    ) -> Counter {
        let len = secs.saturating_mul(1000).max(1);
        let index = now_ms / len;
        Counter {
            key: format!("{prefix}:{limit_name}:{id:016x}:{secs}:{index}"),
            start_ms: index * len,
            secs,
            limit,
        }
    }

    /// Expiry of the key.
    pub fn ttl(&self) -> u64 {
        self.secs + TTL_MARGIN_SECS
    }

    /// Milliseconds until the window ends.
    pub fn reset_ms(&self, now_ms: u64) -> u64 {
        (self.start_ms + self.secs.saturating_mul(1000)).saturating_sub(now_ms)
    }
}

fn script(body: &str, database: u32) -> Script {
    if database == 0 {
        Script::new(body)
    } else {
        Script::new(format!("redis.call('SELECT', {database})\n{body}"))
    }
}

/// The two scripts of a configuration (they differ by the database they select), with their
/// SHA-1s computed once at configure time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    /// Check and charge.
    pub admit: Script,
    /// Move counters by deltas.
    pub settle: Script,
}

impl Scripts {
    /// The scripts for `database`.
    pub fn new(database: u32) -> Scripts {
        Scripts {
            admit: script(ADMIT, database),
            settle: script(SETTLE, database),
        }
    }
}

/// The keys and arguments of one script run, kept so the call can be sent again with `EVAL`
/// after a `NOSCRIPT` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCall {
    keys: Vec<String>,
    args: Vec<String>,
}

impl ScriptCall {
    /// `EVALSHA` of `script` with these keys and arguments (the usual form).
    pub fn evalsha(&self, script: &Script) -> Command {
        let (keys, args) = self.parts();
        script.evalsha(&keys, &args)
    }

    /// `EVAL` of `script` with these keys and arguments (after `NOSCRIPT`).
    pub fn eval(&self, script: &Script) -> Command {
        let (keys, args) = self.parts();
        script.eval(&keys, &args)
    }

    fn parts(&self) -> (Vec<&str>, Vec<&str>) {
        (
            self.keys.iter().map(String::as_str).collect(),
            self.args.iter().map(String::as_str).collect(),
        )
    }
}

/// The admission call for counters and their amounts (run with [`Scripts::admit`]).
pub fn admit_call(counters: &[(Counter, u64)]) -> ScriptCall {
    let keys = counters.iter().map(|(c, _)| c.key.clone()).collect();
    let mut args = Vec::with_capacity(counters.len() * 3);
    for (c, amount) in counters {
        args.push(amount.to_string());
        args.push(c.limit.to_string());
        args.push(c.ttl().to_string());
    }
    ScriptCall { keys, args }
}

/// The settling call for counters and their deltas (run with [`Scripts::settle`]; zero
/// deltas are left out); `None` when nothing moves.
pub fn settle_call(moves: &[(Counter, i64)]) -> Option<ScriptCall> {
    let moves: Vec<&(Counter, i64)> = moves.iter().filter(|(_, d)| *d != 0).collect();
    if moves.is_empty() {
        return None;
    }
    let keys = moves.iter().map(|(c, _)| c.key.clone()).collect();
    let mut args = Vec::with_capacity(moves.len() * 2);
    for (c, d) in &moves {
        args.push(d.to_string());
        args.push(c.ttl().to_string());
    }
    Some(ScriptCall { keys, args })
}

/// Decodes the admission reply: whether admitted, and the usage of each counter.
pub fn parse_admit(reply: &Value, n: usize) -> Result<(bool, Vec<u64>), String> {
    let Value::Array(Some(items)) = reply else {
        return Err(format!("unexpected admission reply {reply:?}"));
    };
    if items.len() != n + 1 {
        return Err(format!(
            "admission reply has {} items, expected {}",
            items.len(),
            n + 1
        ));
    }
    let mut nums = items.iter().map(|v| v.as_i64());
    let ok = nums.next().flatten() == Some(1);
    let used = nums
        .map(|v| v.map(|x| u64::try_from(x).unwrap_or(0)))
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| "admission reply holds a non-integer".to_string())?;
    Ok((ok, used))
}

/// The delta that settles a reservation: in the reservation's own window the difference,
/// after a rollover (`current` is another window) only what the estimate missed.
pub fn settle_delta(
    reserved_window: &Counter,
    current: &Counter,
    reserved: u64,
    actual: u64,
) -> i64 {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if reserved_window.key == current.key {
        clamp(actual) - clamp(reserved)
    } else {
        clamp(actual.saturating_sub(reserved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw::resp::decode;

    #[test]
    fn keys_windows_and_ttls() {
        let c = Counter::new("p", "lim", 0xabc, 60, 100, 125_000);
        assert_eq!(c.key, "p:lim:0000000000000abc:60:2");
        assert_eq!(c.start_ms, 120_000);
        assert_eq!(c.reset_ms(125_000), 55_000);
        assert_eq!(c.ttl(), 120);
    }

    #[test]
    fn commands_carry_keys_and_arguments() {
        let c = Counter::new("p", "l", 1, 1, 10, 0);
        let scripts = Scripts::new(0);
        let call = admit_call(&[(c.clone(), 5)]);
        let cmd = call.eval(&scripts.admit).encode();
        let text = String::from_utf8_lossy(&cmd);
        assert!(text.starts_with("*7\r\n$4\r\nEVAL\r\n"), "{text}");
        assert!(text.contains("p:l:0000000000000001:1:0"));
        assert!(
            text.ends_with("$1\r\n5\r\n$2\r\n10\r\n$2\r\n61\r\n"),
            "{text}"
        );
        // The usual form names the script by SHA-1 and carries the same keys and arguments.
        let sha = call.evalsha(&scripts.admit).encode();
        let sha_text = String::from_utf8_lossy(&sha);
        let head = format!("*7\r\n$7\r\nEVALSHA\r\n$40\r\n{}\r\n", scripts.admit.sha1());
        assert!(sha_text.starts_with(&head), "{sha_text}");
        assert!(sha_text.ends_with("$1\r\n5\r\n$2\r\n10\r\n$2\r\n61\r\n"));
        assert!(sha.len() < cmd.len() / 2);

        let with_db = Scripts::new(3);
        assert!(with_db
            .admit
            .body()
            .starts_with("redis.call('SELECT', 3)\n"));
        assert_ne!(with_db.admit.sha1(), scripts.admit.sha1());
        assert_ne!(scripts.settle.sha1(), scripts.admit.sha1());
        assert!(settle_call(&[(c.clone(), 0)]).is_none());
        let s = settle_call(&[(c, -4)])
            .unwrap()
            .evalsha(&scripts.settle)
            .encode();
        assert!(String::from_utf8_lossy(&s).contains("$2\r\n-4\r\n"));
    }

    #[test]
    fn admission_replies() {
        let (v, _) = decode(b"*3\r\n:1\r\n:5\r\n:7\r\n").unwrap();
        assert_eq!(parse_admit(&v, 2), Ok((true, vec![5, 7])));
        let (v, _) = decode(b"*2\r\n:0\r\n:99\r\n").unwrap();
        assert_eq!(parse_admit(&v, 1), Ok((false, vec![99])));
        assert!(parse_admit(&v, 2).is_err());
        assert!(parse_admit(&Value::Integer(1), 0).is_err());
    }

    #[test]
    fn deltas() {
        let a = Counter::new("p", "l", 1, 60, 10, 0);
        let b = Counter::new("p", "l", 1, 60, 10, 60_000);
        assert_eq!(settle_delta(&a, &a, 50, 20), -30);
        assert_eq!(settle_delta(&a, &a, 20, 50), 30);
        assert_eq!(settle_delta(&a, &b, 20, 50), 30);
        assert_eq!(settle_delta(&a, &b, 50, 20), 0);
    }
}
