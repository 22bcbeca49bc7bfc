//! Reading and writing the module's linear memory from hostcalls, and handing buffers to the
//! module through its own allocator (as Envoy does).

use crate::abi::status;
use crate::vm::VmCtx;
use wasmtime::Caller;

/// The caller type every hostcall gets.
pub type C<'a> = Caller<'a, VmCtx>;

/// Copies `len` bytes at `ptr` out of the module's memory.
pub fn read(c: &C, ptr: i32, len: i32) -> Result<Vec<u8>, i32> {
    let mem = c.data().memory.ok_or(status::INVALID_MEMORY_ACCESS)?;
    let (p, l) = (ptr as u32 as usize, len as u32 as usize);
    mem.data(c)
        .get(p..p.checked_add(l).ok_or(status::INVALID_MEMORY_ACCESS)?)
        .map(|s| s.to_vec())
        .ok_or(status::INVALID_MEMORY_ACCESS)
}

/// Reads a UTF-8 string (invalid bytes are replaced).
pub fn read_str(c: &C, ptr: i32, len: i32) -> Result<String, i32> {
    Ok(String::from_utf8_lossy(&read(c, ptr, len)?).into_owned())
}

/// Writes bytes at `ptr`.
pub fn write(c: &mut C, ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let mem = c.data().memory.ok_or(status::INVALID_MEMORY_ACCESS)?;
    let p = ptr as u32 as usize;
    let end = p
        .checked_add(bytes.len())
        .ok_or(status::INVALID_MEMORY_ACCESS)?;
    let data = mem.data_mut(c);
    data.get_mut(p..end)
        .ok_or(status::INVALID_MEMORY_ACCESS)?
        .copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian u32 at `ptr`.
pub fn write_u32(c: &mut C, ptr: i32, v: u32) -> Result<(), i32> {
    write(c, ptr, &v.to_le_bytes())
}

/// Writes a little-endian u64 at `ptr`.
pub fn write_u64(c: &mut C, ptr: i32, v: u64) -> Result<(), i32> {
    write(c, ptr, &v.to_le_bytes())
}

/// Allocates module memory for `data`, copies it there and writes the pointer and size to the
/// two return slots. Empty data gives pointer 0 and size 0 without allocating.
pub fn return_bytes(c: &mut C, data: &[u8], ptr_ptr: i32, size_ptr: i32) -> i32 {
    match return_bytes_inner(c, data, ptr_ptr, size_ptr) {
        Ok(()) => status::OK,
        Err(s) => s,
    }
}

fn return_bytes_inner(c: &mut C, data: &[u8], ptr_ptr: i32, size_ptr: i32) -> Result<(), i32> {
    let mut ptr = 0i32;
    if !data.is_empty() {
        let malloc = c.data().malloc.clone().ok_or(status::INTERNAL_FAILURE)?;
        ptr = malloc
            .call(&mut *c, data.len() as i32)
            .map_err(|_| status::INTERNAL_FAILURE)?;
        if ptr == 0 {
            return Err(status::INTERNAL_FAILURE);
        }
        write(c, ptr, data)?;
    }
    write_u32(c, ptr_ptr, ptr as u32)?;
    write_u32(c, size_ptr, data.len() as u32)?;
    Ok(())
}

/// Turns a `Result<(), status>` into the status the module sees.
pub fn st(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => status::OK,
        Err(s) => s,
    }
}
