#![no_main]
//! `e2e_incoming`: see `wa_e2e::fuzzing::incoming_node` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_e2e::fuzzing::incoming_node(data);
});
