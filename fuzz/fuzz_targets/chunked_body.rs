//! The chunked decoder: never panics, and decoding read by read ends as decoding
//! the whole. The first bytes choose the read sizes and the body limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (Some(&n), Some(&limit)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = &data[2..];
    let (cuts, body) = rest.split_at(usize::from(n % 8).min(rest.len()));
    // A small limit reaches the 413 path; 255 stands for "no limit".
    let max = if limit == 255 {
        u64::MAX
    } else {
        u64::from(limit) * 64
    };
    blitz_worker::fuzzing::chunked_body(body, cuts, max);
});
