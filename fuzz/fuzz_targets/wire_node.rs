#![no_main]
//! `wire_node`: see `wa_wire::fuzzing::node` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_wire::fuzzing::node(data);
});
