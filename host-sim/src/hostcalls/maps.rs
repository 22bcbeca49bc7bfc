//! Buffers and header maps: `proxy_get/set_buffer_*` and `proxy_*_header_map_*`, inside
//! Envoy's access windows.

use super::*;

/// Adds the buffer and header-map functions to the linker.
pub(super) fn add(l: &mut Linker<VmCtx>) -> Result<()> {
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
    // Replace and add take the same arguments and differ only in what they do to the map.
    type Set = fn(&mut Headers, &str, &[u8]);
    let setters: [(&str, Set); 2] = [
        ("proxy_replace_header_map_value", hmap::replace),
        ("proxy_add_header_map_value", hmap::add),
    ];
    for (name, set) in setters {
        l.func_wrap(
            "env",
            name,
            move |mut c: C, t: i32, kp: i32, kn: i32, vp: i32, vn: i32| -> i32 {
                let (Ok(key), Ok(val)) = (read_str(&c, kp, kn), read(&c, vp, vn)) else {
                    return status::INVALID_MEMORY_ACCESS;
                };
                st(with_map(c.data_mut(), t, true, |h| set(h, &key, &val)))
            },
        )?;
    }
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
    Ok(())
}
