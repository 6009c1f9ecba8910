#![no_main]
//! `history_android`: see `wa_history::fuzzing::import_android` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wa_history::fuzzing::import_android(data);
});
