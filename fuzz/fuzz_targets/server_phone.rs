#![no_main]
//! `server_phone`: see `wa_server_core::fuzzing::phone` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_server_core::fuzzing::phone(data);
});
