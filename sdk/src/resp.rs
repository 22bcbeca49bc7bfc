//! RESP2, the Redis wire protocol: command encoding and reply decoding (pure, no host calls).
//!
//! ```
//! use aigw::resp::{decode, Command, Value};
//!
//! let cmd = Command::new("INCRBY").arg("quota:alice").arg(5);
//! assert_eq!(cmd.encode(), b"*3\r\n$6\r\nINCRBY\r\n$11\r\nquota:alice\r\n$1\r\n5\r\n");
//! assert_eq!(decode(b":12\r\n"), Ok((Value::Integer(12), 5)));
//! ```

use std::fmt;

/// Nesting limit for arrays in a reply (guards the decoder's recursion).
pub const MAX_DEPTH: usize = 16;

/// A decoded RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR message`
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$n` bulk string; `None` for the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n` array; `None` for the null array `*-1`.
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The value as an integer: integers, and bulk/simple strings holding one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
            Value::Simple(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as bytes: bulk and simple strings.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// Whether this is a null bulk string or null array.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Bulk(None) | Value::Array(None))
    }
}

/// Why a reply could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// The input ends before the reply does.
    Incomplete,
    /// The input is not RESP2.
    Invalid(&'static str),
    /// Arrays nest deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::Incomplete => f.write_str("incomplete RESP reply"),
            RespError::Invalid(why) => write!(f, "invalid RESP reply: {why}"),
            RespError::TooDeep => f.write_str("RESP reply nested too deeply"),
        }
    }
}

impl std::error::Error for RespError {}

/// A Redis command: name and arguments, encoded as an array of bulk strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    args: Vec<Vec<u8>>,
}

/// Something usable as a command argument.
pub trait Arg {
    /// The argument's bytes.
    fn to_arg(&self) -> Vec<u8>;
}

