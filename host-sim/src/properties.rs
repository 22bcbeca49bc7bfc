//! `proxy_get_property` / `proxy_set_property` with Envoy's attribute names and encodings:
//! strings raw, integers 8-byte little-endian, booleans one byte, times in ns, maps as pairs.

use crate::abi::{serialize_pairs, status};
use crate::stream_data::{hmap, StreamData, METADATA_PROPERTIES};
use crate::vm::{CtxKind, VmCtx};

fn int(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn hdr(d: &StreamData, k: &str) -> Option<Vec<u8>> {
    hmap::get(&d.req_headers, k).map(|v| v.to_vec())
}

fn split_port(addr: &str) -> (String, i64) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// A value inside a metadata property, encoded as Envoy encodes CEL values: strings raw,
/// numbers as 8-byte little-endian doubles (protobuf `Struct` numbers are doubles), booleans
/// one byte; a map or list is given as its JSON text (Envoy gives serialized protobuf there).
fn metadata(root: Option<&serde_json::Value>, path: &[&str]) -> Result<Vec<u8>, i32> {
    let mut v = root.ok_or(status::NOT_FOUND)?;
    for seg in path {
        v = match v {
            serde_json::Value::Object(m) => m.get(*seg).ok_or(status::NOT_FOUND)?,
            serde_json::Value::Array(a) => seg
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .ok_or(status::NOT_FOUND)?,
            _ => return Err(status::NOT_FOUND),
        };
    }
    Ok(match v {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(0.0).to_le_bytes().to_vec(),
        serde_json::Value::Bool(b) => vec![*b as u8],
        serde_json::Value::Null => return Err(status::NOT_FOUND),
        other => other.to_string().into_bytes(),
    })
}

/// Reads a property for the effective context.
pub fn get(ctx: &VmCtx, path: &[String]) -> Result<Vec<u8>, i32> {
    let p: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
    // Plugin-level attributes, available everywhere.
    let root = ctx.root_of_effective();
    match p.as_slice() {
        ["plugin_name"] => return Ok(ctx.plugin_name.as_bytes().to_vec()),
        ["plugin_root_id"] => {
            let id = match root.and_then(|r| ctx.contexts.get(&r)) {
                Some(CtxKind::Root(info)) => info.root_id.clone(),
                _ => String::new(),
            };
            return Ok(id.into_bytes());
        }
        ["plugin_vm_id"] => return Ok(ctx.vm_id.as_bytes().to_vec()),
        _ => {}
    }
    let joined = path.join(".");
    let Some(link) = ctx.stream_link() else {
        return ctx
            .root_props
            .get(&joined)
            .cloned()
            .ok_or(status::NOT_FOUND);
    };
    let d = link.data.lock().map_err(|_| status::INTERNAL_FAILURE)?;
    if let Some(v) = d.filter_state.get(&joined) {
        return Ok(v.clone());
    }
    if let Some(v) = d.props.extra.get(&joined) {
        return Ok(v.clone());
    }
    let path_hdr = hdr(&d, ":path").unwrap_or_default();
    let path_str = String::from_utf8_lossy(&path_hdr).into_owned();
    let v = match p.as_slice() {
        ["request", "path"] => path_hdr,
        ["request", "url_path"] => path_str.split('?').next().unwrap_or("").as_bytes().to_vec(),
        ["request", "query"] => path_str
            .split_once('?')
            .map(|(_, q)| q.as_bytes().to_vec())
            .unwrap_or_default(),
        ["request", "host"] => hdr(&d, ":authority").ok_or(status::NOT_FOUND)?,
        ["request", "scheme"] => hdr(&d, ":scheme").unwrap_or_else(|| b"http".to_vec()),
        ["request", "method"] => hdr(&d, ":method").ok_or(status::NOT_FOUND)?,
        ["request", "referer"] => hdr(&d, "referer").ok_or(status::NOT_FOUND)?,
        ["request", "useragent"] => hdr(&d, "user-agent").ok_or(status::NOT_FOUND)?,
        ["request", "id"] => hdr(&d, "x-request-id")
            .or_else(|| {
                (!d.props.request_id.is_empty()).then(|| d.props.request_id.clone().into_bytes())
            })
            .ok_or(status::NOT_FOUND)?,
        ["request", "protocol"] => d.props.protocol.as_bytes().to_vec(),
        ["request", "time"] => int(d.start_ns as i64),
        ["request", "size"] | ["request", "total_size"] => int(d.req_body_size as i64),
        ["request", "headers"] => serialize_pairs(&d.req_headers),
        ["request", "headers", name] => hdr(&d, name).ok_or(status::NOT_FOUND)?,
        ["response", "code"] => int(d.response_code.ok_or(status::NOT_FOUND)? as i64),
        ["response", "code_details"] => d.code_details.as_bytes().to_vec(),
        ["response", "flags"] => int(0),
        ["response", "headers"] => serialize_pairs(&d.resp_headers),
        ["response", "headers", name] => hmap::get(&d.resp_headers, name)
            .map(|v| v.to_vec())
            .ok_or(status::NOT_FOUND)?,
        ["response", "trailers"] => serialize_pairs(&d.resp_trailers),
        ["response", "size"] | ["response", "total_size"] => int(d.resp_body_size as i64),
        ["source", "address"] => d.props.source_address.as_bytes().to_vec(),
        ["source", "port"] => int(split_port(&d.props.source_address).1),
        ["destination", "address"] => d.props.destination_address.as_bytes().to_vec(),
        ["destination", "port"] => int(split_port(&d.props.destination_address).1),
        ["connection", "id"] => int(d.props.connection_id as i64),
        ["connection", "mtls"] => vec![0],
        ["upstream", "address"] | ["upstream", "port"] if d.props.upstream_address.is_empty() => {
            return Err(status::NOT_FOUND)
        }
        ["upstream", "address"] => d.props.upstream_address.as_bytes().to_vec(),
        ["upstream", "port"] => int(split_port(&d.props.upstream_address).1),
        [kind, rest @ ..] if METADATA_PROPERTIES.contains(kind) => {
            metadata(d.props.metadata.get(*kind), rest)?
        }
        ["xds", "route_name"] | ["route_name"] => d.props.route_name.as_bytes().to_vec(),
        ["xds", "cluster_name"] | ["cluster_name"] => d.props.cluster_name.as_bytes().to_vec(),
        _ => return Err(status::NOT_FOUND),
    };
    Ok(v)
}

/// Stores a property: on a stream it becomes filter state that every filter of the chain can
/// read back with `get_property`; on a root context it is kept per VM.
pub fn set(ctx: &mut VmCtx, path: &[String], value: Vec<u8>) -> i32 {
    let key = path.join(".");
    if key.is_empty() {
        return status::BAD_ARGUMENT;
    }
    match ctx.stream_link() {
        Some(link) => match link.data.lock() {
            Ok(mut d) => {
                d.filter_state.insert(key, value);
                status::OK
            }
            Err(_) => status::INTERNAL_FAILURE,
        },
        None => {
            ctx.root_props.insert(key, value);
            status::OK
        }
    }
}
