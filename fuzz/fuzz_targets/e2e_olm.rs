#![no_main]
//! `e2e_olm`: see `wa_e2e::fuzzing::decrypt_olm` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_e2e::fuzzing::decrypt_olm(data);
});
