//! The `env.proxy_*` imports: the whole proxy-wasm 0.2.x ABI plus Higress's extensions, with
//! Envoy's semantics (header windows, buffer shapes, deferred actions, CAS, metric rules).

mod calls;
mod maps;
mod shared;
mod stream;

use crate::abi::{
    buffer, deserialize_pairs, map, metric_type, split_path, status, Headers, LogLevel,
};
use crate::memory::{read, read_str, return_bytes, st, write_u32, write_u64, C};
use crate::properties;
use crate::shared::MetricKind;
use crate::stream_data::{hmap, Dir};
use crate::vm::{CtxKind, Deferred, GrpcCallRecord, HttpCallRecord, RedisCallRecord, VmCtx};
use anyhow::Result;
use wasmtime::Linker;

/// Which header map a map type names, relative to a stream.
enum MapRef {
    Headers(Dir),
    Trailers(Dir),
    CallHeaders,
    CallTrailers,
}

fn map_ref(t: i32) -> Option<MapRef> {
    Some(match t {
        map::REQUEST_HEADERS => MapRef::Headers(Dir::Request),
        map::REQUEST_TRAILERS => MapRef::Trailers(Dir::Request),
        map::RESPONSE_HEADERS => MapRef::Headers(Dir::Response),
        map::RESPONSE_TRAILERS => MapRef::Trailers(Dir::Response),
        map::HTTP_CALL_RESPONSE_HEADERS | map::GRPC_INITIAL_METADATA => MapRef::CallHeaders,
        map::HTTP_CALL_RESPONSE_TRAILERS | map::GRPC_TRAILING_METADATA => MapRef::CallTrailers,
        _ => return None,
    })
}

/// Runs `f` on the header map `t` of the effective context, enforcing Envoy's access windows:
/// request headers only inside `on_request_headers` or while paused there (likewise response
/// headers and trailers); read-only copies in `on_log`. Outside a window: BAD_ARGUMENT.
fn with_map<R>(
    ctx: &mut VmCtx,
    t: i32,
    write: bool,
    f: impl FnOnce(&mut Headers) -> R,
) -> Result<R, i32> {
    let r = map_ref(t).ok_or(status::BAD_ARGUMENT)?;
    match r {
        MapRef::CallHeaders | MapRef::CallTrailers => {
            if write {
                return Err(status::BAD_ARGUMENT);
            }
            let resp = ctx.call_response.as_mut().ok_or(status::BAD_ARGUMENT)?;
            Ok(match r {
                MapRef::CallHeaders => f(&mut resp.headers),
                _ => f(&mut resp.trailers),
            })
        }
        MapRef::Headers(d) | MapRef::Trailers(d) => {
            let link = ctx.stream_link().ok_or(status::BAD_ARGUMENT)?.clone();
            let mut data = link.data.lock().map_err(|_| status::INTERNAL_FAILURE)?;
            let trailers = matches!(r, MapRef::Trailers(_));
            let open = if data.in_log {
                !write
            } else {
                let slot = data
                    .filters
                    .get_mut(link.filter)
                    .ok_or(status::INTERNAL_FAILURE)?;
                let ds = slot.dir(d);
                if trailers {
                    ds.trailer_window
                } else {
                    ds.header_window
                }
            };
            if !open {
                return Err(status::BAD_ARGUMENT);
            }
            Ok(if trailers {
                f(data.trailers(d))
            } else {
                f(data.headers(d))
            })
        }
    }
}

/// Runs `f` on the body buffer `t` of the effective context. Request/response bodies are
/// available inside the body callback and while the filter holds buffered data; otherwise
/// NOT_FOUND.
fn with_buffer<R>(ctx: &mut VmCtx, t: i32, f: impl FnOnce(&mut Vec<u8>) -> R) -> Result<R, i32> {
    match t {
        buffer::HTTP_REQUEST_BODY | buffer::HTTP_RESPONSE_BODY => {
            let d = if t == buffer::HTTP_REQUEST_BODY {
                Dir::Request
            } else {
                Dir::Response
            };
            let link = ctx.stream_link().ok_or(status::NOT_FOUND)?.clone();
            let mut data = link.data.lock().map_err(|_| status::INTERNAL_FAILURE)?;
            let slot = data
                .filters
                .get_mut(link.filter)
                .ok_or(status::INTERNAL_FAILURE)?;
            let ds = slot.dir(d);
            if ds.in_body_callback || ds.buffering || (ds.headers_paused && !ds.body.is_empty()) {
                Ok(f(&mut ds.body))
            } else {
                Err(status::NOT_FOUND)
            }
        }
        buffer::HTTP_CALL_RESPONSE_BODY
        | buffer::GRPC_RECEIVE_BUFFER
        | buffer::REDIS_CALL_RESPONSE => ctx
            .call_response
            .as_mut()
            .map(|r| f(&mut r.body))
            .ok_or(status::NOT_FOUND),
        buffer::VM_CONFIGURATION | buffer::PLUGIN_CONFIGURATION => {
            let root = ctx.root_of_effective().ok_or(status::NOT_FOUND)?;
            match ctx.contexts.get_mut(&root) {
                Some(CtxKind::Root(info)) => Ok(if t == buffer::VM_CONFIGURATION {
                    f(&mut info.vm_config)
                } else {
                    f(&mut info.plugin_config)
                }),
                _ => Err(status::NOT_FOUND),
            }
        }
        _ => Err(status::NOT_FOUND),
    }
}

