//! Envoy's own WASI subset: stdout/stderr become logs, clocks and random work, environment
//! variables come from the VM configuration, and the file system is absent. Like Envoy
//! (proxy-wasm-cpp-host registers every WASI function twice), the same functions are offered
//! under `wasi_snapshot_preview1` and the older `wasi_unstable` module name.

use crate::abi::LogLevel;
use crate::memory::{read, write, write_u32, write_u64, C};
use crate::vm::VmCtx;
use anyhow::Result;
use wasmtime::Linker;

/// The module names Envoy registers its WASI functions under.
pub const WASI_MODULES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable"];
const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const FAULT: i32 = 21;
const INVAL: i32 = 28;
const NOENT: i32 = 44;
const NOSYS: i32 = 52;

fn errno(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => SUCCESS,
        Err(_) => FAULT,
    }
}

/// Adds the WASI functions Envoy provides, under both module names.
pub fn add_to_linker(l: &mut Linker<VmCtx>) -> Result<()> {
    for m in WASI_MODULES {
        add_module(l, m)?;
    }
    Ok(())
}

/// Adds the WASI functions under one module name.
fn add_module(l: &mut Linker<VmCtx>, m: &str) -> Result<()> {
    l.func_wrap(
        m,
        "fd_write",
        |mut c: C, fd: i32, iovs: i32, n: i32, written: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return BADF;
            }
            let mut out = Vec::new();
            for i in 0..n.max(0) {
                let Ok(iov) = read(&c, iovs + i * 8, 8) else {
                    return FAULT;
                };
                let p = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let Ok(b) = read(&c, p, len) else {
                    return FAULT;
                };
                out.extend_from_slice(&b);
            }
            let total = out.len() as u32;
            let mut msg = String::from_utf8_lossy(&out).into_owned();
            if msg.ends_with('\n') {
                msg.pop();
            }
            let level = if fd == 1 {
                LogLevel::Info
            } else {
                LogLevel::Error
            };
            c.data().log(level, msg);
            errno(write_u32(&mut c, written, total))
        },
    )?;
    l.func_wrap(
        m,
        "fd_read",
        |_c: C, _fd: i32, _i: i32, _n: i32, _r: i32| -> i32 { NOSYS },
    )?;
    l.func_wrap(
        m,
        "fd_seek",
        |_c: C, _fd: i32, _o: i64, _w: i32, _r: i32| -> i32 { NOSYS },
    )?;
    l.func_wrap(m, "fd_close", |_c: C, _fd: i32| -> i32 { NOSYS })?;
    l.func_wrap(m, "fd_fdstat_get", |mut c: C, fd: i32, ret: i32| -> i32 {
        if fd != 1 && fd != 2 {
            return BADF;
        }
        // filetype CHARACTER_DEVICE (2), flags APPEND, rights: fd_write only.
        let mut stat = [0u8; 24];
        stat[0] = 2;
        stat[2] = 1;
        stat[8..16].copy_from_slice(&(1u64 << 6).to_le_bytes());
        errno(write(&mut c, ret, &stat))
    })?;
    l.func_wrap(
        m,
        "fd_fdstat_set_flags",
        |_c: C, _fd: i32, _f: i32| -> i32 { NOSYS },
    )?;
    l.func_wrap(m, "fd_prestat_get", |_c: C, _fd: i32, _r: i32| -> i32 {
        BADF
    })?;
    l.func_wrap(
        m,
        "fd_prestat_dir_name",
        |_c: C, _fd: i32, _p: i32, _n: i32| -> i32 { NOSYS },
    )?;
    l.func_wrap(m, "fd_filestat_get", |_c: C, _fd: i32, _r: i32| -> i32 {
        BADF
    })?;
    l.func_wrap(
        m,
        "fd_readdir",
        |_c: C, _fd: i32, _b: i32, _l: i32, _k: i64, _r: i32| -> i32 { BADF },
    )?;
    l.func_wrap(
        m,
        "path_open",
        |_c: C,
         _fd: i32,
         _df: i32,
         _p: i32,
         _pl: i32,
         _of: i32,
         _rb: i64,
         _ri: i64,
         _ff: i32,
         _r: i32|
         -> i32 { NOENT },
    )?;
    l.func_wrap(
        m,
        "path_filestat_get",
        |_c: C, _fd: i32, _f: i32, _p: i32, _l: i32, _r: i32| -> i32 { NOENT },
    )?;
    l.func_wrap(
        m,
        "environ_sizes_get",
        |mut c: C, count: i32, size: i32| -> i32 {
            let env = c.data().env.clone();
            let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            errno(
                write_u32(&mut c, count, env.len() as u32)
                    .and_then(|_| write_u32(&mut c, size, bytes as u32)),
            )
        },
    )?;
    l.func_wrap(m, "environ_get", |mut c: C, ptrs: i32, buf: i32| -> i32 {
        let env = c.data().env.clone();
        let mut off = buf;
        for (i, (k, v)) in env.iter().enumerate() {
            let s = format!("{k}={v}\0");
            if write_u32(&mut c, ptrs + 4 * i as i32, off as u32).is_err()
                || write(&mut c, off, s.as_bytes()).is_err()
            {
                return FAULT;
            }
            off += s.len() as i32;
        }
        SUCCESS
    })?;
    l.func_wrap(
        m,
        "args_sizes_get",
        |mut c: C, count: i32, size: i32| -> i32 {
            errno(write_u32(&mut c, count, 0).and_then(|_| write_u32(&mut c, size, 0)))
        },
    )?;
    l.func_wrap(m, "args_get", |_c: C, _a: i32, _b: i32| -> i32 { SUCCESS })?;
    l.func_wrap(
        m,
        "clock_time_get",
        |mut c: C, id: i32, _precision: i64, ret: i32| -> i32 {
            let now = match c.data().host.lock() {
                Ok(h) => match id {
                    0 => h.clock.now_ns(),
                    1 => h.clock.mono_ns(),
                    _ => return INVAL,
                },
                Err(_) => return FAULT,
            };
            errno(write_u64(&mut c, ret, now))
        },
    )?;
    l.func_wrap(m, "clock_res_get", |mut c: C, _id: i32, ret: i32| -> i32 {
        errno(write_u64(&mut c, ret, 1))
    })?;
    l.func_wrap(m, "random_get", |mut c: C, p: i32, n: i32| -> i32 {
        if !(0..=65536).contains(&n) {
            return INVAL;
        }
        let mut bytes = vec![0u8; n as usize];
        fill_random(&mut bytes);
        errno(write(&mut c, p, &bytes))
    })?;
    l.func_wrap(m, "sched_yield", |_c: C| -> i32 { SUCCESS })?;
    l.func_wrap(
        m,
        "poll_oneoff",
        |mut c: C, _in: i32, _out: i32, _n: i32, nevents: i32| -> i32 {
            errno(write_u32(&mut c, nevents, 0))
        },
    )?;
    l.func_wrap(m, "proc_exit", |c: C, code: i32| {
        c.data()
            .log(LogLevel::Info, format!("wasi proc_exit({code})"));
    })?;
    Ok(())
}

/// Fills `buf` with pseudo-random bytes (xorshift seeded from the clock and an address).
fn fill_random(buf: &mut [u8]) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e3779b97f4a7c15)
        ^ (buf.as_ptr() as u64).rotate_left(32);
    let mut x = seed | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}
