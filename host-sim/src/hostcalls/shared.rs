//! Shared data (with CAS), shared queues and metrics.

use super::*;

/// Adds the shared-data, queue and metric functions to the linker.
pub(super) fn add(l: &mut Linker<VmCtx>) -> Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C, kp: i32, kn: i32, ptr_ptr: i32, size_ptr: i32, cas_ptr: i32| -> i32 {
            let Ok(key) = read_str(&c, kp, kn) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let r = {
                let d = c.data();
                on_host(d, |h| h.get_shared(&d.vm_id, &key)).and_then(|r| r)
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
            host_status(d, |h| h.set_shared(&d.vm_id, &key, &val, cas as u32))
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
                on_host(d, |h| h.register_queue(&d.vm_id, &name, (d.key, root)))
            };
            answer_u32(&mut c, ret, id)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: C, vp: i32, vn: i32, np: i32, nn: i32, ret: i32| -> i32 {
            let (Ok(vm_id), Ok(name)) = (read_str(&c, vp, vn), read_str(&c, np, nn)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            let id = on_host(c.data(), |h| h.resolve_queue(&vm_id, &name)).and_then(|r| r);
            answer_u32(&mut c, ret, id)
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
            host_status(c.data(), |h| h.enqueue(id as u32, &v))
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
            let id = on_host(c.data(), |h| h.define_metric(kind, &name));
            answer_u32(&mut c, ret, id)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: C, id: i32, off: i64| -> i32 {
            host_status(c.data(), |h| h.increment_metric(id as u32, off))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |c: C, id: i32, v: i64| -> i32 {
            host_status(c.data(), |h| h.record_metric(id as u32, v as u64))
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
    Ok(())
}
