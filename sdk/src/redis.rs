//! Redis calls through Higress's host functions (feature `higress`).
//!
//! Higress adds `proxy_redis_init`, `proxy_redis_call` and the callback
//! `proxy_on_redis_call_response`; the reply (RESP) is read from buffer 9 during the callback.
//! A module built with this feature imports those functions and therefore loads only on
//! Higress; on a gateway without them, loading fails and in the native build every call
//! returns `HostError::Unimplemented`.
//!
//! Three ways to be told the reply:
//!
//! * [`Ctx::redis_call`]: a closure bound to the stream, run with its plugin and context. It is
//!   dropped when the stream finishes first (the client went away, or the call outlived
//!   `on_done`).
//! * [`Ctx::redis_call_or`]: the same, plus a fallback closure that gets the reply instead when
//!   the stream finished first, so work the call did in Redis (a reservation, a lock) can be
//!   undone. It captures what it needs by value; it runs with the root context as the
//!   effective context, where [`RedisClient::call_detached`] works.
//! * [`RedisClient::call_detached`]: a closure bound to no stream (calls from the root context,
//!   from fallbacks, or fire-and-forget work at the end of a stream whose reply still matters).
//!
//! A host delivers a reply to the root context that made the call even when the stream is
//! gone (Envoy does so for call-outs; proxy-wasm-go-sdk documents it), which is what the
//! fallback relies on.
//!
//! ```no_run
//! # use aigw::prelude::*;
//! # use aigw::redis::RedisClient;
//! # use aigw::resp::Command;
//! # #[derive(Default)] struct P;
//! # #[derive(serde::Deserialize)] struct C; impl PlainConfig for C {}
//! # impl Plugin for P { const NAME: &'static str = "p"; type Config = C; type Root = ();
//! fn on_request_headers(&mut self, ctx: &mut Ctx<Self>, _eos: bool) -> Flow {
//!     let client = RedisClient::new("outbound|6379||redis.svc", std::time::Duration::from_secs(1));
//!     let sent = ctx.redis_call(&client, &Command::incr_by("count", 1), |_plugin, ctx, reply| {
//!         if let Ok(n) = reply { aigw::info!("count is {:?}", n.as_i64()); }
//!         let _ = ctx.resume_request();
//!     });
//!     if sent.is_ok() { Flow::Pause } else { Flow::Continue }
//! }
//! # }
//! ```

use crate::host::{self, ffi, BufferType, HostError};
use crate::plugin::{Ctx, Plugin};
use crate::resp::{self, Command, RespError, Value};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// Why a Redis call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisError {
    /// The host refused the call (for example an unknown cluster).
    Host(HostError),
    /// The host reported a failed call (non-zero callback status, e.g. a timeout).
    Status(u32),
    /// The reply was not valid RESP.
    Protocol(RespError),
    /// Redis answered with an error reply (`-ERR ...`).
    Server(String),
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Host(e) => write!(f, "redis call refused: {e}"),
            RedisError::Status(s) => write!(f, "redis call failed with status {s}"),
            RedisError::Protocol(e) => write!(f, "redis reply: {e}"),
            RedisError::Server(m) => write!(f, "redis error: {m}"),
        }
    }
}

impl std::error::Error for RedisError {}

impl RedisError {
    /// Whether Redis does not know the script an `EVALSHA` named (answer: send `EVAL`).
    pub fn is_noscript(&self) -> bool {
        matches!(self, RedisError::Server(m) if crate::resp::Script::is_noscript(m))
    }
}

/// The result handed to a Redis callback.
pub type RedisResult = Result<Value, RedisError>;

pub(crate) type StreamRedisCallback<P> = Box<dyn FnOnce(&mut P, &mut Ctx<P>, RedisResult)>;

/// A Redis cluster to call, as known to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisClient {
    cluster: String,
    timeout: Duration,
}

impl RedisClient {
    /// A client for `cluster` (e.g. `outbound|6379||redis.default.svc.cluster.local`) without
    /// initialising the connection; call [`RedisClient::init`] once, typically from
    /// `Plugin::on_configure`.
    pub fn new(cluster: &str, timeout: Duration) -> RedisClient {
        RedisClient {
            cluster: cluster.to_string(),
            timeout,
        }
    }

