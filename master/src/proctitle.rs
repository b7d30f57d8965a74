//! Process titles (`blitz: master`, `blitz: worker 3`) as `ps` shows them.
//!
//! `ps` reads `/proc/PID/cmdline`, i.e. the memory between the kernel's `arg_start`
//! and `arg_end`. We overwrite that area in place (as nginx and PostgreSQL do); when
//! it is too short for the title we point the kernel at a new buffer with
//! `PR_SET_MM_ARG_START/END`, which needs CAP_SYS_RESOURCE and is best effort. The
//! short `comm` name (`ps -o comm`, `top`, `pgrep`) is set with `PR_SET_NAME`.

use std::ffi::CString;
use std::fs;

/// Sets the process title. Never fails: a title is cosmetic.
pub fn set(title: &str) {
    set_comm(title);
    let Some((start, end)) = argv_area() else {
        return;
    };
    let room = end.saturating_sub(start);
    if room > title.len() {
        // SAFETY: [start, end) is this process's own argv area as reported by the
        // kernel; it is mapped and writable, and nothing in Rust borrows it (std
        // copied argv into its own storage at start-up).
        unsafe {
            let dst = start as *mut u8;
            std::ptr::copy_nonoverlapping(title.as_ptr(), dst, title.len());
            std::ptr::write_bytes(dst.add(title.len()), 0, room - title.len());
        }
        return;
    }
    replace_area(title);
}

fn set_comm(title: &str) {
    // The kernel keeps 15 bytes; keep the most specific part.
    let short: String = title.chars().filter(|c| *c != '\0').take(15).collect();
    if let Ok(name) = CString::new(short) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
        }
    }
}

/// Reads `arg_start` and `arg_end` (fields 48 and 49) from `/proc/self/stat`.
fn argv_area() -> Option<(usize, usize)> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces; fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // `rest` starts at field 3.
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}

fn replace_area(title: &str) {
    let mut buf = title.as_bytes().to_vec();
    buf.push(0);
    let buf: &'static mut [u8] = Box::leak(buf.into_boxed_slice());
    let start = buf.as_ptr() as libc::c_ulong;
    let end = start + buf.len() as libc::c_ulong;
    // The kernel checks start <= end after each call, so order the two calls by
    // where the new area lies relative to the old one.
    let set = |opt: libc::c_int, value: libc::c_ulong| {
        // SAFETY: PR_SET_MM with ARG_START/ARG_END only updates kernel bookkeeping
        // to point at memory we own for the rest of the process's life (leaked).
        unsafe { libc::prctl(libc::PR_SET_MM, opt as libc::c_ulong, value, 0, 0) == 0 }
    };
    if !(set(libc::PR_SET_MM_ARG_END, end) && set(libc::PR_SET_MM_ARG_START, start)) {
        let _ = set(libc::PR_SET_MM_ARG_START, start) && set(libc::PR_SET_MM_ARG_END, end);
    }
}
