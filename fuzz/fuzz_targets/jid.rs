#![no_main]
//! `jid`: see `wa_binary::fuzzing::jid` for the property it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wa_binary::fuzzing::jid(data));
