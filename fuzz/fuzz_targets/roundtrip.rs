#![no_main]
//! `roundtrip`: see `wa_binary::fuzzing::roundtrip` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wa_binary::fuzzing::roundtrip(data));