fn defer_stream(ctx: &mut VmCtx, make: impl FnOnce(u32) -> Deferred) -> i32 {
    match ctx.contexts.get(&ctx.effective) {
        Some(CtxKind::Stream(_)) => {
            let d = make(ctx.effective);
            ctx.deferred.push(d);
            status::OK
        }
        _ => status::BAD_ARGUMENT,
    }
}

fn pairs_to_strings(p: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(String, String)> {
    p.into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

/// Runs `f` on the state the VMs share; `Err(INTERNAL_FAILURE)` when its lock is poisoned.
fn on_host<R>(ctx: &VmCtx, f: impl FnOnce(&mut crate::shared::HostShared) -> R) -> Result<R, i32> {
    let mut h = ctx.host.lock().map_err(|_| status::INTERNAL_FAILURE)?;
    Ok(f(&mut h))
}

/// [`on_host`] for a hostcall whose answer is the status `f` returns.
fn host_status(ctx: &VmCtx, f: impl FnOnce(&mut crate::shared::HostShared) -> i32) -> i32 {
    on_host(ctx, f).unwrap_or_else(|s| s)
}

/// Writes the id a hostcall produced to `ret` (the status of that write), or returns the status
/// that kept it from producing one.
fn answer_u32(c: &mut C, ret: i32, id: Result<u32, i32>) -> i32 {
    match id {
        Ok(id) => st(write_u32(c, ret, id)),
        Err(s) => s,
    }
}

/// The root context that owns a new outgoing call and the call's token, or `None` (no token
/// drawn) when the effective context is unknown.
fn new_call(ctx: &mut VmCtx) -> Option<(u32, u32)> {
    let root = ctx.root_of_effective()?;
    ctx.next_token += 1;
    Some((root, ctx.next_token))
}

/// Adds every `env.proxy_*` function to the linker.
pub fn add_to_linker(l: &mut Linker<VmCtx>) -> Result<()> {
    maps::add(l)?;
    shared::add(l)?;
    stream::add(l)?;
    calls::add(l)?;
    l.func_wrap(
        "env",
        "proxy_log",
        |c: C, level: i32, p: i32, n: i32| -> i32 {
            match read_str(&c, p, n) {
                Ok(m) => {
                    c.data().log(LogLevel::from_i32(level), m);
                    status::OK
                }
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: C, ret: i32| -> i32 {
        let lvl = c.data().log_level.as_i32() as u32;
        st(write_u32(&mut c, ret, lvl))
    })?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C, ret: i32| -> i32 {
            let now = c.data().host.lock().map(|h| h.clock.now_ns()).unwrap_or(0);
            st(write_u64(&mut c, ret, now))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C, period: i32| -> i32 {
            let now = c.data().host.lock().map(|h| h.clock.mono_ns()).unwrap_or(0);
            let ctx = c.data_mut();
            let Some(root) = ctx.root_of_effective() else {
                return status::BAD_ARGUMENT;
            };
            if let Some(CtxKind::Root(info)) = ctx.contexts.get_mut(&root) {
                info.tick_ms = period as u32;
                info.next_tick_ns = now + (period as u32 as u64) * 1_000_000;
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C, pp: i32, pn: i32, ptr_ptr: i32, size_ptr: i32| -> i32 {
            let path = match read(&c, pp, pn) {
                Ok(p) => split_path(&p),
                Err(s) => return s,
            };
            // Higress: `plugin_vm_memory` is the VM's linear memory size in bytes (u64 LE).
            // Its Go SDK reads it on every request to decide when to ask for a VM rebuild.
            if path.len() == 1 && path[0] == "plugin_vm_memory" {
                let size = c.data().memory.map(|m| m.data_size(&c)).unwrap_or(0) as u64;
                return return_bytes(&mut c, &size.to_le_bytes(), ptr_ptr, size_ptr);
            }
            match properties::get(c.data(), &path) {
                Ok(v) => return_bytes(&mut c, &v, ptr_ptr, size_ptr),
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C, pp: i32, pn: i32, vp: i32, vn: i32| -> i32 {
            let (Ok(path), Ok(val)) = (read(&c, pp, pn), read(&c, vp, vn)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            properties::set(c.data_mut(), &split_path(&path), val)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: C, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| -> i32 {
            let (code, msg) = c.data().last_status.clone();
            if let Err(s) = write_u32(&mut c, code_ptr, code) {
                return s;
            }
            return_bytes(&mut c, msg.as_bytes(), ptr_ptr, size_ptr)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C, id: i32| -> i32 {
            let d = c.data_mut();
            if d.contexts.contains_key(&(id as u32)) {
                d.effective = id as u32;
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    l.func_wrap("env", "proxy_done", |mut c: C| -> i32 {
        let d = c.data_mut();
        match d.contexts.get(&d.effective) {
            Some(CtxKind::Root(_)) => {
                let ctx = d.effective;
                d.deferred.push(Deferred::Done { ctx });
                status::OK
            }
            _ => status::NOT_FOUND,
        }
    })?;
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: C, np: i32, nn: i32, ap: i32, an: i32, ptr_ptr: i32, size_ptr: i32| -> i32 {
            let (Ok(name), Ok(arg)) = (read_str(&c, np, nn), read(&c, ap, an)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            match crate::foreign::call(c.data_mut(), &name, &arg) {
                Ok(out) => return_bytes(&mut c, &out, ptr_ptr, size_ptr),
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_configuration",
        |mut c: C, ptr_ptr: i32, size_ptr: i32| -> i32 {
            match with_buffer(c.data_mut(), buffer::PLUGIN_CONFIGURATION, |b| b.clone()) {
                Ok(b) => return_bytes(&mut c, &b, ptr_ptr, size_ptr),
                Err(s) => s,
            }
        },
    )?;
    Ok(())
}
