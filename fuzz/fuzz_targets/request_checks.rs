//! The request checks that stand between a caller's input and the wire (URL, method, header
//! lines, framing headers) and the Content-Length sniffing of response headers: never a panic,
//! and whatever they accept holds no CR, LF or NUL. Run with `bench/fuzz_rust.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    _acurl_rs::fuzzing::request_checks(data);
});
