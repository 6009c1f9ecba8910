#![no_main]
//! `e2e_group`: see `wa_e2e::fuzzing::decrypt_group` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_e2e::fuzzing::decrypt_group(data);
});
