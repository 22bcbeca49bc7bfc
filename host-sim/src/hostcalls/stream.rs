//! Stream control: continue, close, local responses, route cache and Higress's upstream
//! override host.

use super::*;
use crate::abi::stream_type;

/// Adds the stream-control functions to the linker.
pub(super) fn add(l: &mut Linker<VmCtx>) -> Result<()> {
    l.func_wrap("env", "proxy_continue_stream", |mut c: C, t: i32| -> i32 {
        match t {
            stream_type::REQUEST | stream_type::RESPONSE => {
                defer_stream(c.data_mut(), |ctx| Deferred::Continue {
                    ctx,
                    response: t == stream_type::RESPONSE,
                })
            }
            _ => status::BAD_ARGUMENT,
        }
    })?;
    l.func_wrap("env", "proxy_close_stream", |mut c: C, t: i32| -> i32 {
        match t {
            stream_type::REQUEST | stream_type::RESPONSE => {
                defer_stream(c.data_mut(), |ctx| Deferred::Close { ctx })
            }
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
    Ok(())
}
