//! Imports the simulator does not implement still link: each becomes a function that returns
//! UNIMPLEMENTED (proxy-wasm) or ENOSYS (WASI) and logs once, so a real plugin never fails to
//! load because of a missing import.

use crate::abi::{status, LogLevel};
use crate::vm::VmCtx;
use anyhow::Result;
use wasmtime::{ExternType, Linker, Module, Val, ValType};

/// Defines every function import of `module` that the linker lacks.
pub fn add_missing(l: &mut Linker<VmCtx>, module: &Module) -> Result<()> {
    for imp in module.imports() {
        let ExternType::Func(ty) = imp.ty() else {
            continue;
        };
        let (m, n) = (imp.module().to_string(), imp.name().to_string());
        let code = if crate::wasi::WASI_MODULES.contains(&m.as_str()) {
            52
        } else {
            status::UNIMPLEMENTED
        };
        let label = format!("{m}.{n}");
        // Defining an import that already exists fails (no shadowing): that is how the
        // implemented ones are left alone.
        let _ = l.func_new(&m, &n, ty.clone(), move |c, _params, results| {
            c.data().log(
                LogLevel::Warn,
                format!("unimplemented import called: {label}"),
            );
            for (i, r) in results.iter_mut().enumerate() {
                *r = match ty.results().nth(i) {
                    Some(ValType::I64) => Val::I64(if i == 0 { code as i64 } else { 0 }),
                    Some(ValType::F32) => Val::F32(0),
                    Some(ValType::F64) => Val::F64(0),
                    _ => Val::I32(if i == 0 { code } else { 0 }),
                };
            }
            Ok(())
        });
    }
    Ok(())
}
