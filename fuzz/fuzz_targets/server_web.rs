#![no_main]
//! `server_web`: see `wa_server_core::fuzzing::web` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_server_core::fuzzing::web(data);
});
