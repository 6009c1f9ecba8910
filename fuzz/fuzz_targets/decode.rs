#![no_main]
//! `decode`: see `wa_binary::fuzzing::decode` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wa_binary::fuzzing::decode(data));
