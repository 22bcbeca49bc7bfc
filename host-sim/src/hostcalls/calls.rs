//! Call-outs: HTTP calls, unary gRPC calls (streams answer UNIMPLEMENTED) and Higress's
//! Redis calls.

use super::*;

/// Adds the call-out functions to the linker.
pub(super) fn add(l: &mut Linker<VmCtx>) -> Result<()> {
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
            let Some((root, token)) = new_call(d) else {
                return status::BAD_ARGUMENT;
            };
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
            let Some((root, token)) = new_call(d) else {
                return status::BAD_ARGUMENT;
            };
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
            let Some((root, token)) = new_call(d) else {
                return status::BAD_ARGUMENT;
            };
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