    /// Initialises the host's connection pool for this cluster with optional credentials.
    pub fn init(&self, username: Option<&str>, password: Option<&str>) -> Result<(), HostError> {
        let user = username.unwrap_or("");
        let pass = password.unwrap_or("");
        let ms = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: all slices are live for the call.
        HostError::check(unsafe {
            ffi::proxy_redis_init(
                self.cluster.as_ptr(),
                self.cluster.len(),
                user.as_ptr(),
                user.len(),
                pass.as_ptr(),
                pass.len(),
                ms,
            )
        })
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Sends a command whose reply is bound to no stream: `callback` runs with the reply
    /// (root context effective) whenever it arrives. For root-side work, fallbacks of
    /// [`Ctx::redis_call_or`], and calls sent at the end of a stream whose outcome still
    /// matters (retries, error counting).
    pub fn call_detached<F>(&self, command: &Command, callback: F) -> Result<(), HostError>
    where
        F: FnOnce(RedisResult) + 'static,
    {
        let token = self.call(command)?;
        remember(token, Waiter::Detached(Box::new(callback)));
        Ok(())
    }

    fn call(&self, command: &Command) -> Result<u32, HostError> {
        let query = command.encode();
        let mut token = 0u32;
        // SAFETY: slices live; out-pointer valid.
        HostError::check(unsafe {
            ffi::proxy_redis_call(
                self.cluster.as_ptr(),
                self.cluster.len(),
                query.as_ptr(),
                query.len(),
                &mut token,
            )
        })?;
        Ok(token)
    }
}

impl<P: Plugin> Ctx<P> {
    /// Sends a Redis command; `callback` runs with this stream's plugin and context when the
    /// reply arrives. Error replies (`-ERR`) arrive as `Err(RedisError::Server)`. When the
    /// stream finished before the reply (see [`Ctx::redis_call_or`]), the callback is dropped.
    pub fn redis_call<F>(
        &mut self,
        client: &RedisClient,
        command: &Command,
        callback: F,
    ) -> Result<(), HostError>
    where
        F: FnOnce(&mut P, &mut Ctx<P>, RedisResult) + 'static,
    {
        let token = client.call(command)?;
        remember(
            token,
            Waiter::Stream {
                context_id: self.context_id(),
                orphan: None,
            },
        );
        self.redis_callouts.push((token, Box::new(callback)));
        Ok(())
    }

    /// Like [`Ctx::redis_call`], with a fallback: when the reply arrives after this stream
    /// finished (client gone, stream reset, `on_done` ran), `on_orphan` gets it instead of
    /// `callback` being dropped. Use it to undo what the command did in Redis (release a
    /// reservation); it runs with the root context effective, so it can send further
    /// commands with [`RedisClient::call_detached`]. Exactly one of the two closures runs
    /// when a reply (or failure) arrives.
    pub fn redis_call_or<F, G>(
        &mut self,
        client: &RedisClient,
        command: &Command,
        callback: F,
        on_orphan: G,
    ) -> Result<(), HostError>
    where
        F: FnOnce(&mut P, &mut Ctx<P>, RedisResult) + 'static,
        G: FnOnce(RedisResult) + 'static,
    {
        let token = client.call(command)?;
        remember(
            token,
            Waiter::Stream {
                context_id: self.context_id(),
                orphan: Some(Box::new(on_orphan)),
            },
        );
        self.redis_callouts.push((token, Box::new(callback)));
        Ok(())
    }

    fn take_redis(&mut self, token: u32) -> Option<StreamRedisCallback<P>> {
        let at = self.redis_callouts.iter().position(|(t, _)| *t == token)?;
        Some(self.redis_callouts.swap_remove(at).1)
    }
}

/// Delivers a reply to a stream; gives it back when the stream finished or is gone.
type Router = fn(u32, u32, RedisResult) -> Option<RedisResult>;

/// A closure that gets a reply with no stream (detached calls and fallbacks).
type Orphan = Box<dyn FnOnce(RedisResult)>;

/// Who waits for a Redis reply.
enum Waiter {
    /// A stream's call (its closure is kept on the stream), with an optional fallback for
    /// when the stream finished first.
    Stream {
        context_id: u32,
        orphan: Option<Orphan>,
    },
    /// A call bound to no stream.
    Detached(Orphan),
}

fn remember(token: u32, waiter: Waiter) {
    PENDING.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.insert(token, waiter);
        }
    });
}

thread_local! {
    /// Redis token -> who waits for the reply.
    static PENDING: RefCell<HashMap<u32, Waiter>> = RefCell::new(HashMap::new());
    /// Stream context id -> the stream state (`RefCell<StreamInner<P>>`), weakly.
    static STREAMS: RefCell<HashMap<u32, Weak<dyn Any>>> = RefCell::new(HashMap::new());
    /// Delivers a reply to a stream of the module's plugin type.
    static ROUTER: Cell<Option<Router>> = const { Cell::new(None) };
}

pub(crate) fn register_stream<P: Plugin>(
    id: u32,
    inner: &Rc<RefCell<crate::plugin::stream::StreamInner<P>>>,
) {
    let any: Rc<dyn Any> = inner.clone();
    STREAMS.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.insert(id, Rc::downgrade(&any));
        }
    });
    ROUTER.with(|r| r.set(Some(route::<P>)));
}

