//! Fuzz target: the recovery layout stored in `external_data` and a whole envelope as `dr drill`
//! reads it (stateseal-fleet `recovery` and `drill`) must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stateseal_fleet::fuzzing::recovery_metadata(data));
