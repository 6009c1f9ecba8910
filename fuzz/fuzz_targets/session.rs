#![no_main]
//! `session`: see `wa_test_support::fuzz_session` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wa_test_support::fuzz_session(data));
