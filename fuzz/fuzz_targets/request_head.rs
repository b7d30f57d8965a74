//! The request-head parser: never panics, and a decision never depends on how the
//! bytes were split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    blitz_worker::fuzzing::request_head(data);
});
