#![no_main]
//! `phone_json`: see `wa_wire::fuzzing::phone_request` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_wire::fuzzing::phone_request(data);
});