pub(crate) fn unregister_stream(id: u32) {
    STREAMS.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.remove(&id);
        }
    });
}

/// The stream state behind `context_id`, if it still exists and has not finished.
fn live_stream<P: Plugin>(
    context_id: u32,
) -> Option<Rc<RefCell<crate::plugin::stream::StreamInner<P>>>> {
    let weak = STREAMS.with(|s| {
        s.try_borrow()
            .ok()
            .and_then(|s| s.get(&context_id).cloned())
    })?;
    let cell = weak
        .upgrade()?
        .downcast::<RefCell<crate::plugin::stream::StreamInner<P>>>()
        .ok()?;
    let live = cell.try_borrow().is_ok_and(|inner| !inner.finished);
    live.then_some(cell)
}

fn route<P: Plugin>(context_id: u32, token: u32, result: RedisResult) -> Option<RedisResult> {
    let Some(cell) = live_stream::<P>(context_id) else {
        return Some(result);
    };
    let Ok(mut inner) = cell.try_borrow_mut() else {
        return Some(result);
    };
    let Some(active) = inner.active.as_mut() else {
        return Some(result);
    };
    let Some(callback) = active.ctx.take_redis(token) else {
        return Some(result);
    };
    callback(&mut active.plugin, &mut active.ctx, result);
    None
}

/// Decodes a reply buffer into a result.
fn reply_result(status: u32, reply: Result<Vec<u8>, HostError>) -> RedisResult {
    if status != 0 {
        return Err(RedisError::Status(status));
    }
    let bytes = reply.map_err(RedisError::Host)?;
    match resp::decode(&bytes).map_err(RedisError::Protocol)? {
        (Value::Error(message), _) => Err(RedisError::Server(message)),
        (value, _) => Ok(value),
    }
}

fn read_reply(status: u32, response_size: u32) -> RedisResult {
    let reply = host::get_buffer(BufferType::RedisCallResponse, 0, response_size as usize);
    reply_result(status, reply)
}

/// Higress callback: a Redis reply for `token` is ready in buffer 9. It goes to the stream
/// that made the call while that stream lives; otherwise to the call's fallback (or detached
/// closure), with the root context effective.
#[no_mangle]
pub extern "C" fn proxy_on_redis_call_response(
    root_context_id: u32,
    token: u32,
    status: u32,
    response_size: u32,
) {
    let Some(waiter) = PENDING.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.remove(&token)))
    else {
        return;
    };
    let (undelivered, orphan) = match waiter {
        Waiter::Detached(callback) => (None, callback),
        Waiter::Stream { context_id, orphan } => {
            let mut undelivered = None;
            if host::set_effective_context(context_id).is_ok() {
                let result = read_reply(status, response_size);
                undelivered = match ROUTER.with(Cell::get) {
                    Some(router) => router(context_id, token, result),
                    None => Some(result),
                };
                if undelivered.is_none() {
                    return;
                }
            }
            let Some(orphan) = orphan else { return };
            (undelivered, orphan)
        }
    };
    // The stream (if any) is gone: run the closure on the root context. If switching fails
    // the host's own effective context (the one it called us on) stays.
    let _ = host::set_effective_context(root_context_id);
    let result = undelivered.unwrap_or_else(|| read_reply(status, response_size));
    orphan(result);
}

/// ABI marker for Higress's extended ABI (Redis and friends).
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_100() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_mapping() {
        assert_eq!(
            reply_result(0, Ok(b":3\r\n".to_vec())),
            Ok(Value::Integer(3))
        );
        assert_eq!(
            reply_result(0, Ok(b"-ERR x\r\n".to_vec())),
            Err(RedisError::Server("ERR x".into()))
        );
        assert_eq!(
            reply_result(0, Ok(b":".to_vec())),
            Err(RedisError::Protocol(RespError::Incomplete))
        );
        assert_eq!(reply_result(1, Ok(vec![])), Err(RedisError::Status(1)));
        assert_eq!(
            reply_result(0, Err(HostError::NotFound)),
            Err(RedisError::Host(HostError::NotFound))
        );
    }

    #[test]
    fn noscript_is_recognised() {
        assert!(RedisError::Server("NOSCRIPT No matching script.".into()).is_noscript());
        assert!(!RedisError::Server("ERR other".into()).is_noscript());
        assert!(!RedisError::Status(1).is_noscript());
    }

    #[test]
    fn native_build_refuses_calls() {
        let c = RedisClient::new("redis", Duration::from_secs(1));
        assert_eq!(c.init(None, None), Err(HostError::Unimplemented));
        assert_eq!(c.call(&Command::get("k")), Err(HostError::Unimplemented));
        assert_eq!(
            c.call_detached(&Command::get("k"), |_| {}),
            Err(HostError::Unimplemented)
        );
        assert!(PENDING.with(|p| p.borrow().is_empty()));
    }
}
