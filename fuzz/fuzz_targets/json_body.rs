//! The JSON request bodies and query strings: never panic; an accepted bot
//! configuration, shown and sent back, is accepted again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    blitz::http::fuzzing::json_body(data);
    blitz::http::fuzzing::query_and_form(data);
});
