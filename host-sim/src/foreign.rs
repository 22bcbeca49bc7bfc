//! Envoy's foreign functions (`proxy_call_foreign_function`) that plugins commonly use.

use crate::abi::status;
use crate::vm::VmCtx;

/// Calls a foreign function by name. Unknown names give NOT_FOUND, as in Envoy.
pub fn call(ctx: &mut VmCtx, name: &str, arg: &[u8]) -> Result<Vec<u8>, i32> {
    match name {
        "clear_route_cache" => {
            let link = ctx.stream_link().ok_or(status::BAD_ARGUMENT)?;
            link.data
                .lock()
                .map_err(|_| status::INTERNAL_FAILURE)?
                .route_cache_cleared = true;
            Ok(Vec::new())
        }
        // The argument is a serialized protobuf; the simulator keeps it as filter state so a
        // test can see that it was set.
        "set_envoy_filter_state" => {
            let link = ctx.stream_link().ok_or(status::BAD_ARGUMENT)?;
            link.data
                .lock()
                .map_err(|_| status::INTERNAL_FAILURE)?
                .filter_state
                .insert("envoy_filter_state".into(), arg.to_vec());
            Ok(Vec::new())
        }
        "declare_property" => Ok(Vec::new()),
        _ => Err(status::NOT_FOUND),
    }
}