impl Arg for &str {
    fn to_arg(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl Arg for String {
    fn to_arg(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl Arg for &[u8] {
    fn to_arg(&self) -> Vec<u8> {
        self.to_vec()
    }
}
impl Arg for i64 {
    fn to_arg(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}
impl Arg for u64 {
    fn to_arg(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}
impl Arg for i32 {
    fn to_arg(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl Command {
    /// A command with no arguments yet.
    pub fn new(name: &str) -> Command {
        Command {
            args: vec![name.as_bytes().to_vec()],
        }
    }

    /// Appends an argument.
    pub fn arg(mut self, a: impl Arg) -> Command {
        self.args.push(a.to_arg());
        self
    }

    /// `GET key`
    pub fn get(key: &str) -> Command {
        Command::new("GET").arg(key)
    }

    /// `SET key value`, with `EX seconds` when `ttl_secs` is given.
    pub fn set(key: &str, value: &[u8], ttl_secs: Option<u64>) -> Command {
        let c = Command::new("SET").arg(key).arg(value);
        match ttl_secs {
            Some(t) => c.arg("EX").arg(t),
            None => c,
        }
    }

    /// `INCRBY key delta`
    pub fn incr_by(key: &str, delta: i64) -> Command {
        Command::new("INCRBY").arg(key).arg(delta)
    }

    /// `EXPIRE key seconds`
    pub fn expire(key: &str, secs: u64) -> Command {
        Command::new("EXPIRE").arg(key).arg(secs)
    }

    /// `EVAL script numkeys key... arg...`
    pub fn eval(script: &str, keys: &[&str], args: &[&str]) -> Command {
        Command::script_call("EVAL", script, keys, args)
    }

    /// `EVALSHA sha1 numkeys key... arg...` (a script Redis already knows; see [`Script`]).
    pub fn evalsha(sha1_hex: &str, keys: &[&str], args: &[&str]) -> Command {
        Command::script_call("EVALSHA", sha1_hex, keys, args)
    }

    /// `name script numkeys key... arg...` (EVAL and EVALSHA).
    fn script_call(name: &str, script: &str, keys: &[&str], args: &[&str]) -> Command {
        let mut c = Command::new(name).arg(script).arg(keys.len() as u64);
        for k in keys.iter().chain(args) {
            c = c.arg(*k);
        }
        c
    }

    /// The RESP2 encoding (`*n` array of `$len` bulk strings).
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(16 + self.args.iter().map(|a| a.len() + 16).sum::<usize>());
        out.extend_from_slice(format!("*{}\r\n", self.args.len()).as_bytes());
        for a in &self.args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// A Lua script with its SHA-1 (Redis's name for it), to run with `EVALSHA` and fall back to
/// `EVAL` when Redis answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`); `EVAL` also
/// caches the script, so the next `EVALSHA` finds it again.
///
/// ```
/// use aigw::resp::Script;
///
/// let s = Script::new("return 1");
/// assert_eq!(s.sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
/// let fast = s.evalsha(&["k"], &["5"]).encode();
/// assert!(fast.starts_with(b"*5\r\n$7\r\nEVALSHA\r\n$40\r\ne0e1f9fa"));
/// assert!(Script::is_noscript("NOSCRIPT No matching script. Please use EVAL."));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    body: String,
    sha1: String,
}

impl Script {
    /// A script and its SHA-1, computed once here.
    pub fn new(body: impl Into<String>) -> Script {
        let body = body.into();
        let sha1 = crate::hash::hex(&crate::hash::sha1(body.as_bytes()));
        Script { body, sha1 }
    }

    /// The script text.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The lowercase hex SHA-1 Redis knows the script by.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }

    /// `EVALSHA` of this script: the usual, short form.
    pub fn evalsha(&self, keys: &[&str], args: &[&str]) -> Command {
        Command::evalsha(&self.sha1, keys, args)
    }

    /// `EVAL` of this script: the fallback after `NOSCRIPT` (it also loads the script).
    pub fn eval(&self, keys: &[&str], args: &[&str]) -> Command {
        Command::eval(&self.body, keys, args)
    }

    /// Whether an error reply's message means Redis does not know the script (`NOSCRIPT ...`).
    pub fn is_noscript(message: &str) -> bool {
        message.starts_with("NOSCRIPT")
    }
}

/// Decodes one reply from the start of `input`; returns it and the bytes consumed.
pub fn decode(input: &[u8]) -> Result<(Value, usize), RespError> {
    decode_at(input, 0, 0)
}

fn line(input: &[u8], at: usize) -> Result<(&[u8], usize), RespError> {
    let rest = input.get(at..).ok_or(RespError::Incomplete)?;
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(RespError::Incomplete)?;
    Ok((rest.get(..end).unwrap_or_default(), at + end + 2))
}

fn int(bytes: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::Invalid("bad integer"))
}

fn decode_at(input: &[u8], at: usize, depth: usize) -> Result<(Value, usize), RespError> {
    let kind = *input.get(at).ok_or(RespError::Incomplete)?;
    let (head, next) = line(input, at + 1)?;
    match kind {
        b'+' => Ok((
            Value::Simple(String::from_utf8_lossy(head).into_owned()),
            next,
        )),
        b'-' => Ok((
            Value::Error(String::from_utf8_lossy(head).into_owned()),
            next,
        )),
        b':' => Ok((Value::Integer(int(head)?), next)),
        b'$' => {
            let len = int(head)?;
            if len < 0 {
                return Ok((Value::Bulk(None), next));
            }
            let len = usize::try_from(len).map_err(|_| RespError::Invalid("bulk length"))?;
            let end = next
                .checked_add(len)
                .ok_or(RespError::Invalid("bulk length"))?;
            let data = input.get(next..end).ok_or(RespError::Incomplete)?;
            match input.get(end..end + 2) {
                Some(b"\r\n") => Ok((Value::Bulk(Some(data.to_vec())), end + 2)),
                Some(_) => Err(RespError::Invalid("bulk string not terminated by CRLF")),
                None => Err(RespError::Incomplete),
            }
        }
        b'*' => {
            let n = int(head)?;
            if n < 0 {
                return Ok((Value::Array(None), next));
            }
            if depth >= MAX_DEPTH {
                return Err(RespError::TooDeep);
            }
            let n = usize::try_from(n).map_err(|_| RespError::Invalid("array length"))?;
            // Every element takes at least 3 bytes: do not pre-allocate beyond the input.
            let mut items = Vec::with_capacity(n.min(input.len() / 3));
            let mut pos = next;
            for _ in 0..n {
                let (v, p) = decode_at(input, pos, depth + 1)?;
                items.push(v);
                pos = p;
            }
            Ok((Value::Array(Some(items)), pos))
        }
        _ => Err(RespError::Invalid("unknown type byte")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_commands() {
        assert_eq!(
            Command::get("k").encode(),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            Command::set("k", b"v\r\n", Some(10)).encode(),
            b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\nEX\r\n$2\r\n10\r\n"
        );
        assert_eq!(
            Command::expire("k", 5).encode(),
            b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$1\r\n5\r\n"
        );
        let eval = Command::eval("return 1", &["a"], &["x", "y"]).encode();
        assert!(eval.starts_with(b"*6\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$1\r\na\r\n"));
        assert_eq!(
            Command::incr_by("k", -3).encode(),
            b"*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$2\r\n-3\r\n"
        );
    }

    #[test]
    fn scripts_are_named_by_their_sha1() {
        let s = Script::new("return redis.call('GET', KEYS[1])");
        // `redis-cli SCRIPT LOAD "return redis.call('GET', KEYS[1])"` answers this id.
        assert_eq!(s.sha1(), "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f");
        assert_eq!(
            s.evalsha(&["k"], &["1"]).encode(),
            format!(
                "*5\r\n$7\r\nEVALSHA\r\n$40\r\n{}\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n1\r\n",
                s.sha1()
            )
            .into_bytes()
        );
        assert_eq!(s.eval(&["k"], &[]), Command::eval(s.body(), &["k"], &[]));
        assert!(Script::is_noscript("NOSCRIPT No matching script."));
        assert!(!Script::is_noscript("ERR unknown command"));
    }

    #[test]
    fn decode_all_types() {
        assert_eq!(decode(b"+OK\r\n"), Ok((Value::Simple("OK".into()), 5)));
        assert_eq!(
            decode(b"-ERR no\r\n"),
            Ok((Value::Error("ERR no".into()), 9))
        );
        assert_eq!(decode(b":-7\r\n"), Ok((Value::Integer(-7), 5)));
        assert_eq!(
            decode(b"$3\r\na\r\n\r\n"),
            Ok((Value::Bulk(Some(b"a\r\n".to_vec())), 9))
        );
        assert_eq!(decode(b"$0\r\n\r\n"), Ok((Value::Bulk(Some(vec![])), 6)));
        assert_eq!(decode(b"$-1\r\n"), Ok((Value::Bulk(None), 5)));
        assert_eq!(decode(b"*-1\r\n"), Ok((Value::Array(None), 5)));
        let (v, n) = decode(b"*2\r\n:1\r\n*1\r\n$1\r\nx\r\nEXTRA").unwrap();
        assert_eq!(n, 19);
        assert_eq!(
            v,
            Value::Array(Some(vec![
                Value::Integer(1),
                Value::Array(Some(vec![Value::Bulk(Some(b"x".to_vec()))]))
            ]))
        );
        assert_eq!(Value::Bulk(Some(b"12".to_vec())).as_i64(), Some(12));
        assert!(Value::Bulk(None).is_nil());
    }

    #[test]
    fn decode_errors() {
        assert_eq!(decode(b""), Err(RespError::Incomplete));
        assert_eq!(decode(b"+OK"), Err(RespError::Incomplete));
        assert_eq!(decode(b"$5\r\nab\r\n"), Err(RespError::Incomplete));
        assert_eq!(
            decode(b"$2\r\nabXY"),
            Err(RespError::Invalid("bulk string not terminated by CRLF"))
        );
        assert_eq!(decode(b":x\r\n"), Err(RespError::Invalid("bad integer")));
        assert_eq!(
            decode(b"?\r\n"),
            Err(RespError::Invalid("unknown type byte"))
        );
        assert_eq!(decode(b"*99999999999\r\n"), Err(RespError::Incomplete));
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        assert_eq!(decode(deep.as_bytes()), Err(RespError::TooDeep));
        let ok = "*1\r\n".repeat(MAX_DEPTH) + ":1\r\n";
        assert!(decode(ok.as_bytes()).is_ok());
    }
}
