//! The `env.proxy_*` imports: the whole proxy-wasm 0.2.x ABI plus Higress's extensions, with
//! Envoy's semantics (header windows, buffer shapes, deferred actions, CAS, metric rules).

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

fn next_token(ctx: &mut VmCtx) -> u32 {
    ctx.next_token += 1;
    ctx.next_token
}

/// Adds every `env.proxy_*` function to the linker.
pub fn add_to_linker(l: &mut Linker<VmCtx>) -> Result<()> {
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
        "proxy_get_buffer_bytes",
        |mut c: C, t: i32, start: i32, max: i32, ptr_ptr: i32, size_ptr: i32| -> i32 {
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            let r = with_buffer(c.data_mut(), t, |b| {
                if start > b.len() {
                    None
                } else {
                    let end = start.saturating_add(max).min(b.len());
                    Some(b[start..end].to_vec())
                }
            });
            match r {
                Ok(Some(bytes)) => return_bytes(&mut c, &bytes, ptr_ptr, size_ptr),
                Ok(None) => status::BAD_ARGUMENT,
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: C, t: i32, len_ptr: i32, flags_ptr: i32| -> i32 {
            match with_buffer(c.data_mut(), t, |b| b.len()) {
                Ok(n) => st(write_u32(&mut c, len_ptr, n as u32)
                    .and_then(|_| write_u32(&mut c, flags_ptr, 0))),
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: C, t: i32, start: i32, size: i32, p: i32, n: i32| -> i32 {
            let data = match read(&c, p, n) {
                Ok(d) => d,
                Err(s) => return s,
            };
            if !matches!(t, buffer::HTTP_REQUEST_BODY | buffer::HTTP_RESPONSE_BODY) {
                return status::BAD_ARGUMENT;
            }
            let (start, size) = (start as u32 as usize, size as u32 as usize);
            match with_buffer(c.data_mut(), t, |b| {
                if start == 0 && size == 0 {
                    b.splice(0..0, data);
                    status::OK
                } else if start == 0 && size >= b.len() {
                    *b = data;
                    status::OK
                } else if start >= b.len() {
                    b.extend_from_slice(&data);
                    status::OK
                } else {
                    status::BAD_ARGUMENT
                }
            }) {
                Ok(s) => s,
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C, t: i32, ptr_ptr: i32, size_ptr: i32| -> i32 {
            let r = with_map(c.data_mut(), t, false, |h| crate::abi::serialize_pairs(h));
            let bytes = match r {
                Ok(b) => b,
                // Outside the window Envoy answers with an empty map.
                Err(status::BAD_ARGUMENT) if map_ref(t).is_some() => {
                    crate::abi::serialize_pairs::<&str, &str>(&[])
                }
                Err(s) => return s,
            };
            return_bytes(&mut c, &bytes, ptr_ptr, size_ptr)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: C, t: i32, size_ptr: i32| -> i32 {
            match with_map(c.data_mut(), t, false, |h| {
                crate::abi::serialize_pairs(h).len()
            }) {
                Ok(n) => st(write_u32(&mut c, size_ptr, n as u32)),
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C, t: i32, p: i32, n: i32| -> i32 {
            let Some(pairs) = read(&c, p, n).ok().and_then(|b| deserialize_pairs(&b)) else {
                return status::BAD_ARGUMENT;
            };
            match with_map(c.data_mut(), t, true, |h| {
                h.clear();
                for (k, v) in pairs {
                    hmap::add(h, &String::from_utf8_lossy(&k), &v);
                }
            }) {
                Ok(()) => status::OK,
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C, t: i32, kp: i32, kn: i32, ptr_ptr: i32, size_ptr: i32| -> i32 {
            let key = match read_str(&c, kp, kn) {
                Ok(k) => k,
                Err(s) => return s,
            };
            match with_map(c.data_mut(), t, false, |h| {
                hmap::get(h, &key).map(|v| v.to_vec())
            }) {
                Ok(Some(v)) => return_bytes(&mut c, &v, ptr_ptr, size_ptr),
                Ok(None) => status::NOT_FOUND,
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: C, t: i32, kp: i32, kn: i32, vp: i32, vn: i32| -> i32 {
            let (Ok(key), Ok(val)) = (read_str(&c, kp, kn), read(&c, vp, vn)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            st(with_map(c.data_mut(), t, true, |h| {
                hmap::replace(h, &key, &val)
            }))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: C, t: i32, kp: i32, kn: i32, vp: i32, vn: i32| -> i32 {
            let (Ok(key), Ok(val)) = (read_str(&c, kp, kn), read(&c, vp, vn)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            st(with_map(c.data_mut(), t, true, |h| {
                hmap::add(h, &key, &val)
            }))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C, t: i32, kp: i32, kn: i32| -> i32 {
            let Ok(key) = read_str(&c, kp, kn) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            st(with_map(c.data_mut(), t, true, |h| hmap::remove(h, &key)))
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
        "proxy_get_shared_data",
        |mut c: C, kp: i32, kn: i32, ptr_ptr: i32, size_ptr: i32, cas_ptr: i32| -> i32 {
            let Ok(key) = read_str(&c, kp, kn) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let r = {
                let d = c.data();
                match d.host.lock() {
                    Ok(h) => h.get_shared(&d.vm_id, &key),
                    Err(_) => Err(status::INTERNAL_FAILURE),
                }
            };
            match r {
                Ok((v, cas)) => {
                    let s = return_bytes(&mut c, &v, ptr_ptr, size_ptr);
                    if s != status::OK {
                        return s;
                    }
                    st(write_u32(&mut c, cas_ptr, cas))
                }
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_shared_data",
        |c: C, kp: i32, kn: i32, vp: i32, vn: i32, cas: i32| -> i32 {
            let (Ok(key), Ok(val)) = (read_str(&c, kp, kn), read(&c, vp, vn)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let d = c.data();
            match d.host.lock() {
                Ok(mut h) => h.set_shared(&d.vm_id, &key, &val, cas as u32),
                Err(_) => status::INTERNAL_FAILURE,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: C, np: i32, nn: i32, ret: i32| -> i32 {
            let Ok(name) = read_str(&c, np, nn) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let id = {
                let d = c.data();
                let Some(root) = d.root_of_effective() else {
                    return status::BAD_ARGUMENT;
                };
                match d.host.lock() {
                    Ok(mut h) => h.register_queue(&d.vm_id, &name, (d.key, root)),
                    Err(_) => return status::INTERNAL_FAILURE,
                }
            };
            st(write_u32(&mut c, ret, id))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: C, vp: i32, vn: i32, np: i32, nn: i32, ret: i32| -> i32 {
            let (Ok(vm_id), Ok(name)) = (read_str(&c, vp, vn), read_str(&c, np, nn)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let r = c
                .data()
                .host
                .lock()
                .map_err(|_| status::INTERNAL_FAILURE)
                .and_then(|h| h.resolve_queue(&vm_id, &name));
            match r {
                Ok(id) => st(write_u32(&mut c, ret, id)),
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: C, id: i32, ptr_ptr: i32, size_ptr: i32| -> i32 {
            let r = c
                .data()
                .host
                .lock()
                .map_err(|_| status::INTERNAL_FAILURE)
                .and_then(|mut h| h.dequeue(id as u32));
            match r {
                Ok(v) => return_bytes(&mut c, &v, ptr_ptr, size_ptr),
                Err(s) => s,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |c: C, id: i32, vp: i32, vn: i32| -> i32 {
            let Ok(v) = read(&c, vp, vn) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            match c.data().host.lock() {
                Ok(mut h) => h.enqueue(id as u32, &v),
                Err(_) => status::INTERNAL_FAILURE,
            }
        },
    )?;
    l.func_wrap("env", "proxy_continue_stream", |mut c: C, t: i32| -> i32 {
        match t {
            0 | 1 => defer_stream(c.data_mut(), |ctx| Deferred::Continue {
                ctx,
                response: t == 1,
            }),
            _ => status::BAD_ARGUMENT,
        }
    })?;
    l.func_wrap("env", "proxy_close_stream", |mut c: C, t: i32| -> i32 {
        match t {
            0 | 1 => defer_stream(c.data_mut(), |ctx| Deferred::Close { ctx }),
            _ => status::BAD_ARGUMENT,
        }
    })?;
    l.func_wrap("env", "proxy_continue_request", |mut c: C| -> i32 {
        defer_stream(c.data_mut(), |ctx| Deferred::Continue {
            ctx,
            response: false,
        })
    })?;
    l.func_wrap("env", "proxy_continue_response", |mut c: C| -> i32 {
        defer_stream(c.data_mut(), |ctx| Deferred::Continue {
            ctx,
            response: true,
        })
    })?;
    l.func_wrap("env", "proxy_clear_route_cache", |c: C| -> i32 {
        match c.data().stream_link() {
            Some(link) => {
                if let Ok(mut d) = link.data.lock() {
                    d.route_cache_cleared = true;
                }
                status::OK
            }
            None => status::BAD_ARGUMENT,
        }
    })?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C,
         code: i32,
         dp: i32,
         dn: i32,
         bp: i32,
         bn: i32,
         hp: i32,
         hn: i32,
         grpc: i32|
         -> i32 {
            let (Ok(details), Ok(body), Ok(hbytes)) =
                (read_str(&c, dp, dn), read(&c, bp, bn), read(&c, hp, hn))
            else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let Some(pairs) = deserialize_pairs(&hbytes) else {
                return status::BAD_ARGUMENT;
            };
            let headers: Headers = pairs
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).to_ascii_lowercase(), v))
                .collect();
            defer_stream(c.data_mut(), |ctx| Deferred::LocalReply {
                ctx,
                status: code as u16,
                details,
                body,
                headers,
                grpc_status: grpc,
            })
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C,
         up: i32,
         un: i32,
         hp: i32,
         hn: i32,
         bp: i32,
         bn: i32,
         tp: i32,
         tn: i32,
         timeout: i32,
         token_ptr: i32|
         -> i32 {
            let (Ok(cluster), Ok(hbytes), Ok(body), Ok(_tbytes)) = (
                read_str(&c, up, un),
                read(&c, hp, hn),
                read(&c, bp, bn),
                read(&c, tp, tn),
            ) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let Some(pairs) = deserialize_pairs(&hbytes) else {
                return status::BAD_ARGUMENT;
            };
            let headers = pairs_to_strings(pairs);
            let has = |k: &str| headers.iter().any(|(h, v)| h == k && !v.is_empty());
            if !has(":method") || !has(":path") || !has(":authority") {
                return status::BAD_ARGUMENT;
            }
            if timeout < 0 {
                return status::BAD_ARGUMENT;
            }
            if !c.data().clusters.contains(&cluster) {
                c.data().log(
                    LogLevel::Warn,
                    format!("host-sim: http call to unknown cluster '{cluster}' (BAD_ARGUMENT)"),
                );
                return status::BAD_ARGUMENT;
            }
            let d = c.data_mut();
            let Some(root) = d.root_of_effective() else {
                return status::BAD_ARGUMENT;
            };
            let token = next_token(d);
            d.http_calls.push((
                root,
                HttpCallRecord {
                    token,
                    cluster,
                    headers,
                    body,
                    timeout_ms: timeout as u32,
                },
            ));
            st(write_u32(&mut c, token_ptr, token))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: C,
         sp: i32,
         sn: i32,
         np: i32,
         nn: i32,
         mp: i32,
         mn: i32,
         ip: i32,
         inn: i32,
         gp: i32,
         gn: i32,
         timeout: i32,
         token_ptr: i32|
         -> i32 {
            let (Ok(service), Ok(service_name), Ok(method), Ok(md), Ok(message)) = (
                read(&c, sp, sn),
                read_str(&c, np, nn),
                read_str(&c, mp, mn),
                read(&c, ip, inn),
                read(&c, gp, gn),
            ) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let svc = String::from_utf8_lossy(&service).into_owned();
            if !c.data().clusters.contains(&svc) {
                c.data().log(
                    LogLevel::Warn,
                    format!("host-sim: grpc call to unknown cluster '{svc}' (PARSE_FAILURE)"),
                );
                return status::PARSE_FAILURE;
            }
            let Some(md) = deserialize_pairs(&md) else {
                return status::BAD_ARGUMENT;
            };
            let d = c.data_mut();
            let Some(root) = d.root_of_effective() else {
                return status::BAD_ARGUMENT;
            };
            let token = next_token(d);
            d.grpc_calls.push((
                root,
                GrpcCallRecord {
                    token,
                    service,
                    service_name,
                    method,
                    message,
                    initial_metadata: pairs_to_strings(md),
                    timeout_ms: timeout as u32,
                },
            ));
            st(write_u32(&mut c, token_ptr, token))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_c: C,
         _a: i32,
         _b: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _i: i32,
         _j: i32|
         -> i32 {
            // Streaming gRPC is not simulated; Envoy's other statuses would be misleading.
            status::UNIMPLEMENTED
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_send",
        |_c: C, _t: i32, _p: i32, _n: i32, _e: i32| -> i32 { status::UNIMPLEMENTED },
    )?;
    l.func_wrap("env", "proxy_grpc_cancel", |mut c: C, token: i32| -> i32 {
        cancel_grpc(c.data_mut(), token as u32)
    })?;
    l.func_wrap("env", "proxy_grpc_close", |mut c: C, token: i32| -> i32 {
        cancel_grpc(c.data_mut(), token as u32)
    })?;
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
        "proxy_define_metric",
        |mut c: C, t: i32, np: i32, nn: i32, ret: i32| -> i32 {
            let Ok(name) = read_str(&c, np, nn) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let kind = match t {
                metric_type::COUNTER => MetricKind::Counter,
                metric_type::GAUGE => MetricKind::Gauge,
                metric_type::HISTOGRAM => MetricKind::Histogram,
                _ => return status::BAD_ARGUMENT,
            };
            let id = match c.data().host.lock() {
                Ok(mut h) => h.define_metric(kind, &name),
                Err(_) => return status::INTERNAL_FAILURE,
            };
            st(write_u32(&mut c, ret, id))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: C, id: i32, off: i64| -> i32 {
            match c.data().host.lock() {
                Ok(mut h) => h.increment_metric(id as u32, off),
                Err(_) => status::INTERNAL_FAILURE,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |c: C, id: i32, v: i64| -> i32 {
            match c.data().host.lock() {
                Ok(mut h) => h.record_metric(id as u32, v as u64),
                Err(_) => status::INTERNAL_FAILURE,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C, id: i32, ret: i32| -> i32 {
            let r = c
                .data()
                .host
                .lock()
                .map_err(|_| status::INTERNAL_FAILURE)
                .and_then(|h| h.get_metric(id as u32));
            match r {
                Ok(v) => st(write_u64(&mut c, ret, v)),
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
    // Higress: the upstream host of this request, bypassing the cluster's load balancer.
    l.func_wrap(
        "env",
        "proxy_set_upstream_override_host",
        |c: C, ap: i32, an: i32| -> i32 {
            let Ok(address) = read_str(&c, ap, an) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            match c.data().stream_link() {
                Some(link) => match link.data.lock() {
                    Ok(mut d) => {
                        d.upstream_override_host = Some(address);
                        status::OK
                    }
                    Err(_) => status::INTERNAL_FAILURE,
                },
                None => status::BAD_ARGUMENT,
            }
        },
    )?;
    // Higress: Redis.
    l.func_wrap(
        "env",
        "proxy_redis_init",
        |c: C, cp: i32, cn: i32, up: i32, un: i32, pp: i32, pn: i32, timeout: i32| -> i32 {
            let (Ok(cluster), Ok(_user), Ok(_pass)) =
                (read_str(&c, cp, cn), read(&c, up, un), read(&c, pp, pn))
            else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let mut c = c;
            let d = c.data_mut();
            if !d.redis_clusters.contains(&cluster) {
                return status::BAD_ARGUMENT;
            }
            d.redis_inited.insert(cluster, timeout as u32);
            status::OK
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_redis_call",
        |mut c: C, cp: i32, cn: i32, qp: i32, qn: i32, token_ptr: i32| -> i32 {
            let (Ok(cluster), Ok(query)) = (read_str(&c, cp, cn), read(&c, qp, qn)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let d = c.data_mut();
            if !d.redis_inited.contains_key(&cluster) {
                return status::BAD_ARGUMENT;
            }
            let Some(root) = d.root_of_effective() else {
                return status::BAD_ARGUMENT;
            };
            let token = next_token(d);
            d.redis_calls.push((
                root,
                RedisCallRecord {
                    token,
                    cluster,
                    query,
                },
            ));
            st(write_u32(&mut c, token_ptr, token))
        },
    )?;
    Ok(())
}

fn cancel_grpc(ctx: &mut VmCtx, token: u32) -> i32 {
    // Only calls made in this callback are still here; the simulator removes delivered ones.
    let before = ctx.grpc_calls.len();
    ctx.grpc_calls.retain(|(_, r)| r.token != token);
    if ctx.grpc_calls.len() < before {
        return status::OK;
    }
    ctx.deferred.push(Deferred::CancelGrpc { token });
    status::OK
}
